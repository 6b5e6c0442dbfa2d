r"""In-context autoregressive learning [Sa] on the causal (W2) pass: (AR2)-(AR5) of docs/theory.md §9.

Tokens (AR2) ``e_t = (0_d, s_t, s_{t-1})`` in ``R^{3d}``; position t is (W2) on the prompt
``Z_t = [e_1 ... e_t | e_t]`` with ``M = diag(I_t, 0)`` and norm ``1/t`` (AR3), and all positions at
once are one causal pass (:func:`lsa_theory.causal_lsa`). For any ``(P, Q)`` (3d, 3d) only two blocks
reach the prediction, the first d entries of the query column (AR3):

.. math:: \hat s_{t+1} = V S_t K q_t, \qquad z_j = [s_j; s_{j-1}], \quad
          S_t = \tfrac1t \sum_{j=1}^t z_j z_j^\top, \quad q_t = z_t,

``V = P[:d, d:3d]`` (d, 2d), ``K = Q[d:3d, d:3d]`` (2d, 2d) (:func:`blocks_of`,
:func:`causal_predictions`).

(AR4) The GD class: ``P[:d, d:2d] = A``, ``Q[2d:3d, d:2d] = B``, every other entry 0
(:func:`gd_class`), i.e. ``V = [A, 0]``, ``K = [[0, 0], [B, 0]]``, gives
``shat_{t+1} = A Ghat_t B s_t`` with ``Ghat_t = (1/t) sum_j s_j s_{j-1}^T = -grad L_t(0)``,
``L_t(W) = (1/2t) sum_{j=1}^t ||s_j - W s_{j-1}||^2``: ``A = eta I, B = I`` is one gradient step of
size eta from ``W_0 = 0`` followed by the prediction ``W_1 s_t``; general ``(A, B)`` the two-sided
preconditioned step ``W_1 = A (-grad L_t(0)) B`` (:func:`naive_gd_step`, explicit loops).
(AR5) This holds for every W (orthogonal or not), every ``s_0``, A, B; the middle and last blocks
of every column are unchanged. :data:`ALGORITHM` declares it to the registry.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import lsa_theory as lt
from lsa_theory.autoregressive import augmented_tokens, haar_orthogonal, powers
from lsa_theory.checks import as_float_array, check_int

from ..numeric import is_exact, zeros
from ..registry import Algorithm

__all__ = [
    "gd_class",
    "naive_gd_step",
    "blocks_of",
    "embed_blocks",
    "causal_predictions",
    "gd_predictions",
    "ar_instance",
    "GDAutoregressive",
    "ALGORITHM",
]


def _square(M: Any, name: str, d: int | None = None) -> np.ndarray:
    if is_exact(M):
        M = np.asarray(M.tolist() if hasattr(M, "tolist") else M, dtype=object)
    else:
        M = as_float_array(M, name, ndim=2)
    if M.ndim != 2 or M.shape[0] != M.shape[1] or (d is not None and M.shape[0] != d):
        want = f"({d}, {d})" if d is not None else "a square (d, d) matrix"
        raise ValueError(f"{name}: expected {want}, got shape {M.shape}")
    return M


def gd_class(A: Any, B: Any) -> tuple[np.ndarray, np.ndarray]:
    """(AR4) ``(P, Q)`` (3d, 3d): ``P[:d, d:2d] = A``, ``Q[2d:3d, d:2d] = B``, every other entry 0;
    ``A``, ``B`` (d, d) float (float64 result) or exact (``dtype=object`` result, for the proof)."""
    exact = is_exact(A, B)
    A = _square(A, "A")
    B = _square(B, "B", A.shape[0])
    d = A.shape[0]
    P, Q = zeros((3 * d, 3 * d), exact), zeros((3 * d, 3 * d), exact)
    P[:d, d : 2 * d] = A
    Q[2 * d :, d : 2 * d] = B
    return P, Q


def naive_gd_step(s, A, B, t: int) -> list:
    """(AR4)'s target written out: ``W_1 = A (-grad L_t(0)) B`` with ``grad L_t(W) = -(1/t)
    sum_{j=1}^t (s_j - W s_{j-1}) s_{j-1}^T``, then the prediction ``W_1 s_t``; ``s[j][i]`` is
    coordinate i of ``s_j`` (j = 0..t at least), ``A[i][k]``, ``B[i][k]`` entries. Explicit loops with
    ``+ - * /`` only (floats, sympy symbols, ring elements). Returns ``shat_{t+1}`` as a list of d."""
    t = check_int(t, "t")
    if len(s) < t + 1:
        raise ValueError(f"s: position t = {t} needs the states s_0..s_{t}, got {len(s)}")
    d = len(s[0])
    grad = [[0] * d for _ in range(d)]  # grad L_t(0) = -(1/t) sum_j (s_j - 0 s_{j-1}) s_{j-1}^T
    for j in range(1, t + 1):
        for i in range(d):
            resid = s[j][i]
            for k in range(d):
                resid = resid - 0 * s[j - 1][k]
            for k in range(d):
                grad[i][k] = grad[i][k] - resid * s[j - 1][k] / t
    W1 = [[0] * d for _ in range(d)]
    for i in range(d):
        for k in range(d):
            for p in range(d):
                for q in range(d):
                    W1[i][k] = W1[i][k] + A[i][p] * (0 - grad[p][q]) * B[q][k]
    out = [0] * d
    for i in range(d):
        for k in range(d):
            out[i] = out[i] + W1[i][k] * s[t][k]
    return out


def blocks_of(P: Any, Q: Any) -> tuple[np.ndarray, np.ndarray]:
    """(AR3) the two blocks that reach the prediction: ``V = P[:d, d:3d]`` (d, 2d) and
    ``K = Q[d:3d, d:3d]`` (2d, 2d) of ``(P, Q)`` (3d, 3d)."""
    P, Q = as_float_array(P, "P", ndim=2), as_float_array(Q, "Q", ndim=2)
    D = P.shape[0]
    if P.shape != (D, D) or Q.shape != (D, D) or D % 3 or D == 0:
        raise ValueError(f"P, Q: expected two (3d, 3d) matrices, got {P.shape} and {Q.shape}")
    d = D // 3
    return P[:d, d:].copy(), Q[d:, d:].copy()


def embed_blocks(V: Any, K: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(P, Q)`` (3d, 3d) with ``P[:d, d:3d] = V`` (d, 2d), ``Q[d:3d, d:3d] = K`` (2d, 2d), zero
    elsewhere: the inverse of :func:`blocks_of` on the entries that reach the prediction."""
    V, K = as_float_array(V, "V", ndim=2), as_float_array(K, "K", ndim=2)
    d = V.shape[0]
    if V.shape != (d, 2 * d) or K.shape != (2 * d, 2 * d):
        raise ValueError(f"V, K: expected (d, 2d) and (2d, 2d), got {V.shape} and {K.shape}")
    P, Q = np.zeros((3 * d, 3 * d)), np.zeros((3 * d, 3 * d))
    P[:d, d:], Q[d:, d:] = V, K
    return P, Q


def causal_predictions(Zc: Any, V: Any, K: Any) -> np.ndarray:
    """(AR3) ``shat_{t+1} = V S_t K z_t`` at every position t = 1..T from the columns ``Zc``
    (..., k, T) (``z_j = [s_j; s_{j-1}]``, k = 2d, for augmented tokens; ``z_j = s_j``, k = d, for
    the non-augmented ones of (AR10)) and ``V`` (..., d, k), ``K`` (..., k, k): computed as
    ``V Zc (C * (Zc^T K Zc))`` with the causal weights ``C[j, t] = [j <= t]/t``
    (:func:`lsa_theory.causal_weights`). Returns (..., T, d), row t - 1 predicting ``s_{t+1}``."""
    Zc = as_float_array(Zc, "Zc")
    V, K = as_float_array(V, "V"), as_float_array(K, "K")
    if Zc.ndim < 2:
        raise ValueError(f"Zc: expected shape (..., k, T), got {Zc.shape}")
    k, T = Zc.shape[-2:]
    if V.ndim < 2 or V.shape[-1] != k or K.ndim < 2 or K.shape[-2:] != (k, k):
        raise ValueError(f"V, K: expected (..., d, {k}) and (..., {k}, {k}), got {V.shape} and {K.shape}")
    C = lt.causal_weights(T)
    out = V @ (Zc @ (C * (np.swapaxes(Zc, -1, -2) @ (K @ Zc))))
    return np.swapaxes(out, -1, -2)


def gd_predictions(s: Any, A: Any, B: Any) -> np.ndarray:
    """(AR4) ``shat_{t+1} = A Ghat_t B s_t``, t = 1..T, vectorised: ``s`` (..., T + 1, d) holding
    ``s_0..s_T`` (row t - 1 of the result uses ``s_0..s_t`` only), ``A``, ``B`` (d, d) -> (..., T, d)."""
    s = as_float_array(s, "s")
    d = s.shape[-1]
    A, B = _square(A, "A", d), _square(B, "B", d)
    V = np.concatenate([A, np.zeros((d, d))], axis=1)
    K = np.zeros((2 * d, 2 * d))
    K[d:, :d] = B
    return causal_predictions(augmented_tokens(s)[..., d:, :], V, K)


# ------------------------------------------------------------------------------- declaration


def ar_instance(d: int, T: int, rng: np.random.Generator) -> dict:
    """(AR5)'s instances: a non-orthogonal ``W = O + 0.3 N(0, 1)/sqrt(d)`` (``O`` Haar-orthogonal),
    ``s_0 ~ N(0, I_d/d)``, the states ``s_0..s_T`` as ``"s"`` (T + 1, d), and random non-symmetric
    ``A``, ``B = I + 0.5 N(0, 1)/sqrt(d)`` (d, d) as per-instance hyperparameters."""
    d, T = check_int(d, "d"), check_int(T, "T")
    O = haar_orthogonal(1, d, rng)[0]
    W = O + 0.3 * rng.standard_normal((d, d)) / np.sqrt(d)
    s = powers(W, rng.standard_normal(d) / np.sqrt(d), T)
    A = np.eye(d) + 0.5 * rng.standard_normal((d, d)) / np.sqrt(d)
    B = np.eye(d) + 0.5 * rng.standard_normal((d, d)) / np.sqrt(d)
    return {"s": s, "hyper": {"A": A, "B": B}}


class GDAutoregressive(Algorithm):
    """(AR4)/(AR5): the masked block (W2) on the prompt of position T, ``Z_T = [e_1 ... e_T | e_T]``
    with augmented tokens (AR2), and the GD-class ``(P, Q)`` of :func:`gd_class`, predict
    ``shat_{T+1} = A Ghat_T B s_T`` (first d entries of the query column) for any W, ``s_0``, A, B;
    the middle and last blocks of every column are unchanged. Every position t of a sequence is the
    last position of its first t + 1 states, so the sizes ``T = 1..12`` of the sweeps cover every
    position (tests/constructions/test_autoregressive.py also checks each t of one sequence and
    the causal all-positions pass)."""

    name = "gd_autoregressive"
    claim = "(AR5)"
    statement = "one masked layer (AR4) on (AR2) tokens = the prediction of one preconditioned GD step"
    block = "masked"
    hyper = {}
    symbolic_depths = (1,)
    bilinear = False  # the readout is the first d rows, not the last (effective_blocks does not apply)
    invariant_text = "middle and last blocks of every column"

    def sizes(self, quick):
        return {"d": 3, "T": 5} if quick else {"d": 6, "T": 12}

    def symbolic_sizes(self):
        return {"d": 2, "T": 3}

    def size_ranges(self):
        return {"d": (1, 6), "T": (1, 12)}

    def draw(self, sizes, rng):
        return ar_instance(sizes["d"], sizes["T"], rng)

    def columns(self, inst, hyper):
        s = np.asarray(inst["s"])
        d = s.shape[1]
        zero = np.zeros((d, s.shape[0] - 1), dtype=s.dtype)
        if s.dtype == object:
            zero[:] = 0
        X = np.concatenate([zero, s[1:].T, s[:-1].T], axis=0)  # (AR2) e_t = (0, s_t, s_{t-1})
        return X, X[:, -1].copy()

    def naive(self, inst, hyper, depth):
        if depth != 1:
            raise ValueError(f"depth: (AR4) is one layer, got {depth}")
        s = np.asarray(inst["s"])
        A, B = (np.asarray(hyper[k]).tolist() for k in ("A", "B"))
        return np.array(naive_gd_step(s.tolist(), A, B, s.shape[0] - 1))

    def construction(self, sizes, hyper, c=1.0, depth=1):
        return [gd_class(hyper["A"], hyper["B"])]

    def readout(self, out, sizes):
        return out[: sizes["d"], -1]

    def invariant(self, Z, Z_out, m, k):
        """The middle and last blocks (rows ``d..3d``) of every column: ``Z_out[d:] - Z[d:]``."""
        return (Z_out[k:, :] - Z[k:, :]).ravel()


ALGORITHM = GDAutoregressive()
