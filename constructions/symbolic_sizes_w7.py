r"""(W7) for every size: the two-head average-reward TD layer in block algebra with symbolic ``d``, ``n``.

The method is that of :mod:`lsa_theory.constructions.symbolic_sizes` (whose helpers this module reuses; kept
apart only so that neither module passes ~500 lines): the prompt is a ``sympy.BlockMatrix`` of
``MatrixSymbol``\ s with shapes in the positive integer symbols ``d``, ``n``, the layer is applied
with ``block_collapse`` and each output block minus its target is reduced to the normal form of
:mod:`lsa_theory.constructions.matrix_words`.

The (W7) prompt (``lsa_theory.constructions.average_reward_prompt``) has the row blocks ``(d | d | 1 | 1)``
(features ``Phi``, undiscounted next features ``Phi_next``, the reward row ``r^T``, the value row)
and the column blocks ``(n | 1)`` (context, query ``q = phi(s)``). The layer has two heads with the
same key-query block ``Q[phi, phi] = -alpha I``, ``Q[phi, phi'] = alpha I``:

- reward head ``P_r = e_D e_{2d}^T`` with the mask ``diag(N_n, 0)``, ``N_n`` an **arbitrary**
  n x n matrix symbol (the shipped running-mean mask ``I_n - U`` is one instance);
- value head ``P_v = e_D e_D^T`` with the mask ``diag(I_n, 0)``.

Two rows, which together give (W7) for every ``d, n, L``:

1. :func:`prove_td_average_reward_all_sizes` (block algebra, induction on L): the layer maps the
   invariant prompt at ``w`` to the invariant prompt at ``w + (alpha/n) Phi (N_n^T r +
   (Phi_next - Phi)^T w)``, i.e. one batch average-reward TD step with ``r_i - rbar_i`` replaced by
   ``(r^T N_n)_i``;
2. :func:`prove_running_mean_mask_all_sizes` (a sympy ``Sum`` with symbolic ``n`` and column
   index ``i``): for the running-mean entries ``N[k, i] = [k = i] - [k <= i]/(i+1)`` (0-based, those
   of :func:`lsa_theory.constructions.running_mean_mask`), ``sum_k r_k N[k, i] = r_i - rbar_i``.
"""

from __future__ import annotations

import time

import sympy as sp
from sympy import Identity, MatrixSymbol, ZeroMatrix

from . import symbolic_sizes as ss
from .matrix_words import Obligation
from .symbolic import SymbolicProof, alpha_s

__all__ = [
    "W7_ROWS",
    "N_n",
    "average_reward_blocks",
    "average_reward_prompt_expr",
    "average_reward_layer_expr",
    "average_reward_update_expr",
    "average_reward_obligations",
    "running_mean_entry",
    "prove_td_average_reward_all_sizes",
    "prove_running_mean_mask_all_sizes",
]

#: Row blocks of the (W7) prompt: phi, phi' (undiscounted), reward row, value row.
W7_ROWS = (ss.d_s, ss.d_s, 1, 1)
#: The context part of the reward head's mask (the full mask is ``diag(N_n, 0)``), any n x n matrix.
N_n = MatrixSymbol("N_n", ss.n_s, ss.n_s)

Phi, Phi_next, r_vec, q_vec = ss.Phi, ss.Phi_next, ss.r_vec, ss.q_vec


def average_reward_blocks(alpha=alpha_s) -> tuple:
    """(W7) heads on the row blocks ``W7_ROWS``: ``(P_r, P_v, Q)`` with ``P_r = e_D e_{2d}^T``
    (block ``[value, reward] = 1``), ``P_v = e_D e_D^T`` (block ``[value, value] = 1``) and the
    shared ``Q`` zero except ``Q[phi, phi] = -alpha I_d``, ``Q[phi, phi'] = alpha I_d``."""
    a = alpha * Identity(ss.d_s)
    P_r = ss._grid(W7_ROWS, W7_ROWS, {(3, 2): ss.ONE})
    P_v = ss._grid(W7_ROWS, W7_ROWS, {(3, 3): ss.ONE})
    Q = ss._grid(W7_ROWS, W7_ROWS, {(0, 0): -a, (0, 1): a})
    return P_r, P_v, Q


def average_reward_layer_expr(Z, blocks, mask=N_n, n=ss.n_s):
    """One (W7) layer as a matrix expression: ``Z + (1/n) P_r Z diag(mask, 0) Z^T Q Z + (1/n) P_v
    Z diag(I_n, 0) Z^T Q Z`` (two (W2) blocks on the same ``Z``; ``mask`` n x n, the reward head's)."""
    P_r, P_v, Q = blocks
    reward = ss.masked_block_expr(Z, P_r, Q, n, mask=mask) - Z
    return ss.masked_block_expr(Z, P_v, Q, n) + reward


def average_reward_prompt_expr(w):
    """The (W7) invariant prompt at parameter ``w`` (d x 1): ``[[Phi, q], [Phi_next, 0], [r^T, 0],
    [w^T (Phi_next - Phi), -q^T w]]`` (rows ``W7_ROWS``, columns ``(n | 1)``); at ``w = 0`` the
    prompt of ``lsa_theory.constructions.average_reward_prompt`` (value row zero)."""
    return ss._grid(
        W7_ROWS,
        ss.H_COLS,
        {
            (0, 0): Phi,
            (0, 1): q_vec,
            (1, 0): Phi_next,
            (2, 0): r_vec.T,
            (3, 0): w.T * (Phi_next - Phi),
            (3, 1): -q_vec.T * w,
        },
    )


def average_reward_update_expr(w, mask=N_n, alpha=alpha_s):
    """(W7) in matrix form with a generic reward mask: ``w + (alpha/n) Phi (mask^T r + (Phi_next -
    Phi)^T w)`` (d x 1); with the running-mean mask ``(mask^T r)_i = r_i - rbar_i`` and this is the
    batch average-reward TD step ``w + (alpha/n) sum_i delta_i(w) phi_i``."""
    return w + alpha / ss.n_s * Phi * (mask.T * r_vec + (Phi_next - Phi).T * w)


def prove_td_average_reward_all_sizes() -> SymbolicProof:
    """(W7), block part, for every d, n, alpha, every reward mask ``N_n`` (an n x n matrix
    symbol) and every L, by induction on L.

    Invariant after l layers: ``Z_l = average_reward_prompt_expr(w_l)`` (feature, next-feature and
    reward rows those of the prompt; value row ``w_l^T (phi_k' - phi_k)`` on context column k and
    ``-q^T w_l`` on the query). Base (checked): at ``w_0 = 0`` it is the (W7) prompt with its value
    row zero. Step (checked, whole output, 8 blocks, for an arbitrary symbol ``w``): one layer
    (:func:`average_reward_layer_expr` with :func:`average_reward_blocks`) maps the invariant at
    ``w`` to the invariant at :func:`average_reward_update_expr` ``(w)``. Hence ``-Z_L[-1, -1] =
    q^T w_L``, ``w_L`` = L steps ``w + (alpha/n) Phi (N_n^T r + (Phi_next - Phi)^T w)`` from 0; the
    reward row, which every layer reads, is never written. With the running-mean mask
    (:func:`prove_running_mean_mask_all_sizes`) these are the (W7) steps. 16 blocks (8 + 8)."""
    t0 = time.perf_counter()
    return ss._prove("(W7)", dict(ss.ALL_L), average_reward_obligations(), t0)


def average_reward_obligations() -> list[Obligation]:
    """(W7)'s base (the invariant at ``w = 0`` is the prompt) and step (one two-head layer)."""
    W7_0 = ss._grid(W7_ROWS, ss.H_COLS, {(0, 0): Phi, (0, 1): q_vec, (1, 0): Phi_next, (2, 0): r_vec.T})
    base = Obligation("base", average_reward_prompt_expr(ZeroMatrix(ss.d_s, 1)), W7_0, W7_ROWS, ss.H_COLS)
    blocks = average_reward_blocks()
    Z = average_reward_prompt_expr(ss.w_vec)
    target = average_reward_prompt_expr(average_reward_update_expr(ss.w_vec))
    layers = (("two_heads", blocks, N_n),)
    step = Obligation("step", average_reward_layer_expr(Z, blocks), target, W7_ROWS, ss.H_COLS, Z, layers)
    return [base, step]


def running_mean_entry(k, i):
    """Entry ``N[k, i]`` (0-based, ``0 <= k, i < n``) of the running-mean mask of (W7) as a sympy
    expression: ``[k = i] - [k <= i] / (i + 1)``, so ``sum_k r_k N[k, i] = r_i - mean(r_0..r_i)``."""
    return sp.KroneckerDelta(k, i) - sp.Piecewise((1 / (i + 1), k <= i), (0, True))


def prove_running_mean_mask_all_sizes(entry=running_mean_entry) -> SymbolicProof:
    """(W7), mask part, for every n and every column ``0 <= i < n``: ``sum_{k=0}^{n-1} r_k
    N[k, i] = r_i - rbar_i``, ``rbar_i = (1/(i+1)) sum_{k=0}^{i} r_k``, with ``N[k, i] =
    entry(k, i)`` (default :func:`running_mean_entry`).

    ``n``, ``i``, ``j`` are sympy integer symbols (``j >= 0``), ``r`` an ``IndexedBase``. The sum
    over ``k`` is split at ``i`` (additivity of finite sums, valid for ``0 <= i <= n-1``) and each
    part reindexed: ``k = i - j``, ``j = 0..i`` and ``k = i + 1 + j``, ``j = 0..n-i-2``. On these
    ranges sympy decides the mask's conditions itself from ``j >= 0`` (``i - j <= i``; ``i + 1 + j
    > i`` and ``i + 1 + j != i``), and ``Sum(...).doit()`` minus the target, both parts added, must
    simplify to 0. One entry. That the entries are those of
    :func:`lsa_theory.constructions.running_mean_mask` is checked at n = 1..8 by the tests."""
    t0 = time.perf_counter()
    n, i, j, k = sp.symbols("n i j k", integer=True, nonnegative=True)
    r = sp.IndexedBase("r")
    head = sp.Sum((r[k] * entry(k, i)).subs(k, i - j), (j, 0, i)).doit()
    tail = sp.Sum((r[k] * entry(k, i)).subs(k, i + 1 + j), (j, 0, n - i - 2)).doit()
    rbar = sp.Sum(r[k], (k, 0, i)).change_index(k, i - k, j) / (i + 1)
    residual = sp.simplify(head + tail - (r[i] - rbar))
    sizes = {"n": "all", "i": "all < n"}
    return SymbolicProof("(W7)", sizes, 1, int(residual != 0), time.perf_counter() - t0)
