"""Linear multi-head blocks in the exact expected-context loop of (P2)
(:func:`lsa_theory.experiments.pretrain.expected_loop.expected_step` with ``P``, ``V`` (H, D, D)).

``H`` linear heads of (L1) (mask ``I_{n+1}``) read out ``sum_h [Vbar21_h Sigma P12_h wt + (1/n)
Vbar22_h wt (wt^T P22_h wt)]``, still affine in ``Sigma``, so ``E[TF(H)] = TF(E[Sigma])`` stays exact.
Checks: one stacked head is today's (D, D) loop bit for bit; two heads equal the
``lsa_theory.attention_layer`` forward of the same block on a raw prompt with the same statistic;
identical heads add; dropping a head is caught; the objective's gradient in every head equals central
differences; ``train_rl`` trains two heads and refuses a nonlinear attention."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import lsa_theory as lt
from lsa_theory import constructions
from lsa_theory.experiments.attention import block_increment, init_heads
from lsa_theory.experiments.pretrain import PretrainConfig, init_start, train_rl
from lsa_theory.experiments.pretrain import expected_loop as el
from lsa_theory.experiments.pretrain.sampled import sampled_config
from lsa_theory.experiments.tables import TABLES

# Round-off of the comparison with the attention_layer forward (float64, eps = 2.2e-16). The raw
# prompt has n = 10 columns X = sqrt(n) U sqrt(L) (zero-padded) from the eigendecomposition of the
# enumerated E[Sigma] (m = 9): X X^T / n reproduces E[Sigma] to ~ m eps |E[Sigma]| (LAPACK's
# backward error), and the enumeration agrees with the matrix-free E[Sigma] u to ~1e-15 relative
# (test_pretrain.py checks 1e-13 absolute). Each entry of one head's update is a sum of at most
# K = m^2 + m D + p^2 = 81 + 126 + 25 products (p = D - m = 5), so a relative error <= ~ 2 K eps
# ~ 1e-13 of the sum of the absolute products, at most ~ |V||P||Sigma||wt|^2 <~ 50 |update| here.
# Worst case ~ 5e-12 of max |update|; measured ~ 1e-15. Tolerance 1e-11 relative to max |update|.
FORWARD_RTOL = 1e-11

# Identical heads against one head with 2 P: doubling is exact in floating point, so the only
# difference is the order of the sum w + a + b + a + b against w + 2a + 2b: <= 4 eps (|w| + 2|a| +
# 2|b|) per entry and step; over T = 3 steps carried through the loop's Jacobian (norm <~ 3 here) and
# the softmax policy: < 1e-13 relative. Tolerance 1e-12 relative.
DOUBLE_RTOL = 1e-12


def _setup(K=3, S=2, A=2, seed=3, scale=0.3):
    batch, mdps = el.draw_batch(K, S, A, 0.5, np.random.default_rng(seed))
    lay = lt.Layout(S * A)
    r = np.random.default_rng(seed + 1)
    P = torch.as_tensor(scale * r.standard_normal((2, lay.D, lay.D)))
    V = torch.as_tensor(scale * r.standard_normal((2, lay.D, lay.D)))
    return batch, mdps, lay, P, V


def _rel(a, b):
    return float((a - b).abs().max() / a.abs().max())


def test_one_stacked_linear_head_is_the_one_head_loop_bit_for_bit():
    """``H = 1``: ``P``, ``V`` (1, D, D) run the same operations as the (D, D) pair (the loop, the
    objective and its gradient are equal bit for bit)."""
    batch, _, lay, P, V = _setup()
    kw = dict(n=4, T=3, tau=0.5)
    ws, rhos = el.expected_loop(batch, P[0], V[0], lay, **kw)
    ws1, rhos1 = el.expected_loop(batch, P[:1], V[:1], lay, **kw)
    assert torch.equal(ws, ws1) and torch.equal(rhos, rhos1)
    grads = []
    for Pa, Va in ((P[0], V[0]), (P[:1], V[:1])):
        Pa, Va = Pa.clone().requires_grad_(True), Va.clone().requires_grad_(True)
        grads.append(torch.autograd.grad(el.rl_objective(batch, Pa, Va, lay, **kw), (Pa, Va)))
    assert torch.equal(grads[0][0], grads[1][0][0]) and torch.equal(grads[0][1], grads[1][1][0])


def _raw_prompt(Sigma: np.ndarray, n: int) -> np.ndarray:
    """(m, n) context columns with ``X X^T / n = Sigma`` (eigendecomposition, zero-padded)."""
    lam, U = np.linalg.eigh(Sigma)
    X = np.sqrt(n) * U * np.sqrt(np.clip(lam, 0.0, None))
    return np.concatenate([X, np.zeros((Sigma.shape[0], n - Sigma.shape[0]))], axis=1)


def _forward_on_raw_prompts(batch, mdps, P, V, lay, n, tau):
    """The block's update through ``lt.attention_layer`` (``block_increment``, mask ``I_{n+1}``) on a
    raw (H) prompt whose statistic is each MDP's enumerated ``E[Sigma]``, (K, d)."""
    heads = [(P[h].numpy(), V[h].numpy()) for h in range(P.shape[0])]
    alg = constructions.closed_loop_algorithm("sarsa")
    out = []
    for k, mdp in enumerate(mdps):
        w0 = batch.w0[k].numpy()
        Sig = el.expected_sigma_reference(mdp, batch.phi[k].numpy(), w0, mdp.mu0, n, tau)
        H = alg.full_prompt(_raw_prompt(Sig, n), None, w0, None)
        out.append(w0 + block_increment(H, heads, "linear", lay.d))
    return np.array(out)


def test_two_linear_heads_equal_the_attention_layer_forward():
    """``H = 2``: one expected step equals the ``lt.attention_layer`` forward of the same two linear
    heads on a raw prompt with the same statistic, to :data:`FORWARD_RTOL` (round-off bound above);
    negative control: the step of the first head alone is far from it (a dropped head is caught)."""
    batch, mdps, lay, P, V = _setup()
    n, tau = 10, 0.5
    ref = _forward_on_raw_prompts(batch, mdps, P, V, lay, n, tau)
    w1, _ = el.expected_step(batch, P, V, lay, batch.w0, batch.mu0, n, tau)
    upd = torch.as_tensor(ref) - batch.w0
    assert _rel(upd, w1 - batch.w0) < FORWARD_RTOL
    one, _ = el.expected_step(batch, P[:1], V[:1], lay, batch.w0, batch.mu0, n, tau)
    assert _rel(upd, one - batch.w0) > 1e-2


def test_identical_heads_add_up_to_one_head_with_doubled_P():
    """Exact algebra: heads ``(P, V), (P, V)`` read out twice the one head's increment, i.e. the one
    head ``(2 P, V)``; over a T-step loop to :data:`DOUBLE_RTOL`."""
    batch, _, lay, P, V = _setup()
    kw = dict(n=4, T=3, tau=0.5)
    two, _ = el.expected_loop(batch, torch.stack([P[0], P[0]]), torch.stack([V[0], V[0]]), lay, **kw)
    one, _ = el.expected_loop(batch, 2 * P[0], V[0], lay, **kw)
    assert _rel(one, two) < DOUBLE_RTOL
    plain, _ = el.expected_loop(batch, P[0], V[0], lay, **kw)  # control: the test can tell heads apart
    assert _rel(one, plain) > 1e-3


def test_two_head_objective_gradient_matches_central_differences():
    """The (P2) objective of two linear heads: the autograd directional derivative along 3 random
    directions of all ``2 x 2 x D^2`` entries equals central differences (h = 1e-5) to 1e-6 relative
    (O(h^2) truncation ~ 1e-9 and round-off ~ eps / h ~ 1e-11 relative, as in test_pretrain.py)."""
    batch, _, lay, P, V = _setup(scale=0.1)
    Pc, Vc = (torch.as_tensor(M) for M in constructions.sarsa(4, 0.5))
    P, V = P + Pc / 2, V + Vc  # near (S3) shared by two heads
    kw = dict(n=4, T=3, tau=0.5)
    Pg, Vg = P.clone().requires_grad_(True), V.clone().requires_grad_(True)
    gP, gV = torch.autograd.grad(el.rl_objective(batch, Pg, Vg, lay, **kw), (Pg, Vg))
    r, h = np.random.default_rng(9), 1e-5
    for _ in range(3):
        dP, dV = (torch.as_tensor(r.standard_normal(P.shape)) for _ in range(2))
        with torch.no_grad():
            up = el.rl_objective(batch, P + h * dP, V + h * dV, lay, **kw)
            dn = el.rl_objective(batch, P - h * dP, V - h * dV, lay, **kw)
        fd = float((up - dn) / (2 * h))
        ad = float((gP * dP).sum() + (gV * dV).sum())
        assert abs(fd - ad) <= 1e-6 * max(abs(ad), 1e-3)


def test_bad_head_stacks_are_errors():
    batch, _, lay, P, V = _setup()
    with pytest.raises(ValueError, match="P, V: expected"):
        el.expected_step(batch, P, V[:1], lay, batch.w0, batch.mu0, 4, 0.5)
    with pytest.raises(ValueError, match="P, V: expected"):
        el.expected_step(batch, P[:, :-1], V[:, :-1], lay, batch.w0, batch.mu0, 4, 0.5)
    with pytest.raises(ValueError, match="P, V: expected"):
        el.expected_step(batch, P[:0], V[:0], lay, batch.w0, batch.mu0, 4, 0.5)


def _tiny(**kw):
    return PretrainConfig.quick().replace(k=32, batch_mdps=16, heldout_k=8, log_every=5, **kw)


def test_train_rl_trains_two_linear_heads_by_the_exact_loop():
    """``train_rl`` on two linear heads: stacked (2, D, D) from the (P1) start of the same block,
    the training objective rises, the frozen blocks stay, (P, V) of the result have the heads' shape."""
    cfg = _tiny(heads=2, steps=20)
    start = init_start(cfg)
    assert start["P"].shape == (2, cfg.layout.D, cfg.layout.D)
    p1 = init_heads(cfg.layout.D, 2, cfg.init_scale, cfg.seed)  # the (P1) start of train_teacher_heads
    for h in range(2):
        assert torch.equal(start["P"][h], p1[h][0].detach()) and torch.equal(start["V"][h], p1[h][1].detach())
    res = train_rl(cfg)
    assert res.P.shape == res.V.shape == (2, cfg.layout.D, cfg.layout.D)
    np.testing.assert_array_equal(res.P0, start["P"].numpy())
    obj = res.history["objective"]
    assert obj[-1] > obj[0] + 0.05
    assert res.final["frozen_moved"] == 0.0
    assert res.config.as_dict()["heads"] == 2


def test_train_rl_refuses_a_nonlinear_attention_and_effective_heads():
    with pytest.raises(ValueError, match="attention: .*sampled loops"):
        train_rl(_tiny(heads=2, attention="softmax", steps=2))
    with pytest.raises(ValueError, match="mode: 2 heads need mode 'full'"):
        _tiny(heads=2, mode="effective")


# ------------------------------------------------------------------------------------------------
# the comparison with what trains, and the command's --heads / --attention
# ------------------------------------------------------------------------------------------------


_QUICK = PretrainConfig.quick()


def _tiny_exact(quick=True):
    return _QUICK.replace(k=16, batch_mdps=8, steps=3, teacher_steps=5, teacher_k=8, heldout_k=3, log_every=3)


_SAMPLED_QUICK = sampled_config(quick=True)


def _tiny_sampled(quick=True):
    return _SAMPLED_QUICK.replace(k=8, batch_mdps=2, steps=2, teacher_steps=5, heldout_k=3)


def test_compare_trained_lists_every_run_with_its_route():
    from lsa_theory.experiments.pretrain import sampled as sp

    doc = sp.compare_trained(
        _tiny_exact().replace(heads=2), _tiny_sampled(), samples=2, models=(("relu", 1),), seeds=(1,)
    )
    assert [(r["route"], r["attention"], r["heads"], r["seed"]) for r in doc["runs"]] == [
        ("exact", "linear", 2, 1),
        ("sampled", "relu", 1, 1),
    ]
    for r in doc["runs"]:
        for key in ("rl", "teacher", "initial", "rl-teacher", "rl-initial"):
            assert key in r
        assert r["rl-initial"]["n"] == 3 and "objective_last" in r["rl"]
    rows = TABLES["pretrain-sampled"](doc).splitlines()
    assert len(rows) == 2 + 2 and rows[0].startswith("| block | (P2) route | seed")
    assert rows[2].startswith("| linear x 2 | exact | 1 |") and rows[3].startswith(
        "| relu x 1 | sampled | 1 |"
    )


@pytest.mark.parametrize(
    "argv, option",
    [
        (["--heads", "0"], "--heads"),
        (["--attention", "gelu"], "--attention"),
        (["--heads", "2", "--sweep"], "--sweep"),
        (["--heads", "2", "--mode", "rl"], "--mode"),
        (["--heads", "2", "--algo", "actor_critic"], "--algo"),
        (["--attention", "relu", "--init", "constructed"], "--init"),
    ],
)
def test_pretrain_command_refuses_bad_heads_options(argv, option, capsys, tmp_path):
    from lsa_theory import cli

    rc = cli.main(["pretrain", "--quick", *argv, "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert (
        rc == 2 and err.startswith(f"lsa-theory pretrain: error: {option}: ") and len(err.splitlines()) == 1
    )
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    "argv, route", [(["--heads", "2"], "exact"), (["--attention", "softmax"], "sampled")]
)
def test_pretrain_command_heads_route(argv, route, monkeypatch, capsys, tmp_path):
    """``--heads 2``: the exact (P2) of two linear heads; ``--attention softmax``: the sampled (P2); each
    against (P1) of the same block, one run written to ``pretrain_heads.json``; exit 0 iff the run's
    (P2) is above its start."""
    import json

    from lsa_theory import cli
    from lsa_theory.experiments.pretrain import sampled as sp

    monkeypatch.setattr(PretrainConfig, "quick", classmethod(lambda cls: _tiny_exact()))
    monkeypatch.setattr(sp, "sampled_config", _tiny_sampled)
    rc = cli.main(["pretrain", "--quick", *argv, "--json", "--out", str(tmp_path)])
    doc = json.loads(capsys.readouterr().out)
    (run,) = doc["runs"]
    attention = "softmax" if route == "sampled" else "linear"
    assert (run["attention"], run.get("route", "sampled")) == (attention, route)
    assert run["heads"] == (2 if route == "exact" else 1) and doc["base"]["heads"] == run["heads"]
    assert rc == (0 if doc["passed"] else 1) and doc["passed"] == (run["rl-initial"]["ci_low"] > 0)
    saved = json.loads((tmp_path / "pretrain_heads.json").read_text())
    assert saved["runs"][0]["rl"] == run["rl"]


def test_default_pretrain_provenance_hash_leaves_out_the_new_options_at_their_defaults():
    """``--heads 1 --attention linear`` (the defaults) compute what ``pretrain`` computed before the
    options existed: the config hash of the provenance (and so resuming an older ``--out``) is the
    hash without them; another value changes it."""
    import argparse

    from lsa_theory import cli
    from lsa_theory.cli.commands import _provenance
    from lsa_theory.experiments.io import config_hash

    args = cli.build_parser().parse_args(["pretrain", "--quick"])
    old = {k: v for k, v in vars(args).items() if k not in ("heads", "attention", "omit_at_default")}
    expected = _provenance(argparse.Namespace(**old))["config_hash"]
    assert _provenance(args)["config_hash"] == expected
    two = cli.build_parser().parse_args(["pretrain", "--quick", "--heads", "2"])
    assert _provenance(two)["config_hash"] != expected
    assert config_hash({"x": 1}) != config_hash({"x": 1, "heads": 1})  # the hash sees every key
