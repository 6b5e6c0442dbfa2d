r"""The optimal manifold (M4), its tangent space, the Hessian spectrum and richness (M5), and the
conservation law (M3).

(M4) With ``(A*, B*) = (Vbar21*, P12*)`` of (S3)/(A3) and ``U`` (m x r) an orthonormal basis of the
directions the data cannot see (``U^T x_i = 0`` for every context column of the sample, i.e. the
null space of ``mean_f Sigma_f``), every point

.. math:: A = A^*/c + V_a U^\top, \qquad B = c B^* + U Y_b^\top, \qquad c \ne 0,

is optimal, since ``Sigma_f U = 0``; so is ``B + X W^T`` for ``W`` (p x s) a basis of the
parameter-column blind spot ``{v : v^T wt_f = 0 for every frame}`` (few frames, or parameters that
stay in a subspace). Its tangent space is spanned by the scaling direction ``(-A, B)``, the
``r (k + p)`` invisible directions ``(v u^T, 0)``, ``(0, u y^T)`` and the ``m s`` blind-spot
directions ``(0, x v^T)`` — built here from the data, never from the Hessian. (M5) asks that
the Hessian kernel be exactly this tangent (Morse–Bott); [LL]'s condition is ``r = s = 0`` (scaling
only). :func:`hessian_spectrum` counts the kernel with a float64 threshold; :mod:`lsa_theory.dynamics.certify`
decides it exactly.

(M3) Both ``||A (I - U U^T)||^2 - ||(I - U U^T) B||^2`` and the invisible parts ``A U``,
``U^T B`` are conserved by the gradient flow, so the limit's scale is predicted by
``||A*_v||^2 / c^2 - c^2 ||B*_v||^2 = Q_v(0)`` (``_v``: visible part).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from lsa_theory.checks import as_float_array

from .data import TeacherDataset
from .objective import construction, hessian, hvp_operator, pack, shapes, unpack

__all__ = [
    "KERNEL_RTOL",
    "NULL_RTOL",
    "invisible_directions",
    "parameter_blind_spots",
    "tangent_space",
    "Spectrum",
    "hessian_spectrum",
    "DENSE_MAX",
    "lambda_max",
    "Richness",
    "rank_bound_warning",
    "richness",
    "distance_to_manifold",
    "conserved",
    "predict_scale",
    "nearest_manifold_point",
]

#: An eigenvalue of ``mean_f Sigma_f`` below ``NULL_RTOL * max`` marks an invisible direction.
NULL_RTOL = 1e-10
#: A Hessian eigenvalue with ``|lambda| <= KERNEL_RTOL * lambda_max`` counts as kernel. Round-off
#: puts kernel eigenvalues near 1e-16 lambda_max; the smallest genuine ones seen at S = A = 2 are
#: about 1e-11 lambda_max (one MDP, 200 frames), so 1e-13 splits the two with margin either side.
KERNEL_RTOL = 1e-13
#: :func:`lambda_max` switches from the dense Hessian to Lanczos on :func:`hvp` above this many
#: parameters (d = 16 at S x A features has 1089; d = 36 has 5329, where the dense Hessian and its
#: eigenvalues take seconds and 230 MB while 30-60 products take milliseconds).
DENSE_MAX = 1500


def invisible_directions(dataset: TeacherDataset, rtol: float = NULL_RTOL) -> np.ndarray:
    """(m, r) orthonormal basis of ``{u : u^T x_i = 0 for all context columns}`` (M4)."""
    shapes(dataset)  # ValueError naming ``dataset`` unless teacher data
    lam, vec = np.linalg.eigh(dataset.Sigma.mean(axis=0))
    return vec[:, lam <= rtol * lam.max()]


def parameter_blind_spots(dataset: TeacherDataset, rtol: float = NULL_RTOL) -> np.ndarray:
    """(p, s) orthonormal basis of the parameter-column blind spot ``{v : v^T wt_f = 0 for every
    frame f}`` (M4): the null space of ``mean_f wt_f wt_f^T`` (eigenvalues ``<= rtol * max``)."""
    lam, vec = np.linalg.eigh(dataset.wt.T @ dataset.wt / dataset.n_frames)
    return vec[:, lam <= rtol * lam.max()]


def _orthonormal(M: np.ndarray, rtol: float = 1e-10) -> np.ndarray:
    if M.shape[1] == 0:
        return M
    Uq, s, _ = np.linalg.svd(M, full_matrices=False)
    return Uq[:, s > rtol * s.max()]


def tangent_space(
    dataset: TeacherDataset, theta: np.ndarray, U: np.ndarray | None = None, W: np.ndarray | None = None
) -> np.ndarray:
    """(size, t) orthonormal basis of the tangent of the optimal manifold at ``theta`` (M4):
    the scaling direction ``(-A, B)``, the invisible directions ``(v u^T, 0)``, ``(0, u y^T)``
    (``u`` in ``U``, default :func:`invisible_directions`) and the parameter-column blind spot
    ``(0, x v^T)`` (``v`` in ``W``, default :func:`parameter_blind_spots`; ``x`` any m-vector)."""
    sh = shapes(dataset)
    A, B = unpack(theta, sh)
    U = invisible_directions(dataset) if U is None else U
    W = parameter_blind_spots(dataset) if W is None else W
    vecs = [pack(-A, B)]
    for v in W.T:
        for j in range(sh.m):
            dB = np.zeros((sh.m, sh.p))
            dB[j] = v
            vecs.append(pack(np.zeros((sh.k, sh.m)), dB))
    for u in U.T:
        for i in range(sh.k):
            dA = np.zeros((sh.k, sh.m))
            dA[i] = u
            vecs.append(pack(dA, np.zeros((sh.m, sh.p))))
        for q in range(sh.p):
            dB = np.zeros((sh.m, sh.p))
            dB[:, q] = u
            vecs.append(pack(np.zeros((sh.k, sh.m)), dB))
    return _orthonormal(np.stack(vecs, axis=1))


@dataclass(frozen=True)
class Spectrum:
    """Eigen-decomposition of the Hessian: ``eigenvalues`` ascending, ``eigenvectors`` (columns),
    ``ker_dim`` eigenvalues with ``|lambda| <= threshold = rtol * lambda_max``, ``lambda_min_plus``
    the smallest eigenvalue above the threshold, ``kernel_max`` the largest ``|lambda|`` counted as
    kernel (its distance from ``lambda_min_plus`` shows how clear the split is)."""

    eigenvalues: np.ndarray
    eigenvectors: np.ndarray
    ker_dim: int
    threshold: float
    lambda_min_plus: float
    lambda_max: float
    kernel_max: float

    @property
    def kernel(self) -> np.ndarray:
        """(size, ker_dim) orthonormal kernel basis."""
        return self.eigenvectors[:, np.abs(self.eigenvalues) <= self.threshold]


def hessian_spectrum(dataset: TeacherDataset, theta: np.ndarray, rtol: float = KERNEL_RTOL) -> Spectrum:
    """Spectrum of the Hessian of (M1) at ``theta`` with a numerical kernel at ``rtol * lambda_max``."""
    lam, vec = np.linalg.eigh(hessian(dataset, theta))
    lam_max = float(np.abs(lam).max())
    thr = rtol * lam_max
    ker = np.abs(lam) <= thr
    pos = lam[lam > thr]
    return Spectrum(
        eigenvalues=lam,
        eigenvectors=vec,
        ker_dim=int(ker.sum()),
        threshold=thr,
        lambda_min_plus=float(pos.min()) if pos.size else float("nan"),
        lambda_max=lam_max,
        kernel_max=float(np.abs(lam[ker]).max()) if ker.any() else 0.0,
    )


def lambda_max(
    dataset: TeacherDataset, theta: np.ndarray, method: str = "auto", rtol: float = 1e-10
) -> float:
    """Largest ``|lambda|`` of the Hessian of (M1) at ``theta`` (the step-size limit
    ``eta < 2 / lambda_max`` of gradient descent).

    ``method="dense"``: all eigenvalues of :func:`hessian`; ``"lanczos"``: ARPACK (``eigsh``, largest
    magnitude, relative tolerance ``rtol``) on the matrix-free :func:`hvp_operator`; ``"auto"``: dense up to
    :data:`DENSE_MAX` parameters, Lanczos above."""
    from scipy.sparse.linalg import LinearOperator, eigsh

    if method not in ("auto", "dense", "lanczos"):
        raise ValueError(f"method: expected 'auto', 'dense' or 'lanczos', got {method!r}")
    theta = np.asarray(theta, dtype=np.float64)
    size = shapes(dataset).size
    if method == "dense" or (method == "auto" and size <= DENSE_MAX):
        return float(np.abs(np.linalg.eigvalsh(hessian(dataset, theta))).max())
    op = LinearOperator((size, size), matvec=hvp_operator(dataset, theta), dtype=np.float64)
    v0 = np.ones(size) / np.sqrt(size)  # fixed start: reproducible
    return float(np.abs(eigsh(op, k=1, which="LM", tol=rtol, v0=v0, return_eigenvectors=False)).max())


@dataclass(frozen=True)
class Richness:
    """(M5) at a point of the manifold: Hessian ``ker_dim`` (thresholded; see
    :mod:`lsa_theory.dynamics.certify` for the exact count) versus (M4) ``tangent_dim``, with
    ``invisible_dim``
    data directions and ``blind_dim`` parameter-column blind-spot directions;
    ``subspace_gap = ||P_ker - P_tangent||_2`` (0 when the two subspaces coincide);
    ``morse_bott`` when the dimensions agree and the gap is below ``gap_tol``, the Davis-Kahan
    bound on how far round-off can turn a computed kernel, ``10 sqrt(size) eps lambda_max /
    lambda_min^+`` (at least 1e-8); ``scaling_only`` when the tangent is the scaling direction
    alone ([LL]'s condition)."""

    ker_dim: int
    tangent_dim: int
    invisible_dim: int
    subspace_gap: float
    gap_tol: float
    morse_bott: bool
    scaling_only: bool
    lambda_min_plus: float
    lambda_max: float
    kernel_max: float
    blind_dim: int = 0


def rank_bound(dataset: TeacherDataset) -> tuple[int, int]:
    """``(F k_out, size)``: the Hessian at an exact zero of (M1) has rank at most ``F k_out``
    (frames times outputs, i.e. k MDPs x frames x d for SARSA) against ``size`` parameters."""
    return dataset.n_frames * dataset.y.shape[1], shapes(dataset).size


def rank_bound_warning(dataset: TeacherDataset) -> str | None:
    """The rank bound of (M5): at a zero of (M1) the Hessian is ``J^T J / F`` with ``J`` of
    ``F k_out`` rows (k MDPs x frames x d for SARSA), so its kernel is at least ``size - F k_out``
    whatever the tangent (:func:`rank_bound`); the warning text when ``F k_out < size``, else None."""
    rows, size = rank_bound(dataset)
    if rows >= size:
        return None
    return (
        f"rank bound: {dataset.n_frames} frames x {dataset.y.shape[1]} outputs = {rows} < {size} parameters, "
        f"so the Hessian kernel at the manifold is at least {size - rows} whatever the (M4) tangent"
    )


def _gap_tol(size: int, lam_max: float, lam_min_plus: float) -> float:
    """The Davis-Kahan bound on how far round-off can turn a computed kernel of a ``size``-square
    Hessian, ``max(1e-8, 10 sqrt(size) eps lambda_max / lambda_min^+)`` (:class:`Richness`)."""
    return max(1e-8, 10 * np.sqrt(size) * np.finfo(np.float64).eps * lam_max / lam_min_plus)


def richness(dataset: TeacherDataset, theta: np.ndarray | None = None, c: float = 1.0) -> Richness:
    """(M5) at ``theta`` (default: the construction ``(c P*, V*/c)``); warns (RuntimeWarning) when
    the data are below the rank bound (:func:`rank_bound_warning`)."""
    shapes(dataset)  # ValueError naming ``dataset`` unless teacher data
    msg = rank_bound_warning(dataset)
    if msg:
        warnings.warn(msg, RuntimeWarning, stacklevel=2)
    theta = construction(dataset, c) if theta is None else theta
    U = invisible_directions(dataset)
    W = parameter_blind_spots(dataset)
    T = tangent_space(dataset, theta, U, W)
    spec = hessian_spectrum(dataset, theta)
    K = spec.kernel
    gap = float(np.linalg.norm(K @ K.T - T @ T.T, 2)) if K.shape[1] == T.shape[1] else float("inf")
    gap_tol = _gap_tol(theta.size, spec.lambda_max, spec.lambda_min_plus)
    return Richness(
        ker_dim=spec.ker_dim,
        tangent_dim=T.shape[1],
        invisible_dim=U.shape[1],
        subspace_gap=gap,
        gap_tol=float(gap_tol),
        morse_bott=bool(spec.ker_dim == T.shape[1] and gap < gap_tol),
        scaling_only=T.shape[1] == 1,
        lambda_min_plus=spec.lambda_min_plus,
        lambda_max=spec.lambda_max,
        kernel_max=spec.kernel_max,
        blind_dim=W.shape[1],
    )


def _visible(dataset: TeacherDataset, theta: np.ndarray, U: np.ndarray):
    sh = shapes(dataset)
    A, B = unpack(theta, sh)
    Pv = np.eye(sh.m) - U @ U.T
    A0, B0 = unpack(construction(dataset, 1.0), sh)
    return A @ Pv, Pv @ B, A0 @ Pv, Pv @ B0


def distance_to_manifold(
    dataset: TeacherDataset, theta: np.ndarray, U: np.ndarray | None = None
) -> tuple[float, float]:
    """``(dist, c)``: Euclidean distance from ``theta`` to the manifold (M4), minimising over the
    scale ``c`` (exactly, as a root of ``b2 c^4 - b1 c^3 + a1 c - a2``) and over the invisible
    directions (by projection), and the minimising ``c``."""
    U = invisible_directions(dataset) if U is None else U
    Av, Bv, A0, B0 = _visible(dataset, theta, U)
    a1, a2 = np.sum(Av * A0), np.sum(A0 * A0)
    b1, b2 = np.sum(Bv * B0), np.sum(B0 * B0)
    roots = np.roots([b2, -b1, 0.0, a1, -a2])
    cands = [r.real for r in roots if abs(r.imag) <= 1e-9 * max(1.0, abs(r)) and abs(r.real) > 0]
    best = (float("inf"), float("nan"))
    for c in cands:
        # refine with Newton on f'(c) c^3 (the quartic), then evaluate the exact squared distance
        for _ in range(3):
            f = b2 * c**4 - b1 * c**3 + a1 * c - a2
            df = 4 * b2 * c**3 - 3 * b1 * c**2 + a1
            if df != 0:
                c -= f / df
        d2 = np.sum((Av - A0 / c) ** 2) + np.sum((Bv - c * B0) ** 2)
        if d2 < best[0]:
            best = (float(d2), float(c))
    return float(np.sqrt(max(best[0], 0.0))), best[1]


def conserved(dataset: TeacherDataset, theta: np.ndarray) -> float:
    """(M3): ``||A||_F^2 - ||B||_F^2``, conserved along the gradient flow."""
    A, B = unpack(theta, shapes(dataset))
    return float(np.sum(A * A) - np.sum(B * B))


def predict_scale(dataset: TeacherDataset, theta0: np.ndarray, U: np.ndarray | None = None) -> float:
    """(M3) prediction of the limit's scale ``c`` from the start ``theta0``: the positive root
    ``c^2`` of ``||B*_v||^2 c^4 + Q_v c^2 - ||A*_v||^2 = 0`` with ``Q_v`` the conserved visible
    quantity, and the sign of the nearest manifold point's ``c`` at ``theta0``.

    The root is taken in the form without cancellation (``2 a / (Q + sqrt(Q^2 + 4ab))`` for
    ``Q > 0``): ``(-Q + sqrt(Q^2 + 4ab)) / (2b)`` rounded to 0 for a far start (relative radius
    1e8, ``Q ~ 1e16 a``) and the construction at ``c = 0`` was refused (issue 24, item 9)."""
    theta0 = as_float_array(theta0, "theta0")
    if theta0.shape != (shapes(dataset).size,):
        raise ValueError(f"theta0: expected shape ({shapes(dataset).size},), got {theta0.shape}")
    U = invisible_directions(dataset) if U is None else U
    Av, Bv, A0, B0 = _visible(dataset, theta0, U)
    Q = np.sum(Av * Av) - np.sum(Bv * Bv)
    a, b = np.sum(A0 * A0), np.sum(B0 * B0)
    root = np.sqrt(Q * Q + 4 * a * b)
    c2 = 2 * a / (Q + root) if Q > 0 else (-Q + root) / (2 * b)
    _, c_near = distance_to_manifold(dataset, theta0, U)
    return float(np.sign(c_near) * np.sqrt(c2))


def nearest_manifold_point(
    dataset: TeacherDataset, theta: np.ndarray, U: np.ndarray | None = None
) -> np.ndarray:
    """(size,) the point of the manifold (M4) nearest to ``theta``: ``A = A*/c + A U U^T``,
    ``B = c B* + U U^T B`` with the ``c`` of :func:`distance_to_manifold` (the limit a flow stopped
    at ``theta`` is heading for, up to the remaining distance)."""
    U = invisible_directions(dataset) if U is None else U
    sh = shapes(dataset)
    A, B = unpack(theta, sh)
    A0, B0 = unpack(construction(dataset, 1.0), sh)
    Pv = np.eye(sh.m) - U @ U.T
    c = distance_to_manifold(dataset, theta, U)[1]
    return pack(A0 @ Pv / c + A @ U @ U.T, c * Pv @ B0 + U @ U.T @ B)
