r"""(W6) [W]: batch residual gradient, the gradient of the mean squared TD error.

.. math::

    w_{l+1} = w_l + \frac{\alpha}{n} \sum_{i} \delta_i(w_l)\, (\phi_i - \gamma \phi_i'), \qquad
    \delta_i(w) = r_i + \gamma w^\top \phi_i' - w^\top \phi_i, \qquad w_0 = 0,

i.e. ``w - alpha grad_w (1/2n) sum_i delta_i(w)^2``; read out as
:math:`-Z_L[-1, -1] = w_L^\top \phi(s)` on the (W1) prompt.

Construction (masked block (W2), ``M = diag(I_n, 0)``): ``P = e_D e_D^T`` and ``Q`` zero but for
its top-left ``2d x 2d`` block ``alpha [[-I, I], [I, -I]] = alpha [I; -I] [-I, I]`` ([W]'s
``M2^T B M1`` with ``C = I``). Then ``z_j^T Q z_k = alpha (phi_j - gamma phi_j')^T (gamma phi_k' -
phi_k)`` on context columns and ``-alpha (phi_j - gamma phi_j')^T phi(s)`` on the query, so with
``g = (alpha/n) sum_j delta_j (phi_j - gamma phi_j')`` the last row goes from
``(delta_k(w_l), -w_l^T phi(s))`` to ``(delta_k(w_l + g), -(w_l + g)^T phi(s))``: **L layers are
L residual-gradient steps**.
"""

from __future__ import annotations

import numpy as np

from lsa_theory.checks import check_int
from lsa_theory.reference import as_values, naive_td_error

from .. import numeric
from . import _common
from . import td as td_decl

__all__ = ["residual_gradient", "naive_residual_gradient"]


def residual_gradient(d: int, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """(W6): ``(P, Q)`` of shape (2d+1, 2d+1), ``P = e_D e_D^T``,
    ``Q[:2d, :2d] = alpha [[-I, I], [I, -I]]``, every other entry zero; ``alpha > 0`` (or a
    symbol: ``dtype=object`` arrays)."""
    P, Q = numeric.td(d, alpha)  # (W3): Q[:d, :2d] = alpha [-I, I]
    Q[d : 2 * d, : 2 * d] = -Q[:d, : 2 * d]
    return P, Q


def naive_residual_gradient(phi, phi_next, r, gamma, alpha, n_iter: int = 1, w0=None) -> np.ndarray:
    """(W6) by explicit loops: ``n_iter`` residual-gradient steps from ``w0`` (default 0); ``w`` (d,)."""
    w, n, d = _common.naive_start(phi, phi_next, r, w0)
    n_iter = check_int(n_iter, "n_iter")
    _common.check_loop_inputs(w, r, gamma=gamma, alpha=alpha)
    for _ in range(n_iter):
        new = list(w)
        for i in range(n):
            delta = naive_td_error(phi[i], phi_next[i], r[i], w, gamma)
            for j in range(d):
                new[j] = new[j] + alpha * delta * (phi[i][j] - gamma * phi_next[i][j]) / n
        w = new
    return as_values(w)


# ------------------------------------------------------------------------------- declaration


class ResidualGradient(td_decl.TD):
    """(W6) as a registry declaration."""

    name = "residual_gradient"
    claim = "(W6)"
    statement = "L masked blocks with Q = alpha [[-I, I], [I, -I]] = L residual-gradient steps from 0"
    depths = (1, 2, 4)
    symbolic_depths = (2,)

    def naive(self, inst, hyper, depth):
        w = naive_residual_gradient(inst["phi"], inst["phi_next"], inst["r"], hyper["gamma"], hyper["alpha"],
                                    n_iter=depth)  # fmt: skip
        return td_decl.query_value(w, inst["q"])

    teacher_readout = None

    pair = staticmethod(residual_gradient)

    def all_sizes_forms(self):
        from ..proof_forms import residual_gradient_forms

        return residual_gradient_forms()


ALGORITHM = ResidualGradient()
