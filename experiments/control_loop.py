"""The deployment loops (S6)/(A5) of :mod:`experiments.control`: :func:`deploy` of a frozen block
and its baselines (:func:`tabular_sarsa`).

**Terminal states.** (S6) continues each context from the last state, ``s_0 <- s_n``. The
gymnasium models of :mod:`experiments.envs` have absorbing terminal states, in which that loop
would stay for ever after the first episode; when ``s_n`` is terminal the next context starts
from ``s_0 ~ mu0`` instead (a new episode). Inside a context the absorbing self-loops stay in the
data, so the block learns ``Q_w(terminal, .) -> 0``. The [LL] random family has no absorbing state
and its loop is exactly (S6).

**Baselines** on the same loop and seeds: the exact teacher (same ``rng`` stream: as long as the
greedy actions agree, the teacher and the block see the same trajectory, and the ``w``
sequences agree to round-off), classical online tabular SARSA (one-hot ``Q`` table from 0,
per-step update with step size ``alpha``, the same epsilon-greedy exploration and ``n *
n_updates`` environment steps), the uniform policy (0 by definition, computed) and ``pi*`` (1).

**Runtime.** The ``"l1"`` pass is a few ``D x D`` matrix products per update; on a small shared
machine OpenBLAS threading makes them up to ten times slower than single-threaded, so
:func:`deploy`, :func:`run_control` and the context-length sweeps run with BLAS limited to one
thread (:func:`experiments.io.single_blas_thread`; ``ControlConfig.quick()``: 3.5 s against 42 s).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import lsa_theory as lt
from constructions import Draws
from lsa_theory import TabularMDP
from lsa_theory._checks import check_int, check_real
from lsa_theory.policies import score_table, softmax_rows
from lsa_theory.roundoff import UNIT_ROUNDOFF, gamma, matmul_error_bound

from .control_weights import (
    FORWARDS,
    BlockWeights,
    _algorithm,
    _update_fn,
    l1_readout_error_bound,
    l2_readout_error_bound,
    resolve_weights,
)
from .envs import terminal_states
from .io import single_blas_thread


@dataclass(frozen=True)
class DeployResult:
    """One closed loop. ``updates`` (E,) evaluation points (0, eval_every, ..., n_updates);
    ``normalized_return`` (E,) of the greedy policy there, ``normalized_return_behaviour`` (E,) of
    the behaviour policy (epsilon-greedy / ``pi_lambda``); ``ws`` (T+1, d) and for actor-critic
    ``lams`` (T+1, d_pi) parameters; ``states``/``actions`` (T, n+1) the contexts' trajectories;
    ``diverged_at``: first update whose parameter is not finite or has 1-norm above
    :data:`DIVERGENCE_BOUND` (``None`` if none; the loop stops there, later entries are NaN);
    ``forward``: ``"l1"``, ``"l2"`` or ``"teacher"``; ``resets``: contexts restarted from ``mu0``.

    With ``error_bounds=True`` (:func:`deploy`; ``None`` otherwise): ``w_err`` (T+1, d + d_pi) the
    entrywise bound :func:`propagate_error_bound` on ``|[w_t; lambda_t] - exact|``, the distance
    of the computed parameters from the exact-arithmetic loop on the same trajectory (NaN after a
    divergence); ``identity_ratio`` (T,) for a block, ``max_i |TF_i - teacher_i| / (bound_i)`` of
    update ``t`` with the teacher's update computed on the block's own input and the bound
    :func:`block_teacher_error_bound` (``<= 1`` is the (S3)/(A3) identity as computed; NaN for the
    teacher itself); for algorithms without an actor ``q_gap`` (T,) the smallest gap between the two
    largest computed ``Q_w(s, .)`` over the states of context ``t`` (drawn with ``w_{t-1}``),
    ``q_round`` (T,) the bound ``gamma_d max |phi(s, .)|^T |w_{t-1}|`` on the rounding of those
    ``Q`` and ``phi_abs_max`` the largest ``|phi|`` entry."""

    updates: np.ndarray
    normalized_return: np.ndarray
    normalized_return_behaviour: np.ndarray
    ws: np.ndarray
    lams: np.ndarray | None
    states: np.ndarray
    actions: np.ndarray
    diverged_at: int | None
    forward: str
    resets: int = 0
    w_err: np.ndarray | None = None
    identity_ratio: np.ndarray | None = None
    q_gap: np.ndarray | None = None
    q_round: np.ndarray | None = None
    phi_abs_max: float | None = None


def _check_loop(mdp, n, n_updates, eval_every, epsilon, alpha, rng) -> tuple:
    """The arguments shared by :func:`deploy` and :func:`tabular_sarsa`, validated."""
    return (
        _check_mdp(mdp),
        check_int(n, "n"),
        check_int(n_updates, "n_updates"),
        check_int(eval_every, "eval_every"),
        check_real(epsilon, "epsilon", low=0.0, high=1.0),
        check_real(alpha, "alpha", low=0.0, low_open=True),
        _check_rng(rng),
    )


def _check_mdp(mdp) -> TabularMDP:
    if not isinstance(mdp, TabularMDP):
        raise ValueError(f"mdp: expected a lsa_theory.TabularMDP, got {type(mdp).__name__}")
    return mdp


def _check_rng(rng) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng: expected numpy.random.Generator, got {type(rng).__name__}")
    return rng


def _eval_points(n_updates: int, eval_every: int) -> np.ndarray:
    return np.array(sorted(set(range(0, n_updates + 1, eval_every)) | {n_updates}), dtype=np.int64)


def _check_solution(mdp: TabularMDP, solution) -> lt.OptimalSolution:
    if solution is None:
        return lt.optimal(mdp)
    if not isinstance(solution, lt.OptimalSolution) or solution.Q.shape != (mdp.n_states, mdp.n_actions):
        raise ValueError("solution: expected lsa_theory.optimal(mdp) of this MDP")
    return solution


@single_blas_thread
def deploy(
    mdp: TabularMDP,
    weights: Any,
    *,
    n: int,
    n_updates: int,
    epsilon: float,
    alpha: float,
    rng: np.random.Generator,
    eval_every: int,
    algo: str = "sarsa",
    beta: float | None = None,
    d_pi: int | None = None,
    forward: str = "auto",
    solution: lt.OptimalSolution | None = None,
    error_bounds: bool = False,
    draws_map: Callable[[Draws], Draws] | None = None,
) -> DeployResult:
    """Closed loop of the registered algorithm ``algo`` ((S6) for ``"sarsa"``, (A5) for the
    actor-critics) driven by frozen weights.

    Draws from ``rng``, in this order: the critic's table (S, A, d) ``~ U(-1, 1)`` (fresh per call;
    ``d`` the algorithm's default: ``S*A`` for SARSA and the action-value critic, ``S`` for the
    state-value critic, whose table ``psi(s)`` is repeated over actions), ``w_0 ~ U(-1, 1)^d``;
    with an actor, ``phi_pi`` (S, A, d_pi) ``~ U(-1, 1)`` (``d_pi`` the algorithm's default, or
    read off ``D`` for given weights) and ``lambda_0 = 0`` (the uniform actor); then the rollouts.
    Each of the ``n_updates`` updates rolls out ``n`` steps (epsilon-greedy on ``Q_w``, or
    ``pi_lambda``; ``epsilon`` is unused with an actor) and sets ``[w; lambda] <- TF_theta(H)``;
    ``weights`` as in :func:`resolve_weights` (``"teacher"``: the exact (S2)/(A2) update with
    ``alpha``, ``beta``). A terminal ``s_n`` restarts the next context from ``mu0`` (module
    docstring). Calls with equal ``rng`` states give equal features, ``w_0`` and, while the
    greedy actions agree, equal trajectories. ``solution`` is ``lsa_theory.optimal(mdp)``
    (computed when ``None``). Returns a :class:`DeployResult` with the normalised return (§0) of
    the greedy policy (:meth:`constructions.ClosedLoopAlgorithm.greedy`) every ``eval_every`` updates.
    ``error_bounds``: also the round-off bounds of :class:`DeployResult` (for ``"constructed"`` and
    ``"teacher"``, whose exact-arithmetic updates are the same map (S3)/(A3); about doubles the cost).
    ``draws_map``: applied to the drawn :class:`constructions.Draws` (``phi``, ``phi_pi``, ``w_0``,
    ``lambda_0``) before the loop, without touching ``rng`` (the robustness checks perturb them
    with :func:`lsa_theory.roundoff.perturbed`).
    """
    mdp, n, T, eval_every, epsilon, alpha, rng = _check_loop(
        mdp, n, n_updates, eval_every, epsilon, alpha, rng
    )
    alg = _algorithm(algo)
    if forward not in FORWARDS:
        raise ValueError(f"forward: expected one of {FORWARDS}, got {forward!r}")
    S, A = mdp.n_states, mdp.n_actions
    d = alg.dims(S, A).d
    if alg.has_actor:
        beta = check_real(alpha if beta is None else beta, "beta", low=0.0, low_open=True)
        d_pi = _infer_d_pi(weights, d, alg.dims(S, A).d_pi) if d_pi is None else check_int(d_pi, "d_pi")
    elif d_pi is not None:
        raise ValueError(f"d_pi: only used by algorithms with an actor, not {algo!r}")
    layout = alg.dims(S, A, d, d_pi).layout
    sol = _check_solution(mdp, solution)
    hyper = {"gamma": mdp.gamma, "alpha": alpha, "beta": beta}
    resolved = resolve_weights(weights, layout, alpha=alpha, beta=beta)
    update, used = _update_fn(resolved, layout, alg, hyper, forward)
    if error_bounds and resolved is not None and resolved.source != "constructed":
        raise ValueError("error_bounds: only for 'constructed' or 'teacher' weights (the (S3)/(A3) map)")
    bound = _local_bound_fn(resolved, layout, alg, used, hyper) if error_bounds else None
    teacher_update = alg.teacher(hyper)

    phi = alg.critic_table(S, A, d, rng)
    w = rng.uniform(-1.0, 1.0, size=d)
    lam = phi_pi = None
    if alg.has_actor:
        phi_pi = lt.random_features(S, A, layout.d_pi, rng)
        lam = np.zeros(layout.d_pi)
    draws = Draws(phi, phi_pi, w, lam)
    if draws_map is not None:
        draws = draws_map(draws)
        phi, phi_pi, w, lam = draws.phi, draws.phi_pi, np.asarray(draws.w0, dtype=np.float64), draws.lam0
    terminal = terminal_states(mdp)
    points = _eval_points(T, eval_every)
    nr = np.full(points.size, np.nan)
    nr_b = np.full(points.size, np.nan)
    ws = np.full((T + 1, d), np.nan)
    lams = np.full((T + 1, layout.d_pi), np.nan) if alg.has_actor else None
    states = np.full((T, n + 1), -1, dtype=np.int64)
    actions = np.full((T, n + 1), -1, dtype=np.int64)
    k = layout.k
    w_err = np.full((T + 1, k), np.nan) if error_bounds else None
    ratio = np.full(T, np.nan) if error_bounds else None
    gaps = np.full(T, np.nan) if error_bounds and not alg.has_actor else None
    qround = np.full(T, np.nan) if gaps is not None else None
    if error_bounds:
        w_err[0] = 0.0
        box, eps = w_err[0].copy(), 0.0

    def evaluate(j: int) -> None:
        nr[j] = lt.normalized_return(mdp, alg.greedy(draws, w, lam), sol)
        nr_b[j] = lt.normalized_return(mdp, alg.behaviour(draws, w, lam, epsilon), sol)

    ws[0] = w
    if lams is not None:
        lams[0] = lam
    evaluate(0)
    j, s0, diverged, resets = 1, None, None, 0
    for t in range(1, T + 1):
        X, g, traj = alg.context(mdp, draws, w, lam, n=n, epsilon=epsilon, rng=rng, s0=s0)
        w_new, lam_new = update(X, g, w, lam)
        states[t - 1], actions[t - 1] = traj.states, traj.actions
        if _diverged(w_new) or (lam_new is not None and _diverged(lam_new)):
            diverged = t
            break
        if error_bounds:
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # inf near DIVERGENCE_BOUND
                box, eps = _bounds_step(
                    t, box, eps, X, g, w, lam, w_new, lam_new, traj.states, draws, bound, teacher_update,
                    used, alpha, beta, w_err, ratio, gaps, qround,
                )  # fmt: skip
        w, lam = np.asarray(w_new, dtype=np.float64), lam_new
        ws[t] = w
        if lams is not None:
            lams[t] = lam
        s_last = int(traj.states[-1])
        s0 = None if terminal[s_last] else s_last
        resets += int(terminal[s_last])
        if j < points.size and points[j] == t:
            evaluate(j)
            j += 1
    phi_max = float(np.abs(phi).max()) if error_bounds else None
    bounds = (w_err, ratio, gaps, qround, phi_max)
    return DeployResult(points, nr, nr_b, ws, lams, states, actions, diverged, used, resets, *bounds)


#: A loop stops as diverged when a parameter's 1-norm exceeds this (or is not finite): beyond it
#: ``|Q_w| <= ||w||_1 max |phi|`` and the prompt products of the next update approach float64 overflow.
DIVERGENCE_BOUND = 1e200


def _diverged(v: np.ndarray) -> bool:
    total = float(np.abs(v).sum())
    return not np.isfinite(total) or total > DIVERGENCE_BOUND


def _infer_d_pi(weights: Any, d: int, default: int) -> int:
    """``d_pi`` of a deployment with an actor: ``default`` for constructed/teacher, else from ``D``."""
    if isinstance(weights, str) and weights in ("constructed", "teacher"):
        return default
    if isinstance(weights, str | Path) and Path(weights).suffix == ".npz" and Path(weights).is_file():
        with np.load(weights) as z:
            D = z["P"].shape[0] if "P" in z.files else -1
    elif isinstance(weights, tuple | list) and len(weights) == 2:
        D = np.shape(weights[0])[0] if np.ndim(weights[0]) == 2 else -1
    else:
        raise ValueError(
            f"weights: expected 'constructed', 'teacher', (P, V) or a .npz path, got {weights!r}"
        )
    d_pi, rem = divmod(D - 3 * d - 2, 2)
    if d_pi < 1 or rem:
        raise ValueError(f"weights: D = {D} is not 3d + 2 d_pi + 2 with d = {d} and d_pi >= 1")
    return d_pi


def tabular_sarsa(
    mdp: TabularMDP,
    *,
    n: int,
    n_updates: int,
    epsilon: float,
    alpha: float,
    rng: np.random.Generator,
    eval_every: int,
    solution: lt.OptimalSolution | None = None,
) -> DeployResult:
    """Classical online tabular SARSA baseline on ``n * n_updates`` environment steps.

    ``Q`` (S, A) starts at 0 (one-hot features, ``Q = w``); every step ``(s, a, r, s', a')`` with
    ``a' ~ epsilon-greedy(Q)[s']`` sets ``Q[s, a] += alpha (r + gamma Q[s', a'] - Q[s, a])``. Steps
    are grouped in windows of ``n`` so that the x-axis matches (S6): the greedy policy's normalised
    return is recorded every ``eval_every`` windows, and a window ending in a terminal state starts
    the next from ``mu0``, as in :func:`deploy`. ``ws`` holds ``Q.ravel()`` after each window.
    """
    mdp, n, T, eval_every, epsilon, alpha, rng = _check_loop(
        mdp, n, n_updates, eval_every, epsilon, alpha, rng
    )
    sol = _check_solution(mdp, solution)
    S, A = mdp.n_states, mdp.n_actions
    gamma = mdp.gamma
    cP = np.cumsum(mdp.P, axis=-1)
    cmu = np.cumsum(mdp.mu0)
    r_sas = mdp.r.ndim == 3
    terminal = terminal_states(mdp)
    Q = np.zeros((S, A))
    points = _eval_points(T, eval_every)
    nr = np.full(points.size, np.nan)
    nr_b = np.full(points.size, np.nan)
    ws = np.empty((T + 1, S * A))
    states = np.empty((T, n + 1), dtype=np.int64)
    actions = np.empty((T, n + 1), dtype=np.int64)

    def sample(cdf, u):
        return min(int(np.searchsorted(cdf, u, side="right")), len(cdf) - 1)

    def act(s):
        if rng.random() < epsilon:
            return int(rng.integers(A))
        return int(Q[s].argmax())

    def evaluate(j):
        nr[j] = lt.normalized_return(mdp, lt.greedy(Q), sol)
        nr_b[j] = lt.normalized_return(mdp, lt.epsilon_greedy(Q, epsilon), sol)

    ws[0] = Q.ravel()
    evaluate(0)
    j, s, resets = 1, sample(cmu, rng.random()), 0
    for t in range(1, T + 1):
        a = act(s)
        states[t - 1, 0], actions[t - 1, 0] = s, a
        for i in range(n):
            s2 = sample(cP[s, a], rng.random())
            r = mdp.r[s, a, s2] if r_sas else mdp.r[s, a]
            if mdp.reward_noise > 0:
                r = r + mdp.reward_noise * rng.standard_normal()
            a2 = act(s2)
            Q[s, a] += alpha * (r + gamma * Q[s2, a2] - Q[s, a])
            s, a = s2, a2
            states[t - 1, i + 1], actions[t - 1, i + 1] = s, a
        ws[t] = Q.ravel()
        if terminal[s]:
            s = sample(cmu, rng.random())
            resets += 1
        if j < points.size and points[j] == t:
            evaluate(j)
            j += 1
    return DeployResult(points, nr, nr_b, ws, None, states, actions, None, "tabular", resets)


def _first_mismatch(a: DeployResult, b: DeployResult) -> int | None:
    """First update (1-based) whose context differs between two runs, ``None`` if none."""
    same = (a.states == b.states).all(axis=1) & (a.actions == b.actions).all(axis=1)
    bad = np.flatnonzero(~same)
    return int(bad[0]) + 1 if bad.size else None


def _max_w_diff(a: DeployResult, b: DeployResult, upto: int | None = None, relative: bool = False) -> float:
    """``max_t ||w_t(a) - w_t(b)||_inf`` over the parameters ``w_0 .. w_{upto-1}`` (all if ``None``);
    ``relative``: each term divided by ``max(1, ||w_t(b)||_inf)``. ``lambda`` is included."""
    stop = a.ws.shape[0] if upto is None else upto
    pa, pb = a.ws[:stop], b.ws[:stop]
    if a.lams is not None and b.lams is not None:
        pa = np.concatenate([pa, a.lams[:stop]], axis=1)
        pb = np.concatenate([pb, b.lams[:stop]], axis=1)
    ok = np.isfinite(pa).all(axis=1) & np.isfinite(pb).all(axis=1)
    diff = np.abs(pa[ok] - pb[ok]).max(axis=1, initial=0.0)
    if relative:
        diff = diff / np.maximum(1.0, np.abs(pb[ok]).max(axis=1, initial=0.0))
    return float(diff.max(initial=0.0))


# --------------------------------------------------------------------------------------------------
# round-off model of block = teacher (issue 18): bounds of the updates as computed, and their
# propagation along the loop
# --------------------------------------------------------------------------------------------------


def _bounds_step(
    t, box, eps, X, g, w, lam, w_new, lam_new, states, draws, bound, teacher_update, used, alpha, beta,
    w_err, ratio, gaps, qround,
):  # fmt: skip
    """The round-off records of update ``t`` of :func:`deploy` (``error_bounds=True``), in place."""
    local = bound(X, g, w, lam)
    if used != "teacher":
        tw, tl = teacher_update(X, g, w, lam)
        out = np.concatenate([w_new, lam_new]) if lam_new is not None else np.asarray(w_new)
        ref = np.concatenate([tw, tl]) if tl is not None else np.asarray(tw)
        tol = local + teacher_update_error_bound(X, w, alpha, g, lam, beta)
        ratio[t - 1] = np.nanmax(np.where(out == ref, 0.0, np.abs(out - ref) / tol))
    box, eps = propagate_error_bound(
        box, eps, X, alpha, local, g=g, beta=beta, w=w, lam=lam, states=states, draws=draws
    )
    w_err[t] = box
    if gaps is not None:
        gaps[t - 1], qround[t - 1] = _q_gap(draws.phi[states], w)
    return box, eps


def teacher_update_error_bound(
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
    of length ``n``; the rounding of ``alpha / n`` and of the scaling; the final sum), the same with
    ``G``, ``beta`` for ``lambda``. Valid for every summation order (Higham §3)."""
    X = np.asarray(X, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    d = w.size
    n = X.shape[1]
    Z = X[: 2 * d]
    delta = X[2 * d] + Z.T @ np.concatenate([-w, w])
    e_delta = matmul_error_bound(Z.T, np.concatenate([w, w])) + UNIT_ROUNDOFF * np.abs(delta)

    def part(F, step, start):
        s = F @ delta
        cs = (step / n) * s
        Es = matmul_error_bound(F, delta) + np.abs(F) @ e_delta
        return (step / n) * Es + gamma(2) * np.abs(cs) + UNIT_ROUNDOFF * np.abs(start + cs)

    E = part(X[:d], alpha, w)
    if g is None:
        return E
    return np.concatenate([E, part(np.asarray(g, dtype=np.float64), beta, np.asarray(lam, dtype=np.float64))])


def _local_bound_fn(weights, layout, alg, used: str, hyper: dict):
    """``bound(X, g, w, lam) -> (k,)``: the round-off bound of this run's own update (the block's
    forward pass ``used``, or the teacher)."""
    alpha, beta = hyper["alpha"], hyper["beta"]
    if used == "teacher":
        return lambda X, g, w, lam: teacher_update_error_bound(X, w, alpha, g, lam, beta)
    if used == "l1":
        return lambda X, g, w, lam: l1_readout_error_bound(
            alg.full_prompt(X, g, w, lam), weights.P, weights.V, layout.k
        )
    if alg.has_actor:
        return lambda X, g, w, lam: l2_readout_error_bound(
            np.concatenate([X, g], axis=-2), np.concatenate([[1.0], w, lam]), weights
        )
    return lambda X, g, w, lam: l2_readout_error_bound(X, np.concatenate([[1.0], w]), weights)


def block_teacher_error_bound(
    X: np.ndarray,
    g: np.ndarray | None,
    w: np.ndarray,
    lam: np.ndarray | None,
    weights: BlockWeights,
    forward: str,
    alpha: float,
    beta: float | None = None,
) -> np.ndarray:
    r"""Entrywise bound (k,) on ``|fl(TF_theta(H)) - fl(teacher)|`` for one update on the same
    inputs: the block's readout ((L1) :func:`l1_readout_error_bound` or (L2)
    :func:`l2_readout_error_bound`, ``forward``) plus the teacher's
    (:func:`teacher_update_error_bound`). For the constructed ``weights`` ((S3)/(A3) with
    ``alpha``, ``beta``, ``c = 1``: entries ``alpha``, ``beta``, ``+-1``, exact in float64) both
    exact-arithmetic values are the same update, so a computed difference above this bound is not
    round-off."""
    layout = weights.layout
    alg = _algorithm("actor_critic" if layout.d_pi else "sarsa")
    local = _local_bound_fn(weights, layout, alg, forward, {"alpha": alpha, "beta": beta})
    return local(X, g, w, lam) + teacher_update_error_bound(X, w, alpha, g, lam, beta)


def score_error_bound(phi_pi: np.ndarray, lam: np.ndarray) -> np.ndarray:
    r"""Entrywise bound (..., A, d_pi) on ``|fl(g) - g|`` for the score table
    :func:`lsa_theory.score` of the rows ``phi_pi`` (..., A, d_pi) at ``lam`` (d_pi,):
    logits ``z = phi_pi lam`` (:math:`\gamma_{d_\pi}`), the shift by ``max z`` (one rounding), so
    ``|dz| <= e_z``; the softmax is 2-Lipschitz from ``||.||_inf`` to ``||.||_1`` and exp, the sum
    over ``A`` and the division add :math:`\gamma_{A+3}`, so :math:`\|\hat\pi - \pi\|_1 \le 2 e_z +
    \gamma_{A+3}(1 + 2 e_z)`; then ``g = phi_pi - sum_b pi_b phi_pi(., b)`` adds
    :math:`\max_b |\phi_\pi| \|\hat\pi - \pi\|_1 + \gamma_A \sum_b \hat\pi_b |\phi_\pi| + u |g|`."""
    phi_pi = np.asarray(phi_pi, dtype=np.float64)
    A = phi_pi.shape[-2]
    z = phi_pi @ lam
    ez = matmul_error_bound(phi_pi, lam) + UNIT_ROUNDOFF * np.abs(z - z.max(axis=-1, keepdims=True))
    ez = 2.0 * ez.max(axis=-1)  # both z_a and max z carry an error
    pi = softmax_rows(z)
    dpi = 2.0 * ez + gamma(A + 3) * (1.0 + 2.0 * ez)
    big = np.abs(phi_pi).max(axis=-2)  # (..., d_pi)
    mean_abs = np.einsum("...b,...bk->...k", pi, np.abs(phi_pi))
    g = score_table(phi_pi, pi)
    return (big * dpi[..., None] + gamma(A) * mean_abs)[..., None, :] + UNIT_ROUNDOFF * np.abs(g)


def propagate_error_bound(
    E: np.ndarray,
    eps: float,
    X: np.ndarray,
    alpha: float,
    local: np.ndarray,
    *,
    g: np.ndarray | None = None,
    beta: float | None = None,
    w: np.ndarray | None = None,
    lam: np.ndarray | None = None,
    states: np.ndarray | None = None,
    draws: Draws | None = None,
) -> np.ndarray:
    r"""One update of the bound ``E_t`` (k,) on ``|[w_t; lambda_t] - exact_t|``, the distance of a
    computed loop from the exact-arithmetic loop (S6)/(A5) on the same trajectory (same states,
    actions, rewards, so the same columns ``X`` (2d+1, n)):

    .. math::

        E^w_{t+1} = E^w_t + \tfrac{\alpha}{n} |\Phi| \, D_\delta + L^w_t, \qquad
        D_\delta = |\gamma \Phi^+ - \Phi|^T E^w_t ,

    (the exact update is affine in ``w`` with the matrix ``I + (alpha/n) Phi (gamma Phi^+ - Phi)^T``;
    ``L_t = local`` the rounding of this update as computed, :func:`teacher_update_error_bound` or
    the block's readout bound). With an actor, ``g_i`` itself depends on ``lambda``: the scores of
    the visited pairs differ from the exact ones by :math:`E_g \le 2 \max_b |\phi_\pi(s_i, b)|
    \max_a |\phi_\pi(s_i, a)|^T E^\lambda_t` + :func:`score_error_bound`, and
    :math:`E^\lambda_{t+1} = E^\lambda_t + \tfrac{\beta}{n}(|G| D_\delta + E_g (|\hat\delta| +
    D_\delta)) + L^\lambda_t`.

    This box bound ignores the signs of the affine map, so it grows geometrically even where the loop
    contracts. Without an actor a second, signed bound ``eps_t >= ||w_t - exact_t||_2`` is carried:
    :math:`\varepsilon_{t+1} = \|M_t\|_2 \varepsilon_t + \|L_t\|_2` with
    :func:`loop_map_norm` (``M_t`` the linear part above), and both are tightened by each other
    (``eps <- min(eps, ||E||_2)``, ``E <- min(E, eps)``). Returns ``(E_{t+1}, eps_{t+1})``
    (``eps = inf`` with an actor). Rigorous, and decisive while it is small against ``|w|``."""
    with np.errstate(over="ignore", invalid="ignore"):
        return _propagate(
            E, eps, np.asarray(X, dtype=np.float64), alpha, local, g, beta, w, lam, states, draws
        )


def _propagate(E, eps, X, alpha, local, g, beta, w, lam, states, draws):
    d = (X.shape[0] - 1) // 2
    n = X.shape[1]
    Ew = E[:d]
    Phi = np.abs(X[:d])
    Ddelta = np.abs(X[d : 2 * d] - X[:d]).T @ Ew
    new_w = Ew + (alpha / n) * (Phi @ Ddelta) + local[:d]
    if g is None:
        eps = loop_map_norm(X, alpha) * eps + float(np.linalg.norm(local))
        eps = min(eps, float(np.linalg.norm(new_w)))
        return np.minimum(new_w, eps), eps
    El = E[d:]
    rows = draws.phi_pi[states[:-1]]  # (n, A, d_pi)
    acts_score = score_error_bound(rows, lam)
    Eg_round = acts_score.max(axis=-2)  # (n, d_pi): the largest over the actions (covers the one taken)
    sens = 2.0 * np.abs(rows).max(axis=-2) * (np.abs(rows) @ El).max(axis=-1)[:, None]  # (n, d_pi)
    Eg = (Eg_round + sens).T  # (d_pi, n)
    delta_abs = np.abs(X[2 * d] + X[: 2 * d].T @ np.concatenate([-w, w]))
    new_lam = El + (beta / n) * (np.abs(g) @ Ddelta + Eg @ (delta_abs + Ddelta)) + local[d:]
    return np.concatenate([new_w, new_lam]), np.inf


def loop_map_norm(X: np.ndarray, alpha: float) -> float:
    r"""Upper bound on :math:`\|M\|_2`, ``M = I + (alpha/n) Phi (gamma Phi^+ - Phi)^T`` (d, d), the
    linear part of the exact update (S2) on the columns ``X`` (2d+1, n): with ``U = (alpha/n) Phi``,
    ``V = gamma Phi^+ - Phi`` and ``[U V] = Q R`` (``Q`` (d, 2n) orthonormal), ``M`` is the identity on
    the complement of ``span Q`` and ``Q (I + R_U R_V^T) Q^T`` on it, so
    :math:`\|M\|_2 = \max(1, \|I + R_U R_V^T\|_2)` (``1`` only if ``2n < d``). Computed in float64;
    the absolute error of the computed norm, :math:`\le \gamma_{4d}(1 + \|U\|_F \|V\|_F)`
    (backward-stable QR and SVD), is added."""
    X = np.asarray(X, dtype=np.float64)
    d = (X.shape[0] - 1) // 2
    n = X.shape[1]
    U = (alpha / n) * X[:d]
    V = X[d : 2 * d] - X[:d]
    Q, R = np.linalg.qr(np.concatenate([U, V], axis=1))
    K = np.eye(R.shape[0]) + R[:, :n] @ R[:, n:].T
    norm = float(np.linalg.norm(K, 2))
    if Q.shape[1] < d:
        norm = max(norm, 1.0)
    return norm + gamma(4 * max(d, 2 * n)) * (1.0 + float(np.linalg.norm(U) * np.linalg.norm(V)))


def _q_gap(phi_rows: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    """Smallest gap between the two largest ``Q_w(s, .) = phi(s, .) w`` over the rows ``phi_rows``
    (N, A, d) of a context's states, and the bound ``gamma_d max |phi| |w|`` on their rounding."""
    Q = phi_rows @ w
    top = np.sort(Q, axis=-1)
    gap = float((top[:, -1] - top[:, -2]).min()) if Q.shape[-1] > 1 else np.inf
    return gap, float(matmul_error_bound(phi_rows, w).max())


#: A teacher loop is reported as diverging (``teacher_diverged_at``) from the first update whose
#: ``||w||_inf`` passes this: the loops that converge stay below 2 on every environment of
#: :mod:`experiments.control`; the unstable ones (CliffWalking, Taxi) pass it and keep growing.
TEACHER_DIVERGENCE_W = 1e6


def block_teacher_check(block: DeployResult, teacher: DeployResult) -> dict:
    """The round-off-sized check "block = teacher" of two :func:`deploy` runs with
    ``error_bounds=True`` on the same stream (issue 18). Returns the unit keys:

    - ``identity_max_ratio``: the largest ``identity_ratio`` of the block (its update against the
      teacher's on the same input, over :func:`block_teacher_error_bound`); must be ``<= 1``.
    - ``max_w_diff_over_tol``: ``max |p_t(block) - p_t(teacher)| / tol_t`` entrywise over the
      parameters ``p_0 .. p_{m-1}`` before the first trajectory mismatch ``m`` (and while both are
      finite), ``tol_t = w_err_t(block) + w_err_t(teacher)`` (:func:`propagate_error_bound`: each
      run's distance from the same exact-arithmetic loop); must be ``<= 1``.
    - ``w_tol_before_mismatch``: the largest ``tol_t`` entry there.
    - ``flip_possible_at`` (algorithms without an actor; else ``None``): the first update ``t`` whose
      context (drawn with ``w_{t-1}``) the round-off model lets differ: the teacher's smallest
      top-two gap of ``Q`` over its states is at most ``2 (max|phi| ||tol_{t-1}||_1 + rounding of
      both Q)``; ``first_flip_at`` (the first mismatch) must not come before it.
    - ``first_flip_at``, ``teacher_diverged``/``teacher_diverged_at`` (:data:`DIVERGENCE_BOUND` or
      :data:`TEACHER_DIVERGENCE_W`), ``block_diverged_at``: reported, not asserted.
    - ``block_equals_teacher``: the three assertions above.
    """
    if block.w_err is None or teacher.w_err is None:
        raise ValueError("block, teacher: run deploy with error_bounds=True")
    mismatch = _first_mismatch(block, teacher)

    def params(r):
        return r.ws if r.lams is None else np.concatenate([r.ws, r.lams], axis=1)

    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        return _check(block, teacher, mismatch, params(block), params(teacher))


def _check(block, teacher, mismatch, pb, pt) -> dict:
    stop = pb.shape[0] if mismatch is None else mismatch
    tol = block.w_err + teacher.w_err
    ok = np.isfinite(pb[:stop]).all(axis=1) & np.isfinite(pt[:stop]).all(axis=1)
    diff = np.abs(pb[:stop] - pt[:stop])[ok]
    t_ok = tol[:stop][ok]
    over = np.where(diff == 0.0, 0.0, diff / t_ok)
    over_max = float(np.nanmax(over, initial=0.0)) if over.size else 0.0
    ratio = block.identity_ratio[np.isfinite(block.identity_ratio)]
    identity = float(ratio.max(initial=0.0))
    possible = None
    if teacher.q_gap is not None and block.q_round is not None:
        T = teacher.q_gap.size
        qerr = teacher.phi_abs_max * np.abs(tol[:T]).sum(axis=1) + block.q_round + 2.0 * teacher.q_round
        hit = np.flatnonzero(~(teacher.q_gap > 2.0 * qerr) & np.isfinite(teacher.q_gap))
        possible = int(hit[0]) + 1 if hit.size else None
    early_flip = (
        mismatch is not None and teacher.q_gap is not None and (possible is None or mismatch < possible)
    )
    big = np.flatnonzero(np.abs(teacher.ws).max(axis=1) > TEACHER_DIVERGENCE_W)
    t_div = int(big[0]) if big.size else teacher.diverged_at
    return {
        "identity_max_ratio": identity,
        "max_w_diff_over_tol": over_max,
        "w_tol_before_mismatch": float(np.nanmax(t_ok, initial=0.0)) if t_ok.size else 0.0,
        "flip_possible_at": possible,
        "first_flip_at": mismatch,
        "teacher_diverged": t_div is not None,
        "teacher_diverged_at": t_div,
        "block_diverged_at": block.diverged_at,
        "block_equals_teacher": bool(identity <= 1.0 and over_max <= 1.0 and not early_flip),
    }
