r"""Linear self-attention blocks: (L1) of [LL] and the masked block (W2) of [W].

(L1) [LL eq. 1]:

.. math:: H_{\rm out} = H + \tfrac1n (V H)(H^\top P H), \qquad P, V \in \mathbb R^{D\times D},

no mask, no softmax; ``H`` has ``n`` context columns and one parameter column. ``TF_theta(H)`` is
the last ``d`` entries of the last column of ``H_out`` (:func:`readout`).

(W2) [W]: :math:`TF(Z; P, Q) = Z + \tfrac1n P Z M Z^\top Q Z`, ``M = diag(I_n, 0)``: the last
``n_queries`` columns are queries and are masked out of the key/value sum. Any other
``(n+n_q) x (n+n_q)`` mask whose query rows and columns are zero may be passed, e.g. the (W5)
eligibility-trace mask :func:`trace_mask`. Index convention: ``M[i, j]`` weighs value column ``i``
(its ``P``-row, the TD error ``delta_i`` in [W]'s constructions) against key column ``j`` (its
``Q``-side, the features ``phi_j``), so the update reads
``(1/n) sum_{i,j} (P z_i) M[i, j] z_j^T Q z_k`` at column ``k``.

Both are computed as ``V (H H^T) P H / n`` (cost ``O(D^2 (D + N))`` instead of ``O(N^2 D)``) and
accept ``(..., D, n+1)`` arrays with parameters ``(D, D)`` or broadcastable ``(..., D, D)``;
numpy in -> numpy out, torch in -> torch out (differentiable).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import backend as B
from .checks import check_finite, check_int, check_real

__all__ = [
    "causal_lsa",
    "causal_weights",
    "lsa_block",
    "lsa_stack",
    "masked_lsa",
    "masked_lsa_stack",
    "readout",
    "sufficient_statistics",
    "tf_from_statistics",
    "trace_mask",
]


def _check_block_args(H: Any, mats: dict[str, Any], n_queries: int, name: str = "H") -> tuple[Any, dict, int]:
    H = B.as_array(H, name)
    if H.ndim < 2:
        raise ValueError(f"{name}: expected shape (..., D, n+1), got {tuple(H.shape)}")
    D, N = H.shape[-2], H.shape[-1]
    n = N - n_queries
    if n < 1:
        raise ValueError(
            f"{name}: needs at least one context column besides {n_queries} "
            f"query column(s), got {N} columns (n = {n})"
        )
    out = {}
    for key, M in mats.items():
        M = B.as_array(M, key, ref=H)
        if M.ndim < 2 or M.shape[-2:] != (D, D):
            raise ValueError(
                f"{key}: expected shape (..., {D}, {D}) to match D = {D} of {name}, got {tuple(M.shape)}"
            )
        out[key] = M
    B.broadcast_batch(H.shape[:-2], *[M.shape[:-2] for M in out.values()])
    return H, out, n


def _nonempty_list(x: Any, name: str, items: str, item: str) -> list:
    """``x`` (a list, tuple, array, ...; not a string or dict) as a non-empty list of ``items``;
    ValueError naming ``name`` otherwise."""
    try:
        if isinstance(x, str | bytes | dict):
            raise TypeError
        x = list(x)
    except TypeError:
        raise ValueError(f"{name}: expected a sequence of {items}, got {type(x).__name__}") from None
    if not x:
        raise ValueError(f"{name}: need at least one {item}")
    return x


def _check_layers(layers: Any, pair: str) -> list:
    """``layers`` (a list, tuple or (L, 2, D, D) array of pairs) as a non-empty list of pairs;
    ValueError naming ``layers`` otherwise."""
    layers = _nonempty_list(layers, "layers", f"{pair} pairs", f"{pair} pair")
    for i, pv in enumerate(layers):
        try:
            ok = len(pv) == 2
        except TypeError:
            ok = False
        if not ok:
            raise ValueError(f"layers[{i}]: expected a {pair} pair, got {type(pv).__name__}")
    return layers


@contextlib.contextmanager
def _in_layer(i: int):
    """Re-raise a ValueError about a layer's own ``P``, ``V`` or ``Q`` as ``layers[i].P: ...``."""
    try:
        yield
    except ValueError as exc:
        if str(exc)[:3] in ("P: ", "V: ", "Q: "):
            raise ValueError(f"layers[{i}].{exc}") from exc
        raise


def _check_statistics(Sigma: Any, wt: Any, P: Any, V: Any, layout: Any) -> tuple[Any, Any, Any, Any]:
    """Checked (L2) inputs: ``Sigma`` (..., m, m), ``wt`` (..., D - m), ``P``, ``V`` (..., D, D)."""
    from .prompts import Layout

    if not isinstance(layout, Layout):
        raise ValueError(f"layout: expected a lsa_theory.Layout, got {type(layout).__name__}")
    m, D = layout.m, layout.D
    Sigma = B.as_array(Sigma, "Sigma")
    if Sigma.ndim < 2 or tuple(Sigma.shape[-2:]) != (m, m):
        raise ValueError(
            f"Sigma: expected shape (..., {m}, {m}) to match m = {m} of layout, got {tuple(Sigma.shape)}"
        )
    wt = B.as_array(wt, "wt", ref=Sigma)
    if wt.ndim < 1 or wt.shape[-1] != D - m:
        raise ValueError(
            f"wt: expected shape (..., {D - m}) = [1; w; lam] to match layout, got {tuple(wt.shape)}"
        )
    P, V = B.as_array(P, "P", ref=Sigma), B.as_array(V, "V", ref=Sigma)
    for name, M in (("P", P), ("V", V)):
        if M.ndim < 2 or tuple(M.shape[-2:]) != (D, D):
            raise ValueError(f"{name}: expected shape (..., {D}, {D}) to match layout, got {tuple(M.shape)}")
    B.broadcast_batch(Sigma.shape[:-2], wt.shape[:-1], P.shape[:-2], V.shape[:-2])
    return Sigma, wt, P, V


#: Prompts per batched product in :func:`lsa_block` when one ``(P, V)`` serves a stack of prompts.
#: A whole-stack call allocates (B, D, N) and (B, D, D) temporaries afresh (226 MB at B = 1000,
#: D = 110, n = 256) and ran at 0.3-0.9x the speed of a per-prompt loop; chunks stay in cache
#: (benchmarks/block_bench.py).
BLOCK_CHUNK = 16


def lsa_block(H: Any, P: Any, V: Any) -> Any:
    """(L1): ``H_out = H + (1/n) (V H)(H^T P H)``; ``H`` (..., D, n+1), ``P``, ``V`` (..., D, D).

    With shared ``(D, D)`` parameters and a stack of more than :data:`BLOCK_CHUNK` prompts the
    products run chunk by chunk (same result, each prompt's arithmetic unchanged)."""
    H, m, n = _check_block_args(H, {"P": P, "V": V}, n_queries=1)
    P, V = m["P"], m["V"]

    def block(h):
        return h + (V @ (h @ h.mT)) @ (P @ h) / n

    if P.ndim == 2 and V.ndim == 2 and H.ndim == 3 and H.shape[0] > BLOCK_CHUNK:
        return B.concat([block(H[i : i + BLOCK_CHUNK]) for i in range(0, H.shape[0], BLOCK_CHUNK)])
    return block(H)


def lsa_stack(H: Any, layers: Sequence[tuple[Any, Any]]) -> Any:
    """L layers of (L1): ``H_l = lsa_block(H_{l-1}, P_l, V_l)``; ``layers = [(P_1, V_1), ...]``."""
    for i, (P, V) in enumerate(_check_layers(layers, "(P, V)")):
        with _in_layer(i):
            H = lsa_block(H, P, V)
    return H


def trace_mask(n: int, lam: float, n_queries: int = 1) -> np.ndarray:
    r"""(W5) [W]: the eligibility-trace mask, float64 of shape (n + n_q, n + n_q).

    ``M[i, j] = lam**(i - j)`` for ``0 <= j <= i < n`` (lower triangular, 1 on the diagonal,
    decaying away from it), zero above the diagonal and in the last ``n_queries`` rows and
    columns. With :func:`masked_lsa` it weighs value column ``i`` (``delta_i``) against key
    column ``j`` (``phi_j``), so that :math:`\sum_{i,j}\delta_i M_{ij}\phi_j = \sum_i \delta_i e_i`
    with the trace :math:`e_i = \lambda e_{i-1} + \phi_i`, :math:`e_{-1} = 0`, run in context order.
    (The transpose would run the trace backwards.) ``lam = 0`` gives ``diag(I_n, 0)``.
    """
    n = check_int(n, "n")
    n_queries = check_int(n_queries, "n_queries")
    lam = check_real(lam, "lam", low=0.0, high=1.0)
    i, j = np.indices((n, n))
    M = np.zeros((n + n_queries, n + n_queries))
    M[:n, :n] = np.where(i >= j, np.power(lam, np.maximum(i - j, 0)), 0.0)
    return M


def _check_mask(mask: Any, Z: Any, n: int) -> Any:
    N = Z.shape[-1]
    mask = B.like(Z, mask, name="mask")
    if mask.ndim < 2 or tuple(mask.shape[-2:]) != (N, N):
        raise ValueError(
            f"mask: expected shape (..., {N}, {N}) to match the {N} columns of Z, got {tuple(mask.shape)}"
        )
    check_finite(mask, "mask")
    if bool((mask[..., n:, :] != 0).any()) or bool((mask[..., :, n:] != 0).any()):
        raise ValueError(f"mask: its last {N - n} row(s) and column(s) (the query columns) must be zero")
    B.broadcast_batch(Z.shape[:-2], mask.shape[:-2])
    return mask


def masked_lsa(Z: Any, P: Any, Q: Any, n_queries: int = 1, mask: Any = None) -> Any:
    """(W2): ``Z + (1/n) P Z M Z^T Q Z``; ``Z`` (..., D, n+n_q), ``P``, ``Q`` (..., D, D).

    ``mask=None`` is ``M = diag(I_n, 0_{n_q})``; a given ``mask`` (..., n+n_q, n+n_q) must have
    zero query rows and columns (its last ``n_queries``), e.g. :func:`trace_mask` for (W5)."""
    n_queries = check_int(n_queries, "n_queries")
    Z, m, n = _check_block_args(Z, {"P": P, "Q": Q}, n_queries=n_queries, name="Z")
    Zc = Z[..., :, :n]
    if mask is None:
        return Z + (m["P"] @ (Zc @ Zc.mT)) @ (m["Q"] @ Z) / n
    Mc = _check_mask(mask, Z, n)[..., :n, :n]
    return Z + (m["P"] @ ((Zc @ Mc) @ Zc.mT)) @ (m["Q"] @ Z) / n


def masked_lsa_stack(Z: Any, layers: Sequence[tuple[Any, Any]], n_queries: int = 1, mask: Any = None) -> Any:
    """L layers of (W2) with their own ``(P_l, Q_l)`` and one shared ``mask`` (None: ``diag(I_n, 0)``)."""
    for i, (P, Q) in enumerate(_check_layers(layers, "(P, Q)")):
        with _in_layer(i):
            Z = masked_lsa(Z, P, Q, n_queries=n_queries, mask=mask)
    return Z


def causal_weights(T: int) -> np.ndarray:
    """(AR3) the causal weights ``C[j, t] = [j <= t] / t`` (T, T), float64, 1-based ``t`` (column
    ``t - 1`` holds position t): upper triangular, column t sums to 1."""
    T = check_int(T, "T")
    j, t = np.indices((T, T))
    return np.where(j <= t, 1.0 / (t + 1.0), 0.0)


def causal_lsa(E: Any, P: Any, Q: Any) -> Any:
    r"""(AR3) the causal pass of (W2) at every position at once, with the ``1/t`` normalisation:
    column t of the output is (W2) on the prompt ``Z_t = [e_1 ... e_t | e_t]`` (context ``e_1..e_t``,
    query ``e_t``, ``M = diag(I_t, 0)``, norm ``1/t``), read at its query column:

    .. math:: e_t^{\rm out} = e_t + \tfrac1t\, P \Big(\sum_{j \le t} e_j e_j^\top\Big) Q\, e_t ,

    i.e. ``E + P E (C * (E^T Q E))`` with :func:`causal_weights` ``C``. ``E`` (..., D, T) holds the
    tokens ``e_1..e_T`` as columns, ``P``, ``Q`` (..., D, D); returns (..., D, T). numpy in -> numpy
    out, torch in -> torch out (differentiable). Cost ``O(D^2 T + D T^2)`` per sequence."""
    E, m, T = _check_block_args(E, {"P": P, "Q": Q}, n_queries=0, name="E")
    C = B.like(E, causal_weights(T))
    C = C.to(E.dtype) if B.is_torch(E) else C.astype(E.dtype, copy=False)
    return E + m["P"] @ (E @ (C * (E.mT @ (m["Q"] @ E))))


def readout(H_out: Any, k: int) -> Any:
    """Last ``k`` entries of the last column of ``H_out`` (..., D, N): shape (..., k).

    With ``k = d`` on an (H) prompt this is ``TF_theta(H)``, the updated ``w``.
    """
    k = check_int(k, "k")
    H_out = B.as_array(H_out, "H_out")
    if H_out.ndim < 2:
        raise ValueError(f"H_out: expected shape (..., D, N), got {tuple(H_out.shape)}")
    if k > H_out.shape[-2]:
        raise ValueError(f"k: must be <= D = {H_out.shape[-2]}, got {k}")
    return H_out[..., -k:, -1]


def sufficient_statistics(X: Any) -> Any:
    """(L2): ``Sigma = (1/n) sum_i x_i x_i^T`` of shape (..., m, m) from context columns X (..., m, n)."""
    X = B.as_array(X, "X")
    if X.ndim < 2 or X.shape[-1] < 1:
        raise ValueError(f"X: expected shape (..., m, n) with n >= 1, got {tuple(X.shape)}")
    return X @ X.mT / X.shape[-1]


def tf_from_statistics(Sigma: Any, wt: Any, P: Any, V: Any, n: int, layout: Any) -> Any:
    """(L2) [LL Lemma C.1]: ``TF = w + Vbar21 Sigma P12 wt + (1/n) Vbar22 wt wt^T P22 wt``.

    ``Sigma`` (..., m, m), ``wt = [1; w; lam]`` (..., D - m), full ``P``, ``V`` (..., D, D) split by
    ``layout`` (a :class:`lsa_theory.prompts.Layout`); returns (..., d + d_pi), the readout of
    (L1) on any prompt with these statistics.
    """
    n = check_int(n, "n")
    Sigma, wt, P, V = _check_statistics(Sigma, wt, P, V, layout)
    b = layout.blocks(P, V)
    wt_col = wt[..., :, None]
    out = (b["Vbar21"] @ (Sigma @ (b["P12"] @ wt_col)))[..., 0]
    quad = (wt_col.mT @ (b["P22"] @ wt_col))[..., 0, 0]
    out = out + (b["Vbar22"] @ wt_col)[..., 0] * quad[..., None] / n
    return wt[..., 1:] + out
