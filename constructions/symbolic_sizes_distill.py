r"""(AD1) for every size: one episode-masked (S3) layer is one source step, in block algebra with
symbolic ``d``, ``n`` (the episode's length H) and ``m`` (the columns of every other episode).

The method is that of :mod:`lsa_theory.constructions.symbolic_sizes`. The prompt ``H(h; w_k)`` has
rows ``(d | d | 1 | 1 | d)`` and columns ``(n | m | 1)``: the episode the layer reads
(``[Phi; gamma Phi_next; r^T]``, n columns), the other episodes (``[Phi_o; gamma Phi_next_o; r_o^T]``,
m columns, free symbols: they stand for every episode before and after), and the parameter column
``[0; 1; w_k]``. The layer is (L1) with the column mask ``M = diag(I_n, 0_m, 0)`` and the norm ``1/n``,

.. math:: H \leftarrow H + \tfrac1n (V H) M (H^\top P H),

with the (S3) blocks ``(c P*, V*/c)`` (a free scale ``c_k``). The obligation (whole output matrix):
the layer maps ``H(h; w_k)`` to ``H(h; w_k + (alpha/n) Phi delta(w_k))`` for a free ``w_k``, i.e. the
source's step on the episode it reads, and leaves every context column and the constant row as they
are. Placing the read episode first loses nothing: a masked layer is equivariant under a permutation
``Pi`` of the columns applied to ``H`` and ``M`` together (``(V H Pi)(Pi^T M Pi)(Pi^T H^T P H Pi) =
(V H M H^T P H) Pi``). Hence, by induction on k as for (S5), K layers, layer k masking episode k,
output the source's ``w_{K+1}`` from ``H(h_K; w_0)``, for every d, H, K.

Not linked to the registry's ``verify`` rows (the declaration ``ad_masked_sarsa`` has sizes ``d``,
``H``, ``K``; the link of :mod:`lsa_theory.constructions.proof_link` draws at sizes ``d``, ``n``):
tests/constructions/test_distill_exact.py proves it and checks that the pooled layer (no mask) and a
wrong norm fail.
"""

from __future__ import annotations

import time

import sympy as sp
from sympy import Identity, MatrixSymbol

from . import symbolic_sizes as ss
from .matrix_words import Obligation
from .symbolic import SymbolicProof

__all__ = [
    "COLS",
    "m_s",
    "prompt_expr",
    "masked_layer_expr",
    "step_obligations",
    "prove_masked_step_all_sizes",
]

#: Columns of the other episodes (every episode but the one the layer reads).
m_s = sp.Symbol("m", integer=True, positive=True)
Phi_o = MatrixSymbol("Phi_o", ss.d_s, m_s)
Phi_next_o = MatrixSymbol("Phi_next_o", ss.d_s, m_s)
r_o = MatrixSymbol("r_o", m_s, 1)
COLS = (ss.n_s, m_s, 1)


def prompt_expr(w) -> sp.BlockMatrix:
    """``H(h; w)`` with the read episode first: rows ``(d | d | 1 | 1 | d)``, columns ``(n | m | 1)``."""
    g = ss.gamma_s
    return ss._grid(
        ss.H_ROWS,
        COLS,
        {
            (0, 0): ss.Phi,
            (1, 0): g * ss.Phi_next,
            (2, 0): ss.r_vec.T,
            (0, 1): Phi_o,
            (1, 1): g * Phi_next_o,
            (2, 1): r_o.T,
            (3, 2): ss.ONE,
            (4, 2): w,
        },
    )


def masked_layer_expr(H, P, V, mask_other: bool = False, norm=None):
    """``H + (1/n) (V H) M (H^T P H)`` with ``M = diag(I_n, 0_m, 0)`` (``mask_other``: ``diag(I_n,
    I_m, 0)``, the pooled layer; ``norm``: another normalisation, for the mutations)."""
    entries = {(0, 0): Identity(ss.n_s)}
    if mask_other:
        entries[(1, 1)] = Identity(m_s)
    M = ss._grid(COLS, COLS, entries)
    return H + V * H * M * H.T * P * H / (ss.n_s if norm is None else norm)


def step_obligations(**layer) -> list[Obligation]:
    """(AD1)'s induction step: one masked layer ``(c_k P*, V*/c_k)`` on ``H(h; w_k)`` equals
    ``H(h; w_k + (alpha/n) Phi delta(w_k))``, whole output, ``w_k`` and ``c_k`` free."""
    w = MatrixSymbol("w_k", ss.d_s, 1)
    P, V = ss.sarsa_blocks(ss.alpha_s, sp.Symbol("c_k", real=True))
    H = prompt_expr(w)
    lhs = masked_layer_expr(H, P, V, **layer)
    return [Obligation("masked layer", lhs, prompt_expr(ss.sarsa_update_expr(w)), ss.H_ROWS, COLS, H)]


def prove_masked_step_all_sizes(**layer) -> SymbolicProof:
    """(AD1) for every d, H, K (module docstring): the induction step for symbolic ``d``, ``n`` (= H)
    and ``m`` (the other columns). ``layer`` passes mutations to :func:`masked_layer_expr`."""
    t0 = time.perf_counter()
    return ss._prove("(AD1)", {"d": "all", "H": "all", "K": "all (induction)"}, step_obligations(**layer), t0)
