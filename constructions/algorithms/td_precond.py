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

from lsa_theory.reference import as_values, naive_td_error

from ..numeric import is_exact, td_precond
from . import _common
from . import td as td_decl

__all__ = ["td_precond", "naive_precond_td"]


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
            delta = naive_td_error(phi[i], phi_next[i], r[i], w, gamma)
            for j in range(d):
                u[j] = u[j] + delta * phi[i][j] / n
        new = list(w)
        for a in range(d):
            for b in range(d):
                new[a] = new[a] + alpha * C[a][b] * u[b]
        w = new
    return as_values(w)


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
            td_precond(sizes["d"], hyper["alpha"], C if is_exact(C) else np.asarray(C, dtype=float))
            for C in self._Cs(sizes["d"], hyper, depth)
        ]

    def all_sizes_forms(self):
        from ..proof_forms import td_precond_forms

        return td_precond_forms()


ALGORITHM = TDPrecond()
