r"""The ``verify`` claim table: every declaration's rows, then the block rows (L1), (L2), (R4).

:func:`run_claims` collects the rows of :func:`lsa_theory.constructions.derive.verify_rows` for each
registered declaration (numeric level against the naive loop, invariants, property sweep,
all-sizes link, fixed-size exact proof), then the claims about the blocks themselves, for
*arbitrary* parameters rather than a construction (so they have no declaration): (L2) the
(L1) readout equals the sufficient-statistics formula, (L1) the torch block equals the numpy
block, and (R4) one masked layer's prediction on an (R1) prompt equals the statistics formula.
Their residual is :math:`\max|a - b| / \max(1, \max|b|)`; each entry is a sum of :math:`O(nd)`
products of :math:`O(1)` numbers, so :data:`READOUT_TOL` (``1e-12``) leaves two orders of margin
at the [LL] size (d = 36, n = 20). Their fixed-size exact proofs (every entry of ``P``, ``V``
and the prompt a symbol) run in the ring of :mod:`lsa_theory.constructions.symbolic`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

import lsa_theory as lt

from . import derive, symbolic, symbolic_sizes
from ._residuals import READOUT_TOL, Residuals, Row, relative_residual
from .algorithms import regression as _regression
from .registry import ALGORITHMS, Algorithm

__all__ = [
    "READOUT_TOL",
    "Residuals",
    "Row",
    "relative_residual",
    "run_claims",
    "lemma_c1_all_sizes_row",
]


def _lemma_c1_residual(X: np.ndarray, w: np.ndarray, P: np.ndarray, V: np.ndarray) -> float:
    """(L2): relative residual between the (L1) readout and the sufficient-statistics formula,
    for any ``P``, ``V`` (3d+2, 3d+2), context ``X`` (2d+1, n) and ``w`` (d,)."""
    H = lt.sarsa_prompt(X, w)
    layout = lt.Layout(len(w))
    tf = lt.tf_from_statistics(
        lt.sufficient_statistics(np.asarray(X, dtype=np.float64)),
        np.concatenate([[1.0], w]),
        P,
        V,
        X.shape[-1],
        layout,
    )
    return relative_residual(lt.readout(lt.lsa_block(H, P, V), layout.d), tf)


def _prediction_residual(inst: dict, P: np.ndarray, Q: np.ndarray) -> float:
    """(R4): relative residual of
    :func:`~lsa_theory.constructions.algorithms.regression.prediction_from_statistics`
    against ``masked_lsa(E, P, Q)[-1, -1]`` for dense ``P``, ``Q`` (d+1, d+1) on an (R1) instance."""
    X, y, q = inst["X"], inst["y"], inst["xq"]
    E = _regression.regression_prompt(X, y, q)
    S, h, s = _regression.statistics(X, y)
    pred = _regression.prediction_from_statistics(S, h, s, q, P, Q)
    return relative_residual(pred, lt.masked_lsa(E, P, Q)[-1, -1])


def _prove_lemma_c1(d: int = 1, n: int = 2) -> symbolic.SymbolicProof:
    """(L2) at these sizes only, in the exact ring: for fully symbolic ``P``, ``V`` (D, D) and
    prompt, the readout of (L1) equals ``w + Vbar21 Sigma P12 wt + (1/n) Vbar22 wt wt^T P22 wt``."""
    t0 = time.perf_counter()
    lay = lt.Layout(d)
    D, m = lay.D, lay.m
    syms = [
        symbolic.symbol_array(k, s) for k, s in (("P", (D, D)), ("V", (D, D)), ("x", (m, n)), ("w", (d,)))
    ]
    ring = symbolic.Ring(*syms)
    P, V, X, w = (ring.array(a) for a in syms)
    wt = np.concatenate([ring.array([1]), w])
    H = ring.array(np.zeros((D, n + 1), dtype=int))
    H[:m, :n], H[m:, n] = X, wt
    readout = symbolic.exact_lsa_block(H, P, V)[m + 1 :, n]
    Sigma = (X @ X.T) / n
    P12, P22, Vb21, Vb22 = P[:m, m:], P[m:, m:], V[m + 1 :, :m], V[m + 1 :, m:]
    formula = wt[1:] + Vb21 @ Sigma @ P12 @ wt + Vb22 @ wt * (wt @ P22 @ wt) / n
    nonzero = int(sum(e != ring.zero for e in readout - formula))
    return symbolic.SymbolicProof("(L2)", {"d": d, "n": n}, d, nonzero, time.perf_counter() - t0)


def _prove_prediction(d: int = 2, N: int = 2) -> symbolic.SymbolicProof:
    """(R4)'s one-layer prediction formula at these sizes only, in the exact ring: fully symbolic
    ``P``, ``Q`` (d+1, d+1) and (R1) prompt, ``E_out[-1, -1]`` of (W2) minus
    :func:`~lsa_theory.constructions.algorithms.regression.prediction_from_statistics`."""
    t0 = time.perf_counter()
    syms = [symbolic.symbol_array(k, s) for k, s in (("P", (d + 1,) * 2), ("Q", (d + 1,) * 2), ("x", (N, d)),
                                                      ("y", (N,)), ("q", (d,)))]  # fmt: skip
    ring = symbolic.Ring(*syms)
    P, Q, X, y, q = (ring.array(a) for a in syms)
    E = ring.array(np.zeros((d + 1, N + 1), dtype=int))
    E[:d, :N], E[d, :N], E[:d, N] = X.T, y, q
    M = ring.array(np.diag([1] * N + [0]))
    out = symbolic.exact_masked_block(E, P, Q, M)[d, N]
    S, h, s = X.T @ X / N, X.T @ y / N, (y @ y) / N
    formula = _regression.prediction_from_statistics(S, h, s, q, P, Q)
    nonzero = int(out - formula != ring.zero)
    return symbolic.SymbolicProof("(R4)", {"d": d, "N": N}, 1, nonzero, time.perf_counter() - t0)


def run_claims(
    rng: np.random.Generator,
    quick: bool = False,
    algorithms: Sequence[Algorithm] | None = None,
    block_rows: bool = True,
    *,
    progress=None,
) -> list[Row]:
    """Check every construction claim on fresh random instances; returns the ``verify`` rows.

    For each declaration in ``algorithms`` (default: every entry of
    :data:`lsa_theory.constructions.ALGORITHMS`) the rows of
    :func:`lsa_theory.constructions.derive.verify_rows` (its
    own sizes: full at the [LL] sizes where they apply, ``quick`` at S = A = 3); then the block
    rows: (L2) for dense random ``P, V`` and the torch block against numpy on [LL] SARSA prompts
    (9 x 4, d = 36, n = 20; quick S = A = 3, d = 9), 20 instances (4 quick), and the (L2)
    sympy identity with fully symbolic ``P, V`` at d = 1, n = 2 (these sizes only);
    ``block_rows=False`` leaves those out (``verify --module`` checks only the user's algorithms).
    ``progress``: called with a line of text as each declaration's level starts
    (:func:`lsa_theory.constructions.derive.verify_rows`) and before the block rows.
    """
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng: expected numpy.random.Generator, got {type(rng).__name__}")
    algs = list(ALGORITHMS.values()) if algorithms is None else list(algorithms)
    rows: list[Row] = []
    for alg in algs:
        rows.extend(derive.verify_rows(alg, rng, quick=quick, progress=progress))
    if not block_rows:
        return rows
    if progress is not None:
        progress("block rows: (L1) (L2) (R4), numeric and sympy")
    S, A, k = (3, 3, 4) if quick else (9, 4, 20)
    d, n, gamma = S * A, 20, 0.5
    l2, torch_res = [], []
    for _ in range(k):
        mdp = lt.random_mdp(S, A, gamma, rng)
        traj = lt.rollout(mdp, lt.uniform_policy(mdp), n, rng)
        X = lt.sarsa_columns(traj, lt.random_features(S, A, d, rng), gamma)
        w = rng.uniform(-1.0, 1.0, d)
        D = 3 * d + 2
        P, V = rng.standard_normal((2, D, D)) / np.sqrt(D)
        l2.append(_lemma_c1_residual(X, w, P, V))
        torch_res.append(_torch_residual(X, w, P, V))
    r4 = []
    for _ in range(k):  # (R4): one masked layer's prediction = the statistics formula, dense P, Q
        dr = 3 if quick else 5
        inst = _regression.regression_instance(dr, 20, rng)
        P, Q = rng.standard_normal((2, dr + 1, dr + 1))
        r4.append(_prediction_residual(inst, P, Q))
    r4_check = (
        "one-layer prediction on (R1) = statistics formula, dense P, Q "
        f"(d = {3 if quick else 5}, N = 20, {k} instances)"
    )
    rows.append(Row.against("(R4)", r4_check, max(r4), READOUT_TOL))
    proof = _prove_prediction(2, 2)
    what = "sympy: one-layer prediction, symbolic P, Q (these sizes only: d = 2, N = 2)"
    rows.append(Row(proof.claim, what, float(proof.nonzero), 0.0, proof.holds))
    sizes = f"S = {S}, A = {A}, d = {d}, n = {n}, {k} instances"
    rows.append(
        Row.against(
            "(L2)", f"readout = sufficient-statistics formula, dense P, V ({sizes})", max(l2), READOUT_TOL
        )
    )
    rows.append(
        Row.against("(L1)", f"torch float64 block = numpy block ({sizes})", max(torch_res), READOUT_TOL)
    )
    proof = _prove_lemma_c1(1, 2)
    rows.append(
        Row(
            proof.claim,
            "sympy: fully symbolic P, V (these sizes only: d = 1, n = 2)",
            float(proof.nonzero),
            0.0,
            proof.holds,
        )
    )
    rows.append(lemma_c1_all_sizes_row(rng))
    return rows


def lemma_c1_all_sizes_row(rng: np.random.Generator) -> Row:
    """The (L2) block-algebra row, claimed only if its obligation (one (L1) layer with arbitrary
    ``P``, ``V`` blocks) run through :func:`lsa_theory.lsa_block` equals the proved formula at
    :data:`lsa_theory.constructions.proof_link.LINK_SIZES` (d = n = 1 first), within the round-off bounds."""
    from .proof_link import LINK_SIZES, check_obligation

    (ob,), _ = symbolic_sizes.lemma_c1_obligations()
    for point in LINK_SIZES:
        diff, ok = check_obligation(ob, point, rng)["forward"]
        if not ok:
            what = f"all-sizes row NOT claimed: lsa_block differs from the proved formula at {point}"
            return Row("(L2)", what, diff, 0.0, False)
    proof = symbolic_sizes.prove_lemma_c1_all_sizes()
    points = "; ".join(derive.sizes_text(p) for p in LINK_SIZES)
    what = "sympy, block algebra: arbitrary P, V blocks; readout uses P12, P22, Vbar21, Vbar22 only"
    what += f" ({derive.sizes_text(proof.sizes)}; = lsa_block at {points})"
    return Row(proof.claim, what, float(proof.nonzero), 0.0, proof.holds)


def _torch_residual(X: np.ndarray, w: np.ndarray, P: np.ndarray, V: np.ndarray) -> float:
    import torch

    H = lt.sarsa_prompt(X, w)
    out_np = lt.lsa_block(H, P, V)
    out_t = lt.lsa_block(*(torch.as_tensor(a, dtype=torch.float64) for a in (H, P, V)))
    if not isinstance(out_t, torch.Tensor):
        return float("inf")
    return relative_residual(out_t.numpy(), out_np)
