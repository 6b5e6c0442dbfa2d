"""[W]'s TD family (W4)-(W7): constructions vs naive loops, fixed-size exact proofs, bad inputs.

The fixed-size proofs and the registry's residuals go through the declarations
(:func:`lsa_theory.constructions.derive.prove`, :func:`lsa_theory.constructions.derive.residuals`).

Every readout is read for the whole ``w_L``: the prompts carry the unit queries ``e_1..e_d`` (and a
random ``phi(s)``), whose values ``-Z_L[-1, q]`` are the entries of ``w_L``. Three independent
sides meet: the construction run through ``lsa_theory.masked_lsa_stack`` (or the (W7) two-head
layer), the package's naive loops (explicit Python loops), and a vectorised numpy formula written
here from docs/theory.md §5. Residuals are ``max|a - b| / max(1, max|b|)``; ``REL_TOL = 1e-12`` as for
(W3) in ``tests/constructions/test_constructions_numeric.py`` (observed worst case over these sweeps: a few
1e-15, see ``docs/td-family.md``).
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

import lsa_theory as lt
from lsa_theory import constructions
from lsa_theory.constructions import derive, symbolic
from lsa_theory.constructions.algorithms import residual_gradient, td_average_reward, td_lambda, td_precond

REL_TOL = 1e-12
ALGS = constructions.ALGORITHMS


def via_registry(name: str, phi, phi_next, r, q, L: int, **hyper) -> None:
    """The same instance through the registered declaration ``name`` (prompt, construction,
    mask, stack, naive loop of the declaration): readout within ``REL_TOL``, invariant exactly 0."""
    inst = {"phi": phi, "phi_next": phi_next, "r": r, "q": q}
    sizes = {"S": 1, "d": len(q), "n": len(r)}
    res = derive.residuals(ALGS[name], inst, sizes, hyper, depth=L)
    assert res.readout <= REL_TOL and res.invariant == 0.0, res


def rel(a, b) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.abs(a - b).max() / max(1.0, float(np.abs(b).max())))


def draw(seed: int, d: int, n: int):
    rng = np.random.default_rng(seed)
    phi, phi_next = rng.uniform(-1.0, 1.0, (2, n, d))
    r = rng.uniform(-1.0, 1.0, n)
    q = rng.uniform(-1.0, 1.0, d)
    return rng, phi, phi_next, r, q


def queries(q: np.ndarray) -> np.ndarray:
    """(d, d+1): the unit vectors, then ``q``."""
    return np.concatenate([np.eye(len(q)), q[:, None]], axis=1)


def w_prompt(phi, phi_next, r, q, gamma) -> np.ndarray:
    """(W1) prompt with the d + 1 queries of :func:`queries`."""
    X = lt.context_columns(phi, phi_next, r, gamma)
    return lt.td_prompt(X, queries(q), n_queries=len(q) + 1)


# ---- vectorised references written from docs/theory.md §5 (independent of the naive loops) ----------


def hand_deltas(phi, phi_next, r, w, gamma):
    return r + gamma * phi_next @ w - phi @ w


def hand_precond(phi, phi_next, r, gamma, alpha, Cs):
    w = np.zeros(phi.shape[1])
    for C in Cs:
        w = w + alpha * C @ (phi.T @ hand_deltas(phi, phi_next, r, w, gamma)) / len(r)
    return w


def hand_traces(phi, lam):
    e, out = np.zeros(phi.shape[1]), []
    for row in phi:
        e = lam * e + row
        out.append(e)
    return np.array(out)


def hand_td_lambda(phi, phi_next, r, gamma, alpha, lam, L):
    w, E = np.zeros(phi.shape[1]), hand_traces(phi, lam)
    for _ in range(L):
        w = w + alpha * E.T @ hand_deltas(phi, phi_next, r, w, gamma) / len(r)
    return w


def hand_residual_gradient(phi, phi_next, r, gamma, alpha, L):
    """``w - alpha grad (1/2n) sum delta^2`` with ``grad delta_i = gamma phi_i' - phi_i``."""
    w = np.zeros(phi.shape[1])
    for _ in range(L):
        grad = (gamma * phi_next - phi).T @ hand_deltas(phi, phi_next, r, w, gamma) / len(r)
        w = w - alpha * grad
    return w


def hand_average_reward(phi, phi_next, r, alpha, L):
    rbar = np.cumsum(r) / np.arange(1, len(r) + 1)
    w = np.zeros(phi.shape[1])
    for _ in range(L):
        w = w + alpha * phi.T @ hand_deltas(phi, phi_next, r - rbar, w, 1.0) / len(r)
    return w


# ---- strategies -------------------------------------------------------------------------------

sizes = {
    "d": st.integers(1, 5),
    "n": st.integers(1, 12),
    "L": st.integers(1, 3),
    "gamma": st.floats(0.0, 0.99),
    "alpha": st.floats(0.01, 1.0),
    "seed": st.integers(0, 2**32 - 1),
}


# ---- (W4) -------------------------------------------------------------------------------------


@settings(deadline=None)
@given(**sizes)
@example(d=1, n=1, L=1, gamma=0.0, alpha=1.0, seed=0)
@example(d=5, n=12, L=3, gamma=0.99, alpha=1.0, seed=1)
def test_w4_precond_equals_naive(d, n, L, gamma, alpha, seed):
    """(W4): layer l with C_l ~ N(0, 1) gives w_{l+1} = w_l + alpha C_l u_l, for L = 1..3."""
    rng, phi, phi_next, r, q = draw(seed, d, n)
    Cs = rng.standard_normal((L, d, d))
    layers = constructions.td(d, alpha, Cs)
    assert isinstance(layers, list) and len(layers) == L
    Z = w_prompt(phi, phi_next, r, q, gamma)
    out = -lt.masked_lsa_stack(Z, layers, n_queries=d + 1)[-1, n:]
    w_naive = td_precond.naive_precond_td(phi, phi_next, r, gamma, alpha, Cs)
    w_hand = hand_precond(phi, phi_next, r, gamma, alpha, Cs)
    assert rel(out[:d], w_naive) <= REL_TOL
    assert rel(out[d], q @ w_naive) <= REL_TOL
    assert rel(w_naive, w_hand) <= REL_TOL
    # one matrix -> one pair, the same as a one-element list
    single = constructions.td(d, alpha, Cs[0])
    assert isinstance(single, tuple)
    np.testing.assert_array_equal(single[1], layers[0][1])
    via_registry("td_precond", phi, phi_next, r, q, L, gamma=gamma, alpha=alpha, C=Cs)


def test_w4_identity_C_is_w3():
    for d in (1, 3):
        for a, b in zip(constructions.td(d, 0.3, np.eye(d)), constructions.td(d, 0.3), strict=True):
            np.testing.assert_array_equal(a, b)
        P, Q = constructions.td(d, 0.3, [2.0 * np.eye(d)])[0]
        np.testing.assert_array_equal(Q, 2.0 * constructions.td(d, 0.3)[1])


def test_w4_uses_C_not_its_transpose():
    """A non-symmetric C: the update is alpha C u, and alpha C^T u is a different number."""
    _, phi, phi_next, r, q = draw(3, 3, 6)
    C = np.triu(np.ones((3, 3)))
    w = td_precond.naive_precond_td(phi, phi_next, r, 0.9, 0.5, [C])
    assert rel(w, hand_precond(phi, phi_next, r, 0.9, 0.5, [C.T])) > 1e-3
    out = -lt.masked_lsa(w_prompt(phi, phi_next, r, q, 0.9), *constructions.td(3, 0.5, C), n_queries=4)
    assert rel(out[-1, 6:9], w) <= REL_TOL


# ---- (W5) -------------------------------------------------------------------------------------


@settings(deadline=None)
@given(lam=st.floats(0.0, 1.0), **sizes)
@example(lam=0.0, d=1, n=1, L=1, gamma=0.0, alpha=1.0, seed=0)
@example(lam=1.0, d=5, n=12, L=3, gamma=0.99, alpha=1.0, seed=1)
@example(lam=0.5, d=2, n=2, L=2, gamma=0.5, alpha=0.5, seed=2)
def test_w5_td_lambda_equals_naive(lam, d, n, L, gamma, alpha, seed):
    """(W5): L layers with the trace mask = L batch TD(lambda) steps, trace in context order."""
    _, phi, phi_next, r, q = draw(seed, d, n)
    Z = w_prompt(phi, phi_next, r, q, gamma)
    mask = lt.trace_mask(n, lam, n_queries=d + 1)
    out = -lt.masked_lsa_stack(Z, [constructions.td_lambda(d, alpha, lam)] * L, n_queries=d + 1, mask=mask)
    w_naive = td_lambda.naive_batch_td_lambda(phi, phi_next, r, gamma, alpha, lam, n_iter=L)
    assert rel(out[-1, n : n + d], w_naive) <= REL_TOL
    assert rel(out[-1, -1], q @ w_naive) <= REL_TOL
    assert rel(w_naive, hand_td_lambda(phi, phi_next, r, gamma, alpha, lam, L)) <= REL_TOL
    # the context's last row carries delta_k(w_L) (the invariant behind "L layers = L steps")
    assert rel(-out[-1, :n], hand_deltas(phi, phi_next, r, w_naive, gamma)) <= REL_TOL
    via_registry("td_lambda", phi, phi_next, r, q, L, gamma=gamma, alpha=alpha, lam=lam)


def test_trace_mask_entries_and_lam_zero():
    M = lt.trace_mask(4, 0.5, n_queries=2)
    assert M.shape == (6, 6)
    for i in range(6):
        for j in range(6):
            want = 0.5 ** (i - j) if j <= i < 4 else 0.0
            assert M[i, j] == want, (i, j)
    np.testing.assert_array_equal(lt.trace_mask(3, 0.0), np.diag([1.0, 1.0, 1.0, 0.0]))
    np.testing.assert_array_equal(lt.trace_mask(1, 0.7), np.diag([1.0, 0.0]))


def test_w5_lam_zero_is_w3_and_transposed_mask_fails():
    """lam = 0 reproduces TD(0); the transposed mask (trace run backwards) does not give TD(lambda)."""
    _, phi, phi_next, r, q = draw(4, 3, 8)
    Z = w_prompt(phi, phi_next, r, q, 0.9)
    P, Q = constructions.td_lambda(3, 0.4, 0.0)
    zero = lt.masked_lsa_stack(Z, [(P, Q)] * 2, n_queries=4, mask=lt.trace_mask(8, 0.0, 4))
    assert rel(zero, lt.masked_lsa_stack(Z, [(P, Q)] * 2, n_queries=4)) <= 1e-15
    w = td_lambda.naive_batch_td_lambda(phi, phi_next, r, 0.9, 0.4, 0.7)
    good = -lt.masked_lsa(Z, P, Q, n_queries=4, mask=lt.trace_mask(8, 0.7, 4))[-1, 8:11]
    bad = -lt.masked_lsa(Z, P, Q, n_queries=4, mask=lt.trace_mask(8, 0.7, 4).T)[-1, 8:11]
    assert rel(good, w) <= REL_TOL
    assert rel(bad, w) > 1e-3


def test_masked_lsa_default_mask_and_torch():
    _, phi, phi_next, r, q = draw(5, 2, 5)
    Z = w_prompt(phi, phi_next, r, q, 0.5)
    P, Q = constructions.td(2, 0.3)
    M = np.diag([1.0] * 5 + [0.0] * 3)
    assert rel(lt.masked_lsa(Z, P, Q, n_queries=3, mask=M), lt.masked_lsa(Z, P, Q, n_queries=3)) <= 1e-15
    M = lt.trace_mask(5, 0.6, 3)
    ref = lt.masked_lsa(Z, P, Q, n_queries=3, mask=M)
    got = lt.masked_lsa(*(torch.from_numpy(a) for a in (Z, P, Q)), n_queries=3, mask=torch.from_numpy(M))
    assert isinstance(got, torch.Tensor)
    assert rel(got.numpy(), ref) <= 1e-13
    batched = lt.masked_lsa(np.stack([Z, 2 * Z]), P, Q, n_queries=3, mask=M)
    assert rel(batched[1], lt.masked_lsa(2 * Z, P, Q, n_queries=3, mask=M)) <= 1e-15


# ---- (W6) -------------------------------------------------------------------------------------


@settings(deadline=None)
@given(**sizes)
@example(d=1, n=1, L=1, gamma=0.0, alpha=1.0, seed=0)
@example(d=5, n=12, L=3, gamma=0.99, alpha=1.0, seed=1)
def test_w6_residual_gradient_equals_naive(d, n, L, gamma, alpha, seed):
    """(W6): L layers = L residual-gradient steps w + (alpha/n) sum delta_i (phi_i - gamma phi_i')."""
    _, phi, phi_next, r, q = draw(seed, d, n)
    Z = w_prompt(phi, phi_next, r, q, gamma)
    out = -lt.masked_lsa_stack(Z, [constructions.residual_gradient(d, alpha)] * L, n_queries=d + 1)
    w_naive = residual_gradient.naive_residual_gradient(phi, phi_next, r, gamma, alpha, n_iter=L)
    assert rel(out[-1, n : n + d], w_naive) <= REL_TOL
    assert rel(out[-1, -1], q @ w_naive) <= REL_TOL
    assert rel(w_naive, hand_residual_gradient(phi, phi_next, r, gamma, alpha, L)) <= REL_TOL
    via_registry("residual_gradient", phi, phi_next, r, q, L, gamma=gamma, alpha=alpha)


def test_w6_block_pattern():
    P, Q = constructions.residual_gradient(2, 0.5)
    want = np.zeros((5, 5))
    want[:2, :2] = want[2:4, 2:4] = -0.5 * np.eye(2)
    want[:2, 2:4] = want[2:4, :2] = 0.5 * np.eye(2)
    np.testing.assert_array_equal(Q, want)
    np.testing.assert_array_equal(P, np.diag([0.0, 0, 0, 0, 1]))


# ---- (W7) -------------------------------------------------------------------------------------


def w7_readouts(phi, phi_next, r, q, alpha, L):
    """``-Z_L[-1, -1]`` of the two-head stack for each query e_1..e_d, then q."""
    layers = [constructions.td_average_reward(phi.shape[1], alpha)] * L
    vals = []
    for col in queries(q).T:
        Z = constructions.average_reward_prompt(phi, phi_next, r, col)
        vals.append(-constructions.average_reward_stack(Z, layers)[-1, -1])
    return np.array(vals)


@settings(deadline=None)
@given(d=sizes["d"], n=sizes["n"], L=sizes["L"], alpha=sizes["alpha"], seed=sizes["seed"])
@example(d=1, n=1, L=1, alpha=1.0, seed=0)
@example(d=5, n=12, L=3, alpha=1.0, seed=1)
def test_w7_average_reward_equals_naive(d, n, L, alpha, seed):
    """(W7): L two-head layers = L average-reward TD steps with the running mean rbar_i of r_1..r_i."""
    _, phi, phi_next, r, q = draw(seed, d, n)
    out = w7_readouts(phi, phi_next, r, q, alpha, L)
    w_naive = td_average_reward.naive_average_reward_td(phi, phi_next, r, alpha, n_iter=L)
    assert rel(out[:d], w_naive) <= REL_TOL
    assert rel(out[d], q @ w_naive) <= REL_TOL
    assert rel(w_naive, hand_average_reward(phi, phi_next, r, alpha, L)) <= REL_TOL
    via_registry("td_average_reward", phi, phi_next, r, q, L, alpha=alpha)


def test_running_mean_mask():
    N = constructions.running_mean_mask(4)
    r = np.array([1.0, 2.0, 6.0, -1.0, 0.0])
    np.testing.assert_allclose(r @ N, [0.0, 0.5, 3.0, -3.0, 0.0], rtol=0, atol=1e-15)
    assert (N[-1] == 0).all() and (N[:, -1] == 0).all()


def test_w7_single_head_shortcut_holds_for_one_layer_only():
    """The simpler one-head construction (mask N on the (W1) layout) is one step, not two."""
    _, phi, phi_next, r, q = draw(6, 3, 9)
    for L, holds in ((1, True), (2, False)):
        got = td_average_reward.single_head_average_reward(phi, phi_next, r, q, 0.5, L)
        want = q @ hand_average_reward(phi, phi_next, r, 0.5, L)
        assert (rel(got, want) <= REL_TOL) is holds, (L, rel(got, want))


# ---- exact proofs at fixed sizes (derive.prove on the declarations) -----------------------------

PROOFS = {"(W4)": "td_precond", "(W5)": "td_lambda", "(W6)": "residual_gradient", "(W7)": "td_average_reward"}


def prove(name: str, d: int, n: int, L: int, **methods):
    """:func:`lsa_theory.constructions.derive.prove` of the declaration ``name`` at ``d``, ``n`` and ``L``
    layers, with any of its methods replaced by ``methods`` (mutants)."""
    alg = type(ALGS[name])()
    for key, value in methods.items():
        setattr(alg, key, value)
    return derive.prove(alg, {"S": 2, "d": d, "n": n}, depth=L)


@pytest.mark.parametrize("claim", sorted(PROOFS))
@pytest.mark.parametrize(("d", "n", "L"), [(1, 1, 1), (2, 3, 1), (2, 3, 2), (1, 2, 3)])
def test_proofs_hold(claim, d, n, L):
    proof = prove(PROOFS[claim], d, n, L)
    rows = 2 * d + 2 if claim == "(W7)" else 2 * d + 1
    # the value readout and every row but the last (the value row) of every column
    assert proof.claim == claim and proof.n_entries == 1 + (rows - 1) * (n + 1)
    assert proof.holds, proof


def _perturb(make, i, j, delta, which=1):
    """``make``'s layers with ``delta`` (a number, or a function of ``hyper``) added to entry
    ``(i, j)`` of matrix ``which`` (0: P, 1: Q) of every layer (every head for (W7))."""

    def mutated(sizes, hyper, c=1.0, depth=1):
        def one(pair):
            if isinstance(pair[0], tuple):
                return tuple(one(p) for p in pair)
            pair = [np.array(M) for M in pair]
            pair[which][i, j] = pair[which][i, j] + (delta(hyper) if callable(delta) else delta)
            return tuple(pair)

        return [one(layer) for layer in make(sizes, hyper, c, depth)]

    return mutated


def test_w4_proof_fails_on_perturbed_construction():
    alg = ALGS["td_precond"]
    transposed = lambda sizes, hyper, c=1.0, depth=1: alg.construction(  # noqa: E731
        sizes, {**hyper, "C": np.transpose(hyper["C"], (0, 2, 1))}, c, depth
    )
    assert not prove("td_precond", 2, 3, 1, construction=transposed).holds
    shifted = _perturb(alg.construction, 0, 1, sp.Rational(1, 7))
    assert not prove("td_precond", 2, 3, 2, construction=shifted).holds


def test_w5_proof_fails_on_perturbed_mask():
    alg = ALGS["td_lambda"]
    assert not prove("td_lambda", 2, 3, 2, mask=lambda sizes, hyper: alg.mask(sizes, hyper).T).holds
    wrong_decay = lambda sizes, hyper: alg.mask(sizes, {**hyper, "lam": hyper["lam"] ** 2})  # noqa: E731
    assert not prove("td_lambda", 2, 3, 1, mask=wrong_decay).holds


def test_w6_proof_fails_on_perturbed_construction():
    w3 = lambda sizes, hyper, c=1.0, depth=1: ALGS["td"].construction(sizes, hyper, c, depth)  # noqa: E731
    assert not prove("residual_gradient", 2, 3, 1, construction=w3).holds
    shifted = _perturb(ALGS["residual_gradient"].construction, 3, 3, lambda hyper: hyper["alpha"])
    assert not prove("residual_gradient", 2, 3, 2, construction=shifted).holds


def test_w7_proof_fails_on_perturbed_construction():
    n, alg = 3, ALGS["td_average_reward"]

    def stack_with(N):
        def stack(Z, layers, mask=None):
            M = np.diag([1] * n + [0]).astype(object)
            for (P_r, Q_r), (P_v, Q_v) in layers:
                Z = symbolic.exact_masked_block(Z, P_v, Q_v, M) + (
                    symbolic.exact_masked_block(Z, P_r, Q_r, N) - Z
                )
            return Z

        return stack

    assert not prove(
        "td_average_reward", 2, n, 1, stack=stack_with(np.diag([1] * n + [0]).astype(object))
    ).holds
    N = constructions.running_mean_mask(n, exact=True)
    assert prove("td_average_reward", 2, n, 2, stack=stack_with(N)).holds  # the mutant's harness is right
    assert not prove("td_average_reward", 2, n, 1, stack=stack_with(N.T)).holds

    def no_value_head(sizes, hyper, c=1.0, depth=1):
        return [((P_r, Q), (np.zeros(np.shape(P_r), dtype=int).astype(object), Q))
                for (P_r, Q), _ in alg.construction(sizes, hyper, c, depth)]  # fmt: skip

    assert prove("td_average_reward", 2, n, 1, construction=no_value_head).holds
    assert not prove("td_average_reward", 2, n, 2, construction=no_value_head).holds


def _writes_a_feature_row(make):
    """A perturbed construction whose value row (hence the L = 1 readout) is right but which also
    writes into the first feature row: only the invariant part of the proof can catch it."""

    def mutated(sizes, hyper, c=1.0, depth=1):
        layers = []
        for pairs in make(sizes, hyper, c, depth):
            if isinstance(
                pairs[0], tuple
            ):  # (W7): two heads; the value row is 0 at L = 1, so the reward head
                (P_r, Q_r), value_head = pairs
                P_r = np.array(P_r)
                P_r[0, P_r.shape[0] - 2] = 1
                layers.append(((P_r, Q_r), value_head))
                continue
            P, Q = (np.array(M) for M in pairs)
            P[0, P.shape[0] - 1] = 1
            layers.append((P, Q))
        return layers

    return mutated


@pytest.mark.parametrize("name", sorted(PROOFS.values()))
def test_proofs_check_the_whole_output(name):
    proof = prove(name, 2, 3, 1, construction=_writes_a_feature_row(ALGS[name].construction))
    assert 0 < proof.nonzero < proof.n_entries, proof


def test_exact_masks_equal_the_float_masks():
    """The masks of the exact backend are the float64 masks at the same numbers."""
    lam = sp.Rational(1, 3)
    np.testing.assert_allclose(np.array(td_lambda.trace_mask(4, lam), dtype=float), lt.trace_mask(4, 1 / 3))
    np.testing.assert_allclose(
        np.array(constructions.running_mean_mask(4, exact=True), dtype=float),
        constructions.running_mean_mask(4),
        rtol=1e-15,
    )


# ---- bad inputs -------------------------------------------------------------------------------


def avg_prompt(phi, phi_next, r, q):
    return constructions.average_reward_prompt(np.ones(phi), np.ones(phi_next), np.ones(r), np.ones(q))


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: constructions.td(2, 0.1, np.ones((3, 3))), "C"),
        (lambda: constructions.td(2, 0.1, np.ones((2, 2, 2, 2))), "C"),
        (lambda: constructions.td(2, 0.1, np.ones((0, 2, 2))), "C"),
        (lambda: constructions.td(2, 0.1, np.full((2, 2), np.nan)), "C"),
        (lambda: constructions.td(2, 0.1, "identity"), "C"),
        (lambda: constructions.td(2, 0.0, np.eye(2)), "alpha"),
        (lambda: constructions.td(0, 0.1, np.eye(2)), "d"),
        (lambda: constructions.td_lambda(2, 0.1, -0.1), "lam"),
        (lambda: constructions.td_lambda(2, 0.1, 1.5), "lam"),
        (lambda: constructions.td_lambda(2, 0.1, float("nan")), "lam"),
        (lambda: constructions.td_lambda(2, -1.0, 0.5), "alpha"),
        (lambda: lt.trace_mask(0, 0.5), "n"),
        (lambda: lt.trace_mask(3, 2.0), "lam"),
        (lambda: lt.trace_mask(3, 0.5, n_queries=0), "n_queries"),
        (lambda: constructions.residual_gradient(2, 0.0), "alpha"),
        (lambda: constructions.residual_gradient(1.5, 0.1), "d"),
        (lambda: constructions.td_average_reward(2, -0.1), "alpha"),
        (lambda: constructions.running_mean_mask(0), "n"),
        (lambda: avg_prompt((3, 2), (3, 1), 3, 2), "phi, phi_next"),
        (lambda: avg_prompt((0, 2), (0, 2), 0, 2), "phi, phi_next"),
        (lambda: avg_prompt((3, 2), (3, 2), 2, 2), "r"),
        (lambda: avg_prompt((3, 2), (3, 2), 3, 3), "phi_query"),
        (lambda: td_precond.naive_precond_td([[1.0]], [[1.0]], [1.0], 0.5, 0.1, [[[1.0, 2.0]]]), "Cs"),
    ],
)
def test_bad_inputs_name_the_argument(call, name):
    with pytest.raises(ValueError, match=rf"^{name}:"):
        call()


@pytest.mark.parametrize(
    "mask",
    [
        np.eye(4),  # query row and column not zero
        np.eye(3),  # wrong shape
        np.pad(np.ones((3, 3)), ((0, 0), (0, 1))),  # wrong shape (3, 4)
        np.where(np.eye(4) > 0, np.nan, 0.0),
        lt.trace_mask(3, 0.5) + np.eye(4)[:, [3, 0, 1, 2]] * 0.0 + np.outer(np.eye(4)[0], np.eye(4)[3]),
    ],
)
def test_masked_lsa_rejects_bad_masks(mask):
    _, phi, phi_next, r, q = draw(7, 1, 3)
    Z = lt.td_prompt(lt.context_columns(phi, phi_next, r, 0.5), q)
    P, Q = constructions.td(1, 0.1)
    with pytest.raises(ValueError, match=r"^mask:"):
        lt.masked_lsa(Z, P, Q, mask=mask)
    with pytest.raises(ValueError, match=r"^mask:"):
        lt.masked_lsa_stack(Z, [(P, Q)], mask=mask)


# ---- observed spread (slow): the numbers quoted in docs/td-family.md ---------------------------


@pytest.mark.slow
def test_observed_spread(capsys):
    """Worst residual of each readout against its naive loop over 2000 seeded draws per algorithm
    (d <= 5, n <= 12, L <= 3, gamma <= 0.99, lam in [0, 1], C ~ N(0, 1)); printed with ``-s``."""
    rng = np.random.default_rng(20261201)
    worst = dict.fromkeys(PROOFS, 0.0)
    for _ in range(2000):
        d, n, L = int(rng.integers(1, 6)), int(rng.integers(1, 13)), int(rng.integers(1, 4))
        gamma, alpha, lam = rng.uniform(0.0, 0.99), rng.uniform(0.01, 1.0), rng.uniform(0.0, 1.0)
        _, phi, phi_next, r, q = draw(int(rng.integers(2**32)), d, n)
        Z = w_prompt(phi, phi_next, r, q, gamma)
        Cs = rng.standard_normal((L, d, d))
        out = -lt.masked_lsa_stack(Z, constructions.td(d, alpha, Cs), n_queries=d + 1)[-1, n:]
        w = td_precond.naive_precond_td(phi, phi_next, r, gamma, alpha, Cs)
        worst["(W4)"] = max(worst["(W4)"], rel(out, np.append(w, q @ w)))
        mask = lt.trace_mask(n, lam, d + 1)
        out = -lt.masked_lsa_stack(Z, [constructions.td_lambda(d, alpha, lam)] * L, d + 1, mask)[-1, n:]
        w = td_lambda.naive_batch_td_lambda(phi, phi_next, r, gamma, alpha, lam, L)
        worst["(W5)"] = max(worst["(W5)"], rel(out, np.append(w, q @ w)))
        out = -lt.masked_lsa_stack(Z, [constructions.residual_gradient(d, alpha)] * L, d + 1)[-1, n:]
        w = residual_gradient.naive_residual_gradient(phi, phi_next, r, gamma, alpha, L)
        worst["(W6)"] = max(worst["(W6)"], rel(out, np.append(w, q @ w)))
        out = w7_readouts(phi, phi_next, r, q, alpha, L)
        w = td_average_reward.naive_average_reward_td(phi, phi_next, r, alpha, L)
        worst["(W7)"] = max(worst["(W7)"], rel(out, np.append(w, q @ w)))
    with capsys.disabled():
        print("\nworst relative residual over 2000 draws:", {k: f"{v:.2e}" for k, v in worst.items()})
    assert max(worst.values()) <= REL_TOL
