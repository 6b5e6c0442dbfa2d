"""Sampling kernels of the batched closed loops (S6)/(A5): ``k`` MDPs stepped together.

Without reward noise a context consumes a fixed number of uniforms whatever the policy (one for
``s_0 ~ mu0`` in the first context only, one for ``a_0``, two per transition), so the closed loops
(S6)/(A5) of ``k`` MDPs can run together from pre-drawn uniforms: the batched driver
:func:`lsa_theory.loop_driver.closed_loop_batched` steps all ``k`` chains at once (:class:`_Chains`)
and reproduces the per-MDP loops bit for bit when fed ``U[j] = rng.random(loop_draws(n,
n_updates))`` drawn where the per-MDP loop would start.
"""

from __future__ import annotations

import numpy as np

from .checks import as_float_array, check_distribution, check_int, input_eps
from .mdp import STOCHASTIC_ATOL
from .rollout import _sample_rows

# ---------------------------------------------------------------------------------------------
# Batched closed loops: k MDPs stepped together from pre-drawn uniforms.
#
# Bit-identity with the per-MDP loops rests on three facts, each checked by
# tests/core/test_vectorised_rollouts.py: ``Generator.random(size)`` yields the same doubles as ``size``
# calls of ``Generator.random()``; for a non-decreasing ``cdf`` (a cumsum of non-negative numbers)
# ``searchsorted(cdf, u, side="right") == (cdf <= u).sum()``, ties included; and every float is
# computed by the same numpy kernel on an operand of the same shape and memory layout as in the
# per-MDP code (matmul over (A, d) x (d,) blocks, cumsum / max / sum along the last axis, the
# update rules called on (k, ...) stacks, which reduce along the same axes in the same order).
# ---------------------------------------------------------------------------------------------


def loop_draws(n: int, n_updates: int) -> int:
    """Uniforms one noiseless closed loop (S6)/(A5) consumes: ``1 + n_updates (1 + 2n)``.

    Order (the order of :func:`rollout`): ``s_0 ~ mu0``; then per context ``a_0`` followed by
    ``(s_{i+1}, a_{i+1})`` for ``i = 0..n-1``; later contexts start from the carried ``s_n``.
    """
    return 1 + check_int(n_updates, "n_updates") * (1 + 2 * check_int(n, "n"))


def _check_mdps(P, r, mu0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validated ``(cumsum P, r, cumsum mu0)`` of k stacked MDPs.

    Shapes: P (k, S, A, S), r (k, S, A) or (k, S, A, S), mu0 (k, S).
    """
    P_eps, mu0_eps = input_eps(P), input_eps(mu0)
    P = as_float_array(P, "P", ndim=4)
    k, S, A, S2 = P.shape
    if S != S2 or min(P.shape) < 1:
        raise ValueError(f"P: expected shape (k, S, A, S) with k, S, A >= 1, got {P.shape}")
    check_distribution(P, "P", axis=-1, atol=STOCHASTIC_ATOL, eps=P_eps)
    r = as_float_array(r, "r", ndim=(3, 4))
    if r.shape not in ((k, S, A), (k, S, A, S)):
        raise ValueError(f"r: expected shape {(k, S, A)} or {(k, S, A, S)}, got {r.shape}")
    mu0 = as_float_array(mu0, "mu0", ndim=2)
    if mu0.shape != (k, S):
        raise ValueError(f"mu0: expected shape {(k, S)}, got {mu0.shape}")
    check_distribution(mu0, "mu0", axis=-1, atol=STOCHASTIC_ATOL, eps=mu0_eps)
    return np.cumsum(P, axis=-1), r, np.cumsum(mu0, axis=-1)


def _check_batched_table(phi, k: int, S: int, A: int, name: str) -> np.ndarray:
    """Feature table shared by the k MDPs (S, A, d) or one per MDP (k, S, A, d)."""
    phi = as_float_array(phi, name, ndim=(3, 4))
    if phi.shape[-1] == 0:
        raise ValueError(f"{name}: expected d >= 1 features, got shape {phi.shape}")
    if phi.shape[-3:-1] != (S, A) or (phi.ndim == 4 and phi.shape[0] != k):
        raise ValueError(f"{name}: expected shape {(S, A)} + ('d',) or {(k, S, A)} + ('d',), got {phi.shape}")
    return phi


def _check_batched_start(v, k: int, d: int, name: str) -> np.ndarray:
    v = as_float_array(v, name, ndim=2)
    if v.shape != (k, d):
        raise ValueError(f"{name}: expected shape {(k, d)} (k MDPs, feature dimension), got {v.shape}")
    return v


def _check_uniforms(U, k: int, n: int, T: int) -> np.ndarray:
    U = as_float_array(U, "U", ndim=2)
    shape = (k, loop_draws(n, T))
    if U.shape != shape:
        raise ValueError(f"U: expected shape {shape} = (k, loop_draws(n, n_updates)), got {U.shape}")
    if (U < 0.0).any() or (U >= 1.0).any():
        raise ValueError("U: uniforms must lie in [0, 1)")
    return U


def _gather(table: np.ndarray, states: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """(k, ..., d) rows ``table[j][states[j, i], actions[j, i]]`` of a shared or per-MDP table."""
    if table.ndim == 3:
        return table[states, actions]
    rows = np.arange(table.shape[0]).reshape((-1,) + (1,) * (states.ndim - 1))
    return table[rows, states, actions]


def _linear(table: np.ndarray, v: np.ndarray) -> np.ndarray:
    """(k, S, A) ``table[j] @ v[j]``: the same (A, d) x (d,) matmul blocks as ``phi @ w`` per MDP."""
    return (table @ v[:, None, :, None])[..., 0]


class _Chains:
    """k rollouts stepped together from the columns of the uniforms ``U`` (k, loop_draws)."""

    def __init__(self, cP: np.ndarray, r: np.ndarray, cmu0: np.ndarray, U: np.ndarray):
        self.cP, self.r, self.cmu0 = cP, r, cmu0
        self.U = np.ascontiguousarray(U.T)  # one row of k uniforms per draw
        self.rows = np.arange(U.shape[0])
        self.col = 0
        self.s: np.ndarray | None = None

    def _u(self) -> np.ndarray:
        self.col += 1
        return self.U[self.col - 1]

    def context(self, cpi: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Roll ``n`` transitions under the (k, S, A) cumulative policies ``cpi`` from the carried
        states (``s_0 ~ mu0`` the first time): ``states``, ``actions`` (k, n+1), ``rewards`` (k, n)."""
        k, rows = len(self.rows), self.rows
        states = np.empty((k, n + 1), dtype=np.int64)
        actions = np.empty((k, n + 1), dtype=np.int64)
        rewards = np.empty((k, n))
        s = _sample_rows(self.cmu0, self._u()) if self.s is None else self.s
        states[:, 0], actions[:, 0] = s, _sample_rows(cpi[rows, s], self._u())
        for i in range(n):
            s, a = states[:, i], actions[:, i]
            s_next = _sample_rows(self.cP[rows, s, a], self._u())
            rewards[:, i] = self.r[rows, s, a] if self.r.ndim == 3 else self.r[rows, s, a, s_next]
            states[:, i + 1], actions[:, i + 1] = s_next, _sample_rows(cpi[rows, s_next], self._u())
        self.s = states[:, -1]
        return states, actions, rewards
