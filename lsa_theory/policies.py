r"""Behaviour policies of docs/theory.md §0 and §3, as (S, A) probability matrices.

epsilon-greedy on :math:`Q_w(s, a) = w^\top \phi(s, a)` (ties go to the lowest action index), and
the softmax actor :math:`\pi_\lambda(a \mid s) \propto \exp(\lambda^\top \phi_\pi(s, a))` with its
score :math:`g(s, a) = \phi_\pi(s, a) - \sum_b \pi_\lambda(b \mid s)\, \phi_\pi(s, b)`.
"""

from __future__ import annotations

import numpy as np

from .checks import as_float_array, check_real

__all__ = [
    "q_values",
    "greedy",
    "epsilon_greedy",
    "epsilon_greedy_rows",
    "softmax_rows",
    "softmax_policy",
    "score_table",
    "score",
]


def _table_and_vector(phi, w, names=("phi", "w")) -> tuple[np.ndarray, np.ndarray]:
    phi = as_float_array(phi, names[0], ndim=3)
    if phi.shape[-1] == 0:
        raise ValueError(f"{names[0]}: expected d >= 1 features, got shape {phi.shape}")
    w = as_float_array(w, names[1], ndim=1)
    if phi.shape[-1] != w.shape[0]:
        raise ValueError(
            f"{names[1]}: length {w.shape[0]} does not match feature dimension "
            f"d = {phi.shape[-1]} of {names[0]}"
        )
    return phi, w


def q_values(phi: np.ndarray, w: np.ndarray) -> np.ndarray:
    """(S, A) ``Q_w = phi @ w`` for ``phi`` (S, A, d) and ``w`` (d,)."""
    phi, w = _table_and_vector(phi, w)
    return phi @ w


def epsilon_greedy_rows(Q: np.ndarray, epsilon: float) -> np.ndarray:
    """(..., S, A) ``(1 - epsilon) greedy + epsilon uniform`` of each row of ``Q`` (argmax, lowest
    index on ties); unchecked: the shared kernel of :func:`greedy`, :func:`epsilon_greedy` and the
    batched loops."""
    A = Q.shape[-1]
    return (1.0 - epsilon) * (np.arange(A) == Q.argmax(axis=-1)[..., None]) + epsilon / A


def greedy(Q: np.ndarray) -> np.ndarray:
    """(S, A) deterministic policy putting mass 1 on ``argmax_a Q[s, a]`` (lowest index on ties)."""
    return epsilon_greedy_rows(as_float_array(Q, "Q", ndim=2), 0.0)


def epsilon_greedy(Q: np.ndarray, epsilon: float) -> np.ndarray:
    """(S, A) policy ``(1 - epsilon) greedy(Q) + epsilon uniform``."""
    epsilon = check_real(epsilon, "epsilon", low=0.0, high=1.0)
    return epsilon_greedy_rows(as_float_array(Q, "Q", ndim=2), epsilon)


def softmax_rows(logits: np.ndarray) -> np.ndarray:
    """(..., A) ``exp(logits) / sum exp(logits)`` along the last axis, in the stable form."""
    logits = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(logits)
    return e / e.sum(axis=-1, keepdims=True)


def softmax_policy(phi_pi: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """(S, A) softmax actor ``pi_lambda(a|s) ∝ exp(lam^T phi_pi(s, a))`` of §3 (stable form)."""
    phi_pi, lam = _table_and_vector(phi_pi, lam, ("phi_pi", "lam"))
    return softmax_rows(phi_pi @ lam)


def score_table(phi_pi: np.ndarray, pi: np.ndarray) -> np.ndarray:
    """(..., S, A, d_pi) ``g(s, a) = phi_pi(s, a) - sum_b pi(b|s) phi_pi(s, b)`` for a given actor
    ``pi`` (..., S, A) (unchecked: the shared kernel of :func:`score` and the batched loops)."""
    return phi_pi - np.einsum("...sb,...sbk->...sk", pi, phi_pi)[..., None, :]


def score(phi_pi: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """(S, A, d_pi) score table ``g(s, a) = phi_pi(s, a) - sum_b pi_lambda(b|s) phi_pi(s, b)``."""
    phi_pi, lam = _table_and_vector(phi_pi, lam, ("phi_pi", "lam"))
    return score_table(phi_pi, softmax_rows(phi_pi @ lam))
