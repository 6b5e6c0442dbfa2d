"""``lsa-theory control`` and ``lsa-theory reproduce``: JSON contracts and resume."""

from __future__ import annotations

import json

import pytest

from experiments import cli

CONTROL_FIELDS = {
    "name",
    "algo",
    "weights",
    "updates",
    "normalized_return",
    "normalized_return_teacher",
    "n_seeds",
}


def test_control_quick_json(tmp_path, capsys):
    assert cli.main(["control", "--quick", "--json", "--updates", "100", "--out", str(tmp_path)]) == 0
    doc = json.loads(capsys.readouterr().out)
    names = [e["name"] for e in doc["envs"]]
    assert names[0] == "random-S9-A4" and len(names) == 4
    for env in doc["envs"]:
        assert set(env) >= CONTROL_FIELDS
        assert env["algo"] == "sarsa" and env["weights"] == "constructed" and env["updates"] == 100
        # the frozen constructed block is the teacher: identical returns on the same seeds
        assert env["normalized_return"] == pytest.approx(env["normalized_return_teacher"], abs=1e-12)
    assert (tmp_path / "control" / "control.png").stat().st_size > 0


def test_control_actor_critic_rows_only(capsys):
    assert cli.main(["control", "--quick", "--json", "--algo", "actor_critic", "--updates", "30"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [(e["name"], e["algo"]) for e in doc["envs"]] == [("random-S9-A4", "actor_critic")]


def test_control_bad_weights_path():
    with pytest.raises(ValueError, match="weights"):
        cli.main(["control", "--quick", "--weights", "/nonexistent/w.npz", "--updates", "10"])
