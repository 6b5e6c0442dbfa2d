r"""(W4) [W]: preconditioned batch TD(0), any ``d x d`` matrix ``C_l`` per layer.

.. math::

    w_{l+1} = w_l + \alpha\, C_l\, u_l, \qquad
    u_l = \frac1n \sum_{i} \delta_i(w_l)\, \phi_i, \qquad
    \delta_i(w) = r_i + \gamma w^\top \phi_i' - w^\top \phi_i, \qquad w_0 = 0,

on the (W1) prompt, read out as :math:`-Z_L[-1, -1] = w_L^\top \phi(s)`. THEORY (W4) states it
with ``alpha = 1``; here ``alpha`` scales every ``C_l`` so that ``C_l = I`` is exactly (W3).

Construction (masked block (W2), ``M = diag(I_n, 0)``): ``P = e_D e_D^T`` and ``Q`` zero but for
its top-left blocks ``Q[:d, :d] = -alpha C_l^T``, ``Q[:d, d:2d] = alpha C_l^T`` ([W]'s layout).
Why: with ``g = (alpha/n) C_l sum_j Z[-1, j] phi_j`` the block adds ``g^T (gamma phi_k' - phi_k)``
to the last entry of context column ``k`` and ``-g^T phi(s)`` to the query's, so if the last row
holds ``delta_k(w_l)`` and ``-w_l^T phi(s)`` (true at ``l = 0`` with ``w_0 = 0``) it holds
``delta_k(w_{l+1})`` and ``-w_{l+1}^T phi(s)`` afterwards: L layers are L steps, for every L.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import sympy as sp

import lsa_theory as lt
from lsa_theory._checks import as_float_array, check_int, check_real
from lsa_theory.reference import _delta, _out

from .. import numeric
from .._residuals import Residuals
from . import _common
from . import td as td_decl

__all__ = [
    "td_precond",
    "td_precond_symbolic",
    "naive_precond_td",
    "verify_td_precond",
    "prove_td_precond",
]


def _check_C(C, d: int) -> tuple[np.ndarray, bool]:
    """``C`` as an (L, d, d) float64 array and whether it was one matrix."""
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


Pair = tuple[np.ndarray, np.ndarray]


def td_precond(d: int, alpha: float, C) -> Pair | list[Pair]:
    """(W4): ``(P, Q)`` of shape (2d+1, 2d+1) with ``Q[:d, :2d] = alpha [-C^T, C^T]``.

    ``C`` one (d, d) matrix -> one ``(P, Q)`` pair; a sequence of L (d, d) matrices (or an
    (L, d, d) array) -> a list of L pairs, layer ``l`` with ``C_l``, for
    :func:`lsa_theory.masked_lsa_stack`. ``alpha > 0`` scales every ``C_l``.
    """
    d = check_int(d, "d")
    alpha = check_real(alpha, "alpha", low=0.0, low_open=True)
    Cs, single = _check_C(C, d)
    D = 2 * d + 1
    layers = []
    for C_l in Cs:
        P = np.zeros((D, D))
        P[-1, -1] = 1.0
        Q = np.zeros((D, D))
        Q[:d, :d] = -alpha * C_l.T
        Q[:d, d : 2 * d] = alpha * C_l.T
        layers.append((P, Q))
    return layers[0] if single else layers


def td_precond_symbolic(d: int, C: sp.Matrix, alpha=_common.alpha_s) -> tuple[sp.Matrix, sp.Matrix]:
    """(W4) as sympy matrices (2d+1, 2d+1) for one (d, d) sympy matrix ``C``."""
    d = check_int(d, "d")
    C = sp.Matrix(C)
    if C.shape != (d, d):
        raise ValueError(f"C: expected shape ({d}, {d}), got {C.shape}")
    D = 2 * d + 1
    P = sp.zeros(D, D)
    P[D - 1, D - 1] = 1
    Q = sp.zeros(D, D)
    Q[:d, :d] = -alpha * C.T
    Q[:d, d : 2 * d] = alpha * C.T
    return P, Q


def naive_precond_td(phi, phi_next, r, gamma, alpha, Cs: Sequence, w0=None) -> np.ndarray:
    """(W4) by explicit loops: one step ``w <- w + alpha C_l u_l`` per matrix in ``Cs`` (each a
    d x d nested sequence, ``Cs[l][a][b]``), from ``w0`` (default 0); returns ``w_L`` (d,)."""
    w, n, d = _common.naive_start(phi, phi_next, r, w0)
    if not isinstance(Cs, list | tuple | np.ndarray) or len(Cs) < 1:
        raise ValueError(f"Cs: need a sequence of at least one matrix, got {type(Cs).__name__}")
    _common.check_loop_inputs(w, r, gamma=gamma, alpha=alpha)
    for C in Cs:
        if len(C) != d or any(len(row) != d for row in C):
            raise ValueError(f"Cs: each matrix must be {d} x {d}")
        u = [0] * d
        for i in range(n):
            delta = _delta(phi[i], phi_next[i], r[i], w, gamma)
            for j in range(d):
                u[j] = u[j] + delta * phi[i][j] / n
        new = list(w)
        for a in range(d):
            for b in range(d):
                new[a] = new[a] + alpha * C[a][b] * u[b]
        w = new
    return _out(w)


def verify_td_precond(phi, phi_next, r, phi_query, gamma, alpha, C) -> Residuals:
    """(W4): the masked stack with the public ``constructions.td(d, alpha, C)`` versus
    :func:`naive_precond_td`, read out as ``-Z[-1, -1]`` against ``w_L^T phi(s)``; ``C`` (d, d)
    (one layer) or (L, d, d)."""
    Z = _common.numeric_prompt(phi, phi_next, r, phi_query, gamma)
    d = (Z.shape[-2] - 1) // 2
    layers = numeric.td(d, alpha, C)
    layers = [layers] if isinstance(layers, tuple) else layers
    Z_out = lt.masked_lsa_stack(Z, layers)
    Cs = _check_C(C, d)[0]
    w_L = naive_precond_td(np.asarray(phi), np.asarray(phi_next), np.asarray(r), gamma, alpha, Cs)
    return _common.value_residuals(Z, Z_out, w_L, phi_query)


def prove_td_precond(d: int = 2, n: int = 3, n_layers: int = 2, construction=td_precond_symbolic):
    """(W4) at these sizes only: L masked layers, layer ``l`` with a fully symbolic ``C_l``
    (entries ``c{l}_{a}_{b}``) and symbolic ``alpha``, on a (W1) prompt whose every entry is a
    symbol, give ``-Z_L[-1, -1] = w_L^T phi(s)`` with ``w_L`` from :func:`naive_precond_td`.
    ``construction(d, C)`` may be replaced by a perturbed twin (the proof must then fail)."""
    t0 = _common.start()
    d, n, L = check_int(d, "d"), check_int(n, "n"), check_int(n_layers, "n_layers")
    Z0, phi, phi_next, r, q = _common.symbolic_prompt(d, n)
    Cs = [sp.Matrix(d, d, lambda a, b, l=l: sp.Symbol(f"c{l}_{a}_{b}", real=True)) for l in range(L)]
    R = _common.Ring(list(Z0), *[list(C) for C in Cs], _common.alpha_s)
    Z, M = R.mat(Z0), R.mat(_common.diag_mask(n))
    for C in Cs:
        P, Q = construction(d, C)
        Z = R.masked_block(Z, R.mat(P), R.mat(Q), M, n)
    phi, phi_next, r, q = R.nested(phi), R.nested(phi_next), R.nested(r), R.nested(q)
    gamma = R.el(_common.gamma_s)
    Cs_nested = [R.nested([[C[a, b] for b in range(d)] for a in range(d)]) for C in Cs]
    w_L = naive_precond_td(phi, phi_next, r, gamma, R.el(_common.alpha_s), Cs_nested)
    last = [_delta(phi[k], phi_next[k], r[k], w_L, gamma) for k in range(n)]
    return _common.full_proof("(W4)", {"d": d, "n": n, "L": L}, R, R.mat(Z0), Z, last, w_L, q, t0)


# ------------------------------------------------------------------------------- declaration


class TDPrecond(td_decl.TD):
    """(W4) as a registry declaration: a fresh ``C_l ~ N(0, 1)`` per layer in every instance
    (``inst["hyper"]["C"]``, symbols in the sympy identity); with ``hyper["C"] = None`` (the
    default for teacher data) every ``C_l = I``, i.e. (W3)."""

    name = "td_precond"
    claim = "(W4)"
    statement = "L masked blocks with Q = alpha [-C_l^T, C_l^T] = L preconditioned TD(0) steps from 0"
    hyper = {"gamma": 0.5, "alpha": 0.2, "C": None}
    depths = (1, 2, 3)
    symbolic_depths = (2,)

    def _Cs(self, d, hyper, depth):
        C = hyper.get("C")
        if C is None:
            return [np.eye(d, dtype=int)] * depth
        return [C[layer] for layer in range(depth)]

    def draw(self, sizes, rng):
        inst = super().draw(sizes, rng)
        d = sizes["d"]
        return {**inst, "hyper": {"C": rng.standard_normal((max(self.depths), d, d))}}

    def naive(self, inst, hyper, depth):
        w = naive_precond_td(
            inst["phi"], inst["phi_next"], inst["r"], hyper["gamma"], hyper["alpha"],
            [np.asarray(C).tolist() for C in self._Cs(len(inst["q"]), hyper, depth)],
        )  # fmt: skip
        return td_decl.query_value(w, inst["q"])

    teacher_readout = None

    def construction(self, sizes, hyper, c=1.0, depth=1):
        return [
            numeric.td(sizes["d"], hyper["alpha"], np.asarray(C, dtype=float))
            for C in self._Cs(sizes["d"], hyper, depth)
        ]

    def construction_symbolic(self, sizes, hyper, c, depth=1):
        return [td_precond_symbolic(sizes["d"], sp.Matrix(np.asarray(C, dtype=object)), hyper["alpha"])
                for C in self._Cs(sizes["d"], hyper, depth)]  # fmt: skip

    def all_sizes_forms(self):
        from ..proof_forms import td_precond_forms

        return td_precond_forms()


ALGORITHM = TDPrecond()
