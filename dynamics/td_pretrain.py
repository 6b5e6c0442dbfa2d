r"""[W]'s multi-task TD pretraining as dynamics, (WP1), (WP3), (WP6) of docs/theory.md.

- :func:`meta_features`: the (WP3) meta-features ``f1 = (1/n) sum_i r_i phi_i^T phi_q``,
  ``f2 = (1/n) sum_i r_i gamma phi_i'^T phi_q`` of every window, from the states (T, K+1, 2);
- :func:`stationary_point`: ``(a*, b*) = E[f (f - gamma f')^T]^{-1} E[r f]`` with standard errors
  (delta method over i.i.d. tasks, windows of one trajectory kept together);
- :func:`fix_flow`: the flow of the expected update ``U(theta) = E[delta grad v_theta]`` restricted
  to Fix (L = 1) in its coordinates ``(p, x, y) = (P[D, D], Q[:d, :d] = x I, Q[d:2d, :d] = y I)``
  (the only ones reaching the value: ``v = a f1 + b f2``, ``a = -p x``, ``b = -p y``);
- :func:`distances`: of a trained ``theta`` to Fix(G), to the (W3) pattern up to its scale and to
  ``theta*``; :func:`heldout_value_error`: the (WP5) ``rel_msve`` on held-out tasks;
- :func:`pretrain`: (WP1) as the authors run it (fresh tasks or a pool of k), semi-gradient TD with
  Adam, logging the distances along training; resumable from its returned state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.integrate import solve_ivp

from lsa_theory import td_pretrain as tp
from lsa_theory.checks import as_float_array, check_gamma, check_int, check_real, check_rng

__all__ = [
    "Stationary",
    "meta_features",
    "stationary_point",
    "stationary_sample",
    "fix_update",
    "fix_flow",
    "theta_star",
    "w3_theta",
    "distances",
    "heldout_value_error",
    "PretrainState",
    "HELDOUT_CONTEXT_SEED",
    "pretrain",
]


def meta_features(tasks: tp.Tasks, states: np.ndarray, gamma: float, n: int, n_windows: int):
    """``(f, rq)``: the meta-features (T, K+1, 2) of windows ``k = 0..K`` (``K = n_windows``, indexing
    of :func:`lsa_theory.td_pretrain.prompts`) and the query rewards ``r(x_{k+n+1})`` (T, K)."""
    gamma = check_gamma(gamma)
    n, K = check_int(n, "n"), check_int(n_windows, "n_windows")
    states = np.asarray(states)
    T = len(tasks)
    if states.shape != (T, states.shape[1]) or states.shape[1] < K + n + 2:
        raise ValueError(f"states: expected shape ({T}, >= {K + n + 2}), got {states.shape}")
    gram = tasks.phi @ np.swapaxes(tasks.phi, -1, -2)  # (T, s, s)
    k = np.arange(K + 1)[:, None] + np.arange(n)[None, :]
    t = np.arange(T)[:, None, None]
    x_ctx, x_nxt = states[:, k], states[:, k + 1]
    x_q = states[:, np.arange(K + 1) + n + 1][:, :, None]
    r_ctx = tasks.r[t, x_ctx]
    f1 = (r_ctx * gram[t, x_ctx, x_q]).sum(axis=-1) / n
    f2 = gamma * (r_ctx * gram[t, x_nxt, x_q]).sum(axis=-1) / n
    rq = tasks.r[np.arange(T)[:, None], x_q[:, :K, 0]]
    return np.stack([f1, f2], axis=-1), rq


@dataclass(frozen=True)
class Stationary:
    """(WP3): ``c = (a*, b*)``, its standard errors ``sem`` and covariance ``cov``, the moments
    ``A = E[f (f - gamma f')^T]`` (2, 2) and ``b = E[r f]`` (2,), the eigenvalues of A, and the sample
    (tasks, windows per task)."""

    c: np.ndarray
    sem: np.ndarray
    cov: np.ndarray
    A: np.ndarray
    b: np.ndarray
    eig: np.ndarray
    tasks: int
    windows: int


def stationary_point(f: Any, rq: Any, gamma: float) -> Stationary:
    """``(a*, b*) = A^{-1} b`` from meta-features ``f`` (T, K+1, 2) and rewards ``rq`` (T, K): ``A``,
    ``b`` averaged over the T K windows; covariance by the delta method with the T tasks i.i.d.
    (influence ``A^{-1}(b_t - A_t c)`` of task t's window means ``A_t``, ``b_t``)."""
    gamma = check_gamma(gamma)
    f, rq = as_float_array(f, "f", 3), as_float_array(rq, "rq", 2)
    if f.shape[-1] != 2 or f.shape[1] < 2:
        raise ValueError(f"f: expected shape (T, K+1, 2) with K >= 1, got {f.shape}")
    if rq.shape != (f.shape[0], f.shape[1] - 1):
        raise ValueError(f"rq: expected shape {(f.shape[0], f.shape[1] - 1)}, got {rq.shape}")
    T = f.shape[0]
    if T < 2:
        raise ValueError("f: at least 2 tasks are needed for a standard error")
    fk, fn = f[:, :-1], f[:, 1:]
    A_t = np.einsum("tki,tkj->tij", fk, fk - gamma * fn) / fk.shape[1]
    b_t = np.einsum("tk,tki->ti", rq, fk) / fk.shape[1]
    A, b = A_t.mean(axis=0), b_t.mean(axis=0)
    c = np.linalg.solve(A, b)
    psi = np.linalg.solve(A, (b_t - A_t @ c).T).T  # (T, 2)
    cov = np.cov(psi, rowvar=False) / T
    return Stationary(c, np.sqrt(np.diag(cov)), cov, A, b, np.linalg.eigvals(A), T, T * fk.shape[1])


def stationary_sample(
    tasks_total: int,
    s: int,
    d: int,
    n: int,
    n_windows: int,
    gamma: float,
    rng: np.random.Generator,
    chunk: int = 2000,
    kind: str = "boyan",
) -> Stationary:
    """:func:`stationary_point` on ``tasks_total`` fresh tasks of (WP1), one trajectory of
    ``n_windows + n + 2`` states from ``mu`` each (sampled in chunks of ``chunk`` tasks)."""
    rng = check_rng(rng)
    fs, rs = [], []
    left = check_int(tasks_total, "tasks_total", minimum=2)
    while left > 0:
        m = min(left, chunk)
        tasks = tp.sample_tasks(m, s, d, rng, kind)
        x = tp.sample_trajectories(tasks, n_windows + n + 2, rng)
        f, rq = meta_features(tasks, x, gamma, n, n_windows)
        fs.append(f)
        rs.append(rq)
        left -= m
    return stationary_point(np.concatenate(fs), np.concatenate(rs), gamma)


def _check_vector(x: Any, name: str, size: int) -> np.ndarray:
    x = as_float_array(x, name, 1)
    if x.shape != (size,):
        raise ValueError(f"{name}: expected shape ({size},), got {x.shape}")
    return x


def _check_moments(A: Any, b: Any) -> tuple[np.ndarray, np.ndarray]:
    A = as_float_array(A, "A", 2)
    if A.shape != (2, 2):
        raise ValueError(f"A: expected shape (2, 2), got {A.shape}")
    return A, _check_vector(b, "b", 2)


def fix_update(coords: Any, A: Any, b: Any, d: int) -> np.ndarray:
    r"""The expected update on Fix (L = 1) in the coordinates ``(p, x, y)`` under the Euclidean metric
    of the matrices (a coordinate ``x`` of ``x I`` moves by the mean diagonal of the matrix update):
    with ``c = (a, b) = (-p x, -p y)`` and ``g = E[delta f] = b - A c``,
    ``(p', x', y') = (-(x g_1 + y g_2), -p g_1 / d, -p g_2 / d)``."""
    p, x, y = _check_vector(coords, "coords", 3)
    A, b = _check_moments(A, b)
    d = check_int(d, "d")
    g = b - A @ np.array([-p * x, -p * y])
    return np.array([-(x * g[0] + y * g[1]), -p * g[0] / d, -p * g[1] / d])


def fix_flow(
    start: Any, A: Any, b: Any, d: int, t_max: float = 2e5, rtol: float = 1e-10, atol: float = 1e-13
):
    """The flow ``dot theta = U(theta)`` on Fix from ``start = (p, x, y)`` (LSODA at ``rtol``, ``atol``):
    ``(t, coords (len(t), 3), c = (a, b) along it)``."""
    start = _check_vector(start, "start", 3)
    A, b = _check_moments(A, b)
    d = check_int(d, "d")
    t_max = check_real(t_max, "t_max", low=0.0, low_open=True)
    rtol = check_real(rtol, "rtol", low=0.0, low_open=True)
    atol = check_real(atol, "atol", low=0.0, low_open=True)
    sol = solve_ivp(
        lambda t, z: fix_update(z, A, b, d),
        (0.0, t_max),
        start,
        method="LSODA",
        rtol=rtol,
        atol=atol,
        t_eval=np.concatenate([[0.0], np.geomspace(1e-2, t_max, 200)]),
    )
    if not sol.success:
        raise RuntimeError(f"fix_flow: the solver failed: {sol.message}")
    z = sol.y.T
    return sol.t, z, np.stack([-z[:, 0] * z[:, 1], -z[:, 0] * z[:, 2]], axis=-1)


def theta_star(d: int, c: Any) -> tuple[np.ndarray, np.ndarray]:
    """The L = 1 point ``theta*`` on Fix: ``P = -e_D e_D^T``, ``Q[:d, :d] = a* I``,
    ``Q[d:2d, :d] = b* I``, else 0 (``v = a* f1 + b* f2``); ``(Ps, Qs)`` (1, D, D)."""
    d = check_int(d, "d")
    c = _check_vector(c, "c", 2)
    D = 2 * d + 1
    P, Q = np.zeros((1, D, D)), np.zeros((1, D, D))
    P[0, -1, -1] = -1.0
    Q[0, :d, :d] = c[0] * np.eye(d)
    Q[0, d : 2 * d, :d] = c[1] * np.eye(d)
    return P, Q


def w3_theta(d: int, L: int, alpha: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """The (W3) pattern with step ``alpha`` in every layer, reached through the registry (``td``'s
    pair): ``(Ps, Qs)`` (L, D, D)."""
    from lsa_theory.constructions import ALGORITHMS

    P, Q = ALGORITHMS["td"].pair(d, alpha)
    return np.repeat(np.asarray(P, float)[None], L, 0), np.repeat(np.asarray(Q, float)[None], L, 0)


def _effective(P: np.ndarray, Q: np.ndarray, d: int) -> np.ndarray:
    """L = 1: the tensor ``T[j, k, m] = -P[D, j] Q[k, m]`` (m < d) the value depends on, free of the
    scaling ``(P, Q) -> (cP, Q/c)``."""
    return -np.einsum("j,km->jkm", P[-1], Q[:, :d])


def _sin(x: np.ndarray, y: np.ndarray) -> float:
    nx, ny = np.linalg.norm(x), np.linalg.norm(y)
    if nx == 0 or ny == 0:
        return 1.0
    cos = float(np.vdot(x, y) / (nx * ny))
    return float(np.sqrt(max(0.0, 1.0 - cos * cos)))


def distances(Ps: Any, Qs: Any, c_star: Any = None) -> dict:
    """(WP6) distances of ``theta = (Ps, Qs)`` (L, D, D):

    - ``dist_fix``: relative Frobenius norm of the part outside Fix (signed permutations) of the
      output-relevant parameters (L = 1: the last row of P and ``Q[:, :d]``; L > 1: all);
    - ``dist_w3``: L = 1, the sine of the angle between the effective tensor ``-P[D, j] Q[k, m]`` and
      the (W3) one (distance up to scale); L > 1, the rms over layers and P, Q of the sines to
      ``e_D e_D^T`` and to (W3)'s Q;
    - ``dist_theta_star`` (L = 1 with ``c_star``): ``|T - T*| / |T*|`` for the effective tensors; None
      otherwise."""
    Ps, Qs = as_float_array(Ps, "Ps", 3), as_float_array(Qs, "Qs", 3)
    if Ps.shape != Qs.shape or Ps.shape[-1] != Ps.shape[-2] or Ps.shape[-1] < 3 or Ps.shape[-1] % 2 == 0:
        raise ValueError(f"Ps: expected shape (L, 2d + 1, 2d + 1) like Qs {Qs.shape}, got {Ps.shape}")
    if c_star is not None:
        c_star = _check_vector(c_star, "c_star", 2)
    L, D = Ps.shape[0], Ps.shape[-1]
    d = (D - 1) // 2
    P3, Q3 = w3_theta(d, 1)
    if L == 1:
        Pm, Qm = np.zeros_like(Ps), np.zeros_like(Qs)
        Pm[:, -1] = Ps[:, -1]
        Qm[:, :, :d] = Qs[:, :, :d]
    else:
        Pm, Qm = Ps, Qs
    out_, in_ = tp.fix_outside(np.stack([Pm, Qm]))
    total = np.hypot(out_, in_)
    res = {"dist_fix": float(out_ / total) if total > 0 else 1.0}
    if L == 1:
        T = _effective(Ps[0], Qs[0], d)
        res["dist_w3"] = _sin(T, _effective(P3[0], Q3[0], d))
        if c_star is not None:
            Pt, Qt = theta_star(d, c_star)
            Tt = _effective(Pt[0], Qt[0], d)
            res["dist_theta_star"] = float(np.linalg.norm(T - Tt) / np.linalg.norm(Tt))
        else:
            res["dist_theta_star"] = None
        nT = np.linalg.norm(T)
        coords = np.array([np.trace(T[-1, :d]), np.trace(T[-1, d : 2 * d])]) / d if nT > 0 else np.zeros(2)
        res["ab"] = [float(coords[0]), float(coords[1])]
    else:
        sins = [_sin(P, P3[0]) for P in Ps] + [_sin(Q, Q3[0]) for Q in Qs]
        res["dist_w3"] = float(np.sqrt(np.mean(np.square(sins))))
        res["dist_theta_star"] = None
        res["ab"] = None
    return res


def heldout_value_error(
    Ps: Any, Qs: Any, tasks: tp.Tasks, gamma: float, n: int, rng: np.random.Generator
) -> float:
    r"""(WP5) ``rel_msve`` averaged over the held-out ``tasks``:
    ``sum_s mu_st(s) (v_tf(s) - v(s))^2 / sum_s mu_st(s) v(s)^2`` with the context the first window of
    a fresh trajectory and every state as the query (the zero predictor scores 1); ``inf`` when a
    prediction is not finite."""
    gamma = check_gamma(gamma)
    x = tp.sample_trajectories(tasks, n + 1, check_rng(rng))
    T, s, d = tasks.phi.shape
    rows = np.arange(T)[:, None]
    Z = np.zeros((T, s, 2 * d + 1, n + 1))
    Z[:, :, :d, :n] = np.swapaxes(tasks.phi[rows, x[:, :n]], -1, -2)[:, None]
    Z[:, :, d : 2 * d, :n] = gamma * np.swapaxes(tasks.phi[rows, x[:, 1 : n + 1]], -1, -2)[:, None]
    Z[:, :, 2 * d, :n] = tasks.r[rows, x[:, :n]][:, None]
    Z[:, :, :d, n] = tasks.phi
    with np.errstate(all="ignore"):
        v_tf = tp.values(Z, Ps, Qs)
    if not np.isfinite(v_tf).all():
        return float("inf")
    v = tp.true_values(tasks, gamma)
    mu = tp.stationary_distribution(tasks.P)
    return float(np.mean((mu * (v_tf - v) ** 2).sum(-1) / (mu * v**2).sum(-1)))


#: Seed of the held-out contexts (the same contexts at every log row and in every run).
HELDOUT_CONTEXT_SEED = 12345


@dataclass
class PretrainState:
    """A resumable pretraining run: parameters, Adam state, the generator, the pool of tasks (None:
    fresh tasks), the outer iterations done and the log."""

    Ps: np.ndarray
    Qs: np.ndarray
    adam: tp.AdamState
    rng: np.random.Generator
    pool: tp.Tasks | None
    done: int
    log: list
    diverged: bool = False


def pretrain(
    *,
    d: int,
    s: int,
    n: int,
    L: int,
    gamma: float,
    outer: int,
    k: int | None,
    rng: np.random.Generator,
    heldout: tp.Tasks,
    c_star: Any = None,
    shared: bool = True,
    n_windows: int = 64,
    batches: int = 5,
    lr: float = 1e-3,
    weight_decay: float = 1e-6,
    gain: float = 0.1,
    log_every: int = 50,
    kind: str = "boyan",
    state: PretrainState | None = None,
) -> PretrainState:
    """(WP1): ``outer`` outer iterations (each a task, fresh when ``k`` is None or the next of a pool
    of k tasks drawn first, then ``batches`` mini-batches of ``n_windows`` windows of a fresh
    trajectory from ``mu``, one Adam step each on the authors' loss
    ``mean_k (r + gamma v'.detach() - v)^2``), from ``xavier_normal_(gain)``; with ``state`` it
    continues that run (same result as one longer call). Every ``log_every`` outer iterations (and
    at the end) a log row: step, :func:`distances`, held-out ``rel_msve``. A non-finite loss or
    parameter marks the run diverged and stops it."""
    check_int(outer, "outer", minimum=0)
    D = 2 * d + 1
    if state is None:
        rng = check_rng(rng)
        Ps, Qs = tp.xavier_start(L, D, rng, gain, shared)
        pool = None if k is None else tp.sample_tasks(check_int(k, "k"), s, d, rng, kind)
        params = (Ps[:1], Qs[:1]) if shared else (Ps, Qs)
        state = PretrainState(Ps, Qs, tp.adam_init(params, lr, weight_decay), rng, pool, 0, [])
    st = state

    def log_row():
        row = {"outer": st.done, "step": st.adam.t, **distances(st.Ps, st.Qs, c_star)}
        row["heldout_value_err"] = heldout_value_error(
            st.Ps, st.Qs, heldout, gamma, n, np.random.default_rng(HELDOUT_CONTEXT_SEED)
        )
        st.log.append(row)

    if not st.log:
        log_row()
    end = st.done + outer
    while st.done < end and not st.diverged:
        task = (
            tp.sample_tasks(1, s, d, st.rng, kind)
            if st.pool is None
            else st.pool.take(st.done % len(st.pool))
        )
        for _ in range(batches):
            x = tp.sample_trajectories(task, n_windows + n + 2, st.rng)
            Z, rq = tp.prompts(task, x, gamma, n, n_windows)
            with np.errstate(all="ignore"):
                _, delta, dP, dQ = tp.value_and_td_direction(Z, rq, st.Ps, st.Qs, gamma)
            if not (np.isfinite(delta).all() and np.isfinite(dP).all() and np.isfinite(dQ).all()):
                st.diverged = True
                break
            if shared:
                grads = (-2 * dP.sum(0, keepdims=True), -2 * dQ.sum(0, keepdims=True))
                params = (st.Ps[:1], st.Qs[:1])
            else:
                grads, params = (-2 * dP, -2 * dQ), (st.Ps, st.Qs)
            params, st.adam = tp.adam_step(params, grads, st.adam)
            if shared:
                st.Ps, st.Qs = np.repeat(params[0], L, 0), np.repeat(params[1], L, 0)
            else:
                st.Ps, st.Qs = params
        st.done += 1
        if st.done % log_every == 0 or st.done == end or st.diverged:
            if not st.diverged:
                log_row()
    return st
