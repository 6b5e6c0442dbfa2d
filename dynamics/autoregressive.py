r"""The population objective of in-context autoregressive learning and its gradient flow: (AR6)-(AR9)
of docs/theory.md §9.

One causal layer on augmented tokens predicts ``shat_{t+1} = V S_t K z_t`` (AR3) with ``V`` (d, 2d),
``K`` (2d, 2d); the population loss over the rotation law (AR1) is

.. math:: L(V, K) = \frac1T \sum_{t=1}^T \mathbb E \|\hat s_{t+1} - s_{t+1}\|^2 .

- **Closed form** (AR6) for the GD class (AR4) with block-scalar ``A = blockdiag(a_k I_2)``,
  ``B = blockdiag(b_k I_2)``, either phase law (:func:`blockscalar_loss`); balanced and scalar,
  ``c = ab``: ``L(c) = (c/d - 1)^2 + (d - 1) Hbar_T c^2 / d^2`` (:func:`scalar_loss`),
  ``Hbar_T = H_T / T`` (:func:`hbar`).
- **Exact quadrature** for any ``(V, K)`` (:func:`quadrature`, :func:`loss_and_grad`): every entry
  of ``s_j`` is a trigonometric polynomial of degree ``j`` in each ``theta_k`` and 1 in each
  ``psi_k``; the squared error at position t has degree at most ``6T`` in each ``theta_k`` and 6 in
  each ``psi_k``, so the mean over uniform grids of ``6T + 1`` and 7 points per angle (any offset)
  is the exact expectation. **Monte Carlo** (:func:`monte_carlo_loss`) is the third check.
- (AR7) the GD-class minimiser ``c* = d / (1 + (d - 1) Hbar_T)``, ``L* = (d - 1) Hbar_T / (1 + (d -
  1) Hbar_T)`` (:func:`c_star`, :func:`loss_star`), random phase.
- (AR8) the invariant set ``Theta_6 = {V = [v1 I, v2 I], K = [[k11 I, k12 I], [k21 I, k22 I]]}``
  (:func:`theta6_blocks`); the GD point is ``v1 k21 = c*``, the rest 0 (balanced: :func:`gd_point_theta6`).
- (AR9) gradient flow of the GD class over all ``2 d^2`` entries of ``(A, B)``
  (:class:`GDClassObjective`, a problem object of :func:`lsa_theory.dynamics.gradient_flow`) and of
  the scalar pair ``(a, b)`` on the closed form (:class:`ScalarObjective`); the conserved
  ``a^2 - b^2``, the limit ``a_inf`` (:func:`predict_a_inf`) and the late rate (:func:`predicted_rate`).

Everything is float64 and pure; random functions take ``rng``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from lsa_theory.autoregressive import (
    PHASES,
    augmented_tokens,
    balanced_energies,
    powers,
    rotation,
    start_state,
)
from lsa_theory.checks import as_float_array, check_int, check_real, check_rng
from lsa_theory.constructions.algorithms.autoregressive import causal_predictions

from .objective import Shapes

__all__ = [
    "hbar",
    "scalar_loss",
    "c_star",
    "loss_star",
    "scalar_curvature",
    "blockscalar_loss",
    "Quadrature",
    "quadrature",
    "loss_and_grad",
    "population_loss",
    "monte_carlo_loss",
    "plain_cross_term",
    "gd_blocks",
    "theta6_blocks",
    "theta6_grad",
    "gd_point_theta6",
    "minimise",
    "theta6_projection",
    "GDClassObjective",
    "DenseObjective",
    "ScalarObjective",
    "predict_a_inf",
    "predicted_rate",
]


def hbar(T: int) -> float:
    """``Hbar_T = H_T / T``, ``H_T = sum_{t=1}^T 1/t``."""
    T = check_int(T, "T")
    return float(sum(1.0 / t for t in range(1, T + 1)) / T)


def _check_dT(d: Any, T: Any) -> tuple[int, int]:
    d = check_int(d, "d", minimum=2)
    if d % 2:
        raise ValueError(f"d: the rotation law needs an even d = 2m, got {d}")
    return d, check_int(T, "T")


def scalar_loss(c: float, d: int, T: int) -> float:
    """(AR6) balanced, ``A = aI``, ``B = bI``, ``c = ab``: ``(c/d - 1)^2 + (d - 1) Hbar_T c^2 / d^2``."""
    d, T = _check_dT(d, T)
    c = check_real(c, "c")
    return (c / d - 1.0) ** 2 + (d - 1) * hbar(T) * c * c / d**2


def c_star(d: int, T: int) -> float:
    """(AR7) ``c* = d / (1 + (d - 1) Hbar_T)``: the optimal step of one GD step from 0 (random phase)."""
    d, T = _check_dT(d, T)
    return d / (1.0 + (d - 1) * hbar(T))


def loss_star(d: int, T: int) -> float:
    """(AR7) ``L* = (d - 1) Hbar_T / (1 + (d - 1) Hbar_T)``, the GD class's minimum (random phase)."""
    d, T = _check_dT(d, T)
    x = (d - 1) * hbar(T)
    return x / (1.0 + x)


def scalar_curvature(d: int, T: int) -> float:
    """(AR9) ``l''(c) = 2 (1 + (d - 1) Hbar_T) / d^2`` of :func:`scalar_loss` (a constant)."""
    d, T = _check_dT(d, T)
    return 2.0 * (1.0 + (d - 1) * hbar(T)) / d**2


def blockscalar_loss(a: Any, b: Any, energies: Any, T: int) -> float:
    """(AR6) closed form for ``A = blockdiag(a_k I_2)``, ``B = blockdiag(b_k I_2)`` (either phase law):
    ``(1/T) sum_t L_t``, ``L_t = sum_k 2 rho_k (a_k b_k rho_k - 1)^2 + (2/t) sum_k a_k^2 rho_k
    [b_k^2 rho_k^2 + 2 sum_{l != k} b_l^2 rho_l^2]``, ``rho_k = r_k^2 / 2``; ``a``, ``b``,
    ``energies`` ``r_k^2`` (m,)."""
    T = check_int(T, "T")
    a, b = as_float_array(a, "a", ndim=1), as_float_array(b, "b", ndim=1)
    r2 = as_float_array(energies, "energies", ndim=1)
    if not (a.shape == b.shape == r2.shape):
        raise ValueError(f"a, b, energies: expected one length m each, got {a.shape}, {b.shape}, {r2.shape}")
    rho = r2 / 2.0
    bias = float(np.sum(2 * rho * (a * b * rho - 1.0) ** 2))
    q = b * b * rho * rho
    var = float(np.sum(a * a * rho * (q + 2 * (q.sum() - q))))
    return bias + 2.0 * hbar(T) * var


# ------------------------------------------------------------------------ exact quadrature


@dataclass(frozen=True, eq=False)
class Quadrature:
    """A weighted set of (AR1) sequences: ``s`` (N, T + 2, d) holding ``s_0..s_{T+1}``, weights ``w``
    (N,) summing to 1; ``kind`` says how it was built (``"grid"`` exact, ``"monte_carlo"``)."""

    s: np.ndarray
    w: np.ndarray
    kind: str
    phase: str

    @property
    def T(self) -> int:
        return self.s.shape[1] - 2

    @property
    def d(self) -> int:
        return self.s.shape[2]


def quadrature(
    d: int,
    T: int,
    phase: str = "random",
    energies: Any = None,
    n_theta: int | None = None,
    n_psi: int = 7,
    offset: float = 0.0,
) -> Quadrature:
    """(AR6) the exact quadrature of the rotation law (``Q = I``): the tensor grid of ``n_theta``
    (default ``6T + 1``) uniform points ``offset + 2 pi i / n`` per ``theta_k`` and, for
    ``phase="random"``, ``n_psi`` (>= 7 for exactness) per ``psi_k``; ``phase="fixed"`` uses
    ``psi_k = pi/4``. Exact for every polynomial of degree ``<= n_theta - 1`` per ``theta_k`` and
    ``<= n_psi - 1`` per ``psi_k``, hence for (AR6)'s loss of any ``(V, K)``. Size
    ``n_theta^m n_psi^m`` (random) or ``n_theta^m`` (fixed)."""
    d, T = _check_dT(d, T)
    if phase not in PHASES:
        raise ValueError(f"phase: expected one of {PHASES}, got {phase!r}")
    n_theta = 6 * T + 1 if n_theta is None else check_int(n_theta, "n_theta")
    n_psi = check_int(n_psi, "n_psi")
    offset = check_real(offset, "offset")
    m = d // 2
    r2 = balanced_energies(d) if energies is None else as_float_array(energies, "energies", ndim=1)
    if r2.shape != (m,) or (r2 < 0).any() or abs(r2.sum() - 1.0) > 1e-12:
        raise ValueError(f"energies: expected {m} block energies r_k^2 >= 0 summing to 1, got {r2.tolist()}")
    th1 = offset + 2 * np.pi * np.arange(n_theta) / n_theta
    axes = [th1] * m
    if phase == "random":
        axes += [offset + 2 * np.pi * np.arange(n_psi) / n_psi] * m
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, len(axes))
    theta = grid[:, :m]
    psi = grid[:, m:] if phase == "random" else np.full((grid.shape[0], m), np.pi / 4)
    s = powers(rotation(theta), start_state(r2, psi), T + 1)
    return Quadrature(s, np.full(s.shape[0], 1.0 / s.shape[0]), "grid", phase)


def _check_quad(quad: Any) -> Quadrature:
    if not isinstance(quad, Quadrature):
        raise ValueError(f"quad: expected a Quadrature (quadrature), got {type(quad).__name__}")
    return quad


def _check_vk(V: Any, K: Any, d: int) -> tuple[np.ndarray, np.ndarray]:
    V, K = as_float_array(V, "V", ndim=2), as_float_array(K, "K", ndim=2)
    if V.shape != (d, 2 * d) or K.shape != (2 * d, 2 * d):
        raise ValueError(f"V, K: expected ({d}, {2 * d}) and ({2 * d}, {2 * d}), got {V.shape} and {K.shape}")
    return V, K


#: Sequences per chunk of :func:`loss_and_grad` (bounds its temporaries to a few MB).
CHUNK = 4096


def loss_and_grad(V: Any, K: Any, quad: Quadrature) -> tuple[float, np.ndarray, np.ndarray]:
    """``(L, dL/dV, dL/dK)`` of ``L = sum_n w_n (1/T) sum_t ||shat_{t+1} - s_{t+1}||^2`` over the
    sequences of ``quad`` (exact for a grid, :func:`quadrature`), ``V`` (d, 2d), ``K`` (2d, 2d).

    With ``Zc = [z_1 .. z_T]`` (2d, T), ``Y = Zc^T K Zc``, causal weights ``C`` and residuals ``R``
    (d, T): ``shat = V Zc (C * Y)``, ``dL/dV = sum_n (2 w_n/T) R (Zc (C * Y))^T``,
    ``dL/dK = sum_n Zc (C * ((V Zc)^T R')) Zc^T`` with ``R' = (2 w_n / T) R``."""
    quad = _check_quad(quad)
    d, T = quad.d, quad.T
    V, K = _check_vk(V, K, d)
    from lsa_theory import causal_weights

    C = causal_weights(T)
    L, gV, gK = 0.0, np.zeros_like(V), np.zeros_like(K)
    for i in range(0, quad.s.shape[0], CHUNK):
        s, w = quad.s[i : i + CHUNK], quad.w[i : i + CHUNK]
        Zc = augmented_tokens(s[:, : T + 1])[:, d:]  # (n, 2d, T)
        ZcT = np.swapaxes(Zc, 1, 2)
        CY = C * (ZcT @ (K @ Zc))  # (n, T, T)
        ZCY = Zc @ CY  # (n, 2d, T)
        R = V @ ZCY - np.swapaxes(s[:, 2:], 1, 2)  # (n, d, T)
        L += float(np.sum(w * np.sum(R * R, axis=(1, 2)))) / T
        Rw = (2.0 / T) * w[:, None, None] * R
        gV += np.einsum("nit,njt->ij", Rw, ZCY)
        G = C * (ZcT @ (V.T @ Rw))  # (n, T, T)
        gK += np.einsum("nit,ntu,nju->ij", Zc, G, Zc)
    return L, gV, gK


def population_loss(V: Any, K: Any, quad: Quadrature) -> float:
    """``L(V, K)`` of :func:`loss_and_grad` alone."""
    return loss_and_grad(V, K, quad)[0]


def monte_carlo_loss(
    V: Any, K: Any, d: int, T: int, n: int, rng: np.random.Generator, phase: str = "random", energies=None
) -> tuple[float, float]:
    """``(mean, standard error)`` of the loss of ``(V, K)`` over ``n`` i.i.d. (AR1) sequences of the
    rotation law (``Q = I``): the third check of the quadrature (``|mean - exact| / se`` is a z-score)."""
    from lsa_theory.autoregressive import rotation_sequences

    d, T = _check_dT(d, T)
    n = check_int(n, "n", minimum=2)
    seq = rotation_sequences(n, d, T, check_rng(rng), phase=phase, energies=energies)
    V, K = _check_vk(V, K, d)
    shat = causal_predictions(augmented_tokens(seq.s[:, : T + 1])[:, d:], V, K)
    per = np.sum((shat - seq.s[:, 2:]) ** 2, axis=(1, 2)) / T
    return float(per.mean()), float(per.std(ddof=1) / np.sqrt(n))


def plain_cross_term(V: Any, K: Any, quad: Quadrature, weights: Any = None) -> tuple[float, float]:
    """(AR10) non-augmented tokens ``e_t = s_t``: ``shat_{t+1} = V sum_{j<=T} p_{j,t} s_j (s_j^T K s_t)``
    with ``V``, ``K`` (d, d) and positional weights ``p`` (T, T), column t - 1 for position t
    (default the causal ``[j <= t]/t`` of (AR3), i.e. ``V S_t K s_t``; any matrix is a learned
    positional weighting of the content score). Returns ``(cross, rms)``: the cross term ``(1/T)
    sum_t E[s_{t+1}^T shat_{t+1}]`` over ``quad`` (exact on a grid) and ``rms = sqrt((1/T) sum_t
    E||shat_{t+1}||^2)``, its scale. The cross term is 0 for every (V, K, p) and either phase law:
    each of its terms carries the phase ``lambda^e`` with ``e = +-(t+1) +- j +- j +- t``, an odd
    number, so no term has ``e = 0`` in every block."""
    from lsa_theory import causal_weights
    from lsa_theory.autoregressive import plain_tokens

    quad = _check_quad(quad)
    d, T = quad.d, quad.T
    V, K = as_float_array(V, "V", ndim=2), as_float_array(K, "K", ndim=2)
    if V.shape != (d, d) or K.shape != (d, d):
        raise ValueError(f"V, K: expected two ({d}, {d}) matrices, got {V.shape} and {K.shape}")
    C = causal_weights(T) if weights is None else as_float_array(weights, "weights", ndim=2)
    if C.shape != (T, T):
        raise ValueError(f"weights: expected ({T}, {T}), got {C.shape}")
    S = plain_tokens(quad.s[:, : T + 1])  # (N, d, T)
    shat = np.swapaxes(V @ (S @ (C * (np.swapaxes(S, 1, 2) @ (K @ S)))), 1, 2)
    w = quad.w[:, None]
    cross = float(np.sum(w * np.sum(shat * quad.s[:, 2:], axis=2)) / T)
    return cross, float(np.sqrt(np.sum(w * np.sum(shat * shat, axis=2)) / T))


# --------------------------------------------------------------- parametrisations (AR4), (AR8)


def gd_blocks(A: Any, B: Any) -> tuple[np.ndarray, np.ndarray]:
    """(AR4) ``V = [A, 0]`` (d, 2d), ``K = [[0, 0], [B, 0]]`` (2d, 2d) from ``A``, ``B`` (d, d)."""
    A, B = as_float_array(A, "A", ndim=2), as_float_array(B, "B", ndim=2)
    d = A.shape[0]
    if A.shape != (d, d) or B.shape != (d, d):
        raise ValueError(f"A, B: expected two (d, d) matrices, got {A.shape} and {B.shape}")
    V, K = np.zeros((d, 2 * d)), np.zeros((2 * d, 2 * d))
    V[:, :d], K[d:, :d] = A, B
    return V, K


def theta6_blocks(x: Any, d: int) -> tuple[np.ndarray, np.ndarray]:
    """(AR8) ``Theta_6``: ``x = (v1, v2, k11, k12, k21, k22)`` -> ``V = [v1 I, v2 I]`` (d, 2d),
    ``K = [[k11 I, k12 I], [k21 I, k22 I]]`` (2d, 2d)."""
    x = as_float_array(x, "x", ndim=1)
    if x.shape != (6,):
        raise ValueError(f"x: expected (v1, v2, k11, k12, k21, k22), got shape {x.shape}")
    d = check_int(d, "d")
    eye = np.eye(d)
    v1, v2, k11, k12, k21, k22 = x
    return np.hstack([v1 * eye, v2 * eye]), np.block([[k11 * eye, k12 * eye], [k21 * eye, k22 * eye]])


def theta6_grad(gV: Any, gK: Any) -> np.ndarray:
    """The gradient in ``Theta_6``'s coordinates from the dense ``(dL/dV, dL/dK)``: the traces of
    the blocks, ``(tr gV_1, tr gV_2, tr gK_11, tr gK_12, tr gK_21, tr gK_22)`` (6,)."""
    gV, gK = as_float_array(gV, "gV", ndim=2), as_float_array(gK, "gK", ndim=2)
    d = gV.shape[0]
    return np.array(
        [
            np.trace(gV[:, :d]),
            np.trace(gV[:, d:]),
            np.trace(gK[:d, :d]),
            np.trace(gK[:d, d:]),
            np.trace(gK[d:, :d]),
            np.trace(gK[d:, d:]),
        ]
    )


def theta6_projection(V: Any, K: Any) -> tuple[np.ndarray, float]:
    """``(x, dist)``: the nearest point of ``Theta_6`` to ``(V, K)`` (each block replaced by its mean
    diagonal times I), as ``x`` (6,), and the Frobenius distance to it."""
    V, K = as_float_array(V, "V", ndim=2), as_float_array(K, "K", ndim=2)
    d = V.shape[0]
    x = theta6_grad(V, K) / d
    V6, K6 = theta6_blocks(x, d)
    return x, float(np.sqrt(np.sum((V - V6) ** 2) + np.sum((K - K6) ** 2)))


def gd_point_theta6(d: int, T: int) -> np.ndarray:
    """(AR8) the balanced GD point in ``Theta_6``: ``v1 = k21 = sqrt(c*)`` (so ``v1 k21 = c*``), the
    rest 0: the limit of the GD-class flow from a balanced start (``a0 = b0``)."""
    r = np.sqrt(c_star(d, T))
    return np.array([r, 0.0, 0.0, 0.0, r, 0.0])


def minimise(
    fun,
    x0: Any,
    gtol: float = 1e-13,
    ftol: float = 1e-16,
    maxiter: int = 20_000,
) -> tuple[np.ndarray, float]:
    """L-BFGS-B (scipy) on ``fun(x) -> (loss, grad)`` from ``x0`` with explicit tolerances
    (projected gradient ``gtol``, relative decrease ``ftol``); returns ``(x, loss)``."""
    from scipy.optimize import minimize

    res = minimize(
        fun,
        as_float_array(x0, "x0", ndim=1),
        jac=True,
        method="L-BFGS-B",
        options={"gtol": gtol, "ftol": ftol, "maxiter": maxiter, "maxcor": 30},
    )
    return np.asarray(res.x), float(res.fun)


# ------------------------------------------------------------------------------ flows (AR9)


def predict_a_inf(a0: float, b0: float, d: int, T: int) -> float:
    """(AR9a) ``a_inf^2 = (Delta + sqrt(Delta^2 + 4 c*^2)) / 2``, ``Delta = a0^2 - b0^2`` (the conserved
    quantity), ``a_inf b_inf = c*``; ``a_inf > 0``."""
    a0, b0 = check_real(a0, "a0"), check_real(b0, "b0")
    cs = c_star(d, T)
    delta = a0 * a0 - b0 * b0
    return float(np.sqrt(0.5 * (delta + np.sqrt(delta * delta + 4 * cs * cs))))


def predicted_rate(a0: float, b0: float, d: int, T: int, all_entries: bool) -> float:
    """(AR9a) ``lam`` of ``L - L* ~ exp(-2 lam t)``: ``l''(c*) (a_inf^2 + b_inf^2)`` in the coordinates
    ``(a, b)``, divided by d in the coordinates of all entries of ``(A, B)`` (``all_entries``)."""
    a = predict_a_inf(a0, b0, d, T)
    b = c_star(d, T) / a
    lam = scalar_curvature(d, T) * (a * a + b * b)
    return lam / d if all_entries else lam


def _nearest_on_curve(tA: float, tB: float, nA: float, nB: float, d: int, cs: float) -> tuple[float, float]:
    """``(dist, a)``: nearest point ``(a I, (c*/a) I)`` to ``(A, B)`` given ``tr A``, ``tr B``,
    ``||A||^2``, ``||B||^2``: a root of ``d a^4 - tr(A) a^3 + c* tr(B) a - d c*^2``."""
    best = (float("inf"), float("nan"))
    for r in np.roots([d, -tA, 0.0, cs * tB, -d * cs * cs]):
        if abs(r.imag) > 1e-9 * max(1.0, abs(r)) or r.real == 0:
            continue
        a = r.real
        b = cs / a
        d2 = nA - 2 * a * tA + d * a * a + nB - 2 * b * tB + d * b * b
        if d2 < best[0]:
            best = (d2, float(a))
    return float(np.sqrt(max(best[0], 0.0))), best[1]


@dataclass(frozen=True, eq=False)
class GDClassObjective:
    """(AR9a) the GD class over all ``2 d^2`` entries, ``theta = [vec(A); vec(B)]`` (row-major), on
    the exact quadrature ``quad``: the problem hook of :func:`lsa_theory.dynamics.gradient_flow`.
    ``loss_and_grad`` returns the excess ``L - L*`` (``loss_ref``, default :func:`loss_star`) and its
    gradient times ``time_scale`` (1: the gradient flow; 1.05: the flow run 5 % fast, a mutation the
    rate check must see)."""

    quad: Quadrature
    loss_ref: float
    time_scale: float = 1.0

    @classmethod
    def build(cls, d: int, T: int, phase: str = "random", time_scale: float = 1.0) -> GDClassObjective:
        """The objective at ``(d, T)`` on the exact grid (:func:`quadrature`); ``loss_ref = L*``."""
        return cls(quadrature(d, T, phase), loss_star(d, T), check_real(time_scale, "time_scale", low=0.0))

    @property
    def d(self) -> int:
        return self.quad.d

    def shapes(self) -> Shapes:
        """``A`` (d, d), ``B`` (d, d): ``Shapes(d, d, d)``, size ``2 d^2``."""
        return Shapes(self.d, self.d, self.d)

    def split(self, theta: Any) -> tuple[np.ndarray, np.ndarray]:
        """``(A, B)`` (d, d) each from ``theta`` (2 d^2,)."""
        theta = as_float_array(theta, "theta", ndim=1)
        d = self.d
        if theta.shape != (2 * d * d,):
            raise ValueError(f"theta: expected {2 * d * d} entries, got shape {theta.shape}")
        return theta[: d * d].reshape(d, d), theta[d * d :].reshape(d, d)

    def loss_and_grad(self, theta: Any) -> tuple[float, np.ndarray]:
        """``(L - loss_ref, time_scale * dL/dtheta)``, ``dL/dA = dL/dV[:, :d]``, ``dL/dB = dL/dK[d:, :d]``."""
        A, B = self.split(theta)
        L, gV, gK = loss_and_grad(*gd_blocks(A, B), self.quad)
        d = self.d
        g = np.concatenate([gV[:, :d].ravel(), gK[d:, :d].ravel()])
        return L - self.loss_ref, self.time_scale * g

    def hessian(self, theta: Any, h: float = 1e-6) -> np.ndarray:
        """Central differences of the gradient, step ``h`` (the Jacobian of the stiff integrators; its
        ``O(h^2)`` error slows Newton's iteration, it does not move the solution)."""
        theta = as_float_array(theta, "theta", ndim=1)
        return _fd_hessian(lambda th: self.loss_and_grad(th)[1], theta, h)

    def conserved(self, theta: Any) -> float:
        """``(||A||_F^2 - ||B||_F^2) / d``: ``a^2 - b^2`` on the scalar set, conserved by the flow
        (the loss is invariant under ``(cA, B/c)``)."""
        A, B = self.split(theta)
        return float((np.sum(A * A) - np.sum(B * B)) / self.d)

    def invisible_directions(self) -> np.ndarray:
        return np.zeros((2 * self.d * self.d, 0))

    def distance_to_manifold(self, theta: Any, U: Any = None) -> tuple[float, float]:
        """``(dist, a)``: distance to the scalar optimal curve ``{(a I, (c*/a) I)}`` and its nearest ``a``."""
        A, B = self.split(theta)
        cs = c_star(self.d, self.quad.T)
        return _nearest_on_curve(np.trace(A), np.trace(B), np.sum(A * A), np.sum(B * B), self.d, cs)


def _fd_hessian(grad, theta: np.ndarray, h: float) -> np.ndarray:
    """Central differences of ``grad`` at ``theta``, step ``h``, symmetrised."""
    n = theta.size
    H = np.empty((n, n))
    for i in range(n):
        e = np.zeros(n)
        e[i] = h
        H[:, i] = (grad(theta + e) - grad(theta - e)) / (2 * h)
    return 0.5 * (H + H.T)


@dataclass(frozen=True, eq=False)
class DenseObjective:
    """(AR9b) all entries of ``(V, K)``, ``theta = [vec(V); vec(K)]`` (row-major, ``2 d^2 + 4 d^2``),
    on the exact quadrature ``quad``: ``loss_and_grad`` returns ``L - loss_ref`` and its gradient.
    The loss is invariant under ``(cV, K/c)``, so ``||V||^2 - ||K||^2`` is conserved;
    ``distance_to_manifold`` is the distance to ``Theta_6`` (:func:`theta6_projection`)."""

    quad: Quadrature
    loss_ref: float = 0.0

    @property
    def d(self) -> int:
        return self.quad.d

    def shapes(self) -> Shapes:
        """``V`` (d, 2d), ``K`` (2d, 2d): ``Shapes(d, 2d, 2d)``, size ``6 d^2``."""
        return Shapes(self.d, 2 * self.d, 2 * self.d)

    def split(self, theta: Any) -> tuple[np.ndarray, np.ndarray]:
        """``(V, K)`` from ``theta`` (6 d^2,)."""
        theta = as_float_array(theta, "theta", ndim=1)
        d = self.d
        if theta.shape != (6 * d * d,):
            raise ValueError(f"theta: expected {6 * d * d} entries, got shape {theta.shape}")
        return theta[: 2 * d * d].reshape(d, 2 * d), theta[2 * d * d :].reshape(2 * d, 2 * d)

    def loss_and_grad(self, theta: Any) -> tuple[float, np.ndarray]:
        L, gV, gK = loss_and_grad(*self.split(theta), self.quad)
        return L - self.loss_ref, np.concatenate([gV.ravel(), gK.ravel()])

    def hessian(self, theta: Any, h: float = 1e-6) -> np.ndarray:
        """Central differences of the gradient (the stiff integrators' Jacobian)."""
        theta = as_float_array(theta, "theta", ndim=1)
        return _fd_hessian(lambda th: self.loss_and_grad(th)[1], theta, h)

    def conserved(self, theta: Any) -> float:
        """``||V||_F^2 - ||K||_F^2``."""
        V, K = self.split(theta)
        return float(np.sum(V * V) - np.sum(K * K))

    def invisible_directions(self) -> np.ndarray:
        return np.zeros((6 * self.d * self.d, 0))

    def distance_to_manifold(self, theta: Any, U: Any = None) -> tuple[float, float]:
        """``(distance to Theta_6, nan)``."""
        return theta6_projection(*self.split(theta))[1], float("nan")


@dataclass(frozen=True, eq=False)
class ScalarObjective:
    """(AR9a) the scalar pair ``theta = (a, b)`` on the closed form ``l(ab)`` of :func:`scalar_loss`
    (balanced, random phase): excess ``l(ab) - L*`` and its gradient ``l'(ab) (b, a)``."""

    d: int
    T: int

    def shapes(self) -> Shapes:
        """``Shapes(1, 1, 1)``: size 2."""
        return Shapes(1, 1, 1)

    def loss_and_grad(self, theta: Any) -> tuple[float, np.ndarray]:
        """``l(c) - L* = (l''/2) (c - c*)^2`` exactly (``l`` is quadratic), ``c = ab``, without
        cancellation; gradient ``l''(c - c*) (b, a)``."""
        a, b = as_float_array(theta, "theta", ndim=1)
        k = scalar_curvature(self.d, self.T)
        dc = a * b - c_star(self.d, self.T)
        return 0.5 * k * dc * dc, k * dc * np.array([b, a])

    def hessian(self, theta: Any) -> np.ndarray:
        a, b = as_float_array(theta, "theta", ndim=1)
        k = scalar_curvature(self.d, self.T)
        dc = a * b - c_star(self.d, self.T)
        return k * np.array([[b * b, a * b + dc], [a * b + dc, a * a]])

    def conserved(self, theta: Any) -> float:
        a, b = as_float_array(theta, "theta", ndim=1)
        return float(a * a - b * b)

    def invisible_directions(self) -> np.ndarray:
        return np.zeros((2, 0))

    def distance_to_manifold(self, theta: Any, U: Any = None) -> tuple[float, float]:
        a, b = as_float_array(theta, "theta", ndim=1)
        return _nearest_on_curve(a, b, a * a, b * b, 1, c_star(self.d, self.T))
