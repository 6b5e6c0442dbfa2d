"""The ``lsa-theory verify`` command: table, JSON contract and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import lsa_theory.constructions.numeric as cn
from lsa_theory import cli


def test_verify_json_contract(capsys):
    assert cli.main(["verify", "--quick", "--json", "--seed", "7"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc) >= {"rows"}
    assert len(doc["rows"]) >= 15
    labels = {row["claim"] for row in doc["rows"]}
    assert labels >= {"(S4)", "(S5)", "(A4)", "(W3)", "(L2)", "(L1)"}
    for row in doc["rows"]:
        assert set(row) >= {"claim", "residual", "tol", "passed"}
        assert isinstance(row["residual"], float) and isinstance(row["tol"], float)
        assert row["passed"] is True and row["residual"] <= row["tol"]


@pytest.mark.slow  # about 10-30 s of CPU: kept out of the 5-minute default suite
def test_verify_table_and_seed_reproducible(capsys):
    assert cli.main(["verify", "--quick", "--seed", "11"]) == 0
    first = capsys.readouterr().out
    assert "claims pass" in first and "FAIL" not in first
    cli.main(["verify", "--quick", "--seed", "11"])
    assert capsys.readouterr().out == first


def test_verify_exit_code_on_failure(monkeypatch, capsys):
    """A failing claim must give exit code 1 and a FAIL row (break the SARSA construction)."""
    real = cn.sarsa

    def broken(d, alpha, c=1.0):
        P, V = real(d, alpha, c)
        V = V.copy()
        V[-1, d - 1] *= 1.0 + 1e-9  # alpha of the last coordinate, off by 1e-9 relative
        return P, V

    monkeypatch.setattr(cn, "sarsa", broken)
    assert cli.main(["verify", "--quick", "--seed", "1"]) == 1
    assert "FAIL" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["verify", "--bogus"], ["nope"], []])
def test_bad_arguments(argv):
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2


def test_console_script_installed():
    """The installed entry point runs (``python -m`` avoids relying on PATH)."""
    out = subprocess.run(
        [sys.executable, "-m", "lsa_theory.cli", "verify", "--quick", "--json", "--seed", "2"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(out.stdout)["passed"] is True
