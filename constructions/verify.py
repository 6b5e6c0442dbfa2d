r"""Residuals of every construction claim against the naive loops, and the ``verify`` claim table.

Each ``verify_*`` feeds one instance through the construction, the prompt builder and the LSA
block and compares the readout with :mod:`lsa_theory.reference` (explicit Python loops). Two
residuals are reported:

- ``readout``: :math:`\max|TF - \text{ref}| / \max(1, \max|\text{ref}|)`, the relative error of the
  updated parameters. Round-off bound: each entry is a sum of :math:`O(nd)` products of
  :math:`O(1)` numbers, so the float64 error is a few ulps times that sum; :data:`READOUT_TOL`
  (``1e-12``) leaves two orders of margin at the [LL] size (d = 36, n = 20).
- ``context``: the largest change of a context column or of the constant row, which the
  constructions leave exactly unchanged (their products with those columns are exact zeros),
  so its tolerance is ``0.0``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

import lsa_theory as lt
from lsa_theory._checks import check_int

from . import derive, numeric, symbolic, symbolic_sizes  # noqa: F401  (numeric: the constructions run)
from ._residuals import READOUT_TOL, Residuals, Row, relative_residual
from .algorithms import regression as _regression
from .registry import ALGORITHMS, Algorithm

__all__ = [
    "READOUT_TOL",
    "Residuals",
    "Row",
    "relative_residual",
    "verify_sarsa",
    "verify_actor_critic",
    "verify_td",
    "verify_lemma_c1",
    "run_claims",
    "lemma_c1_all_sizes_row",
]


def _through(name: str, inst: dict, sizes: dict, hyper: dict, c: float, depth: int) -> Residuals:
    """One instance through the registered declaration ``name`` (:func:`derive.residuals`);
    ``context`` is its invariant residual."""
    res = derive.residuals(ALGORITHMS[name], inst, sizes, hyper, c=c, depth=check_int(depth, "n_layers"))
    return Residuals(res.readout, res.invariant)


def verify_sarsa(phi, phi_next, r, w, gamma, alpha, c=1.0, n_layers=1) -> Residuals:
    """(S4)/(S5): ``n_layers`` copies of ``(c P*, V*/c)`` on ``H(z; w)`` versus ``n_layers``
    iterations of naive batch SARSA (S2). ``phi``, ``phi_next`` (n, d), ``r`` (n,), ``w`` (d,)."""
    inst = {"phi": phi, "phi_next": phi_next, "r": r, "w": w}
    return _through("sarsa", inst, {"d": len(w)}, {"gamma": gamma, "alpha": alpha}, c, n_layers)


def verify_actor_critic(phi, phi_next, r, g, w, lam, gamma, alpha, beta, c=1.0) -> Residuals:
    """(A4): one layer of (A3) on the (A1) prompt versus naive (A2); ``g`` (n, d_pi), ``lam`` (d_pi,)."""
    inst = {"phi": phi, "phi_next": phi_next, "r": r, "g": g, "w": w, "lam": lam}
    sizes = {"d": len(w), "d_pi": len(lam)}
    return _through("actor_critic", inst, sizes, {"gamma": gamma, "alpha": alpha, "beta": beta}, c, 1)


def verify_td(phi, phi_next, r, phi_query, gamma, alpha, n_layers=1) -> Residuals:
    """(W3): ``n_layers`` masked blocks (W2) with (W3); ``-Z[-1, -1]`` versus ``w_L^T phi(s)`` with
    ``w_L`` from ``n_layers`` naive batch TD(0) steps from 0. ``phi_query`` (d,). ``context`` is
    the change of the feature rows of every column (the last row is meant to change)."""
    inst = {"phi": phi, "phi_next": phi_next, "r": r, "q": phi_query}
    return _through("td", inst, {"d": len(phi_query)}, {"gamma": gamma, "alpha": alpha}, 1.0, n_layers)


def verify_lemma_c1(X: np.ndarray, w: np.ndarray, P: np.ndarray, V: np.ndarray) -> float:
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


def _rows_from(claim: str, check: str, values: list[float], tol: float) -> Row:
    res = float(max(values))
    return Row(claim, check, res, tol, bool(res <= tol))


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
    :data:`constructions.ALGORITHMS`) the rows of :func:`constructions.derive.verify_rows` (its
    own sizes: full at the [LL] sizes where they apply, ``quick`` at S = A = 3); then the block
    rows: (L2) for dense random ``P, V`` and the torch block against numpy on [LL] SARSA prompts
    (9 x 4, d = 36, n = 20; quick S = A = 3, d = 9), 20 instances (4 quick), and the (L2)
    sympy identity with fully symbolic ``P, V`` at d = 1, n = 2 (these sizes only);
    ``block_rows=False`` leaves those out (``verify --module`` checks only the user's algorithms).
    ``progress``: called with a line of text as each declaration's level starts
    (:func:`constructions.derive.verify_rows`) and before the block rows.
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
        l2.append(verify_lemma_c1(X, w, P, V))
        torch_res.append(_torch_residual(X, w, P, V))
    r4 = []
    for _ in range(k):  # (R4): one masked layer's prediction = the statistics formula, dense P, Q
        dr = 3 if quick else 5
        inst = _regression.regression_instance(dr, 20, rng)
        P, Q = rng.standard_normal((2, dr + 1, dr + 1))
        r4.append(_regression.verify_prediction(inst["X"], inst["y"], inst["xq"], P, Q))
    rows.append(_rows_from("(R4)", f"one-layer prediction on (R1) = statistics formula, dense P, Q (d = "
                           f"{3 if quick else 5}, N = 20, {k} instances)", r4, READOUT_TOL))  # fmt: skip
    proof = _regression.prove_prediction(2, 2)
    what = "sympy: one-layer prediction, symbolic P, Q (these sizes only: d = 2, N = 2)"
    rows.append(Row(proof.claim, what, float(proof.nonzero), 0.0, proof.holds))
    sizes = f"S = {S}, A = {A}, d = {d}, n = {n}, {k} instances"
    rows.append(
        _rows_from("(L2)", f"readout = sufficient-statistics formula, dense P, V ({sizes})", l2, READOUT_TOL)
    )
    rows.append(_rows_from("(L1)", f"torch float64 block = numpy block ({sizes})", torch_res, READOUT_TOL))
    proof = symbolic.prove_lemma_c1(1, 2)
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
    :data:`constructions.proof_link.LINK_SIZES` (d = n = 1 first), within the round-off bounds."""
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
