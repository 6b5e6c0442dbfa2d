r"""ONE closed-loop driver (S6)/(A5), single and batched, and the hooks it takes (issue 19).

A closed loop repeats ``n_updates`` times: act with the behaviour policy ``pi(w, lambda)`` for
``n`` steps from the carried state (``s_0 <- s_n``, (S6)), build the frame of the context (the
(H) columns ``X`` (2d+1, n) and any extra rows ``g`` such as the (A1) scores (d_pi, n)), and set
``(w, lambda) <- update(X, g, w, lambda)``. What differs between algorithms is two hooks, the
:class:`LoopAgent` protocol:

- ``behaviour(w, lam)``: the (S, A) behaviour policy (batched: (k, S, A) from (k, d) stacks);
- ``frame(states, actions, rewards, w, lam, pi)``: ``(X, g)`` of one context (``g`` ``None``
  without extra rows), from the trajectory (``states``, ``actions`` (n+1,), ``rewards`` (n,), or
  with a leading (k,) axis) and the policy ``pi`` it was drawn from.

Parameters without an actor are ``(w, None)``; every update has the one signature
``(X, g, w, lam) -> (w', lam')``. :func:`closed_loop` runs one MDP drawing from a generator
(the order of :func:`lsa_theory.rollout.rollout`); :func:`closed_loop_batched` runs ``k`` MDPs
from pre-drawn uniforms (the order of :func:`lsa_theory.rollout_batched.loop_draws`), row ``j``
bit for bit the single loop fed the same uniforms. :class:`SarsaAgent` ((S6), epsilon-greedy on
``Q_w``) and :class:`ActorCriticAgent` ((A5), softmax actor, score rows) are the two agents of the
package; :func:`sarsa_loop`, :func:`actor_critic_loop`, :func:`sarsa_loop_batched` and
:func:`actor_critic_loop_batched` are the driver with them. The kernels (:func:`linear`,
:func:`critic_columns`, :func:`score_rows`) work on one MDP or a (k,) stack with the same numpy
kernels on operands of the same shape and layout, which is what makes the batched loop
bit-identical (see :mod:`lsa_theory.rollout_batched`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from .checks import as_float_array, check_gamma, check_int, check_real
from .mdp import TabularMDP, check_mdp
from .policies import epsilon_greedy_rows, score_table, softmax_rows
from .prompts import context_columns
from .rollout import (
    LoopResult,
    _check_pair,
    _check_start,
    _check_table,
    _check_update,
    diverged,
    rollout,
)
from .rollout_batched import (
    _Chains,
    _check_batched_start,
    _check_batched_table,
    _check_mdps,
    _check_uniforms,
    _gather,
    _linear,
)

__all__ = [
    "LoopAgent",
    "SarsaAgent",
    "ActorCriticAgent",
    "linear",
    "critic_columns",
    "score_rows",
    "closed_loop",
    "closed_loop_batched",
    "sarsa_loop",
    "actor_critic_loop",
    "sarsa_loop_batched",
    "actor_critic_loop_batched",
]


class LoopAgent(Protocol):
    """The two hooks of a closed loop at fixed feature tables (module docstring)."""

    def behaviour(self, w: np.ndarray, lam: np.ndarray | None) -> np.ndarray: ...

    def frame(
        self,
        states: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        w: np.ndarray,
        lam: np.ndarray | None,
        pi: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray | None]: ...


# --------------------------------------------------------------------------------------- kernels
def linear(table: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``table @ v``: (S, A) for a table (S, A, d) and ``v`` (d,); (k, S, A) for ``v`` (k, d) and a
    shared (S, A, d) or per-MDP (k, S, A, d) table, as the same (A, d) x (d,) matmul blocks."""
    return table @ v if v.ndim == 1 else _linear(table, v)


def critic_columns(phi: np.ndarray, states, actions, rewards, gamma: float) -> np.ndarray:
    """(H) columns ``X`` (..., 2d+1, n), ``x_i = [phi(s_i, a_i); gamma phi(s_{i+1}, a_{i+1});
    r_{i+1}]``, of trajectories ``states``, ``actions`` (..., n+1), ``rewards`` (..., n) on a
    table ``phi`` (S, A, d) (shared) or (k, S, A, d) (one per MDP)."""
    f = _gather(phi, states, actions)  # (..., n+1, d)
    return context_columns(f[..., :-1, :], f[..., 1:, :], rewards, gamma)


def score_rows(phi_pi: np.ndarray, pi: np.ndarray, states, actions) -> np.ndarray:
    """(A1) score rows ``g`` (..., d_pi, n), ``g_i = phi_pi(s_i, a_i) - sum_b pi(b|s_i) phi_pi(s_i,
    b)``, of the actor ``pi`` (..., S, A) that drew the trajectories (``states``, ``actions``
    (..., n+1); the last pair is not a transition)."""
    G = score_table(phi_pi, pi)
    return _gather(G, states[..., :-1], actions[..., :-1]).swapaxes(-1, -2)


@dataclass(frozen=True, eq=False)
class SarsaAgent:
    """(S6): epsilon-greedy on ``Q_w = phi w``, frames ``(X, None)`` with the (H) columns."""

    phi: np.ndarray
    gamma: float
    epsilon: float

    def behaviour(self, w, lam=None):
        return epsilon_greedy_rows(linear(self.phi, w), self.epsilon)

    def frame(self, states, actions, rewards, w, lam, pi):
        return critic_columns(self.phi, states, actions, rewards, self.gamma), None


@dataclass(frozen=True, eq=False)
class ActorCriticAgent:
    """(A5): act with ``pi_lambda = softmax(lambda^T phi_pi)``, frames ``(X, g)`` with the (A1)
    score rows at the acting ``lambda``."""

    phi: np.ndarray
    phi_pi: np.ndarray
    gamma: float

    def behaviour(self, w, lam):
        return softmax_rows(linear(self.phi_pi, lam))

    def frame(self, states, actions, rewards, w, lam, pi):
        return critic_columns(self.phi, states, actions, rewards, self.gamma), score_rows(
            self.phi_pi, pi, states, actions
        )


# ---------------------------------------------------------------------------------------- drivers
def _stack_nan(frames: list, T: int, shape: tuple) -> np.ndarray:
    """The frames of a loop stacked to length ``T``, NaN after the last one computed."""
    out = np.full((T,) + tuple(shape), np.nan)
    out[: len(frames)] = frames
    return out


def closed_loop(
    mdp: TabularMDP,
    agent: LoopAgent,
    w0: np.ndarray,
    lam0: np.ndarray | None,
    update: Callable,
    *,
    n: int,
    n_updates: int,
    rng: np.random.Generator,
    restart: np.ndarray | None = None,
    keep_frames: bool = True,
    on_context: Callable | None = None,
    on_step: Callable | None = None,
) -> LoopResult:
    """The closed loop (S6)/(A5) of one MDP (module docstring) from ``s_0 ~ mu0`` and ``(w0,
    lam0)`` (``lam0`` ``None`` without an actor), drawing from ``rng`` in the order of
    :func:`lsa_theory.rollout.rollout`.

    Each update: ``pi = agent.behaviour(w, lam)``, ``traj = rollout(mdp, pi, n, rng, s0)``,
    ``on_context(t, traj)``, ``(X, g) = agent.frame(...)``, ``(w', lam') = update(X, g, w, lam)``;
    then ``on_step(t, X, g, w, lam, w', lam', traj)`` and ``s0 <- s_n`` (``s0 ~ mu0`` again when
    ``restart[s_n]``, a boolean (S,) array). Divergence is a result: the loop stops at the first
    update whose context or update overflows (numpy's over/invalid flags) or whose ``w'`` or
    ``lam'`` :func:`~lsa_theory.rollout.diverged`, and records it in ``diverged_at``. Returns a
    :class:`~lsa_theory.rollout.LoopResult`: ``ws`` (T+1, d), ``lams`` (T+1, d_pi) or ``None``,
    NaN after a divergence; with ``keep_frames`` the frames ``Xs`` (T, m, n) and ``gs`` (T,
    d_pi, n) (NaN where not computed), else ``None``. The caller checks its inputs and wraps
    ``update`` with the checks it wants (:func:`sarsa_loop`)."""
    T = check_int(n_updates, "n_updates")
    w, lam = w0, lam0
    ws, lams, Xs, gs, s, t_div = [w], [lam], [], [], None, None
    for t in range(1, T + 1):
        try:
            with np.errstate(over="raise", invalid="raise"):
                pi = agent.behaviour(w, lam)
                traj = rollout(mdp, pi, n, rng, s)
                if on_context is not None:
                    on_context(t, traj)
                X, g = agent.frame(traj.states, traj.actions, traj.rewards, w, lam, pi)
                if keep_frames:
                    Xs.append(X)
                    gs.append(g)
                w_new, lam_new = update(X, g, w, lam)
        except FloatingPointError:
            t_div = t
            break
        if diverged(w_new) or (lam_new is not None and diverged(lam_new)):
            t_div = t
            break
        if on_step is not None:
            on_step(t, X, g, w, lam, w_new, lam_new, traj)
        w, lam = w_new, lam_new
        ws.append(w)
        lams.append(lam)
        s = int(traj.states[-1])
        if restart is not None and restart[s]:
            s = None
    frames = (None, None)
    if keep_frames:
        if not Xs:  # the first context overflowed: its shapes from a frame of a dummy trajectory
            n = check_int(n, "n")
            S, A = mdp.n_states, mdp.n_actions
            zeros = np.zeros(n + 1, dtype=np.int64)
            with np.errstate(all="ignore"):
                X0, g0 = agent.frame(zeros, zeros, np.zeros(n), w0, lam0, np.full((S, A), 1.0 / A))
            Xs, gs = [np.full(X0.shape, np.nan)], [None if g0 is None else np.full(g0.shape, np.nan)]
        frames = (
            _stack_nan(Xs, T, Xs[0].shape),
            None if gs[0] is None else _stack_nan(gs, T, gs[0].shape),
        )
    lam_path = None if lam0 is None else _stack_nan(lams, T + 1, np.shape(lam0))
    return LoopResult(_stack_nan(ws, T + 1, np.shape(w0)), frames[0], lam_path, frames[1], t_div)


def closed_loop_batched(
    P: np.ndarray,
    r: np.ndarray,
    mu0: np.ndarray,
    agent: LoopAgent,
    w0: np.ndarray,
    lam0: np.ndarray | None,
    update: Callable,
    U: np.ndarray,
    *,
    n: int,
    n_updates: int,
) -> LoopResult:
    """The closed loops (S6)/(A5) of ``k`` MDPs at once (module docstring): ``P`` (k, S, A, S),
    ``r`` (k, S, A) or (k, S, A, S), ``mu0`` (k, S), starts ``w0`` (k, d) and ``lam0`` (k, d_pi)
    or ``None``, uniforms ``U`` (k, loop_draws(n, n_updates)) in [0, 1) used in the order of
    :func:`~lsa_theory.rollout_batched.loop_draws`; ``agent`` acts on (k, ...) stacks and
    ``update`` maps stacks ``(X, g, w, lam)`` to ``(w', lam')``. Returns ``ws`` (k, T+1, d),
    ``Xs`` (k, T, m, n), ``lams`` (k, T+1, d_pi) and ``gs`` (k, T, d_pi, n) (``None`` without an
    actor); divergence is not tested (``diverged_at`` ``None``)."""
    T = check_int(n_updates, "n_updates")
    n = check_int(n, "n")
    cP, r, cmu0 = _check_mdps(P, r, mu0)
    chains = _Chains(cP, r, cmu0, _check_uniforms(U, cP.shape[0], n, T))
    w, lam = w0, lam0
    out: dict[str, np.ndarray] = {}

    def store(key: str, v: np.ndarray | None, at: int, length: int, first=None) -> None:
        if v is None:
            return
        if key not in out:
            out[key] = np.empty((v.shape[0], length) + v.shape[1:])
            if first is not None:
                out[key][:, 0] = first
        out[key][:, at] = v

    for t in range(T):
        pi = agent.behaviour(w, lam)
        states, actions, rewards = chains.context(np.cumsum(pi, axis=-1), n)
        X, g = agent.frame(states, actions, rewards, w, lam, pi)
        w, lam = update(X, g, w, lam)
        store("ws", w, t + 1, T + 1, w0)
        store("lams", lam, t + 1, T + 1, lam0)
        store("Xs", X, t, T)
        store("gs", g, t, T)
    return LoopResult(out["ws"], out["Xs"], out.get("lams"), out.get("gs"))


# ------------------------------------------------------------------------ the package's two loops
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
    steps epsilon-greedy on ``Q_w`` from the last state, set ``w <- update(X, w)``, ``s_0 <- s_n``
    (:func:`closed_loop` with :class:`SarsaAgent`).

    ``update`` is the teacher (``lambda X, w: sarsa_update(X, w, alpha)``) in training and the
    frozen transformer's readout at deployment.

    Divergence is a result, not an error: the loop stops at the first update whose ``w`` is not
    finite or has 1-norm above :data:`~lsa_theory.rollout.DIVERGENCE_BOUND`, or whose context or
    update overflows, and records it in ``diverged_at`` (:class:`LoopResult`). Inputs that are
    bad from the start (non-finite ``phi`` or ``w0``, wrong shapes) still raise ValueError, and so
    does an ``update`` that returns NaN or inf without an overflow numpy saw (a fault of the
    callable).
    """
    T = check_int(n_updates, "n_updates")
    phi = _check_table(phi, (check_mdp(mdp).n_states, mdp.n_actions), "phi")
    d = phi.shape[-1]
    w = _check_start(w0, d, "w0")
    update = _check_update(update, "update")
    check_int(n, "n")
    agent = SarsaAgent(phi, check_gamma(mdp.gamma), check_real(epsilon, "epsilon", low=0.0, high=1.0))

    def step(X, g, w, lam):
        w = as_float_array(update(X, w), "update(X, w)")
        if w.shape != (d,):
            raise ValueError(f"update(X, w): expected shape {(d,)}, got {w.shape}")
        return w, None

    return closed_loop(mdp, agent, w, None, step, n=n, n_updates=T, rng=rng)


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
    """(A5) closed loop: as (S6) acting with ``pi_lambda``; ``update(X, g, w, lam) -> (w', lam')``
    (:func:`closed_loop` with :class:`ActorCriticAgent`). Divergence (of ``w`` or ``lam``) is
    recorded in ``diverged_at`` as in :func:`sarsa_loop`."""
    T = check_int(n_updates, "n_updates")
    phi = _check_table(phi, (check_mdp(mdp).n_states, mdp.n_actions), "phi")
    phi_pi = _check_table(phi_pi, (mdp.n_states, mdp.n_actions), "phi_pi")
    d, d_pi = phi.shape[-1], phi_pi.shape[-1]
    w = _check_start(w0, d, "w0")
    lam = _check_start(lam0, d_pi, "lam0")
    update = _check_update(update, "update")
    check_int(n, "n")
    agent = ActorCriticAgent(phi, phi_pi, check_gamma(mdp.gamma))

    def step(X, g, w, lam):
        return _check_pair(update(X, g, w, lam), (d,), (d_pi,))

    return closed_loop(mdp, agent, w, lam, step, n=n, n_updates=T, rng=rng)


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
    ``w <- update(X, w)``, ``s_0 <- s_n`` (:func:`closed_loop_batched` with :class:`SarsaAgent`).

    Shapes: ``P`` (k, S, A, S), ``r`` (k, S, A) or (k, S, A, S), ``mu0`` (k, S), scalar ``gamma``,
    ``phi`` (S, A, d) shared or (k, S, A, d), ``w0`` (k, d), uniforms ``U`` (k, loop_draws(n, T))
    in [0, 1) used in the order of :func:`loop_draws`; ``update`` maps X (k, 2d+1, n), w (k, d)
    to (k, d) (e.g. ``lambda X, w: sarsa_update(X, w, alpha)``). Returns a :class:`LoopResult`
    with ``ws`` (k, T+1, d) and ``Xs`` (k, T, 2d+1, n). With ``U[j]`` the uniforms the generator
    would give :func:`sarsa_loop` on MDP ``j``, row ``j`` equals its result bit for bit.
    """
    T = check_int(n_updates, "n_updates")
    n = check_int(n, "n")
    cP = _check_mdps(P, r, mu0)[0]
    k, S, A = cP.shape[:3]
    gamma = check_gamma(gamma)
    epsilon = check_real(epsilon, "epsilon", low=0.0, high=1.0)
    phi = _check_batched_table(phi, k, S, A, "phi")
    d = phi.shape[-1]
    w = _check_batched_start(w0, k, d, "w0")
    update = _check_update(update, "update")  # U: checked by closed_loop_batched

    def step(X, g, w, lam):
        w = as_float_array(update(X, w), "update(X, w)")
        if w.shape != (k, d):
            raise ValueError(f"update(X, w): expected shape {(k, d)}, got {w.shape}")
        return w, None

    agent = SarsaAgent(phi, gamma, epsilon)
    return closed_loop_batched(P, r, mu0, agent, w, None, step, U, n=n, n_updates=T)


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
    cP = _check_mdps(P, r, mu0)[0]
    k, S, A = cP.shape[:3]
    gamma = check_gamma(gamma)
    phi = _check_batched_table(phi, k, S, A, "phi")
    phi_pi = _check_batched_table(phi_pi, k, S, A, "phi_pi")
    d, d_pi = phi.shape[-1], phi_pi.shape[-1]
    w = _check_batched_start(w0, k, d, "w0")
    lam = _check_batched_start(lam0, k, d_pi, "lam0")
    update = _check_update(update, "update")  # U: checked by closed_loop_batched

    def step(X, g, w, lam):
        return _check_pair(update(X, g, w, lam), (k, d), (k, d_pi))

    agent = ActorCriticAgent(phi, phi_pi, gamma)
    return closed_loop_batched(P, r, mu0, agent, w, lam, step, U, n=n, n_updates=T)
