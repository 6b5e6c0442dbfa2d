r"""In-context linear regression on the masked block (W2): (R1), (R2) [vO], (R3) [Ahn], (R4)'s prediction.

(R1) Prompt ``E = [[x_1 ... x_N, x_q], [y_1 ... y_N, 0]]`` of shape (d+1, N+1); the block is (W2),
``E_out = E + (1/N) P E M E^T Q E`` with ``M = diag(I_N, 0)`` (:func:`lsa_theory.masked_lsa`).

(R2) [vO] ``P = e_{d+1} e_{d+1}^T``, ``Q = [[eta I_d, 0], [0, 0]]``: ``E_out[-1, -1] = (eta/N) sum_i
y_i x_i^T x_q``, *plus* the prediction ``x_q^T w_1`` of one gradient step of size ``eta`` from 0 on
``R(w) = (1/2N) sum_i (w^T x_i - y_i)^2``.

(R3) [Ahn, Lemma 1] ``P_l = e_{d+1} e_{d+1}^T``, ``Q_l = [[-A_l, 0], [0, 0]]``: after L layers the
query's last entry is *minus* ``x_q^T w_L``, ``w_{l+1} = w_l - A_l^T grad R(w_l)`` from ``w_0 = 0``,
and the context's y-row holds the residuals ``y_i - x_i^T w_L`` (the x-rows never change).

One layer for *any* ``(P, Q)`` (derived here; the basis of (R4)/(R5)): with ``S = (1/N) sum x_i
x_i^T``, ``h = (1/N) sum y_i x_i``, ``s = (1/N) sum y_i^2``, ``p = [p_x; p_y]`` the last row of ``P``,
``Q11 = Q[:d, :d]`` and ``q21 = Q[d, :d]``,

.. math:: E_{\rm out}[-1,-1] = p_x^\top S Q_{11} x_q + (p_x^\top h)(q_{21}^\top x_q)
          + p_y\, h^\top Q_{11} x_q + p_y\, s\, q_{21}^\top x_q ,

so with the cross blocks ``p_x = 0``, ``q21 = 0`` the prediction is ``x_q^T M h`` with
``M = p_y Q11^T`` (:func:`prediction_from_statistics`); (R2) is ``M = eta I``.

Each claim has one construction (float64, or exact for a symbolic ``eta`` / ``A_l``), a
deliberately naive loop (explicit Python loops with ``+ * /`` only, so it also runs on symbols)
and a registry declaration (:data:`GD_ALGORITHM`, :data:`PRECOND_ALGORITHM`) from which
:mod:`lsa_theory.constructions.derive` builds the numeric rows and the fixed-size exact proof.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from lsa_theory import backend as B
from lsa_theory.checks import as_float_array, check_finite, check_int, check_real

from ..numeric import eye, is_exact, zeros
from ..registry import Algorithm

__all__ = [
    "regression_prompt",
    "statistics",
    "gd",
    "precond_gd",
    "naive_gd",
    "naive_precond_gd",
    "prediction_from_statistics",
    "regression_instance",
]


def regression_prompt(X: Any, y: Any, x_query: Any) -> Any:
    """(R1): ``E`` (..., d+1, N+1) from ``X`` (..., N, d) rows ``x_i``, ``y`` (..., N), ``x_query`` (..., d).

    Context column ``i`` is ``[x_i; y_i]``, the last (query) column ``[x_q; 0]``; numpy in -> numpy
    out, torch in -> torch out."""
    X = B.like(X, X)
    y, q = B.like(X, y), B.like(X, x_query)
    if X.ndim < 2 or X.shape[-2] < 1 or X.shape[-1] < 1:
        raise ValueError(f"X: expected shape (..., N, d) with N, d >= 1, got {tuple(X.shape)}")
    N, d = X.shape[-2], X.shape[-1]
    if tuple(y.shape[-1:]) != (N,):
        raise ValueError(f"y: expected shape (..., {N}) to match N of X, got {tuple(y.shape)}")
    if tuple(q.shape[-1:]) != (d,):
        raise ValueError(f"x_query: expected shape (..., {d}) to match d of X, got {tuple(q.shape)}")
    for name, v in (("X", X), ("y", y), ("x_query", q)):
        check_finite(v, name)
    batch = B.broadcast_batch(X.shape[:-2], y.shape[:-1], q.shape[:-1])
    E = B.zeros(X, batch + (d + 1, N + 1), B.result_dtype(X, y, q))
    E[..., :d, :N] = X.mT
    E[..., d, :N] = y
    E[..., :d, N] = q
    return E


def statistics(X: Any, y: Any) -> tuple[Any, Any, Any]:
    """``(S, h, s)``: ``S = (1/N) sum x_i x_i^T`` (..., d, d), ``h = (1/N) sum y_i x_i`` (..., d),
    ``s = (1/N) sum y_i^2`` (...) of a context ``X`` (..., N, d), ``y`` (..., N)."""
    N = X.shape[-2]
    S = X.mT @ X / N
    h = (X.mT @ y[..., :, None])[..., 0] / N
    return S, h, (y * y).sum(-1) / N


def gd(d: int, eta: float) -> tuple[np.ndarray, np.ndarray]:
    """(R2) [vO]: ``(P, Q)`` of shape (d+1, d+1), ``P = e_{d+1} e_{d+1}^T``, ``Q[:d, :d] = eta I_d``;
    ``dtype=object`` arrays for a symbolic ``eta``."""
    d = check_int(d, "d")
    exact = is_exact(eta)
    if not exact:
        eta = check_real(eta, "eta")
    P = zeros((d + 1, d + 1), exact)
    P[d, d] = 1 if exact else 1.0
    Q = zeros((d + 1, d + 1), exact)
    Q[:d, :d] = eta * eye(d, exact)
    return P, Q


def _check_preconditioners(preconditioners: Sequence[Any]) -> list[np.ndarray]:
    if len(preconditioners) < 1:
        raise ValueError("preconditioners: need at least one A_l")
    if is_exact(*preconditioners):
        out = [np.asarray(A.tolist() if hasattr(A, "tolist") else A, dtype=object) for A in preconditioners]
    else:
        out = [as_float_array(A, f"preconditioners[{l}]", ndim=2) for l, A in enumerate(preconditioners)]
    d = out[0].shape[0]
    for l, A in enumerate(out):
        if A.shape != (d, d):
            raise ValueError(f"preconditioners[{l}]: expected shape ({d}, {d}), got {A.shape}")
    return out


def precond_gd(preconditioners: Sequence[Any]) -> list[tuple[np.ndarray, np.ndarray]]:
    """(R3) [Ahn, Lemma 1]: one ``(P_l, Q_l)`` (d+1, d+1) per ``A_l`` (d, d):
    ``P_l = e_{d+1} e_{d+1}^T``, ``Q_l = [[-A_l, 0], [0, 0]]``; ``dtype=object`` pairs when the
    ``A_l`` are symbolic (sympy matrices or object arrays)."""
    layers = []
    for A in _check_preconditioners(preconditioners):
        d, exact = A.shape[0], A.dtype == object
        P = zeros((d + 1, d + 1), exact)
        P[d, d] = 1 if exact else 1.0
        Q = zeros((d + 1, d + 1), exact)
        Q[:d, :d] = -A
        layers.append((P, Q))
    return layers


def naive_precond_gd(X, y, preconditioners) -> list:
    """(R3)'s target, written out: ``w_{l+1} = w_l - A_l^T grad R(w_l)`` from ``w_0 = 0``, with
    ``grad R(w) = (1/N) sum_i (w^T x_i - y_i) x_i``; ``X[i][j]`` is coordinate j of ``x_i``,
    ``preconditioners[l][k][j]`` entry (k, j) of ``A_l``. Returns ``w_L`` as a list of d entries
    (floats or sympy expressions)."""
    N = len(y)
    if N == 0 or len(X) != N:
        raise ValueError(f"X, y: expected N >= 1 rows in both, got {len(X)} and {N}")
    d = len(X[0])
    w = [0] * d
    for A in preconditioners:
        grad = [0] * d
        for i in range(N):
            pred = 0
            for j in range(d):
                pred = pred + w[j] * X[i][j]
            for j in range(d):
                grad[j] = grad[j] + (pred - y[i]) * X[i][j] / N
        new = list(w)
        for j in range(d):
            for k in range(d):
                new[j] = new[j] - A[k][j] * grad[k]
        w = new
    return w


def naive_gd(X, y, eta) -> list:
    """(R2)'s target, written out: one gradient step ``w_1 = 0 - eta grad R(0)`` on
    ``R(w) = (1/2N) sum_i (w^T x_i - y_i)^2``, i.e. ``(eta/N) sum_i y_i x_i``, as a list of d entries."""
    N = len(y)
    if N == 0 or len(X) != N:
        raise ValueError(f"X, y: expected N >= 1 rows in both, got {len(X)} and {N}")
    d = len(X[0])
    grad = [0] * d  # grad R(0) = (1/N) sum_i (0 - y_i) x_i
    for i in range(N):
        for j in range(d):
            grad[j] = grad[j] + (0 - y[i]) * X[i][j] / N
    return [0 - eta * grad[j] for j in range(d)]


def prediction_from_statistics(S: Any, h: Any, s: Any, x_query: Any, P: Any, Q: Any) -> Any:
    """One (W2) layer's ``E_out[-1, -1]`` on an (R1) prompt for any ``P``, ``Q`` (..., d+1, d+1):
    ``p_x^T S Q11 x_q + (p_x^T h)(q21^T x_q) + p_y h^T Q11 x_q + p_y s q21^T x_q`` from the
    statistics of :func:`statistics`; returns shape (...)."""
    d = S.shape[-1]
    px, py = P[..., d, :d], P[..., d, d]
    Q11, q21 = Q[..., :d, :d], Q[..., d, :d]
    Qx = (Q11 @ x_query[..., :, None])[..., 0]
    qx = (q21 * x_query).sum(-1)
    return (
        (px * (S @ Qx[..., :, None])[..., 0]).sum(-1)
        + (px * h).sum(-1) * qx
        + py * (h * Qx).sum(-1)
        + py * s * qx
    )


# ------------------------------------------------------------------------------- declarations


def regression_instance(d: int, N: int, rng: np.random.Generator) -> dict:
    """(R4)'s data at random non-isotropic ``Lambda`` (eigenvalues ``geomspace(1, 0.1, d)`` in a
    random basis): ``X`` (N, d), ``x_q`` (d,) ``~ N(0, Lambda)``, ``w ~ N(0, I_d)``, ``y = X w``."""
    R, _ = np.linalg.qr(rng.standard_normal((d, d)))
    Lambda = (R * np.geomspace(1.0, 0.1, d)) @ R.T
    Xq = rng.multivariate_normal(np.zeros(d), Lambda, size=N + 1)
    return {"X": Xq[:N], "y": Xq[:N] @ rng.standard_normal(d), "xq": Xq[N]}


class _Regression(Algorithm):
    """Shared layout of the regression declarations: the (R1) prompt on the masked block."""

    block = "masked"
    symbolic_depths = (1,)

    def sizes(self, quick):
        return {"d": 3, "N": 20} if quick else {"d": 5, "N": 20}

    def symbolic_sizes(self):
        return {"d": 2, "N": 3}

    def size_ranges(self):
        return {"d": (1, 5), "N": (1, 15)}

    def draw(self, sizes, rng):
        return regression_instance(sizes["d"], sizes["N"], rng)

    def columns(self, inst, hyper):
        X, y, q = (np.asarray(inst[k]) for k in ("X", "y", "xq"))
        zero = np.zeros(1, dtype=q.dtype) if q.dtype != object else np.full(1, 0, dtype=object)
        return np.concatenate([X.T, y[None, :]], axis=0), np.concatenate([q, zero])


class GDRegression(_Regression):
    """(R2) [vO]: one masked layer is one gradient step of size ``eta`` from 0, read out as
    ``+E_out[-1, -1] = x_q^T w_1``."""

    name = "gd_regression"
    claim = "(R2)"
    statement = "one masked layer (R2) on (R1) = the prediction of one GD step from 0"
    hyper = {"eta": 0.5}
    hyper_ranges = {"eta": (0.1, 2.0)}
    value_sign = 1

    def naive(self, inst, hyper, depth):
        if depth != 1:
            raise ValueError(f"depth: (R2) is one layer, got {depth}")
        w = naive_gd(np.asarray(inst["X"]).tolist(), list(inst["y"]), hyper["eta"])
        return np.array([sum(w[j] * inst["xq"][j] for j in range(len(w)))])

    def construction(self, sizes, hyper, c=1.0, depth=1):
        return [gd(sizes["d"], hyper["eta"])]

    def readout(self, out, sizes):
        return out[-1:, -1]

    def all_sizes_forms(self):
        from ..proof_forms import regression_gd_forms

        return regression_gd_forms()


class PrecondGDRegression(_Regression):
    """(R3) [Ahn, Lemma 1]: ``L`` masked layers with ``Q_l = [[-A_l, 0], [0, 0]]`` are ``L`` steps of
    preconditioned GD from 0; the readout is ``-E_L[-1, -1] = x_q^T w_L`` *and* the context's
    y-row, ``y_i - x_i^T w_L`` (the residuals). Each instance draws its own ``A_l = I/2 +
    0.3 N(0, 1)/sqrt(d)`` (non-symmetric; symbols in the sympy identity)."""

    name = "precond_gd_regression"
    claim = "(R3)"
    statement = "L masked layers (R3) on (R1) = L preconditioned GD steps from 0 (prediction and residuals)"
    hyper = {}
    depths = (1, 2, 3)
    symbolic_depths = (2,)
    bilinear = False  # the readout includes the context's y-row

    def draw(self, sizes, rng):
        inst = super().draw(sizes, rng)
        d = sizes["d"]
        A = 0.5 * np.eye(d) + 0.3 * rng.standard_normal((max(self.depths), d, d)) / np.sqrt(d)
        return {**inst, "hyper": {"A": A}}

    def naive(self, inst, hyper, depth):
        X, y = np.asarray(inst["X"]), list(inst["y"])
        w = naive_precond_gd(X.tolist(), y, [np.asarray(A).tolist() for A in hyper["A"][:depth]])
        pred = sum(w[j] * inst["xq"][j] for j in range(len(w)))
        resid = [y[i] - sum(w[j] * X[i][j] for j in range(len(w))) for i in range(len(y))]
        return np.array([pred, *resid])

    def construction(self, sizes, hyper, c=1.0, depth=1):
        As = hyper["A"][:depth]
        return precond_gd(list(As) if is_exact(As) else [np.asarray(A, dtype=float) for A in As])

    def readout(self, out, sizes):
        return np.concatenate([-out[-1:, -1], out[-1, :-1]])

    def all_sizes_forms(self):
        from ..proof_forms import preconditioned_gd_forms

        return preconditioned_gd_forms()


GD_ALGORITHM = GDRegression()
PRECOND_ALGORITHM = PrecondGDRegression()
