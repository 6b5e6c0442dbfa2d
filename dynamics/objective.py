r"""The teacher-mimicking objective (M1) on the effective parameters (M2), in float64.

On the invariant set ``{P22 = 0, Vbar22 = 0}`` with ``A = Vbar21`` (k x m) and ``B = P12`` (m x p),

.. math::

    L(A, B) = \frac{1}{2F} \sum_f \|e_f\|^2, \qquad e_f = A \Sigma_f B \tilde w_f - y_f,

    \nabla_A L = \tfrac1F \sum_f e_f (\Sigma_f B \tilde w_f)^\top, \qquad
    \nabla_B L = \tfrac1F \sum_f \Sigma_f A^\top e_f \tilde w_f^\top .

The parameter vector is ``theta = [vec(A); vec(B)]`` (row-major), of length ``k m + m p``. The
Hessian is closed form: with ``u_f = Sigma_f B wt_f`` and ``G_f = A Sigma_f``,
``H_AA = I_k (x) mean(u u^T)``, ``H_BB[(l,q),(l',q')] = mean (G^T G)_{l l'} wt_q wt_q'`` and
``H_AB[(i,j),(l,q)] = mean (u_j G_{il} + e_i Sigma_{jl}) wt_q`` (the second term is the only
non-Gauss-Newton part; the loss is linear-quadratic in each factor).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import lsa_theory as lt
from lsa_theory.checks import as_float_array, check_real

from .data import TeacherDataset

__all__ = [
    "Shapes",
    "shapes",
    "pack",
    "unpack",
    "construction",
    "loss",
    "loss_and_grad",
    "relative_error",
    "loss_and_grad_error_bound",
    "hessian",
    "HessianBlocks",
    "hessian_blocks",
    "hvp",
    "hvp_operator",
    "to_full",
    "from_full",
    "full_loss_torch",
    "finite_difference_grad",
]


@dataclass(frozen=True)
class Shapes:
    """``A`` is (k, m), ``B`` is (m, p); ``size = k m + m p``."""

    k: int
    m: int
    p: int

    @property
    def size(self) -> int:
        return self.k * self.m + self.m * self.p


def shapes(dataset: TeacherDataset) -> Shapes:
    """Effective parameter shapes: those a dataset declares (``effective_shapes``, e.g.
    :class:`lsa_theory.dynamics.bilinear.BilinearDataset`), else of its layout: k = d + d_pi, m = 2d+1+d_pi,
    p = 1+d+d_pi."""
    declared = getattr(dataset, "effective_shapes", None)
    if declared is not None:
        return declared
    lay = getattr(dataset, "layout", None)
    if lay is None:
        raise ValueError(
            f"dataset: expected a TeacherDataset (teacher_dataset), got {type(dataset).__name__}"
        )
    return Shapes(lay.k, lay.m, lay.D - lay.m)


def pack(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """``theta = [vec(A); vec(B)]`` (row-major)."""
    return np.concatenate([np.asarray(A, dtype=np.float64).ravel(), np.asarray(B, dtype=np.float64).ravel()])


def unpack(theta: np.ndarray, sh: Shapes) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`pack`; ValueError on a wrong length, non-finite entries or a dtype that is
    not real (complex, bool, object, strings are refused, never cast)."""
    theta = as_float_array(theta, "theta")
    if theta.shape != (sh.size,):
        raise ValueError(f"theta: expected shape ({sh.size},), got {theta.shape}")
    km = sh.k * sh.m
    return theta[:km].reshape(sh.k, sh.m), theta[km:].reshape(sh.m, sh.p)


def construction(dataset: TeacherDataset, c: float = 1.0) -> np.ndarray:
    """``theta*`` of ``(c P12*, Vbar21*/c)``: the (L2) blocks of the dataset's algorithm's
    construction ((S3) for SARSA, (A3) for the actor-critics)."""
    if hasattr(dataset, "effective_shapes"):  # a BilinearDataset: the declaration's blocks
        P, V = dataset.alg.construction(dataset.sizes, dataset.hyper, c, 1)[0]
        A, B = dataset.alg.effective_blocks(P, V, dataset.sizes)
        return pack(A, B)
    spec = dataset.spec
    P, V = spec.alg.construction_blocks(spec.dims, spec.hyper, c)
    return from_full(P, V, dataset.layout)


def _residuals(dataset: TeacherDataset, A: np.ndarray, B: np.ndarray):
    u = (dataset.Sigma @ (dataset.wt @ B.T)[:, :, None])[:, :, 0]  # Sigma_f B wt_f, (F, m)
    e = u @ A.T - dataset.y
    return u, e


def loss(dataset: TeacherDataset, theta: np.ndarray) -> float:
    """(M1)/(M2): ``L = (1/2F) sum_f ||A Sigma_f B wt_f - y_f||^2``."""
    A, B = unpack(theta, shapes(dataset))
    _, e = _residuals(dataset, A, B)
    return 0.5 * float(np.mean(np.sum(e * e, axis=1)))


def relative_error(dataset: TeacherDataset, theta: np.ndarray) -> float:
    """Relative teacher-matching error ``sqrt(mean_f ||e_f||^2 / mean_f ||y_f||^2)`` of (M2)."""
    A, B = unpack(theta, shapes(dataset))
    _, e = _residuals(dataset, A, B)
    return float(np.sqrt(np.mean(np.sum(e * e, 1)) / np.mean(np.sum(dataset.y**2, 1))))


def loss_and_grad(dataset: TeacherDataset, theta: np.ndarray) -> tuple[float, np.ndarray]:
    """(M2): ``(L, grad)`` with ``grad = [vec(mean e u^T); vec(mean Sigma A^T e wt^T)]``."""
    A, B = unpack(as_float_array(theta, "theta"), shapes(dataset))  # complex/bool refused, not cast
    u, e = _residuals(dataset, A, B)
    F = dataset.n_frames
    gA = e.T @ u / F
    gB = (dataset.Sigma @ (e @ A)[:, :, None])[:, :, 0].T @ dataset.wt / F  # mean Sigma A^T e wt^T
    return 0.5 * float(np.mean(np.sum(e * e, axis=1))), pack(gA, gB)


def loss_and_grad_error_bound(dataset: TeacherDataset, theta: np.ndarray) -> tuple[float, float]:
    r"""Round-off bounds ``(loss_err, grad_err)`` of :func:`loss_and_grad` at ``theta`` as computed in
    float64: ``|fl(L) - L| <= loss_err`` and ``||fl(grad L) - grad L||_2 <= grad_err``, with ``L``,
    ``grad L`` the exact (M1)/(M2) values at the float64 ``theta`` and data (Higham's bounds of
    :mod:`lsa_theory.roundoff`, valid for every summation order, hence on every CPU).

    Entrywise, with ``M_f = |A| |Sigma_f| |B| |wt_f|`` (k,) and ``gamma_j`` of
    :func:`lsa_theory.roundoff.gamma`:
    ``u_f = Sigma_f (B wt_f)`` has error ``du_f <= gamma_{m+p} |Sigma_f| |B| |wt_f|``, the residual
    ``e_f = A u_f - y_f`` has ``de_f <= gamma_{2m+p+1} (M_f + |y_f|)`` (three chained products and
    a subtraction, Higham Lemma 3.3); then, with ``e``, ``u`` the computed values,

    .. math:: |\mathrm{fl}(L) - L| \le (1 + \gamma_{k+F}) \big(\gamma_{k+F} L_{\mathrm{fl}}
              + \tfrac{1}{2F} \textstyle\sum_f \delta e_f^\top (2 |e_f| + \delta e_f)\big),

    ``|d grad_A| <= (gamma_{F+1} |e|^T |u| + de^T |u| + (|e| + de)^T du) / F`` and
    ``|d grad_B| <= (1/F) sum_f |Sigma_f| |A|^T (gamma_{k+m+F+1} |e_f| + de_f) |wt_f|^T``, whose
    2-norm is ``grad_err``. Near the manifold ``de`` is of order ``u |y|`` while ``e -> 0``: the
    relative error of ``L`` grows like ``2 de / |e|``, which is what sizes the fit windows of
    :mod:`lsa_theory.dynamics.rate_fit` and the monotonicity and PL tolerances. Shapes as
    :func:`loss_and_grad`;
    cost about that of two gradients."""
    from lsa_theory.roundoff import gamma

    sh = shapes(dataset)
    A, B = unpack(theta, sh)
    u, e = _residuals(dataset, A, B)
    F = dataset.n_frames
    Sig, wt = np.abs(dataset.Sigma), np.abs(dataset.wt)
    aA, aB, ae, au = np.abs(A), np.abs(B), np.abs(e), np.abs(u)
    su = (Sig @ (wt @ aB.T)[:, :, None])[:, :, 0]  # |Sigma_f| |B| |wt_f|, (F, m)
    du = gamma(sh.m + sh.p) * su
    de = gamma(2 * sh.m + sh.p + 1) * (su @ aA.T + np.abs(dataset.y))
    g = gamma(sh.k + F)
    L = 0.5 * float(np.mean(np.sum(e * e, axis=1)))
    loss_err = (1 + g) * (g * L + 0.5 * float(np.mean(np.sum(de * (2 * ae + de), axis=1))))
    dgA = (gamma(F + 1) * (ae.T @ au) + de.T @ au + (ae + de).T @ du) / F
    z = gamma(sh.k + sh.m + F + 1) * ae + de
    dgB = (Sig @ (z @ aA)[:, :, None])[:, :, 0].T @ wt / F
    grad_err = float(np.sqrt(np.sum(dgA**2) + np.sum(dgB**2))) * (1 + gamma(sh.size))
    return loss_err, grad_err


@dataclass(frozen=True, eq=False)
class HessianBlocks:
    """The blocks of the Hessian of (M1) (module docstring): ``H_AA = I_k (x) M`` with ``M`` (m, m),
    ``HAB`` (k m, m p) and ``HBB`` (m p, m p), in the order of ``theta = [vec(A); vec(B)]``."""

    M: np.ndarray
    HAB: np.ndarray
    HBB: np.ndarray
    shapes: Shapes

    def dense(self) -> np.ndarray:
        """The assembled (size, size) symmetric Hessian."""
        sh = self.shapes
        km = sh.k * sh.m
        H = np.empty((sh.size, sh.size))
        H[:km, :km] = np.kron(np.eye(sh.k), self.M)
        H[:km, km:] = self.HAB
        H[km:, :km] = self.HAB.T
        H[km:, km:] = self.HBB
        return H


def hessian_blocks(dataset: TeacherDataset, theta: np.ndarray) -> HessianBlocks:
    """Closed-form Hessian blocks of (M1) at ``theta`` (module docstring), each block one matrix
    product over the F frames: ``M = mean u u^T``, ``HBB = mean (G^T G) (x) wt wt^T`` and
    ``HAB = mean (u (x) wt) G + (e (x) wt) Sigma`` with ``u_f = Sigma_f B wt_f``, ``G_f = A Sigma_f``.

    Costs ``O(F m^2 p (m + k))`` time (about 1 s at the [LL] size d = 36, F = 1000); the A-A block is
    kept as its one ``m x m`` matrix."""
    sh = shapes(dataset)
    k, m, p = sh.k, sh.m, sh.p
    A, B = unpack(theta, sh)
    u, e = _residuals(dataset, A, B)
    F = dataset.n_frames
    wt, Sig = dataset.wt, dataset.Sigma
    G = A @ Sig  # A Sigma_f, (F, k, m)
    GtG = np.matmul(G.transpose(0, 2, 1), G).reshape(F, m * m)  # [f, (l, l')]
    W2 = (wt[:, :, None] * wt[:, None, :]).reshape(F, p * p)  # [f, (q, q')]
    HBB = (GtG.T @ W2).reshape(m, m, p, p).transpose(0, 2, 1, 3).reshape(m * p, m * p)
    UW = (u[:, :, None] * wt[:, None, :]).reshape(F, m * p)  # [f, (j, q)]
    HAB = (
        (G.reshape(F, k * m).T @ UW).reshape(k, m, m, p).transpose(0, 2, 1, 3)
    )  # [i, l, j, q] -> [i, j, l, q]
    EW = (e[:, :, None] * wt[:, None, :]).reshape(F, k * p)  # [f, (i, q)]
    HAB += (EW.T @ Sig.reshape(F, m * m)).reshape(k, p, m, m).transpose(0, 2, 3, 1)  # [i, q, j, l] -> ...
    return HessianBlocks(M=u.T @ u / F, HAB=HAB.reshape(k * m, m * p) / F, HBB=HBB / F, shapes=sh)


def hessian(dataset: TeacherDataset, theta: np.ndarray) -> np.ndarray:
    """Closed-form Hessian of (M1) in ``theta`` (size x size, symmetric); see the module docstring
    and :func:`hessian_blocks`, which it assembles.

    Costs ``O(F m^2 p^2)`` time and ``size^2`` memory (5329^2 at the [LL] size d = 36); for products
    with vectors use :func:`hvp` instead (``O(F m^2)``, like one gradient)."""
    return hessian_blocks(dataset, theta).dense()


def hvp_operator(dataset: TeacherDataset, theta: np.ndarray):
    """``v -> H(theta) v`` of (M1) without forming ``H``: (size,) -> (size,), with the residuals
    ``u_f``, ``e_f`` at ``theta`` computed once for all products (see :func:`hvp`)."""
    sh = shapes(dataset)
    A, B = unpack(theta, sh)
    u, e = _residuals(dataset, A, B)
    F = dataset.n_frames

    def apply(v: np.ndarray) -> np.ndarray:
        v = as_float_array(v, "v")  # complex/bool/object/strings refused, not cast
        if v.shape != (sh.size,):
            raise ValueError(f"v: expected {sh.size} entries, got shape {v.shape}")
        dA, dB = unpack(v, sh)
        du = (dataset.Sigma @ (dataset.wt @ dB.T)[:, :, None])[:, :, 0]
        de = u @ dA.T + du @ A.T
        hA = (de.T @ u + e.T @ du) / F
        hB = (dataset.Sigma @ (e @ dA + de @ A)[:, :, None])[:, :, 0].T @ dataset.wt / F
        return pack(hA, hB)

    return apply


def hvp(dataset: TeacherDataset, theta: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Hessian-vector product ``H(theta) v`` of (M1) without forming ``H`` (size,).

    With ``v = [vec(dA); vec(dB)]``, ``du_f = Sigma_f dB wt_f`` and ``de_f = dA u_f + A du_f``:
    ``H v = [vec(mean (de u^T + e du^T)); vec(mean Sigma (dA^T e + A^T de) wt^T)]``, the directional
    derivative of :func:`loss_and_grad`'s gradient; cost ``O(F (m^2 + k m + m p))``, like one gradient.
    For many products at one ``theta`` use :func:`hvp_operator`.
    """
    return hvp_operator(dataset, theta)(v)


def to_full(theta: np.ndarray, layout: lt.Layout) -> tuple[np.ndarray, np.ndarray]:
    """Full ``(P, V)`` (D x D) with ``P12 = B``, ``Vbar21 = A`` and every other entry zero."""
    sh = Shapes(layout.k, layout.m, layout.D - layout.m)
    A, B = unpack(theta, sh)
    P = np.zeros((layout.D, layout.D))
    V = np.zeros((layout.D, layout.D))
    P[: layout.m, layout.m :] = B
    V[layout.m + 1 :, : layout.m] = A
    return P, V


def from_full(P: np.ndarray, V: np.ndarray, layout: lt.Layout) -> np.ndarray:
    """``theta`` of the (L2) blocks ``(Vbar21, P12)`` of full ``(P, V)``; ValueError unless
    ``P22 = 0`` and ``Vbar22 = 0`` (off the invariant set of (M2) the effective view is incomplete)."""
    P = as_float_array(P, "P", ndim=2)
    V = as_float_array(V, "V", ndim=2)
    b = layout.blocks(P, V)
    if np.abs(b["P22"]).max() > 0 or np.abs(b["Vbar22"]).max() > 0:
        raise ValueError("P, V: P22 and Vbar22 must be zero for the effective parameterisation (M2)")
    return pack(b["Vbar21"], b["P12"])


def full_loss_torch(P, V, H, targets):
    """(M1) through the raw block (L1) in torch: ``(1/2F) sum_f ||TF(H_f) - target_f||^2``.

    ``P``, ``V`` (D, D) torch tensors, ``H`` (F, D, n+1) prompts, ``targets`` (F, k) the teacher's
    updated parameters. Differentiable in ``P`` and ``V``.
    """
    out = lt.readout(lt.lsa_block(H, P, V), targets.shape[-1])
    return 0.5 * ((out - targets) ** 2).sum(dim=-1).mean()


def finite_difference_grad(f, theta: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """Central differences ``(f(theta + h e_i) - f(theta - h e_i)) / 2h``, error O(h^2)."""
    h = check_real(h, "h", low=0.0, low_open=True)
    theta = as_float_array(theta, "theta", ndim=1)
    g = np.empty_like(theta)
    for i in range(theta.size):
        t = theta.copy()
        t[i] += h
        fp = f(t)
        t[i] -= 2 * h
        g[i] = (fp - f(t)) / (2 * h)
    return g
