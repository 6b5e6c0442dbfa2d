r"""Certified near-kernel of the Hessian of (M1) from the parameter-column blind spot (M4), in
extended precision.

(M4): if ``v^T wt_f = 0`` for every frame, ``B + x v^T`` is optimal. When ``v^T wt_f`` is only
*small*, the directions ``(0, X v^T)`` (``X`` any m-vector) are a near-kernel: at a point of the
manifold (``e_f = 0``, Hessian ``= J^T J / F``),

.. math:: \delta\theta^\top H \delta\theta = \tfrac1F \sum_f \|A \Sigma_f X\|^2 (v^\top \tilde w_f)^2
          \le \max_f \|A \Sigma_f\|_2^2 \, \sigma_{\min}(W)^2, \qquad W = [\tilde w_f^\top]_f / \sqrt F,

for ``||X|| = 1`` and ``v`` the right singular vector of ``sigma_min(W)``. That is an ``m``-dimensional
subspace, so by Courant–Fischer ``H`` has at least ``m`` eigenvalues below the bound ``beta``
(at most one of them the scaling direction): ``lambda_min^+ <= beta``. ``sigma_min(W)`` is computed
by mpmath at ``dps`` digits (and in float64, to show the two agree); ``max_f ||A Sigma_f||_2`` in
float64 with a relative margin of 1e-8, which keeps ``beta`` an upper bound.
"""

from __future__ import annotations

from dataclasses import dataclass

import mpmath
import numpy as np

from .data import TeacherDataset
from .objective import shapes, unpack

__all__ = ["NearKernel", "parameter_near_kernel", "extended_precision_loss"]


@dataclass(frozen=True)
class NearKernel:
    """``sigma`` (p,) singular values of ``W`` descending (mpmath, as floats), ``sigma_float64``
    the same by LAPACK, ``beta`` the certified bound on ``m`` Hessian eigenvalues, ``dim`` = m,
    ``lambda_max`` (float64) and ``beta / lambda_max``."""

    sigma: np.ndarray
    sigma_float64: np.ndarray
    sigma_min_str: str
    beta: float
    dim: int
    lambda_max: float
    ratio: float


def parameter_near_kernel(dataset: TeacherDataset, theta: np.ndarray, dps: int = 40) -> NearKernel:
    """The bound of the module docstring at ``theta`` (a point of the manifold, e.g.
    ``lsa_theory.dynamics.construction(dataset, c)``), ``W`` of shape (F, p)."""
    from .manifold import lambda_max

    F = dataset.n_frames
    W = dataset.wt / np.sqrt(F)
    with mpmath.workdps(dps):
        s = mpmath.svd_r(mpmath.matrix(W.tolist()), compute_uv=False)
        sig = sorted((s[i] for i in range(len(s))), reverse=True)
        sig_min = sig[-1]
        sig_min_str = mpmath.nstr(sig_min, 20)
    A, _ = unpack(theta, shapes(dataset))
    norms = np.linalg.norm(A @ dataset.Sigma, ord=2, axis=(1, 2))
    beta = float(norms.max() ** 2 * (1 + 1e-8)) * float(sig_min) ** 2
    lam = lambda_max(dataset, theta)
    return NearKernel(
        sigma=np.array([float(x) for x in sig]),
        sigma_float64=np.linalg.svd(W, compute_uv=False),
        sigma_min_str=sig_min_str,
        beta=beta,
        dim=shapes(dataset).m,
        lambda_max=lam,
        ratio=beta / lam,
    )


def extended_precision_loss(dataset: TeacherDataset, theta: np.ndarray, dps: int = 40) -> mpmath.mpf:
    """(M1) ``L = (1/2F) sum_f ||A Sigma_f B wt_f - y_f||^2`` at the float64 ``theta`` and data, every
    product and sum in mpmath at ``dps`` digits: the loss of that exact point, free of float64
    cancellation (which puts a floor near 1e-32 on :func:`lsa_theory.dynamics.loss`). ``O(F m (m + k + p))``
    mpmath operations (seconds at d = 36, F = 200)."""
    A, B = unpack(theta, shapes(dataset))
    with mpmath.workdps(dps):
        Am, Bm = mpmath.matrix(A.tolist()), mpmath.matrix(B.tolist())
        total = mpmath.mpf(0)
        for f in range(dataset.n_frames):
            u = mpmath.matrix(dataset.Sigma[f].tolist()) * (Bm * mpmath.matrix(dataset.wt[f].tolist()))
            e = Am * u - mpmath.matrix(dataset.y[f].tolist())
            total += mpmath.fsum(x * x for x in e)
        return total / (2 * dataset.n_frames)
