"""What the flows of :mod:`lsa_theory.dynamics.flow` and the first-order baselines of
:mod:`lsa_theory.dynamics.descent` share:
the objective operations dispatched on the problem ((M2) teacher data or e.g. (R4)/(R5)
regression), the :class:`FlowResult` record and the stopping tests.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from lsa_theory.checks import as_float_array, check_real

from .data import TeacherDataset
from .manifold import conserved, distance_to_manifold, invisible_directions
from .objective import hessian, loss_and_grad, shapes


def _objective_hook(default):
    """Dispatch one objective operation: a :class:`TeacherDataset` uses ``default`` (the (M2) objective);
    any other problem object supplies a method of the same name taking the remaining arguments
    (``shapes()``, ``loss_and_grad(theta)``, ``hessian(theta)``, ``conserved(theta)``,
    ``invisible_directions()``, ``distance_to_manifold(theta, U)``), e.g.
    :class:`lsa_theory.dynamics.regression.RegressionObjective` of (R4)/(R5)."""

    def op(dataset, *args):
        if isinstance(dataset, TeacherDataset):
            return default(dataset, *args)
        method = getattr(dataset, default.__name__, None)
        if not callable(method):
            raise ValueError(
                f"dataset: expected a TeacherDataset or a problem object with {default.__name__}(), "
                f"got {type(dataset).__name__}"
            )
        return method(*args)

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
    ``status``/``message`` as the solver gave them (``failed``: the integrator failed, status -1,
    the message names the solver, the time and the cause); solver statistics in ``stats``. ``loss_err``,
    ``grad_err`` (per recorded point with ``gradient_flow(..., error_bounds=True)``, else ``None``):
    the round-off bounds of the recorded ``loss`` and ``grad_norm`` as computed
    (:func:`lsa_theory.dynamics.loss_and_grad_error_bound`)."""

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
    loss_err: np.ndarray | None = None
    grad_err: np.ndarray | None = None
    failed: bool = False

    @property
    def conserved_drift(self) -> float:
        """``max_t |Q(t) - Q(0)| / max(1, |Q(0)|)`` of the (M3) quantity."""
        q = self.conserved
        return float(np.abs(q - q[0]).max() / max(1.0, abs(q[0])))


def loss_increase_bound(flow: FlowResult) -> np.ndarray:
    """(n - 1,) bound on the computed change ``loss[i + 1] - loss[i]`` of consecutive recorded
    points when the exact loss along the recorded path does not increase: ``loss_err[i] +
    loss_err[i + 1]`` (round-off bounds of :func:`lsa_theory.dynamics.loss_and_grad_error_bound`). A gradient
    flow's loss is non-increasing up to round-off when ``np.diff(loss) <= loss_increase_bound``.
    ValueError for a flow without recorded bounds."""
    if flow.loss_err is None:
        raise ValueError("flow: no recorded loss_err (gradient_flow(..., error_bounds=True) records it)")
    return flow.loss_err[:-1] + flow.loss_err[1:]


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


def _target(grad_norm: float, dist, grad_floor: float, stop_dist) -> tuple | None:
    """``(status, message)`` if a stopping target holds (``grad_norm <= grad_floor``: 1; ``dist <=
    stop_dist``: 2), else ``None``; ``dist`` is called for the distance only when it is needed."""
    if grad_norm <= grad_floor:
        return 1, f"gradient floor {grad_floor:g} reached"
    if stop_dist is not None and dist() <= stop_dist:
        return 2, f"distance {stop_dist:g} to the manifold reached"
    return None


def _reached(dataset: TeacherDataset, theta: np.ndarray, grad_floor: float, stop_dist, U) -> tuple:
    """``(status, message)`` if a stopping target holds at ``theta``, else ``None``."""
    gnorm = np.linalg.norm(loss_and_grad(dataset, theta)[1])
    return _target(gnorm, lambda: distance_to_manifold(dataset, theta, U)[0], grad_floor, stop_dist)


def _check_stop_dist(stop_dist) -> float | None:
    """``stop_dist`` (a distance to the manifold, > 0) or None; ValueError naming it otherwise."""
    return None if stop_dist is None else check_real(stop_dist, "stop_dist", low=0.0, low_open=True)


def _deadline(max_seconds) -> float:
    if max_seconds is None:
        return float("inf")
    return time.perf_counter() + check_real(max_seconds, "max_seconds", low=0.0, low_open=True)


def _check_start(dataset: TeacherDataset, theta0: np.ndarray) -> np.ndarray:
    theta0 = as_float_array(theta0, "theta0")  # complex/bool/object/strings refused, not cast
    if theta0.shape != (shapes(dataset).size,):
        raise ValueError(f"theta0: expected {shapes(dataset).size} finite entries, got shape {theta0.shape}")
    return theta0
