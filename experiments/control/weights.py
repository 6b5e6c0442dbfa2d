r"""The frozen block's weights for the closed loops (S6)/(A5) of :mod:`lsa_theory.experiments.control`: the
constructed (L2) blocks, weights from arrays or ``.npz`` files, and the (L2) readout.

**Weights.** ``"constructed"``: the construction of the deployed algorithm's declaration ((S3) for
SARSA, (A3) for the actor-critics, a user's own for a user's declaration), taken from the
declaration through :meth:`lsa_theory.constructions.ClosedLoopAlgorithm.construction_blocks` with the run's
``alpha`` (``beta``) and the declaration's other hyperparameters; ``"teacher"``: the exact update
(S2) / (A2) in place of a block (the baseline); a pair ``(P, V)`` of full ``(D, D)`` arrays; a list of
head pairs ``[(P_1, V_1), ..., (P_H, V_H)]`` with an ``attention`` function; or a path to an
``.npz`` holding arrays ``P`` and ``V`` (e.g. trained weights; ``(D, D)``, or ``(H, D, D)`` for ``H``
heads, with an optional 0-d string array ``attention``). ``D`` must be ``3d + 2`` (SARSA)
or ``3d + 2 d_pi + 2`` (actor-critic) for the environment's ``d = |S||A|``.

**Heads and attention.** A block of ``H`` heads ``(P_h, V_h)`` ([LL]'s letters) and attention function
``sigma`` (:data:`lsa_theory.ATTENTIONS`) is the one layer of :func:`lsa_theory.attention_layer` with
mask ``I_{n+1}`` on the full prompt:

.. math:: H_{out} = H + \sum_{h=1}^{H} V_h\, H\, \sigma(H^\top P_h H),
          \qquad \sigma(S) = S / n \ \text{(linear)},

so one linear head is (L1) and is resolved to exactly the plain ``(P, V)`` block (same object, same
numbers). For linear heads the readout is the sum over heads of each head's (L2) increment (each
head is (L1), and (L1) = (L2) head by head); a nonlinear ``sigma`` is not affine in ``Sigma`` and has
the ``"l1"`` forward pass only.

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
for dense weights with ``D <= 256`` and ``"l2"`` otherwise (``"l1"`` always for a nonlinear block).
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

    A block of heads (module docstring; ``heads`` not ``None``): ``heads`` the ``H`` pairs ``(P_h,
    V_h)``, each dense (D, D), and ``attention`` its function ``sigma``; ``P12`` .. ``Vbar22`` are
    then the per-head (L2) blocks stacked (H, ., .) and ``P``, ``V`` are ``None``. One linear head is
    never stored this way: it is the plain block (``heads`` ``None``, ``attention`` ``"linear"``).
    """

    layout: Layout
    P12: Any
    P22: Any
    Vbar21: Any
    Vbar22: Any
    P: np.ndarray | None = None
    V: np.ndarray | None = None
    source: str = ""
    heads: tuple[tuple[np.ndarray, np.ndarray], ...] | None = None
    attention: str = "linear"


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


_WEIGHTS_KINDS = (
    "'constructed', 'teacher', a pair (P, V) of (D, D) arrays, a list of head pairs [(P_1, V_1), ...] "
    "or an .npz path"
)


def resolve_weights(
    weights: Any,
    layout: Layout,
    *,
    alpha: float | None = None,
    beta: float | None = None,
    algo: str | ClosedLoopAlgorithm | None = None,
    hyper: Mapping[str, Any] | None = None,
    attention: str | None = None,
) -> BlockWeights | None:
    """:class:`BlockWeights` of a deployment, or ``None`` for the exact teacher.

    ``weights``: ``"constructed"`` (the construction of the declaration ``algo`` with ``alpha``,
    ``beta`` and ``hyper``, :func:`constructed_blocks`), ``"teacher"`` (returns
    ``None``), a pair ``(P, V)`` of (D, D) arrays, a list of ``H`` head pairs ``[(P_1, V_1), ...]``
    (tuples or lists, each array (D, D)), or a path (``str`` / ``Path`` ending in ``.npz``) to an
    ``.npz`` with arrays ``P`` and ``V``, both (D, D) or both (H, D, D) (head ``h`` = ``(P[h],
    V[h])``), and optionally a 0-d string array ``attention``; ``D`` must equal ``layout.D``.
    ``attention``: the heads' function (:data:`lsa_theory.ATTENTIONS`; ``None``: the file's, else
    ``"linear"``). One linear head gives the plain (L1) block, the same object as its pair
    ``(P, V)``. ValueError naming ``weights`` or ``attention``: an unknown attention, an attention
    other than ``"linear"`` for ``"constructed"``, ``"teacher"`` or a single pair ``(P, V)`` (those are
    linear (L1) blocks; a one-head nonlinear block is the list ``[(P, V)]``), an argument that
    disagrees with the file's, heads of the wrong shape, a stack of ``P`` and ``V`` of unequal shapes.
    """
    if attention is not None and (not isinstance(attention, str) or attention not in lt.ATTENTIONS):
        raise ValueError(f"attention: expected one of {lt.ATTENTIONS}, got {attention!r}")
    if isinstance(weights, str) and weights in ("teacher", "constructed"):
        if attention not in (None, "linear"):
            raise ValueError(
                f"attention: {weights!r} is a linear (L1) block; attention {attention!r} needs a list of "
                "heads"
            )
        if weights == "teacher":
            return None
        if alpha is None:
            raise ValueError("alpha: the constructed weights need alpha")
        if algo is None:
            raise ValueError("algo: the constructed weights need the algorithm whose construction to deploy")
        return constructed_blocks(layout, alpha, beta, algo=algo, hyper=hyper)
    source = "dense"
    if isinstance(weights, str | Path):
        weights, attention, source = _load_npz(weights, attention)
    kind = _block_kind(weights)
    if kind == "pair":
        if attention not in (None, "linear"):
            raise ValueError(
                f"attention: a single pair (P, V) is the linear (L1) block; for attention {attention!r} "
                "give the block as a list of heads [(P, V)] (or an .npz with P, V of shape (H, D, D))"
            )
        return _plain_block(weights[0], weights[1], layout, "P", "V", source)
    heads = [
        tuple(_square(M, layout, f"weights[{h}].{name}") for M, name in zip(pq, ("P", "V"), strict=True))
        for h, pq in enumerate(weights)
    ]
    attention = "linear" if attention is None else attention
    if len(heads) == 1 and attention == "linear":  # one linear head is (L1): today's block
        return _plain_block(*heads[0], layout, "weights[0].P", "weights[0].V", source)
    b = layout.blocks(np.stack([P for P, _ in heads]), np.stack([V for _, V in heads]))
    return BlockWeights(
        layout, b["P12"], b["P22"], b["Vbar21"], b["Vbar22"], source=source, heads=tuple(heads),
        attention=attention,
    )  # fmt: skip


def _load_npz(path: str | Path, attention: str | None) -> tuple[list | tuple, str | None, str]:
    """``(weights, attention, source)`` of an ``.npz`` of weights (:func:`resolve_weights`): the pair
    ``(P, V)`` or the list of heads ``(P[h], V[h])``, the file's ``attention`` checked against the
    argument, and the path."""
    path = Path(path)
    if path.suffix != ".npz" or not path.is_file():
        raise ValueError(f"weights: expected {_WEIGHTS_KINDS}, got {str(path)!r}")
    with np.load(path) as z:
        if "P" not in z.files or "V" not in z.files:
            raise ValueError(f"weights: {path} must hold arrays 'P' and 'V', has {z.files}")
        P, V = z["P"], z["V"]
        stored = z["attention"] if "attention" in z.files else None
    if stored is not None:
        if stored.ndim != 0 or stored.dtype.kind != "U" or str(stored) not in lt.ATTENTIONS:
            raise ValueError(
                f"weights: {path}'s array 'attention' must be a 0-d string, one of {lt.ATTENTIONS}; "
                f"got {stored!r}"
            )
        if attention is not None and attention != str(stored):
            raise ValueError(f"attention: {attention!r} given, but {path} holds attention {str(stored)!r}")
        attention = str(stored)
    if P.ndim == 3 or V.ndim == 3:
        if P.ndim != 3 or V.ndim != 3 or P.shape != V.shape or P.shape[0] < 1:
            raise ValueError(
                f"weights: {path} holds P of shape {P.shape} and V of shape {V.shape}; a block of H heads "
                "needs both of shape (H, D, D) with H >= 1"
            )
        return [(P[h], V[h]) for h in range(P.shape[0])], attention, str(path)
    return (P, V), attention, str(path)


def _ndim(x: Any) -> int | None:
    try:
        return int(np.ndim(x))
    except (TypeError, ValueError):  # ragged nesting
        return None


def _block_kind(weights: Any) -> str:
    """``"pair"`` for ``(P, V)`` (first item 2-d), ``"heads"`` for a non-empty list of head pairs;
    ValueError otherwise (a pair of (H, D, D) stacks in memory is refused, not read as heads)."""
    if not isinstance(weights, tuple | list) or not weights:
        raise ValueError(f"weights: expected {_WEIGHTS_KINDS}, got {type(weights).__name__}")
    if len(weights) == 2 and _ndim(weights[0]) == 2:
        return "pair"
    for h, pq in enumerate(weights):
        if not isinstance(pq, tuple | list):
            raise ValueError(
                f"weights[{h}]: expected a head pair (P_h, V_h) (a tuple or list), got "
                f"{type(pq).__name__} of shape {np.shape(pq) if _ndim(pq) is not None else '?'}; a pair "
                "(P, V) needs (D, D) arrays, and heads stacked (H, D, D) are read from an .npz only "
                "(in memory pass list(zip(P, V)))"
            )
        if len(pq) != 2:
            raise ValueError(f"weights[{h}]: expected a head pair (P_h, V_h), got {len(pq)} items")
    return "heads"


def _square(M: Any, layout: Layout, name: str) -> np.ndarray:
    M = as_float_array(M, name, ndim=2)
    if M.shape != (layout.D, layout.D):
        head = name if name.startswith("weights") else f"weights: {name}"
        raise ValueError(
            f"{head} has shape {M.shape}, the environment needs ({layout.D}, {layout.D}) "
            f"(d = {layout.d}, d_pi = {layout.d_pi})"
        )
    return M


def _plain_block(P: Any, V: Any, layout: Layout, p_name: str, v_name: str, source: str) -> BlockWeights:
    """The plain (L1) block of the pair ``(P, V)``: full arrays and their (L2) blocks."""
    P, V = _square(P, layout, p_name), _square(V, layout, v_name)
    b = layout.blocks(P, V)
    return BlockWeights(layout, b["P12"], b["P22"], b["Vbar21"], b["Vbar22"], P=P, V=V, source=source)


def _is_zero(M) -> bool:
    return M.nnz == 0 if sp.issparse(M) else not np.any(M)


def l2_readout(X: np.ndarray, wt: np.ndarray, weights: BlockWeights) -> np.ndarray:
    """(L2) readout (k,) = ``wt[1:] + Vbar21 Sigma P12 wt + (1/n) Vbar22 wt (wt^T P22 wt)``; for a
    block of linear heads the sum of that increment over the heads, ``wt[1:] + sum_h (Vbar21_h Sigma
    P12_h wt + (1/n) Vbar22_h wt (wt^T P22_h wt))``.

    ``X`` (m, n): context columns ``x_i`` ((H): ``[phi_i; gamma phi_i^+; r_{i+1}]``, (A1): with
    ``g_i`` appended), ``wt = [1; w(; lambda)]`` (p,). ``Sigma = X X^T / n`` is never formed:
    ``Sigma P12 wt = X (X^T (P12 wt)) / n``. Equals the (L1) readout ``TF_theta(H)`` exactly.
    ValueError for a nonlinear block (not affine in ``Sigma``: no (L2) form).
    """
    X = np.asarray(X, dtype=np.float64)
    wt = np.asarray(wt, dtype=np.float64)
    lay = weights.layout
    if weights.attention != "linear":
        raise ValueError(
            f"weights: the (L2) readout needs a block affine in Sigma (linear attention), got a "
            f"{weights.attention!r} block"
        )
    if X.ndim != 2 or X.shape[0] != lay.m or X.shape[1] < 1:
        raise ValueError(f"X: expected shape ({lay.m}, n) with n >= 1, got {X.shape}")
    if wt.shape != (lay.D - lay.m,):
        raise ValueError(f"wt: expected shape ({lay.D - lay.m},), got {wt.shape}")
    n = X.shape[1]
    out = wt[1:]
    for P12, P22, Vbar21, Vbar22 in _head_blocks(weights):
        u = P12 @ wt
        s = X @ (X.T @ u) / n
        out = out + Vbar21 @ s
        if not _is_zero(Vbar22):
            out = out + (Vbar22 @ wt) * (wt @ (P22 @ wt)) / n
    return np.asarray(out, dtype=np.float64)


def _head_blocks(weights: BlockWeights) -> list[tuple]:
    """The (L2) blocks ``(P12, P22, Vbar21, Vbar22)`` of each head (one for a plain block)."""
    b = (weights.P12, weights.P22, weights.Vbar21, weights.Vbar22)
    if weights.heads is None:
        return [b]
    return [tuple(M[h] for M in b) for h in range(len(weights.heads))]


def loop_update(
    weights: BlockWeights | None, layout: Layout, alg: ClosedLoopAlgorithm, hyper: dict, forward: str
) -> tuple[Callable, str]:
    """``(update, forward)``: the loop's update ``(X, g, w, lam) -> (w', lam')`` by the frozen
    ``weights`` (``None``: the declaration's exact teacher with ``hyper``) and the forward pass used
    (``"l1"``: the dense block (L1) on the full prompt, for a block of heads
    :func:`lsa_theory.attention_layer` with mask ``I_{n+1}`` (module docstring); ``"l2"``: the (L2)
    readout (linear blocks only, ValueError for a nonlinear one); ``"auto"``: (L1) up to
    :data:`L1_MAX_D`, and always for a nonlinear block; ``"teacher"``). A block of heads whose output
    is not finite raises ``FloatingPointError`` in the update, which the loop driver records as a
    divergence (:func:`lsa_theory.loop_driver.closed_loop`)."""
    if weights is None:
        return alg.teacher(hyper), "teacher"
    linear = weights.attention == "linear"
    if forward == "auto":
        dense = weights.P is not None or weights.heads is not None
        forward = "l1" if not linear or (dense and layout.D <= L1_MAX_D) else "l2"
    if forward == "l2" and not linear:
        raise ValueError(
            f"forward: 'l2' needs a block affine in Sigma (linear attention); the {weights.attention!r} "
            "block has the 'l1' forward pass only"
        )
    if forward == "l1" and weights.heads is not None:
        return _heads_update(weights, layout, alg), "l1"
    if forward == "l1":
        if weights.P is None:
            raise ValueError(f"forward: 'l1' needs dense (D, D) weights; D = {layout.D} is assembled sparse")
        P, V, d = weights.P, weights.V, layout.d

        def l1(X, g, w, lam):
            out = lt.readout(lt.lsa_block(alg.full_prompt(X, g, w, lam), P, V), layout.k)
            return alg.split(out, d)

        return l1, "l1"
    return alg.block_update(lambda x, wt: l2_readout(x, wt, weights), layout.d), "l2"


def _heads_update(weights: BlockWeights, layout: Layout, alg: ClosedLoopAlgorithm) -> Callable:
    """The ``"l1"`` update of a block of heads: :func:`lsa_theory.attention_layer` on the full prompt
    with heads ``(V_h, P_h)`` (its letters; [LL]'s ``(P_h, V_h)``), mask ``I_{n+1}``, one query."""
    pairs = [(V, P) for P, V in weights.heads]
    attention, k, d = weights.attention, layout.k, layout.d

    def l1_heads(X, g, w, lam):
        Z = alg.full_prompt(X, g, w, lam)
        try:
            out = lt.attention_layer(Z, pairs, attention, n_queries=1, mask=np.eye(Z.shape[-1]))
        except ValueError as exc:  # attention_layer's check of a non-finite output: the loop diverged
            if "NaN or inf" not in str(exc):
                raise
            raise FloatingPointError(f"the {attention} block's output is not finite") from exc
        return alg.split(lt.readout(out, k), d)

    return l1_heads


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
