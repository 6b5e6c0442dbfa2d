"""The deployment loops (S6)/(A5) of :mod:`lsa_theory.experiments.control`: :func:`deploy` of a frozen block
and its baselines (:func:`tabular_sarsa`).

**Terminal states.** (S6) continues each context from the last state, ``s_0 <- s_n``. The
gymnasium models of :mod:`lsa_theory.experiments.envs` have absorbing terminal states, in which that loop
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
thread (:func:`lsa_theory.experiments.io.single_blas_thread`; ``ControlConfig.quick()``: 3.5 s against 42 s).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

import lsa_theory as lt
from lsa_theory import TabularMDP
from lsa_theory.checks import check_int, check_real
from lsa_theory.constructions import ClosedLoopAlgorithm, Dims, Draws, closed_loop_algorithm
from lsa_theory.loop_driver import closed_loop

from ..envs import terminal_states
from ..io import single_blas_thread
from .result import DeployResult, eval_points
from .roundoff import _bounds_step, _local_bound_fn
from .weights import FORWARDS, _block_kind, loop_update, resolve_weights

__all__ = ["deploy", "deployment_dims", "tabular_sarsa"]


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
    algo: str | ClosedLoopAlgorithm = "sarsa",
    beta: float | None = None,
    d_pi: int | None = None,
    forward: str = "auto",
    hyper: Mapping[str, Any] | None = None,
    solution: lt.OptimalSolution | None = None,
    error_bounds: bool = False,
    draws_map: Callable[[Draws], Draws] | None = None,
    attention: str | None = None,
) -> DeployResult:
    """Closed loop of the closed-loop algorithm ``algo`` ((S6) for ``"sarsa"``, (A5) for the
    actor-critics; a registered name or a :class:`lsa_theory.constructions.ClosedLoopAlgorithm` instance, a
    user's declaration included) driven by frozen weights.

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
    the greedy policy (:meth:`lsa_theory.constructions.ClosedLoopAlgorithm.greedy`) every ``eval_every``
    updates.
    ``error_bounds``: also the round-off bounds of :class:`DeployResult` (for ``"constructed"`` and
    ``"teacher"``, whose exact-arithmetic updates are the same map (S3)/(A3); about doubles the cost).
    ``draws_map``: applied to the drawn :class:`lsa_theory.constructions.Draws` (``phi``, ``phi_pi``, ``w_0``,
    ``lambda_0``) before the loop, without touching ``rng`` (the robustness checks perturb them
    with :func:`lsa_theory.roundoff.perturbed`).
    ``hyper``: the declaration's hyperparameters beyond ``gamma`` (the MDP's), ``alpha`` and
    ``beta`` (e.g. a user's ``kappa``), over its defaults ``algo.hyper``; the teacher and the
    constructed weights both use them.
    ``attention``: the attention function of a block given as a list of heads (or the check of an
    ``.npz``'s own), :func:`resolve_weights`; such a block runs the ``"l1"`` pass of
    :func:`lsa_theory.attention_layer` (:func:`loop_update`), and a non-finite output ends the loop as
    diverged (``diverged_at``), like an overflow.
    """
    mdp, n, T, eval_every, epsilon, alpha, rng = _check_loop(
        mdp, n, n_updates, eval_every, epsilon, alpha, rng
    )
    alg = closed_loop_algorithm(algo)
    if forward not in FORWARDS:
        raise ValueError(f"forward: expected one of {FORWARDS}, got {forward!r}")
    S, A = mdp.n_states, mdp.n_actions
    dims, beta = deployment_dims(alg, S, A, weights, d_pi, alpha, beta)
    layout = dims.layout
    sol = _check_solution(mdp, solution)
    if hyper is not None and not isinstance(hyper, Mapping):
        raise ValueError(f"hyper: expected a mapping of hyperparameters, got {type(hyper).__name__}")
    extra = dict(hyper or {})
    for key in ("gamma", "alpha", "beta"):
        if key in extra:
            raise ValueError(f"hyper: {key!r} is set by deploy's own argument (the MDP's gamma, alpha, beta)")
    hyper = {**alg.hyper, **extra, "gamma": mdp.gamma, "alpha": alpha, "beta": beta}
    resolved = resolve_weights(
        weights, layout, alpha=alpha, beta=beta, algo=alg, hyper=hyper, attention=attention
    )
    update, used = loop_update(resolved, layout, alg, hyper, forward)
    if error_bounds and resolved is not None and resolved.source != "constructed":
        raise ValueError("error_bounds: only for 'constructed' or 'teacher' weights (the (S3)/(A3) map)")
    if error_bounds and not alg.error_model_is_current():
        raise ValueError(
            f"error_bounds: {alg.name} declares no round-off model of its own teacher (teacher_error_bound)"
        )
    bound = _local_bound_fn(resolved, layout, alg, used, hyper) if error_bounds else None
    teacher_bound = _local_bound_fn(None, layout, alg, "teacher", hyper) if error_bounds else None
    teacher_update = alg.teacher(hyper)

    draws = alg.deployment_draws(S, A, dims, rng)
    if draws_map is not None:
        draws = draws_map(draws)
    phi, w, lam = draws.phi, np.asarray(draws.w0, dtype=np.float64), draws.lam0
    terminal = terminal_states(mdp)
    points = eval_points(T, eval_every)
    nr = np.full(points.size, np.nan)
    nr_b = np.full(points.size, np.nan)
    states = np.full((T, n + 1), -1, dtype=np.int64)
    actions = np.full((T, n + 1), -1, dtype=np.int64)
    rec = {"j": 1, "resets": 0}
    if error_bounds:
        w_err, ratio = np.full((T + 1, layout.k), np.nan), np.full(T, np.nan)
        # the Q-gap of the greedy decision: for a loop acting on Q_w (no actor parameter)
        gaps = np.full(T, np.nan) if lam is None else None
        qround = np.full(T, np.nan) if gaps is not None else None
        w_err[0] = 0.0
        rec["box"], rec["eps"] = w_err[0].copy(), 0.0
    else:
        w_err = ratio = gaps = qround = None

    def evaluate(j: int, w, lam) -> None:
        nr[j] = lt.normalized_return(mdp, alg.greedy(draws, w, lam), sol)
        nr_b[j] = lt.normalized_return(mdp, alg.behaviour(draws, w, lam, epsilon), sol)

    def on_context(t: int, traj: lt.Trajectory) -> None:
        states[t - 1], actions[t - 1] = traj.states, traj.actions

    def on_step(t, X, g, w, lam, w_new, lam_new, traj) -> None:
        if error_bounds:
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # inf near DIVERGENCE_BOUND
                rec["box"], rec["eps"] = _bounds_step(
                    t, rec["box"], rec["eps"], X, g, w, lam, w_new, lam_new, traj.states, draws, bound,
                    teacher_bound, teacher_update, used, alpha, beta, w_err, ratio, gaps, qround,
                )  # fmt: skip
        rec["resets"] += int(terminal[int(traj.states[-1])])
        j = rec["j"]
        if j < points.size and points[j] == t:
            evaluate(j, w_new, lam_new)
            rec["j"] = j + 1

    def step(X, g, w, lam):  # an overflow in the context or the update is the loop diverging (issue 24)
        w_new, lam_new = update(X, g, w, lam)
        return np.asarray(w_new, dtype=np.float64), lam_new

    evaluate(0, w, lam)
    loop = closed_loop(
        mdp, alg.agent(draws, mdp.gamma, epsilon), w, lam, step, n=n, n_updates=T, rng=rng,
        restart=terminal, keep_frames=False, on_context=on_context, on_step=on_step,
    )  # fmt: skip
    phi_max = float(np.abs(phi).max()) if error_bounds else None
    bounds = (w_err, ratio, gaps, qround, phi_max)
    return DeployResult(
        points, nr, nr_b, loop.ws, loop.lams, states, actions, loop.diverged_at, used, rec["resets"], *bounds
    )


def deployment_dims(
    alg: ClosedLoopAlgorithm, S: int, A: int, weights: Any, d_pi: int | None, alpha: float, beta: float | None
) -> tuple[Dims, float | None]:
    """``(dims, beta)`` of a deployment of ``alg`` on an S x A MDP: the declaration's critic size
    ``d``; its actor size ``d_pi`` (given, the declaration's default for constructed/teacher
    weights, else read off ``D``) and step size ``beta`` (``alpha`` when ``None``), both only for
    a declaration with actor features (``alg.dims(S, A).d_pi > 0``; ValueError when ``d_pi`` is
    given to one without)."""
    default = alg.dims(S, A)
    if not default.d_pi:
        if d_pi is not None:
            raise ValueError(f"d_pi: only used by algorithms with an actor, not {alg.name!r}")
        return alg.dims(S, A, default.d), beta
    beta = check_real(alpha if beta is None else beta, "beta", low=0.0, low_open=True)
    d_pi = _infer_d_pi(weights, default.d, default.d_pi) if d_pi is None else check_int(d_pi, "d_pi")
    return alg.dims(S, A, default.d, d_pi), beta


def _infer_d_pi(weights: Any, d: int, default: int) -> int:
    """``d_pi`` of a deployment with an actor: ``default`` for constructed/teacher, else from ``D``."""
    if isinstance(weights, str) and weights in ("constructed", "teacher"):
        return default
    if isinstance(weights, str | Path) and Path(weights).suffix == ".npz" and Path(weights).is_file():
        with np.load(weights) as z:
            D = z["P"].shape[-1] if "P" in z.files and z["P"].ndim in (2, 3) else -1
    elif isinstance(weights, tuple | list) and weights:
        first = weights[0] if _block_kind(weights) == "pair" else weights[0][0]
        D = np.shape(first)[0] if np.ndim(first) == 2 else -1
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
    points = eval_points(T, eval_every)
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
