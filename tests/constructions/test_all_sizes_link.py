"""The all-sizes block forms of (W4)-(W7), (R2) and (R3) are the numeric constructions the registry
runs (the proofs in constructions.symbolic_sizes and symbolic_sizes_w7 are written from docs/theory.md;
this ties them to the TD-family modules): evaluated at concrete sizes they equal
constructions.td(d, alpha, C), td_lambda with trace_mask, residual_gradient, the two heads of
td_average_reward with running_mean_mask, gd and precond_gd of constructions/algorithms/regression.py,
entry for entry; verify's link (constructions.proof_link) refuses a perturbed regression construction."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
from sympy import Identity, MatrixSymbol, ZeroMatrix

import lsa_theory as lt
from lsa_theory import constructions
from lsa_theory.constructions import matrix_words as mw
from lsa_theory.constructions import symbolic_sizes as ss
from lsa_theory.constructions import symbolic_sizes_regression as ssr
from lsa_theory.constructions import symbolic_sizes_w7 as w7
from lsa_theory.constructions.algorithms import td_average_reward as w7_num


def _ev(expr, arrays, d, n):
    return mw.evaluate(expr, arrays, {ss.d_s: d, ss.n_s: n}, {ss.alpha_s: 0.3, ss.gamma_s: 0.5})


def test_w4_blocks_are_td_with_C():
    rng = np.random.default_rng(0)
    d, alpha = 3, 0.3
    C = rng.standard_normal((d, d))
    blocks = ss.td_blocks(MatrixSymbol("C", ss.d_s, ss.d_s))
    # the proof's C is the product alpha C_l of the numeric construction
    for sym, num in zip(blocks, constructions.td(d, alpha, C), strict=True):
        np.testing.assert_allclose(_ev(sym, {"C": alpha * C}, d, 4), num, rtol=1e-15, atol=0)


def test_w6_blocks_are_residual_gradient():
    d = 3
    for sym, num in zip(ss.residual_gradient_blocks(), constructions.residual_gradient(d, 0.3), strict=True):
        np.testing.assert_allclose(_ev(sym, {}, d, 4), num, rtol=1e-15, atol=0)


def test_w5_blocks_are_the_w3_pair_and_the_mask_is_lower_triangular():
    d, n, lam = 2, 5, 0.7
    for sym, num in zip(ss.td_blocks(ss.alpha_s * Identity(ss.d_s)), constructions.td_lambda(d, 0.3, lam),
                        strict=True):  # fmt: skip
        np.testing.assert_allclose(_ev(sym, {}, d, n), num, rtol=1e-15, atol=0)
    M = lt.trace_mask(n, lam)
    # the proof's update uses Phi M_n^T delta: M_n[j, i] = lam^(j - i) for i <= j
    assert np.allclose(M[:n, :n], np.tril(lam ** np.subtract.outer(np.arange(n), np.arange(n)).clip(0)))
    assert not M[n].any() and not M[:, n].any()


def _w7_instance(d, n, seed):
    rng = np.random.default_rng(seed)
    phi, phin = rng.standard_normal((2, n, d))
    r, q, w = rng.standard_normal(n), rng.standard_normal(d), rng.standard_normal(d)
    N = constructions.running_mean_mask(n)
    arrays = {"Phi": phi.T, "Phi_next": phin.T, "r": r[:, None], "q": q[:, None], "w": w[:, None]}
    return phi, phin, r, q, {**arrays, "N_n": N[:n, :n]}


@pytest.mark.parametrize(("d", "n"), [(1, 1), (2, 4), (3, 5)])
def test_w7_blocks_and_layer_are_the_shipped_construction(d, n):
    """The proof's heads are ``td_average_reward``'s, its prompt at w = 0 is
    ``average_reward_prompt``, and its layer expression with ``N_n`` := the running-mean mask's
    context block is ``average_reward_layer`` (both masks, both heads, the 1/n) at a generic ``w``."""
    alpha = 0.3
    phi, phin, r, q, arrays = _w7_instance(d, n, seed=5 + n)

    def ev(expr):
        return _ev(expr, arrays, d, n)

    P_r, P_v, Q = w7.average_reward_blocks()
    (nP_r, nQ_r), (nP_v, nQ_v) = constructions.td_average_reward(d, alpha)
    for sym, num in [(P_r, nP_r), (P_v, nP_v), (Q, nQ_r), (Q, nQ_v)]:
        np.testing.assert_array_equal(ev(sym), num)
    N = constructions.running_mean_mask(n)
    assert not N[n].any() and not N[:, n].any()  # the proof's full mask is diag(N_n, 0)
    Z0 = ev(w7.average_reward_prompt_expr(ZeroMatrix(ss.d_s, 1)))
    np.testing.assert_array_equal(Z0, constructions.average_reward_prompt(phi, phin, r, q))
    Zw = ev(w7.average_reward_prompt_expr(ss.w_vec))
    out = ev(w7.average_reward_layer_expr(w7.average_reward_prompt_expr(ss.w_vec), (P_r, P_v, Q)))
    # observed spread 2.4e-16 relative (one float64 rounding per product)
    layer = w7_num.average_reward_layer(Zw, constructions.td_average_reward(d, alpha))
    np.testing.assert_allclose(out, layer, rtol=2e-15, atol=0)


def test_w7_proved_update_is_the_naive_loop_and_the_stack():
    """The proof's step with ``N_n`` := running-mean block, iterated 3 times from 0, is
    ``naive_average_reward_td``; the invariant prompt at that ``w_3`` is the output of 3 shipped
    layers (``average_reward_stack``)."""
    d, n, alpha, L = 3, 5, 0.3, 3
    phi, phin, r, q, arrays = _w7_instance(d, n, seed=1)
    wv = np.zeros(d)
    for _ in range(L):
        wv = _ev(w7.average_reward_update_expr(ss.w_vec), {**arrays, "w": wv[:, None]}, d, n)[:, 0]
    # observed 1.2e-16 relative
    np.testing.assert_allclose(wv, constructions.naive_average_reward_td(phi, phin, r, alpha, n_iter=L),
                               rtol=1e-15)  # fmt: skip
    Z_L = constructions.average_reward_stack(
        constructions.average_reward_prompt(phi, phin, r, q), [constructions.td_average_reward(d, alpha)] * L
    )
    want = _ev(w7.average_reward_prompt_expr(ss.w_vec), {**arrays, "w": wv[:, None]}, d, n)
    np.testing.assert_allclose(Z_L, want, rtol=4e-15, atol=0)  # observed 7e-16 (3 layers)


def test_w7_mask_entries_are_running_mean_mask():
    """The entries of the all-n mask identity are those of ``running_mean_mask`` (exact, float), n = 1..8."""
    for n in range(1, 9):
        entries = sp.Matrix(n, n, lambda k, i: w7.running_mean_entry(sp.Integer(k), sp.Integer(i)))
        assert entries == sp.Matrix(constructions.running_mean_mask(n, exact=True)[:n, :n].tolist())
        exact = np.array(entries, dtype=float)  # 2/3 rounded once; numeric 1 - 1/3 rounded twice
        np.testing.assert_allclose(exact, constructions.running_mean_mask(n)[:n, :n], rtol=2e-16, atol=0)


# ------------------------------------------------ (R2), (R3): constructions/algorithms/regression.py


def _regression_instance(d, N, seed, L=2):
    from lsa_theory.constructions.algorithms import regression as reg

    rng = np.random.default_rng(seed)
    inst = reg.regression_instance(d, N, rng)
    As = 0.5 * np.eye(d) + 0.3 * rng.standard_normal((L, d, d)) / np.sqrt(d)
    arrays = {"X": inst["X"].T, "y": inst["y"][:, None], "x_q": inst["xq"][:, None]}
    return inst, As, arrays


def _ev_reg(expr, arrays, d, N, eta=0.5):
    return mw.evaluate(expr, arrays, {ss.d_s: d, ss.N_s: N}, {ss.eta_s: eta})


@pytest.mark.parametrize(("d", "N"), [(1, 1), (2, 4), (3, 5)])
def test_r2_r3_blocks_prompt_and_layers_are_the_shipped_regression(d, N):
    """The proofs' ``regression_blocks`` are ``gd(d, eta)`` and ``precond_gd(A_l)`` entry for entry,
    the prompt at w = 0 is the declarations' (R1) prompt, and one shipped masked layer on the
    invariant prompt at a generic ``w`` is the proved invariant at the proved update."""
    from lsa_theory.constructions.algorithms import regression as reg

    eta = 0.5
    inst, As, arrays = _regression_instance(d, N, seed=10 + d)
    for sym, num in zip(ss.regression_blocks(-ss.eta_s * Identity(ss.d_s)), reg.gd(d, eta), strict=True):
        np.testing.assert_array_equal(_ev_reg(sym, arrays, d, N, eta), num)
    for A, (nP, nQ) in zip(As, reg.precond_gd(list(As)), strict=True):
        P, Q = ss.regression_blocks(MatrixSymbol("A", ss.d_s, ss.d_s))
        np.testing.assert_array_equal(_ev_reg(P, {**arrays, "A": A}, d, N), nP)
        np.testing.assert_array_equal(_ev_reg(Q, {**arrays, "A": A}, d, N), nQ)
    alg = constructions.ALGORITHMS["precond_gd_regression"]
    X, last = alg.columns(inst, {})
    E0 = _ev_reg(ssr.regression_prompt_expr(ZeroMatrix(ss.d_s, 1)), arrays, d, N)
    np.testing.assert_array_equal(E0, np.concatenate([X, last[:, None]], axis=1))
    wv = np.random.default_rng(d).standard_normal((d, 1))
    A = {**arrays, "A": As[0], "w": wv}
    out = lt.masked_lsa(_ev_reg(ssr.regression_prompt_expr(ss.w_vec), A, d, N), *reg.precond_gd([As[0]])[0])
    want = _ev_reg(ssr.regression_prompt_expr(ssr.preconditioned_gd_update_expr(ss.w_vec)), A, d, N)
    np.testing.assert_allclose(out, want, rtol=4e-15, atol=4e-15)  # observed <= 4.5e-16


def test_r2_r3_proved_updates_are_the_naive_loops_and_the_stacks():
    """The (R3) step iterated L = 2 times from 0 is ``naive_precond_gd``; the invariant at ``w_2``
    is two shipped layers (``masked_lsa_stack``); with ``A = -eta I`` one step is ``naive_gd``
    and the (R2) layer's query entry is ``x_q^T w_1``."""
    from lsa_theory.constructions.algorithms import regression as reg

    d, N, eta = 3, 6, 0.5
    inst, As, arrays = _regression_instance(d, N, seed=2)
    wv = np.zeros((d, 1))
    for A in As:
        wv = _ev_reg(ssr.preconditioned_gd_update_expr(ss.w_vec), {**arrays, "A": A, "w": wv}, d, N)
    naive = reg.naive_precond_gd(inst["X"].tolist(), list(inst["y"]), [A.tolist() for A in As])
    np.testing.assert_allclose(wv[:, 0], naive, rtol=1e-14)  # observed 1.3e-16
    E0 = _ev_reg(ssr.regression_prompt_expr(ZeroMatrix(ss.d_s, 1)), arrays, d, N)
    E_L = lt.masked_lsa_stack(E0, reg.precond_gd(list(As)))
    np.testing.assert_allclose(E_L, _ev_reg(ssr.regression_prompt_expr(ss.w_vec), {**arrays, "w": wv}, d, N),
                               rtol=1e-14, atol=1e-14)  # fmt: skip
    w1 = _ev_reg(-ss.eta_s * ssr.regression_gradient_expr(ZeroMatrix(ss.d_s, 1)), arrays, d, N, eta)
    np.testing.assert_allclose(w1[:, 0], reg.naive_gd(inst["X"].tolist(), list(inst["y"]), eta), rtol=1e-14)
    E1 = lt.masked_lsa(E0, *reg.gd(d, eta))
    np.testing.assert_allclose(E1[-1, -1], inst["xq"] @ w1[:, 0], rtol=1e-14)


def _negate_q(layers):
    return [(P, -Q) for P, Q in layers]


def _transpose_q(layers):
    return [(P, Q.T) for P, Q in layers]


def _double_q(pair):
    return pair[0], 2 * pair[1]


@pytest.mark.parametrize(
    ("name", "target", "change", "where"),
    [
        ("precond_gd_regression", "precond_gd", _negate_q, "d = 1, N = 1"),
        ("precond_gd_regression", "precond_gd", _transpose_q, "d = 2, N = 3"),  # A^T = A at d = 1
        ("gd_regression", "gd", _double_q, "d = 1, N = 1"),
    ],
    ids=["sign of (R3)'s Q", "Q_l^T for Q_l", "eta -> 2 eta in (R2)'s Q"],
)
def test_the_link_catches_a_perturbed_regression_construction(monkeypatch, name, target, change, where):
    """verify's link (constructions.proof_link.link_check) refuses the (R2)/(R3) rows when the
    shipped construction is perturbed."""
    from lsa_theory.constructions import proof_link as pl
    from lsa_theory.constructions.algorithms import regression as reg

    real = getattr(reg, target)
    monkeypatch.setattr(reg, target, lambda *a, **k: change(real(*a, **k)))
    alg = constructions.ALGORITHMS[name]
    (form,) = alg.all_sizes_forms()
    res, reason = pl.link_check(alg, form, np.random.default_rng(0))
    assert f"construction block 1 of layer 0 (L = 1, c = 1.0) differs from the proof's at {where}" in reason
    (row,) = pl.link_rows(alg, np.random.default_rng(0))
    assert not row.passed and "NOT claimed" in row.check
