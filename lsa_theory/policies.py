r"""Behaviour policies of THEORY.md §0 and §3, as (S, A) probability matrices.

epsilon-greedy on :math:`Q_w(s, a) = w^\top \phi(s, a)` (ties go to the lowest action index), and
the softmax actor :math:`\pi_\lambda(a \mid s) \propto \exp(\lambda^\top \phi_\pi(s, a))` with its
score :math:`g(s, a) = \phi_\pi(s, a) - \sum_b \pi_\lambda(b \mid s)\, \phi_\pi(s, b)`.
"""

from __future__ import annotations

import numpy as np

from ._checks import as_float_array, check_real

__all__ = ["q_values", "greedy", "epsilon_greedy", "softmax_policy", "score"]


def _table_and_vector(phi, w, names=("phi", "w")) -> tuple[np.ndarray, np.ndarray]:
    phi = as_float_array(phi, names[0], ndim=3)
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


def greedy(Q: np.ndarray) -> np.ndarray:
    """(S, A) deterministic policy putting mass 1 on ``argmax_a Q[s, a]`` (lowest index on ties)."""
    Q = as_float_array(Q, "Q", ndim=2)
    pi = np.zeros_like(Q)
    pi[np.arange(Q.shape[0]), Q.argmax(axis=1)] = 1.0
    return pi


def epsilon_greedy(Q: np.ndarray, epsilon: float) -> np.ndarray:
    """(S, A) policy ``(1 - epsilon) greedy(Q) + epsilon uniform``."""
    epsilon = check_real(epsilon, "epsilon", low=0.0, high=1.0)
    Q = as_float_array(Q, "Q", ndim=2)
    pi = greedy(Q)
    return (1.0 - epsilon) * pi + epsilon / Q.shape[1]


def softmax_policy(phi_pi: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """(S, A) softmax actor ``pi_lambda(a|s) ∝ exp(lam^T phi_pi(s, a))`` of §3 (stable form)."""
    phi_pi, lam = _table_and_vector(phi_pi, lam, ("phi_pi", "lam"))
    logits = phi_pi @ lam
    logits = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(logits)
    return e / e.sum(axis=1, keepdims=True)


def score(phi_pi: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """(S, A, d_pi) score table ``g(s, a) = phi_pi(s, a) - sum_b pi_lambda(b|s) phi_pi(s, b)``."""
    pi = softmax_policy(phi_pi, lam)
    phi_pi = np.asarray(phi_pi, dtype=np.float64)
    return phi_pi - np.einsum("sb,sbk->sk", pi, phi_pi)[:, None, :]
