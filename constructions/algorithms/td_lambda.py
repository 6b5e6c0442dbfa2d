r"""(W5) [W]: batch TD(lambda) through the eligibility-trace mask.

.. math::

    w_{l+1} = w_l + \frac{\alpha}{n} \sum_{j=1}^{n} \delta_j(w_l)\, e_j, \qquad
    e_j = \lambda e_{j-1} + \phi_j,\quad e_0 = 0, \qquad
    \delta_j(w) = r_j + \gamma w^\top \phi_j' - w^\top \phi_j, \qquad w_0 = 0,

the trace running over the context in its order (``lam`` is [W]'s trace decay; the textbook
choice is ``gamma * lambda``). Read out as :math:`-Z_L[-1, -1] = w_L^\top \phi(s)`.

Construction: the (W3) pair ``(P, Q)`` (``P = e_D e_D^T``, ``Q[:d, :2d] = alpha [-I, I]``) in
the masked block (W2) with ``M =`` :func:`lsa_theory.trace_mask`, ``M[i, j] = lam^(i-j)`` for
``j <= i < n`` (lower triangular), zero in the query row and column. The block sums
``(P z_i) M[i, j] z_j^T Q z_k`` over value columns ``i`` and key columns ``j``, and
:math:`\sum_{i,j} \delta_i M_{ij} \phi_j = \sum_j \phi_j \sum_{i \ge j} \lambda^{i-j} \delta_i
= \sum_i \delta_i e_i`. With ``g = (alpha/n) sum_i delta_i e_i`` the layer adds
``g^T (gamma phi_k' - phi_k)`` to context column ``k``'s last entry and ``-g^T phi(s)`` to the
query's, which keeps the last row equal to ``(delta_k(w_l), -w_l^T phi(s))``: **L masked layers
are L TD(lambda) steps** on the same batch, each with the TD errors of the current ``w_l`` and the
same trace (which depends on the features only). The transposed mask runs the trace backwards
and fails (checked in the tests); ``lam = 0`` is (W3).
"""

from __future__ import annotations

import numpy as np

import lsa_theory as lt
from lsa_theory.checks import check_int
from lsa_theory.reference import as_values, naive_td_error

from .. import numeric
from . import _common
from . import td as td_decl

__all__ = ["td_lambda", "trace_mask", "naive_batch_td_lambda"]


def td_lambda(d: int, alpha: float, lam: float) -> tuple[np.ndarray, np.ndarray]:
    """(W5): ``(P, Q)`` of shape (2d+1, 2d+1), equal to the (W3) pair; the trace decay ``lam``
    (checked here, ``0 <= lam <= 1``) enters through the mask ``lsa_theory.trace_mask(n, lam)``
    passed to :func:`lsa_theory.masked_lsa` / ``masked_lsa_stack``. A symbolic ``alpha`` or
    ``lam`` gives the exact (``dtype=object``) pair."""
    if not numeric.is_exact(lam):
        _common.check_lam(lam)
    return numeric.td(d, alpha)


def trace_mask(n: int, lam, n_queries: int = 1) -> np.ndarray:
    """:func:`lsa_theory.trace_mask` (float64) for a numeric ``lam``; for a symbolic ``lam`` the
    same mask as a ``dtype=object`` array, ``M[i, j] = lam**(i-j)`` for ``j <= i < n``."""
    if not numeric.is_exact(lam):
        return lt.trace_mask(n, lam, n_queries)
    n, n_queries = check_int(n, "n"), check_int(n_queries, "n_queries")
    M = numeric.zeros((n + n_queries, n + n_queries), True)
    for i in range(n):
        for j in range(i + 1):
            M[i, j] = lam ** (i - j)
    return M


def naive_batch_td_lambda(phi, phi_next, r, gamma, alpha, lam, n_iter: int = 1, w0=None) -> np.ndarray:
    """(W5) by explicit loops: ``n_iter`` batch TD(lambda) steps from ``w0`` (default 0), the trace
    ``e_j = lam e_{j-1} + phi_j`` rebuilt in context order at every step; returns ``w`` (d,)."""
    w, n, d = _common.naive_start(phi, phi_next, r, w0)
    n_iter = check_int(n_iter, "n_iter")
    _common.check_loop_inputs(w, r, gamma=gamma, lam=lam, alpha=alpha)
    for _ in range(n_iter):
        e = [0] * d
        new = list(w)
        for i in range(n):
            for j in range(d):
                e[j] = lam * e[j] + phi[i][j]
            delta = naive_td_error(phi[i], phi_next[i], r[i], w, gamma)
            for j in range(d):
                new[j] = new[j] + alpha * delta * e[j] / n
        w = new
    return as_values(w)


# ------------------------------------------------------------------------------- declaration

#: Trace decays drawn per instance by the declaration's verify rows: the ends of [0, 1] and two inside.
TRACE_DECAYS = (0.0, 0.5, 0.9, 1.0)


class TDLambda(td_decl.TD):
    """(W5) as a registry declaration: the (W3) pair with the mask :func:`lsa_theory.trace_mask`;
    each instance draws its ``lam`` from :data:`TRACE_DECAYS` (a symbol in the sympy identity).
    The mask is lower triangular, so ``Z M Z^T`` is not symmetric: the (M2) objective of
    :mod:`lsa_theory.dynamics.bilinear` (symmetric ``Sigma``) does not apply."""

    name = "td_lambda"
    claim = "(W5)"
    statement = "L trace-masked blocks (W2) with (W3) = L batch TD(lambda) steps from 0"
    hyper = {"gamma": 0.5, "alpha": 0.2, "lam": 0.5}
    hyper_ranges = {"gamma": (0.0, 0.99), "alpha": (0.05, 1.0), "lam": (0.0, 1.0)}
    depths = (1, 3)
    symbolic_depths = (2,)
    bilinear = False

    def draw(self, sizes, rng):
        return {**super().draw(sizes, rng), "hyper": {"lam": float(rng.choice(TRACE_DECAYS))}}

    def mask(self, sizes, hyper):
        return trace_mask(sizes["n"], hyper["lam"])

    def naive(self, inst, hyper, depth):
        w = naive_batch_td_lambda(inst["phi"], inst["phi_next"], inst["r"], hyper["gamma"], hyper["alpha"],
                                  hyper["lam"], n_iter=depth)  # fmt: skip
        return td_decl.query_value(w, inst["q"])

    teacher_readout = None

    def all_sizes_forms(self):
        from ..proof_forms import td_lambda_forms

        return td_lambda_forms()


ALGORITHM = TDLambda()
