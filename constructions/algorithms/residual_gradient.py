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
import sympy as sp

import lsa_theory as lt
from lsa_theory._checks import check_int
from lsa_theory.reference import _delta, _out

from .. import numeric, symbolic
from .._residuals import Residuals
from . import _common
from . import td as td_decl

__all__ = [
    "residual_gradient",
    "residual_gradient_symbolic",
    "naive_residual_gradient",
    "verify_residual_gradient",
    "prove_residual_gradient",
]


def residual_gradient(d: int, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """(W6): ``(P, Q)`` of shape (2d+1, 2d+1), ``P = e_D e_D^T``,
    ``Q[:2d, :2d] = alpha [[-I, I], [I, -I]]``, every other entry zero; ``alpha > 0``."""
    P, Q = numeric.td(d, alpha)  # (W3): Q[:d, :2d] = alpha [-I, I]
    Q[d : 2 * d, : 2 * d] = -Q[:d, : 2 * d]
    return P, Q


def residual_gradient_symbolic(d: int, alpha=_common.alpha_s) -> tuple[sp.Matrix, sp.Matrix]:
    """(W6) as sympy matrices (2d+1, 2d+1)."""
    P, Q = symbolic.td_symbolic(d, alpha)
    d = (Q.shape[0] - 1) // 2
    Q[d : 2 * d, :] = -Q[:d, :]
    return P, Q


def naive_residual_gradient(phi, phi_next, r, gamma, alpha, n_iter: int = 1, w0=None) -> np.ndarray:
    """(W6) by explicit loops: ``n_iter`` residual-gradient steps from ``w0`` (default 0); ``w`` (d,)."""
    w, n, d = _common.naive_start(phi, phi_next, r, w0)
    n_iter = check_int(n_iter, "n_iter")
    _common.check_loop_inputs(w, r, gamma=gamma, alpha=alpha)
    for _ in range(n_iter):
        new = list(w)
        for i in range(n):
            delta = _delta(phi[i], phi_next[i], r[i], w, gamma)
            for j in range(d):
                new[j] = new[j] + alpha * delta * (phi[i][j] - gamma * phi_next[i][j]) / n
        w = new
    return _out(w)


def verify_residual_gradient(phi, phi_next, r, phi_query, gamma, alpha, n_layers: int = 1) -> Residuals:
    """(W6): ``n_layers`` masked blocks with :func:`residual_gradient` versus
    :func:`naive_residual_gradient`; ``-Z[-1, -1]`` against ``w_L^T phi(s)``."""
    L = check_int(n_layers, "n_layers")
    Z = _common.numeric_prompt(phi, phi_next, r, phi_query, gamma)
    d = (Z.shape[-2] - 1) // 2
    Z_out = lt.masked_lsa_stack(Z, [residual_gradient(d, alpha)] * L)
    w_L = naive_residual_gradient(np.asarray(phi), np.asarray(phi_next), np.asarray(r), gamma, alpha, L)
    return _common.value_residuals(Z, Z_out, w_L, phi_query)


def prove_residual_gradient(
    d: int = 2, n: int = 3, n_layers: int = 2, construction=residual_gradient_symbolic
):
    """(W6) at these sizes only: L masked layers with :func:`residual_gradient_symbolic`, symbolic
    ``alpha``, ``gamma`` and every prompt entry a symbol, give ``-Z_L[-1, -1] = w_L^T phi(s)``
    with ``w_L`` from :func:`naive_residual_gradient`. ``construction(d)`` may be replaced by a
    perturbed twin (the proof must then fail)."""
    t0 = _common.start()
    d, n, L = check_int(d, "d"), check_int(n, "n"), check_int(n_layers, "n_layers")
    Z0, phi, phi_next, r, q = _common.symbolic_prompt(d, n)
    R = _common.Ring(list(Z0), _common.alpha_s)
    P, Q = (R.mat(m) for m in construction(d))
    Z, M = R.mat(Z0), R.mat(_common.diag_mask(n))
    for _ in range(L):
        Z = R.masked_block(Z, P, Q, M, n)
    phi, phi_next, r, q = R.nested(phi), R.nested(phi_next), R.nested(r), R.nested(q)
    gamma = R.el(_common.gamma_s)
    w_L = naive_residual_gradient(phi, phi_next, r, gamma, R.el(_common.alpha_s), n_iter=L)
    last = [_delta(phi[k], phi_next[k], r[k], w_L, gamma) for k in range(n)]
    return _common.full_proof("(W6)", {"d": d, "n": n, "L": L}, R, R.mat(Z0), Z, last, w_L, q, t0)


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
    pair_symbolic = staticmethod(residual_gradient_symbolic)

    def all_sizes_forms(self):
        from ..proof_forms import residual_gradient_forms

        return residual_gradient_forms()


ALGORITHM = ResidualGradient()
