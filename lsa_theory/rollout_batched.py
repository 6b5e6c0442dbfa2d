"""The batched closed loops (S6)/(A5) of :mod:`lsa_theory.rollout`: ``k`` MDPs stepped together.

Without reward noise a context consumes a fixed number of uniforms whatever the policy (one for
``s_0 ~ mu0`` in the first context only, one for ``a_0``, two per transition), so the closed loops
(S6)/(A5) of ``k`` MDPs can run together from pre-drawn uniforms: :func:`sarsa_loop_batched` and
:func:`actor_critic_loop_batched` step all ``k`` chains at once and reproduce the per-MDP loops
bit for bit when fed ``U[j] = rng.random(loop_draws(n, n_updates))`` drawn where the per-MDP loop
would start.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ._checks import as_float_array, check_distribution, check_gamma, check_int, check_real, input_eps
from .mdp import STOCHASTIC_ATOL
from .policies import (
    epsilon_greedy_rows,
    score_table,
    softmax_rows,
)
from .prompts import context_columns
from .rollout import LoopResult, _check_pair, _check_update

# ---------------------------------------------------------------------------------------------
# Batched closed loops: k MDPs stepped together from pre-drawn uniforms.
#
# Bit-identity with the per-MDP loops rests on three facts, each checked by
# tests/test_vectorised_rollouts.py: ``Generator.random(size)`` yields the same doubles as ``size``
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


def _sample_rows(cdf: np.ndarray, u: np.ndarray) -> np.ndarray:
    """(k,) ``min(searchsorted(cdf[j], u[j], side='right'), m - 1)`` for cdf (k, m), u (k,)."""
    return np.minimum((cdf <= u[:, None]).sum(axis=-1), cdf.shape[-1] - 1)


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


def _batched_columns(phi: np.ndarray, states, actions, rewards, gamma: float) -> np.ndarray:
    """(k, 2d+1, n) (H) columns of k trajectories, as :func:`sarsa_columns` per MDP."""
    f = _gather(phi, states, actions)  # (k, n+1, d)
    return context_columns(f[:, :-1], f[:, 1:], rewards, gamma)


def sarsa_loop_batched(
    P: np.ndarray,
    r: np.ndarray,
    mu0: np.ndarray,
    gamma: float,
    phi: np.ndarray,
    w0: np.ndarray,
    update: Callable[[np.ndarray, np.ndarray], np.ndarray],
    U: np.ndarray,
    *,
    n: int,
    n_updates: int,
    epsilon: float,
) -> LoopResult:
    """(S6) closed loop of k MDPs at once: for each MDP ``j``, from ``s_0 ~ mu0[j]`` and ``w0[j]``,
    ``T = n_updates`` times roll out ``n`` steps epsilon-greedy on ``Q_w = phi w``, set
    ``w <- update(X, w)``, ``s_0 <- s_n``.

    Shapes: ``P`` (k, S, A, S), ``r`` (k, S, A) or (k, S, A, S), ``mu0`` (k, S), scalar ``gamma``,
    ``phi`` (S, A, d) shared or (k, S, A, d), ``w0`` (k, d), uniforms ``U`` (k, loop_draws(n, T))
    in [0, 1) used in the order of :func:`loop_draws`; ``update`` maps X (k, 2d+1, n), w (k, d)
    to (k, d) (e.g. ``lambda X, w: sarsa_update(X, w, alpha)``). Returns a :class:`LoopResult`
    with ``ws`` (k, T+1, d) and ``Xs`` (k, T, 2d+1, n). With ``U[j]`` the uniforms the generator
    would give :func:`sarsa_loop` on MDP ``j``, row ``j`` equals its result bit for bit.
    """
    T = check_int(n_updates, "n_updates")
    n = check_int(n, "n")
    cP, r, cmu0 = _check_mdps(P, r, mu0)
    k, S, A = cP.shape[:3]
    gamma = check_gamma(gamma)
    epsilon = check_real(epsilon, "epsilon", low=0.0, high=1.0)
    phi = _check_batched_table(phi, k, S, A, "phi")
    d = phi.shape[-1]
    w = _check_batched_start(w0, k, d, "w0")
    update = _check_update(update, "update")
    chains = _Chains(cP, r, cmu0, _check_uniforms(U, k, n, T))
    ws, Xs = np.empty((k, T + 1, d)), np.empty((k, T, 2 * d + 1, n))
    ws[:, 0] = w
    for t in range(T):
        pi = epsilon_greedy_rows(_linear(phi, w), epsilon)
        X = _batched_columns(phi, *chains.context(np.cumsum(pi, axis=-1), n), gamma)
        w = as_float_array(update(X, w), "update(X, w)")
        if w.shape != (k, d):
            raise ValueError(f"update(X, w): expected shape {(k, d)}, got {w.shape}")
        ws[:, t + 1], Xs[:, t] = w, X
    return LoopResult(ws, Xs)


def actor_critic_loop_batched(
    P: np.ndarray,
    r: np.ndarray,
    mu0: np.ndarray,
    gamma: float,
    phi: np.ndarray,
    phi_pi: np.ndarray,
    w0: np.ndarray,
    lam0: np.ndarray,
    update: Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], tuple],
    U: np.ndarray,
    *,
    n: int,
    n_updates: int,
) -> LoopResult:
    """(A5) closed loop of k MDPs at once: as :func:`sarsa_loop_batched` acting with the softmax
    actor ``pi_lambda``; ``update(X, g, w, lam) -> (w', lam')`` on stacks X (k, 2d+1, n), scores
    g (k, d_pi, n), w (k, d), lam (k, d_pi) (e.g. ``actor_critic_update`` with fixed alpha, beta).

    ``phi_pi`` is (S, A, d_pi) shared or (k, S, A, d_pi), ``lam0`` (k, d_pi); other shapes as in
    :func:`sarsa_loop_batched`. Returns ``ws`` (k, T+1, d), ``Xs`` (k, T, 2d+1, n), ``lams``
    (k, T+1, d_pi) and ``gs`` (k, T, d_pi, n), row ``j`` bit for bit :func:`actor_critic_loop`.
    """
    T = check_int(n_updates, "n_updates")
    n = check_int(n, "n")
    cP, r, cmu0 = _check_mdps(P, r, mu0)
    k, S, A = cP.shape[:3]
    gamma = check_gamma(gamma)
    phi = _check_batched_table(phi, k, S, A, "phi")
    phi_pi = _check_batched_table(phi_pi, k, S, A, "phi_pi")
    d, d_pi = phi.shape[-1], phi_pi.shape[-1]
    w = _check_batched_start(w0, k, d, "w0")
    lam = _check_batched_start(lam0, k, d_pi, "lam0")
    update = _check_update(update, "update")
    chains = _Chains(cP, r, cmu0, _check_uniforms(U, k, n, T))
    ws, lams = np.empty((k, T + 1, d)), np.empty((k, T + 1, d_pi))
    Xs, gs = np.empty((k, T, 2 * d + 1, n)), np.empty((k, T, d_pi, n))
    ws[:, 0], lams[:, 0] = w, lam
    for t in range(T):
        pi = softmax_rows(_linear(phi_pi, lam))  # softmax_policy per MDP
        states, actions, rewards = chains.context(np.cumsum(pi, axis=-1), n)
        X = _batched_columns(phi, states, actions, rewards, gamma)
        G = score_table(phi_pi, pi)  # score, per MDP
        g = _gather(G, states[:, :-1], actions[:, :-1]).swapaxes(-1, -2)  # (k, d_pi, n) view, as g.T
        w, lam = _check_pair(update(X, g, w, lam), (k, d), (k, d_pi))
        ws[:, t + 1], lams[:, t + 1], Xs[:, t], gs[:, t] = w, lam, X, g
    return LoopResult(ws, Xs, lams, gs)
