"""Heads and an attention function in (P2): the score-function route on sampled loops
(:func:`lsa_theory.experiments.pretrain.expected_loop.score_function_gradient` with ``attention``),
its identity case, a negative control, and the refusal of the expected-context loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import lsa_theory as lt
from lsa_theory import constructions
from lsa_theory.experiments import pretrain as pt
from lsa_theory.experiments.pretrain import expected_loop as el

# Round-off of the identity case. The (L1) readout of the raw prompt and (L2) of Sigma = X X^T / n
# form the same sums of n products (entries of size <= c = 1 + max|w| ~ 2 here) in another order:
# per update a relative difference <= ~ 2 m n eps (m = 2d + 1 = 9, n = 6: ~ 2.4e-14 at most, ~ 1e-16
# typical), carried over T = 3 updates through the Jacobian of the block (norm ~ 1 + |V||P| ~ 2 at
# the construction plus 0.05 noise) and through the policy into the return and its gradient: a
# worst case ~ 2.4e-14 * 2^3 ~ 2e-13; measured 4e-16. The trajectories coincide (the sampled
# actions compare uniforms against policies equal to ~1e-16). Tolerance 1e-12 relative.
IDENTITY_RTOL = 1e-12

KW = dict(n=6, T=3, tau=0.5, samples=3)


def _setup():
    batch, mdps = el.draw_batch(3, 2, 2, 0.5, np.random.default_rng(3))
    lay = lt.Layout(4)
    Pc, Vc = constructions.sarsa(4, 0.5)
    r = np.random.default_rng(4)
    P = torch.as_tensor(Pc + 0.05 * r.standard_normal(Pc.shape))
    V = torch.as_tensor(Vc + 0.05 * r.standard_normal(Vc.shape))
    return batch, mdps, lay, P, V


def _flat(g):
    return torch.cat([g[0].ravel(), g[1].ravel()])


def _rel(a, b):
    return float((a - b).abs().max() / a.abs().max())


def test_one_linear_head_on_raw_prompts_is_the_l2_route():
    """Identity: one linear head through ``lt.attention_layer`` (mask eye) on the raw prompts gives
    today's (L2) score-function gradient and mean return, on the same draws, to round-off."""
    batch, mdps, lay, P, V = _setup()
    ref = el.score_function_gradient(batch, mdps, P, V, lay, rng=np.random.default_rng(5), **KW)
    got = el.score_function_gradient(
        batch, mdps, P, V, lay, rng=np.random.default_rng(5), attention="linear", **KW
    )
    assert got[0].shape == (1, lay.D, lay.D)
    assert _rel(_flat(ref), _flat(got)) < IDENTITY_RTOL
    assert abs(ref[2] - got[2]) < IDENTITY_RTOL
    # heads add: two linear heads (P, V/2), (P, V/2) are the one head (P, V)
    two = el.score_function_gradient(
        batch, mdps, torch.stack([P, P]), torch.stack([V / 2, V / 2]), lay,
        rng=np.random.default_rng(5), attention="linear", **KW,
    )  # fmt: skip
    assert abs(ref[2] - two[2]) < IDENTITY_RTOL
    # each head's output is V_h (...) P_h: d/dP_h = (1/2) d/dP of the one head, d/dV_h = d/dV
    for h in range(2):
        assert _rel(ref[0] / 2, two[0][h]) < IDENTITY_RTOL and _rel(ref[1], two[1][h]) < IDENTITY_RTOL


@pytest.mark.parametrize("attention", ["softmax", "relu"])
def test_negative_control_nonlinear_heads_change_the_gradient(attention):
    """Negative control: on the same draws a nonlinear head is not the linear block (the identity
    check above would catch a route that ignored ``attention``)."""
    batch, mdps, lay, P, V = _setup()
    ref = el.score_function_gradient(batch, mdps, P, V, lay, rng=np.random.default_rng(5), **KW)
    got = el.score_function_gradient(
        batch, mdps, P, V, lay, rng=np.random.default_rng(5), attention=attention, **KW
    )
    assert _rel(_flat(ref), _flat(got)) > 1e-2


def test_bad_heads_and_attention_are_errors():
    batch, mdps, lay, P, V = _setup()
    with pytest.raises(ValueError, match="attention"):
        el.score_function_gradient(
            batch, mdps, P, V, lay, rng=np.random.default_rng(5), attention="gelu", **KW
        )
    with pytest.raises(ValueError, match="stacks of heads"):
        el.score_function_gradient(
            batch,
            mdps,
            P[None],
            torch.stack([V, V]),
            lay,
            rng=np.random.default_rng(5),
            attention="relu",
            **KW,
        )


def test_config_heads_attention_and_the_expected_loop_refusal():
    base = dict(S=2, A=2, tau=0.1, n=5, T=2, k=8, batch_mdps=None, steps=2, teacher_steps=2, heldout_k=2)
    cfg = pt.PretrainConfig(**base)
    assert cfg.linear_block and "heads" not in cfg.as_dict() and "attention" not in cfg.as_dict()
    soft = pt.PretrainConfig(**base, heads=2, attention="softmax")
    assert soft.as_dict()["heads"] == 2 and soft.as_dict()["attention"] == "softmax"
    with pytest.raises(ValueError, match="sampled loops"):
        pt.train_rl(soft)
    with pytest.raises(ValueError, match="sampled loops"):
        pt.train_rl(pt.PretrainConfig(**base, heads=2, attention="relu"))
    assert pt.PretrainConfig(**base, heads=2).exact_loop  # linear heads: the exact loop (test_pretrain_heads)
    with pytest.raises(ValueError, match="attention"):
        pt.PretrainConfig(**base, attention="gelu")
    with pytest.raises(ValueError, match="heads"):
        pt.PretrainConfig(**base, heads=0)
    with pytest.raises(ValueError, match="SARSA"):
        pt.PretrainConfig(**base, attention="relu", algo="actor_critic")


# ------------------------------------------------------------------------------------------------
# the sampled comparison (lsa_theory.experiments.pretrain.sampled)
# ------------------------------------------------------------------------------------------------


def _tiny_sampled(**changes):
    from lsa_theory.experiments.pretrain import sampled as sp

    base = sp.sampled_config(quick=True).replace(k=8, batch_mdps=2, steps=2, teacher_steps=5, heldout_k=3)
    return base.replace(**changes)


def test_score_heads_is_the_deployment_route():
    """:func:`score_heads` is :func:`deploy` on the held-out MDPs and streams: one linear head gives
    the plain (P, V) block's greedy return bit for bit (the same route, the same arithmetic); a relu
    block with the same (P, V) is another loop (negative control)."""
    from lsa_theory.experiments.control import deploy
    from lsa_theory.experiments.envs import heldout_rng
    from lsa_theory.experiments.pretrain import sampled as sp

    cfg = _tiny_sampled(heldout_k=6)
    _, mdps = pt.heldout_batch(cfg)
    r = np.random.default_rng(0)
    Pc, Vc = constructions.sarsa(4, 0.2)
    P, V = Pc + 0.1 * r.standard_normal(Pc.shape), Vc + 0.1 * r.standard_normal(Vc.shape)
    got = sp.score_heads(cfg, [(P, V)], "linear")
    ref = [
        deploy(
            m, (P, V), n=cfg.n, n_updates=cfg.T_eval, epsilon=cfg.epsilon, alpha=cfg.alpha,
            rng=heldout_rng(cfg.seed, i, 1), eval_every=cfg.T_eval,
        ).normalized_return[-1]
        for i, m in enumerate(mdps)
    ]  # fmt: skip
    assert np.array_equal(got, np.array(ref))
    rel = sp.score_heads(cfg, [(P, V)], "relu")
    assert np.max(np.abs(rel - got)) > 1e-3


def test_score_heads_marks_a_diverged_loop_nan():
    from lsa_theory.experiments.pretrain import sampled as sp

    cfg = _tiny_sampled()
    D = cfg.layout.D
    big = [(1e3 * np.ones((D, D)), 1e3 * np.ones((D, D)))]
    vals = sp.score_heads(cfg, big, "linear")
    assert np.isnan(vals).all()  # compare_sampled scores them DIVERGED_SCORE and counts them


def test_compare_sampled_keeps_every_run(tmp_path):
    import json

    from lsa_theory.experiments.pretrain import sampled as sp

    cfg = _tiny_sampled()
    doc = sp.compare_sampled(
        cfg, models=(("relu", 1), ("linear", 2)), seeds=(0,), samples=2, path=tmp_path / "c.json"
    )
    assert [(r["attention"], r["heads"], r["seed"]) for r in doc["runs"]] == [
        ("relu", 1, 0),
        ("linear", 2, 0),
    ]
    for r in doc["runs"]:
        for b in ("rl", "teacher", "initial"):
            assert r[b]["n_diverged"] >= 0 and r[b]["heldout_return"] is not None
        assert r["rl-teacher"]["n"] == cfg.heldout_k and len(r["rl"]) >= 6
    assert json.loads((tmp_path / "c.json").read_text())["runs"] == doc["runs"]
    with pytest.raises(ValueError, match="SARSA"):
        sp.train_rl_sampled(cfg.replace(algo="actor_critic"))
