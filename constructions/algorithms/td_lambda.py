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
import sympy as sp

import lsa_theory as lt
from lsa_theory._checks import check_int, check_real
from lsa_theory.reference import _delta, _out

from .. import numeric, symbolic
from .._residuals import Residuals
from . import _common
from . import td as td_decl

__all__ = [
    "td_lambda",
    "td_lambda_symbolic",
    "trace_mask_symbolic",
    "naive_batch_td_lambda",
    "verify_td_lambda",
    "prove_td_lambda",
]

lam_s = sp.Symbol("lam", real=True)


def td_lambda(d: int, alpha: float, lam: float) -> tuple[np.ndarray, np.ndarray]:
    """(W5): ``(P, Q)`` of shape (2d+1, 2d+1), equal to the (W3) pair; the trace decay ``lam``
    (checked here, ``0 <= lam <= 1``) enters through the mask ``lsa_theory.trace_mask(n, lam)``
    passed to :func:`lsa_theory.masked_lsa` / ``masked_lsa_stack``."""
    _common.check_lam(lam)
    return numeric.td(d, alpha)


def td_lambda_symbolic(d: int, alpha=_common.alpha_s) -> tuple[sp.Matrix, sp.Matrix]:
    """(W5) as sympy matrices: the (W3) twin."""
    return symbolic.td_symbolic(d, alpha)


def trace_mask_symbolic(n: int, lam=lam_s, n_queries: int = 1) -> sp.Matrix:
    """:func:`lsa_theory.trace_mask` with a symbolic ``lam``: ``M[i, j] = lam**(i-j)``, ``j <= i < n``."""
    n, n_queries = check_int(n, "n"), check_int(n_queries, "n_queries")
    N = n + n_queries
    return sp.Matrix(N, N, lambda i, j: lam ** (i - j) if j <= i < n else 0)


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
            delta = _delta(phi[i], phi_next[i], r[i], w, gamma)
            for j in range(d):
                new[j] = new[j] + alpha * delta * e[j] / n
        w = new
    return _out(w)


def verify_td_lambda(phi, phi_next, r, phi_query, gamma, alpha, lam, n_layers: int = 1) -> Residuals:
    """(W5): ``n_layers`` masked blocks with :func:`td_lambda` and ``trace_mask(n, lam)`` versus
    :func:`naive_batch_td_lambda`; ``-Z[-1, -1]`` against ``w_L^T phi(s)``."""
    L = check_int(n_layers, "n_layers")
    lam = check_real(lam, "lam", low=0.0, high=1.0)
    Z = _common.numeric_prompt(phi, phi_next, r, phi_query, gamma)
    d, n = (Z.shape[-2] - 1) // 2, Z.shape[-1] - 1
    Z_out = lt.masked_lsa_stack(Z, [td_lambda(d, alpha, lam)] * L, mask=lt.trace_mask(n, lam))
    w_L = naive_batch_td_lambda(np.asarray(phi), np.asarray(phi_next), np.asarray(r), gamma, alpha, lam, L)
    return _common.value_residuals(Z, Z_out, w_L, phi_query)


def prove_td_lambda(d: int = 2, n: int = 3, n_layers: int = 2, mask=None, construction=None):
    """(W5) at these sizes only: L masked layers with the (W3) pair and the trace mask, symbolic
    ``alpha``, ``gamma``, ``lam`` and every prompt entry a symbol, give ``-Z_L[-1, -1] = w_L^T
    phi(s)`` with ``w_L`` from :func:`naive_batch_td_lambda`. ``mask`` replaces the trace mask and
    ``construction(d)`` the pair (perturbed ones, e.g. the transposed mask, must make it fail)."""
    t0 = _common.start()
    d, n, L = check_int(d, "d"), check_int(n, "n"), check_int(n_layers, "n_layers")
    Z0, phi, phi_next, r, q = _common.symbolic_prompt(d, n)
    mask = trace_mask_symbolic(n) if mask is None else sp.Matrix(mask)
    R = _common.Ring(list(Z0), _common.alpha_s, lam_s)
    P, Q = (R.mat(m) for m in (construction or td_lambda_symbolic)(d))
    Z, M = R.mat(Z0), R.mat(mask)
    for _ in range(L):
        Z = R.masked_block(Z, P, Q, M, n)
    phi, phi_next, r, q = R.nested(phi), R.nested(phi_next), R.nested(r), R.nested(q)
    gamma = R.el(_common.gamma_s)
    w_L = naive_batch_td_lambda(phi, phi_next, r, gamma, R.el(_common.alpha_s), R.el(lam_s), n_iter=L)
    last = [_delta(phi[k], phi_next[k], r[k], w_L, gamma) for k in range(n)]
    return _common.full_proof("(W5)", {"d": d, "n": n, "L": L}, R, R.mat(Z0), Z, last, w_L, q, t0)


# ------------------------------------------------------------------------------- declaration

#: Trace decays drawn per instance by the declaration's verify rows: the ends of [0, 1] and two inside.
TRACE_DECAYS = (0.0, 0.5, 0.9, 1.0)


class TDLambda(td_decl.TD):
    """(W5) as a registry declaration: the (W3) pair with the mask :func:`lsa_theory.trace_mask`;
    each instance draws its ``lam`` from :data:`TRACE_DECAYS` (a symbol in the sympy identity).
    The mask is lower triangular, so ``Z M Z^T`` is not symmetric: the (M2) objective of
    :mod:`dynamics.bilinear` (symmetric ``Sigma``) does not apply."""

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
        lam = hyper["lam"]
        if isinstance(lam, sp.Basic):
            return trace_mask_symbolic(sizes["n"], lam)
        return lt.trace_mask(sizes["n"], lam)

    def naive(self, inst, hyper, depth):
        w = naive_batch_td_lambda(inst["phi"], inst["phi_next"], inst["r"], hyper["gamma"], hyper["alpha"],
                                  hyper["lam"], n_iter=depth)  # fmt: skip
        return td_decl.query_value(w, inst["q"])

    teacher_readout = None

    def all_sizes_forms(self):
        from ..proof_forms import td_lambda_forms

        return td_lambda_forms()


ALGORITHM = TDLambda()
