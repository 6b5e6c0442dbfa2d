"""``lsa-theory distill --mode in-context``: the public JSON contract of issue 22, the (AD3) rows,
resume by unit, the figure, and the mutations the rows catch (docs/theory.md §11)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from lsa_theory import cli
from lsa_theory.experiments import distill
from lsa_theory.experiments.distill import experiment as ex


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """One ``--quick`` run (30 MDPs, about 5 s) shared by the tests below."""
    out = tmp_path_factory.mktemp("distill")
    return out, distill.run(distill.Config.quick(), out)


def test_public_contract_and_checks(quick):
    out, doc = quick
    assert set(doc["agents"]) == {"source", "ctx_all", "ctx_last", "ctx_src"}
    K = doc["config"]["K"]
    for a in doc["agents"].values():
        assert len(a["return_by_episode"]) == K and len(a["sem_by_episode"]) == K
    for key in ("ctx_all_late_minus_early", "ctx_last_late_minus_early", "ctx_all_minus_ctx_last_late"):
        m, lo, hi = doc["paired"][key]
        assert lo <= m <= hi
    assert {"config", "passed", "provenance"} <= set(doc)
    assert len(doc["mdps"]) == doc["config"]["n_mdps"] == 30  # every MDP listed
    assert doc["passed"], [r for r in doc["verify"] if not r["passed"]]
    assert {r["claim"] for r in doc["verify"]} == {"(AD1)", "(AD2)", "(AD3)", "(AD5)"}
    assert [r["episodes"] for r in doc["by_context"]] == [1, 4, 16, 40]
    assert (out / "distill.json").is_file() and not (out / ex.UNITS_FILE).exists()
    # ctx-last and ctx-all are the windows 1 and K, as listed per MDP
    i = 3
    assert doc["mdps"][i]["late"]["ctx_all"] == pytest.approx(
        np.mean(np.load(out / "distill.npz")["ctx_all"][i, 30:40]), abs=1e-15
    )


def test_cli_prints_the_document_and_draws_the_figure(quick, capsys, monkeypatch):
    """The command prints the run's document (``--json``) and draws ``distill.png`` from the saved
    results in ``--out`` (the run itself is the fixture's, not recomputed)."""
    out, doc = quick
    seen = {}

    def run(cfg, where):
        seen["cfg"], seen["out"] = cfg, where
        return doc

    monkeypatch.setattr(distill, "run_distill", run)
    rc = cli.main(["distill", "--mode", "in-context", "--quick", "--json", "--out", str(out), "--reuse"])
    got = json.loads(capsys.readouterr().out)
    assert rc == 0 and got["paired"] == doc["paired"] and seen["cfg"] == distill.Config.quick()
    assert (out / "distill.png").is_file()
    rc = cli.main(["distill", "--mode", "in-context", "--quick"])
    text = capsys.readouterr().out
    assert rc == 0 and "ctx_all_late_minus_early" in text and "(AD1)" in text


def test_config_is_checked():
    with pytest.raises(ValueError, match="late"):
        distill.Config(late=(31, 41))
    with pytest.raises(ValueError, match="windows"):
        distill.Config(windows=())
    with pytest.raises(ValueError, match="key"):
        distill.run_unit(distill.Config.quick(), "mdp-999")
    assert distill.Config(windows=(2, 99)).all_windows() == (1, 2, 40)


def _small():
    return dataclasses.replace(
        distill.Config.quick(), n_mdps=4, K=6, windows=(1, 6), early=(1, 2), late=(5, 6), n_verify=2
    )


def test_unit_is_reproducible_and_agents_share_their_first_episode():
    cfg = _small()
    a, b = ex.mdp_unit(cfg, 1), ex.mdp_unit(cfg, 1)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    # common random numbers: after episode 1 ctx-all, ctx-last and ctx-src read the same episode
    assert a["windows"][0, 0] == a["windows"][-1, 0] == a["ctx_src"][0]


def _mutated(monkeypatch, window):
    """Run ``--quick`` with every ``ctx-m`` agent reading ``window(m, K)`` episodes instead of m."""
    orig = ex.window_reader
    monkeypatch.setattr(ex, "window_reader", lambda cfg, w0, m: orig(cfg, w0, window(m, cfg.K)))
    return distill.run(distill.Config.quick())


@pytest.mark.slow
def test_mutation_every_agent_reads_one_episode_fails(monkeypatch):
    """ctx-all reading one episode is ctx-last: 'ctx-all beats ctx-last' fails (the interval is 0)."""
    doc = _mutated(monkeypatch, lambda m, K: 1)
    failed = {r["check"] for r in doc["verify"] if not r["passed"]}
    assert not doc["passed"] and any("beats ctx-last" in c for c in failed)


@pytest.mark.slow
def test_mutation_ctx_last_reading_everything_fails(monkeypatch):
    """ctx-last reading all its episodes improves: 'ctx-last does not' fails."""
    doc = _mutated(monkeypatch, lambda m, K: K)
    failed = {r["check"] for r in doc["verify"] if not r["passed"]}
    assert any("ctx-last does not" in c for c in failed)
