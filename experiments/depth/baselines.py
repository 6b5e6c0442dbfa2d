r"""The baselines of the depth study, pure functions: (R3) preconditioned gradient descent on (R1)
prompts with tuned steps, batch TD(0) = the (W3) stack on (W1) prompts with a tuned step, the exact
batch-TD fixed point (LSTD) and the held-out errors.

Regression (THEORY §7). On a context ``X`` (F, N, d), ``y`` (F, N) with ``S = (1/N) sum_i x_i x_i^T``,
``h = (1/N) sum_i y_i x_i``, (R3)'s L layers ``A_l`` predict ``x_q^T w_L``,
``w_{l+1} = w_l - A_l^T (S w_l - h)`` from ``w_0 = 0`` (:func:`pgd_predict`). The families tuned here
(:func:`tune_regression`) are ``A_l = eta B`` (one step for every layer) and ``A_l = eta_l B`` (one
step per layer), with ``B = I_d`` (gradient descent, (R2) stacked) or ``B = Lambda^{-1}``; "tuned"
means: the steps minimise the loss ``(1/2) mean_f (x_q^T w_L - y_q)^2`` on a fixed sample of
training prompts, never on the held-out ones.

TD (THEORY §5). On a context of transitions ``(phi_i, gamma phi_i', r_i)`` (n of them),
``A = (1/n) sum_i phi_i (phi_i - gamma phi_i')^T`` (d, d), ``b = (1/n) sum_i r_i phi_i``; batch TD(0)
from ``w_0 = 0`` is ``w_{l+1} = w_l + alpha (b - A w_l)`` (:func:`batch_td`), which is what L layers
of (W3) compute (checked by the tests against :func:`lsa_theory.td_pretrain.values`); its fixed
point ``w* = A^{-1} b`` (:func:`lstd`) is the ``L -> infinity`` limit when TD converges. The value
error is (WP5)'s ``rel_msve = sum_s mu(s) (vhat(s) - v(s))^2 / sum_s mu(s) v(s)^2`` per task
(:func:`rel_msve`; ``mu`` the stationary law, ``v = (I - gamma P)^{-1} r``; the zero predictor
scores 1).
"""

from __future__ import annotations

import numpy as np
import scipy.optimize
import torch

from lsa_theory import td_pretrain as tp
from lsa_theory.checks import check_gamma, check_int, check_real, check_rng

__all__ = [
    "STEP_GRID",
    "STEP_XATOL",
    "LBFGS_GTOL",
    "LBFGS_MAXITER",
    "PER_LAYER_SPREADS",
    "LSTD_RCOND",
    "context_statistics",
    "pgd_predict",
    "pgd_loss",
    "tune_regression",
    "TD_KINDS",
    "representable_tasks",
    "sample_td_tasks",
    "td_contexts",
    "query_prompts",
    "batch_td",
    "lstd",
    "rel_msve",
    "tune_td_step",
]

#: The grid of a step's first search (geometric, 81 points, 1e-3 to 1e2); the best point is then
#: refined by bounded Brent on ``log(step)`` between its neighbours to :data:`STEP_XATOL`.
STEP_GRID = np.geomspace(1e-3, 1e2, 81)
#: Absolute tolerance of the refinement in ``log(step)`` (a relative step error of about 1e-6).
STEP_XATOL = 1e-6
#: L-BFGS-B on the per-layer steps: projected-gradient tolerance and iteration cap.
LBFGS_GTOL = 1e-12
LBFGS_MAXITER = 500
#: Starts of the per-layer search: steps ``eta * geomspace(1/c, c, L)`` for each c (eta the tuned
#: common step).
PER_LAYER_SPREADS = (2.0, 5.0)
#: The batch-TD fixed point ``A^{-1} b`` is said not to exist when ``A``'s reciprocal condition
#: number is below this (e.g. ``n < d``, where ``A`` has rank at most n).
LSTD_RCOND = 1e-10


# ------------------------------------------------------------------------------------- regression


def context_statistics(X, y) -> tuple:
    """``(S, h)`` of contexts ``X`` (F, N, d), ``y`` (F, N): (F, d, d) and (F, d); numpy or torch."""
    N = X.shape[-2]
    S = X.swapaxes(-1, -2) @ X / N
    h = (X.swapaxes(-1, -2) @ y[..., None])[..., 0] / N
    return S, h


def pgd_predict(S, h, x_query, As):
    """(R3)'s prediction ``x_q^T w_L``, ``w_{l+1} = w_l - A_l^T (S w_l - h)``, ``w_0 = 0``, from the
    statistics ``S`` (F, d, d), ``h`` (F, d), queries ``x_query`` (F, d) and layers ``As`` (a
    sequence of (d, d)); shape (F,). numpy in -> numpy out, torch in -> torch out."""
    w = 0 * h
    for A in As:
        g = (S @ w[..., None])[..., 0] - h
        w = w - g @ A  # (A^T g)^T = g^T A, row by row
    return (x_query * w).sum(-1)


def pgd_loss(S, h, x_query, y_query, As):
    """``(1/2) mean_f (x_q^T w_L - y_q)^2`` of :func:`pgd_predict`."""
    return 0.5 * ((pgd_predict(S, h, x_query, As) - y_query) ** 2).mean()


def _refine_common(loss_of_log) -> tuple[float, float]:
    """Grid :data:`STEP_GRID`, then bounded Brent on ``log(step)`` around the best grid point."""
    vals = np.array([loss_of_log(np.log(e)) for e in STEP_GRID])
    vals = np.where(np.isfinite(vals), vals, np.inf)
    i = int(np.argmin(vals))
    lo, hi = np.log(STEP_GRID[max(i - 1, 0)]), np.log(STEP_GRID[min(i + 1, len(STEP_GRID) - 1)])
    res = scipy.optimize.minimize_scalar(
        loss_of_log, bounds=(lo, hi), method="bounded", options={"xatol": STEP_XATOL}
    )
    if np.isfinite(res.fun) and res.fun <= vals[i]:
        return float(np.exp(res.x)), float(res.fun)
    return float(STEP_GRID[i]), float(vals[i])


def tune_regression(S, h, x_query, y_query, L: int, B, per_layer: bool) -> dict:
    """Steps of the family ``A_l = eta B`` (``per_layer=False``) or ``A_l = eta_l B``
    (``per_layer=True``) minimising :func:`pgd_loss` on the training prompts given by their
    statistics (numpy float64). Common step: :data:`STEP_GRID` then Brent to :data:`STEP_XATOL`;
    per layer: from spread steps around the common one (:data:`PER_LAYER_SPREADS`), L-BFGS-B on
    ``(eta_1, ..., eta_L)`` with the exact gradient (torch autograd) to :data:`LBFGS_GTOL`, at
    most :data:`LBFGS_MAXITER` iterations each, the best kept if it lowers the loss. Returns
    ``{"steps": [eta_l], "train_loss", "iterations"}``."""
    L = check_int(L, "L")
    B = np.asarray(B, dtype=np.float64)
    St, ht, xt, yt = (torch.as_tensor(np.asarray(a, dtype=np.float64)) for a in (S, h, x_query, y_query))
    Bt = torch.as_tensor(B)

    def loss_steps(etas) -> torch.Tensor:
        return pgd_loss(St, ht, xt, yt, [e * Bt for e in etas])

    def loss_of_log(le: float) -> float:
        with torch.no_grad():
            v = float(loss_steps([float(np.exp(le))] * L))
        return v if np.isfinite(v) else np.inf

    eta, best = _refine_common(loss_of_log)
    steps, its = [eta] * L, 0
    if per_layer and L > 1:

        def fun(x):
            e = torch.tensor(x, dtype=torch.float64, requires_grad=True)
            v = loss_steps(list(e))
            if not torch.isfinite(v):
                return np.inf, np.zeros_like(x)
            v.backward()
            return v.item(), e.grad.numpy().copy()

        # The loss is symmetric in the steps (the A_l commute), so the common step is a stationary
        # point of the per-layer problem: start L-BFGS-B from spread steps as well, keep the best.
        for spread in PER_LAYER_SPREADS:
            res = scipy.optimize.minimize(
                fun,
                eta * np.geomspace(1.0 / spread, spread, L),
                jac=True,
                method="L-BFGS-B",
                options={"gtol": LBFGS_GTOL, "maxiter": LBFGS_MAXITER},
            )
            its += int(res.nit)
            if np.isfinite(res.fun) and res.fun < best:
                steps, best = [float(v) for v in res.x], float(res.fun)
    return {"steps": steps, "train_loss": best, "iterations": its}


# --------------------------------------------------------------------------------------------- TD


def representable_tasks(tasks: tp.Tasks, gamma: float, rng: np.random.Generator) -> tp.Tasks:
    """[W]'s representable variant of ``tasks``: rewards ``r = (I - gamma P) phi w``, ``w ~ N(0, I_d)``
    per task, so that the value ``v = (I - gamma P)^{-1} r = phi w`` lies in the span of the features
    (transitions, start law and features unchanged)."""
    gamma = check_gamma(gamma)
    rng = check_rng(rng)
    T, s, d = tasks.phi.shape
    w = rng.standard_normal((T, d))
    v = (tasks.phi @ w[..., None])[..., 0]
    r = v - gamma * (tasks.P @ v[..., None])[..., 0]
    return tp.Tasks(tasks.P, tasks.mu, r, tasks.phi)


#: The task laws of the TD study: ``"representable"`` (:func:`representable_tasks` of Boyan chains)
#: and ``"boyan"`` ([W]'s default: Boyan chains, ``r ~ U(-1, 1)^s``, value not representable).
TD_KINDS = ("representable", "boyan")


def sample_td_tasks(T: int, s: int, d: int, gamma: float, kind: str, rng: np.random.Generator) -> tp.Tasks:
    """T tasks of :data:`TD_KINDS`' ``kind`` (Boyan chains with features ``U(-1, 1)^{s x d}``)."""
    if kind not in TD_KINDS:
        raise ValueError(f"kind: expected one of {TD_KINDS}, got {kind!r}")
    tasks = tp.sample_tasks(T, s, d, rng, "boyan")
    return representable_tasks(tasks, gamma, rng) if kind == "representable" else tasks


def td_contexts(tasks: tp.Tasks, states, gamma: float, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The first n transitions of each task's trajectory ``states`` (T, >= n+1): ``phi`` (T, n, d),
    ``gamma phi'`` (T, n, d) and ``r`` (T, n) (the reward of the state left)."""
    n = check_int(n, "n")
    states = np.asarray(states)
    T = len(tasks)
    if states.ndim != 2 or states.shape[0] != T or states.shape[1] < n + 1:
        raise ValueError(f"states: expected shape ({T}, >= {n + 1}), got {states.shape}")
    rows = np.arange(T)[:, None]
    x, xn = states[:, :n], states[:, 1 : n + 1]
    return tasks.phi[rows, x], gamma * tasks.phi[rows, xn], tasks.r[rows, x]


def query_prompts(phi_ctx, gphi_next, r_ctx, phi_query) -> np.ndarray:
    """(W1) prompts ``Z`` (T, Q, 2d+1, n+1): each task's context (T, n, d), (T, n, d), (T, n) with
    each of the Q queries ``phi_query`` (T, Q, d) in the last column ``[phi_q; 0; 0]``."""
    T, n, d = phi_ctx.shape
    Qn = phi_query.shape[1]
    Z = np.zeros((T, Qn, 2 * d + 1, n + 1))
    Z[:, :, :d, :n] = np.swapaxes(phi_ctx, -1, -2)[:, None]
    Z[:, :, d : 2 * d, :n] = np.swapaxes(gphi_next, -1, -2)[:, None]
    Z[:, :, 2 * d, :n] = r_ctx[:, None]
    Z[:, :, :d, n] = phi_query
    return Z


def _td_moments(phi_ctx, gphi_next, r_ctx) -> tuple[np.ndarray, np.ndarray]:
    n = phi_ctx.shape[1]
    A = np.swapaxes(phi_ctx, -1, -2) @ (phi_ctx - gphi_next) / n
    b = (np.swapaxes(phi_ctx, -1, -2) @ r_ctx[..., None])[..., 0] / n
    return A, b


def batch_td(phi_ctx, gphi_next, r_ctx, alpha: float, L: int) -> np.ndarray:
    """L steps of batch TD(0) from ``w = 0`` with step ``alpha``: ``w_{l+1} = w_l + alpha (b - A w_l)``
    (module docstring) on each task's context; ``w_L`` (T, d)."""
    alpha = check_real(alpha, "alpha")
    L = check_int(L, "L")
    A, b = _td_moments(phi_ctx, gphi_next, r_ctx)
    w = np.zeros_like(b)
    for _ in range(L):
        w = w + alpha * (b - (A @ w[..., None])[..., 0])
    return w


def lstd(phi_ctx, gphi_next, r_ctx) -> tuple[np.ndarray, np.ndarray]:
    """The batch-TD fixed point ``w* = A^{-1} b`` (T, d) of each context and whether it exists
    (T,) bool: ``1 / cond(A) >= LSTD_RCOND`` (NaN rows where it does not)."""
    A, b = _td_moments(phi_ctx, gphi_next, r_ctx)
    ok = 1.0 / np.linalg.cond(A) >= LSTD_RCOND
    w = np.full(b.shape, np.nan)
    if ok.any():
        w[ok] = np.linalg.solve(A[ok], b[ok][..., None])[..., 0]
    return w, ok


def rel_msve(v_hat, tasks: tp.Tasks, gamma: float) -> np.ndarray:
    """(WP5)'s ``rel_msve`` per task (T,) of the values ``v_hat`` (T, s) of every state; ``inf`` for
    a task with a non-finite prediction."""
    v = tp.true_values(tasks, gamma)
    mu = tp.stationary_distribution(tasks.P)
    with np.errstate(all="ignore"):
        err = (mu * (v_hat - v) ** 2).sum(-1) / (mu * v**2).sum(-1)
    return np.where(np.isfinite(err), err, np.inf)


def tune_td_step(phi_ctx, gphi_next, r_ctx, tasks: tp.Tasks, gamma: float, L: int) -> dict:
    """The step ``alpha`` of L batch-TD(0) steps minimising the mean :func:`rel_msve` over the tuning
    tasks (their contexts given): :data:`STEP_GRID` then bounded Brent on ``log(alpha)`` to
    :data:`STEP_XATOL`. Returns ``{"alpha", "tune_err"}``."""

    def loss_of_log(la: float) -> float:
        w = batch_td(phi_ctx, gphi_next, r_ctx, float(np.exp(la)), L)
        with np.errstate(all="ignore"):
            e = rel_msve((tasks.phi @ w[..., None])[..., 0], tasks, gamma).mean()
        return float(e) if np.isfinite(e) else np.inf

    alpha, err = _refine_common(loss_of_log)
    return {"alpha": alpha, "tune_err": err}
