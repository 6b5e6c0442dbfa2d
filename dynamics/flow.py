r"""Gradient flow of (M1) as an ODE, a gradient-descent baseline, and the rate fit of (M6).

.. math:: \dot\theta = -\nabla L(\theta), \qquad \theta = [\mathrm{vec}(A); \mathrm{vec}(B)],

integrated by the solvers behind :func:`scipy.integrate.solve_ivp` (its ``OdeSolver`` classes,
stepped here by hand so that the stopping test and the records use accepted steps only); the stiff
methods (LSODA, BDF, Radau) get the closed-form Hessian as Jacobian ``-H(theta)``; the default
``method="auto"`` is the structured BDF of :mod:`dynamics.stiff` (Schur-complement Newton solves,
distance-relative error control, (M3) projection), ``"LSODA"`` the dense reference. Integration
stops at the first accepted step with ``||grad L|| <= grad_floor``, or at ``t_max``. (M6): near the manifold
``L(theta(t)) ~ C exp(-2 mu t)`` with ``mu -> lambda_min^+(H(theta_inf))``; :func:`fit_rate`
measures ``mu`` from the slope of ``log L`` over a late window of accepted steps (never from an
interpolant, whose error in the normal directions would swamp a loss of 1e-30).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from scipy.integrate import BDF, DOP853, LSODA, RK45, Radau

from lsa_theory._checks import check_int, check_real

from .data import TeacherDataset
from .manifold import conserved, distance_to_manifold, invisible_directions
from .objective import hessian, hessian_blocks, loss_and_grad, shapes
from .stiff import NegHessian, ScaleProjection, StructuredBDF

__all__ = [
    "FlowResult",
    "gradient_flow",
    "METHODS",
    "STRUCTURED_MIN",
    "DIST_RTOL",
    "gradient_descent",
    "adam",
    "fit_rate",
    "RATE_WINDOW",
]

#: Default loss window of the rate fit: late enough that faster modes have died out (docs/theory.md
#: (M6) saw 1.06-1.13 of the prediction on earlier windows), above the round-off floor (~1e-33).
RATE_WINDOW = (1e-30, 1e-22)

STIFF = ("LSODA", "BDF", "Radau")


def _objective_hook(default):
    """Dispatch one objective operation: a :class:`TeacherDataset` uses ``default`` (the (M2) objective);
    any other problem object supplies a method of the same name taking the remaining arguments
    (``shapes()``, ``loss_and_grad(theta)``, ``hessian(theta)``, ``conserved(theta)``,
    ``invisible_directions()``, ``distance_to_manifold(theta, U)``), e.g.
    :class:`dynamics.regression.RegressionObjective` of (R4)/(R5)."""

    def op(dataset, *args):
        if isinstance(dataset, TeacherDataset):
            return default(dataset, *args)
        return getattr(dataset, default.__name__)(*args)

    op.__name__ = op.__qualname__ = default.__name__
    op.__doc__ = default.__doc__
    return op


loss_and_grad, hessian, shapes = map(_objective_hook, (loss_and_grad, hessian, shapes))
conserved, distance_to_manifold, invisible_directions = map(
    _objective_hook, (conserved, distance_to_manifold, invisible_directions)
)


@dataclass(frozen=True, eq=False)
class FlowResult:
    """Trajectory of a flow (or of gradient descent, with ``t = step * eta``).

    Per recorded point: ``t``, ``loss``, ``grad_norm``, ``conserved`` ((M3) ``||A||^2 - ||B||^2``),
    ``dist`` (to the manifold (M4)); ``theta0``, ``theta_final``, ``c_final`` (scale of the nearest
    manifold point); ``converged`` is True only if a stopping target was reached (``status`` 1:
    ``grad_norm <= grad_floor``; 2: distance ``<= stop_dist``);
    ``status``/``message`` as the solver gave them; solver statistics in ``stats``."""

    method: str
    t: np.ndarray
    loss: np.ndarray
    grad_norm: np.ndarray
    conserved: np.ndarray
    dist: np.ndarray
    theta0: np.ndarray
    theta_final: np.ndarray
    c_final: float
    converged: bool
    status: int
    message: str
    grad_floor: float
    wall_time: float
    stats: dict = field(default_factory=dict)

    @property
    def conserved_drift(self) -> float:
        """``max_t |Q(t) - Q(0)| / max(1, |Q(0)|)`` of the (M3) quantity."""
        q = self.conserved
        return float(np.abs(q - q[0]).max() / max(1.0, abs(q[0])))


def _trajectory(dataset: TeacherDataset, thetas: np.ndarray):
    U = invisible_directions(dataset)
    L, G, Q, D = [], [], [], []
    for th in thetas:
        l, g = loss_and_grad(dataset, th)
        L.append(l)
        G.append(np.linalg.norm(g))
        Q.append(conserved(dataset, th))
        D.append(distance_to_manifold(dataset, th, U)[0])
    return np.array(L), np.array(G), np.array(Q), np.array(D), U


def _reached(dataset: TeacherDataset, theta: np.ndarray, grad_floor: float, stop_dist, U) -> tuple:
    """``(status, message)`` if a stopping target holds at ``theta``, else ``None``."""
    if np.linalg.norm(loss_and_grad(dataset, theta)[1]) <= grad_floor:
        return 1, f"gradient floor {grad_floor:g} reached"
    if stop_dist is not None and distance_to_manifold(dataset, theta, U)[0] <= stop_dist:
        return 2, f"distance {stop_dist:g} to the manifold reached"
    return None


def _deadline(max_seconds) -> float:
    if max_seconds is None:
        return float("inf")
    return time.perf_counter() + check_real(max_seconds, "max_seconds", low=0.0, low_open=True)


def _check_start(dataset: TeacherDataset, theta0: np.ndarray) -> np.ndarray:
    theta0 = np.asarray(theta0, dtype=np.float64)
    if theta0.shape != (shapes(dataset).size,) or not np.isfinite(theta0).all():
        raise ValueError(f"theta0: expected {shapes(dataset).size} finite entries, got shape {theta0.shape}")
    return theta0


#: :func:`gradient_flow`'s ``method="auto"`` integrates with ``"structured"`` from this many
#: parameters on, LSODA below. 0: the structured path was faster at every size measured, 81 to 5329
#: parameters (docs/performance-flow.md); the size-dependent part of "auto" is :data:`REUSE_MIN`.
STRUCTURED_MIN = 0
#: ``method="structured"``'s default ``dist_rtol``: far from the manifold the local error may be this
#: fraction of the distance still to go (docs/performance-flow.md for how it was chosen).
DIST_RTOL = 1e-6

#: ``method="structured"`` keeps a factorisation while the BDF coefficient ``c = h / alpha`` changes by at
#: most this factor (:class:`dynamics.stiff.StructuredBDF`), from :data:`REUSE_MIN` parameters on, where
#: one factorisation costs about 30 Newton iterations (d = 25: 36 instead of 65 factorisations, 15 %
#: less time; at d <= 16 the extra Newton iterations cost what the factorisations save).
REUSE = 1.6
REUSE_MIN = 2000
#: ``method="structured"`` projects every accepted step onto the (M3) level set
#: (:class:`dynamics.stiff.ScaleProjection`); False only to measure what the projection does.
PROJECT = True

METHODS = ("auto", "structured", "LSODA", "BDF", "Radau", "DOP853", "RK45")


def _pick(method: str, size: int, dataset=None) -> str:
    """The integrator of ``method``: ``"auto"`` is ``"structured"`` for the (M2) objective of a
    teacher dataset (whose Hessian has the block structure :mod:`dynamics.stiff` uses) from
    :data:`STRUCTURED_MIN` parameters on, LSODA otherwise (e.g. other problem objects such as
    :class:`dynamics.regression.RegressionObjective`)."""
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
    dist_rtol: float | None = None,
) -> FlowResult:
    """Integrate ``d theta/dt = -grad L`` from ``theta0`` up to ``t_max`` or until
    ``||grad L|| <= grad_floor`` (or, if given, the distance to the manifold ``<= stop_dist``),
    with ``solve_ivp``'s ``method`` at ``rtol``, ``atol``; stiff methods get the Jacobian ``-H``.
    Every accepted step is recorded. ``max_seconds`` (for benchmarks; machine-dependent, so not
    reproducible) stops after that much wall time with status -3.

    ``method="structured"`` (:mod:`dynamics.stiff`): BDF with the Newton matrices ``I + c H``
    factorised through the Schur complement on ``H_AA = I_k (x) M``, and a local error allowed to be
    ``atol + rtol |theta_i| + dist_rtol * dist(theta) / sqrt(size)`` per component (RMS norm), where
    ``dist`` is the distance to the manifold (M4) at the last accepted step (default
    :data:`DIST_RTOL`; ``0`` gives the plain ``rtol``/``atol`` control): loose while the flow is far
    from the manifold, the given ``rtol``/``atol`` near it. ``"auto"`` (default) picks
    ``"structured"`` from :data:`STRUCTURED_MIN` parameters on, LSODA below; ``"LSODA"`` is the dense
    reference path (Jacobian ``-hessian``)."""
    theta0 = _check_start(dataset, theta0)
    t_max = check_real(t_max, "t_max", low=0.0, low_open=True)
    rtol = check_real(rtol, "rtol", low=0.0, low_open=True)
    atol = check_real(atol, "atol", low=0.0, low_open=True)
    grad_floor = check_real(grad_floor, "grad_floor", low=0.0, low_open=True)
    method = _pick(method, theta0.size, dataset)
    if dist_rtol is not None:
        dist_rtol = check_real(dist_rtol, "dist_rtol", low=0.0)
        if method != "structured":
            raise ValueError(f"dist_rtol: only method='structured' uses it, got method={method!r}")
    deadline = _deadline(max_seconds)

    def rhs(_t, th):
        return -loss_and_grad(dataset, th)[1]

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
            jac=lambda _t, th: NegHessian(hessian_blocks(dataset, th)),
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
        kwargs = {"jac": lambda _t, th: -hessian(dataset, th)} if method in STIFF else {}
        solver = solvers[method](rhs, 0.0, theta0, t_max, rtol=rtol, atol=atol, **kwargs)
    ts, ys, L, G, D = [], [], [], [], []
    status, message = 0, f"t_max = {t_max:g} reached"
    while True:
        ts.append(solver.t)
        ys.append(solver.y.copy())
        l, g = loss_and_grad(dataset, ys[-1])
        L.append(l)
        G.append(np.linalg.norm(g))
        D.append(distance_to_manifold(dataset, ys[-1], U)[0])
        if G[-1] <= grad_floor:
            status, message = 1, f"gradient floor {grad_floor:g} reached"
            break
        if stop_dist is not None and D[-1] <= stop_dist:
            status, message = 2, f"distance {stop_dist:g} to the manifold reached"
            break
        if solver.status != "running":
            break
        if time.perf_counter() > deadline:
            status, message = -3, f"max_seconds = {max_seconds:g} reached"
            break
        if on_step is not None:
            on_step(D[-1], G[-1])
        solver.step()
        if solver.status == "failed":
            status, message = -1, f"solver failed: {solver.message}"
            break
        if after_step is not None:
            after_step()
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
        c_final=distance_to_manifold(dataset, sol_y[-1], U)[1],
        converged=reached,
        status=status,
        message=message,
        grad_floor=grad_floor,
        wall_time=wall,
        stats={**stats, "steps": len(ts) - 1, "rtol": rtol, "atol": atol},
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


def fit_rate(
    t: np.ndarray, loss: np.ndarray, window: tuple[float, float] = RATE_WINDOW, min_points: int = 5
) -> tuple[float, int]:
    """(M6) measured ``mu``: ``-slope/2`` of the least-squares line of ``log L`` against ``t`` over
    the points with ``window[0] < L < window[1]``; returns ``(mu, n_points)``, ``mu = nan`` when fewer
    than ``min_points`` points fall in the window."""
    t, loss = np.asarray(t, dtype=np.float64), np.asarray(loss, dtype=np.float64)
    sel = (loss > window[0]) & (loss < window[1])
    if sel.sum() < min_points:
        return float("nan"), int(sel.sum())
    slope = np.polyfit(t[sel], np.log(loss[sel]), 1)[0]
    return float(-slope / 2), int(sel.sum())


#: Window of :func:`fit_two_mode`: late enough that modes beyond the two slowest have decayed,
#: wide enough that two close rates separate (THEORY (M6); docs/dynamics.md, two-mode fits).
TWO_MODE_WINDOW = (1e-30, 1e-16)


def fit_two_mode(
    t: np.ndarray, loss: np.ndarray, window: tuple[float, float] = TWO_MODE_WINDOW, min_points: int = 20
) -> tuple[float, float, int]:
    r"""(M6) with two slow modes: ``(mu_1, mu_2, n_points)`` of the least-squares fit of
    :math:`\log L(t) = \log(a_1 e^{-2\mu_1 t} + a_2 e^{-2\mu_2 t})` (rates and amplitudes free,
    ``mu_1 <= mu_2``) over the points with ``window[0] < L < window[1]``.

    When the two smallest non-zero Hessian eigenvalues are close (``lambda_2 / lambda_1`` near 1),
    a single exponential over any window float64 can reach mixes them and overestimates
    ``lambda_min^+`` by a few per cent (:func:`fit_rate`); this fit separates them. ``nan`` rates
    when fewer than ``min_points`` points fall in the window or the fit does not converge
    (scipy ``least_squares``, its default tolerances 1e-8, Jacobian scaling)."""
    from scipy.optimize import least_squares

    t, loss = np.asarray(t, dtype=np.float64), np.asarray(loss, dtype=np.float64)
    sel = (loss > window[0]) & (loss < window[1])
    n = int(sel.sum())
    if n < min_points:
        return float("nan"), float("nan"), n
    tt, y = t[sel], np.log(loss[sel])
    m0 = -np.polyfit(tt, y, 1)[0] / 2

    def residual(p):
        a1, m1, a2, m2 = p
        return np.logaddexp(a1 - 2 * m1 * tt, a2 - 2 * m2 * tt) - y

    a0 = y[0] + 2 * m0 * tt[0]
    sol = least_squares(residual, [a0, 0.97 * m0, a0 - 1.0, 1.2 * m0], x_scale="jac", max_nfev=5000)
    if not sol.success:
        return float("nan"), float("nan"), n
    m1, m2 = sorted([sol.x[1], sol.x[3]])
    return float(m1), float(m2), n
