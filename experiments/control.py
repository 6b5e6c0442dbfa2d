r"""Deployment of a frozen LSA block as an in-context controller: the closed loops (S6) and (A5).

At deployment the weights ``(P, V)`` never change; each update of the loop is the block's readout
``TF_theta(H(z; w))`` of (L1) on the prompt (H) (or (A1)) built from the last ``n`` on-policy
transitions, and the epsilon-greedy policy on ``Q_w`` (the softmax actor ``pi_lambda`` for
actor-critic) improves because ``w`` does. Every ``eval_every`` updates the greedy policy
(``argmax_a w^T phi(s, a)``; for actor-critic ``argmax_a lambda^T phi_pi(s, a)``) is scored by the
normalised return of §0, ``(J(pi) - J(uniform)) / (J(pi*) - J(uniform))``, with one cached
:func:`lsa_theory.optimal` solution per MDP.

**Weights.** ``"constructed"``: the construction (S3) (actor-critic: (A3)) with the run's ``alpha``
(``beta``) from :mod:`constructions.numeric`; ``"teacher"``: the exact update (S2) / (A2) in
place of a block (the baseline); a pair ``(P, V)`` of full ``(D, D)`` arrays; or a path to an
``.npz`` holding arrays ``P`` and ``V`` (e.g. trained weights). ``D`` must be ``3d + 2`` (SARSA)
or ``3d + 2 d_pi + 2`` (actor-critic) for the environment's ``d = |S||A|``.

**Forward pass.** ``"l1"`` builds the prompt and applies :func:`lsa_theory.lsa_block` (cost
``O(D^3)``). ``"l2"`` computes the same readout from the (L2) blocks without forming the
``(3d+2)^2`` block product or ``Sigma``:

.. math:: TF = w + \bar V_{21}\, \Sigma P_{12} \tilde w + \tfrac1n \bar V_{22} \tilde w\,
          \tilde w^\top P_{22} \tilde w,
          \qquad \Sigma P_{12}\tilde w = \tfrac1n X (X^\top (P_{12} \tilde w)),

which equals (L1) exactly ([LL] Lemma C.1, proved by :func:`constructions.prove_lemma_c1` and
implemented by :func:`lsa_theory.tf_from_statistics`; ``tests/test_control.py`` checks the
equality to 1e-12). Cost ``O(m (d + n))`` with dense blocks; the constructed blocks are sparse,
so Taxi (``d = 3000``, ``D = 9002``) needs no dense ``D x D`` array. ``"auto"`` uses ``"l1"``
for dense weights with ``D <= 256`` and ``"l2"`` otherwise.

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

Results of :func:`run_control` go to ``control.json`` / ``control.npz`` in ``out``. The
context-length sweeps (``context_length_sweep``, ``plot_context_length`` and both regimes of §6)
live in :mod:`experiments.context_length`; the first two stay importable from here.

**Runtime.** The ``"l1"`` pass is a few ``D x D`` matrix products per update; on a small shared
machine OpenBLAS threading makes them up to ten times slower than single-threaded, so
:func:`deploy`, :func:`run_control` and the context-length sweeps run with BLAS limited to one
thread (:func:`experiments.io.single_blas_thread`; ``ControlConfig.quick()``: 3.5 s against 42 s).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

import constructions
import lsa_theory as lt
from constructions import ClosedLoopAlgorithm, Draws
from constructions import numeric as cnum
from lsa_theory import Layout, TabularMDP
from lsa_theory._checks import as_float_array, check_int, check_real

from .envs import HELDOUT_NAME, heldout_rng, make_env, parse_env_key, terminal_states
from .io import (
    atomic_savez,
    atomic_write_json,
    progress,
    read_json,
    single_blas_thread,
    to_jsonable,
    versions,
)
from .plots import SEM, sem_label

__all__ = [
    "ALGOS",
    "FORWARDS",
    "L1_MAX_D",
    "BlockWeights",
    "DeployResult",
    "ControlConfig",
    "resolve_weights",
    "constructed_blocks",
    "l2_readout",
    "deploy",
    "tabular_sarsa",
    "unit_key",
    "run_control",
    "plot_control",
]

#: The registered closed-loop algorithms (:class:`constructions.ClosedLoopAlgorithm`) deployable here.
ALGOS = constructions.ALGORITHMS.with_capability(ClosedLoopAlgorithm)


def _algorithm(algo: Any) -> ClosedLoopAlgorithm:
    """The declaration of a registered closed-loop algorithm (including ones registered later)."""
    names = constructions.ALGORITHMS.with_capability(ClosedLoopAlgorithm)
    if not isinstance(algo, str) or algo not in names:
        raise ValueError(f"algo: expected one of {names}, got {algo!r}")
    return constructions.ALGORITHMS[algo]


FORWARDS = ("auto", "l1", "l2")

#: ``forward="auto"`` applies the dense block (L1) up to this ``D`` and the (L2) form above it.
L1_MAX_D = 256

#: Above this ``D`` the construction is assembled sparse (equal to :mod:`constructions.numeric`,
#: checked in the tests) instead of densely via :func:`constructions.sarsa`.
DENSE_CONSTRUCTION_MAX_D = 1500

#: Seed offset of the deployment streams on a gymnasium environment: seed ``j`` uses
#: ``default_rng([seed, GYM_OFFSET + j, stream])`` (stream 1: block and teacher, 2: tabular SARSA).
GYM_OFFSET = 20_000


# --------------------------------------------------------------------------------------------------
# weights and the (L2) readout
# --------------------------------------------------------------------------------------------------


#: The keys every ``envs`` row of :func:`run_control` carries (the public JSON contract).
ENV_FIELDS = (
    "name",
    "algo",
    "weights",
    "updates",
    "normalized_return",
    "normalized_return_teacher",
    "n_seeds",
)


@dataclass(frozen=True, eq=False)
class BlockWeights:
    """Frozen block weights split by the (L2) layout ``(m | D - m)``.

    ``P12`` (m, p), ``P22`` (p, p), ``Vbar21`` (k, m), ``Vbar22`` (k, p) with ``p = D - m = d + 1 +
    d_pi`` and ``k = d + d_pi``, dense numpy or scipy.sparse; ``P``, ``V`` the full (D, D) arrays
    when they exist (needed by the ``"l1"`` forward pass); ``source`` describes their origin.
    """

    layout: Layout
    P12: Any
    P22: Any
    Vbar21: Any
    Vbar22: Any
    P: np.ndarray | None = None
    V: np.ndarray | None = None
    source: str = ""


def constructed_blocks(
    layout: Layout, alpha: float, beta: float | None = None, *, dense_max_D: int | None = None
) -> BlockWeights:
    """(S3) / (A3) with ``c = 1`` as :class:`BlockWeights` for ``layout`` (``d``, ``d_pi``).

    For ``D <= dense_max_D`` (default :data:`DENSE_CONSTRUCTION_MAX_D`) the full ``(D, D)`` pair
    comes from :func:`constructions.sarsa` / :func:`constructions.actor_critic` and the blocks are
    its (L2) blocks as CSR matrices; above it the same nonzero entries are assembled directly as
    sparse blocks (no dense ``D x D`` array), ``P``/``V`` are then ``None``.
    """
    if not isinstance(layout, Layout):
        raise ValueError(f"layout: expected a lsa_theory.Layout, got {type(layout).__name__}")
    alpha = check_real(alpha, "alpha", low=0.0, low_open=True)
    if layout.d_pi:
        beta = check_real(beta, "beta", low=0.0, low_open=True)
    limit = DENSE_CONSTRUCTION_MAX_D if dense_max_D is None else check_int(dense_max_D, "dense_max_D", 0)
    d, d_pi, m, D = layout.d, layout.d_pi, layout.m, layout.D
    if D <= limit:
        if d_pi:
            P, V = cnum.actor_critic(d, d_pi, alpha, beta)
        else:
            P, V = cnum.sarsa(d, alpha)
        b = layout.blocks(P, V)
        return BlockWeights(
            layout,
            *(sp.csr_array(b[k]) for k in ("P12", "P22", "Vbar21", "Vbar22")),
            P=P,
            V=V,
            source="constructed",
        )
    p, k = D - m, layout.k
    idx = np.arange(d)
    # P12 rows: phi (0..d-1) -> w columns (1..d) with -1; phi_next (d..2d-1) -> w with +1; r -> const.
    rows = np.concatenate([idx, d + idx, [2 * d]])
    cols = np.concatenate([1 + idx, 1 + idx, [0]])
    vals = np.concatenate([-np.ones(d), np.ones(d), [1.0]])
    P12 = sp.csr_array((vals, (rows, cols)), shape=(m, p))
    # Vbar21 rows are the readout [w; lam]: alpha on the phi block, beta on the score block g.
    vrows = np.concatenate([idx, d + np.arange(d_pi)])
    vcols = np.concatenate([idx, 2 * d + 1 + np.arange(d_pi)])
    vvals = np.concatenate([np.full(d, alpha), np.full(d_pi, beta if d_pi else 0.0)])
    Vbar21 = sp.csr_array((vvals, (vrows, vcols)), shape=(k, m))
    return BlockWeights(layout, P12, sp.csr_array((p, p)), Vbar21, sp.csr_array((k, p)), source="constructed")


def resolve_weights(
    weights: Any, layout: Layout, *, alpha: float | None = None, beta: float | None = None
) -> BlockWeights | None:
    """:class:`BlockWeights` of a deployment, or ``None`` for the exact teacher.

    ``weights``: ``"constructed"`` ((S3)/(A3) with ``alpha``, ``beta``), ``"teacher"`` (returns
    ``None``), a pair ``(P, V)`` of (D, D) arrays, or a path (``str`` / ``Path`` ending in ``.npz``)
    to an ``.npz`` with arrays ``P`` and ``V``; ``D`` must equal ``layout.D``.
    """
    if isinstance(weights, str) and weights == "teacher":
        return None
    if isinstance(weights, str) and weights == "constructed":
        if alpha is None:
            raise ValueError("alpha: the constructed weights need alpha")
        return constructed_blocks(layout, alpha, beta)
    source = "dense"
    if isinstance(weights, str | Path):
        path = Path(weights)
        if path.suffix != ".npz" or not path.is_file():
            raise ValueError(
                f"weights: expected 'constructed', 'teacher', (P, V) or an .npz file, got {weights!r}"
            )
        with np.load(path) as z:
            if "P" not in z.files or "V" not in z.files:
                raise ValueError(f"weights: {path} must hold arrays 'P' and 'V', has {z.files}")
            weights = (z["P"], z["V"])
        source = str(path)
    if not isinstance(weights, tuple | list) or len(weights) != 2:
        raise ValueError(
            f"weights: expected 'constructed', 'teacher', (P, V) or a .npz path, got {type(weights)}"
        )
    P = as_float_array(weights[0], "P", ndim=2)
    V = as_float_array(weights[1], "V", ndim=2)
    for name, M in (("P", P), ("V", V)):
        if M.shape != (layout.D, layout.D):
            raise ValueError(
                f"weights: {name} has shape {M.shape}, the environment needs ({layout.D}, {layout.D}) "
                f"(d = {layout.d}, d_pi = {layout.d_pi})"
            )
    b = layout.blocks(P, V)
    return BlockWeights(layout, b["P12"], b["P22"], b["Vbar21"], b["Vbar22"], P=P, V=V, source=source)


def _is_zero(M) -> bool:
    return M.nnz == 0 if sp.issparse(M) else not np.any(M)


def l2_readout(X: np.ndarray, wt: np.ndarray, weights: BlockWeights) -> np.ndarray:
    """(L2) readout (k,) = ``wt[1:] + Vbar21 Sigma P12 wt + (1/n) Vbar22 wt (wt^T P22 wt)``.

    ``X`` (m, n): context columns ``x_i`` ((H): ``[phi_i; gamma phi_i^+; r_{i+1}]``, (A1): with
    ``g_i`` appended), ``wt = [1; w(; lambda)]`` (p,). ``Sigma = X X^T / n`` is never formed:
    ``Sigma P12 wt = X (X^T (P12 wt)) / n``. Equals the (L1) readout ``TF_theta(H)`` exactly.
    """
    X = np.asarray(X, dtype=np.float64)
    wt = np.asarray(wt, dtype=np.float64)
    lay = weights.layout
    if X.ndim != 2 or X.shape[0] != lay.m or X.shape[1] < 1:
        raise ValueError(f"X: expected shape ({lay.m}, n) with n >= 1, got {X.shape}")
    if wt.shape != (lay.D - lay.m,):
        raise ValueError(f"wt: expected shape ({lay.D - lay.m},), got {wt.shape}")
    n = X.shape[1]
    u = weights.P12 @ wt
    s = X @ (X.T @ u) / n
    out = wt[1:] + weights.Vbar21 @ s
    if not _is_zero(weights.Vbar22):
        out = out + (weights.Vbar22 @ wt) * (wt @ (weights.P22 @ wt)) / n
    return np.asarray(out, dtype=np.float64)


def _update_fn(
    weights: BlockWeights | None, layout: Layout, alg: ClosedLoopAlgorithm, hyper: dict, forward: str
) -> tuple[Callable, str]:
    """``update(X, g, w, lam) -> (w', lam')`` of the loop and the forward pass used."""
    if weights is None:
        return alg.teacher(hyper), "teacher"
    if forward == "auto":
        forward = "l1" if weights.P is not None and layout.D <= L1_MAX_D else "l2"
    if forward == "l1":
        if weights.P is None:
            raise ValueError(f"forward: 'l1' needs dense (D, D) weights; D = {layout.D} is assembled sparse")
        P, V, d = weights.P, weights.V, layout.d

        def l1(X, g, w, lam):
            out = lt.readout(lt.lsa_block(alg.full_prompt(X, g, w, lam), P, V), layout.k)
            return out[:d], (out[d:] if layout.d_pi else None)

        return l1, "l1"
    return alg.block_update(lambda x, wt: l2_readout(x, wt, weights), layout.d), "l2"


# --------------------------------------------------------------------------------------------------
# deployment loops
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeployResult:
    """One closed loop. ``updates`` (E,) evaluation points (0, eval_every, ..., n_updates);
    ``normalized_return`` (E,) of the greedy policy there, ``normalized_return_behaviour`` (E,) of
    the behaviour policy (epsilon-greedy / ``pi_lambda``); ``ws`` (T+1, d) and for actor-critic
    ``lams`` (T+1, d_pi) parameters; ``states``/``actions`` (T, n+1) the contexts' trajectories;
    ``diverged_at``: first update whose parameter is not finite or has 1-norm above
    :data:`DIVERGENCE_BOUND` (``None`` if none; the loop stops there, later entries are NaN);
    ``forward``: ``"l1"``, ``"l2"`` or ``"teacher"``; ``resets``: contexts restarted from ``mu0``."""

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
    update, used = _update_fn(
        resolve_weights(weights, layout, alpha=alpha, beta=beta), layout, alg, hyper, forward
    )

    phi = alg.critic_table(S, A, d, rng)
    w = rng.uniform(-1.0, 1.0, size=d)
    lam = phi_pi = None
    if alg.has_actor:
        phi_pi = lt.random_features(S, A, layout.d_pi, rng)
        lam = np.zeros(layout.d_pi)
    draws = Draws(phi, phi_pi, w, lam)
    terminal = terminal_states(mdp)
    points = _eval_points(T, eval_every)
    nr = np.full(points.size, np.nan)
    nr_b = np.full(points.size, np.nan)
    ws = np.full((T + 1, d), np.nan)
    lams = np.full((T + 1, layout.d_pi), np.nan) if alg.has_actor else None
    states = np.full((T, n + 1), -1, dtype=np.int64)
    actions = np.full((T, n + 1), -1, dtype=np.int64)

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
    return DeployResult(points, nr, nr_b, ws, lams, states, actions, diverged, used, resets)


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
# experiment driver
# --------------------------------------------------------------------------------------------------

#: Version of the per-unit record; units saved under another version are recomputed on resume.
UNIT_SCHEMA = 1

DEFAULT_ENVS = (
    HELDOUT_NAME,
    "FrozenLake-v1:is_slippery=False",
    "FrozenLake-v1:is_slippery=True",
    "CliffWalking-v1",
    "Taxi-v4",
)


@dataclass(frozen=True)
class ControlConfig:
    """Deployment experiment. ``envs``: :data:`experiments.envs.HELDOUT_NAME` (``n_heldout`` MDPs,
    one seed each) and gymnasium keys (:func:`experiments.envs.env_key`, ``n_seeds`` seeds each,
    discount ``gym_gamma``); every env runs the algorithms ``env_algos`` (default SARSA), those in
    ``actor_critic_envs`` also ``actor_critic_algos`` (default the state-value actor-critic; add
    ``"actor_critic_q"`` for the (A6) comparison); every name is a registered closed-loop
    algorithm. ``weights``: ``"constructed"`` or a ``.npz`` path (see :func:`resolve_weights`).
    The default is the full configuration; ``quick()`` the small one."""

    envs: tuple[str, ...] = DEFAULT_ENVS
    actor_critic_envs: tuple[str, ...] = (HELDOUT_NAME,)
    env_algos: tuple[str, ...] = ("sarsa",)
    actor_critic_algos: tuple[str, ...] = ("actor_critic",)
    weights: str = "constructed"
    n: int = 20
    n_updates: int = 1000
    epsilon: float = 0.1
    alpha: float = 0.2
    beta: float = 0.1
    eval_every: int = 10
    n_heldout: int = 20
    n_seeds: int = 5
    gym_gamma: float = 0.9
    seed: int = 0
    forward: str = "auto"
    tabular: bool = True

    def __post_init__(self) -> None:
        for name in ("n", "n_updates", "eval_every", "n_heldout", "n_seeds"):
            check_int(getattr(self, name), name)
        check_int(self.seed, "seed", minimum=0)
        check_real(self.epsilon, "epsilon", low=0.0, high=1.0)
        check_real(self.alpha, "alpha", low=0.0, low_open=True)
        check_real(self.beta, "beta", low=0.0, low_open=True)
        check_real(self.gym_gamma, "gym_gamma", low=0.0, high=1.0, high_open=True)
        if not self.envs:
            raise ValueError("envs: need at least one environment")
        for key in self.envs:
            parse_env_key(key)
        for name in ("env_algos", "actor_critic_algos"):
            value = getattr(self, name)
            if not isinstance(value, tuple):
                raise ValueError(f"{name}: expected a tuple of algorithm names, got {value!r}")
            for a in value:
                _algorithm(a)
        extra = set(self.actor_critic_envs) - set(self.envs)
        if extra:
            raise ValueError(f"actor_critic_envs: {sorted(extra)} are not in envs")
        if self.forward not in FORWARDS:
            raise ValueError(f"forward: expected one of {FORWARDS}, got {self.forward!r}")
        if not isinstance(self.weights, str) or self.weights == "teacher":
            raise ValueError(f"weights: expected 'constructed' or a .npz path, got {self.weights!r}")

    @classmethod
    def quick(cls) -> ControlConfig:
        """5 held-out MDPs and 3 seeds per gymnasium env, 300 updates, no Taxi, SARSA only."""
        return cls(
            envs=DEFAULT_ENVS[:4],
            actor_critic_envs=(),
            n_updates=300,
            n_heldout=5,
            n_seeds=3,
        )

    def unit_config(self, algo: str) -> dict:
        """What a unit's result depends on besides (env, seed) (resume key)."""
        return {
            "schema": UNIT_SCHEMA,
            "algo": algo,
            "weights": self.weights,
            "n": self.n,
            "n_updates": self.n_updates,
            "epsilon": self.epsilon,
            "alpha": self.alpha,
            "beta": self.beta if _algorithm(algo).has_actor else None,
            "eval_every": self.eval_every,
            "gym_gamma": self.gym_gamma,
            "seed": self.seed,
            "forward": self.forward,
            "tabular": self.tabular,
        }


def unit_key(env: str, algo: str, seed: int) -> str:
    """Identifier of one (env, algo, seed) unit in ``control.json`` / ``control.npz``."""
    return f"{env}|{algo}|seed={seed}"


def _units(cfg: ControlConfig) -> list[tuple[str, str, int]]:
    jobs = []
    for env in cfg.envs:
        algos = list(cfg.env_algos) + (list(cfg.actor_critic_algos) if env in cfg.actor_critic_envs else [])
        count = cfg.n_heldout if env == HELDOUT_NAME else cfg.n_seeds
        jobs += [(env, algo, i) for algo in algos for i in range(count)]
    return jobs


class _MDPCache:
    """MDPs and their ``optimal`` solutions, computed once per (env, seed index)."""

    def __init__(self, cfg: ControlConfig):
        self.cfg = cfg
        self._gym: dict[str, tuple[TabularMDP, lt.OptimalSolution]] = {}

    def get(
        self, env: str, i: int
    ) -> tuple[TabularMDP, lt.OptimalSolution, np.random.Generator, np.random.Generator]:
        cfg = self.cfg
        if env == HELDOUT_NAME:
            mdp = lt.random_mdp(9, 4, 0.5, heldout_rng(cfg.seed, i))
            return mdp, lt.optimal(mdp), heldout_rng(cfg.seed, i, 1), heldout_rng(cfg.seed, i, 2)
        if env not in self._gym:
            mdp = make_env(env, cfg.gym_gamma)
            self._gym[env] = (mdp, lt.optimal(mdp))
        mdp, sol = self._gym[env]
        return (
            mdp,
            sol,
            np.random.default_rng([cfg.seed, GYM_OFFSET + i, 1]),
            np.random.default_rng([cfg.seed, GYM_OFFSET + i, 2]),
        )


def _run_unit(cfg: ControlConfig, cache: _MDPCache, env: str, algo: str, i: int) -> tuple[dict, dict]:
    """One (env, algo, seed) unit: block, teacher, tabular SARSA, uniform and optimal."""
    t0 = time.perf_counter()
    mdp, sol, rng_loop, rng_tab = cache.get(env, i)
    kw = dict(
        n=cfg.n,
        n_updates=cfg.n_updates,
        epsilon=cfg.epsilon,
        alpha=cfg.alpha,
        eval_every=cfg.eval_every,
        algo=algo,
        beta=cfg.beta if _algorithm(algo).has_actor else None,
        solution=sol,
    )
    state = rng_loop.bit_generator.state
    block = deploy(mdp, cfg.weights, rng=rng_loop, forward=cfg.forward, **kw)
    rng_loop.bit_generator.state = state
    teacher = deploy(mdp, "teacher", rng=rng_loop, **kw)
    tab = None
    if cfg.tabular:
        tab = tabular_sarsa(
            mdp,
            n=cfg.n,
            n_updates=cfg.n_updates,
            epsilon=cfg.epsilon,
            alpha=cfg.alpha,
            rng=rng_tab,
            eval_every=cfg.eval_every,
            solution=sol,
        )
    mismatch = _first_mismatch(block, teacher)
    row = {
        "key": unit_key(env, algo, i),
        "env": env,
        "algo": algo,
        "seed": i,
        "unit_config": cfg.unit_config(algo),
        "forward": block.forward,
        "normalized_return": block.normalized_return[-1],
        "normalized_return_teacher": teacher.normalized_return[-1],
        "normalized_return_tabular": tab.normalized_return[-1] if tab is not None else None,
        "normalized_return_uniform": lt.normalized_return(mdp, lt.uniform_policy(mdp), sol),
        "normalized_return_optimal": lt.normalized_return(mdp, sol.pi, sol),
        "max_w_diff": _max_w_diff(block, teacher),
        "max_w_rel_diff": _max_w_diff(block, teacher, relative=True),
        "max_w_diff_before_mismatch": _max_w_diff(block, teacher, mismatch),
        "max_w_rel_diff_before_mismatch": _max_w_diff(block, teacher, mismatch, relative=True),
        "max_abs_w": float(np.nanmax(np.abs(teacher.ws))),
        "first_trajectory_mismatch": mismatch,
        "diverged_at": block.diverged_at,
        "diverged_at_teacher": teacher.diverged_at,
        "resets": block.resets,
        "wall_time": time.perf_counter() - t0,
    }
    arrays = {
        "updates": block.updates,
        "block": block.normalized_return,
        "teacher": teacher.normalized_return,
        "block_behaviour": block.normalized_return_behaviour,
    }
    if tab is not None:
        arrays["tabular"] = tab.normalized_return
    return row, arrays


def _mean_sem(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=np.float64)
    mean = x.mean(axis=0)
    sem = x.std(axis=0, ddof=1) / np.sqrt(x.shape[0]) if x.shape[0] > 1 else np.zeros_like(mean)
    return mean, sem


def _nanmean(x: np.ndarray) -> float | None:
    """Mean over the seeds whose loop did not diverge (``None`` if all diverged)."""
    x = np.asarray(x, dtype=np.float64)
    return float(x[np.isfinite(x)].mean()) if np.isfinite(x).any() else None


def _summaries(cfg: ControlConfig, units: list[dict], arrays: dict[str, np.ndarray]) -> list[dict]:
    out = []
    for env in cfg.envs:
        for algo in ALGOS:
            rows = [u for u in units if u["env"] == env and u["algo"] == algo]
            if not rows:
                continue
            curves = {}
            for name in ("block", "teacher", "tabular", "block_behaviour"):
                keys = [f"{u['key']}/{name}" for u in rows]
                if all(k in arrays for k in keys):
                    curves[name] = np.stack([arrays[k] for k in keys])
            updates = arrays[f"{rows[0]['key']}/updates"]
            final = {name: c[:, -1] for name, c in curves.items()}
            mismatches = [u["first_trajectory_mismatch"] for u in rows if u["first_trajectory_mismatch"]]
            row = {
                "name": env,
                "algo": algo,
                "weights": cfg.weights,
                "updates": cfg.n_updates,
                "normalized_return": float(np.mean(final["block"])),
                "normalized_return_teacher": float(np.mean(final["teacher"])),
                "n_seeds": len(rows),
                "normalized_return_sem": float(_mean_sem(final["block"][:, None])[1][0]),
                "normalized_return_teacher_sem": float(_mean_sem(final["teacher"][:, None])[1][0]),
                "normalized_return_nanmean": _nanmean(final["block"]),
                "normalized_return_teacher_nanmean": _nanmean(final["teacher"]),
                "normalized_return_std": float(np.std(final["block"], ddof=1)) if len(rows) > 1 else 0.0,
                "normalized_return_tabular": (
                    float(np.mean(final["tabular"])) if "tabular" in final else None
                ),
                "normalized_return_tabular_sem": (
                    float(_mean_sem(final["tabular"][:, None])[1][0]) if "tabular" in final else None
                ),
                "normalized_return_uniform": float(np.mean([u["normalized_return_uniform"] for u in rows])),
                "normalized_return_optimal": float(np.mean([u["normalized_return_optimal"] for u in rows])),
                "max_w_diff": max(u["max_w_diff"] for u in rows),
                "max_w_rel_diff": max(u["max_w_rel_diff"] for u in rows),
                "max_w_diff_before_mismatch": max(u["max_w_diff_before_mismatch"] for u in rows),
                "max_w_rel_diff_before_mismatch": max(u["max_w_rel_diff_before_mismatch"] for u in rows),
                "max_abs_w": max(u["max_abs_w"] for u in rows),
                "n_trajectory_mismatch": len(mismatches),
                "first_trajectory_mismatch": min(mismatches) if mismatches else None,
                "n_diverged": sum(u["diverged_at"] is not None for u in rows),
                "n_diverged_teacher": sum(u["diverged_at_teacher"] is not None for u in rows),
                "env_steps": cfg.n * cfg.n_updates,
                "curves": {"updates": updates}
                | {f"{k}_mean": _mean_sem(v)[0] for k, v in curves.items()}
                | {f"{k}_sem": _mean_sem(v)[1] for k, v in curves.items()},
            }
            out.append(row)
    return out


def _config_doc(cfg: ControlConfig) -> dict:
    return to_jsonable(asdict(cfg))


@single_blas_thread
def run_control(cfg: ControlConfig, out: str | Path | None = None) -> dict:
    """Deploy ``cfg.weights`` on every (env, algo, seed) unit of ``cfg`` with its baselines.

    Returns ``{"config", "versions", "envs": [...], "units": [...]}``. Each ``envs`` row has
    ``name`` (the env key; the held-out family is ``"random-S9-A4"``), ``algo``, ``weights``,
    ``updates`` (``n_updates``), ``normalized_return`` (mean over seeds at the final update,
    greedy policy of the deployed block; ``None`` if a seed's loop diverged, see
    ``normalized_return_nanmean`` and ``n_diverged``), ``normalized_return_teacher`` (same for the
    exact teacher on the same seeds), ``n_seeds``, plus standard errors, the tabular-SARSA, uniform and
    optimal baselines, ``max_w_diff`` (largest ``|w_block - w_teacher|`` over the loops),
    trajectory mismatches, divergences and mean learning ``curves``. With ``out``, writes
    ``control.json`` and ``control.npz`` (per-unit curves ``"{key}/{name}"``) atomically after
    every unit; a rerun skips units already saved with the same unit configuration.
    """
    if not isinstance(cfg, ControlConfig):
        raise ValueError(f"cfg: expected a ControlConfig, got {type(cfg).__name__}")
    out = Path(out) if out is not None else None
    done: dict[str, dict] = {}
    arrays: dict[str, np.ndarray] = {}
    if out is not None and (out / "control.json").exists() and (out / "control.npz").exists():
        prev = read_json(out / "control.json")
        with np.load(out / "control.npz") as z:
            saved = {k: z[k] for k in z.files}
        for u in prev.get("units", []):
            if (
                u.get("unit_config") == to_jsonable(cfg.unit_config(u["algo"]))
                and f"{u['key']}/block" in saved
            ):
                done[u["key"]] = u
        arrays = saved
    cache = _MDPCache(cfg)
    units = []
    for env, algo, i in progress(_units(cfg), desc="control"):
        key = unit_key(env, algo, i)
        if key in done:
            units.append(done[key])
            continue
        row, arr = _run_unit(cfg, cache, env, algo, i)
        units.append(row)
        arrays.update({f"{key}/{name}": v for name, v in arr.items()})
        if out is not None:
            atomic_savez(out / "control.npz", **arrays)
            atomic_write_json(out / "control.json", _doc(cfg, units, arrays))
    doc = _doc(cfg, units, arrays)
    if out is not None:
        atomic_write_json(out / "control.json", doc)
    return to_jsonable(doc)


def _doc(cfg: ControlConfig, units: list[dict], arrays: dict) -> dict:
    return {
        "config": _config_doc(cfg),
        "versions": versions(),
        "envs": _summaries(cfg, units, arrays),
        "units": units,
    }


# --------------------------------------------------------------------------------------------------
# figures
# --------------------------------------------------------------------------------------------------


def plot_control(out: str | Path) -> Path:
    """Learning curves from ``out/control.json``: normalised return of the greedy policy against
    environment steps for the block, the teacher (dashed) and tabular SARSA, with the uniform (0)
    and optimal (1) baselines; one panel per (env, algo). Writes ``out/control.png``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    rows = read_json(out / "control.json")["envs"]
    cols = min(3, len(rows))
    nrows = -(-len(rows) // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4.6 * cols, 3.6 * nrows), squeeze=False)
    n_steps = read_json(out / "control.json")["config"]["n"]
    for ax, row in zip(axes.ravel(), rows, strict=False):
        c = row["curves"]
        x = np.asarray(c["updates"], dtype=float) * n_steps
        for name, style, label in (
            ("block", "-", "frozen block"),
            ("teacher", "--", "exact teacher"),
            ("tabular", ":", "tabular SARSA"),
        ):
            if f"{name}_mean" not in c:
                continue
            m = np.asarray(c[f"{name}_mean"], dtype=float)
            s = np.asarray(c[f"{name}_sem"], dtype=float)
            (line,) = ax.plot(x, m, style, lw=1.3, label=label)
            ax.fill_between(x, m - s, m + s, color=line.get_color(), alpha=0.2, lw=0)
        ax.axhline(1.0, color="k", lw=0.7, label="optimal")
        ax.axhline(0.0, color="0.5", lw=0.7, label="uniform")
        title = f"{row['name']} ({row['algo']}, {row['n_seeds']} seeds"
        if row.get("n_diverged"):
            title += f"; block diverged in {row['n_diverged']}"
        ax.set_title(title + ")", fontsize=9)
        ax.set_xlabel("environment steps")
        ax.set_ylabel(f"normalised return (bands: {sem_label(row['n_seeds'], 'seeds')})", fontsize=8)
    for ax in axes.ravel()[len(rows) :]:
        ax.axis("off")
    axes.ravel()[0].legend(fontsize=7)
    fig.suptitle(f"(S6) deployment of the frozen block ({SEM} over seeds)")
    fig.tight_layout()
    path = out / "control.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


# the context-length sweeps moved to :mod:`experiments.context_length`; importable from here too (lazily,
# since that module imports this one)
_CONTEXT_LENGTH_NAMES = frozenset({"context_length_sweep", "plot_context_length"})


def __getattr__(name: str):
    if name in _CONTEXT_LENGTH_NAMES:
        from . import context_length

        return getattr(context_length, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
