"""The PL ratios of a converge flow, (M6): ``||grad L||^2 / (2 mu L)`` along the recorded path, with
the round-off bound that decides which steps are resolved."""

from __future__ import annotations

import numpy as np

from lsa_theory import dynamics as dy

__all__ = ["PL_RTOL", "pl_ratio_error_bound", "pl_ratios"]


#: A recorded step enters the PL minimum only if its loss and gradient norm are known to this
#: relative accuracy (round-off bounds ``loss_err``, ``grad_err`` of the flow).
PL_RTOL = 1e-3


def pl_ratio_error_bound(loss, grad_norm, loss_err, grad_err) -> np.ndarray:
    r"""Bound on the relative error of the computed PL ratio ``||grad L||^2 / (2 mu L)`` at each
    point (``mu`` exact): with ``a = grad_err / ||grad L||`` and ``b = loss_err / L`` (both < 1),
    the ratio as computed is within a factor ``[(1 - a)^2 / (1 + b), (1 + a)^2 / (1 - b)]`` of the
    exact one, so its relative error is at most ``max((1 + a)^2 / (1 - b) - 1, 1 - (1 - a)^2 / (1
    + b))`` (``inf`` where ``a >= 1`` or ``b >= 1``); arrays of one shape (n,)."""
    loss, g = np.asarray(loss, dtype=np.float64), np.asarray(grad_norm, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        a, b = np.asarray(grad_err) / g, np.asarray(loss_err) / loss
        up = (1 + a) ** 2 / (1 - b) - 1
        down = 1 - (1 - a) ** 2 / (1 + b)
    out = np.maximum(up, down)
    return np.where((a < 1) & (b < 1) & (loss > 0) & (g > 0), out, np.inf)


def pl_ratios(flow: dy.FlowResult, mu: float) -> np.ndarray:
    """PL ratios ``||grad L||^2 / (2 mu L)`` at every recorded (accepted) step with ``L > 0`` whose
    ratio is resolved (relative round-off bound :func:`pl_ratio_error_bound` at most
    ``2 PL_RTOL + PL_RTOL^2``, i.e. loss and gradient norm known to :data:`PL_RTOL`; every step with
    ``L > 0`` without recorded bounds); the PL inequality ``||grad L||^2 >= 2 mu L`` holds along
    the path when all are >= 1."""
    keep = _pl_resolved(flow.loss, flow.grad_norm, flow.loss_err, flow.grad_err)
    return _pl(flow.loss[keep], flow.grad_norm[keep], mu)


def _pl_resolved(loss, grad_norm, loss_err, grad_err) -> np.ndarray:
    if loss_err is None or grad_err is None:
        return np.ones(len(loss), dtype=bool)
    return (grad_err <= PL_RTOL * grad_norm) & (loss_err <= PL_RTOL * loss)


def _pl(loss: np.ndarray, grad_norm: np.ndarray, mu: float) -> np.ndarray:
    """:func:`pl_ratios` from the recorded arrays (as saved in ``converge.npz``)."""
    sel = loss > 0
    return grad_norm[sel] ** 2 / (2.0 * mu * loss[sel])
