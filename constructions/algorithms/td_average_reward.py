r"""(W7) [W]: batch average-reward TD (gamma = 1) with the running mean computed in context.

.. math::

    w_{l+1} = w_l + \frac{\alpha}{n} \sum_{i=1}^{n} \delta_i(w_l)\, \phi_i, \qquad
    \delta_i(w) = r_i - \bar r_i + w^\top \phi_i' - w^\top \phi_i, \qquad
    \bar r_i = \frac1i \sum_{k=1}^{i} r_k, \qquad w_0 = 0,

``rbar_i`` the running mean of the rewards in context order (column ``i`` of the prompt averages
columns ``1..i``). Read out as :math:`-Z_L[-1, -1] = w_L^\top \phi(s)`.

Prompt (:func:`average_reward_prompt`), ``D = 2d + 2`` rows: context column ``i`` is
``[phi_i; phi_i'; r_i; 0]`` (undiscounted), the query ``[phi(s); 0; 0; 0]``. Row ``2d`` keeps the
rewards for every layer; the last row (the value row, zero at the start) accumulates.

Construction (:func:`td_average_reward`): two heads per layer, both with [W]'s TD key-query
matrix ``Q[:d, :2d] = alpha [-I, I]``:

- the reward head ``P_r = e_D e_{2d}^T`` (value: the reward row) with the running-mean mask
  ``N = diag(I_n, 0) - U``, ``U[k, i] = 1/i`` for ``k <= i`` (1-based;
  :func:`~lsa_theory.constructions.numeric.running_mean_mask`),
  so that :math:`\sum_k r_k N_{ki} = r_i - \bar r_i`;
- the value head ``P_v = e_D e_D^T`` (value: the value row) with ``M = diag(I_n, 0)``.

The layer is ``Z + (1/n) P_r Z N Z^T Q Z + (1/n) P_v Z M Z^T Q Z``. If the value row holds
``w_l^T (phi_k' - phi_k)`` on context columns and ``-w_l^T phi(s)`` on the query (true for
``w_0 = 0``), the two values add up to ``delta_i(w_l)``, and the layer adds
``g^T (phi_k' - phi_k)``, ``-g^T phi(s)`` with ``g = (alpha/n) sum_i delta_i(w_l) phi_i``:
**L layers are L average-reward TD steps**, the running mean recomputed from the untouched reward
row by every layer. This is [W]'s construction (their ``AVGREWTDLayer``: head 1 on the reward row
with mask ``R M``, ``R = triu(1) diag(1/k) - I``, head 2 on the last row) up to the sign of the
value row, chosen here so that the readout is ``-Z[-1, -1]`` as in (W2).

A simpler construction holds for one layer only (:func:`single_head_average_reward`): on the
(W1) layout with ``gamma = 1`` (``D = 2d + 1``, the reward row is the value row) one head with the
(W3) pair and the mask ``N`` gives one average-reward TD step from ``w_0 = 0``; a second such
layer subtracts the running mean of the whole TD error, not of the rewards, and is *not* a second
step (shown in the tests).
"""

from __future__ import annotations

import numpy as np

import lsa_theory as lt
from lsa_theory.checks import as_float_array, check_int, check_real
from lsa_theory.reference import as_values, naive_td_error

from .. import numeric
from ..symbolic import exact_masked_block
from . import _common
from . import td as td_decl

__all__ = [
    "td_average_reward",
    "average_reward_prompt",
    "average_reward_layer",
    "average_reward_stack",
    "single_head_average_reward",
    "naive_average_reward_td",
]

Pair = tuple[np.ndarray, np.ndarray]


def _heads(d: int, alpha, zeros, one):
    D = 2 * d + 2
    P_r, P_v, Q = zeros(D, D), zeros(D, D), zeros(D, D)
    P_r[D - 1, 2 * d] = one
    P_v[D - 1, D - 1] = one
    for j in range(d):
        Q[j, j] = -alpha
        Q[j, d + j] = alpha
    return (P_r, Q), (P_v, Q)


def td_average_reward(d: int, alpha: float) -> tuple[Pair, Pair]:
    """(W7): the two heads ``((P_r, Q), (P_v, Q))`` of one layer, arrays (2d+2, 2d+2): the reward
    head (use with :func:`~lsa_theory.constructions.numeric.running_mean_mask`) and the value head (mask
    ``diag(I_n, 0)``);
    ``dtype=object`` arrays for a symbolic ``alpha``."""
    d = check_int(d, "d")
    exact = numeric.is_exact(alpha)
    if not exact:
        alpha = check_real(alpha, "alpha", low=0.0, low_open=True)
    return _heads(d, alpha, lambda a, b: numeric.zeros((a, b), exact), 1 if exact else 1.0)


def average_reward_prompt(phi, phi_next, r, phi_query) -> np.ndarray:
    """(W7) prompt (2d+2, n+1): context columns ``[phi_i; phi_i'; r_i; 0]``, query
    ``[phi(s); 0; 0; 0]``; ``phi``, ``phi_next`` (n, d), ``r`` (n,), ``phi_query`` (d,)."""
    phi = as_float_array(phi, "phi", ndim=2)
    phi_next = as_float_array(phi_next, "phi_next", ndim=2)
    r = as_float_array(r, "r", ndim=1)
    q = as_float_array(phi_query, "phi_query", ndim=1)
    n, d = phi.shape
    if n == 0 or phi_next.shape != phi.shape:
        raise ValueError(
            f"phi, phi_next: expected equal shapes (n, d), n >= 1, got {phi.shape}, {phi_next.shape}"
        )
    if r.shape != (n,):
        raise ValueError(f"r: expected shape ({n},), got {r.shape}")
    if q.shape != (d,):
        raise ValueError(f"phi_query: expected shape ({d},), got {q.shape}")
    Z = np.zeros((2 * d + 2, n + 1))
    Z[:d, :n], Z[d : 2 * d, :n], Z[2 * d, :n] = phi.T, phi_next.T, r
    Z[:d, n] = q
    return Z


def average_reward_layer(Z: np.ndarray, heads: tuple[Pair, Pair]) -> np.ndarray:
    """One (W7) layer: ``Z + (1/n) P_r Z N Z^T Q_r Z + (1/n) P_v Z M Z^T Q_v Z`` on Z (2d+2, n+1),
    the reward head with :func:`~lsa_theory.constructions.numeric.running_mean_mask`, the value head
    with ``diag(I_n, 0)``."""
    (P_r, Q_r), (P_v, Q_v) = heads
    n = Z.shape[-1] - 1
    reward = lt.masked_lsa(Z, P_r, Q_r, mask=numeric.running_mean_mask(n)) - Z
    return lt.masked_lsa(Z, P_v, Q_v) + reward


def average_reward_stack(Z: np.ndarray, layers) -> np.ndarray:
    """L layers of :func:`average_reward_layer`, ``layers = [heads_1, ...]``, each
    ``heads = ((P_r, Q_r), (P_v, Q_v))``; ``Z`` (2d+2, n+1) real (ValueError naming the argument).
    A ``dtype=object`` ``Z`` (ring elements of :mod:`lsa_theory.constructions.symbolic`) runs the same layer
    in exact arithmetic, with :func:`~lsa_theory.constructions.numeric.running_mean_mask` exact."""
    if numeric.is_exact(Z):
        n = Z.shape[-1] - 1
        N, M = numeric.running_mean_mask(n, exact=True), np.diag([1] * n + [0]).astype(object)
        for (P_r, Q_r), (P_v, Q_v) in layers:
            Z = exact_masked_block(Z, P_v, Q_v, M) + (exact_masked_block(Z, P_r, Q_r, N) - Z)
        return Z
    Z = as_float_array(Z, "Z", ndim=2)
    if Z.shape[-1] < 2:
        raise ValueError(f"Z: expected (2d+2, n+1) with n >= 1, got shape {Z.shape}")
    if not isinstance(layers, list | tuple) or len(layers) < 1:
        raise ValueError(
            f"layers: need a sequence of at least one pair of heads, got {type(layers).__name__}"
        )

    def pair(x) -> bool:
        return not isinstance(x, str) and hasattr(x, "__len__") and len(x) == 2

    for heads in layers:
        if not pair(heads) or not all(pair(h) for h in heads):
            raise ValueError("layers: each layer must be a pair of heads ((P_r, Q_r), (P_v, Q_v))")
    for heads in layers:
        Z = average_reward_layer(Z, heads)
    return Z


def single_head_average_reward(phi, phi_next, r, phi_query, alpha: float, n_layers: int = 1) -> np.ndarray:
    """The one-layer shortcut: ``n_layers`` masked blocks with the (W3) pair and
    :func:`~lsa_theory.constructions.numeric.running_mean_mask` on the (W1) layout with ``gamma = 1``;
    returns ``-Z_L[-1, -1]``.
    Equals one (W7) step from 0 for ``n_layers = 1`` only."""
    Z = average_reward_prompt(phi, phi_next, r, phi_query)[:-1]
    d, n = (Z.shape[0] - 1) // 2, Z.shape[1] - 1

    Z = lt.masked_lsa_stack(
        Z, [numeric.td(d, alpha)] * check_int(n_layers, "n_layers"), mask=numeric.running_mean_mask(n)
    )
    return -Z[-1, -1]


def naive_average_reward_td(phi, phi_next, r, alpha, n_iter: int = 1, w0=None) -> np.ndarray:
    """(W7) by explicit loops: ``n_iter`` batch steps from ``w0`` (default 0) with
    ``delta_i = r_i - rbar_i + w^T phi_i' - w^T phi_i``, ``rbar_i`` the running mean of
    ``r_0..r_i`` (0-based) kept as a running sum; returns ``w`` (d,)."""
    w, n, d = _common.naive_start(phi, phi_next, r, w0)
    n_iter = check_int(n_iter, "n_iter")
    _common.check_loop_inputs(w, r, alpha=alpha)
    for _ in range(n_iter):
        new = list(w)
        total = 0
        for i in range(n):
            total = total + r[i]
            delta = naive_td_error(phi[i], phi_next[i], r[i] - total / (i + 1), w, 1)
            for j in range(d):
                new[j] = new[j] + alpha * delta * phi[i][j] / n
        w = new
    return as_values(w)


# ------------------------------------------------------------------------------- declaration


class TDAverageReward(td_decl.TD):
    """(W7) as a registry declaration: two heads per layer on the (W7) prompt (``D = 2d + 2``),
    gamma = 1; the stack is the declaration's own (:meth:`stack`), so no bilinear (M2) form."""

    name = "td_average_reward"
    claim = "(W7)"
    statement = "L two-head layers (running-mean mask) = L average-reward TD steps from 0, gamma = 1"
    hyper = {"alpha": 0.2}
    hyper_ranges = {"alpha": (0.05, 1.0)}
    depths = (1, 2, 4)
    symbolic_depths = (2,)
    bilinear = False

    def columns(self, inst, hyper):
        phi, phi_next, r = (np.asarray(inst[k]) for k in ("phi", "phi_next", "r"))
        X = np.concatenate([phi.T, phi_next.T, r[None, :], np.zeros((1, phi.shape[0]), dtype=phi.dtype)])
        return X, td_decl.td_query(inst, X.shape[0])

    def naive(self, inst, hyper, depth):
        w = naive_average_reward_td(inst["phi"], inst["phi_next"], inst["r"], hyper["alpha"], n_iter=depth)
        return td_decl.query_value(w, inst["q"])

    teacher_readout = None

    pair = staticmethod(td_average_reward)

    def all_sizes_forms(self):
        """(W7) for every d, n, L: the two-head layer in block algebra with any reward mask
        ``N_n`` (induction on L), and the running-mean mask's ``(r^T N)_i = r_i - rbar_i`` for
        every n (:mod:`lsa_theory.constructions.symbolic_sizes_w7`), linked through the two-head form."""
        from ..proof_forms import average_reward_forms

        return average_reward_forms()

    def stack(self, Z, layers, mask=None):
        return average_reward_stack(Z, layers)


ALGORITHM = TDAverageReward()
