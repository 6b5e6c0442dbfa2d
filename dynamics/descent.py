"""First-order baselines of the gradient flow (M1) of :mod:`lsa_theory.dynamics.flow`: gradient descent and
Adam
on ``theta = [vec(A); vec(B)]``, with the flow's stopping tests and records.
"""

from __future__ import annotations

import time

import numpy as np

from lsa_theory.checks import check_int, check_real

from .data import TeacherDataset
from .flow_common import (  # the objective operations dispatched on the problem (flow_common)
    FlowResult,
    _check_start,
    _check_stop_dist,
    _deadline,
    _reached,
    _trajectory,
    distance_to_manifold,
    invisible_directions,
    loss_and_grad,
    shapes,
)


def _first_order(
    dataset: TeacherDataset,
    theta0: np.ndarray,
    step,
    name: str,
    t_scale: float,
    max_steps: int,
    grad_floor: float,
    record_every: int,
    stop_dist: float | None,
    max_seconds: float | None,
    stats: dict,
) -> FlowResult:
    """Iterate ``theta <- theta - step(g, i)`` (``i`` = 1, 2, ...) with the stopping tests and records
    shared by :func:`gradient_descent` and :func:`adam`; ``t = i * t_scale``."""
    theta = _check_start(dataset, theta0).copy()
    max_steps = check_int(max_steps, "max_steps")
    record_every = check_int(record_every, "record_every")
    grad_floor = check_real(grad_floor, "grad_floor", low=0.0, low_open=True)
    stop_dist = _check_stop_dist(stop_dist)
    deadline = _deadline(max_seconds)
    t0 = time.perf_counter()
    ts, thetas = [0.0], [theta.copy()]
    status, message, i = -1, f"max_steps = {max_steps} reached before the gradient floor", 0
    U = invisible_directions(dataset) if stop_dist is not None else None
    with np.errstate(over="ignore", invalid="ignore"):
        for i in range(1, max_steps + 1):
            l, g = loss_and_grad(dataset, theta)
            gn = np.linalg.norm(g)
            if not np.isfinite(l) or not gn < 1e150:
                status, message = -2, f"diverged at step {i} ({name} step too large?)"
                break
            if gn <= grad_floor:
                status, message = 1, "gradient floor reached"
                break
            theta = theta - step(g, i)
            if i % record_every == 0:
                ts.append(i * t_scale)
                thetas.append(theta.copy())
                hit = _reached(dataset, theta, grad_floor, stop_dist, U) if stop_dist is not None else None
                if hit:
                    status, message = hit
                    break
                if time.perf_counter() > deadline:
                    status, message = -3, f"max_seconds = {max_seconds:g} reached"
                    break
    if ts[-1] != i * t_scale and np.isfinite(theta).all():
        ts.append(i * t_scale)
        thetas.append(theta.copy())
    wall = time.perf_counter() - t0
    thetas = [th for th in thetas if np.isfinite(th).all()]
    with np.errstate(over="ignore", invalid="ignore"):  # a diverged run has huge entries
        L, G, Q, D, U = _trajectory(dataset, np.array(thetas))
    return FlowResult(
        method=name,
        t=np.array(ts[: len(thetas)]),
        loss=L,
        grad_norm=G,
        conserved=Q,
        dist=D,
        theta0=thetas[0],
        theta_final=thetas[-1],
        c_final=distance_to_manifold(dataset, thetas[-1], U)[1],
        converged=status in (1, 2),
        status=status,
        message=message,
        grad_floor=grad_floor,
        wall_time=wall,
        stats={"steps": i, **stats},
    )


def gradient_descent(
    dataset: TeacherDataset,
    theta0: np.ndarray,
    eta: float,
    max_steps: int,
    *,
    grad_floor: float = 1e-17,
    record_every: int = 100,
    stop_dist: float | None = None,
    max_seconds: float | None = None,
) -> FlowResult:
    """Plain gradient descent ``theta <- theta - eta grad L`` (flow time ``t = step * eta``) until
    ``||grad L|| <= grad_floor`` or ``max_steps`` (or the distance to the manifold ``<= stop_dist``,
    tested every ``record_every`` steps, or ``max_seconds`` of wall time, status -3); stable for
    ``eta < 2 / lambda_max``."""
    eta = check_real(eta, "eta", low=0.0, low_open=True)
    return _first_order(
        dataset,
        theta0,
        lambda g, _i: eta * g,
        f"GD(eta={eta:g})",
        eta,
        max_steps,
        grad_floor,
        record_every,
        stop_dist,
        max_seconds,
        {"eta": eta},
    )


def adam(
    dataset: TeacherDataset,
    theta0: np.ndarray,
    lr: float,
    max_steps: int,
    *,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    grad_floor: float = 1e-17,
    record_every: int = 100,
    stop_dist: float | None = None,
    max_seconds: float | None = None,
) -> FlowResult:
    """Adam (Kingma & Ba) on (M1): ``m <- b1 m + (1-b1) g``, ``v <- b2 v + (1-b2) g^2``,
    ``theta <- theta - lr mhat / (sqrt(vhat) + eps)`` with bias-corrected ``mhat``, ``vhat``; the
    stopping tests and records of :func:`gradient_descent` (``t`` counts steps times ``lr``; Adam
    does not follow the gradient flow, so its ``t`` is not flow time)."""
    lr = check_real(lr, "lr", low=0.0, low_open=True)
    if not isinstance(betas, tuple | list) or len(betas) != 2:
        raise ValueError(f"betas: expected a pair (beta1, beta2), got {betas!r}")
    b1, b2 = (check_real(b, "betas", low=0.0, high=1.0) for b in betas)
    if b1 >= 1.0 or b2 >= 1.0:
        raise ValueError(f"betas: expected both in [0, 1), got {betas}")
    eps = check_real(eps, "eps", low=0.0, low_open=True)
    mom = np.zeros(shapes(dataset).size)
    sec = np.zeros_like(mom)

    def step(g, i):
        mom[:] = b1 * mom + (1.0 - b1) * g
        sec[:] = b2 * sec + (1.0 - b2) * g * g
        return lr * (mom / (1.0 - b1**i)) / (np.sqrt(sec / (1.0 - b2**i)) + eps)

    return _first_order(
        dataset,
        theta0,
        step,
        f"Adam(lr={lr:g})",
        lr,
        max_steps,
        grad_floor,
        record_every,
        stop_dist,
        max_seconds,
        {"lr": lr, "betas": [b1, b2], "eps": eps},
    )
