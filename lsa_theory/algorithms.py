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

from typing import Any

import numpy as np

from . import backend as B
from .checks import as_float_array, check_int, check_real
from .prompts import _check_context, _check_vector
from .roundoff import gamma, matmul_error_bound

__all__ = ["td_errors", "sarsa_update", "actor_critic_update", "td_update", "sarsa_update_error_bound"]


def _einsum(spec: str, *ops: Any) -> Any:
    if B.is_torch(ops[0]):
        import torch

        return torch.einsum(spec, *ops)
    import numpy as np

    return np.einsum(spec, *ops)


def _float64_numpy(x: Any) -> Any:
    """numpy arrays in float64 (the verification precision); torch tensors as they are."""
    return x if B.is_torch(x) else x.astype("float64", copy=False)


def _columns_and_critic(X: Any, w: Any) -> tuple[Any, Any, int, int]:
    """Checked ``X`` (..., 2d+1, n) and ``w`` (..., d) of one kind (numpy, or torch as ``X``)."""
    X = _float64_numpy(B.as_array(X, "X"))
    d, n = _check_context(X)
    w = _float64_numpy(B.as_array(w, "w", ref=X))
    _check_vector(w, d, "w", f"d = {d} of X")
    return X, w, d, n


def _td_errors(X: Any, w: Any, d: int) -> Any:
    return X[..., 2 * d, :] + _einsum("...kn,...k->...n", X[..., : 2 * d, :], B.concat([-w, w], axis=-1))


def td_errors(X: Any, w: Any) -> Any:
    """(..., n) TD errors ``delta_i = r_{i+1} + gamma w^T phi_i^+ - w^T phi_i`` from X (..., 2d+1, n).

    numpy in -> numpy out (float64 at least), torch in -> torch out (differentiable)."""
    X, w, d, _ = _columns_and_critic(X, w)
    return _td_errors(X, w, d)


def _sarsa_step(X: Any, w: Any, alpha: float, d: int, n: int) -> Any:
    return w + alpha / n * _einsum("...kn,...n->...k", X[..., :d, :], _td_errors(X, w, d))


def sarsa_update(X: Any, w: Any, alpha: float) -> Any:
    """(S2): (..., d) ``w + (alpha/n) sum_i delta_i phi_i`` for X (..., 2d+1, n), w (..., d).

    numpy in -> numpy out, torch in -> torch out (differentiable in ``X`` and ``w``)."""
    alpha = check_real(alpha, "alpha")
    X, w, d, n = _columns_and_critic(X, w)
    return _sarsa_step(X, w, alpha, d, n)


def actor_critic_update(X: Any, g: Any, w: Any, lam: Any, alpha: float, beta: float) -> tuple[Any, Any]:
    """(A2): ``(w', lam')`` with ``lam' = lam + (beta/n) sum_i delta_i g_i``; g (..., d_pi, n).

    numpy in -> numpy out, torch in -> torch out (differentiable)."""
    alpha = check_real(alpha, "alpha")
    beta = check_real(beta, "beta")
    X, w, d, n = _columns_and_critic(X, w)
    g = _float64_numpy(B.as_array(g, "g", ref=X))
    lam = _float64_numpy(B.as_array(lam, "lam", ref=X))
    if g.ndim < 2 or g.shape[-1] != n or g.shape[-2] < 1:
        raise ValueError(f"g: expected shape (..., d_pi, {n}) with d_pi >= 1, got {tuple(g.shape)}")
    _check_vector(lam, g.shape[-2], "lam", f"d_pi = {g.shape[-2]} of g")
    delta = _td_errors(X, w, d)
    w_new = w + alpha / n * _einsum("...kn,...n->...k", X[..., :d, :], delta)
    return w_new, lam + beta / n * _einsum("...kn,...n->...k", g, delta)


def td_update(X: Any, w: Any, alpha: float, n_iter: int = 1) -> Any:
    """``n_iter`` steps of batch TD(0) (§5) on the same columns X = [phi(s); gamma phi(s'); r].

    numpy in -> numpy out, torch in -> torch out (differentiable)."""
    alpha = check_real(alpha, "alpha")
    n_iter = check_int(n_iter, "n_iter")
    X, w, d, n = _columns_and_critic(X, w)
    for _ in range(n_iter):
        w = _sarsa_step(X, w, alpha, d, n)
    return w


def sarsa_update_error_bound(
    X: np.ndarray,
    w: np.ndarray,
    alpha: float,
    g: np.ndarray | None = None,
    lam: np.ndarray | None = None,
    beta: float | None = None,
) -> np.ndarray:
    r"""Entrywise bound (d,) (with an actor (d + d_pi,)) on ``|fl(teacher) - teacher|`` for the
    exact update (S2) ``w + (alpha/n) sum_i delta_i phi_i`` (and (A2) ``lambda + (beta/n) sum_i
    delta_i g_i``) as :func:`lsa_theory.sarsa_update` / :func:`lsa_theory.actor_critic_update`
    compute it from ``X`` (2d+1, n), ``w`` (d,), ``g`` (d_pi, n), ``lam`` (d_pi,), all exact inputs:

    .. math::

        e_\delta = \gamma_{2d} |[\phi; \gamma\phi^+]|^T |[w; w]| + u |\hat\delta|, \qquad
        E_w = \tfrac{\alpha}{n}\big(\gamma_n |\Phi| |\hat\delta| + |\Phi| e_\delta\big)
              + \gamma_2 |\widehat{\tfrac{\alpha}{n}} \hat s| + u |\hat w'| ,

    (``delta_i``'s inner product of length ``2d`` and the sum with ``r``; the product ``Phi delta``
    of length ``n``; the rounding of ``alpha / n`` and of the scaling; the final sum; a rounding
    ``|fl(x) - x| <= u |x| <= gamma_1 |fl(x)|`` is charged on the computed value), the same with
    ``G``, ``beta`` for ``lambda``; the final factor :math:`1 + \gamma_{2(n+d)}` covers the
    second-order terms (magnitudes of computed instead of exact intermediates). Valid for every
    summation order (Higham §3)."""
    X = as_float_array(X, "X", ndim=2)
    w = as_float_array(w, "w", ndim=1)
    d = w.size
    m, n = X.shape
    if m < 2 * d + 1 or n < 1:
        raise ValueError(f"X: expected shape (2d + 1 (+ rows), n) = ({2 * d + 1}, n >= 1), got {X.shape}")
    alpha = check_real(alpha, "alpha")
    if (g is None) != (lam is None):
        raise ValueError("g, lam: pass both (an actor) or neither")
    if g is not None:
        g = as_float_array(g, "g", ndim=2)
        lam = as_float_array(lam, "lam", ndim=1)
        if g.shape != (lam.size, n):
            raise ValueError(f"g: expected shape (d_pi, n) = ({lam.size}, {n}), got {g.shape}")
        beta = check_real(beta, "beta")
    Z = X[: 2 * d]
    delta = X[2 * d] + Z.T @ np.concatenate([-w, w])
    e_delta = matmul_error_bound(Z.T, np.concatenate([w, w])) + gamma(1) * np.abs(delta)

    def part(F, step, start):
        s = F @ delta
        cs = (step / n) * s
        Es = matmul_error_bound(F, delta) + np.abs(F) @ e_delta
        return (step / n) * Es + gamma(2) * np.abs(cs) + gamma(1) * np.abs(start + cs)

    E = part(X[:d], alpha, w)
    if g is not None:
        E = np.concatenate([E, part(g, beta, lam)])
    return E * (1.0 + gamma(2 * (n + d)))
