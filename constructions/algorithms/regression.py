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

Each claim has a float64 construction, a sympy twin, a deliberately naive loop (explicit Python
loops with ``+ * /`` only, so it also runs on sympy symbols), a ``verify_*`` residual and a
fixed-size ``prove_*`` proof by computation.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import sympy as sp

import lsa_theory as lt
from lsa_theory import _backend as B
from lsa_theory._checks import as_float_array, check_finite, check_int, check_real

from ..registry import Algorithm
from ..symbolic import SymbolicProof, masked_lsa_symbolic

__all__ = [
    "regression_prompt",
    "statistics",
    "gd",
    "precond_gd",
    "gd_symbolic",
    "precond_gd_symbolic",
    "naive_gd",
    "naive_precond_gd",
    "prediction_from_statistics",
    "verify_gd",
    "verify_precond_gd",
    "verify_prediction",
    "prove_gd",
    "prove_precond_gd",
    "prove_prediction",
]

eta_s = sp.Symbol("eta", real=True)


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
    """(R2) [vO]: ``(P, Q)`` of shape (d+1, d+1), ``P = e_{d+1} e_{d+1}^T``, ``Q[:d, :d] = eta I_d``."""
    d = check_int(d, "d")
    eta = check_real(eta, "eta")
    P = np.zeros((d + 1, d + 1))
    P[d, d] = 1.0
    Q = np.zeros((d + 1, d + 1))
    Q[:d, :d] = eta * np.eye(d)
    return P, Q


def _check_preconditioners(preconditioners: Sequence[Any]) -> list[np.ndarray]:
    if len(preconditioners) < 1:
        raise ValueError("preconditioners: need at least one A_l")
    out = [as_float_array(A, f"preconditioners[{l}]", ndim=2) for l, A in enumerate(preconditioners)]
    d = out[0].shape[0]
    for l, A in enumerate(out):
        if A.shape != (d, d):
            raise ValueError(f"preconditioners[{l}]: expected shape ({d}, {d}), got {A.shape}")
    return out


def precond_gd(preconditioners: Sequence[Any]) -> list[tuple[np.ndarray, np.ndarray]]:
    """(R3) [Ahn, Lemma 1]: one ``(P_l, Q_l)`` (d+1, d+1) per ``A_l`` (d, d):
    ``P_l = e_{d+1} e_{d+1}^T``, ``Q_l = [[-A_l, 0], [0, 0]]``."""
    layers = []
    for A in _check_preconditioners(preconditioners):
        d = A.shape[0]
        P = np.zeros((d + 1, d + 1))
        P[d, d] = 1.0
        Q = np.zeros((d + 1, d + 1))
        Q[:d, :d] = -A
        layers.append((P, Q))
    return layers


def gd_symbolic(d: int, eta=eta_s) -> tuple[sp.Matrix, sp.Matrix]:
    """(R2) as sympy matrices (d+1, d+1), symbolic ``eta`` by default."""
    d = check_int(d, "d")
    P = sp.zeros(d + 1, d + 1)
    P[d, d] = 1
    Q = sp.zeros(d + 1, d + 1)
    for j in range(d):
        Q[j, j] = eta
    return P, Q


def precond_gd_symbolic(preconditioners: Sequence[sp.Matrix]) -> list[tuple[sp.Matrix, sp.Matrix]]:
    """(R3) as sympy matrices: ``P_l = e_{d+1} e_{d+1}^T``, ``Q_l = [[-A_l, 0], [0, 0]]``."""
    layers = []
    for A in preconditioners:
        d = A.shape[0]
        P = sp.zeros(d + 1, d + 1)
        P[d, d] = 1
        Q = sp.zeros(d + 1, d + 1)
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


def _relative(out, ref) -> float:
    from ..verify import relative_residual

    return relative_residual(out, ref)


def _residuals(readout: float, context: float):
    from ..verify import Residuals

    return Residuals(readout, context)


def verify_gd(X, y, x_query, eta):
    """(R2): one (W2) layer with :func:`gd` on the (R1) prompt; ``readout``: ``E_out[-1, -1]`` against
    ``x_q^T w_1`` of :func:`naive_gd`; ``context``: change of the x-rows of every column (exactly 0).
    ``X`` (N, d), ``y`` (N,), ``x_query`` (d,)."""
    X, y, q = (as_float_array(a, n) for a, n in ((X, "X"), (y, "y"), (x_query, "x_query")))
    E = regression_prompt(X, y, q)
    d = X.shape[-1]
    E_out = lt.masked_lsa(E, *gd(d, eta))
    w1 = np.array([float(v) for v in naive_gd(X.tolist(), y.tolist(), eta)])
    return _residuals(_relative(E_out[d, -1], q @ w1), float(np.abs(E_out[:d] - E[:d]).max(initial=0.0)))


def verify_precond_gd(X, y, x_query, preconditioners):
    """(R3): L (W2) layers of :func:`precond_gd`; ``readout``: the larger relative residual of
    ``-E_L[-1, -1]`` against ``x_q^T w_L`` and of the context's y-row against ``y_i - x_i^T w_L``
    (:func:`naive_precond_gd`); ``context``: change of the x-rows (exactly 0)."""
    X, y, q = (as_float_array(a, n) for a, n in ((X, "X"), (y, "y"), (x_query, "x_query")))
    As = _check_preconditioners(preconditioners)
    E = regression_prompt(X, y, q)
    d = X.shape[-1]
    E_out = lt.masked_lsa_stack(E, precond_gd(As))
    wL = np.array([float(v) for v in naive_precond_gd(X.tolist(), y.tolist(), [A.tolist() for A in As])])
    readout = max(_relative(-E_out[d, -1], q @ wL), _relative(E_out[d, :-1], y - X @ wL))
    return _residuals(readout, float(np.abs(E_out[:d] - E[:d]).max(initial=0.0)))


def verify_prediction(X, y, x_query, P, Q) -> float:
    """Relative residual of :func:`prediction_from_statistics` against ``masked_lsa(E, P, Q)[-1, -1]``
    for dense ``P``, ``Q`` (d+1, d+1)."""
    X, y, q = (as_float_array(a, n) for a, n in ((X, "X"), (y, "y"), (x_query, "x_query")))
    P, Q = as_float_array(P, "P", ndim=2), as_float_array(Q, "Q", ndim=2)
    E = regression_prompt(X, y, q)
    S, h, s = statistics(X, y)
    return _relative(prediction_from_statistics(S, h, s, q, P, Q), lt.masked_lsa(E, P, Q)[-1, -1])


def _symbolic_prompt(d: int, N: int):
    X = [[sp.Symbol(f"x_{i}_{j}", real=True) for j in range(d)] for i in range(N)]
    y = [sp.Symbol(f"y_{i}", real=True) for i in range(N)]
    q = [sp.Symbol(f"q_{j}", real=True) for j in range(d)]
    E = sp.zeros(d + 1, N + 1)
    for i in range(N):
        for j in range(d):
            E[j, i] = X[i][j]
        E[d, i] = y[i]
    for j in range(d):
        E[j, N] = q[j]
    return X, y, q, E


def _count(claim: str, sizes: dict, residual: list, t0: float) -> SymbolicProof:
    nonzero = sum(1 for e in residual if sp.expand(e) != 0)
    return SymbolicProof(claim, sizes, len(residual), nonzero, time.perf_counter() - t0)


def prove_gd(d: int = 2, N: int = 3) -> SymbolicProof:
    """(R2) at these sizes only: one (W2) layer with symbolic ``eta`` on a fully symbolic (R1)
    prompt; residual entries: ``E_out[-1, -1] - x_q^T w_1`` and the x-rows of every column minus
    their input."""
    t0 = time.perf_counter()
    d, N = check_int(d, "d"), check_int(N, "N")
    X, y, q, E = _symbolic_prompt(d, N)
    out = masked_lsa_symbolic(E, *gd_symbolic(d)).applyfunc(sp.expand)
    w1 = naive_gd(X, y, eta_s)
    residual = [out[d, N] - sum(w1[j] * q[j] for j in range(d))]
    residual += list(out[:d, :] - E[:d, :])
    return _count("(R2)", {"d": d, "N": N}, residual, t0)


def prove_precond_gd(d: int = 2, N: int = 3, n_layers: int = 2) -> SymbolicProof:
    """(R3) at these sizes only: L (W2) layers with fully symbolic, non-symmetric ``A_l`` on a fully
    symbolic (R1) prompt; residual entries: the whole output matrix minus its target (x-rows
    unchanged, y-row ``y_i - x_i^T w_L``, query entry ``-x_q^T w_L``)."""
    t0 = time.perf_counter()
    d, N, L = check_int(d, "d"), check_int(N, "N"), check_int(n_layers, "n_layers")
    X, y, q, E = _symbolic_prompt(d, N)
    As = [sp.Matrix(d, d, lambda k, j, l=l: sp.Symbol(f"A{l}_{k}_{j}", real=True)) for l in range(L)]
    out = E
    for P, Q in precond_gd_symbolic(As):
        out = masked_lsa_symbolic(out, P, Q).applyfunc(sp.expand)
    wL = naive_precond_gd(X, y, [A.tolist() for A in As])
    target = E.copy()
    for i in range(N):
        target[d, i] = y[i] - sum(X[i][j] * wL[j] for j in range(d))
    target[d, N] = -sum(q[j] * wL[j] for j in range(d))
    return _count("(R3)", {"d": d, "N": N, "L": L}, list(out - target), t0)


def prove_prediction(d: int = 2, N: int = 2) -> SymbolicProof:
    """The one-layer prediction formula at these sizes only: fully symbolic ``P``, ``Q`` and
    prompt, ``masked_lsa(E, P, Q)[-1, -1]`` minus :func:`prediction_from_statistics`."""
    t0 = time.perf_counter()
    d, N = check_int(d, "d"), check_int(N, "N")
    X, y, q, E = _symbolic_prompt(d, N)
    P = sp.Matrix(d + 1, d + 1, lambda i, j: sp.Symbol(f"P_{i}_{j}", real=True))
    Q = sp.Matrix(d + 1, d + 1, lambda i, j: sp.Symbol(f"Q_{i}_{j}", real=True))
    out = masked_lsa_symbolic(E, P, Q)[d, N]
    Xm = sp.Matrix(X)
    ym = sp.Matrix(y)
    S = Xm.T * Xm / N
    h = Xm.T * ym / N
    s = (ym.T * ym)[0, 0] / N
    qm = sp.Matrix(q)
    px, py = P[d, :d].T, P[d, d]
    Q11, q21 = Q[:d, :d], Q[d, :d].T
    formula = (
        (px.T * S * Q11 * qm)[0, 0]
        + (px.T * h)[0, 0] * (q21.T * qm)[0, 0]
        + py * (h.T * Q11 * qm)[0, 0]
        + py * s * (q21.T * qm)[0, 0]
    )
    return _count("(R4)", {"d": d, "N": N}, [out - formula], t0)


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

    def construction_symbolic(self, sizes, hyper, c, depth=1):
        return [gd_symbolic(sizes["d"], hyper["eta"])]

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
        return precond_gd([np.asarray(A, dtype=float) for A in hyper["A"][:depth]])

    def construction_symbolic(self, sizes, hyper, c, depth=1):
        return precond_gd_symbolic([sp.Matrix(np.asarray(A, dtype=object)) for A in hyper["A"][:depth]])

    def readout(self, out, sizes):
        return np.concatenate([-out[-1:, -1], out[-1, :-1]])

    def all_sizes_forms(self):
        from ..proof_forms import preconditioned_gd_forms

        return preconditioned_gd_forms()


GD_ALGORITHM = GDRegression()
PRECOND_ALGORITHM = PrecondGDRegression()
