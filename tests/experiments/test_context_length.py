"""Context length in both regimes of docs/theory.md §6 (:mod:`lsa_theory.experiments.context_length`): the
deep stack
from the statistics against the raw blocks (S5)/(W3), paired confidence intervals against scipy,
each regime's reported cells against an independent recomputation, and the CLI JSON contract."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import scipy.stats

import lsa_theory as lt
from lsa_theory import cli
from lsa_theory import constructions as C
from lsa_theory.experiments import context_length as cl
from lsa_theory.experiments import control as ctl
from lsa_theory.experiments import envs, stats, tables
from lsa_theory.experiments.context_length import closed_loop


def _context(rng, S=2, A=2, n=7):
    mdp = lt.random_mdp(S, A, 0.5, rng)
    phi = lt.random_features(S, A, None, rng)
    traj = lt.rollout(mdp, lt.uniform_policy(mdp), n, rng)
    return mdp, phi, traj


@pytest.mark.parametrize("Ls", [(1,), (1, 3, 5)])
def test_stack_from_statistics_equals_stacked_blocks_on_raw_prompt(rng, Ls):
    """(S5) + (L2): L stacked (S3) blocks (L1) on the raw prompt from w_0 = 0 read out w_L, which the
    statistics-only stack reproduces to 1e-12, and so does the naive loop (S2) iterated L times."""
    mdp, phi, traj = _context(rng)
    X = lt.sarsa_columns(traj, phi, mdp.gamma)
    d, n = phi.shape[-1], X.shape[1]
    ws = cl.stack_values(lt.sufficient_statistics(X), n, 0.3, Ls)
    P, V = C.sarsa(d, 0.3)
    f = phi[traj.states, traj.actions]
    for q, L in enumerate(Ls):
        raw = lt.readout(lt.lsa_stack(lt.sarsa_prompt(X, np.zeros(d)), [(P, V)] * L), d)
        naive = lt.naive_batch_sarsa(f[:-1], f[1:], traj.rewards, np.zeros(d), mdp.gamma, 0.3, n_iter=L)
        scale = max(1.0, float(np.abs(raw).max()))
        assert np.abs(ws[q] - raw).max() <= 1e-12 * scale
        assert np.abs(ws[q] - naive).max() <= 1e-12 * scale


def test_td_stack_from_statistics_equals_masked_blocks(rng):
    """(W3): L masked blocks on (W1) with every state as a query give ``-Z[-1, n:] = psi w_L``."""
    S, d, n, L = 3, 4, 9, 4
    mdp = lt.random_mdp(S, 2, 0.5, rng)
    psi = lt.random_state_features(S, d, rng)
    traj = lt.rollout(mdp, lt.uniform_policy(mdp), n, rng)
    X = lt.td_columns(traj, psi, mdp.gamma)
    (w,) = cl.td_stack_values(lt.sufficient_statistics(X), 0.25, (L,))
    P, Q = C.td(d, 0.25)
    Z = lt.masked_lsa_stack(lt.td_prompt(X, psi.T, n_queries=S), [(P, Q)] * L, n_queries=S)
    np.testing.assert_allclose(-Z[-1, n:], psi @ w, rtol=0, atol=1e-12)
    naive = lt.naive_batch_td(psi[traj.states[:-1]], psi[traj.states[1:]], traj.rewards, mdp.gamma, 0.25, L)
    np.testing.assert_allclose(w, naive, rtol=0, atol=1e-12)


def test_stack_marks_divergence_as_nan():
    Sigma = np.zeros((3, 3))
    Sigma[0, 0], Sigma[0, 2] = 1.0, 1.0  # w <- w + alpha (1 - w): stable for alpha < 2
    ws = cl.stack_values(Sigma, 1, 5.0, (1, 1000))
    assert np.isfinite(ws[0]).all() and np.isnan(ws[1]).all()


def test_paired_difference_matches_scipy(rng):
    a = rng.normal(size=12)
    b = a + 0.3 + 0.1 * rng.normal(size=12)
    got = stats.paired_difference(a, b)
    ci = scipy.stats.ttest_rel(b, a).confidence_interval(0.95)
    assert got["mean"] == pytest.approx(float(np.mean(b - a)), abs=1e-14)
    assert got["ci"] == pytest.approx([ci.low, ci.high], abs=1e-12)
    a[3], b[5] = np.nan, np.nan  # missing entries drop their pair
    assert stats.paired_difference(a, b)["n_pairs"] == 10
    assert stats.paired_difference(a[:1], b[:1])["mean"] is None
    with pytest.raises(ValueError, match="a, b"):
        stats.paired_difference(a, b[:3])


TINY_IC = cl.InContextConfig(ns=(5, 30), Ls=(1, 3), n_mdps=2, td_d=4)


def test_in_context_cells_equal_an_independent_recomputation(tmp_path, figures):
    """Each reported in-context cell is the greedy return of ``phi w_L`` and ``||Q_w - Q^pi||`` with
    the *uniform* behaviour policy's ``Q^pi``, from the documented stream; contexts are prefixes of
    one trajectory (paired across n)."""
    doc = cl.in_context_sweep(TINY_IC, tmp_path)
    with np.load(tmp_path / "context_length_in-context.npz") as z:
        ret, verr, tderr = z["normalized_return"], z["value_error"], z["td_value_error"]
    assert ret.shape == (2, 2, 2)
    for i, mdp in enumerate(envs.heldout_family(2, 0)):
        rng = envs.heldout_rng(0, i, cl.IN_CONTEXT_STREAM)
        phi = lt.random_features(9, 4, None, rng)
        psi = lt.random_state_features(9, 4, rng)
        pi = lt.uniform_policy(mdp)
        traj = lt.rollout(mdp, pi, 30, rng)
        sol = lt.optimal(mdp)
        X = lt.sarsa_columns(traj, phi, 0.5)  # the fast teacher (S2), not the statistics
        Xtd = lt.td_columns(traj, psi, 0.5)
        for j, n in enumerate((5, 30)):
            for q, L in enumerate((1, 3)):
                w = lt.td_update(X[:, :n], np.zeros(36), 0.2, n_iter=L)
                Qw = phi @ w
                assert ret[q, j, i] == pytest.approx(lt.normalized_return(mdp, lt.greedy(Qw), sol), abs=1e-12)
                Qpi = lt.q_pi(mdp, pi)
                assert verr[q, j, i] == pytest.approx(
                    np.linalg.norm(Qw - Qpi) / np.linalg.norm(Qpi), rel=1e-9
                )
                u = lt.td_update(Xtd[:, :n], np.zeros(4), 0.2, n_iter=L)
                V = lt.v_pi(mdp, pi)
                assert tderr[q, j, i] == pytest.approx(
                    np.linalg.norm(psi @ u - V) / np.linalg.norm(V), rel=1e-9
                )
    row = doc["rows"][1]  # L = 1, n = 30: the paired difference to n = 5
    assert (row["L"], row["n"]) == (1, 30)
    assert row["return_diff_prev"]["mean"] == pytest.approx(float(np.mean(ret[0, 1] - ret[0, 0])), abs=1e-12)
    assert row["normalized_return"] == pytest.approx(float(ret[0, 1].mean()), abs=1e-12)
    assert row["sem"] == pytest.approx(float(ret[0, 1].std(ddof=1) / np.sqrt(2)), abs=1e-12)
    assert cl.plot_context_length_regimes(tmp_path, "in-context").exists()
    assert figures.assert_error_bars_labelled(figures["context_length_in-context.png"]) == 3
    text = tables.table("in-context", tmp_path / "context_length_in-context.json")
    assert text.count("\n| 3 | 30 |") == 2 and "0/2 |" in text  # SARSA and TD rows, divergence counts


def test_closed_loop_cells_read_the_right_update(tmp_path, figures):
    """Fixed updates read the greedy return after ``point`` updates; fixed environment steps after
    ``point / n`` updates; every cell is the constructed block's loop on the documented stream."""
    cfg = cl.ClosedLoopConfig(
        ns=(2, 4), alphas=(0.2,), updates=(20,), env_steps=(80,), n_mdps=2, eval_every=10
    )
    doc = cl.closed_loop_sweep(cfg, tmp_path)
    rows = {(r["budget"], r["n"]): r for r in doc["rows"]}
    assert rows[("env_steps", 2)]["updates"] == 40 and rows[("env_steps", 4)]["updates"] == 20
    assert all(r["env_steps"] == r["updates"] * r["n"] for r in doc["rows"])
    with np.load(tmp_path / "context_length_closed-loop.npz") as z:
        finals = z["finals"]
    for i, mdp in enumerate(envs.heldout_family(2, 0)):
        sol = lt.optimal(mdp)
        for j, n in enumerate((2, 4)):
            kw = dict(n=n, epsilon=0.1, alpha=0.2, eval_every=10, solution=sol)
            teacher = ctl.deploy(
                mdp, "teacher", n_updates=cfg.n_updates(n), rng=envs.heldout_rng(0, i, 1), **kw
            )
            for b, t in enumerate((20, 80 // n)):
                # greedy policy of the teacher's w after t updates (the block equals the teacher here)
                rng = envs.heldout_rng(0, i, 1)
                phi = lt.random_features(9, 4, None, rng)
                expect = lt.normalized_return(mdp, lt.greedy(phi @ teacher.ws[t]), sol)
                assert finals[b, 0, j, i] == pytest.approx(expect, abs=1e-9)
    assert cl.plot_context_length_regimes(tmp_path, "closed-loop").exists()
    assert figures.assert_error_bars_labelled(figures["context_length_closed-loop.png"]) == 2  # two budgets
    text = tables.table("closed-loop", tmp_path / "context_length_closed-loop.json")
    assert "**20 updates**" in text and "**80 environment steps**" in text and text.count("| 0.2 |") == 2


def test_cli_context_length_json_contract(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(cl.InContextConfig, "quick", classmethod(lambda cls: TINY_IC))
    assert (
        cli.main(["context-length", "--regime", "in-context", "--quick", "--json", "--out", str(tmp_path)])
        == 0
    )
    doc = json.loads(capsys.readouterr().out)
    assert doc["regime"] == "in-context"
    assert doc["provenance"]["seed"] is not None and len(doc["provenance"]["config_hash"]) == 64
    assert {"n", "L", "normalized_return", "value_error", "sem"} <= set(doc["rows"][0])
    assert len(doc["rows"]) == 4 and {r["L"] for r in doc["rows"]} == {1, 3}
    assert (tmp_path / "context_length_in-context.png").exists()
    tiny_cl = cl.ClosedLoopConfig(ns=(2, 4), alphas=(0.2,), updates=(10,), env_steps=(40,), n_mdps=2)
    monkeypatch.setattr(cl.ClosedLoopConfig, "quick", classmethod(lambda cls: tiny_cl))
    assert cli.main(["context-length", "--regime", "closed-loop", "--quick"]) == 0
    assert "normalized_return" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("make", "name"),
    [
        (lambda: cl.InContextConfig(ns=(5, 5)), "ns"),
        (lambda: cl.InContextConfig(Ls=()), "Ls"),
        (lambda: cl.InContextConfig(n_mdps=1), "n_mdps"),
        (lambda: cl.InContextConfig(alpha=0.0), "alpha"),
        (lambda: cl.ClosedLoopConfig(alphas=(-0.1,)), "alphas"),
        (lambda: cl.ClosedLoopConfig(ns=(3,), env_steps=(40,)), "env_steps"),
        (lambda: cl.ClosedLoopConfig(updates=(15,)), "updates"),
        (lambda: cl.run_context_length("both"), "regime"),
        (lambda: cl.closed_loop_sweep("quick"), "cfg"),
        (lambda: cl.in_context_sweep(3), "cfg"),
    ],
)
def test_bad_inputs_raise(make, name):
    with pytest.raises(ValueError, match=name):
        make()


def _closed_loop_verdicts(cfg, factors):
    """The closed-loop sweep's verdicts (every row's divergence count) with every loop's features and
    ``w_0`` multiplied by ``factors`` (issue 18: the same idea as the control runs)."""

    def deploy(mdp, weights, **kw):
        def scale(dr):
            return dataclasses.replace(dr, phi=dr.phi * factors["phi"], w0=dr.w0 * factors["w0"])

        return ctl.deploy(mdp, weights, draws_map=scale, **kw)

    with pytest.MonkeyPatch.context() as m:
        m.setattr(closed_loop, "deploy", deploy)
        doc = cl.closed_loop_sweep(cfg)
    return tuple((r["budget"], r["point"], r["alpha"], r["n"], r["n_diverged"]) for r in doc["rows"])


def _assert_closed_loop_robust(cfg):
    from lsa_theory.roundoff import assert_same_verdicts

    factors = {"phi": np.ones((9, 4, 36)), "w0": np.ones(36)}
    return assert_same_verdicts(lambda f: _closed_loop_verdicts(cfg, f), factors, np.random.default_rng(18))


def test_closed_loop_divergence_counts_survive_rounding():
    """Small sweep with a diverging step size: the per-row divergence counts are equal for inputs
    perturbed at relative 1e-13 (features, w_0)."""
    cfg = cl.ClosedLoopConfig(
        ns=(2, 10), alphas=(0.2, 200.0), updates=(20,), env_steps=(200,), n_mdps=2, eval_every=10
    )
    verdict = _assert_closed_loop_robust(cfg)
    assert any(v[-1] > 0 for v in verdict) and any(v[-1] == 0 for v in verdict)


@pytest.mark.slow
def test_closed_loop_quick_divergence_counts_survive_rounding():
    _assert_closed_loop_robust(cl.ClosedLoopConfig.quick())
