r"""The frozen block's weights for the closed loops (S6)/(A5) of :mod:`lsa_theory.experiments.control`: the
constructed (L2) blocks, weights from arrays or ``.npz`` files, and the (L2) readout.

**Weights.** ``"constructed"``: the construction of the deployed algorithm's declaration ((S3) for
SARSA, (A3) for the actor-critics, a user's own for a user's declaration), taken from the
declaration through :meth:`lsa_theory.constructions.ClosedLoopAlgorithm.construction_blocks` with the run's
``alpha`` (``beta``) and the declaration's other hyperparameters; ``"teacher"``: the exact update
(S2) / (A2) in place of a block (the baseline); a pair ``(P, V)`` of full ``(D, D)`` arrays; or a path to an
``.npz`` holding arrays ``P`` and ``V`` (e.g. trained weights). ``D`` must be ``3d + 2`` (SARSA)
or ``3d + 2 d_pi + 2`` (actor-critic) for the environment's ``d = |S||A|``.

**Forward pass.** ``"l1"`` builds the prompt and applies :func:`lsa_theory.lsa_block` (cost
``O(D^3)``). ``"l2"`` computes the same readout from the (L2) blocks without forming the
``(3d+2)^2`` block product or ``Sigma``:

.. math:: TF = w + \bar V_{21}\, \Sigma P_{12} \tilde w + \tfrac1n \bar V_{22} \tilde w\,
          \tilde w^\top P_{22} \tilde w,
          \qquad \Sigma P_{12}\tilde w = \tfrac1n X (X^\top (P_{12} \tilde w)),

which equals (L1) exactly ([LL] Lemma C.1, proved by the (L2) rows of ``lsa-theory verify`` and
implemented by :func:`lsa_theory.tf_from_statistics`; ``tests/experiments/test_control.py`` checks the
equality to 1e-12). Cost ``O(m (d + n))`` with dense blocks; the constructed blocks are sparse,
so Taxi (``d = 3000``, ``D = 9002``) needs no dense ``D x D`` array. ``"auto"`` uses ``"l1"``
for dense weights with ``D <= 256`` and ``"l2"`` otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

import lsa_theory as lt
from lsa_theory import Layout, constructions
from lsa_theory.checks import as_float_array, check_int, check_real
from lsa_theory.constructions import ClosedLoopAlgorithm, Dims, closed_loop_algorithm
from lsa_theory.roundoff import UNIT_ROUNDOFF, gamma, matmul_error_bound

__all__ = [
    "ALGOS",
    "FORWARDS",
    "L1_MAX_D",
    "DENSE_CONSTRUCTION_MAX_D",
    "BlockWeights",
    "constructed_blocks",
    "resolve_weights",
    "loop_update",
    "l2_readout",
    "product_error_bound",
    "l1_readout_error_bound",
    "l2_readout_error_bound",
]

#: The registered closed-loop algorithms (:class:`lsa_theory.constructions.ClosedLoopAlgorithm`) deployable
#: here.
ALGOS = constructions.ALGORITHMS.with_capability(ClosedLoopAlgorithm)


FORWARDS = ("auto", "l1", "l2")

#: ``forward="auto"`` applies the dense block (L1) up to this ``D`` and the (L2) form above it.
L1_MAX_D = 256

#: Above this ``D`` the construction is assembled sparse (equal to :mod:`lsa_theory.constructions.numeric`,
#: checked in the tests) instead of densely via :func:`lsa_theory.constructions.sarsa`.
DENSE_CONSTRUCTION_MAX_D = 1500


@dataclass(frozen=True, eq=False)
class BlockWeights:
    """Frozen block weights split by the (L2) layout ``(m | D - m)``.

    ``P12`` (m, p), ``P22`` (p, p), ``Vbar21`` (k, m), ``Vbar22`` (k, p) with ``p = D - m = d + 1 +
    d_pi`` and ``k = d + d_pi``, dense numpy or scipy.sparse; ``P``, ``V`` the full (D, D) arrays
    when they exist (needed by the ``"l1"`` forward pass); ``source`` describes their origin.
    """

    layout: Layout
    P12: Any
    P22: Any
    Vbar21: Any
    Vbar22: Any
    P: np.ndarray | None = None
    V: np.ndarray | None = None
    source: str = ""


def constructed_blocks(
    layout: Layout,
    alpha: float,
    beta: float | None = None,
    *,
    algo: str | ClosedLoopAlgorithm,
    hyper: Mapping[str, Any] | None = None,
    dense_max_D: int | None = None,
) -> BlockWeights:
    """The construction of the closed-loop declaration ``algo`` (a registered name or a
    :class:`lsa_theory.constructions.ClosedLoopAlgorithm`) with ``c = 1`` as :class:`BlockWeights` for
    ``layout`` (``d``, ``d_pi``): (S3) for ``"sarsa"``, (A3) for the actor-critics, a user's own
    construction for a user's declaration (:meth:`lsa_theory.constructions.ClosedLoopAlgorithm.
    construction_blocks`).

    Hyperparameters: the declaration's defaults ``algo.hyper``, then ``hyper``, then ``alpha`` (and
    ``beta`` when given). For ``D <= dense_max_D`` (default :data:`DENSE_CONSTRUCTION_MAX_D`) the
    dense ``(D, D)`` pair and its (L2) blocks as CSR matrices; above it the declaration's sparse
    form (no dense ``D x D`` array when the declaration has one), ``P``/``V`` then ``None``.
    ValueError if the declaration's construction does not have the layout's shape ``(D, D)``.
    """
    if not isinstance(layout, Layout):
        raise ValueError(f"layout: expected a lsa_theory.Layout, got {type(layout).__name__}")
    alg = closed_loop_algorithm(algo)
    alpha = check_real(alpha, "alpha", low=0.0, low_open=True)
    if layout.d_pi:
        beta = check_real(beta, "beta", low=0.0, low_open=True)
    limit = DENSE_CONSTRUCTION_MAX_D if dense_max_D is None else check_int(dense_max_D, "dense_max_D", 0)
    full_hyper = {**alg.hyper, **(dict(hyper) if hyper is not None else {}), "alpha": alpha}
    if beta is not None:
        full_hyper["beta"] = beta
    dims = Dims(layout.d, layout.d_pi)
    dense = layout.D <= limit
    P, V = alg.construction_blocks(dims, full_hyper, sparse=not dense)
    for name, M in (("P", P), ("V", V)):
        if tuple(M.shape) != (layout.D, layout.D):
            raise ValueError(
                f"weights: {alg.name}'s construction gives {name} of shape {tuple(M.shape)}; the "
                f"environment needs ({layout.D}, {layout.D}) (d = {layout.d}, d_pi = {layout.d_pi})"
            )
    if dense:
        P, V = np.asarray(P, dtype=np.float64), np.asarray(V, dtype=np.float64)
    b = layout.blocks(P, V)
    blocks = (sp.csr_array(b[k]) for k in ("P12", "P22", "Vbar21", "Vbar22"))
    return BlockWeights(layout, *blocks, P=P if dense else None, V=V if dense else None, source="constructed")


def resolve_weights(
    weights: Any,
    layout: Layout,
    *,
    alpha: float | None = None,
    beta: float | None = None,
    algo: str | ClosedLoopAlgorithm | None = None,
    hyper: Mapping[str, Any] | None = None,
) -> BlockWeights | None:
    """:class:`BlockWeights` of a deployment, or ``None`` for the exact teacher.

    ``weights``: ``"constructed"`` (the construction of the declaration ``algo`` with ``alpha``,
    ``beta`` and ``hyper``, :func:`constructed_blocks`), ``"teacher"`` (returns
    ``None``), a pair ``(P, V)`` of (D, D) arrays, or a path (``str`` / ``Path`` ending in ``.npz``)
    to an ``.npz`` with arrays ``P`` and ``V``; ``D`` must equal ``layout.D``.
    """
    if isinstance(weights, str) and weights == "teacher":
        return None
    if isinstance(weights, str) and weights == "constructed":
        if alpha is None:
            raise ValueError("alpha: the constructed weights need alpha")
        if algo is None:
            raise ValueError("algo: the constructed weights need the algorithm whose construction to deploy")
        return constructed_blocks(layout, alpha, beta, algo=algo, hyper=hyper)
    source = "dense"
    if isinstance(weights, str | Path):
        path = Path(weights)
        if path.suffix != ".npz" or not path.is_file():
            raise ValueError(
                f"weights: expected 'constructed', 'teacher', (P, V) or an .npz file, got {weights!r}"
            )
        with np.load(path) as z:
            if "P" not in z.files or "V" not in z.files:
                raise ValueError(f"weights: {path} must hold arrays 'P' and 'V', has {z.files}")
            weights = (z["P"], z["V"])
        source = str(path)
    if not isinstance(weights, tuple | list) or len(weights) != 2:
        raise ValueError(
            f"weights: expected 'constructed', 'teacher', (P, V) or a .npz path, got {type(weights)}"
        )
    P = as_float_array(weights[0], "P", ndim=2)
    V = as_float_array(weights[1], "V", ndim=2)
    for name, M in (("P", P), ("V", V)):
        if M.shape != (layout.D, layout.D):
            raise ValueError(
                f"weights: {name} has shape {M.shape}, the environment needs ({layout.D}, {layout.D}) "
                f"(d = {layout.d}, d_pi = {layout.d_pi})"
            )
    b = layout.blocks(P, V)
    return BlockWeights(layout, b["P12"], b["P22"], b["Vbar21"], b["Vbar22"], P=P, V=V, source=source)


def _is_zero(M) -> bool:
    return M.nnz == 0 if sp.issparse(M) else not np.any(M)


def l2_readout(X: np.ndarray, wt: np.ndarray, weights: BlockWeights) -> np.ndarray:
    """(L2) readout (k,) = ``wt[1:] + Vbar21 Sigma P12 wt + (1/n) Vbar22 wt (wt^T P22 wt)``.

    ``X`` (m, n): context columns ``x_i`` ((H): ``[phi_i; gamma phi_i^+; r_{i+1}]``, (A1): with
    ``g_i`` appended), ``wt = [1; w(; lambda)]`` (p,). ``Sigma = X X^T / n`` is never formed:
    ``Sigma P12 wt = X (X^T (P12 wt)) / n``. Equals the (L1) readout ``TF_theta(H)`` exactly.
    """
    X = np.asarray(X, dtype=np.float64)
    wt = np.asarray(wt, dtype=np.float64)
    lay = weights.layout
    if X.ndim != 2 or X.shape[0] != lay.m or X.shape[1] < 1:
        raise ValueError(f"X: expected shape ({lay.m}, n) with n >= 1, got {X.shape}")
    if wt.shape != (lay.D - lay.m,):
        raise ValueError(f"wt: expected shape ({lay.D - lay.m},), got {wt.shape}")
    n = X.shape[1]
    u = weights.P12 @ wt
    s = X @ (X.T @ u) / n
    out = wt[1:] + weights.Vbar21 @ s
    if not _is_zero(weights.Vbar22):
        out = out + (weights.Vbar22 @ wt) * (wt @ (weights.P22 @ wt)) / n
    return np.asarray(out, dtype=np.float64)


def loop_update(
    weights: BlockWeights | None, layout: Layout, alg: ClosedLoopAlgorithm, hyper: dict, forward: str
) -> tuple[Callable, str]:
    """``(update, forward)``: the loop's update ``(X, g, w, lam) -> (w', lam')`` by the frozen
    ``weights`` (``None``: the declaration's exact teacher with ``hyper``) and the forward pass used
    (``"l1"``: the dense block (L1) on the full prompt; ``"l2"``: the (L2) readout; ``"auto"``:
    (L1) up to :data:`L1_MAX_D`; ``"teacher"``)."""
    if weights is None:
        return alg.teacher(hyper), "teacher"
    if forward == "auto":
        forward = "l1" if weights.P is not None and layout.D <= L1_MAX_D else "l2"
    if forward == "l1":
        if weights.P is None:
            raise ValueError(f"forward: 'l1' needs dense (D, D) weights; D = {layout.D} is assembled sparse")
        P, V, d = weights.P, weights.V, layout.d

        def l1(X, g, w, lam):
            out = lt.readout(lt.lsa_block(alg.full_prompt(X, g, w, lam), P, V), layout.k)
            return alg.split(out, d)

        return l1, "l1"
    return alg.block_update(lambda x, wt: l2_readout(x, wt, weights), layout.d), "l2"


# --------------------------------------------------------------------------------------------------
# round-off bounds of the forward passes (issue 18): |computed readout - exact readout|
# --------------------------------------------------------------------------------------------------


def _abs(M):
    return abs(M) if sp.issparse(M) else np.abs(np.asarray(M, dtype=np.float64))


def product_error_bound(A: Any, B: Any, EA: Any = None, EB: Any = None) -> np.ndarray:
    r"""Entrywise bound on ``|fl(A_hat @ B_hat) - A B|`` for computed factors ``A_hat = A + dA``,
    ``B_hat = B + dB`` with ``|dA| <= EA``, ``|dB| <= EB`` (``None``: exact):

    .. math:: \gamma_k |\hat A| |\hat B| + E_A |\hat B| + |\hat A| E_B + E_A E_B ,

    ``k`` the inner dimension (:func:`lsa_theory.roundoff.matmul_error_bound` for dense factors;
    for a scipy.sparse ``A`` the same :math:`\gamma_k |A||B|`, ``k`` its column count, which is at
    least the number of terms of every inner product). Shapes as in ``A @ B``."""
    aA, aB = _abs(A), _abs(B)
    if sp.issparse(A):
        out = gamma(A.shape[-1]) * np.asarray(aA @ aB)
    else:
        out = matmul_error_bound(aA, aB)
    if EA is not None:
        out = out + np.asarray(EA) @ aB
    if EB is not None:
        out = out + np.asarray(aA @ np.asarray(EB))
    if EA is not None and EB is not None:
        out = out + np.asarray(EA) @ np.asarray(EB)
    return np.asarray(out, dtype=np.float64)


def l1_readout_error_bound(H: np.ndarray, P: np.ndarray, V: np.ndarray, k: int) -> np.ndarray:
    r"""Entrywise bound (k,) on ``|fl(TF) - TF|`` for the (L1) readout ``TF`` = last ``k`` entries of
    the last column of ``H + (1/n) (V (H H^T)) (P H)`` (:func:`lsa_theory.lsa_block` then
    :func:`lsa_theory.readout`), ``H`` (D, n+1) and ``P``, ``V`` (D, D) taken as exact inputs.

    Higham's bounds (:func:`product_error_bound`) composed over the computation as written:
    ``G = H H^T`` (:math:`\gamma_{n+1}`), the last ``k`` rows of ``V G`` and the last column of
    ``P H`` (:math:`\gamma_D`), their product (:math:`\gamma_D`, with the propagated errors of both
    factors), one rounding for the division by ``n`` and one for the sum with ``H``. Valid for every
    summation order; the magnitudes are those of a recomputation here, which differ from the ones
    inside ``lsa_block`` by at most the bound itself (a relative change of order
    :math:`\gamma_D`, covered by the final factor :math:`1 + \gamma_{4D}`)."""
    H = np.asarray(H, dtype=np.float64)
    D, N = H.shape
    n = N - 1
    G = H @ H.T
    EG = matmul_error_bound(H, H.T)
    Vk = np.asarray(V, dtype=np.float64)[-k:]
    VG = Vk @ G
    EVG = product_error_bound(Vk, G, None, EG)
    h = H[:, -1]
    ph = np.asarray(P, dtype=np.float64) @ h
    Eph = matmul_error_bound(P, h)
    prod = VG @ ph
    E = product_error_bound(VG, ph, EVG, Eph) / n + UNIT_ROUNDOFF * np.abs(prod / n)
    E = E + UNIT_ROUNDOFF * np.abs(h[-k:] + prod / n)
    return E * (1.0 + gamma(4 * D))


def l2_readout_error_bound(X: np.ndarray, wt: np.ndarray, weights: BlockWeights) -> np.ndarray:
    r"""Entrywise bound (k,) on ``|fl(TF) - TF|`` for the (L2) readout of :func:`l2_readout`,
    ``TF = wt[1:] + Vbar21 (X (X^T (P12 wt)) / n) + (1/n) Vbar22 wt (wt^T P22 wt)``, with ``X``
    (m, n), ``wt`` (p,) and the blocks taken as exact inputs.

    Each product of the computation as written contributes :func:`product_error_bound` (its
    :math:`\gamma_k` term and the propagated errors of its factors); each division by ``n`` and each
    sum one rounding :math:`u |\cdot|`. Valid for every summation order (final factor
    :math:`1 + \gamma_{4m}` for the recomputed magnitudes, as in :func:`l1_readout_error_bound`)."""
    X = np.asarray(X, dtype=np.float64)
    wt = np.asarray(wt, dtype=np.float64)
    m, n = X.shape
    u = np.asarray(weights.P12 @ wt)
    Eu = product_error_bound(weights.P12, wt)
    v = X.T @ u
    Ev = product_error_bound(X.T, u, None, Eu)
    s = X @ v / n
    Es = product_error_bound(X, v, None, Ev) / n + UNIT_ROUNDOFF * np.abs(s)
    t = np.asarray(weights.Vbar21 @ s)
    out = wt[1:] + t
    E = product_error_bound(weights.Vbar21, s, None, Es)
    if not _is_zero(weights.Vbar22):
        a = np.asarray(weights.Vbar22 @ wt)
        Ea = product_error_bound(weights.Vbar22, wt)
        pw = np.asarray(weights.P22 @ wt)
        Epw = product_error_bound(weights.P22, wt)
        q = float(wt @ pw)
        Eq = float(product_error_bound(wt, pw, None, Epw))
        extra = a * q / n
        E = E + (np.abs(a) * Eq + Ea * abs(q) + Ea * Eq) / n + 2 * UNIT_ROUNDOFF * np.abs(extra)
        E = E + UNIT_ROUNDOFF * np.abs(out + extra)
        out = out + extra
    E = E + UNIT_ROUNDOFF * np.abs(out)
    return E * (1.0 + gamma(4 * max(m, wt.size)))
