"""``lsa-theory td-pretrain``: the public JSON contract, every (k, seed) run listed, resume by unit,
the verdicts (and that they can fail), the figure."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from lsa_theory import cli
from lsa_theory.experiments import td_pretrain as tdp
from lsa_theory.experiments.td_pretrain import experiment as body

TINY = dataclasses.replace(
    tdp.TDPConfig.quick(),
    d=3,
    n=10,
    n_windows=16,
    outer=4,
    ks=(1, "fresh"),
    seeds=(0, 1),
    heldout=4,
    log_every=2,
    inv_tasks=2,
    stat_sizes=((3, 10, 16, 16_000),),
)


@pytest.fixture(scope="module")
def tiny_doc(tmp_path_factory):
    out = tmp_path_factory.mktemp("tdp")
    return out, tdp.run(TINY, out)


def test_the_public_contract(tiny_doc):
    out, doc = tiny_doc
    saved = json.loads((out / "td_pretrain.json").read_text())
    for d in (doc, saved):
        assert {"config", "invariance", "stationary", "runs", "passed", "provenance"} <= set(d)
        assert {"outside_at_fix", "outside_off_fix"} <= set(d["invariance"])
        assert {"a_star", "a_star_sem", "b_star", "b_star_sem"} <= set(d["stationary"])
        keys = {"k", "seed", "dist_fix", "dist_w3", "dist_theta_star", "heldout_value_err", "diverged"}
        assert all(keys <= set(r) for r in d["runs"])
    assert [(r["k"], r["seed"]) for r in doc["runs"]] == [(1, 0), (1, 1), ("fresh", 0), ("fresh", 1)]
    assert all(r["steps"] == TINY.outer * TINY.batches for r in doc["runs"])
    assert doc["passed"] and doc["invariance"]["passed"] and doc["stationary"]["passed"]


def test_the_verdicts(tiny_doc):
    _, doc = tiny_doc
    inv = doc["invariance"]
    assert inv["outside_at_fix"] <= 1e-14 and inv["outside_off_fix"] >= 1e-4
    assert inv["mutation_outside_at_fix"] >= 1e-4  # the mutated group does not keep Fix
    assert len(inv["rows"]) == 2 * 2 * 3 * 3  # L, shared, point, group
    flow = doc["stationary"]["sizes"][0]["flow"]
    assert flow["dist_theta_star"] <= 1e-6 and flow["dist_w3"] > 0.05


def test_a_wrong_theory_value_fails_the_stationary_verdict(monkeypatch):
    """THEORY's b* moved by 0.1 (4 s.e.): the stationary verdict fails."""
    ref = dict(body.THEORY_WP3)
    (a, b) = ref[(3, 10, 16)]
    ref[(3, 10, 16)] = (a, (b[0] + 0.1, b[1]))
    monkeypatch.setattr(body, "THEORY_WP3", ref)
    assert not body.stationary_unit(TINY)["passed"]


def test_run_resumes_by_unit(tiny_doc, monkeypatch):
    """A finished run's units are reused: nothing is recomputed when the units file is there."""
    out, doc = tiny_doc
    store = body.UnitStore(out, body.UNITS_FILE, config=dataclasses.asdict(TINY))
    for key in body.units(TINY)[:3]:
        store.put(key, body.run_unit(TINY, key), None)
    calls = []
    real = body.run_unit
    monkeypatch.setattr(body, "run_unit", lambda cfg, key: calls.append(key) or real(cfg, key))
    again = tdp.run(TINY, out)
    assert calls == body.units(TINY)[3:]
    assert again["runs"] == doc["runs"]


def test_config_refuses_bad_fields():
    for bad in ({"ks": ()}, {"ks": (0,)}, {"kind": "garnet"}, {"gamma": 1.0}, {"stat_sizes": ((3, 10),)}):
        with pytest.raises(ValueError):
            dataclasses.replace(TINY, **bad)


def test_the_figure(tiny_doc, figures):
    out, _ = tiny_doc
    path = tdp.plot(out)
    assert path.name == "td_pretrain.png" and path.exists() and "td_pretrain.png" in figures.figs


def test_the_command_prints_the_contract(tiny_doc, tmp_path, monkeypatch, capsys):
    """The command's plumbing on the tiny run (the run itself replaced by the saved tiny document):
    the --quick configuration reaches the run, exit 0, the contract printed, the figure drawn."""
    import shutil

    out, doc = tiny_doc
    seen = []

    def fake_run(cfg, where):
        seen.append(cfg)
        shutil.copy(out / "td_pretrain.json", where)
        return doc

    monkeypatch.setattr(tdp.TDPConfig, "quick", classmethod(lambda cls: TINY))
    monkeypatch.setattr(tdp, "run_td_pretrain", fake_run)
    rc = cli.main(["td-pretrain", "--quick", "--json", "--out", str(tmp_path)])
    printed = json.loads(capsys.readouterr().out)
    assert rc == 0 and seen == [TINY] and printed["passed"] and len(printed["runs"]) == 4
    assert (tmp_path / "td_pretrain.png").exists()
    assert np.isfinite(printed["stationary"]["a_star"])


def test_the_invariance_verdict_needs_the_mutated_group_to_fail(monkeypatch):
    """If the mutated group kept Fix as well (here: it is replaced by the full group), the verdict
    fails: the check must be able to tell the right group from a wrong one."""
    monkeypatch.setattr(body.tp, "first_half_permutations", body.tp.signed_permutations)
    assert not body.invariance_unit(dataclasses.replace(TINY, inv_tasks=1))["passed"]
