"""``lsa-theory converge`` and ``lsa-theory diversity``: JSON contracts, saved results, resume."""

from __future__ import annotations

import json

import pytest

import lsa_theory.experiments.converge.experiment as ec
import lsa_theory.experiments.diversity.experiment as ed
from lsa_theory import cli

CONVERGE_FIELDS = {
    "algo",
    "seed",
    "radius",
    "loss0",
    "loss_final",
    "dist_final",
    "rate_fit",
    "rate_pred",
    "rate_ratio",
    "rate_ratio_a_priori",
    "pl_min_ratio",
    "ker_dim",
    "tangent_dim",
    "rich",
    "conserved_drift",
    "c_pred",
    "c_final",
}
DIVERSITY_FIELDS = {
    "S",
    "A",
    "d",
    "k",
    "kernel_certified",
    "features",
    "shared_features",
    "reward",
    "ker_dim",
    "tangent_dim",
    "scaling_only",
    "lambda_min_plus",
    "heldout_err",
}


@pytest.mark.slow  # about 10-30 s of CPU: kept out of the 5-minute default suite
def test_converge_quick_json_saves_and_resumes(tmp_path, capsys, monkeypatch):
    out = tmp_path / "conv"
    assert cli.main(["converge", "--quick", "--json", "--out", str(out)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert len(doc["runs"]) == 4
    for run in doc["runs"]:
        assert set(run) >= CONVERGE_FIELDS
        assert run["algo"] == "sarsa" and run["passed"]
        assert run["dist_final"] < 1e-8 and abs(run["rate_ratio"] - 1) < 0.01
        assert abs(run["rate_ratio_a_priori"] - 1) < 0.01 and run["pl_min_ratio"] >= 0.99
        assert run["conserved_drift"] < 1e-8 and run["ker_dim"] == run["tangent_dim"] == 1
        assert abs(run["c_final"] / run["c_pred"] - 1) < 1e-6
    (unreal,) = doc["unrealisable"]  # reported apart, L* > 0
    assert unreal["loss_star"] > 1e-10 and "passed" not in unreal
    assert doc["radius_sweep"] == [] and doc["radius_max_reached"] is None
    for name in (
        "converge.json",
        "converge.npz",
        "converge_loss.png",
        "converge_spectrum.png",
        "converge_pl.png",
    ):
        assert (out / name).stat().st_size > 0
    saved = json.loads((out / "converge.json").read_text())
    assert saved["versions"]["numpy"] and saved["config"]["algo"] == "sarsa"

    def boom(*a, **k):
        raise AssertionError("a finished run was recomputed")

    monkeypatch.setattr(ec, "_one_run", boom)
    assert cli.main(["converge", "--quick", "--json", "--out", str(out)]) == 0
    assert json.loads(capsys.readouterr().out)["runs"] == doc["runs"]


def test_converge_reports_failure(monkeypatch, capsys):
    """A run that misses a criterion fails the command (exit code 1)."""
    real = ec._one_run

    def worse(*args, **kwargs):
        row, arrays = real(*args, **kwargs)
        # a rate 5 % off shows in every fitted rate (criterion, single window, both two-mode rates)
        keys = ("rate_ratio_a_priori", "rate_ratio", "rate_ratio_single", "rate_ratio_two_mode",
                "rate_ratio_two_mode_fast")  # fmt: skip
        return {**row, **{k: 1.05 * row[k] for k in keys}}, arrays

    monkeypatch.setattr(ec, "_one_run", worse)
    monkeypatch.setattr(
        ec.ConvergeConfig,
        "quick",
        classmethod(
            lambda cls, algo="sarsa", module=None: cls(
                seeds=(0,), scales=(1.0,), radii=(1e-2,), noise=(), sweep_radii=()
            )
        ),
    )
    assert cli.main(["converge", "--quick"]) == 1
    assert "False" in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["sarsa", "actor_critic"])
def test_converge_quick_passes_for_both_algorithms(algo, capsys):
    """``converge --algo ALGO --quick`` exits 0 (4/4 runs; ~15 s of CPU each): the unmutated side of
    the (M6) mutations x0.97, x0.98, x1.02, x1.05 (benchmarks/mutations_dynamics.py), which fail it."""
    assert cli.main(["converge", "--algo", algo, "--quick", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["passed"] and all(r["passed"] for r in doc["runs"]) and len(doc["runs"]) == 4


@pytest.mark.slow  # 48 s: the default suite stays under 5 min; runs in the slow CI step
def test_diversity_json_contract(tmp_path, capsys, monkeypatch):
    rows = ed.diversity_rows(ed.DiversityConfig.quick())
    (d_row,) = [r for r in rows if r["table"] == "d" and r["d"] == 3]
    monkeypatch.setattr(ed, "diversity_rows", lambda cfg: [rows[0], rows[2], d_row])
    assert cli.main(["diversity", "--quick", "--json", "--out", str(tmp_path)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [r["ker_dim"] for r in doc["rows"]] == [1, 10, 1]
    for row in doc["rows"]:
        assert set(row) >= DIVERSITY_FIELDS
        assert row["kernel_certified"] and row["ker_dim"] == row["tangent_dim"]
        assert (row["S"], row["A"]) == (2, 2)
    assert doc["rows"][0]["scaling_only"] and doc["rows"][0]["heldout_err"] < 1e-9
    assert not doc["rows"][1]["scaling_only"] and doc["rows"][1]["heldout_err"] > 1e-3
    # (M7) depends on d: one MDP with one feature map at d = 3 < S A = 4 is scaling-only
    one = doc["rows"][2]
    assert (one["k"], one["d"], one["shared_features"]) == (1, 3, True) and one["scaling_only"]
    assert (tmp_path / "diversity.png").stat().st_size > 0


@pytest.mark.slow
def test_diversity_quick_reproduces_the_m5_table(tmp_path):
    """The full ``diversity --quick`` (about a minute): docs/theory.md's (M5) table and the k sweep."""
    doc = ed.run_diversity(ed.DiversityConfig.quick(), tmp_path)
    m5 = [r for r in doc["rows"] if r["table"] == "M5"]
    assert [r["ker_dim"] for r in m5] == [1, 10, 10, 19, 10]
    assert all(r["kernel_certified"] for r in doc["rows"])
    assert all(
        r["ker_dim"] == r["tangent_dim"] and r["morse_bott"] for r in doc["rows"] if not r["rank_limited"]
    )
    assert any(r["k"] == 1 and r["d"] < r["S"] * r["A"] for r in doc["rows"])
    for r in doc["rows"]:
        if not r["scaling_only"] and r["features"] != "onehot" and not r["rank_limited"]:
            assert r["heldout_err"] > 1e-3, r
    assert m5[0]["heldout_err"] < 1e-9


@pytest.mark.parametrize(
    ("make", "pattern"),
    [
        (lambda: ec.ConvergeConfig(radii=(1e-2, -1e-2)), "^radii:"),
        (lambda: ec.ConvergeConfig(scales=(0.0,)), "^scales:"),
        (lambda: ec.ConvergeConfig(k=0), "^k:"),
        (lambda: ec.ConvergeConfig(frames=0), "^frames:"),
        (lambda: ed.DiversityConfig(radius=-0.1), "^radius:"),
        (lambda: ed.DiversityConfig(k_sweep=(0, 1)), "^k_sweep:"),
    ],
)
def test_bad_experiment_configs(make, pattern):
    with pytest.raises(ValueError, match=pattern):
        make()
