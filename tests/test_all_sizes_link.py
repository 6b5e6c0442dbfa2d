"""The all-sizes block forms of (W4), (W5) and (W6) are the numeric constructions the registry runs
(the proofs in constructions.symbolic_sizes are written from docs/theory.md; this ties them to the
TD-family modules): evaluated at concrete sizes they equal constructions.td(d, alpha, C),
td_lambda with trace_mask, and residual_gradient entry for entry."""

from __future__ import annotations

import numpy as np
from sympy import Identity, MatrixSymbol

import constructions
import lsa_theory as lt
from constructions import matrix_words as mw
from constructions import symbolic_sizes as ss


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
