r"""On-policy rollouts and the prompt columns they give (docs/theory.md §0, (H), (A1), (W1), (S6), (A5)).

A context ``z = (s_0, a_0, r_1, s_1, a_1, ..., s_n, a_n)`` holds ``n`` transitions; the next
action ``a_{i+1}`` is the one the behaviour policy actually samples. Rollouts continue from a
given state (``s_0 <- s_n`` in the closed loop (S6)). All randomness comes from the ``rng``
argument; the sampling order is fixed (for each step: action, next state, reward noise if any),
so equal seeds give equal trajectories.

Without reward noise a context consumes a fixed number of uniforms whatever the policy (one for
``s_0 ~ mu0`` in the first context only, one for ``a_0``, two per transition), so the closed loops
(S6)/(A5) of ``k`` MDPs can run together from pre-drawn uniforms: :func:`sarsa_loop_batched` and
:func:`actor_critic_loop_batched` step all ``k`` chains at once and reproduce the per-MDP loops
bit for bit when fed ``U[j] = rng.random(loop_draws(n, n_updates))`` drawn where the per-MDP loop
would start.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ._checks import as_float_array, check_distribution, check_gamma, check_int, check_real, input_eps
from .mdp import STOCHASTIC_ATOL, TabularMDP, check_mdp, check_policy
from .policies import (
    epsilon_greedy,
    epsilon_greedy_rows,
    q_values,
    score,
    score_table,
    softmax_policy,
    softmax_rows,
)
from .prompts import context_columns

__all__ = [
    "Trajectory",
    "rollout",
    "sarsa_columns",
    "actor_critic_columns",
    "td_columns",
    "sarsa_context",
    "actor_critic_context",
    "LoopResult",
    "sarsa_loop",
    "actor_critic_loop",
    "loop_draws",
    "sarsa_loop_batched",
    "actor_critic_loop_batched",
]


@dataclass(frozen=True)
class Trajectory:
    """``states`` (n+1,), ``actions`` (n+1,) ints and ``rewards`` (n,): ``rewards[i] = r_{i+1}``."""

    states: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray

    @property
    def n(self) -> int:
        return len(self.rewards)


def _sample(cdf: np.ndarray, u: float) -> int:
    return min(int(np.searchsorted(cdf, u, side="right")), len(cdf) - 1)


def _check_rng(rng) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng: expected numpy.random.Generator, got {type(rng).__name__}")
    return rng


def _check_state(mdp: TabularMDP, s0) -> int:
    s0 = check_int(s0, "s0", minimum=0)
    if s0 >= mdp.n_states:
        raise ValueError(f"s0: must be < S = {mdp.n_states}, got {s0}")
    return s0


def rollout(
    mdp: TabularMDP, pi: np.ndarray, n: int, rng: np.random.Generator, s0: int | None = None
) -> Trajectory:
    """Roll out ``n`` transitions of the (S, A) policy ``pi`` from ``s0`` (or ``s0 ~ mu0``)."""
    pi = check_policy(mdp, pi)
    n = check_int(n, "n")
    rng = _check_rng(rng)
    cP = mdp.cumulative_P
    cpi = np.cumsum(pi, axis=-1)
    s = _sample(np.cumsum(mdp.mu0), rng.random()) if s0 is None else _check_state(mdp, s0)
    states = np.empty(n + 1, dtype=np.int64)
    actions = np.empty(n + 1, dtype=np.int64)
    rewards = np.empty(n)
    states[0], actions[0] = s, _sample(cpi[s], rng.random())
    for i in range(n):
        s, a = states[i], actions[i]
        s_next = _sample(cP[s, a], rng.random())
        r = mdp.r[s, a] if mdp.r.ndim == 2 else mdp.r[s, a, s_next]
        if mdp.reward_noise > 0:
            r = r + mdp.reward_noise * rng.standard_normal()
        rewards[i] = r
        states[i + 1], actions[i + 1] = s_next, _sample(cpi[s_next], rng.random())
    return Trajectory(states, actions, rewards)


def _check_table(phi, mdp_shape: tuple[int, int] | None, name: str) -> np.ndarray:
    phi = as_float_array(phi, name, ndim=3)
    if phi.shape[-1] == 0:
        raise ValueError(f"{name}: expected d >= 1 features, got shape {phi.shape}")
    if mdp_shape is not None and phi.shape[:2] != mdp_shape:
        raise ValueError(f"{name}: expected shape {mdp_shape + ('d',)}, got {phi.shape}")
    return phi


def _check_covers(phi: np.ndarray, traj: Trajectory, name: str) -> None:
    if not isinstance(traj, Trajectory):
        raise ValueError(f"traj: expected a Trajectory, got {type(traj).__name__}")
    S, A = phi.shape[:2]
    if traj.states.max(initial=0) >= S or traj.actions.max(initial=0) >= A:
        raise ValueError(
            f"{name}: table of shape {phi.shape} does not cover the trajectory (states up to "
            f"{traj.states.max()}, actions up to {traj.actions.max()})"
        )


def sarsa_columns(traj: Trajectory, phi: np.ndarray, gamma: float) -> np.ndarray:
    """(H) columns ``X`` (2d+1, n): ``x_i = [phi(s_i, a_i); gamma phi(s_{i+1}, a_{i+1}); r_{i+1}]``."""
    phi = _check_table(phi, None, "phi")
    _check_covers(phi, traj, "phi")
    f = phi[traj.states, traj.actions]  # (n+1, d)
    return context_columns(f[:-1], f[1:], traj.rewards, gamma)


def actor_critic_columns(
    traj: Trajectory, phi: np.ndarray, phi_pi: np.ndarray, lam: np.ndarray, gamma: float
) -> tuple[np.ndarray, np.ndarray]:
    """(A1) columns: ``X`` (2d+1, n) as (H) and scores ``g`` (d_pi, n), ``g_i = g(s_i, a_i)`` at ``lam``."""
    X = sarsa_columns(traj, phi, gamma)
    _check_covers(_check_table(phi_pi, None, "phi_pi"), traj, "phi_pi")
    G = score(phi_pi, lam)
    return X, G[traj.states[:-1], traj.actions[:-1]].T


def td_columns(traj: Trajectory, phi_s: np.ndarray, gamma: float) -> np.ndarray:
    """(W1) columns (2d+1, n): ``[phi(s_i); gamma phi(s_{i+1}); r_{i+1}]`` with state features (S, d)."""
    phi_s = as_float_array(phi_s, "phi_s", ndim=2)
    if phi_s.shape[-1] == 0:
        raise ValueError(f"phi_s: expected d >= 1 features, got shape {phi_s.shape}")
    if not isinstance(traj, Trajectory):
        raise ValueError(f"traj: expected a Trajectory, got {type(traj).__name__}")
    if traj.states.max(initial=0) >= phi_s.shape[0]:
        raise ValueError(f"phi_s: {phi_s.shape[0]} rows do not cover state {traj.states.max()}")
    return sarsa_columns(
        Trajectory(traj.states, np.zeros_like(traj.actions), traj.rewards), phi_s[:, None, :], gamma
    )


def sarsa_context(
    mdp: TabularMDP,
    phi: np.ndarray,
    w: np.ndarray,
    n: int,
    epsilon: float,
    rng: np.random.Generator,
    s0: int | None = None,
) -> tuple[np.ndarray, Trajectory]:
    """One SARSA context: roll out ``n`` steps epsilon-greedy on ``Q_w`` and return ``(X, traj)``."""
    phi = _check_table(phi, (check_mdp(mdp).n_states, mdp.n_actions), "phi")
    traj = rollout(mdp, epsilon_greedy(q_values(phi, w), epsilon), n, rng, s0)
    return sarsa_columns(traj, phi, mdp.gamma), traj


def actor_critic_context(
    mdp: TabularMDP,
    phi: np.ndarray,
    phi_pi: np.ndarray,
    lam: np.ndarray,
    n: int,
    rng: np.random.Generator,
    s0: int | None = None,
) -> tuple[np.ndarray, np.ndarray, Trajectory]:
    """One actor-critic context: roll out ``n`` steps of ``pi_lambda``; return ``(X, g, traj)``."""
    phi = _check_table(phi, (check_mdp(mdp).n_states, mdp.n_actions), "phi")
    phi_pi = _check_table(phi_pi, (mdp.n_states, mdp.n_actions), "phi_pi")
    traj = rollout(mdp, softmax_policy(phi_pi, lam), n, rng, s0)
    X, g = actor_critic_columns(traj, phi, phi_pi, lam, mdp.gamma)
    return X, g, traj


def _check_start(v, d: int, name: str) -> np.ndarray:
    v = as_float_array(v, name, ndim=1)
    if v.shape != (d,):
        raise ValueError(f"{name}: expected length {d} to match the features, got {v.shape[0]}")
    return v


@dataclass(frozen=True)
class LoopResult:
    """Frames of a closed loop: ``ws`` (T+1, d) parameters, ``Xs`` (T, 2d+1, n) contexts,
    and for actor-critic ``lams`` (T+1, d_pi) and ``gs`` (T, d_pi, n) (else ``None``).
    The batched loops give the same fields with a leading (k,) MDP axis."""

    ws: np.ndarray
    Xs: np.ndarray
    lams: np.ndarray | None = None
    gs: np.ndarray | None = None


def sarsa_loop(
    mdp: TabularMDP,
    phi: np.ndarray,
    w0: np.ndarray,
    update: Callable[[np.ndarray, np.ndarray], np.ndarray],
    *,
    n: int,
    n_updates: int,
    epsilon: float,
    rng: np.random.Generator,
) -> LoopResult:
    """(S6) closed loop: from ``s_0 ~ mu0`` and ``w_0``, repeat ``n_updates`` times: roll out ``n``
    steps epsilon-greedy on ``Q_w`` from the last state, set ``w <- update(X, w)``, ``s_0 <- s_n``.

    ``update`` is the teacher (``lambda X, w: sarsa_update(X, w, alpha)``) in training and the
    frozen transformer's readout at deployment.
    """
    T = check_int(n_updates, "n_updates")
    phi = _check_table(phi, (check_mdp(mdp).n_states, mdp.n_actions), "phi")
    d = phi.shape[-1]
    w = _check_start(w0, d, "w0")
    update = _check_update(update, "update")
    ws, Xs, s = [w], [], None
    for _ in range(T):
        X, traj = sarsa_context(mdp, phi, w, n, epsilon, rng, s)
        w = as_float_array(update(X, w), "update(X, w)")
        if w.shape != (d,):
            raise ValueError(f"update(X, w): expected shape {(d,)}, got {w.shape}")
        s = int(traj.states[-1])
        ws.append(w)
        Xs.append(X)
    return LoopResult(np.stack(ws), np.stack(Xs))


def actor_critic_loop(
    mdp: TabularMDP,
    phi: np.ndarray,
    phi_pi: np.ndarray,
    w0: np.ndarray,
    lam0: np.ndarray,
    update: Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], tuple],
    *,
    n: int,
    n_updates: int,
    rng: np.random.Generator,
) -> LoopResult:
    """(A5) closed loop: as (S6) acting with ``pi_lambda``; ``update(X, g, w, lam) -> (w', lam')``."""
    T = check_int(n_updates, "n_updates")
    phi = _check_table(phi, (check_mdp(mdp).n_states, mdp.n_actions), "phi")
    phi_pi = _check_table(phi_pi, (mdp.n_states, mdp.n_actions), "phi_pi")
    d, d_pi = phi.shape[-1], phi_pi.shape[-1]
    w = _check_start(w0, d, "w0")
    lam = _check_start(lam0, d_pi, "lam0")
    update = _check_update(update, "update")
    ws, lams, Xs, gs, s = [w], [lam], [], [], None
    for _ in range(T):
        X, g, traj = actor_critic_context(mdp, phi, phi_pi, lam, n, rng, s)
        w, lam = _check_pair(update(X, g, w, lam), (d,), (d_pi,))
        s = int(traj.states[-1])
        ws.append(w)
        lams.append(lam)
        Xs.append(X)
        gs.append(g)
    return LoopResult(np.stack(ws), np.stack(Xs), np.stack(lams), np.stack(gs))


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


def _check_pair(out, w_shape: tuple, lam_shape: tuple) -> tuple[np.ndarray, np.ndarray]:
    """The ``(w', lam')`` returned by an actor-critic ``update``, checked for type and shapes."""
    name = "update(X, g, w, lam)"
    if not isinstance(out, tuple | list) or len(out) != 2:
        raise ValueError(f"{name}: expected a pair (w', lam'), got {type(out).__name__}")
    w, lam = as_float_array(out[0], f"{name}[0]"), as_float_array(out[1], f"{name}[1]")
    if w.shape != w_shape or lam.shape != lam_shape:
        raise ValueError(f"{name}: expected w' {w_shape} and lam' {lam_shape}, got {w.shape}, {lam.shape}")
    return w, lam


def _check_update(update, name: str) -> Callable:
    if not callable(update):
        raise ValueError(f"{name}: expected a callable, got {type(update).__name__}")
    return update


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
