r"""Vectorised update rules, one pure function each (the teachers of §2, §3, §5).

(S2) :math:`w_{\rm SARSA} = w + \tfrac{\alpha}{n}\sum_i \delta_i \phi_i`,
:math:`\delta_i = r_{i+1} + \gamma w^\top\phi_i^+ - w^\top\phi_i`, computed from the prompt columns
``X = [phi; gamma phi^+; r]`` (the discount is already inside ``X``).
(A2) adds :math:`\lambda' = \lambda + \tfrac{\beta}{n}\sum_i \delta_i g_i`.
TD(0) of §5 is (S2) with state features.

These are the fast teachers; :mod:`lsa_theory.reference` holds the deliberately naive loops the
tests compare everything against.
"""

from __future__ import annotations

import numpy as np

from ._checks import as_float_array, check_int, check_real
from .prompts import _check_context, _check_vector

__all__ = ["td_errors", "sarsa_update", "actor_critic_update", "td_update"]


def td_errors(X: np.ndarray, w: np.ndarray) -> np.ndarray:
    """(..., n) TD errors ``delta_i = r_{i+1} + gamma w^T phi_i^+ - w^T phi_i`` from X (..., 2d+1, n)."""
    X = as_float_array(X, "X")
    d, _ = _check_context(X)
    w = as_float_array(w, "w")
    _check_vector(w, d, "w", f"d = {d} of X")
    Xw = np.einsum("...kn,...k->...n", X[..., : 2 * d, :], np.concatenate([-w, w], axis=-1))
    return X[..., 2 * d, :] + Xw


def sarsa_update(X: np.ndarray, w: np.ndarray, alpha: float) -> np.ndarray:
    """(S2): (..., d) ``w + (alpha/n) sum_i delta_i phi_i`` for X (..., 2d+1, n), w (..., d)."""
    alpha = check_real(alpha, "alpha")
    delta = td_errors(X, w)
    d, n = _check_context(np.asarray(X))
    return w + alpha / n * np.einsum("...kn,...n->...k", np.asarray(X)[..., :d, :], delta)


def actor_critic_update(
    X: np.ndarray, g: np.ndarray, w: np.ndarray, lam: np.ndarray, alpha: float, beta: float
) -> tuple[np.ndarray, np.ndarray]:
    """(A2): ``(w', lam')`` with ``lam' = lam + (beta/n) sum_i delta_i g_i``; g (..., d_pi, n)."""
    beta = check_real(beta, "beta")
    g = as_float_array(g, "g")
    lam = as_float_array(lam, "lam")
    n = np.asarray(X).shape[-1]
    if g.ndim < 2 or g.shape[-1] != n:
        raise ValueError(f"g: expected shape (..., d_pi, {n}), got {g.shape}")
    _check_vector(lam, g.shape[-2], "lam", f"d_pi = {g.shape[-2]} of g")
    delta = td_errors(X, w)
    w_new = sarsa_update(X, w, alpha)
    return w_new, lam + beta / n * np.einsum("...kn,...n->...k", g, delta)


def td_update(X: np.ndarray, w: np.ndarray, alpha: float, n_iter: int = 1) -> np.ndarray:
    """``n_iter`` steps of batch TD(0) (§5) on the same columns X = [phi(s); gamma phi(s'); r]."""
    for _ in range(check_int(n_iter, "n_iter")):
        w = sarsa_update(X, w, alpha)
    return w
