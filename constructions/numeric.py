r"""Explicit LSA parameters: (S3)/(S4), (A3)/(A4), (W3) and (W4), for both backends.

Each construction is written once: with float hyperparameters it returns float64 arrays (its
arguments checked); with a sympy ``alpha``, ``beta``, ``c`` or ``C`` (:func:`is_exact`) the same
code returns ``dtype=object`` arrays of exact entries (integers and the given sympy objects), the
form :func:`lsa_theory.constructions.derive.prove` converts to its exact ring.

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

import numbers
import sys
from typing import Any

import numpy as np

from lsa_theory import Layout
from lsa_theory.checks import as_float_array, check_int, check_real

__all__ = ["is_exact", "sarsa", "actor_critic", "td", "td_precond", "running_mean_mask"]


def _symbolic(v: Any, sympy: Any) -> bool:
    """A sympy object (expression, matrix) or an element of a sympy ring or field."""
    if sympy is not None and isinstance(v, sympy.Basic | sympy.MatrixBase):
        return True
    return hasattr(v, "ring") or hasattr(v, "field")  # PolyElement, FracElement


def _exact_entry(v: Any, sympy: Any) -> bool:
    """An exact number (``int``, :class:`fractions.Fraction`; not ``bool``) or a symbolic value."""
    if isinstance(v, bool | np.bool_):
        return False
    return isinstance(v, numbers.Rational) or _symbolic(v, sympy)


def is_exact(*values: Any) -> bool:
    """Whether any of ``values`` is for the exact backend: a sympy object (expression, matrix), an
    element of a sympy ring or field, or a non-empty ``dtype=object`` array whose every entry is
    exact (integers, fractions, symbols). A construction then builds its parameters as
    ``dtype=object`` arrays without the float checks. An object array holding floats is not exact
    (the float path refuses it, naming the argument)."""
    sympy = sys.modules.get("sympy")  # nothing is symbolic before sympy is imported
    for v in values:
        if isinstance(v, np.ndarray):
            if v.dtype == object and v.size and all(_exact_entry(e, sympy) for e in v.flat):
                return True
        elif _symbolic(v, sympy):
            return True
    return False


def zeros(shape: tuple[int, ...], exact: bool) -> np.ndarray:
    """Float64 zeros, or ``dtype=object`` zeros (Python ``0``) for the exact backend."""
    return np.zeros(shape, dtype=object) if exact else np.zeros(shape)


def eye(d: int, exact: bool) -> np.ndarray:
    """The float64 identity, or the ``dtype=object`` one of Python ``0``/``1`` for the exact backend."""
    return np.eye(d, dtype=int).astype(object) if exact else np.eye(d)


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
    M = zeros((D, D), vals.dtype == object)
    M[rows, cols] = vals
    return M


def _fill(layout: Layout, alpha: float, beta: float, c: float, sparse: bool = False) -> tuple:
    P, V = _entries(layout, alpha, beta, c)
    return _assemble(layout.D, P, sparse), _assemble(layout.D, V, sparse)


def _exact_fill(layout: Layout, alpha: Any, beta: Any, c: Any, sparse: bool) -> tuple:
    """:func:`_fill` with exact entries (``dtype=object``); no sparse form."""
    if sparse:
        raise ValueError("sparse: the exact (symbolic) construction is dense only")
    P, V = _entries(layout, alpha, beta, c)
    as_obj = [(r, k, np.asarray(v, dtype=object)) for r, k, v in (P, V)]
    return _assemble(layout.D, as_obj[0], False), _assemble(layout.D, as_obj[1], False)


def sarsa(d: int, alpha: float, c: float = 1.0, *, sparse: bool = False) -> tuple:
    """(S3)/(S4): ``(c P*, V*/c)``, two float64 arrays of shape (3d+2, 3d+2) (CSR
    ``scipy.sparse`` arrays with ``sparse=True``: the same entries, for sizes like Taxi's);
    ``dtype=object`` arrays when ``alpha`` or ``c`` is symbolic (:func:`is_exact`)."""
    d = check_int(d, "d")
    if is_exact(alpha, c):
        return _exact_fill(Layout(d), alpha, 0, c, bool(sparse))
    alpha = check_real(alpha, "alpha", low=0.0, low_open=True)
    return _fill(Layout(d), alpha, 0.0, _check_scale(c, alpha), bool(sparse))


def actor_critic(
    d: int, d_pi: int, alpha: float, beta: float, c: float = 1.0, *, sparse: bool = False
) -> tuple:
    """(A3)/(A4): ``(c P*, V*/c)``, float64 arrays of shape (3d+2d_pi+2, 3d+2d_pi+2) (CSR
    ``scipy.sparse`` arrays with ``sparse=True``); ``dtype=object`` arrays when ``alpha``,
    ``beta`` or ``c`` is symbolic."""
    layout = Layout(check_int(d, "d"), check_int(d_pi, "d_pi"))
    if is_exact(alpha, beta, c):
        return _exact_fill(layout, alpha, beta, c, bool(sparse))
    alpha = check_real(alpha, "alpha", low=0.0, low_open=True)
    beta = check_real(beta, "beta", low=0.0, low_open=True)
    return _fill(layout, alpha, beta, _check_scale(c, alpha, beta), bool(sparse))


def _check_C(C, d: int) -> tuple[np.ndarray, bool]:
    """``C`` as an (L, d, d) array (float64, or ``dtype=object`` when exact) and whether it was one
    matrix."""
    if is_exact(C):
        arr = np.asarray(C.tolist() if hasattr(C, "tolist") else C, dtype=object)
    else:
        arr = as_float_array(C, "C")  # complex, bool, object refused (never cast); NaN/inf refused
    if arr.ndim == 2:
        arr, single = arr[None], True
    elif arr.ndim == 3 and arr.shape[0] >= 1:
        single = False
    else:
        raise ValueError(
            f"C: expected a ({d}, {d}) matrix or a sequence of L >= 1 of them, got shape {arr.shape}"
        )
    if arr.shape[1:] != (d, d):
        raise ValueError(f"C: each matrix must be ({d}, {d}) to match d = {d}, got {arr.shape[1:]}")
    return arr, single


def _td_pair(d: int, alpha: Any, C_T: np.ndarray, exact: bool) -> tuple[np.ndarray, np.ndarray]:
    """``P = e_D e_D^T`` and ``Q`` zero but for ``Q[:d, :2d] = alpha [-C^T, C^T]`` (D = 2d+1)."""
    D = 2 * d + 1
    P = zeros((D, D), exact)
    P[-1, -1] = 1 if exact else 1.0
    Q = zeros((D, D), exact)
    Q[:d, :d] = -alpha * C_T
    Q[:d, d : 2 * d] = alpha * C_T
    return P, Q


Pair = tuple[np.ndarray, np.ndarray]


def td_precond(d: int, alpha: float, C) -> Pair | list[Pair]:
    """(W4): ``(P, Q)`` of shape (2d+1, 2d+1) with ``Q[:d, :2d] = alpha [-C^T, C^T]``.

    ``C`` one (d, d) matrix -> one ``(P, Q)`` pair; a sequence of L (d, d) matrices (or an
    (L, d, d) array) -> a list of L pairs, layer ``l`` with ``C_l``, for
    :func:`lsa_theory.masked_lsa_stack`. ``alpha > 0`` scales every ``C_l``. With a symbolic
    ``alpha`` or ``C`` (a sympy matrix or an object array) the pairs are ``dtype=object``.
    """
    d = check_int(d, "d")
    exact = is_exact(alpha, C)
    if not exact:
        alpha = check_real(alpha, "alpha", low=0.0, low_open=True)
    Cs, single = _check_C(C, d)
    layers = [_td_pair(d, alpha, C_l.T, exact) for C_l in Cs]
    return layers[0] if single else layers


def td(d: int, alpha: float, C=None):
    """(W3): ``(P, Q)`` of shape (2d+1, 2d+1) for the masked block (W2); L copies = L TD(0) steps.

    With ``C`` the (W4) construction :func:`td_precond`: one (d, d) matrix -> one ``(P, Q)`` pair
    (``Q[:d, :2d] = alpha [-C^T, C^T]``), a sequence of L matrices (or an (L, d, d) array) -> a
    list of L pairs, one per layer. ``alpha > 0`` scales ``C`` in both cases, so
    ``td(d, alpha, np.eye(d)) == td(d, alpha)``. ``dtype=object`` pairs for a symbolic ``alpha``.
    """
    if C is not None:
        return td_precond(d, alpha, C)
    d = check_int(d, "d")
    exact = is_exact(alpha)
    if not exact:
        alpha = check_real(alpha, "alpha", low=0.0, low_open=True)
    return _td_pair(d, alpha, eye(d, exact), exact)


def running_mean_mask(n: int, n_queries: int = 1, *, exact: bool = False) -> np.ndarray:
    """(W7): ``N = diag(I_n, 0) - U`` of shape (n+n_q, n+n_q), ``U[k, i] = 1/(i+1)`` for
    ``0 <= k <= i < n`` (0-based), so ``sum_k r_k N[k, i] = r_i - mean(r_0..r_i)``; query rows and
    columns zero. Float64, or with ``exact`` a ``dtype=object`` array of exact rationals
    (:class:`fractions.Fraction`)."""
    n, n_queries = check_int(n, "n"), check_int(n_queries, "n_queries")
    k, i = np.indices((n, n))
    if exact:
        from fractions import Fraction

        N = zeros((n + n_queries, n + n_queries), True)
        for a, b in zip(*np.nonzero(k <= i), strict=True):
            N[a, b] = int(a == b) - Fraction(1, int(b) + 1)
        return N
    N = np.zeros((n + n_queries, n + n_queries))
    N[:n, :n] = np.eye(n) - np.where(k <= i, 1.0 / (i + 1.0), 0.0)
    return N
