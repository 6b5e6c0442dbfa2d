r"""(R2), (R3) for every size: in-context regression in block algebra with symbolic ``d``, ``N``.

The method is that of :mod:`lsa_theory.constructions.symbolic_sizes`, which this module builds on
(a topic of its own: regression's masked layer): the (R1) prompt ``[[X, x_q], [y^T, 0]]``
is a ``BlockMatrix`` of ``MatrixSymbol``\ s (``X`` d x N, ``y`` N x 1, ``x_q`` d x 1), the masked
layer (W2) with :func:`lsa_theory.constructions.symbolic_sizes.regression_blocks` is applied and each output
block minus its target is reduced to the normal form of :mod:`lsa_theory.constructions.matrix_words`. The
block builders are read from :mod:`lsa_theory.constructions.symbolic_sizes` at call time.
"""

from __future__ import annotations

import time

from sympy import BlockMatrix, Identity, MatrixSymbol, ZeroMatrix

from . import symbolic_sizes as ss
from .matrix_words import Obligation
from .symbolic import SymbolicProof

__all__ = [
    "X_reg",
    "y_vec",
    "xq_vec",
    "R_ROWS",
    "regression_prompt_expr",
    "regression_gradient_expr",
    "prove_regression_gd_all_sizes",
    "regression_gd_obligations",
    "prove_preconditioned_gd_all_sizes",
    "preconditioned_gd_update_expr",
    "preconditioned_gd_obligations",
]

X_reg = MatrixSymbol("X", ss.d_s, ss.N_s)
y_vec = MatrixSymbol("y", ss.N_s, 1)
xq_vec = MatrixSymbol("x_q", ss.d_s, 1)
R_ROWS = (ss.d_s, 1)


def regression_prompt_expr(w) -> BlockMatrix:
    """The (R3) invariant prompt at parameter ``w``: ``[[X, x_q], [(y - X^T w)^T, -x_q^T w]]``
    (rows ``(d | 1)``, columns ``(N | 1)``); at ``w = 0`` the (R1) prompt ``[[X, x_q], [y^T, 0]]``."""
    return ss._grid(
        R_ROWS,
        (ss.N_s, 1),
        {(0, 0): X_reg, (0, 1): xq_vec, (1, 0): (y_vec - X_reg.T * w).T, (1, 1): -xq_vec.T * w},
    )


def regression_gradient_expr(w):
    """``grad R(w) = (1/N) X (X^T w - y)`` of ``R(w) = (1/2N) sum_i (w^T x_i - y_i)^2`` (d x 1)."""
    return X_reg * (X_reg.T * w - y_vec) / ss.N_s


def prove_regression_gd_all_sizes() -> SymbolicProof:
    """(R2) for every d, N, eta, proving THEORY's statement: one masked layer (W2) with
    ``P = e_{d+1} e_{d+1}^T``, ``Q = [[eta I_d, 0], [0, 0]]`` on ``E = [[X, x_q], [y^T, 0]]``
    gives ``E_out[-1, -1] = x_q^T w_1``, ``w_1 = -eta grad R(0) = (eta/N) X y`` (one GD step
    from 0). Whole output checked: the feature rows are unchanged and the context's last row
    becomes ``y^T + (eta/N) y^T X^T X``. 4 blocks."""
    t0 = time.perf_counter()
    return ss._prove("(R2)", {"d": "all", "N": "all"}, regression_gd_obligations(), t0)


def regression_gd_obligations() -> list[Obligation]:
    """(R2)'s obligation: one masked layer with ``Q = [[eta I, 0], [0, 0]]`` on (R1) (whole output)."""
    E = regression_prompt_expr(ZeroMatrix(ss.d_s, 1))
    P, Q = ss.regression_blocks(-ss.eta_s * Identity(ss.d_s))
    lhs = ss.masked_block_expr(E, P, Q, ss.N_s)
    w_1 = -ss.eta_s * regression_gradient_expr(ZeroMatrix(ss.d_s, 1))
    target = ss._grid(
        R_ROWS,
        (ss.N_s, 1),
        {
            (0, 0): X_reg,
            (0, 1): xq_vec,
            (1, 0): y_vec.T + ss.eta_s / ss.N_s * y_vec.T * X_reg.T * X_reg,
            (1, 1): xq_vec.T * w_1,
        },
    )
    return [Obligation("layer", lhs, target, R_ROWS, (ss.N_s, 1), E, (("masked", (P, Q), None),))]


def prove_preconditioned_gd_all_sizes() -> SymbolicProof:
    """(R3) for every d, N, L, proving THEORY's statement: layers with ``P_l = e_{d+1}
    e_{d+1}^T``, ``Q_l = [[-A_l, 0], [0, 0]]`` (``A_l`` any d x d matrix) give in the query's last
    entry ``-x_q^T w_L``, ``w_{l+1} = w_l - A_l^T grad R(w_l)``, ``w_0 = 0``. Induction on L with
    the invariant ``regression_prompt_expr(w_l)`` (the context's last row holds the residuals
    ``y_i - w_l^T x_i``, the query's ``-x_q^T w_l``): base at ``w = 0`` and step for a generic
    ``w`` and ``A`` checked, whole output. 8 blocks."""
    t0 = time.perf_counter()
    sizes = {"d": "all", "N": "all", "L": "all (induction)"}
    return ss._prove("(R3)", sizes, preconditioned_gd_obligations(), t0)


def preconditioned_gd_update_expr(w, A=None):
    """(R3)'s step: ``w - A^T grad R(w)`` (``A`` default the d x d matrix symbol ``A``)."""
    A = MatrixSymbol("A", ss.d_s, ss.d_s) if A is None else A
    return w - A.T * regression_gradient_expr(w)


def preconditioned_gd_obligations() -> list[Obligation]:
    """(R3)'s base (the invariant at ``w = 0`` is (R1)) and step (one layer with a generic ``A``)."""
    E1 = ss._grid(R_ROWS, (ss.N_s, 1), {(0, 0): X_reg, (0, 1): xq_vec, (1, 0): y_vec.T})
    base = Obligation("base", regression_prompt_expr(ZeroMatrix(ss.d_s, 1)), E1, R_ROWS, (ss.N_s, 1))
    P, Q = ss.regression_blocks(MatrixSymbol("A", ss.d_s, ss.d_s))
    E = regression_prompt_expr(ss.w_vec)
    lhs = ss.masked_block_expr(E, P, Q, ss.N_s)
    target = regression_prompt_expr(preconditioned_gd_update_expr(ss.w_vec))
    step = Obligation("step", lhs, target, R_ROWS, (ss.N_s, 1), E, (("masked", (P, Q), None),))
    return [base, step]
