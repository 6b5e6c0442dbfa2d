"""Blocks of heads and nonlinear attention on the one deployment route (issue 23, review item):
:func:`lsa_theory.experiments.control.resolve_weights` -> :class:`BlockWeights` ->
:func:`loop_update` -> :func:`deploy`.

Round-off of the identities. Two computations of ``Z + (1/n) sum_h V_h Z Z^T P_h Z`` (the heads through
:func:`lsa_theory.attention_layer`, association ``V (Z (I (Z^T (P Z)) / n))``; the plain block through
:func:`lsa_theory.lsa_block`, ``(V (Z Z^T)) (P Z) / n``; the (L2) readout, ``X (X^T (P12 wt)) / n``
and the ``wt wt^T P22 wt`` term) are each, in any association and summation order, within
``gamma_K sum_h |V_h||Z||Z|^T|P_h||Z| / n`` of the exact product (Higham Lemma 3.5, ``K`` the sum of
the inner dimensions: ``3 D + 2 N`` with the mask product), plus one rounding per added term (the
``1/n``, the ``H`` heads and ``+ Z``): ``K = 3 D + 2 N + H + 2``, ``N = n + 1``. With ``V_1 = V_2 = V``
and ``P = P_1 + P_2`` (dyadic entries, so the split is exact) ``|V||Z||Z^T||P||Z| <= sum_h
|V||Z||Z^T||P_h||Z|`` entrywise, so the two sides differ by at most twice that bound
(:func:`_bound`). Along a loop both updates are compared on the same input ``(X, w)`` at every step.
"""

from __future__ import annotations

import numpy as np
import pytest

import lsa_theory as lt
from lsa_theory import constructions
from lsa_theory.experiments.control import (
    BlockWeights,
    deploy,
    deployment_dims,
    first_mismatch,
    loop_update,
    resolve_weights,
)
from lsa_theory.loop_driver import closed_loop

U = np.finfo(np.float64).eps / 2
SARSA = constructions.closed_loop_algorithm("sarsa")
LAY = lt.Layout(4)  # S = A = 2: d = 4, D = 14
KW = dict(n=10, n_updates=8, epsilon=0.1, alpha=0.2, eval_every=4)


def _mdps(k=3):
    return [lt.random_mdp(2, 2, 0.5, np.random.default_rng([23, i])) for i in range(k)]


def _dyadic(rng, shape, scale):
    """Entries on the grid 2^-10 (so sums of two of them are exact in float64)."""
    return np.round(scale * rng.standard_normal(shape) * 1024) / 1024


def _pv(seed=0, scale=0.1):
    """The (S3) construction plus dyadic noise: a block whose loop stays finite."""
    r = np.random.default_rng(seed)
    Pc, Vc = constructions.sarsa(LAY.d, 0.2)
    return Pc + _dyadic(r, Pc.shape, scale), Vc + _dyadic(r, Vc.shape, scale)


def _bound(Z, heads, k_rows):
    """Twice ``gamma_K (sum_h |V_h||Z||Z|^T|P_h||Z| / n + |Z|)``, last column, last ``k_rows`` rows."""
    D, N = Z.shape
    n = N - 1
    K = 3 * D + 2 * N + len(heads) + 2
    g = K * U / (1 - K * U)
    A = np.abs(Z)
    s = sum(np.abs(V) @ A @ A.T @ np.abs(P) @ A[:, -1] for P, V in heads) / n + A[:, -1]
    return 2 * g * s[-k_rows:]


def test_one_linear_head_list_is_the_plain_block(tmp_path):
    """``[(P, V)]`` (and an .npz with P, V of shape (1, D, D)) resolves to the plain block: the same
    fields, and the same loop bit for bit."""
    P, V = _pv()
    plain = resolve_weights((P, V), LAY)
    path = tmp_path / "one.npz"
    np.savez(path, P=P[None], V=V[None], attention=np.array("linear"))
    for given in ([(P, V)], ((P, V),), path):
        b = resolve_weights(given, LAY, attention="linear")
        assert b.heads is None and b.attention == "linear"
        assert np.array_equal(b.P, P) and np.array_equal(b.V, V)
        for f in ("P12", "P22", "Vbar21", "Vbar22"):
            assert np.array_equal(getattr(b, f), getattr(plain, f))
    for mdp in _mdps():
        ref = deploy(mdp, (P, V), rng=np.random.default_rng(1), **KW)
        for given in ([(P, V)], path):
            got = deploy(mdp, given, rng=np.random.default_rng(1), **KW)
            assert np.array_equal(got.ws, ref.ws, equal_nan=True)
            assert np.array_equal(got.normalized_return, ref.normalized_return, equal_nan=True)
            assert got.forward == ref.forward == "l1"


def _check_along_loop(mdp, heads, other, rng):
    """Run the loop of the block ``heads`` and compare, at every update, its readout with the update
    ``other`` on the same input, against :func:`_bound`; returns the number of updates compared."""
    hyper = {**SARSA.hyper, "gamma": mdp.gamma, "alpha": 0.2}
    blk = resolve_weights(heads, LAY)
    update, used = loop_update(blk, LAY, SARSA, hyper, "l1")
    assert used == "l1" and blk.heads is not None
    draws = SARSA.deployment_draws(2, 2, SARSA.dims(2, 2), rng)
    seen = []

    def on_step(t, X, g, w, lam, w_new, lam_new, traj):
        ref, _ = other(X, g, w, lam)
        bound = _bound(SARSA.full_prompt(X, g, w, lam), blk.heads, LAY.k)
        assert np.all(np.abs(w_new - ref) <= bound), (t, np.abs(w_new - ref).max(), bound.min())
        assert bound.max() <= 1e-11 * max(1.0, np.abs(ref).max())  # round-off, not a tolerance
        seen.append(t)

    loop = closed_loop(
        mdp, SARSA.agent(draws, mdp.gamma, 0.1), draws.w0, None, update, n=10, n_updates=8, rng=rng,
        keep_frames=False, on_step=on_step,
    )  # fmt: skip
    assert loop.diverged_at is None
    return len(seen)


def test_two_linear_heads_with_one_V_are_the_one_head_with_summed_P():
    """Heads add: ``[(P_1, V), (P_2, V)]`` is ``(P_1 + P_2, V)`` (exact algebra; compared at every
    update of a loop on the same input within :func:`_bound`), and :func:`deploy` of the two gives
    the same trajectories and returns as the one (the greedy actions agree: no Q-gap on these seeds
    is within the ~1e-14 round-off)."""
    P, V = _pv()
    r = np.random.default_rng(5)
    P1 = _dyadic(r, P.shape, 0.5)
    P2 = P - P1
    assert np.array_equal(P1 + P2, P)  # the split is exact
    hyper = {**SARSA.hyper, "gamma": 0.5, "alpha": 0.2}
    plain, _ = loop_update(resolve_weights((P, V), LAY), LAY, SARSA, hyper, "l1")
    for i, mdp in enumerate(_mdps()):
        assert _check_along_loop(mdp, [(P1, V), (P2, V)], plain, np.random.default_rng(i)) == 8
        two = deploy(mdp, [(P1, V), (P2, V)], rng=np.random.default_rng(1), **KW)
        one = deploy(mdp, (P, V), rng=np.random.default_rng(1), **KW)
        assert two.diverged_at is None and first_mismatch(two, one) is None
        assert np.array_equal(two.normalized_return, one.normalized_return)
        assert np.abs(two.ws - one.ws).max() <= 1e-12 * max(1.0, np.abs(one.ws).max())


def test_linear_heads_l2_readout_is_the_l1_pass():
    """For linear heads the (L2) readout (the sum over heads of each head's (L2) increment) is the
    (L1) pass of ``attention_layer`` with mask ``I_{n+1}``, within :func:`_bound`, on random heads and
    prompts; and the two forward passes drive the same loop."""
    r = np.random.default_rng(7)
    D = LAY.D
    heads = [(r.standard_normal((D, D)), r.standard_normal((D, D))) for _ in range(3)]
    blk = resolve_weights(heads, LAY)
    hyper = {**SARSA.hyper, "gamma": 0.5, "alpha": 0.2}
    l1, _ = loop_update(blk, LAY, SARSA, hyper, "l1")
    l2, used = loop_update(blk, LAY, SARSA, hyper, "l2")
    assert used == "l2"
    for _ in range(20):
        n = int(r.integers(1, 12))
        X, w = r.standard_normal((LAY.m, n)), r.standard_normal(LAY.d)
        a, b = l1(X, None, w, None)[0], l2(X, None, w, None)[0]
        assert np.all(np.abs(a - b) <= _bound(SARSA.full_prompt(X, None, w, None), blk.heads, LAY.k))
    P, V = _pv()
    small = [(P / 2, V), (P / 2, V)]
    for mdp in _mdps(2):
        x = deploy(mdp, small, forward="l1", rng=np.random.default_rng(2), **KW)
        y = deploy(mdp, small, forward="l2", rng=np.random.default_rng(2), **KW)
        assert (x.forward, y.forward) == ("l1", "l2") and first_mismatch(x, y) is None
        assert np.abs(x.ws - y.ws).max() <= 1e-12 * max(1.0, np.abs(y.ws).max())


def test_softmax_block_runs_and_differs_from_linear():
    """Negative control: the same heads with softmax (or relu) attention are another loop; the (L2)
    pass is refused for them and ``"auto"`` picks ``"l1"``."""
    P, V = _pv(scale=0.3)
    heads = [(P, V), (P.T, V)]
    for mdp in _mdps(2):
        lin = deploy(mdp, heads, rng=np.random.default_rng(3), **KW)
        for att in ("softmax", "relu"):
            got = deploy(mdp, heads, attention=att, rng=np.random.default_rng(3), **KW)
            assert got.forward == "l1" and got.diverged_at is None
            assert np.all(np.isfinite(got.normalized_return))
            assert np.abs(got.ws[1] - lin.ws[1]).max() > 1e-3
    blk = resolve_weights(heads, LAY, attention="softmax")
    assert blk.attention == "softmax" and len(blk.heads) == 2
    with pytest.raises(ValueError, match="^forward: 'l2' needs a block affine in Sigma"):
        loop_update(blk, LAY, SARSA, {**SARSA.hyper, "gamma": 0.5, "alpha": 0.2}, "l2")
    with pytest.raises(ValueError, match="^forward"):
        deploy(_mdps(1)[0], heads, attention="tanh", forward="l2", rng=np.random.default_rng(0), **KW)


def test_npz_round_trip(tmp_path):
    """An .npz with P, V of shape (H, D, D) and a 0-d ``attention`` is the list of heads with that
    attention: equal arrays, equal loops bit for bit; without the array the argument sets it."""
    P, V = _pv(scale=0.3)
    heads = [(P, V), (P.T, 0.5 * V)]
    path = tmp_path / "h.npz"
    np.savez(path, P=np.stack([P, P.T]), V=np.stack([V, 0.5 * V]), attention=np.array("relu"))
    a, b = resolve_weights(path, LAY), resolve_weights(heads, LAY, attention="relu")
    assert a.attention == b.attention == "relu" and a.source == str(path) and b.source == "dense"
    assert all(
        np.array_equal(x, y)
        for hx, hy in zip(a.heads, b.heads, strict=True)
        for x, y in zip(hx, hy, strict=True)
    )
    mdp = _mdps(1)[0]
    x = deploy(mdp, path, rng=np.random.default_rng(4), **KW)
    y = deploy(mdp, heads, attention="relu", rng=np.random.default_rng(4), **KW)
    assert np.array_equal(x.ws, y.ws) and np.array_equal(x.normalized_return, y.normalized_return)
    bare = tmp_path / "bare.npz"
    np.savez(bare, P=np.stack([P, P.T]), V=np.stack([V, 0.5 * V]))
    assert resolve_weights(bare, LAY).attention == "linear"
    assert resolve_weights(bare, LAY, attention="tanh").attention == "tanh"


def test_actor_critic_heads_read_d_pi_off_D(tmp_path):
    """With an actor, ``d_pi`` is read off ``D`` of a list of heads or a stacked .npz as of a pair."""
    alg = constructions.closed_loop_algorithm("actor_critic")
    lay = alg.dims(2, 2).layout
    r = np.random.default_rng(0)
    heads = [(0.01 * r.standard_normal((lay.D, lay.D)), 0.01 * r.standard_normal((lay.D, lay.D)))] * 2
    path = tmp_path / "ac.npz"
    np.savez(path, P=np.stack([p for p, _ in heads]), V=np.stack([v for _, v in heads]))
    for given in (heads, path):
        dims, _ = deployment_dims(alg, 2, 2, given, None, 0.2, 0.1)
        assert dims.layout == lay
    res = deploy(
        _mdps(1)[0], heads, algo="actor_critic", attention="softmax", rng=np.random.default_rng(0), **KW
    )
    assert res.forward == "l1" and res.lams is not None and res.diverged_at is None


def _npz(tmp_path, name, **arrays):
    path = tmp_path / f"{name}.npz"
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize(
    "case, needle",
    [
        ("short_head", "weights[1].P has shape"),
        ("three_items", "weights[0]: expected a head pair"),
        ("array_heads", "weights[0]: expected a head pair"),
        ("unknown_attention", "attention: expected one of"),
        ("pair_with_softmax", "attention: a single pair (P, V) is the linear (L1) block"),
        ("constructed_with_relu", "attention: 'constructed' is a linear (L1) block"),
        ("teacher_with_relu", "attention: 'teacher' is a linear (L1) block"),
        ("npz_unequal_stacks", "needs both of shape (H, D, D)"),
        ("npz_stack_and_matrix", "needs both of shape (H, D, D)"),
        ("npz_bad_attention", "array 'attention' must be a 0-d string"),
        ("npz_attention_array_1d", "array 'attention' must be a 0-d string"),
        ("npz_attention_clash", "attention: 'softmax' given, but"),
        ("npz_wrong_D", "weights[0].P has shape"),
        ("empty", "weights: expected"),
    ],
)
def test_bad_blocks_are_refused_naming_the_argument(tmp_path, case, needle):
    D = LAY.D
    P, V = _pv()
    kw = {}
    weights = {
        "short_head": [(P, V), (P[:-1], V)],
        "three_items": [(P, V, V)],
        "array_heads": (np.stack([P, P]), np.stack([V, V])),
        "pair_with_softmax": (P, V),
        "constructed_with_relu": "constructed",
        "teacher_with_relu": "teacher",
        "empty": [],
    }.get(case)
    if case == "unknown_attention":
        weights, kw = [(P, V)], {"attention": "gelu"}
    if case == "pair_with_softmax":
        kw = {"attention": "softmax"}
    if case in ("constructed_with_relu", "teacher_with_relu"):
        kw = {"attention": "relu", "alpha": 0.2, "algo": "sarsa"}
    if case == "npz_unequal_stacks":
        weights = _npz(tmp_path, case, P=np.stack([P, P]), V=np.stack([V, V, V]))
    if case == "npz_stack_and_matrix":
        weights = _npz(tmp_path, case, P=np.stack([P, P]), V=V)
    if case == "npz_bad_attention":
        weights = _npz(tmp_path, case, P=P[None], V=V[None], attention=np.array("gelu"))
    if case == "npz_attention_array_1d":
        weights = _npz(tmp_path, case, P=P[None], V=V[None], attention=np.array(["relu"]))
    if case == "npz_attention_clash":
        weights, kw = (
            _npz(tmp_path, case, P=P[None], V=V[None], attention=np.array("relu")),
            {"attention": "softmax"},
        )
    if case == "npz_wrong_D":
        weights = _npz(tmp_path, case, P=np.ones((2, D + 1, D + 1)), V=np.ones((2, D + 1, D + 1)))
    with pytest.raises(ValueError) as exc:
        resolve_weights(weights, LAY, **kw)
    assert needle in str(exc.value)


def test_non_finite_heads_output_is_a_divergence():
    """A heads block whose output overflows ends the loop as diverged (``diverged_at``, NaN return),
    not with an error; the update itself turns attention_layer's non-finite-output ValueError into
    the driver's FloatingPointError."""
    D = LAY.D
    big = [(1e3 * np.ones((D, D)), 1e3 * np.ones((D, D)))] * 2
    for att, scale in (("linear", 1.0), ("relu", 1.0), ("softmax", 1e7)):  # softmax grows geometrically
        heads = [(scale * P, scale * V) for P, V in big]
        res = deploy(
            _mdps(1)[0], heads, attention=att, rng=np.random.default_rng(0), **{**KW, "n_updates": 20}
        )
        assert res.diverged_at is not None and np.isnan(res.normalized_return[-1])
    blk = resolve_weights(big, LAY, attention="relu")
    update, _ = loop_update(blk, LAY, SARSA, {**SARSA.hyper, "gamma": 0.5, "alpha": 0.2}, "l1")
    X = 1e100 * np.ones((LAY.m, 4))
    with np.errstate(all="ignore"), pytest.raises(FloatingPointError, match="not finite"):
        update(X, None, np.ones(LAY.d), None)


def test_block_weights_of_a_plain_pair_are_unchanged():
    """A plain pair's :class:`BlockWeights` keeps today's fields (no heads, linear)."""
    P, V = _pv()
    b = resolve_weights((P, V), LAY)
    assert isinstance(b, BlockWeights) and b.heads is None and b.attention == "linear"
    assert b.P12.shape == (LAY.m, LAY.D - LAY.m) and b.source == "dense"
