r"""The one-layer in-context regression objective (R4) and its gradient flow (R5) [ZFB].

One (W2) layer on an (R1) prompt with the cross blocks zero (``P[d, :d] = 0``, ``Q[d, :d] = 0``)
predicts ``yhat = E_out[-1, -1] = x_q^T M h`` with ``M = u U^T``, ``u = P[d, d]`` (value) and
``U = Q[:d, :d]`` (key-query), ``h = (1/N) sum_i y_i x_i``
(:func:`lsa_theory.constructions.algorithms.regression.prediction_from_statistics`). The effective parameters
are ``theta = [u; vec(U)]`` (row-major), of length ``1 + d^2``.

In ``m = vec(M)`` both objectives are one quadratic,

.. math:: L(M) = \tfrac12 (m^\top C m - 2 b^\top m + c_0),

- **population** (R4), ``x_i, x_q ~ N(0, Lambda)``, ``w ~ N(0, I)``, ``y = w^T x``:
  ``C = Lambda (x) E[S^2]``, ``E[S^2] = Lambda Gamma``, ``Gamma = (1 + 1/N) Lambda + (tr Lambda / N) I``,
  ``b = vec(Lambda^2)``, ``c_0 = tr Lambda``; minimiser ``M* = Gamma^{-1}``, minimum
  ``(1/2)[tr Lambda - tr(Lambda^2 Gamma^{-1})]``;
- **sampled**, F prompts, from sufficient statistics (as (M2) does for SARSA): with
  ``k_f = vec(x_{q,f} h_f^T)``, ``C = mean k k^T``, ``b = mean y_{q,f} k_f``, ``c_0 = mean y_q^2``.

The loss is invariant under ``(u, U) -> (u/c, c U)``; the flow conserves ``u^2 - ||U||_F^2`` (the
analogue of (M3)), and the optimal set ``{(1/c, c M*^T)}`` is one curve when ``C`` is nonsingular
(richness (M5) in its scaling-only form). :class:`RegressionObjective` supplies the operations
:func:`lsa_theory.dynamics.gradient_flow` needs; its ``loss_and_grad`` returns the *excess* loss
``L - L* = (1/2)(m - m*)^T C (m - m*)``, computed without cancellation, so that the rate fit of (M6)
(:func:`lsa_theory.dynamics.fit_rate`) sees ``L - L*`` down to round-off.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from lsa_theory.checks import as_float_array, check_int, check_real, check_rng
from lsa_theory.constructions.algorithms import regression as reg

from .manifold import KERNEL_RTOL, _gap_tol
from .objective import Shapes

__all__ = [
    "RegressionSample",
    "RegressionObjective",
    "random_covariance",
    "gamma_matrix",
    "WEIGHT_LAWS",
    "COVARIATE_LAWS",
    "GAMMA_SHAPE",
    "sigma_inverse_optimum",
    "radial_moments",
    "weight_covariance",
    "fourth_moment",
    "law_second_moment",
    "one_layer_optimum",
    "one_layer_minimum",
    "second_moment",
    "population_loss",
    "sample_prompts",
    "population_objective",
    "sampled_objective",
    "query_features",
    "sample_minimiser_test",
    "effective_matrix",
    "pack_theta",
    "unpack_theta",
    "to_full",
    "from_full",
    "zfb_init",
    "predict_limit",
    "RegressionRichness",
    "richness",
    "full_loss_torch",
]

#: ``C`` counts as singular (the sampled objective then has invisible directions) when its
#: smallest eigenvalue is below this times its largest.
SINGULAR_RTOL = 1e-10


def _check_lambda(Lambda: Any) -> np.ndarray:
    Lambda = as_float_array(Lambda, "Lambda", ndim=2)
    d = Lambda.shape[0]
    if (
        Lambda.size == 0
        or Lambda.shape != (d, d)
        or not np.allclose(Lambda, Lambda.T, rtol=0, atol=1e-12 * np.abs(Lambda).max())
    ):
        raise ValueError(f"Lambda: expected a symmetric (d, d) matrix, d >= 1, got shape {Lambda.shape}")
    if np.linalg.eigvalsh(Lambda).min() <= 0:
        raise ValueError("Lambda: must be positive definite")
    return 0.5 * (Lambda + Lambda.T)


def random_covariance(d: int, kappa: float, rng: np.random.Generator) -> np.ndarray:
    """A non-isotropic ``Lambda = R diag(geomspace(1, 1/kappa, d)) R^T`` (d, d), ``R`` Haar-random
    orthogonal: condition number ``kappa``, largest eigenvalue 1."""
    d = check_int(d, "d")
    kappa = check_real(kappa, "kappa", low=1.0)
    rng = check_rng(rng)
    R, r = np.linalg.qr(rng.standard_normal((d, d)))
    R = R * np.sign(np.diag(r))
    Lambda = (R * np.geomspace(1.0, 1.0 / kappa, d)) @ R.T
    return 0.5 * (Lambda + Lambda.T)


def gamma_matrix(Lambda: Any, N: int) -> np.ndarray:
    """(R4) [ZFB]'s ``Gamma = (1 + 1/N) Lambda + (tr(Lambda) / N) I_d`` (d, d)."""
    Lambda = _check_lambda(Lambda)
    N = check_int(N, "N")
    return (1.0 + 1.0 / N) * Lambda + np.trace(Lambda) / N * np.eye(Lambda.shape[0])


#: Laws of the regression weight ``w`` in :func:`sample_prompts`: ``"isotropic"`` is (R4)'s
#: ``w ~ N(0, I_d)``; ``"sigma_inverse"`` is [Ahn]'s code's ``w ~ N(0, Lambda^{-1})``.
WEIGHT_LAWS = ("isotropic", "sigma_inverse")

#: Laws of the covariates ``x_i, x_q`` in :func:`sample_prompts`, all elliptical
#: ``x = r Lambda^{1/2} u`` (``u`` uniform on the unit sphere ``S^{d-1}``, ``r >= 0`` independent of
#: ``u``) and normalised to ``E[x x^T] = Lambda`` (``E r^2 = d``): ``"gaussian"`` is (R4)'s
#: ``N(0, Lambda)`` (``r^2 ~ chi^2_d``); ``"sphere"`` has ``r = sqrt(d)``; ``"gamma"`` has
#: ``r^2 ~ Gamma(k, d/k)`` (shape ``k`` = ``gamma_shape``, scale ``d/k``), the gamma-scaled sphere of
#: [Ahn]'s code (``mode='gamma'``; ``k = d/2`` is the Gaussian law again).
COVARIATE_LAWS = ("gaussian", "sphere", "gamma")

#: Default shape ``k`` of the ``"gamma"`` covariates: [Ahn]'s code's ``shape_k = 0.1``.
GAMMA_SHAPE = 0.1


def _check_law(law: Any) -> str:
    if not isinstance(law, str) or law not in WEIGHT_LAWS:
        raise ValueError(f"law: expected one of {WEIGHT_LAWS}, got {law!r}")
    return law


def _check_covariates(covariates: Any, gamma_shape: Any) -> tuple[str, float]:
    if not isinstance(covariates, str) or covariates not in COVARIATE_LAWS:
        raise ValueError(f"covariates: expected one of {COVARIATE_LAWS}, got {covariates!r}")
    return covariates, check_real(gamma_shape, "gamma_shape", low=0.0, low_open=True)


def radial_moments(
    d: int, covariates: str = "gaussian", gamma_shape: float = GAMMA_SHAPE
) -> tuple[float, float]:
    r"""``(c1, c2) = (E r^2 / d, E r^4 / (d (d + 2)))`` of the radius of the covariate law
    ``x = r Lambda^{1/2} u`` (:data:`COVARIATE_LAWS`): ``E[x x^T] = c1 Lambda`` and
    ``E[x x^T W x x^T] = c2 (2 Lambda W Lambda + tr(W Lambda) Lambda)`` (:func:`fourth_moment`).
    ``c1 = 1`` for every law here; ``c2`` is 1 (gaussian: ``E r^4 = d (d + 2)``), ``d / (d + 2)``
    (sphere: ``r^4 = d^2``) and ``d (k + 1) / (k (d + 2))`` (gamma: ``E r^4 = d^2 (k + 1) / k``)."""
    d = check_int(d, "d")
    covariates, k = _check_covariates(covariates, gamma_shape)
    if covariates == "gaussian":
        return 1.0, 1.0
    if covariates == "sphere":
        return 1.0, d / (d + 2.0)
    return 1.0, d * (k + 1.0) / (k * (d + 2.0))


def weight_covariance(Lambda: Any, law: str = "isotropic") -> np.ndarray:
    """``W = E[w w^T]`` (d, d) of the weight law ``law`` (:data:`WEIGHT_LAWS`): ``I_d`` or
    ``Lambda^{-1}``."""
    Lambda = _check_lambda(Lambda)
    if _check_law(law) == "isotropic":
        return np.eye(Lambda.shape[0])
    W = np.linalg.inv(Lambda)
    return 0.5 * (W + W.T)


def fourth_moment(
    Lambda: Any, W: Any, covariates: str = "gaussian", gamma_shape: float = GAMMA_SHAPE
) -> np.ndarray:
    r"""``E[x x^T W x x^T] = c2 (2 Lambda W Lambda + tr(W Lambda) Lambda)`` (d, d) for ``x`` of the
    covariate law ``covariates`` with shape matrix ``Lambda`` and a symmetric ``W`` (d, d).

    With ``x = r Lambda^{1/2} u`` and ``A = Lambda^{1/2} W Lambda^{1/2}``,
    ``E[x x^T W x x^T] = E r^4 Lambda^{1/2} E[u u^T A u u^T] Lambda^{1/2}``, and for ``u`` uniform on
    ``S^{d-1}``, ``E[u_a u_b u_c u_e] = (delta_ab delta_ce + delta_ac delta_be + delta_ae delta_bc) /
    (d (d + 2))`` gives ``E[u u^T A u u^T] = (2 A + tr(A) I) / (d (d + 2))``; ``c2`` from
    :func:`radial_moments` (1 for the Gaussian law: Isserlis)."""
    Lambda = _check_lambda(Lambda)
    W = as_float_array(W, "W", ndim=2)
    if W.shape != Lambda.shape:
        raise ValueError(f"W: expected shape {Lambda.shape} of Lambda, got {W.shape}")
    _, c2 = radial_moments(Lambda.shape[0], covariates, gamma_shape)
    LWL = Lambda @ W @ Lambda
    return c2 * (2.0 * 0.5 * (LWL + LWL.T) + np.trace(W @ Lambda) * Lambda)


def law_second_moment(
    Lambda: Any,
    N: int,
    law: str = "isotropic",
    covariates: str = "gaussian",
    gamma_shape: float = GAMMA_SHAPE,
) -> np.ndarray:
    r"""``K = E[S W S]`` (d, d), ``S = (1/N) sum_i x_i x_i^T``, ``W = E[w w^T]``
    (:func:`weight_covariance`), for i.i.d. ``x_i`` of the covariate law (:data:`COVARIATE_LAWS`):
    the ``N (N - 1)`` pairs ``i != j`` give ``Lambda W Lambda`` each and the ``N`` diagonal terms
    :func:`fourth_moment` each, so
    ``K = (1 - 1/N) Lambda W Lambda + (c2 / N)(2 Lambda W Lambda + tr(W Lambda) Lambda)``.
    For (R4)'s law (``W = I``, gaussian) it is ``E[S^2] = Lambda Gamma`` (:func:`second_moment`)."""
    Lambda = _check_lambda(Lambda)
    N = check_int(N, "N")
    W = weight_covariance(Lambda, law)
    LWL = Lambda @ W @ Lambda
    K = (1.0 - 1.0 / N) * LWL + fourth_moment(Lambda, W, covariates, gamma_shape) / N
    return 0.5 * (K + K.T)


def one_layer_optimum(
    Lambda: Any,
    N: int,
    law: str = "isotropic",
    covariates: str = "gaussian",
    gamma_shape: float = GAMMA_SHAPE,
) -> np.ndarray:
    r"""The one-layer optimum ``M* = W Lambda K^{-1}`` (d, d) of ``yhat = x_q^T M h`` for the weight law
    ``law`` (:data:`WEIGHT_LAWS`, ``W = E[w w^T]``) and the covariate law ``covariates``
    (:data:`COVARIATE_LAWS`, ``E[x x^T] = Lambda``), ``K = E[S W S]`` (:func:`law_second_moment`).

    Derivation (as (R4)): with ``h = S w`` the error is ``x_q^T (M S - I) w``; averaging over
    ``x_q`` (independent of the context, ``E[x_q x_q^T] = Lambda``), then ``w``, then ``S``
    (``E S = Lambda``) the loss is ``(1/2)[tr(M^T Lambda M K) - 2 tr(Lambda M Lambda W) +
    tr(Lambda W)]``, a convex quadratic in ``M`` with gradient ``Lambda (M K - W Lambda)``, zero at
    ``M* = W Lambda K^{-1}``. Closed forms: (R4)'s law gives ``Gamma^{-1}`` (returned as
    ``inv(gamma_matrix(Lambda, N))``, the same floats as before these laws); with ``W = I``,
    ``M* = [a Lambda + b I]^{-1}``, ``a = 1 + (2 c2 - 1)/N``, ``b = c2 tr(Lambda) / N``; with
    ``W = Lambda^{-1}``, ``M* = Lambda^{-1} / (1 + ((d + 2) c2 - 1)/N)`` (:func:`sigma_inverse_optimum`
    for the Gaussian law)."""
    Lambda = _check_lambda(Lambda)
    N = check_int(N, "N")
    law = _check_law(law)
    covariates, gamma_shape = _check_covariates(covariates, gamma_shape)
    if law == "isotropic" and covariates == "gaussian":
        return np.linalg.inv(gamma_matrix(Lambda, N))
    K = law_second_moment(Lambda, N, law, covariates, gamma_shape)
    WL = weight_covariance(Lambda, law) @ Lambda
    return np.linalg.solve(K, WL.T).T  # W Lambda K^{-1} (K symmetric)


def one_layer_minimum(
    Lambda: Any,
    N: int,
    law: str = "isotropic",
    covariates: str = "gaussian",
    gamma_shape: float = GAMMA_SHAPE,
) -> float:
    r"""The minimum ``(1/2)[tr(Lambda W) - tr(Lambda M* Lambda W)]`` of the one-layer loss at
    :func:`one_layer_optimum`; for (R4)'s law ``(1/2)[tr Lambda - tr(Lambda^2 Gamma^{-1})]``."""
    Lambda = _check_lambda(Lambda)
    M = one_layer_optimum(Lambda, N, law, covariates, gamma_shape)
    if law == "isotropic" and covariates == "gaussian":  # (R4)'s expression, the same floats as before
        return 0.5 * float(np.trace(Lambda) - np.trace(Lambda @ Lambda @ M))
    LW = Lambda @ weight_covariance(Lambda, law)
    return 0.5 * float(np.trace(LW) - np.trace(Lambda @ M @ LW))


def sigma_inverse_optimum(Lambda: Any, N: int) -> np.ndarray:
    r"""The one-layer optimum ``M* = Lambda^{-1} / (1 + (d + 1)/N)`` (d, d) on the law
    ``x_i, x_q ~ N(0, Lambda)``, ``w ~ N(0, Lambda^{-1})``, ``y = w^T x`` ([Ahn]'s code's law, with
    their ``Sigma`` our ``Lambda``; (R4)'s law has ``w ~ N(0, I_d)`` and optimum ``Gamma^{-1}``).

    Derivation (as (R4), notation of (R4)): ``yhat = x_q^T M h`` with ``h = S w``, so
    ``yhat - y_q = x_q^T (M S - I) w`` and, averaging over ``x_q`` then ``w`` (``E[w w^T] =
    Lambda^{-1}``), the loss is ``(1/2) E tr[(M S - I)^T Lambda (M S - I) Lambda^{-1}] =
    (1/2)[tr(M^T Lambda M K) - 2 tr(Lambda M) + d]`` with ``K = E[S Lambda^{-1} S]`` (using
    ``E[S] = Lambda``). For ``i != j``, ``E[x_i x_i^T Lambda^{-1} x_j x_j^T] = Lambda``; for ``i = j``,
    with ``x = Lambda^{1/2} g``, ``E[g g^T g g^T] = (d + 2) I`` gives ``(d + 2) Lambda``. Hence
    ``K = N^{-2}[N(N - 1) + N(d + 2)] Lambda = (1 + (d + 1)/N) Lambda``; the gradient
    ``Lambda M K - Lambda`` vanishes at ``M* = K^{-1}``, and the minimum is
    ``(1/2)[d - tr(Lambda M*)] = (d/2)(d + 1)/(N + d + 1)``."""
    Lambda = _check_lambda(Lambda)
    N = check_int(N, "N")
    d = Lambda.shape[0]
    return np.linalg.inv(Lambda) / (1.0 + (d + 1) / N)


def second_moment(Lambda: Any, N: int) -> np.ndarray:
    """(R4) ``E[S^2] = Lambda Gamma`` for ``S = (1/N) sum_i x_i x_i^T``, ``x_i ~ N(0, Lambda)`` (d, d)."""
    return _check_lambda(Lambda) @ gamma_matrix(Lambda, N)


def population_loss(
    M: Any,
    Lambda: Any,
    N: int,
    law: str = "isotropic",
    covariates: str = "gaussian",
    gamma_shape: float = GAMMA_SHAPE,
) -> float:
    """(R4) ``(1/2)[tr(M^T Lambda M E[S^2]) - 2 tr(Lambda M Lambda) + tr Lambda]`` for ``M`` (d, d); for
    another law (:func:`one_layer_optimum`) ``(1/2)[tr(M^T Lambda M K) - 2 tr(Lambda M Lambda W) +
    tr(Lambda W)]``, ``K`` of :func:`law_second_moment`."""
    Lambda = _check_lambda(Lambda)
    M = as_float_array(M, "M", ndim=2)
    if M.shape != Lambda.shape:
        raise ValueError(f"M: expected shape {Lambda.shape} of Lambda, got {M.shape}")
    if _check_law(law) == "isotropic" and _check_covariates(covariates, gamma_shape)[0] == "gaussian":
        K = second_moment(Lambda, N)
        return 0.5 * float(
            np.trace(M.T @ Lambda @ M @ K) - 2 * np.trace(Lambda @ M @ Lambda) + np.trace(Lambda)
        )
    K = law_second_moment(Lambda, N, law, covariates, gamma_shape)
    LW = Lambda @ weight_covariance(Lambda, law)
    return 0.5 * float(np.trace(M.T @ Lambda @ M @ K) - 2 * np.trace(Lambda @ M @ LW) + np.trace(LW))


@dataclass(frozen=True, eq=False)
class RegressionSample:
    """F sampled (R1) prompts: ``X`` (F, N, d), ``y`` (F, N), ``x_query`` (F, d), ``y_query`` (F,)."""

    X: np.ndarray
    y: np.ndarray
    x_query: np.ndarray
    y_query: np.ndarray
    antithetic: bool

    def prompts(self) -> np.ndarray:
        """(R1) prompts ``E`` (F, d+1, N+1)."""
        return reg.regression_prompt(self.X, self.y, self.x_query)


def sample_prompts(
    F: int,
    N: int,
    Lambda: Any,
    rng: np.random.Generator,
    antithetic: bool = True,
    law: str = "isotropic",
    covariates: str = "gaussian",
    gamma_shape: float = GAMMA_SHAPE,
) -> RegressionSample:
    """F prompts of (R4)'s law: ``x_i, x_q ~ N(0, Lambda)``, ``w ~ N(0, I_d)``, ``y = w^T x``;
    ``law="sigma_inverse"`` draws ``w ~ N(0, Lambda^{-1})`` instead (:data:`WEIGHT_LAWS`), and
    ``covariates`` draws the ``x``'s from another elliptical law with ``E[x x^T] = Lambda``
    (:data:`COVARIATE_LAWS`: ``x = r Lc u`` with ``u = g / ||g||`` of the same standard normals ``g``,
    ``Lc`` the Cholesky factor of ``Lambda``; ``r = sqrt(d)`` or ``r^2 ~ Gamma(gamma_shape,
    d / gamma_shape)`` drawn after ``w``). The Gaussian covariates draw exactly as before these laws.

    ``antithetic``: prompts come in pairs with the same ``x``'s and ``w``, ``-w`` (F must be even);
    the sample then keeps the symmetry ``w -> -w`` that makes the cross blocks' gradient vanish at
    zero, so the cross blocks stay exactly zero on the sampled objective as they do in population."""
    F, N = check_int(F, "F"), check_int(N, "N")
    Lambda = _check_lambda(Lambda)
    rng = check_rng(rng)
    if not isinstance(antithetic, bool):
        raise ValueError(f"antithetic: expected a bool, got {antithetic!r}")
    law = _check_law(law)
    covariates, gamma_shape = _check_covariates(covariates, gamma_shape)
    d = Lambda.shape[0]
    if antithetic and F % 2:
        raise ValueError(f"F: must be even with antithetic=True, got {F}")
    n_draw = F // 2 if antithetic else F
    Lc = np.linalg.cholesky(Lambda)
    G = rng.standard_normal((n_draw, N + 1, d))
    w = rng.standard_normal((n_draw, d))
    if law == "sigma_inverse":  # w = Lc^{-T} g has covariance (Lc Lc^T)^{-1} = Lambda^{-1}
        w = np.linalg.solve(Lc.T, w.T).T
    if covariates != "gaussian":  # x = r Lc u: u uniform on S^{d-1} (Lc u has the law of Lambda^{1/2} u)
        if covariates == "sphere":
            r = np.full((n_draw, N + 1), np.sqrt(d))
        else:
            r = np.sqrt(rng.gamma(gamma_shape, d / gamma_shape, size=(n_draw, N + 1)))
        G = G * (r / np.linalg.norm(G, axis=2))[:, :, None]
    X = G @ Lc.T
    if antithetic:
        X = np.concatenate([X, X])
        w = np.concatenate([w, -w])
    y = (X @ w[:, :, None])[:, :, 0]
    return RegressionSample(X[:, :N], y[:, :N], X[:, N], y[:, N], antithetic)


@dataclass(frozen=True, eq=False)
class RegressionObjective:
    """The quadratic ``L(M) = (1/2)(m^T C m - 2 b^T m + c0)`` of (R4) on ``theta = [u; vec(U)]``,
    ``M = u U^T``: ``C`` (d^2, d^2), ``b`` (d^2,), ``c0``; ``M_star`` (d, d) its minimiser and
    ``loss_star`` its minimum; ``kind`` is ``"population"`` or ``"sampled"`` (with ``F`` prompts).

    Its methods are the operations of :func:`lsa_theory.dynamics.gradient_flow`'s problem hook."""

    d: int
    N: int
    C: np.ndarray
    b: np.ndarray
    c0: float
    M_star: np.ndarray
    loss_star: float
    kind: str
    F: int | None = None

    # --- operations used by dynamics.gradient_flow -------------------------------------------
    def shapes(self) -> Shapes:
        """Size ``1 + d^2`` of ``theta`` (as ``Shapes(1, 1, d^2)``: ``size = 1 + d^2``)."""
        return Shapes(1, 1, self.d * self.d)

    def loss_and_grad(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """Excess loss ``L - L* = (1/2)(m - m*)^T C (m - m*)`` and its gradient in ``theta``:
        ``[<G, U^T>; vec(u G^T)]`` with ``G = mat(C (m - m*))`` the gradient in ``M``."""
        u, U = unpack_theta(theta, self.d)
        dm = (u * U.T - self.M_star).ravel()
        g = self.C @ dm
        G = g.reshape(self.d, self.d)
        return 0.5 * float(dm @ g), np.concatenate([[np.sum(U.T * G)], (u * G.T).ravel()])

    def hessian(self, theta: np.ndarray) -> np.ndarray:
        """Closed-form Hessian ``J^T C J + [[0, vec(G^T)^T], [vec(G^T), 0]]`` (1+d^2, 1+d^2), ``J``
        the Jacobian of ``m = vec(u U^T)``: column 0 ``vec(U^T)``, columns of ``U`` ``u T``
        (``T vec(U) = vec(U^T)``)."""
        d = self.d
        u, U = unpack_theta(theta, d)
        J = np.empty((d * d, 1 + d * d))
        J[:, 0] = U.T.ravel()
        J[:, 1:] = u * _transpose_permutation(d)
        G = (self.C @ (u * U.T - self.M_star).ravel()).reshape(d, d)
        H = J.T @ self.C @ J
        H[0, 1:] += G.T.ravel()
        H[1:, 0] += G.T.ravel()
        return 0.5 * (H + H.T)  # exactly symmetric (J^T C J is only to round-off)

    def conserved(self, theta: np.ndarray) -> float:
        """``u^2 - ||U||_F^2``, conserved by the flow (the scaling symmetry, as (M3))."""
        u, U = unpack_theta(theta, self.d)
        return float(u * u - np.sum(U * U))

    def invisible_directions(self) -> np.ndarray:
        """(d^2, 0): ``C`` is nonsingular (checked when the objective is built), nothing is invisible."""
        return np.zeros((self.d * self.d, 0))

    def distance_to_manifold(self, theta: np.ndarray, U_inv: np.ndarray | None = None) -> tuple[float, float]:
        """``(dist, c)``: distance from ``theta`` to the optimal curve ``{(1/c, c M*^T)}`` and the
        minimising ``c`` (a root of ``||M*||^2 c^4 - <U, M*^T> c^3 + u c - 1``); ``U_inv`` unused."""
        u, U = unpack_theta(theta, self.d)
        B0 = self.M_star.T
        b2, b1 = float(np.sum(B0 * B0)), float(np.sum(U * B0))
        best = (float("inf"), float("nan"))
        for r in np.roots([b2, -b1, 0.0, u, -1.0]):
            if abs(r.imag) > 1e-9 * max(1.0, abs(r)) or r.real == 0:
                continue
            c = r.real
            for _ in range(3):  # Newton refinement of the quartic's root
                f, df = b2 * c**4 - b1 * c**3 + u * c - 1.0, 4 * b2 * c**3 - 3 * b1 * c**2 + u
                if df != 0:
                    c -= f / df
            d2 = (u - 1.0 / c) ** 2 + float(np.sum((U - c * B0) ** 2))
            if d2 < best[0]:
                best = (d2, float(c))
        return float(np.sqrt(max(best[0], 0.0))), best[1]

    # --- the objective itself ------------------------------------------------------------
    def loss(self, theta: np.ndarray) -> float:
        """``L(theta) = (1/2)(m^T C m - 2 b^T m + c0)``, the full (not excess) loss."""
        return self.loss_of_matrix(effective_matrix(theta, self.d))

    def loss_of_matrix(self, M: np.ndarray) -> float:
        """``L(M)`` for ``M`` (d, d)."""
        m = np.asarray(M, dtype=np.float64).ravel()
        return 0.5 * float(m @ self.C @ m - 2 * self.b @ m + self.c0)

    def lambda_min_C(self) -> float:
        """Smallest eigenvalue of ``C`` (the strong convexity of ``L`` in ``M``)."""
        return float(np.linalg.eigvalsh(self.C).min())


def _transpose_permutation(d: int) -> np.ndarray:
    T = np.zeros((d * d, d * d))
    for a in range(d):
        for b in range(d):
            T[b * d + a, a * d + b] = 1.0
    return T


def _objective(d: int, N: int, C: np.ndarray, b: np.ndarray, c0: float, kind: str, F=None):
    C = 0.5 * (C + C.T)
    lam = np.linalg.eigvalsh(C)
    if lam.min() <= SINGULAR_RTOL * lam.max():
        raise ValueError(
            f"C: singular (lambda_min/lambda_max = {lam.min() / lam.max():.2e}); "
            f"use more prompts (F = {F}, need F >= d^2 = {d * d} and generic data)"
        )
    m_star = np.linalg.solve(C, b)
    loss_star = 0.5 * float(c0 - b @ m_star)
    return RegressionObjective(d, N, C, b, float(c0), m_star.reshape(d, d), loss_star, kind, F)


def population_objective(
    Lambda: Any,
    N: int,
    law: str = "isotropic",
    covariates: str = "gaussian",
    gamma_shape: float = GAMMA_SHAPE,
) -> RegressionObjective:
    """(R4) exact population objective: ``C = Lambda (x) Lambda Gamma``, ``b = vec(Lambda^2)``,
    ``c0 = tr Lambda``; its ``M_star`` is ``Gamma^{-1}`` up to the solve's round-off. For another law
    (:func:`one_layer_optimum`): ``C = Lambda (x) K``, ``b = vec(Lambda W Lambda)``,
    ``c0 = tr(Lambda W)``, ``K`` of :func:`law_second_moment`, ``W`` of :func:`weight_covariance`."""
    Lambda = _check_lambda(Lambda)
    N = check_int(N, "N")
    law = _check_law(law)
    covariates, gamma_shape = _check_covariates(covariates, gamma_shape)
    d = Lambda.shape[0]
    if law == "isotropic" and covariates == "gaussian":
        C = np.kron(Lambda, second_moment(Lambda, N))
        return _objective(d, N, C, (Lambda @ Lambda).ravel(), float(np.trace(Lambda)), "population")
    W = weight_covariance(Lambda, law)
    C = np.kron(Lambda, law_second_moment(Lambda, N, law, covariates, gamma_shape))
    LWL = Lambda @ W @ Lambda
    return _objective(d, N, C, (0.5 * (LWL + LWL.T)).ravel(), float(np.trace(Lambda @ W)), "population")


def _check_sample(sample: Any) -> RegressionSample:
    if not isinstance(sample, RegressionSample):
        raise ValueError(f"sample: expected a RegressionSample (sample_prompts), got {type(sample).__name__}")
    return sample


def sampled_objective(sample: RegressionSample) -> RegressionObjective:
    """The empirical objective ``(1/2F) sum_f (x_{q,f}^T M h_f - y_{q,f})^2`` from the sufficient
    statistics ``C = mean k k^T``, ``b = mean y_q k``, ``c0 = mean y_q^2``, ``k_f = vec(x_{q,f} h_f^T)``."""
    F, N, d = _check_sample(sample).X.shape
    K, yq = query_features(sample)
    return _objective(d, N, K.T @ K / F, K.T @ yq / F, float(yq @ yq / F), "sampled", F)


def query_features(sample: RegressionSample) -> tuple[np.ndarray, np.ndarray]:
    """``(K, y_q)``: the regressors ``k_f = vec(x_{q,f} h_f^T)`` (F, d^2) with ``yhat_f = k_f^T vec(M)``,
    and the targets ``y_{q,f}`` (F,)."""
    F, _, d = _check_sample(sample).X.shape
    _, h, _ = reg.statistics(sample.X, sample.y)
    return (sample.x_query[:, :, None] * h[:, None, :]).reshape(F, d * d), sample.y_query


def sample_minimiser_test(
    Lambda: Any,
    N: int,
    M_ref: Any,
    F: int,
    rng: np.random.Generator,
    chunk: int = 20_000,
    law: str = "isotropic",
    covariates: str = "gaussian",
    gamma_shape: float = GAMMA_SHAPE,
) -> dict:
    r"""(R4) checked against data, independently of the formula for ``Gamma``: the least-squares
    minimiser of the one-layer objective on ``F`` independent prompts against ``M_ref`` (d, d).

    Prompts of (R4)'s law, or of ``law`` and ``covariates`` (:func:`sample_prompts`,
    ``antithetic=False``, drawn ``chunk`` at a time);
    ``m_F = C_F^{-1} b_F`` minimises ``(1/2F) sum_f (k_f^T m - y_{q,f})^2`` (:func:`query_features`).
    Its covariance is estimated by the sandwich ``V / F``, ``V = C_F^{-1} Omega C_F^{-1}``,
    ``Omega = mean k k^T e^2``, ``e_f = y_{q,f} - k_f^T m_F`` (the prompts are independent, the
    residuals heteroscedastic). Wald statistic ``T = F (m_F - m_ref)^T V^{-1} (m_F - m_ref)``: when
    ``M_ref`` is the population minimiser ``T`` tends to chi^2 with ``d^2`` degrees of freedom, and when
    ``M_ref`` is off by ``delta`` it grows like ``F delta^T V^{-1} delta``. Returns ``{"F", "M_sample"
    (d, d), "V" (d^2, d^2), "wald", "dof", "rel_err" (||M_F - M_ref||_F / ||M_ref||_F), "scale",
    "scale_se"}`` with ``scale = <m_F, m_ref> / <m_ref, m_ref>`` (1 when ``M_ref`` is right; 1/1.03 when
    ``M_ref`` is the inverse of a ``Gamma`` 3 % too large) and its standard error."""
    Lambda = _check_lambda(Lambda)
    F, N, chunk = check_int(F, "F"), check_int(N, "N"), check_int(chunk, "chunk")
    rng = check_rng(rng)
    law = _check_law(law)
    covariates, gamma_shape = _check_covariates(covariates, gamma_shape)
    d = Lambda.shape[0]
    m_ref = as_float_array(M_ref, "M_ref", ndim=2).ravel()
    if m_ref.size != d * d:
        raise ValueError(f"M_ref: expected shape {(d, d)}, got {np.shape(M_ref)}")
    if F < 10 * d * d:
        raise ValueError(f"F: need at least 10 d^2 = {10 * d * d} prompts, got {F}")
    parts = [
        query_features(
            sample_prompts(
                min(chunk, F - i),
                N,
                Lambda,
                rng,
                False,
                law=law,
                covariates=covariates,
                gamma_shape=gamma_shape,
            )
        )
        for i in range(0, F, chunk)
    ]
    K = np.concatenate([k for k, _ in parts])
    yq = np.concatenate([y for _, y in parts])
    C_inv = np.linalg.inv(K.T @ K / F)
    m = C_inv @ (K.T @ yq / F)
    e = yq - K @ m
    V = C_inv @ ((K * (e * e)[:, None]).T @ K / F) @ C_inv
    V = 0.5 * (V + V.T)
    dm = m - m_ref
    ref2 = float(m_ref @ m_ref)
    return {
        "F": F,
        "M_sample": m.reshape(d, d),
        "V": V,
        "wald": float(F * dm @ np.linalg.solve(V, dm)),
        "dof": d * d,
        "rel_err": float(np.linalg.norm(dm) / np.sqrt(ref2)),
        "scale": float(m @ m_ref / ref2),
        "scale_se": float(np.sqrt(m_ref @ V @ m_ref / F) / ref2),
    }


def pack_theta(u: float, U: Any) -> np.ndarray:
    """``theta = [u; vec(U)]`` (1 + d^2,) from a real ``u`` and a square ``U`` (d, d)."""
    u = check_real(u, "u")
    U = as_float_array(U, "U", ndim=2)
    if U.shape[0] != U.shape[1] or U.shape[0] < 1:
        raise ValueError(f"U: expected a square (d, d) matrix, got shape {U.shape}")
    return np.concatenate([[u], U.ravel()])


def unpack_theta(theta: Any, d: int) -> tuple[float, np.ndarray]:
    """``(u, U)`` from ``theta`` (1 + d^2,); ValueError on a wrong length or non-finite entries."""
    d = check_int(d, "d")
    theta = as_float_array(theta, "theta")
    if theta.shape != (1 + d * d,):
        raise ValueError(f"theta: expected {1 + d * d} entries for d = {d}, got shape {theta.shape}")
    return float(theta[0]), theta[1:].reshape(d, d)


def effective_matrix(theta: Any, d: int) -> np.ndarray:
    """(R4)/(R5) ``M = u U^T`` (d, d): ``yhat = x_q^T M h`` for one layer with zero cross blocks."""
    u, U = unpack_theta(theta, d)
    return u * U.T


def to_full(theta: Any, d: int) -> tuple[np.ndarray, np.ndarray]:
    """Full (W2) parameters ``(P, Q)`` (d+1, d+1): ``P[d, d] = u``, ``Q[:d, :d] = U``, zero elsewhere."""
    u, U = unpack_theta(theta, d)
    P = np.zeros((d + 1, d + 1))
    Q = np.zeros((d + 1, d + 1))
    P[d, d] = u
    Q[:d, :d] = U
    return P, Q


def from_full(P: Any, Q: Any) -> np.ndarray:
    """``theta = [P[d, d]; vec(Q[:d, :d])]``; ValueError unless the cross blocks ``P[d, :d]`` and
    ``Q[d, :d]`` are zero (the other entries do not enter one layer's prediction)."""
    P, Q = as_float_array(P, "P", ndim=2), as_float_array(Q, "Q", ndim=2)
    d = P.shape[0] - 1
    if P.shape != Q.shape or P.shape != (d + 1, d + 1) or d < 1:
        raise ValueError(f"P, Q: expected two (d+1, d+1) matrices, got {P.shape} and {Q.shape}")
    if np.abs(P[d, :d]).max() > 0 or np.abs(Q[d, :d]).max() > 0:
        raise ValueError("P, Q: the cross blocks P[d, :d] and Q[d, :d] must be zero for theta = [u; vec(U)]")
    return pack_theta(P[d, d], Q[:d, :d])


def zfb_init(d: int, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """[ZFB]'s initialisation: ``P = sigma e_{d+1} e_{d+1}^T``, ``Q[:d, :d] = sigma Theta Theta^T`` with
    ``||Theta Theta^T||_F = 1`` (``Theta`` (d, d) standard normal), cross blocks zero; returns theta.
    It is balanced: ``u^2 - ||U||_F^2 = 0``."""
    d = check_int(d, "d")
    sigma = check_real(sigma, "sigma", low=0.0, low_open=True)
    Theta = check_rng(rng).standard_normal((d, d))
    TT = Theta @ Theta.T
    return pack_theta(sigma, sigma * TT / np.linalg.norm(TT))


def _check_objective(obj: Any) -> RegressionObjective:
    if not isinstance(obj, RegressionObjective):
        raise ValueError(
            f"obj: expected a RegressionObjective (population_objective, sampled_objective), "
            f"got {type(obj).__name__}"
        )
    return obj


def predict_limit(obj: RegressionObjective, theta0: Any) -> np.ndarray:
    """The point of the optimal curve the flow reaches from ``theta0``, predicted by the conserved
    ``q = u^2 - ||U||^2``: ``u_inf^2 = (q + sqrt(q^2 + 4 ||M*||_F^2)) / 2`` with the sign of ``u_0``,
    ``U_inf = M*^T / u_inf`` (assumes ``u`` does not change sign along the flow)."""
    obj = _check_objective(obj)
    theta0 = as_float_array(theta0, "theta0", ndim=1)
    if theta0.shape != (1 + obj.d**2,):
        raise ValueError(f"theta0: expected {1 + obj.d**2} entries, got shape {theta0.shape}")
    u0, _ = unpack_theta(theta0, obj.d)
    q = obj.conserved(theta0)
    m2 = float(np.sum(obj.M_star**2))
    u = np.sign(u0 if u0 != 0 else 1.0) * np.sqrt(0.5 * (q + np.sqrt(q * q + 4 * m2)))
    return pack_theta(u, obj.M_star.T / u)


@dataclass(frozen=True)
class RegressionRichness:
    """(M5) at a point of the optimal curve: Hessian ``ker_dim`` against the tangent (the scaling
    direction ``(-u, U)``, dimension 1), ``subspace_gap = ||P_ker - P_tangent||_2`` (``morse_bott`` when
    the dimensions agree and the gap is below the round-off bound of :func:`lsa_theory.dynamics.richness`),
    ``lambda_min_plus``, ``lambda_max`` and ``kernel_max`` (largest ``|eigenvalue|`` counted as kernel)."""

    ker_dim: int
    tangent_dim: int
    subspace_gap: float
    morse_bott: bool
    lambda_min_plus: float
    lambda_max: float
    kernel_max: float
    eigenvalues: np.ndarray


def richness(obj: RegressionObjective, theta: Any, rtol: float = KERNEL_RTOL) -> RegressionRichness:
    """Hessian spectrum of ``obj`` at ``theta`` with kernel threshold ``rtol * lambda_max`` (as
    :func:`lsa_theory.dynamics.hessian_spectrum`) compared with the tangent of the optimal curve."""
    obj = _check_objective(obj)
    rtol = check_real(rtol, "rtol", low=0.0, low_open=True)
    u, U = unpack_theta(theta, obj.d)
    theta = pack_theta(u, U)
    lam, vec = np.linalg.eigh(obj.hessian(theta))
    lam_max = float(np.abs(lam).max())
    ker = np.abs(lam) <= rtol * lam_max
    t = pack_theta(-u, U)
    t = t / np.linalg.norm(t)
    K = vec[:, ker]
    gap = float(np.linalg.norm(K @ K.T - np.outer(t, t), 2)) if K.shape[1] == 1 else float("inf")
    pos = lam[~ker & (lam > 0)]
    lam_min_plus = float(pos.min()) if pos.size else float("nan")
    gap_tol = _gap_tol(theta.size, lam_max, lam_min_plus)  # the round-off bound of dynamics.richness
    return RegressionRichness(
        ker_dim=int(ker.sum()),
        tangent_dim=1,
        subspace_gap=gap,
        morse_bott=bool(ker.sum() == 1 and gap < gap_tol),
        lambda_min_plus=lam_min_plus,
        lambda_max=lam_max,
        kernel_max=float(np.abs(lam[ker]).max()) if ker.any() else 0.0,
        eigenvalues=lam,
    )


def full_loss_torch(P, Q, E, y_query):
    """``(1/2F) sum_f (masked_lsa(E_f, P, Q)[-1, -1] - y_{q,f})^2`` through the raw (W2) block in
    torch; ``P``, ``Q`` (d+1, d+1), ``E`` (F, d+1, N+1), ``y_query`` (F,). Differentiable in P, Q."""
    import lsa_theory as lt

    out = lt.masked_lsa(E, P, Q)[..., -1, -1]
    return 0.5 * ((out - y_query) ** 2).mean()
