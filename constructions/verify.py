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

from dataclasses import asdict, dataclass

import numpy as np

import lsa_theory as lt
from lsa_theory._checks import check_int

from . import numeric, symbolic

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
]

#: Relative tolerance of a readout against the naive loop (see the module docstring).
READOUT_TOL = 1e-12


@dataclass(frozen=True)
class Residuals:
    """``readout``: relative error of the updated parameters; ``context``: largest absolute change
    of a context column or of the constant row (``nan`` where the claim says nothing of them)."""

    readout: float
    context: float


@dataclass(frozen=True)
class Row:
    """One line of the ``lsa-theory verify`` table."""

    claim: str
    check: str
    residual: float
    tol: float
    passed: bool

    def as_dict(self) -> dict:
        return asdict(self)


def relative_residual(out: np.ndarray, ref: np.ndarray) -> float:
    """``max|out - ref| / max(1, max|ref|)`` in float64."""
    out = np.asarray(out, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    if out.shape != ref.shape:
        raise ValueError(f"shapes differ: {out.shape} vs {ref.shape}")
    return float(np.abs(out - ref).max(initial=0.0) / max(1.0, float(np.abs(ref).max(initial=0.0))))


def _unchanged(H: np.ndarray, H_out: np.ndarray, const_row: int | None) -> float:
    change = float(np.abs(H_out[..., :, :-1] - H[..., :, :-1]).max())
    if const_row is not None:
        change = max(change, float(np.abs(H_out[..., const_row, -1] - H[..., const_row, -1]).max()))
    return change


def verify_sarsa(phi, phi_next, r, w, gamma, alpha, c=1.0, n_layers=1) -> Residuals:
    """(S4)/(S5): ``n_layers`` copies of ``(c P*, V*/c)`` on ``H(z; w)`` versus ``n_layers``
    iterations of naive batch SARSA (S2). ``phi``, ``phi_next`` (n, d), ``r`` (n,), ``w`` (d,)."""
    L = check_int(n_layers, "n_layers")
    X = lt.context_columns(phi, phi_next, r, gamma)
    H = lt.sarsa_prompt(X, w)
    d = lt.sarsa_dims(H.shape[-2])
    H_out = lt.lsa_stack(H, [numeric.sarsa(d, alpha, c)] * L)
    ref = lt.naive_batch_sarsa(phi, phi_next, r, w, gamma, alpha, n_iter=L)
    return Residuals(relative_residual(lt.readout(H_out, d), ref), _unchanged(H, H_out, 2 * d + 1))


def verify_actor_critic(phi, phi_next, r, g, w, lam, gamma, alpha, beta, c=1.0) -> Residuals:
    """(A4): one layer of (A3) on the (A1) prompt versus naive (A2); ``g`` (n, d_pi), ``lam`` (d_pi,)."""
    X = lt.context_columns(phi, phi_next, r, gamma)
    g = np.asarray(g, dtype=np.float64)
    H = lt.actor_critic_prompt(X, g.T, w, lam)
    layout = lt.Layout(len(w), len(lam))
    H_out = lt.lsa_block(H, *numeric.actor_critic(layout.d, layout.d_pi, alpha, beta, c))
    w_ref, lam_ref = lt.naive_batch_actor_critic(phi, phi_next, r, g, w, lam, gamma, alpha, beta)
    res = relative_residual(lt.readout(H_out, layout.k), np.concatenate([w_ref, lam_ref]))
    return Residuals(res, _unchanged(H, H_out, layout.const))


def verify_td(phi, phi_next, r, phi_query, gamma, alpha, n_layers=1) -> Residuals:
    """(W3): ``n_layers`` masked blocks (W2) with (W3); ``-Z[-1, -1]`` versus ``w_L^T phi(s)`` with
    ``w_L`` from ``n_layers`` naive batch TD(0) steps from 0. ``phi_query`` (d,). ``context`` is
    the change of the feature rows of every column (the last row is meant to change)."""
    L = check_int(n_layers, "n_layers")
    X = lt.context_columns(phi, phi_next, r, gamma)
    Z = lt.td_prompt(X, phi_query)
    d = (Z.shape[-2] - 1) // 2
    Z_out = lt.masked_lsa_stack(Z, [numeric.td(d, alpha)] * L)
    w_L = lt.naive_batch_td(phi, phi_next, r, gamma, alpha, n_iter=L)
    value = np.asarray(phi_query, dtype=np.float64) @ w_L
    res = relative_residual(-Z_out[..., -1, -1], value)
    return Residuals(res, float(np.abs(Z_out[..., :-1, :] - Z[..., :-1, :]).max()))


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


def run_claims(rng: np.random.Generator, quick: bool = False) -> list[Row]:
    """Check every construction claim of THEORY.md on fresh random instances; returns the rows.

    Full: the [LL] family (S = 9, A = 4, d = 36, n = 20, gamma = 0.5, alpha = 0.2), 20 MDPs with
    fresh features, scales ``c`` in {1, -3.7, 0.05}; exact sympy identities at d = 2, n = 3 (those
    sizes only). Quick: S = A = 3
    (d = 9), 4 MDPs, the same symbolic sizes.
    """
    S, A, k = (3, 3, 4) if quick else (9, 4, 20)
    d, n, gamma, alpha, beta, eps = S * A, 20, 0.5, 0.2, 0.1, 0.1
    scales = (1.0, -3.7, 0.05)
    acc: dict[str, list[float]] = {}

    def add(key: str, value: float) -> None:
        acc.setdefault(key, []).append(value)

    for _ in range(k):
        mdp = lt.random_mdp(S, A, gamma, rng)
        phi = lt.random_features(S, A, d, rng)
        w = rng.uniform(-1.0, 1.0, d)
        _, traj = lt.sarsa_context(mdp, phi, w, n, eps, rng)
        f = phi[traj.states, traj.actions]
        for c in scales:
            res = verify_sarsa(f[:-1], f[1:], traj.rewards, w, gamma, alpha, c)
            add("S4", res.readout)
            add("S4ctx", res.context)
        for L in (2, 3, 4):
            res = verify_sarsa(f[:-1], f[1:], traj.rewards, w, gamma, alpha, scales[L % 3], L)
            add("S5", res.readout)
            add("S5ctx", res.context)
        # (A4): critic on phi, actor on fresh features phi_pi (d_pi = d)
        phi_pi = lt.random_features(S, A, d, rng)
        lam = rng.uniform(-1.0, 1.0, d)
        _, g, traj = lt.actor_critic_context(mdp, phi, phi_pi, lam, n, rng)
        f = phi[traj.states, traj.actions]
        for c in scales:
            res = verify_actor_critic(f[:-1], f[1:], traj.rewards, g.T, w, lam, gamma, alpha, beta, c)
            add("A4", res.readout)
            add("A4ctx", res.context)
        # (W3): TD(0) with state features under the uniform policy
        phi_s = lt.random_state_features(S, S, rng)
        traj = lt.rollout(mdp, lt.uniform_policy(mdp), n, rng)
        for L in (1, 2, 4):
            res = verify_td(
                phi_s[traj.states[:-1]], phi_s[traj.states[1:]], traj.rewards, phi_s[0], gamma, alpha, L
            )
            add("W3", res.readout)
            add("W3ctx", res.context)
        # (L2) for dense random P, V
        X = lt.sarsa_columns(traj, lt.random_features(S, A, d, rng), gamma)
        D = 3 * d + 2
        P, V = rng.standard_normal((2, D, D)) / np.sqrt(D)
        add("L2", verify_lemma_c1(X, w, P, V))
        # torch float64 in, torch out: equal to numpy
        add("torch", _torch_residual(X, w, P, V))

    rows = [
        _rows_from("(S4)", f"SARSA block = naive (S2), {k} MDPs, c in {scales}", acc["S4"], READOUT_TOL),
        _rows_from("(S4)", "context columns and constant row unchanged", acc["S4ctx"], 0.0),
        _rows_from("(S5)", "L = 2, 3, 4 stacked blocks = L naive SARSA iterations", acc["S5"], READOUT_TOL),
        _rows_from("(S5)", "context unchanged through the stack", acc["S5ctx"], 0.0),
        _rows_from("(A4)", "actor-critic block = naive (A2), w' and lambda'", acc["A4"], READOUT_TOL),
        _rows_from("(A4)", "context columns and constant row unchanged", acc["A4ctx"], 0.0),
        _rows_from("(W3)", "L = 1, 2, 4 masked blocks = L naive TD(0) steps", acc["W3"], READOUT_TOL),
        _rows_from("(W3)", "feature rows of every column unchanged", acc["W3ctx"], 0.0),
        _rows_from("(L2)", "readout = sufficient-statistics formula, dense P, V", acc["L2"], READOUT_TOL),
        _rows_from("(L1)", "torch float64 block = numpy block", acc["torch"], READOUT_TOL),
    ]
    for proof, what in (
        (symbolic.prove_sarsa(2, 3, 1), "one layer, all entries symbolic, c symbolic"),
        (symbolic.prove_sarsa(2, 3, 2), "two stacked layers = two SARSA iterations"),
        (symbolic.prove_actor_critic(2, 2, 3), "actor-critic layer, all entries symbolic"),
        (symbolic.prove_td(2, 3, 2), "two masked layers = two TD(0) steps"),
        (symbolic.prove_lemma_c1(1, 2), "fully symbolic P, V and prompt"),
    ):
        # a finite computation: exact for these sizes, not a proof for every size
        sizes = ", ".join(f"{key} = {val}" for key, val in proof.sizes.items())
        rows.append(
            Row(
                proof.claim,
                f"sympy at {sizes} (these sizes only): {what}",
                float(proof.nonzero),
                0.0,
                proof.holds,
            )
        )
    return rows


def _torch_residual(X: np.ndarray, w: np.ndarray, P: np.ndarray, V: np.ndarray) -> float:
    import torch

    H = lt.sarsa_prompt(X, w)
    out_np = lt.lsa_block(H, P, V)
    out_t = lt.lsa_block(*(torch.as_tensor(a, dtype=torch.float64) for a in (H, P, V)))
    if not isinstance(out_t, torch.Tensor):
        return float("inf")
    return relative_residual(out_t.numpy(), out_np)
