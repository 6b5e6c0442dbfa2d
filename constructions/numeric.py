r"""Explicit LSA parameters, float64 numpy: (S3)/(S4), (A3)/(A4) and (W3).

(S3) [LL eq. 5], in the (L2) blocks of :class:`lsa_theory.Layout` ``(2d+1 | d+1)``:

.. math::

    P_{12}^* = \begin{bmatrix} 0_{d\times1} & -I_d \\ 0_{d\times1} & I_d \\ 1 & 0_{1\times d}
    \end{bmatrix}, \qquad \bar V_{21}^* = [\alpha I_d,\; 0_{d\times d},\; 0_{d\times1}],

every other entry zero; (S4) the pair ``(c P*, V*/c)`` computes the same update for every
``c != 0``. (A3) adds a ``d_pi`` score block to ``x_i`` and ``lambda`` to the parameter column with
``Vbar21* = [[alpha I, 0, 0, 0], [0, 0, 0, beta I]]``. (W3) [W]: ``P = e_D e_D^T`` and ``Q`` zero
but for its top-left blocks ``Q[:d, :d] = -alpha I``, ``Q[:d, d:2d] = alpha I`` (D = 2d+1); with a
matrix ``C`` (or one per layer) it becomes (W4), ``alpha [-C^T, C^T]``.
"""

from __future__ import annotations

import numpy as np

from lsa_theory import Layout
from lsa_theory._checks import check_int, check_real

__all__ = ["sarsa", "actor_critic", "td"]


#: Smallest positive normal float64, ``2.2250738585072014e-308``.
_TINY = float(np.finfo(np.float64).tiny)


def _check_scale(c: float, *rates: float) -> float:
    """``c`` for (S4)/(A4); ValueError unless ``c P*`` and ``V*/c`` hold the intended numbers.

    Bound: ``|c| >= tiny = 2.2250738585072014e-308`` (``c * 1`` is a normal float64, not a
    subnormal with lost precision), and for each step size (``alpha``, ``beta``) ``0 < |rate / c|
    <= max = 1.7976931348623157e308`` (no overflow to inf, no underflow to 0). A ``rate / c`` in
    the subnormal range keeps its nonzero value to a relative ``2^-52 tiny / |rate / c|``."""
    c = check_real(c, "c", nonzero=True)
    if abs(c) < _TINY:
        raise ValueError(f"c: |c| = {abs(c):.3g} is below the smallest normal float64 {_TINY:.17g}")
    for rate in rates:
        with np.errstate(over="ignore", under="ignore"):
            q = abs(rate) / abs(c)
        if not 0.0 < q <= np.finfo(np.float64).max:
            fault = "overflows" if q > 1 else "underflows to 0"
            raise ValueError(f"c: the entry rate / c = {rate:g} / {c:g} of V*/c {fault} in float64")
    return c


def _entries(layout: Layout, alpha: float, beta: float, c: float):
    """The nonzero entries of (S3)/(A3) scaled by (S4)/(A4), ``(rows, cols, values)`` of ``P`` and of
    ``V`` in (D, D) coordinates: written once, assembled dense or sparse by :func:`_assemble`."""
    d, d_pi = layout.d, layout.d_pi
    idx = np.arange(d)
    w = layout.w.start + idx
    P = (
        np.concatenate([layout.phi.start + idx, layout.phi_next.start + idx, [layout.r]]),
        np.concatenate([w, w, [layout.const]]),
        np.concatenate([np.full(d, -c), np.full(d, c), [c]]),
    )
    V = (
        np.concatenate([w, layout.lam.start + np.arange(d_pi)]),
        np.concatenate([layout.phi.start + idx, layout.g.start + np.arange(d_pi)]),
        np.concatenate([np.full(d, alpha / c), np.full(d_pi, beta / c if d_pi else 0.0)]),
    )
    return P, V


def _assemble(D: int, entries, sparse: bool):
    """A (D, D) matrix with the given ``(rows, cols, values)``: numpy, or a CSR ``scipy.sparse``
    array (no dense ``D x D`` array is formed) when ``sparse``."""
    rows, cols, vals = entries
    if sparse:
        import scipy.sparse as sps

        return sps.csr_array((vals, (rows, cols)), shape=(D, D))
    M = np.zeros((D, D))
    M[rows, cols] = vals
    return M


def _fill(layout: Layout, alpha: float, beta: float, c: float, sparse: bool = False) -> tuple:
    P, V = _entries(layout, alpha, beta, c)
    return _assemble(layout.D, P, sparse), _assemble(layout.D, V, sparse)


def sarsa(d: int, alpha: float, c: float = 1.0, *, sparse: bool = False) -> tuple:
    """(S3)/(S4): ``(c P*, V*/c)``, two float64 arrays of shape (3d+2, 3d+2) (CSR
    ``scipy.sparse`` arrays with ``sparse=True``: the same entries, for sizes like Taxi's)."""
    d = check_int(d, "d")
    alpha = check_real(alpha, "alpha", low=0.0, low_open=True)
    return _fill(Layout(d), alpha, 0.0, _check_scale(c, alpha), bool(sparse))


def actor_critic(
    d: int, d_pi: int, alpha: float, beta: float, c: float = 1.0, *, sparse: bool = False
) -> tuple:
    """(A3)/(A4): ``(c P*, V*/c)``, float64 arrays of shape (3d+2d_pi+2, 3d+2d_pi+2) (CSR
    ``scipy.sparse`` arrays with ``sparse=True``)."""
    layout = Layout(check_int(d, "d"), check_int(d_pi, "d_pi"))
    alpha = check_real(alpha, "alpha", low=0.0, low_open=True)
    beta = check_real(beta, "beta", low=0.0, low_open=True)
    return _fill(layout, alpha, beta, _check_scale(c, alpha, beta), bool(sparse))


def td(d: int, alpha: float, C=None):
    """(W3): ``(P, Q)`` of shape (2d+1, 2d+1) for the masked block (W2); L copies = L TD(0) steps.

    With ``C`` the (W4) construction of :func:`constructions.algorithms.td_precond.td_precond`:
    one (d, d) matrix -> one ``(P, Q)`` pair (``Q[:d, :2d] = alpha [-C^T, C^T]``), a sequence of
    L matrices (or an (L, d, d) array) -> a list of L pairs, one per layer. ``alpha > 0`` scales
    ``C`` in both cases, so ``td(d, alpha, np.eye(d)) == td(d, alpha)``.
    """
    if C is not None:
        # imported here: the (W4) module imports this one for its verify_* (one way at import time)
        from .algorithms.td_precond import td_precond

        return td_precond(d, alpha, C)
    d = check_int(d, "d")
    alpha = check_real(alpha, "alpha", low=0.0, low_open=True)
    D = 2 * d + 1
    P = np.zeros((D, D))
    P[-1, -1] = 1.0
    Q = np.zeros((D, D))
    Q[:d, :d] = -alpha * np.eye(d)
    Q[:d, d : 2 * d] = alpha * np.eye(d)
    return P, Q
