r"""Gradient flow of (M1) as an ODE (its rate fit of (M6) is :mod:`lsa_theory.dynamics.rate_fit`).

.. math:: \dot\theta = -\nabla L(\theta), \qquad \theta = [\mathrm{vec}(A); \mathrm{vec}(B)],

integrated by the solvers behind :func:`scipy.integrate.solve_ivp` (its ``OdeSolver`` classes,
stepped here by hand so that the stopping test and the records use accepted steps only); the stiff
methods (LSODA, BDF, Radau) get the closed-form Hessian as Jacobian ``-H(theta)``; the default
``method="auto"`` is the structured BDF of :mod:`lsa_theory.dynamics.stiff` (Schur-complement Newton solves,
distance-relative error control, (M3) projection), ``"LSODA"`` the dense reference. Integration
stops at the first accepted step with ``||grad L|| <= grad_floor``, or at ``t_max``. (M6): near the manifold
``L(theta(t)) ~ C exp(-2 mu t)`` with ``mu -> lambda_min^+(H(theta_inf))``;
:func:`lsa_theory.dynamics.rate_fit.fit_rate` measures ``mu`` from the slope of ``log L`` over a
late window of accepted steps (never from an interpolant, whose error in the normal directions
would swamp a loss of 1e-30).
"""

from __future__ import annotations

import time

import numpy as np
from scipy.integrate import BDF, DOP853, LSODA, RK45, Radau

from lsa_theory.checks import as_float_array, check_int, check_real

from .data import TeacherDataset
from .flow_common import (
    FlowResult,
    _check_start,
    _check_stop_dist,
    _deadline,
    _target,
    conserved,
    distance_to_manifold,
    hessian,
    invisible_directions,
    loss_and_grad,
    shapes,
)
from .objective import hessian_blocks, loss_and_grad_error_bound
from .stiff import NegHessian, ScaleProjection, StructuredBDF

__all__ = ["gradient_flow", "METHODS", "STRUCTURED_MIN", "DIST_RTOL", "MAX_STEPS"]


STIFF = ("LSODA", "BDF", "Radau")


#: :func:`gradient_flow`'s ``method="auto"`` integrates with ``"structured"`` from this many
#: parameters on, LSODA below. 0: the structured path was faster at every size measured, 81 to 5329
#: parameters (docs/performance-flow.md); the size-dependent part of "auto" is :data:`REUSE_MIN`.
STRUCTURED_MIN = 0
#: ``method="structured"``'s default ``dist_rtol``: far from the manifold the local error may be this
#: fraction of the distance still to go (docs/performance-flow.md for how it was chosen).
DIST_RTOL = 1e-6

#: ``method="structured"`` keeps a factorisation while the BDF coefficient ``c = h / alpha`` changes by at
#: most this factor (:class:`lsa_theory.dynamics.stiff.StructuredBDF`), from :data:`REUSE_MIN` parameters
#: on, where
#: one factorisation costs about 30 Newton iterations (d = 25: 36 instead of 65 factorisations, 15 %
#: less time; at d <= 16 the extra Newton iterations cost what the factorisations save).
REUSE = 1.6
REUSE_MIN = 2000
#: ``method="structured"`` projects every accepted step onto the (M3) level set
#: (:class:`lsa_theory.dynamics.stiff.ScaleProjection`); False only to measure what the projection does.
PROJECT = True

METHODS = ("auto", "structured", "LSODA", "BDF", "Radau", "DOP853", "RK45")

#: :func:`gradient_flow`'s default budget of accepted steps (status -4 when it runs out): every flow of
#: the saved results took at most 11341 (docs/figures/*.json), so 100000 stops only a flow that would
#: otherwise run without end (LSODA on alpha = 50 teacher data had not returned after 9 minutes).
MAX_STEPS = 100_000


class _NonFinite(ArithmeticError):
    """Raised by the right-hand side or Jacobian handed to a solver when the state it is given, or
    the gradient it computes, is not finite: the integrator has failed (status -1), not the caller."""


def _finite_state(th: np.ndarray) -> np.ndarray:
    if not np.isfinite(th).all():
        raise _NonFinite("the state theta became non-finite")
    return th


def _pick(method: str, size: int, dataset=None) -> str:
    """The integrator of ``method``: ``"auto"`` is ``"structured"`` for the (M2) objective of a
    teacher dataset (whose Hessian has the block structure :mod:`lsa_theory.dynamics.stiff` uses) from
    :data:`STRUCTURED_MIN` parameters on, LSODA otherwise (e.g. other problem objects such as
    :class:`lsa_theory.dynamics.regression.RegressionObjective`)."""
    if method not in METHODS:
        raise ValueError(f"method: expected one of {METHODS}, got {method!r}")
    m2 = dataset is None or isinstance(dataset, TeacherDataset) or hasattr(dataset, "effective_shapes")
    if method == "auto":
        return "structured" if (m2 and size >= STRUCTURED_MIN) else "LSODA"
    if method == "structured" and not m2:
        raise ValueError(f"method: 'structured' needs an (M2) teacher dataset, got {type(dataset).__name__}")
    return method


def gradient_flow(
    dataset: TeacherDataset,
    theta0: np.ndarray,
    t_max: float,
    *,
    method: str = "auto",
    rtol: float = 1e-11,
    atol: float = 1e-14,
    grad_floor: float = 1e-17,
    stop_dist: float | None = None,
    max_seconds: float | None = None,
    max_steps: int = MAX_STEPS,
    dist_rtol: float | None = None,
    error_bounds: bool = False,
) -> FlowResult:
    """Integrate ``d theta/dt = -grad L`` from ``theta0`` up to ``t_max`` or until
    ``||grad L|| <= grad_floor`` (or, if given, the distance to the manifold ``<= stop_dist``),
    with ``solve_ivp``'s ``method`` at ``rtol``, ``atol``; stiff methods get the Jacobian ``-H``.
    Every accepted step is recorded; with ``error_bounds`` (M2 teacher data only) also the
    round-off bounds of its loss and gradient norm (``loss_err``, ``grad_err``,
    :func:`lsa_theory.dynamics.loss_and_grad_error_bound`, about twice the cost of a gradient per step), which
    near-floor checks need (rate fits, monotonicity, PL). ``max_seconds`` (for benchmarks;
    machine-dependent, so not reproducible) stops after that much wall time with status -3.

    Budget and failures (issue 24, item 7): at most ``max_steps`` accepted steps (default
    :data:`MAX_STEPS`; ``stats["max_steps"]``), then status -4, so no call runs without end. A solver
    failure is a result, not an exception: status -1, ``failed = True`` and a ``message`` naming the
    solver, the time reached and the cause (the solver's own message, or a state or gradient that
    became non-finite, e.g. an overflow from a start of scale 1e8); the trajectory up to the last
    finite accepted step is kept.
    ``method="structured"`` (:mod:`lsa_theory.dynamics.stiff`): BDF with the Newton matrices ``I + c H``
    factorised through the Schur complement on ``H_AA = I_k (x) M``, and a local error allowed to be
    ``atol + rtol |theta_i| + dist_rtol * dist(theta) / sqrt(size)`` per component (RMS norm), where
    ``dist`` is the distance to the manifold (M4) at the last accepted step (default
    :data:`DIST_RTOL`; ``0`` gives the plain ``rtol``/``atol`` control): loose while the flow is far
    from the manifold, the given ``rtol``/``atol`` near it. ``"auto"`` (default) picks
    ``"structured"`` from :data:`STRUCTURED_MIN` parameters on, LSODA below; ``"LSODA"`` is the dense
    reference path (Jacobian ``-hessian``)."""
    theta0 = _check_start(dataset, as_float_array(theta0, "theta0"))  # complex/bool refused, not cast
    t_max = check_real(t_max, "t_max", low=0.0, low_open=True)
    rtol = check_real(rtol, "rtol", low=0.0, low_open=True)
    atol = check_real(atol, "atol", low=0.0, low_open=True)
    grad_floor = check_real(grad_floor, "grad_floor", low=0.0, low_open=True)
    max_steps = check_int(max_steps, "max_steps", minimum=1)
    stop_dist = _check_stop_dist(stop_dist)
    if not isinstance(error_bounds, bool):
        raise ValueError(f"error_bounds: expected a bool, got {error_bounds!r}")
    method = _pick(method, theta0.size, dataset)
    if dist_rtol is not None:
        dist_rtol = check_real(dist_rtol, "dist_rtol", low=0.0)
        if method != "structured":
            raise ValueError(f"dist_rtol: only method='structured' uses it, got method={method!r}")
    deadline = _deadline(max_seconds)

    def rhs(_t, th):
        g = loss_and_grad(dataset, _finite_state(th))[1]
        if not np.isfinite(g).all():
            raise _NonFinite("the gradient overflowed")
        return -g

    solvers = {"LSODA": LSODA, "BDF": BDF, "Radau": Radau, "DOP853": DOP853, "RK45": RK45}
    U = invisible_directions(dataset)
    on_step = after_step = None
    t0 = time.perf_counter()
    if method == "structured":
        solver = StructuredBDF(
            rhs,
            0.0,
            theta0,
            t_max,
            rtol=rtol,
            atol=atol,
            reuse=REUSE if theta0.size >= REUSE_MIN else 1.0,
            jac=lambda _t, th: NegHessian(hessian_blocks(dataset, _finite_state(th))),
        )
        scale = (DIST_RTOL if dist_rtol is None else dist_rtol) / np.sqrt(theta0.size)

        proj = ScaleProjection(shapes(dataset), U, theta0) if PROJECT else None

        def on_step(dist, gnorm):
            floor = solver.h_abs * grad_floor * min(1.0, grad_floor / gnorm) ** 2
            solver.atol = atol + (scale * dist + floor) / np.sqrt(theta0.size)

        def after_step():
            if proj is not None:
                delta = proj.delta(solver.y)
                solver.y = solver.y + delta
                solver.D[0] += delta

    else:
        kwargs = {"jac": lambda _t, th: -hessian(dataset, _finite_state(th))} if method in STIFF else {}
        solver = solvers[method](rhs, 0.0, theta0, t_max, rtol=rtol, atol=atol, **kwargs)
    ts, ys, L, G, D, E = [], [], [], [], [], []
    # round-off bounds of L, ||grad L|| as computed, for the (M2) objective of teacher data
    m2 = isinstance(dataset, TeacherDataset) or hasattr(dataset, "effective_shapes")
    if error_bounds and not m2:
        raise ValueError(f"error_bounds: only (M2) teacher data have them, got {type(dataset).__name__}")
    bounds = bool(error_bounds)
    status, message = 0, f"t_max = {t_max:g} reached"
    while True:
        ts.append(solver.t)
        ys.append(solver.y.copy())
        l, g = loss_and_grad(dataset, ys[-1])
        L.append(l)
        G.append(np.linalg.norm(g))
        if bounds:
            E.append(loss_and_grad_error_bound(dataset, ys[-1]))
        dist, c_final = distance_to_manifold(dataset, ys[-1], U)
        D.append(dist)
        hit = _target(G[-1], lambda: D[-1], grad_floor, stop_dist)
        if hit:
            status, message = hit
            break
        if solver.status != "running":
            break
        if time.perf_counter() > deadline:
            status, message = -3, f"max_seconds = {max_seconds:g} reached"
            break
        if len(ts) > max_steps:
            status, message = -4, f"max_steps = {max_steps} reached at t = {solver.t:g}"
            break
        if on_step is not None:
            on_step(D[-1], G[-1])
        t_before = solver.t
        try:
            cause = solver.step()
            if solver.status != "failed":
                if after_step is not None:
                    after_step()
                _finite_state(solver.y)
        except (_NonFinite, np.linalg.LinAlgError) as exc:
            cause = str(exc)
        else:
            if solver.status != "failed":
                continue
        status, message = -1, f"solver {method} failed after t = {t_before:g}: {cause}"
        break
    wall = time.perf_counter() - t0
    sol_y = np.array(ys)
    reached = status in (1, 2)
    if not reached:
        message += f"; gradient floor {grad_floor:g} NOT reached (|grad| = {G[-1]:.3g})"
    stats = {"nfev": int(solver.nfev), "njev": int(solver.njev), "nlu": int(solver.nlu)}
    if method == "structured":
        stats["dist_rtol"] = float(DIST_RTOL if dist_rtol is None else dist_rtol)
    return FlowResult(
        method=method,
        t=np.array(ts),
        loss=np.array(L),
        grad_norm=np.array(G),
        conserved=np.array([conserved(dataset, th) for th in sol_y]),
        dist=np.array(D),
        theta0=theta0,
        theta_final=sol_y[-1].copy(),
        c_final=c_final,  # of the last recorded point, sol_y[-1]
        converged=reached,
        failed=status == -1,
        status=status,
        message=message,
        grad_floor=grad_floor,
        wall_time=wall,
        stats={**stats, "steps": len(ts) - 1, "max_steps": max_steps, "rtol": rtol, "atol": atol},
        loss_err=np.array([b[0] for b in E]) if bounds else None,
        grad_err=np.array([b[1] for b in E]) if bounds else None,
    )
