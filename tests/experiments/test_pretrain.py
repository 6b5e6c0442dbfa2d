"""Reinforcement pretraining (P2) and the comparison (P3): the expected-context loop, its gradient,
the structure and update metrics, resume, and the ``pretrain`` command's contract."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

import lsa_theory as lt
from lsa_theory import constructions
from lsa_theory import dynamics as dy
from lsa_theory.experiments import pretrain as pt
from lsa_theory.experiments import stats
from lsa_theory.experiments.pretrain import compare as pc
from lsa_theory.experiments.pretrain import expected_loop as el
from lsa_theory.experiments.pretrain import train as pretrain_train


def _batch(seed: int, K: int = 3, S: int = 2, A: int = 2):
    return el.draw_batch(K, S, A, 0.5, np.random.default_rng(seed))


def _objective_grads(batch, lay, Pc, Vc, kw):
    """Autograd and central-difference (h = 1e-5) gradients of ``rl_objective`` (``kw``) over all
    entries of ``(P, V)`` at the construction ``(Pc, Vc)`` plus ``0.05 N(0, 1)`` noise (seed 7)."""
    D = lay.D
    rng = np.random.default_rng(7)
    theta0 = np.concatenate([Pc.ravel(), Vc.ravel()]) + 0.05 * rng.standard_normal(2 * D * D)

    def f(theta):
        t = torch.as_tensor(theta)
        with torch.no_grad():
            return float(
                el.rl_objective(batch, t[: D * D].reshape(D, D), t[D * D :].reshape(D, D), lay, **kw)
            )

    t = torch.as_tensor(theta0).requires_grad_(True)
    el.rl_objective(batch, t[: D * D].reshape(D, D), t[D * D :].reshape(D, D), lay, **kw).backward()
    return t.grad.numpy(), dy.finite_difference_grad(f, theta0, h=1e-5)


def _tiny(**changes) -> pt.PretrainConfig:
    base = dict(
        S=2,
        A=2,
        tau=0.1,
        n=5,
        T=2,
        k=16,
        batch_mdps=None,
        steps=4,
        log_every=2,
        checkpoint_every=2,
        frames=4,
        teacher_steps=20,
        teacher_batch=None,
        heldout_k=5,
        curve_updates=4,
        eval_every=2,
    )
    return pt.PretrainConfig(**(base | changes))


# ------------------------------------------------------------------------------------------------
# the expected context
# ------------------------------------------------------------------------------------------------


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), S=st.integers(2, 3), A=st.integers(2, 3), n=st.integers(1, 7))
@example(seed=0, S=2, A=2, n=1)
def test_matvec_equals_enumeration(seed, S, A, n):
    batch, mdps = _batch(seed, 2, S, A)
    rng = np.random.default_rng(seed)
    rho = torch.as_tensor(rng.dirichlet(np.ones(S), size=2))
    tau = 0.6
    pi = el.behaviour_policy(batch, batch.w0, tau)
    rb, rp, _ = el.context_laws(batch, pi, rho, n)
    m = 2 * S * A + 1
    U = torch.as_tensor(rng.standard_normal((2, m)))
    mv = el.expected_sigma_matvec(batch, pi, rb, rp, U).numpy()
    for k in range(2):
        ref = el.expected_sigma_reference(
            mdps[k], batch.phi[k].numpy(), batch.w0[k].numpy(), rho[k].numpy(), n, tau
        )
        np.testing.assert_allclose(mv[k], ref @ U[k].numpy(), rtol=0, atol=1e-13)


def test_reward_noise_enters_the_reward_entry():
    rng = np.random.default_rng(3)
    base = lt.random_mdp(2, 2, 0.5, rng)
    mdp = lt.TabularMDP(base.P, base.r, base.gamma, base.mu0, reward_noise=0.7)
    phi, w0 = lt.random_features(2, 2, None, rng), rng.uniform(-1, 1, 4)
    batch = el.make_batch([mdp], [phi], [w0])
    pi = el.behaviour_policy(batch, batch.w0, 0.5)
    rb, rp, _ = el.context_laws(batch, pi, batch.mu0, 4)
    U = torch.as_tensor(rng.standard_normal((1, 9)))
    ref = el.expected_sigma_reference(mdp, phi, w0, mdp.mu0, 4, 0.5)
    np.testing.assert_allclose(
        el.expected_sigma_matvec(batch, pi, rb, rp, U)[0].numpy(), ref @ U[0].numpy(), atol=1e-13
    )


def test_context_laws_are_matrix_powers():
    batch, _ = _batch(5, 2, 3, 2)
    pi = el.behaviour_policy(batch, batch.w0, 0.3)
    n = 6
    rb, rp, rn = el.context_laws(batch, pi, batch.mu0, n)
    M = torch.einsum("ksa,ksat->kst", pi, batch.P).numpy()
    for k in range(2):
        laws = [batch.mu0[k].numpy() @ np.linalg.matrix_power(M[k], i) for i in range(n + 1)]
        np.testing.assert_allclose(rb[k].numpy(), np.mean(laws[:n], axis=0), atol=1e-15)
        np.testing.assert_allclose(rp[k].numpy(), np.mean(laws[1:], axis=0), atol=1e-15)
        np.testing.assert_allclose(rn[k].numpy(), laws[n], atol=1e-15)


def test_expected_sigma_is_the_mean_of_sampled_contexts():
    """Monte Carlo over sampled contexts (S6) with the softmax behaviour: every entry of the mean
    sampled Sigma within 4.5 standard errors of E[Sigma] (a wrong law of (s_i, a_i) fails)."""
    rng = np.random.default_rng(11)
    batch, mdps = _batch(11, 1, 2, 2)
    mdp, phi, w = mdps[0], batch.phi[0].numpy(), batch.w0[0].numpy()
    n, tau, N = 4, 0.5, 4000
    rho = np.array([0.8, 0.2])
    ref = el.expected_sigma_reference(mdp, phi, w, rho, n, tau)
    pi = lt.policies.softmax_rows(phi @ w / tau)
    acc, acc2 = np.zeros_like(ref), np.zeros_like(ref)
    for _ in range(N):
        traj = lt.rollout(mdp, pi, n, rng, int(rng.random() > rho[0]))
        X = lt.sarsa_columns(traj, phi, mdp.gamma)
        Sg = X @ X.T / n
        acc += Sg
        acc2 += Sg**2
    mean = acc / N
    se = np.sqrt(np.maximum(acc2 / N - mean**2, 1e-30) / N)
    assert np.max(np.abs(mean - ref) / se) < 4.5


def test_expected_step_is_the_l2_readout_of_the_expected_statistic():
    batch, mdps = _batch(2, 2, 2, 2)
    lay = lt.Layout(4)
    rng = np.random.default_rng(2)
    P, V = rng.standard_normal((2, lay.D, lay.D)) * 0.3
    n, tau = 3, 0.4
    w1, _ = el.expected_step(batch, torch.as_tensor(P), torch.as_tensor(V), lay, batch.w0, batch.mu0, n, tau)
    for k in range(2):
        w0 = batch.w0[k].numpy()
        Sig = el.expected_sigma_reference(mdps[k], batch.phi[k].numpy(), w0, mdps[k].mu0, n, tau)
        ref = lt.tf_from_statistics(Sig, np.concatenate([[1.0], w0]), P, V, n, lay)
        np.testing.assert_allclose(w1[k].numpy(), ref, rtol=0, atol=1e-13)


def test_softmax_return_is_the_exact_normalised_return():
    batch, mdps = _batch(4, 3, 3, 2)
    w = batch.w0 * 2.0
    got = el.softmax_return(batch, w, 0.3).numpy()
    for k, mdp in enumerate(mdps):
        pi = lt.policies.softmax_rows(batch.phi[k].numpy() @ w[k].numpy() / 0.3)
        assert got[k] == pytest.approx(lt.normalized_return(mdp, pi), abs=1e-13)


@pytest.mark.parametrize("horizon", ["final", "mean"])
def test_smooth_objective_gradient_matches_finite_differences(horizon):
    """(P2) smooth form: autograd gradient of R(theta) in all D x D entries of P and V against
    central differences (h = 1e-5, float64): relative error below 1e-6."""
    batch, _ = _batch(7, 3, 2, 2)
    lay = lt.Layout(4)
    D = lay.D
    Pc, Vc = constructions.sarsa(4, 0.5)
    g, g_fd = _objective_grads(batch, lay, Pc, Vc, dict(n=4, T=3, tau=0.5, horizon=horizon))
    assert np.linalg.norm(g - g_fd) / np.linalg.norm(g) < 1e-6
    # only the (L2) blocks enter: the other entries get exactly zero gradient
    Pg, Vg = g[: D * D].reshape(D, D), g[D * D :].reshape(D, D)
    assert not np.any(Pg[:, : lay.m]) and not np.any(Vg[: lay.m + 1])


def test_smooth_objective_directional_derivatives_at_ll_size():
    """The same at the [LL] size (S = 9, A = 4, d = 36, D = 110): autograd against central
    differences along 3 random directions, relative error below 1e-6."""
    batch, _ = el.draw_batch(2, 9, 4, 0.5, np.random.default_rng(8))
    lay = lt.Layout(36)
    rng = np.random.default_rng(8)
    Pc, Vc = constructions.sarsa(36, 0.2)
    P0 = torch.as_tensor(Pc + 0.01 * rng.standard_normal(Pc.shape)).requires_grad_(True)
    V0 = torch.as_tensor(Vc + 0.01 * rng.standard_normal(Vc.shape)).requires_grad_(True)
    kw = dict(n=5, T=3, tau=0.3)
    el.rl_objective(batch, P0, V0, lay, **kw).backward()
    h = 1e-5
    for _ in range(3):
        dP, dV = (torch.as_tensor(rng.standard_normal(Pc.shape)) for _ in range(2))
        with torch.no_grad():
            fp = float(el.rl_objective(batch, P0 + h * dP, V0 + h * dV, lay, **kw))
            fm = float(el.rl_objective(batch, P0 - h * dP, V0 - h * dV, lay, **kw))
        fd = (fp - fm) / (2 * h)
        ad = float((P0.grad * dP).sum() + (V0.grad * dV).sum())
        assert abs(ad - fd) / abs(ad) < 1e-6


def test_make_batch_rejects_bad_input():
    rng = np.random.default_rng(0)
    mdp = lt.random_mdp(2, 2, 0.5, rng, reward="sas")
    with pytest.raises(ValueError, match="r\\[s, a\\]"):
        el.make_batch([mdp], [lt.random_features(2, 2, None, rng)], [np.zeros(4)])
    with pytest.raises(ValueError, match="equal non-zero"):
        el.make_batch([], [], [])
    with pytest.raises(ValueError, match="horizon"):
        b, _ = _batch(0, 1)
        el.rl_objective(
            b, torch.zeros(14, 14), torch.zeros(14, 14), lt.Layout(4), n=2, T=1, tau=1.0, horizon="x"
        )


# ------------------------------------------------------------------------------------------------
# metrics
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("c, alpha", [(1.0, 0.2), (-2.5, 0.7), (0.3, 3.0)])
def test_s3_alignment_on_the_construction(c, alpha):
    lay = lt.Layout(4)
    P, V = constructions.sarsa(4, alpha, c)
    row = pt.s3_alignment(P, V, lay, alpha)
    assert row["cos_S3_effective"] == pytest.approx(1.0, abs=1e-14)
    assert row["cos_S3_full"] == pytest.approx(1.0, abs=1e-14)
    assert row["alpha_eff"] == pytest.approx(alpha, rel=1e-13)
    assert row["cos_S3_fixed_alpha"] == pytest.approx(1.0, abs=1e-12)
    neg = pt.s3_alignment(P, -V, lay)
    assert neg["cos_S3_effective"] == pytest.approx(-1.0, abs=1e-14) and neg["alpha_eff"] < 0
    # an entry outside the (L2) blocks lowers only the full cosine
    P2 = P.copy()
    P2[0, 0] = 3.0
    r2 = pt.s3_alignment(P2, V, lay)
    assert r2["cos_S3_effective"] == pytest.approx(1.0, abs=1e-14) and r2["cos_S3_full"] < 0.99


def test_s3_alignment_of_a_random_block_is_small():
    lay = lt.Layout(9)
    rng = np.random.default_rng(1)
    row = pt.s3_alignment(*rng.standard_normal((2, lay.D, lay.D)), lay)
    assert abs(row["cos_S3_effective"]) < 0.2


def test_update_agreement_of_scaled_constructions():
    spec = dy.TeacherSpec(S=2, A=2, alpha=0.2, k=3, frames=3)
    held = dy.teacher_dataset(spec, np.random.default_rng(0))
    lay = spec.layout
    one = pt.update_agreement(*constructions.sarsa(4, 0.2, 1.7), held)
    assert one["update_corr_sarsa"] == pytest.approx(1.0, abs=1e-12)
    assert one["update_scale_sarsa"] == pytest.approx(1.0, abs=1e-12)
    assert one["heldout_teacher_err"] < 1e-13
    for key in ("td_coef_reward", "td_coef_bootstrap", "td_coef_value"):
        assert one[key] == pytest.approx(0.2, rel=1e-10)
    assert one["td_fit_r2"] == pytest.approx(1.0, abs=1e-12)
    assert one["update_cubic_share"] == 0.0
    P, V = constructions.sarsa(4, 0.2)
    P[4:8, 10:] = 0.0  # drop the bootstrap rows (gamma phi^+ -> w) of P12*
    nob = pt.update_agreement(P, V, held)
    assert nob["td_coef_bootstrap"] == pytest.approx(0.0, abs=1e-10)
    assert nob["td_coef_reward"] == pytest.approx(0.2, rel=1e-10)
    two = pt.update_agreement(*constructions.sarsa(4, 0.4), held)
    assert two["update_scale_sarsa"] == pytest.approx(2.0, rel=1e-12)
    assert two["update_cos_sarsa"] == pytest.approx(1.0, abs=1e-12)
    rnd = pt.update_agreement(*np.random.default_rng(1).standard_normal((2, lay.D, lay.D)), held)
    assert abs(rnd["update_corr_sarsa"]) < 0.9
    # only the cubic (L2) term: share 1; the construction plus a cubic term: strictly between
    Pq, Vq = np.random.default_rng(2).standard_normal((2, lay.D, lay.D))
    Vq[: lay.m + 1] = 0.0
    Vq[:, : lay.m] = 0.0
    assert pt.update_agreement(Pq, Vq, held)["update_cubic_share"] == pytest.approx(1.0, abs=1e-14)
    Pc, Vc = constructions.sarsa(4, 0.2)
    mix = pt.update_agreement(Pc + Pq, Vc + Vq, held)["update_cubic_share"]
    assert 0.0 < mix < 1.0


def test_paired_ci():
    """The (P3) interval, experiments.stats.paired_ci: a diverged (NaN) loop is scored 0 and
    counted, never dropped."""
    a = np.array([1.0, 2.0, 3.0, np.nan])
    b = np.array([0.0, 1.0, 1.0, 5.0])
    ci = stats.paired_ci(a, b)
    d = np.array([1.0, 1.0, 2.0, -5.0])
    sem = d.std(ddof=1) / np.sqrt(4)
    assert ci["n"] == 4 and ci["n_diverged_a"] == 1 and ci["mean"] == pytest.approx(d.mean())
    assert ci["sem"] == pytest.approx(sem)
    assert ci["ci_high"] - ci["mean"] == pytest.approx(3.182446305284263 * sem)


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # the diverging block, on purpose
def test_evaluation_counts_every_diverged_loop():
    """Issue 18 item 5: a block whose loop diverges on some held-out MDPs keeps those MDPs in its
    mean (scored 0), counts them per block, and the paired interval runs over all of them."""
    cfg = _tiny(heldout_k=6, curve_updates=8, eval_every=2, T=8)
    Pc, Vc = cfg.alg.construction_blocks(cfg.dims, cfg.hyper)
    R1, R2 = np.random.default_rng(0).standard_normal((2, *Pc.shape))
    ev = pt.evaluate_blocks(cfg, {"wild": (Pc + R1, Vc + R2), "exact": "teacher"})
    at_T, e = ev["_arrays"]["wild/at_T"], ev["entries"]["wild"]
    n_div = int(np.sum(np.isnan(at_T)))
    assert 0 < n_div < cfg.heldout_k and e["n_diverged"] == n_div and e["diverged_score"] == 0.0
    counted = np.where(np.isnan(at_T), 0.0, at_T)
    assert e["heldout_return"] == pytest.approx(counted.mean(), abs=1e-15)
    assert e["heldout_return_sem"] == pytest.approx(counted.std(ddof=1) / np.sqrt(cfg.heldout_k), rel=1e-13)
    p = ev["paired"]["at_T"]["wild-exact"]
    assert p["n"] == cfg.heldout_k and p["n_diverged_a"] == n_div and p["n_diverged_b"] == 0
    exact = ev["_arrays"]["exact/at_T"]
    assert p["mean"] == pytest.approx(np.mean(counted - exact), abs=1e-15)
    assert ev["entries"]["exact"]["n_diverged"] == 0 and ev["diverged_score"] == 0.0
    # the figures' bands count them too: a loop scores 0 from its divergence on
    from lsa_theory.experiments.pretrain.plots import curve_band

    curves = ev["_arrays"]["wild/curves"]
    m, s, n = curve_band(curves)
    assert n == int(np.isnan(curves[:, -1]).sum()) > 0
    np.testing.assert_allclose(m, np.nan_to_num(curves, nan=0.0).mean(axis=0), rtol=0, atol=1e-15)
    np.testing.assert_allclose(s, np.nan_to_num(curves, nan=0.0).std(axis=0, ddof=1) / np.sqrt(6), rtol=1e-13)


def test_softmax_deploy_constructed_equals_teacher():
    mdp = lt.random_mdp(2, 2, 0.5, np.random.default_rng(0))
    kw = dict(n=5, n_updates=6, tau=0.3, alpha=0.2)
    a = pt.softmax_deploy(mdp, "constructed", rng=np.random.default_rng(1), **kw)
    b = pt.softmax_deploy(mdp, "teacher", rng=np.random.default_rng(1), **kw)
    np.testing.assert_allclose(a, b, atol=1e-12)
    assert a.shape == (7,)


# ------------------------------------------------------------------------------------------------
# training and the command
# ------------------------------------------------------------------------------------------------


def test_train_rl_resume_is_bit_for_bit(tmp_path):
    cfg = _tiny(batch_mdps=8)
    full = pt.train_rl(cfg, tmp_path / "a")
    part = pt.train_rl(cfg, tmp_path / "b", stop_at=1)  # mid-epoch: the minibatch order matters
    assert not part.finished
    rest = pt.train_rl(cfg, tmp_path / "b")
    assert rest.finished
    # the start stays the start: P0, V0 are the initial block, whenever the run stopped
    np.testing.assert_array_equal(full.P0, part.P0)
    np.testing.assert_array_equal(full.V0, part.V0)
    assert not np.array_equal(full.P0, full.P)
    np.testing.assert_array_equal(full.P, rest.P)
    np.testing.assert_array_equal(full.V, rest.V)
    assert full.history["objective"] == rest.history["objective"]
    assert full.final["frozen_moved"] == 0.0
    with pytest.raises(ValueError, match="another configuration"):
        pt.train_rl(cfg.replace(lr=0.5), tmp_path / "a")


def test_train_rl_raises_the_objective():
    cfg = _tiny(steps=15, lr=3e-2, k=32)
    res = pt.train_rl(cfg)
    assert res.final["objective"] > res.history["objective"][0] + 0.05


def test_config_validation():
    with pytest.raises(ValueError, match="horizon"):
        _tiny(horizon="best")
    with pytest.raises(ValueError, match="tau"):
        _tiny(tau=0.0)
    with pytest.raises(ValueError, match="mode"):
        pc.run_pretrain(_tiny(), mode="imitate")
    with pytest.raises(ValueError, match="eval_updates"):
        pt.evaluate_blocks(_tiny(eval_updates=3), {"c": "constructed"})


def test_pretrain_cli_contract(monkeypatch, capsys, tmp_path, figures):
    from lsa_theory import cli

    monkeypatch.setattr(pt.PretrainConfig, "quick", classmethod(lambda cls: _tiny()))
    code = cli.main(["pretrain", "--mode", "both", "--quick", "--json", "--out", str(tmp_path)])
    doc = json.loads(capsys.readouterr().out)
    for name in ("rl", "teacher", "constructed"):
        for key in pt.ENTRY_FIELDS:
            assert key in doc[name], (name, key)
    assert "initial_heldout_return" in doc["rl"]
    assert doc["provenance"]["config_hash"] and "blas_threads" in doc["provenance"]  # issue 13
    assert doc["rl"]["reference_update"] == "sarsa" and doc["config"]["algo"] == "sarsa"
    assert code == (0 if doc["passed"] else 1)
    assert doc["constructed"]["cos_S3_effective"] == pytest.approx(1.0)
    assert doc["paired"]["at_T"]["constructed-exact"]["mean"] == pytest.approx(0.0, abs=1e-12)
    for fig in ("pretrain_returns.png", "pretrain_training.png", "pretrain_blocks.png"):
        assert (tmp_path / fig).exists()
    # issue 13 (plots): bands say they are s.e.m. over the held-out MDPs; heatmaps are labelled
    assert figures.assert_error_bars_labelled(figures["pretrain_returns.png"]) == 1
    assert figures.assert_heatmaps_labelled(figures["pretrain_blocks.png"]) == 4
    # the seeds document and figure (issue 18): every run kept, a failed one as a row
    from lsa_theory.experiments.pretrain.compare import seeds_document

    seeds = seeds_document([tmp_path, tmp_path / "missing"], "tiny", tmp_path / "seeds.json")
    run, failed = seeds["runs"]
    assert failed == {"source": "missing", "failed": "no pretrain.json: the (P2) training did not finish"}
    assert run["paired"] == doc["paired"]["at_T"] and run["rl"]["n_diverged"] == doc["rl"]["n_diverged"]
    assert len(run["curves"]["rl"]["mean"]) == len(run["updates"]) and run["history"]["step"]
    assert figures.assert_error_bars_labelled(figures["seeds.png"]) == 1


def test_pretrain_sweep_figure_labels_its_error_bars(tmp_path, figures):
    """Issue 13 (plots), the (P3) sweep figure from a saved sweep document: its error bars are
    labelled as standard errors over the held-out MDPs."""
    from pathlib import Path

    src = Path(__file__).resolve().parents[2] / "docs" / "figures" / "pretrain-quick_sweep.json"
    (tmp_path / "pretrain_sweep.json").write_text(src.read_text())
    pt.plot_sweep(tmp_path)
    fig = figures["pretrain_sweep.png"]
    assert figures.assert_error_bars_labelled(fig) == 2
    n_held = str(json.loads(src.read_text())["base"]["heldout_k"])
    assert all(n_held in ax.get_ylabel() for ax in fig.axes[:2])  # the two return panels


@pytest.mark.slow
def test_score_function_estimate_agrees_with_the_smooth_gradient():
    """Cross-check (measured cosine 0.999, split-half 0.998): the score-function gradient of the
    sampled softmax loop (100 loops per MDP) points along the expected-context gradient."""
    batch, mdps = el.draw_batch(4, 2, 2, 0.5, np.random.default_rng(3))
    lay = lt.Layout(4)
    Pc, Vc = constructions.sarsa(4, 0.5)
    r = np.random.default_rng(4)
    P = torch.as_tensor(Pc + 0.05 * r.standard_normal(Pc.shape))
    V = torch.as_tensor(Vc + 0.05 * r.standard_normal(Vc.shape))
    kw = dict(n=20, T=3, tau=0.5)
    Pg, Vg = P.clone().requires_grad_(True), V.clone().requires_grad_(True)
    el.rl_objective(batch, Pg, Vg, lay, **kw).backward()
    g = torch.cat([Pg.grad.ravel(), Vg.grad.ravel()])
    gP, gV, _ = el.score_function_gradient(
        batch, mdps, P, V, lay, samples=100, rng=np.random.default_rng(5), **kw
    )
    gs = torch.cat([gP.ravel(), gV.ravel()])
    assert float(gs @ g / (gs.norm() * g.norm())) > 0.99


# ------------------------------------------------------------------------------------------------
# the actor-critic layout (A1)-(A5): d = S, d_pi = S A, state-value critic
# ------------------------------------------------------------------------------------------------

AC = "actor_critic"


def _ac_batch(seed: int, K: int = 2, S: int = 2, A: int = 2, lam_scale: float = 1.0):
    """An actor-critic batch and a loop parameter ``v = [w_0; lambda]`` with a non-zero actor."""
    batch, mdps = el.draw_batch(K, S, A, 0.5, np.random.default_rng(seed), algo=AC)
    lam = lam_scale * torch.as_tensor(np.random.default_rng(seed + 1).standard_normal((K, batch.d_pi)))
    return batch, mdps, torch.cat([batch.w0, lam], dim=1)


def _ac_reference(mdp, batch, k, v, rho, n):
    d = batch.d
    return el.expected_sigma_reference(
        mdp, batch.phi[k].numpy(), v[k, :d].numpy(), rho, n, 1.0, batch.phi_pi[k].numpy(), v[k, d:].numpy()
    )


def test_ac_batch_draws_the_declarations_tables():
    batch, mdps, _ = _ac_batch(0, 3, 3, 2)
    assert (batch.d, batch.d_pi) == (3, 6) and batch.alg.name == AC
    # the state-value critic's table psi(s) is repeated over actions; lambda_0 = 0 (deploy's start)
    np.testing.assert_array_equal(batch.phi[:, :, 0], batch.phi[:, :, 1])
    assert not batch.lam0.any()
    # the same draws as experiments.control.deploy from the same stream
    from lsa_theory.experiments.control import deploy

    rng = np.random.default_rng(4)
    phi, phi_pi, w0, lam0 = el.draw_task(AC, 3, 2, np.random.default_rng(4))
    res = deploy(mdps[0], "teacher", n=3, n_updates=1, epsilon=0.1, alpha=0.2, rng=rng, eval_every=1, algo=AC)
    np.testing.assert_array_equal(res.ws[0], w0)
    np.testing.assert_array_equal(res.lams[0], lam0)


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), S=st.integers(2, 3), A=st.integers(2, 3), n=st.integers(1, 7))
@example(seed=0, S=2, A=2, n=1)
def test_ac_matvec_equals_enumeration(seed, S, A, n):
    batch, mdps, v = _ac_batch(seed, 2, S, A)
    rng = np.random.default_rng(seed)
    rho = torch.as_tensor(rng.dirichlet(np.ones(S), size=2))
    pi = el.behaviour_policy(batch, v, 0.3)
    G = batch.alg.smooth_extra_rows(batch.phi_pi, pi)
    rb, rp, _ = el.context_laws(batch, pi, rho, n)
    U = torch.as_tensor(rng.standard_normal((2, 2 * batch.d + 1 + batch.d_pi)))
    mv = el.expected_sigma_matvec(batch, pi, rb, rp, U, G).numpy()
    for k in range(2):
        ref = _ac_reference(mdps[k], batch, k, v, rho[k].numpy(), n)
        np.testing.assert_allclose(mv[k], ref @ U[k].numpy(), rtol=0, atol=1e-13)


def test_ac_expected_sigma_is_the_mean_of_sampled_contexts():
    """Monte Carlo over sampled (A5) contexts (lsa_theory.actor_critic_context, pi_lambda and the
    score g_i at lambda): every entry of the mean sampled Sigma within 4.5 standard errors of the
    enumerated E[Sigma] (observed max |z| 2.7)."""
    batch, mdps, v = _ac_batch(11, 1, 2, 2)
    mdp, d = mdps[0], batch.d
    phi, phi_pi, lam = batch.phi[0].numpy(), batch.phi_pi[0].numpy(), v[0, d:].numpy()
    n, N, rho = 4, 4000, np.array([0.8, 0.2])
    ref = _ac_reference(mdp, batch, 0, v, rho, n)
    rng = np.random.default_rng(12)
    acc, acc2 = np.zeros_like(ref), np.zeros_like(ref)
    for _ in range(N):
        X, g, _ = lt.actor_critic_context(mdp, phi, phi_pi, lam, n, rng, int(rng.random() > rho[0]))
        x = np.concatenate([X, g], axis=0)
        Sg = x @ x.T / n
        acc += Sg
        acc2 += Sg**2
    mean = acc / N
    se = np.sqrt(np.maximum(acc2 / N - mean**2, 1e-30) / N)
    assert np.max(np.abs(mean - ref) / se) < 4.5


def test_ac_expected_step_is_the_l2_readout_and_the_teacher():
    """One expected step on the (A1) layout equals (L2) on the enumerated E[Sigma] for random full
    (P, V); with (A3) it is the (A2) teacher applied to E[Sigma], written out row by row."""
    batch, mdps, v = _ac_batch(2, 2, 3, 2)
    lay = lt.Layout(batch.d, batch.d_pi)
    d, n = batch.d, 3
    rng = np.random.default_rng(2)
    P, V = rng.standard_normal((2, lay.D, lay.D)) * 0.3
    v1, _ = el.expected_step(batch, torch.as_tensor(P), torch.as_tensor(V), lay, v, batch.mu0, n, 1.0)
    Pc, Vc = constructions.actor_critic(d, batch.d_pi, 0.2, 0.1)
    vc, _ = el.expected_step(batch, torch.as_tensor(Pc), torch.as_tensor(Vc), lay, v, batch.mu0, n, 1.0)
    for k in range(2):
        Sig = _ac_reference(mdps[k], batch, k, v, mdps[k].mu0, n)
        vk = v[k].numpy()
        ref = lt.tf_from_statistics(Sig, np.concatenate([[1.0], vk]), P, V, n, lay)
        np.testing.assert_allclose(v1[k].numpy(), ref, rtol=0, atol=1e-13)
        w = vk[:d]
        td = Sig[:, 2 * d] + Sig[:, d : 2 * d] @ w - Sig[:, :d] @ w  # E[(1/n) sum x_i delta_i]
        np.testing.assert_allclose(vc[k, :d].numpy(), w + 0.2 * td[:d], rtol=0, atol=1e-13)
        np.testing.assert_allclose(vc[k, d:].numpy(), vk[d:] + 0.1 * td[lay.g], rtol=0, atol=1e-13)


def test_ac_smooth_return_is_the_actors_exact_return_and_starts_at_zero():
    batch, mdps, v = _ac_batch(4, 3, 3, 2)
    got = el.softmax_return(batch, v, 0.3).numpy()
    for k, mdp in enumerate(mdps):
        pi = lt.softmax_policy(batch.phi_pi[k].numpy(), v[k, batch.d :].numpy())
        assert got[k] == pytest.approx(lt.normalized_return(mdp, pi), abs=1e-13)
    # lambda_0 = 0 is the uniform actor: normalised return exactly 0 before any update
    lay = lt.Layout(batch.d, batch.d_pi)
    Z = torch.zeros(lay.D, lay.D, dtype=torch.float64)
    assert float(el.rl_objective(batch, Z, Z, lay, n=3, T=2, tau=0.3).abs()) < 1e-15


@pytest.mark.parametrize("algo", [AC, "actor_critic_q"])
def test_ac_smooth_objective_gradient_matches_finite_differences(algo):
    """(P2) smooth form on the actor-critic layout: autograd gradient of R(theta) in all D x D
    entries of P and V against central differences (h = 1e-5), relative error below 1e-6."""
    batch, _ = el.draw_batch(3, 2, 2, 0.5, np.random.default_rng(7), algo=algo)
    lay = lt.Layout(batch.d, batch.d_pi)
    D = lay.D
    Pc, Vc = constructions.actor_critic(batch.d, batch.d_pi, 0.5, 0.5)
    g, g_fd = _objective_grads(batch, lay, Pc, Vc, dict(n=4, T=3, tau=1.0, horizon="final"))
    assert np.linalg.norm(g - g_fd) / np.linalg.norm(g) < 1e-6
    Pg, Vg = g[: D * D].reshape(D, D), g[D * D :].reshape(D, D)
    assert not np.any(Pg[:, : lay.m]) and not np.any(Vg[: lay.m + 1])
    # the actor rows of V receive gradient: the return depends on lambda_T
    assert np.abs(Vg[lay.lam]).max() > 1e-6


def test_layout_mismatch_is_an_error():
    batch, _, _ = _ac_batch(0)
    Z = torch.zeros(14, 14, dtype=torch.float64)
    with pytest.raises(ValueError, match="layout"):
        el.rl_objective(batch, Z, Z, lt.Layout(4), n=2, T=1, tau=1.0)
    with pytest.raises(ValueError, match="phi_pis"):
        el.make_batch(
            [lt.random_mdp(2, 2, 0.5, np.random.default_rng(0))],
            [np.zeros((2, 2, 2))],
            [np.zeros(2)],
            algo=AC,
        )
    with pytest.raises(ValueError, match="algo"):
        el.draw_batch(1, 2, 2, 0.5, np.random.default_rng(0), algo="td_nope")
    with pytest.raises(ValueError, match="algo"):
        _tiny(algo="nope")
    with pytest.raises(ValueError, match="layout"):
        pt.s3_alignment(np.zeros((14, 14)), np.zeros((14, 14)), lt.Layout(4), algo=AC)
    with pytest.raises(ValueError, match="d_pi = 0"):
        el.score_function_gradient(
            batch, [], Z, Z, lt.Layout(2, 4), n=2, T=1, tau=1.0, samples=2, rng=np.random.default_rng(0)
        )


@pytest.mark.parametrize("c, alpha, beta", [(1.0, 0.2, 0.1), (-2.5, 0.7, 1.3), (0.3, 3.0, 0.05)])
def test_a3_alignment_on_the_construction(c, alpha, beta):
    lay = lt.Layout(2, 4)
    P, V = constructions.actor_critic(2, 4, alpha, beta, c)
    row = pt.s3_alignment(P, V, lay, alpha, AC, beta)
    assert row["cos_S3_effective"] == pytest.approx(1.0, abs=1e-14)
    assert row["cos_S3_full"] == pytest.approx(1.0, abs=1e-14)
    assert row["alpha_eff"] == pytest.approx(alpha, rel=1e-13)
    assert row["beta_eff"] == pytest.approx(beta, rel=1e-13)
    assert row["cos_S3_fixed_alpha"] == pytest.approx(1.0, abs=1e-12)
    neg = pt.s3_alignment(P, -V, lay, algo=AC)
    assert neg["cos_S3_effective"] == pytest.approx(-1.0, abs=1e-14) and neg["beta_eff"] < 0
    # the SARSA construction's direction in the actor layout: no actor rows, cosine below 1
    Pn, Vn = P.copy(), V.copy()
    Vn[lay.lam] = 0.0
    part = pt.s3_alignment(Pn, Vn, lay, algo=AC)
    assert part["beta_eff"] == 0.0 and part["cos_S3_effective"] == pytest.approx(1.0, abs=1e-14)
    # a fixed-alpha/beta orbit cosine sees the missing actor step
    assert pt.s3_alignment(Pn, Vn, lay, alpha, AC, beta)["cos_S3_fixed_alpha"] < 1 - 1e-4


def test_update_agreement_of_the_actor_critic_construction():
    spec = dy.TeacherSpec(algorithm=AC, S=2, A=2, alpha=0.2, beta=0.1, k=3, frames=3)
    held = dy.teacher_dataset(spec, np.random.default_rng(0))
    one = pt.update_agreement(*constructions.actor_critic(2, 4, 0.2, 0.1, 1.7), held)
    for key in ("update_corr_sarsa", "update_corr_critic", "update_corr_actor", "update_scale_actor"):
        assert one[key] == pytest.approx(1.0, abs=1e-12), key
    for key in ("td_coef_reward", "td_coef_bootstrap", "td_coef_value"):
        assert one[key] == pytest.approx(0.2, rel=1e-9)
    for key in ("actor_coef_reward", "actor_coef_bootstrap", "actor_coef_value"):
        assert one[key] == pytest.approx(0.1, rel=1e-9)
    assert one["actor_coef_sharpen"] == pytest.approx(0.0, abs=1e-9)
    assert one["actor_fit4_r2"] == pytest.approx(1.0, abs=1e-12)
    # a block that flips the actor's step: actor correlation -1, critic still +1
    P, V = constructions.actor_critic(2, 4, 0.2, 0.1)
    V[spec.layout.lam] *= -1
    flip = pt.update_agreement(P, V, held)
    assert flip["update_corr_actor"] == pytest.approx(-1.0, abs=1e-12)
    assert flip["update_corr_critic"] == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("algo", ["sarsa", AC])
def test_heldout_mdps_are_not_training_mdps(algo):
    cfg = _tiny(algo=algo, k=64, heldout_k=20)
    train, _ = pt.training_batch(cfg)
    held, _ = pt.heldout_batch(cfg)
    diff = (train.P[:, None] - held.P[None]).abs().flatten(2).max(dim=-1).values
    assert float(diff.min()) > 1e-3
    assert held.algo == train.algo == algo


def test_ac_evaluation_scores_the_greedy_actor_on_the_deployed_loop():
    """The held-out return of the exact (A2) teacher is the greedy normalised return of
    experiments.control.deploy at T on stream heldout_rng(seed, i, 1) (not the behaviour's), and
    the construction (A3) scores the same."""
    from lsa_theory.experiments.control import deploy
    from lsa_theory.experiments.envs import heldout_rng

    cfg = _tiny(algo=AC, n=8, heldout_k=4)
    ev = pt.evaluate_blocks(cfg, {"constructed": "constructed", "exact": "teacher"})
    arr = ev["_arrays"]
    _, mdps = pt.heldout_batch(cfg)
    greedy, behaviour = [], []
    for i, mdp in enumerate(mdps):
        r = deploy(mdp, "teacher", n=8, n_updates=cfg.T, epsilon=0.1, alpha=0.2, beta=0.1,
                   rng=heldout_rng(cfg.seed, i, 1), eval_every=cfg.T, algo=AC)  # fmt: skip
        greedy.append(r.normalized_return[-1])
        behaviour.append(r.normalized_return_behaviour[-1])
    np.testing.assert_allclose(arr["exact/at_T"], greedy, rtol=0, atol=1e-12)
    assert np.max(np.abs(np.array(greedy) - np.array(behaviour))) > 1e-3  # the two policies differ
    np.testing.assert_allclose(arr["constructed/at_T"], arr["exact/at_T"], atol=1e-12)
    assert ev["entries"]["exact"]["reference_update"] == AC
    assert ev["entries"]["constructed"]["cos_S3_effective"] == pytest.approx(1.0)
    assert ev["entries"]["constructed"]["update_corr_actor"] == pytest.approx(1.0)


def test_ac_train_rl_raises_the_objective_and_resumes(tmp_path):
    cfg = _tiny(algo=AC, steps=15, lr=1e-1, k=32, batch_mdps=16, checkpoint_every=5)
    res = pt.train_rl(cfg, tmp_path / "a")
    assert res.final["objective"] > res.history["objective"][0] + 0.05
    assert res.final["frozen_moved"] == 0.0 and res.P.shape == (16, 16)
    part = pt.train_rl(cfg, tmp_path / "b", stop_at=7)
    rest = pt.train_rl(cfg, tmp_path / "b")
    np.testing.assert_array_equal(res.P, rest.P)
    np.testing.assert_array_equal(res.V, rest.V)
    assert not part.finished and rest.finished
    assert json.loads((tmp_path / "a" / "rl.json").read_text())["config"]["algo"] == AC


def test_pretrain_cli_actor_critic(monkeypatch, capsys, tmp_path):
    from lsa_theory import cli

    monkeypatch.setattr(pt.PretrainConfig, "quick", classmethod(lambda cls: _tiny()))
    argv = ["pretrain", "--algo", AC, "--mode", "both", "--quick", "--json", "--out", str(tmp_path)]
    code = cli.main(argv)
    doc = json.loads(capsys.readouterr().out)
    for name in ("rl", "teacher", "constructed"):
        for key in (*pt.ENTRY_FIELDS, "reference_update"):
            assert key in doc[name], (name, key)
        assert doc[name]["reference_update"] == AC
    assert "initial_heldout_return" in doc["rl"]
    assert doc["provenance"]["config_hash"] and "blas_threads" in doc["provenance"]  # issue 13
    assert doc["config"]["algo"] == AC and doc["reference_update"] == AC
    assert code == (0 if doc["passed"] else 1)
    assert doc["constructed"]["cos_S3_effective"] == pytest.approx(1.0)
    assert doc["constructed"]["beta_eff"] == pytest.approx(0.1)
    assert doc["paired"]["at_T"]["constructed-exact"]["mean"] == pytest.approx(0.0, abs=1e-12)
    assert (tmp_path / "pretrain_blocks.png").exists()


def test_sweep_records_a_failed_run_and_goes_on(monkeypatch, tmp_path):
    calls = []

    def fake(cfg, mode, out, teacher_out):
        calls.append((cfg.T, cfg.k))
        if cfg.T == 2:
            raise pt.TrainingDiverged("train_rl: 50 consecutive non-finite (P2) objectives at step 3")
        doc = {
            n: {"heldout_return": 0.1, "heldout_return_sem": 0.01, "n_diverged": 0}
            for n in ("rl_initial", "constructed", "exact")
        }
        keys = ("cos_S3_effective", "cos_S3_full", "alpha_eff", "update_corr_sarsa")
        doc["rl"] = {
            "heldout_return": 0.2,
            "heldout_return_sem": 0.01,
            "n_diverged": 1,
            "train_objective": 0.3,
            "heldout_objective": 0.2,
        }
        doc["rl"] |= dict.fromkeys(keys, 0.5)
        doc["teacher"] = {"heldout_return": 0.1, "heldout_return_sem": 0.01, "update_corr_sarsa": 1.0}
        doc["teacher"]["n_diverged"] = 0
        ci = {"mean": 0.1, "sem": 0.01, "ci_low": 0.0, "ci_high": 0.2, "n": 5}
        doc["paired"] = {"at_T": {"rl-teacher": ci, "rl-rl_initial": ci, "rl-exact": ci}}
        return doc

    monkeypatch.setattr(pc, "run_pretrain", fake)
    doc = pc.pretrain_sweep(_tiny(), Ts=(1, 2), ks=(8,), out=tmp_path)
    assert calls == [(1, 16), (2, 16), (2, 8)]
    assert [("failed" in r) for r in doc["rows"]] == [False, True, True]
    assert json.loads((tmp_path / "pretrain_sweep.json").read_text())["rows"][1]["failed"].startswith(
        "train_rl"
    )
    assert (tmp_path / "pretrain_sweep.png").exists()
    assert doc["rows"][0]["rl_n_diverged"] == 1 and doc["rows"][0]["exact_n_diverged"] == 0


def test_resume_keeps_the_skip_streak(monkeypatch, tmp_path):
    """A run that stops after MAX_SKIPS consecutive non-finite steps stops at the same step when
    resumed from a checkpoint taken inside the streak."""
    monkeypatch.setattr(pretrain_train, "MAX_SKIPS", 3)
    real = pt.rl_loss

    def loss(cfg, batch, P, V):
        return real(cfg, batch, P, V) * (float("nan") if float(P.detach().abs().sum()) > 0 else 1.0)

    monkeypatch.setattr(pretrain_train, "rl_loss", loss)
    cfg = _tiny(steps=10, checkpoint_every=2, log_every=1)
    with pytest.raises(RuntimeError, match="at step 2"):
        pt.train_rl(cfg, tmp_path / "a")
    with pytest.raises(RuntimeError, match="at step 2"):
        pt.train_rl(cfg, tmp_path / "a")  # resumes from the checkpoint at step 2, streak 2


def test_pretrain_cli_reports_a_failed_training_in_one_line(monkeypatch, capsys):
    """A (P2) run whose training diverges (MAX_SKIPS non-finite steps in a row) is a failed run:
    one line on stderr, exit code 1 and, with --json, a document saying so with its provenance;
    not a traceback."""
    from lsa_theory import cli

    def diverge(cfg, mode, out, teacher_out=None):
        raise pt.TrainingDiverged("train_rl: 50 consecutive non-finite (P2) objectives at step 7")

    monkeypatch.setattr(pt.PretrainConfig, "quick", classmethod(lambda cls: _tiny()))
    monkeypatch.setattr(pc, "run_pretrain", diverge)
    assert cli.main(["pretrain", "--quick", "--json", "--seed", "3"]) == 1
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert doc["passed"] is False and doc["failed"].endswith("at step 7")
    assert doc["config"]["seed"] == 3 and doc["provenance"]["seed"] == 3
    assert captured.err.strip().count("\n") == 0 and "training failed" in captured.err
