"""The all-sizes block forms of (W4), (W5), (W6) and (W7) are the numeric constructions the registry
runs (the proofs in constructions.symbolic_sizes and symbolic_sizes_w7 are written from docs/theory.md;
this ties them to the TD-family modules): evaluated at concrete sizes they equal
constructions.td(d, alpha, C), td_lambda with trace_mask, residual_gradient and the two heads of
td_average_reward with running_mean_mask, entry for entry."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
from sympy import Identity, MatrixSymbol, ZeroMatrix

import constructions
import lsa_theory as lt
from constructions import matrix_words as mw
from constructions import symbolic_sizes as ss
from constructions import symbolic_sizes_w7 as w7
from constructions.algorithms import td_average_reward as w7_num


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
    """The entries of the all-n mask identity are those of ``running_mean_mask(_symbolic)``, n = 1..8."""
    for n in range(1, 9):
        entries = sp.Matrix(n, n, lambda k, i: w7.running_mean_entry(sp.Integer(k), sp.Integer(i)))
        assert entries == w7_num.running_mean_mask_symbolic(n)[:n, :n]
        exact = np.array(entries, dtype=float)  # 2/3 rounded once; numeric 1 - 1/3 rounded twice
        np.testing.assert_allclose(exact, constructions.running_mean_mask(n)[:n, :n], rtol=2e-16, atol=0)
