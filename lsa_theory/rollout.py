r"""On-policy rollouts and the prompt columns they give (docs/theory.md §0, (H), (A1), (W1), (S6), (A5)).

A context ``z = (s_0, a_0, r_1, s_1, a_1, ..., s_n, a_n)`` holds ``n`` transitions; the next
action ``a_{i+1}`` is the one the behaviour policy actually samples. Rollouts continue from a
given state (``s_0 <- s_n`` in the closed loop (S6)). All randomness comes from the ``rng``
argument; the sampling order is fixed (for each step: action, next state, reward noise if any),
so equal seeds give equal trajectories.

The closed loops (S6)/(A5) that repeat these contexts, single and batched, are one driver with
hooks in :mod:`lsa_theory.loop_driver` (:func:`~lsa_theory.loop_driver.sarsa_loop`, ...); the
batched sampling kernels are in :mod:`lsa_theory.rollout_batched`. This module imports neither.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .checks import as_float_array, check_int, check_rng
from .mdp import TabularMDP, check_mdp, check_policy
from .policies import (
    epsilon_greedy,
    q_values,
    score,
    softmax_policy,
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
    "DIVERGENCE_BOUND",
    "diverged",
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


def _sample_rows(cdf: np.ndarray, u: np.ndarray) -> np.ndarray:
    """(k,) ``min(searchsorted(cdf[j], u[j], side='right'), m - 1)`` for cdf (k, m), u (k,): the
    batched form of :func:`_sample` (equal for a non-decreasing ``cdf``, ties included)."""
    return np.minimum((cdf <= u[:, None]).sum(axis=-1), cdf.shape[-1] - 1)


_check_rng = check_rng


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
    The batched loops give the same fields with a leading (k,) MDP axis.

    ``diverged_at`` (single loops, :func:`lsa_theory.loop_driver.closed_loop`): the first
    update ``t`` (1..T) whose parameters :func:`diverged` (or whose context or update overflowed);
    the loop stops there and ``ws[t:]``, ``lams[t:]`` and the frames it did not compute are NaN.
    ``None``: no divergence (and always for the batched loops, which do not test it)."""

    ws: np.ndarray
    Xs: np.ndarray
    lams: np.ndarray | None = None
    gs: np.ndarray | None = None
    diverged_at: int | None = None


#: A closed loop has diverged when a parameter vector is not finite or its 1-norm exceeds this
#: (issue 18; the same notion in :func:`lsa_theory.experiments.control.deploy`): beyond it
#: ``|Q_w| <= ||w||_1 max |phi|`` and the prompt products of the next update approach float64 overflow.
DIVERGENCE_BOUND = 1e200


def diverged(v: np.ndarray) -> bool:
    """True when ``v`` has a non-finite entry or ``||v||_1 >`` :data:`DIVERGENCE_BOUND`."""
    with np.errstate(over="ignore", invalid="ignore"):
        total = float(np.abs(v).sum())
    return not np.isfinite(total) or total > DIVERGENCE_BOUND


def _check_pair(out, w_shape: tuple, lam_shape: tuple) -> tuple[np.ndarray, np.ndarray]:
    """The ``(w', lam')`` returned by an actor-critic ``update``, checked for type and shapes."""
    name = "update(X, g, w, lam)"
    if not isinstance(out, tuple | list) or len(out) != 2:
        raise ValueError(f"{name}: expected a pair (w', lam'), got {type(out).__name__}")
    w, lam = (
        as_float_array(out[0], f"{name}[0]"),
        as_float_array(out[1], f"{name}[1]"),
    )
    if w.shape != w_shape or lam.shape != lam_shape:
        raise ValueError(f"{name}: expected w' {w_shape} and lam' {lam_shape}, got {w.shape}, {lam.shape}")
    return w, lam


def _check_update(update, name: str) -> Callable:
    if not callable(update):
        raise ValueError(f"{name}: expected a callable, got {type(update).__name__}")
    return update
