r"""(AR5) for every size: the GD-class layer of in-context autoregressive learning in block algebra
with symbolic ``d`` and ``t``.

The method is that of :mod:`lsa_theory.constructions.symbolic_sizes`: the prompt of position t,
``Z_t = [[0, 0], [S, s_t], [S_-, s_{t-1}]]`` (rows ``(d | d | d)``, columns ``(t | 1)``; ``S`` holds
``s_1..s_t``, ``S_-`` holds ``s_0..s_{t-1}``, both ``d x t`` matrix symbols, and the query's blocks
are free ``d x 1`` symbols), the (W2) layer with the GD-class blocks of (AR4) (``P``'s block (0, 1)
is ``A``, ``Q``'s block (2, 1) is ``B``, both ``d x d`` symbols) is applied, and each output block
minus its target is reduced to the normal form of :mod:`lsa_theory.constructions.matrix_words`.
The target is THEORY's statement written with the gradient: ``W_1 = A (-grad L_t(0)) B`` with
``grad L_t(W) = (1/t) (W S_- - S) S_-^T``, the prediction ``W_1 s_t`` in the query's first block, the
context's first block ``W_1 S``, and the middle and last blocks unchanged. The query's blocks are
free symbols, so the identity holds for any query, in particular ``(s_t, s_{t-1})``. 6 blocks.

Not linked to the registry's ``verify`` rows (the declaration ``gd_autoregressive`` has sizes
``d``, ``T``; the link of :mod:`lsa_theory.constructions.proof_link` draws at sizes ``d``, ``n``):
tests/constructions/test_autoregressive.py proves it and evaluates it through the numeric forward pass.
"""

from __future__ import annotations

import time

from sympy import MatrixSymbol, ZeroMatrix

from . import symbolic_sizes as ss
from .matrix_words import Obligation
from .symbolic import SymbolicProof

__all__ = ["ROWS", "COLS", "prompt_expr", "gradient_expr", "gd_obligations", "prove_gd_all_sizes"]

#: The context ``s_1..s_t`` and ``s_0..s_{t-1}`` (d x t each; ``t`` is the size symbol ``n``).
S_next = MatrixSymbol("S", ss.d_s, ss.n_s)
S_prev = MatrixSymbol("S_prev", ss.d_s, ss.n_s)
#: The query's middle and last blocks (``s_t``, ``s_{t-1}`` in the package's prompt; free here).
q_next = MatrixSymbol("s_t", ss.d_s, 1)
q_prev = MatrixSymbol("s_tm1", ss.d_s, 1)
ROWS = (ss.d_s, ss.d_s, ss.d_s)
COLS = (ss.n_s, 1)


def prompt_expr(top=None, top_q=None):
    """(AR3)'s prompt of position t, ``[[top, top_q], [S, s_t], [S_-, s_{t-1}]]`` (the first block
    zero unless given)."""
    entries = {(1, 0): S_next, (1, 1): q_next, (2, 0): S_prev, (2, 1): q_prev}
    if top is not None:
        entries[(0, 0)] = top
    if top_q is not None:
        entries[(0, 1)] = top_q
    return ss._grid(ROWS, COLS, entries)


def gradient_expr(W):
    """``grad L_t(W) = (1/t) (W S_- - S) S_-^T`` (d x d) of
    ``L_t(W) = (1/2t) sum_j ||s_j - W s_{j-1}||^2``."""
    return (W * S_prev - S_next) * S_prev.T / ss.n_s


def gd_obligations(A=None, B=None) -> list[Obligation]:
    """(AR5)'s obligation: one (W2) layer with the GD-class blocks on the prompt, whole output."""
    A = MatrixSymbol("A", ss.d_s, ss.d_s) if A is None else A
    B = MatrixSymbol("B", ss.d_s, ss.d_s) if B is None else B
    Z = prompt_expr()
    P = ss._grid(ROWS, ROWS, {(0, 1): A})
    Q = ss._grid(ROWS, ROWS, {(2, 1): B})
    lhs = ss.masked_block_expr(Z, P, Q, ss.n_s)
    W_1 = A * (-gradient_expr(ZeroMatrix(ss.d_s, ss.d_s))) * B
    target = prompt_expr(W_1 * S_next, W_1 * q_next)
    return [Obligation("layer", lhs, target, ROWS, COLS, Z, (("masked", (P, Q), None),))]


def prove_gd_all_sizes() -> SymbolicProof:
    """(AR5) for every d, t: the GD-class layer is one preconditioned gradient step from 0 on the
    sequence's past, read at the query (:func:`gd_obligations`). Proves the block identity for
    symbolic sizes; the sizes' row says ``d = all, t = all``."""
    t0 = time.perf_counter()
    return ss._prove("(AR5)", {"d": "all", "t": "all"}, gd_obligations(), t0)
