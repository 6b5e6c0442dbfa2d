"""All-sizes proofs (block algebra with symbolic d, n): they hold, they fail on a perturbed
construction, the normal form agrees with direct numerical evaluation, and the matrix-form targets
are the naive loops of :mod:`lsa_theory.reference`."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import sympy as sp
from hypothesis import example, given, settings
from hypothesis import strategies as st
from sympy import BlockMatrix, Identity, MatrixSymbol, ZeroMatrix, block_collapse

import lsa_theory as lt
from lsa_theory.constructions import matrix_words as mw
from lsa_theory.constructions import symbolic_sizes as ss
from lsa_theory.constructions import symbolic_sizes_regression as ssr
from lsa_theory.constructions import symbolic_sizes_w7 as w7

PROOFS = [
    ss.prove_sarsa_all_sizes,
    ss.prove_sarsa_stack_all_sizes,
    ss.prove_actor_critic_all_sizes,
    ss.prove_td_all_sizes,
    ss.prove_lemma_c1_all_sizes,
    ss.prove_td_preconditioned_all_sizes,
    ss.prove_residual_gradient_all_sizes,
    ss.prove_td_lambda_all_sizes,
    ssr.prove_regression_gd_all_sizes,
    ssr.prove_preconditioned_gd_all_sizes,
    w7.prove_td_average_reward_all_sizes,
    w7.prove_running_mean_mask_all_sizes,
]


@pytest.mark.parametrize("prove", PROOFS, ids=lambda f: f.__name__)
def test_all_sizes_proof_holds(prove):
    proof = prove()
    assert proof.holds, proof
    assert proof.n_entries >= 1
    assert all(v == "all" or v.startswith("all") for v in proof.sizes.values()), proof.sizes


def test_two_layers_composed_explicitly():
    proof = ss.prove_sarsa_composition_all_sizes(2)
    assert proof.holds and proof.sizes["L"] == 2 and proof.n_entries == 10
    with pytest.raises(ValueError, match="n_layers"):
        ss.prove_sarsa_composition_all_sizes(0)


# ---------------------------------------------------------------- a proof must be able to fail


def _with_block(make, which: int, ij: tuple[int, int], change):
    """``make`` with block ``ij`` of its ``which``-th output matrix replaced by ``change(block)``."""

    def mutated(*args, **kwargs):
        mats = list(make(*args, **kwargs))
        blocks = mats[which].blocks.tolist()
        blocks[ij[0]][ij[1]] = change(blocks[ij[0]][ij[1]])
        mats[which] = BlockMatrix(blocks)
        return tuple(mats)

    return mutated


def _stray(block):
    return MatrixSymbol("E", *block.shape)


MUTATIONS = [
    # (proof, builder, matrix index, block, change, what)
    ("prove_sarsa_all_sizes", "sarsa_blocks", 0, (0, 4), lambda b: -b, "sign of P12* (-I -> I)"),
    ("prove_sarsa_all_sizes", "sarsa_blocks", 1, (4, 0), lambda b: 2 * b, "alpha -> 2 alpha in Vbar21*"),
    ("prove_sarsa_all_sizes", "sarsa_blocks", 0, (2, 3), lambda b: 2 * b, "reward entry c -> 2c"),
    ("prove_sarsa_all_sizes", "sarsa_blocks", 0, (0, 0), lambda b: Identity(ss.d_s), "P11 != 0 (context)"),
    ("prove_sarsa_stack_all_sizes", "sarsa_blocks", 0, (1, 4), lambda b: -b, "sign of P12* (I -> -I)"),
    ("prove_sarsa_composition_all_sizes", "sarsa_blocks", 1, (4, 0), lambda b: 2 * b, "alpha -> 2 alpha"),
    ("prove_actor_critic_all_sizes", "actor_critic_blocks", 1, (6, 3), lambda b: 2 * b, "beta -> 2 beta"),
    ("prove_actor_critic_all_sizes", "actor_critic_blocks", 1, (6, 0), _stray, "V[lambda, psi]"),
    ("prove_actor_critic_all_sizes", "actor_critic_blocks", 0, (0, 5), lambda b: -b, "sign of P12*"),
    ("prove_td_all_sizes", "td_blocks", 1, (0, 0), lambda b: -b, "sign of Q[phi, phi]"),
    ("prove_td_all_sizes", "td_blocks", 1, (0, 1), lambda b: 2 * b, "alpha -> 2 alpha in Q[phi, phi']"),
    ("prove_td_preconditioned_all_sizes", "td_blocks", 1, (0, 0), lambda b: b.T, "C instead of C^T"),
    ("prove_residual_gradient_all_sizes", "residual_gradient_blocks", 1, (1, 1), lambda b: -b, "sign"),
    ("prove_regression_gd_all_sizes", "regression_blocks", 1, (0, 0), lambda b: 2 * b, "eta -> 2 eta"),
    ("prove_preconditioned_gd_all_sizes", "regression_blocks", 1, (0, 0), lambda b: b.T, "A instead of A^T"),
    ("prove_preconditioned_gd_all_sizes", "regression_blocks", 0, (1, 1), lambda b: 2 * b, "P entry 2"),
]


@pytest.mark.parametrize(
    ("proof", "builder", "which", "ij", "change", "what"), MUTATIONS, ids=[m[-1] for m in MUTATIONS]
)
def test_proof_detects_a_perturbed_construction(monkeypatch, proof, builder, which, ij, change, what):
    monkeypatch.setattr(ss, builder, _with_block(getattr(ss, builder), which, ij, change))
    assert not getattr(ss if hasattr(ss, proof) else ssr, proof)().holds, what


@pytest.mark.parametrize(
    "prove",
    [ss.prove_sarsa_all_sizes, ss.prove_actor_critic_all_sizes, ss.prove_lemma_c1_all_sizes],
    ids=lambda f: f.__name__,
)
def test_proof_detects_a_missing_one_over_n(monkeypatch, prove):
    monkeypatch.setattr(ss, "lsa_block_expr", lambda H, P, V, n=ss.n_s: H + V * H * H.T * P * H)
    assert not prove().holds


def test_lemma_c1_detects_a_readout_that_reads_p21(monkeypatch):
    """(L2)'s 'depends only on P12, P22, Vbar21, Vbar22': a block that reads P^T is caught."""
    monkeypatch.setattr(ss, "lsa_block_expr", lambda H, P, V, n=ss.n_s: H + V * H * H.T * P.T * H / n)
    assert ss.prove_lemma_c1_all_sizes().nonzero == 2  # wrong formula and a stray block


@pytest.mark.parametrize(
    "prove", [ss.prove_td_all_sizes, ssr.prove_preconditioned_gd_all_sizes], ids=lambda f: f.__name__
)
def test_masked_proofs_detect_a_missing_mask(monkeypatch, prove):
    """(R2) alone cannot detect it: at w = 0 the query's last entry is 0, so the mask is idle."""

    def unmasked(Z, P, Q, n=ss.n_s, mask=None):
        return Z + P * Z * Z.T * Q * Z / n

    monkeypatch.setattr(ss, "masked_block_expr", unmasked)
    assert not prove().holds


def test_td_lambda_detects_a_transposed_mask(monkeypatch):
    real = ss.masked_block_expr

    def transposed(Z, P, Q, n=ss.n_s, mask=None):
        return real(Z, P, Q, n, mask.T)

    monkeypatch.setattr(ss, "masked_block_expr", transposed)
    assert not ss.prove_td_lambda_all_sizes().holds


def test_td_lambda_mask_gives_the_eligibility_trace_sum():
    """(W5): with ``M_n[j, i] = lam^(j-i)`` (i <= j) the proved update ``Phi M_n^T delta`` is
    ``sum_j delta_j e_j``, ``e_j = lam e_{j-1} + phi_j`` (explicit loop)."""
    rng = np.random.default_rng(11)
    d, n, lam = 3, 6, 0.7
    Phi_, delta = rng.standard_normal((d, n)), rng.standard_normal(n)
    M_n = np.array([[lam ** (j - i) if i <= j else 0.0 for i in range(n)] for j in range(n)])
    e, acc = np.zeros(d), np.zeros(d)
    for j in range(n):
        e = lam * e + Phi_[:, j]
        acc = acc + delta[j] * e
    np.testing.assert_allclose(Phi_ @ M_n.T @ delta, acc, rtol=1e-13)


def _w7_negated_reward_head(alpha=ss.alpha_s):
    P_r, P_v, Q = _W7_BLOCKS(alpha)
    return -P_r, P_v, Q


def _w7_layer(reward_mask=lambda N: N, value_mask=None, scale=1):
    """The (W7) layer with the heads' masks (and the increment's scale) changed."""

    def layer(Z, blocks, mask=w7.N_n, n=ss.n_s):
        P_r, P_v, Q = blocks
        value = _MASKED(Z, P_v, Q, n, mask=value_mask) - Z
        reward = _MASKED(Z, P_r, Q, n, mask=reward_mask(mask)) - Z
        return Z + scale * (value + reward)

    return layer


_W7_BLOCKS, _MASKED = w7.average_reward_blocks, ss.masked_block_expr
W7_MUTATIONS = [
    ("average_reward_blocks", _w7_negated_reward_head, "sign of the reward head P_r"),
    ("average_reward_layer_expr", _w7_layer(reward_mask=lambda N: None), "reward head with M, not N_n"),
    ("average_reward_layer_expr", _w7_layer(reward_mask=lambda N: N.T), "reward mask transposed"),
    ("average_reward_layer_expr", _w7_layer(value_mask=w7.N_n), "value head with N_n, not M"),
    ("average_reward_layer_expr", _w7_layer(scale=ss.n_s), "1/n dropped in both heads"),
]


@pytest.mark.parametrize(("name", "replacement", "what"), W7_MUTATIONS, ids=[m[-1] for m in W7_MUTATIONS])
def test_w7_proof_detects_a_perturbed_layer(monkeypatch, name, replacement, what):
    monkeypatch.setattr(w7, name, replacement)
    assert not w7.prove_td_average_reward_all_sizes().holds, what


def test_w7_unperturbed_rewrite_of_the_layer_still_proves(monkeypatch):
    """The mutations' rewrite of the layer, with nothing changed, is the layer (so each mutation
    above changes only what it says)."""
    monkeypatch.setattr(w7, "average_reward_layer_expr", _w7_layer())
    assert w7.prove_td_average_reward_all_sizes().holds


WRONG_RUNNING_MEANS = [
    (lambda k, i: sp.KroneckerDelta(k, i) - sp.Piecewise((1 / (i + 2), k <= i), (0, True)), "1/(i+2)"),
    (lambda k, i: sp.KroneckerDelta(k, i) - sp.Piecewise((1 / (i + 1), k < i), (0, True)), "k < i"),
    (lambda k, i: -sp.Piecewise((1 / (i + 1), k <= i), (0, True)), "no identity part"),
    (lambda k, i: sp.KroneckerDelta(k, i) - sp.Piecewise((1 / (i + 1), k >= i), (0, True)), "transposed"),
]


@pytest.mark.parametrize(("entry", "what"), WRONG_RUNNING_MEANS, ids=[m[-1] for m in WRONG_RUNNING_MEANS])
def test_running_mean_proof_detects_a_wrong_mask(entry, what):
    assert not w7.prove_running_mean_mask_all_sizes(entry).holds, what


def test_transpose_rule_is_needed_for_the_query_entry(monkeypatch):
    """Without rule 2 (scalar sub-words) ``q^T Phi r`` and ``r^T Phi^T q`` stay different words."""
    monkeypatch.setattr(mw, "_canonical_word", lambda word, shapes: word)
    assert not ss.prove_td_all_sizes().holds
    assert not ssr.prove_regression_gd_all_sizes().holds


# ---------------------------------------------------------------- the normal form itself

Phi, Phin, r, w, q = ss.Phi, ss.Phi_next, ss.r_vec, ss.w_vec, ss.q_vec
C = MatrixSymbol("C", ss.d_s, ss.d_s)


@pytest.mark.parametrize(
    "expr",
    [
        (Phi.T * w).T - w.T * Phi,
        w.T * Phi * r - r.T * Phi.T * w,
        w * (w.T * Phi * r) - w * (r.T * Phi.T * w),
        w * (q.T * w) * (r.T * r) - w * (r.T * r) * (w.T * q),
        (C * w + w) * ss.alpha_s / ss.c_s * ss.c_s - ss.alpha_s * (C + Identity(ss.d_s)) * w,
        Phi * Identity(ss.n_s) - Identity(ss.d_s) * Phi + ZeroMatrix(ss.d_s, ss.n_s),
        C * C * w - sp.MatPow(C, 2) * w,
    ],
)
def test_normal_form_of_identities_is_empty(expr):
    assert mw.normal_form(expr) == {}


@pytest.mark.parametrize(
    "expr",
    [
        Phi * Phin.T - Phin * Phi.T,
        w * q.T - q * w.T,
        C * w * w.T - w * w.T * C,  # d is never taken to be 1
        C - C.T,
        sp.MatPow(C, 2) - C * C.T,
        Phi * r - (1 + 1 / ss.n_s - 1 / ss.n_s**2) * Phi * r,
    ],
)
def test_normal_form_of_non_identities_is_not_empty(expr):
    assert mw.normal_form(expr) != {}


def _arrays(expr, sizes, rng):
    mats = {
        m.name: rng.standard_normal([int(sp.sympify(k).subs(sizes)) for k in m.shape])
        for m in expr.atoms(MatrixSymbol)
    }
    scalars = {
        s: float(rng.uniform(0.2, 1.5)) for s in expr.free_symbols if type(s) is sp.Symbol and s not in sizes
    }
    return mats, scalars


@functools.cache
def _layers():
    P, V = ss.sarsa_blocks()
    Pa, Va = ss.actor_critic_blocks()
    Pt, Qt = ss.td_blocks(C)
    Pr, Qr = ss.residual_gradient_blocks()
    exprs = [
        ss.lsa_block_expr(ss.sarsa_prompt_expr(w), P, V),
        ss.lsa_block_expr(ss.actor_critic_prompt_expr(w, ss.lam_vec), Pa, Va),
        ss.masked_block_expr(ss.td_prompt_expr(w), Pt, Qt),
        ss.masked_block_expr(ss.td_prompt_expr(w), Pr, Qr),
    ]
    out = []
    for expr in exprs:
        coll = block_collapse(expr)
        forms = [
            [mw.normal_form(coll.blocks[i, j]) for j in range(coll.blockshape[1])]
            for i in range(coll.blockshape[0])
        ]
        out.append((expr, coll.rowblocksizes, coll.colblocksizes, forms))
    return out


@settings(deadline=None, max_examples=12)
@given(
    layer=st.integers(0, 3),
    d=st.integers(1, 3),
    n=st.integers(1, 3),
    d_pi=st.integers(1, 2),
    seed=st.integers(0, 2**32 - 1),
)
@example(layer=2, d=1, n=1, d_pi=1, seed=0)  # every size 1: rule 2 must stay valid
def test_normal_form_equals_direct_evaluation(layer, d, n, d_pi, seed):
    """The collapsed, normalised blocks evaluate to the slices of the un-collapsed block expression
    evaluated directly in float64 (checks block_collapse and the normaliser on instances)."""
    expr, row_sizes, col_sizes, forms = _layers()[layer]
    sizes = {ss.d_s: d, ss.n_s: n, ss.d_pi_s: d_pi}
    mats, scalars = _arrays(expr, sizes, np.random.default_rng(seed))
    full = mw.evaluate(expr, mats, sizes, scalars)
    r0 = 0
    for i, rows in enumerate(row_sizes):
        c0, rows = 0, int(sp.sympify(rows).subs(sizes))
        for j, cols in enumerate(col_sizes):
            cols = int(sp.sympify(cols).subs(sizes))
            value = mw.evaluate_form(forms[i][j], (rows, cols), mats, {**sizes, **scalars})
            np.testing.assert_allclose(value, full[r0 : r0 + rows, c0 : c0 + cols], rtol=1e-12, atol=1e-12)
            c0 += cols
        r0 += rows


# ---------------------------------------------------------------- matrix form = naive loops


def _instance(rng, d=3, n=4, d_pi=2):
    phi, phin = rng.standard_normal((2, n, d))
    return phi, phin, rng.standard_normal(n), rng.standard_normal(d), rng.standard_normal((n, d_pi))


def test_matrix_form_targets_are_the_naive_loops():
    rng = np.random.default_rng(7)
    phi, phin, rr, w0, g = _instance(rng)
    gamma, alpha, beta = 0.5, 0.2, 0.3
    scal = {ss.gamma_s: gamma, ss.alpha_s: alpha, ss.beta_s: beta}
    sizes = {ss.d_s: 3, ss.n_s: 4, ss.d_pi_s: 2}
    lam0 = rng.standard_normal(2)
    arrays = {"Phi": phi.T, "Phi_next": phin.T, "r": rr[:, None], "G": g.T}

    def ev(expr, wv, lam=lam0):
        return mw.evaluate(expr, {**arrays, "w": wv[:, None], "lambda": lam[:, None]}, sizes, scal)[:, 0]

    # (S2), three iterations
    wv = w0
    for _ in range(3):
        wv = ev(ss.sarsa_update_expr(w), wv)
    np.testing.assert_allclose(
        wv, lt.naive_batch_sarsa(phi, phin, rr, w0, gamma, alpha, n_iter=3), rtol=1e-13
    )
    # (A2)
    delta = ss.td_errors_expr(w)
    w_ref, lam_ref = lt.naive_batch_actor_critic(phi, phin, rr, g, w0, lam0, gamma, alpha, beta)
    np.testing.assert_allclose(ev(w + alpha * Phi * delta / ss.n_s, w0), w_ref, rtol=1e-13)
    np.testing.assert_allclose(ev(ss.lam_vec + beta * ss.G * delta / ss.n_s, w0), lam_ref, rtol=1e-13)
    # (W3) target: the invariant's value entry after two steps from 0
    wv = np.zeros(3)
    for _ in range(2):
        wv = ev(w + ss.alpha_s / ss.n_s * Phi * delta, wv)
    np.testing.assert_allclose(wv, lt.naive_batch_td(phi, phin, rr, gamma, alpha, n_iter=2), rtol=1e-13)


# ---------------------------------------------------------------- the block forms are the project's


def test_block_forms_are_the_numeric_constructions_and_prompts():
    """At concrete sizes the block matrices of the all-sizes proofs are the float64 constructions
    of :mod:`lsa_theory.constructions.numeric` and the prompt builders of :mod:`lsa_theory.prompts`, so the
    all-sizes identities are about the objects the project runs."""
    from lsa_theory import constructions

    rng = np.random.default_rng(3)
    d, n, d_pi, gamma, alpha, beta, c = 3, 4, 2, 0.5, 0.2, 0.3, -2.5
    sizes = {ss.d_s: d, ss.n_s: n, ss.d_pi_s: d_pi}
    scal = {ss.gamma_s: gamma, ss.alpha_s: alpha, ss.beta_s: beta, ss.c_s: c}
    phi, phin, rr, w0, g = _instance(rng, d, n, d_pi)
    lam0 = rng.standard_normal(d_pi)
    arrays = {"Phi": phi.T, "Phi_next": phin.T, "r": rr[:, None], "G": g.T, "q": w0[:, None]}
    arrays |= {"w": w0[:, None], "lambda": lam0[:, None]}

    def ev(expr):
        return mw.evaluate(expr, arrays, sizes, scal)

    for blocks, numeric in [
        (ss.sarsa_blocks(), constructions.sarsa(d, alpha, c)),
        (ss.actor_critic_blocks(), constructions.actor_critic(d, d_pi, alpha, beta, c)),
        (ss.td_blocks(alpha * Identity(ss.d_s)), constructions.td(d, alpha)),
    ]:
        for sym, num in zip(blocks, numeric, strict=True):
            np.testing.assert_allclose(ev(sym), num, rtol=1e-15, atol=0)  # alpha/c: one rounding
    X = lt.context_columns(phi, phin, rr, gamma)
    np.testing.assert_allclose(ev(ss.sarsa_prompt_expr(w)), lt.sarsa_prompt(X, w0), rtol=1e-15)
    H_ac = lt.actor_critic_prompt(X, g.T, w0, lam0)
    np.testing.assert_allclose(ev(ss.actor_critic_prompt_expr(w, ss.lam_vec)), H_ac, rtol=1e-15)
    Z0 = ev(ss.td_prompt_expr(ZeroMatrix(ss.d_s, 1)))
    np.testing.assert_allclose(Z0, lt.td_prompt(X, w0), rtol=1e-15)
