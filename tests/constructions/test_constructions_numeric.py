"""Numerical checks of the explicit constructions (S3)-(S5), (A3)-(A4), (W3) and of (L1)/(L2).

Everything is checked against an INDEPENDENT implementation written in this file from docs/theory.md
alone (plain Python loops and explicit numpy indexing): the (H), (A1) and (W1) prompts, the
updates (S2), (A2) and batch TD(0) of §5, the score of §3, the statistic ``Sigma`` of (L2) and the
construction matrices of (S3)/(A3)/(W3). The hand-built prompts are fed through
``lsa_theory.constructions.numeric`` and the blocks of ``lsa_theory.lsa``; the package's prompt builders must
reproduce the hand-built arrays exactly, and the readouts must agree with the package's naive
reference loops (``lsa_theory.reference``) to ``REL_TOL`` and with the hand-computed updates to
``HAND_TOL``.

Data are both arbitrary (hypothesis-drawn seeds -> random arrays) and real on-policy rollouts of
random MDPs. Every random array comes from ``np.random.default_rng(seed)`` with an explicit seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from hypothesis import example, given, note, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

import lsa_theory as lt
from lsa_theory import Layout
from lsa_theory.constructions import numeric as cn

# --------------------------------------------------------------------------------------------
# Tolerances. Every residual is measured as max|actual - target| / max(1, max|target|).
#
# REL_TOL: package construction vs the package's naive loops. Both sides evaluate the same
# polynomial in float64, in different orders: each readout entry is a sum of O(n d) products of
# O(1) numbers (features and rewards in [-1, 1], |w| <= 10, |alpha|, |beta| <= 1, c and 1/c cancel
# up to one rounding each). A reordered float64 sum of N terms differs by at most ~N eps sum|terms|
# with eps = 1.1e-16; here N <= 3 * 15 + 2 * 6 + 3 and sum|terms| / max(1, |target|) is O(d) to
# O(d^2), so the expected worst case is ~1e-13, and 1e-12 leaves a 10x margin without hiding an
# O(1e-9) modelling error (a wrong alpha, a dropped 1/n, a missing gamma all show up at >= 1e-9;
# see ``test_tolerance_is_discriminating``). Stacked layers (L <= 4) re-feed the rounded w, which
# can amplify the first layer's round-off by ||I - alpha A|| <= 1 + alpha d (1 + gamma) per layer;
# the target grows with the same map. Observed (3000 hypothesis examples per test, float64):
# worst residual 2.0e-15 for L <= 4; even L = 32 stacked SARSA layers (d = 6, n = 15, alpha = 1,
# gamma = 0.99, |w| <= 10) stay at 6.4e-15, so 1e-12 is not near the round-off floor.
REL_TOL = 1e-12
# HAND_TOL: construction vs the hand-computed updates of this file (the brief's 1e-10).
HAND_TOL = 1e-10
# TORCH_TOL: torch float64 vs numpy on the same block (different BLAS kernels, same float64).
TORCH_TOL = 1e-13
# FD_TOL: autograd vs central differences. The readout is linear in P for fixed V and linear in V
# for fixed P, so central differences are exact up to round-off ~ eps |f| / h with h = 1e-3.
FD_STEP = 1e-3
FD_TOL = 1e-8

#: Largest residual seen per check (filled while the tests run; read it to report residuals).
MAX_RESIDUALS: dict[str, float] = {}


def rel_residual(actual, target) -> float:
    """max|actual - target| / max(1, max|target|); shapes must match and be non-empty."""
    actual = np.asarray(actual, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    assert actual.shape == target.shape, (actual.shape, target.shape)
    assert target.size > 0, "empty comparison would pass vacuously"
    return float(np.max(np.abs(actual - target)) / max(1.0, float(np.max(np.abs(target)))))


def check_close(actual, target, tol: float, label: str) -> float:
    res = rel_residual(actual, target)
    MAX_RESIDUALS[label] = max(MAX_RESIDUALS.get(label, 0.0), res)
    try:
        note(f"{label}: relative residual {res:.3e}")
    except InvalidArgument:  # called outside a hypothesis test
        pass
    assert res <= tol, f"{label}: relative residual {res:.3e} > {tol:.0e}"
    return res


def check_exact(actual, target, label: str) -> None:
    actual = np.asarray(actual)
    target = np.asarray(target)
    assert actual.shape == target.shape, (label, actual.shape, target.shape)
    assert target.size > 0
    diff = np.abs(actual.astype(np.float64) - target.astype(np.float64))
    assert np.array_equal(actual, target), f"{label}: not exactly equal (max diff {diff.max():.3e})"


def as_np(x) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


# --------------------------------------------------------------------------------------------
# Independent implementation from docs/theory.md (plain loops, explicit indexing).
# --------------------------------------------------------------------------------------------


def hand_context(phi, phi_next, r, gamma) -> np.ndarray:
    """(H) context block ``X`` (2d+1, n): column i is ``[phi_i; gamma phi_i^+; r_{i+1}]``."""
    n, d = len(r), len(phi[0])
    X = np.zeros((2 * d + 1, n))
    for i in range(n):
        for j in range(d):
            X[j, i] = phi[i][j]
            X[d + j, i] = gamma * phi_next[i][j]
        X[2 * d, i] = r[i]
    return X


def hand_sarsa_prompt(phi, phi_next, r, w, gamma) -> np.ndarray:
    """(H) ``H(z; w)`` (3d+2, n+1): rows phi | gamma phi^+ | r | 1 | w, last column ``[0; 1; w]``."""
    n, d = len(r), len(w)
    H = np.zeros((3 * d + 2, n + 1))
    for i in range(n):
        for j in range(d):
            H[j, i] = phi[i][j]
            H[d + j, i] = gamma * phi_next[i][j]
        H[2 * d, i] = r[i]
    H[2 * d + 1, n] = 1.0
    for j in range(d):
        H[2 * d + 2 + j, n] = w[j]
    return H


def hand_ac_prompt(phi, phi_next, r, g_rows, w, lam, gamma) -> np.ndarray:
    """(A1) prompt (3d+2d_pi+2, n+1): ``x_i = [phi_i; gamma phi_i^+; r_{i+1}; g_i]``, ``[0; 1; w; lam]``."""
    n, d, d_pi = len(r), len(w), len(lam)
    m = 2 * d + 1 + d_pi
    H = np.zeros((3 * d + 2 * d_pi + 2, n + 1))
    for i in range(n):
        for j in range(d):
            H[j, i] = phi[i][j]
            H[d + j, i] = gamma * phi_next[i][j]
        H[2 * d, i] = r[i]
        for k in range(d_pi):
            H[2 * d + 1 + k, i] = g_rows[i][k]
    H[m, n] = 1.0
    for j in range(d):
        H[m + 1 + j, n] = w[j]
    for k in range(d_pi):
        H[m + 1 + d + k, n] = lam[k]
    return H


def hand_td_prompt(phi, phi_next, r, gamma, queries) -> np.ndarray:
    """(W1) ``Z`` (2d+1, n+n_q): columns ``[phi(s_i); gamma phi(s_i'); r_i]`` then ``[phi(s); 0; 0]``."""
    n, d, n_q = len(r), len(phi[0]), len(queries)
    Z = np.zeros((2 * d + 1, n + n_q))
    for i in range(n):
        for j in range(d):
            Z[j, i] = phi[i][j]
            Z[d + j, i] = gamma * phi_next[i][j]
        Z[2 * d, i] = r[i]
    for q in range(n_q):
        for j in range(d):
            Z[j, n + q] = queries[q][j]
    return Z


def hand_deltas(phi, phi_next, r, w, gamma) -> list[float]:
    """TD errors of (S2): ``delta_i = r_{i+1} + gamma w^T phi_i^+ - w^T phi_i``."""
    out = []
    for i in range(len(r)):
        q = sum(w[j] * phi[i][j] for j in range(len(w)))
        q_next = sum(w[j] * phi_next[i][j] for j in range(len(w)))
        out.append(r[i] + gamma * q_next - q)
    return out


def hand_sarsa(phi, phi_next, r, w, gamma, alpha, n_iter=1) -> np.ndarray:
    """(S2) ``w <- w + (alpha/n) sum_i delta_i phi_i``, ``n_iter`` times on the same batch."""
    n, d = len(r), len(w)
    w = [float(x) for x in w]
    for _ in range(n_iter):
        delta = hand_deltas(phi, phi_next, r, w, gamma)
        w = [w[j] + alpha / n * sum(delta[i] * phi[i][j] for i in range(n)) for j in range(d)]
    return np.array(w)


def hand_actor_critic(phi, phi_next, r, g_rows, w, lam, gamma, alpha, beta) -> np.ndarray:
    """(A2) one step; returns ``[w'; lambda']``."""
    n = len(r)
    delta = hand_deltas(phi, phi_next, r, w, gamma)
    w_new = [w[j] + alpha / n * sum(delta[i] * phi[i][j] for i in range(n)) for j in range(len(w))]
    lam_new = [lam[k] + beta / n * sum(delta[i] * g_rows[i][k] for i in range(n)) for k in range(len(lam))]
    return np.array(w_new + lam_new)


def hand_score(phi_pi_table, lam, s, a) -> list[float]:
    """§3 score ``g(s, a) = phi_pi(s, a) - sum_b pi_lambda(b|s) phi_pi(s, b)``."""
    A, d_pi = phi_pi_table.shape[1], phi_pi_table.shape[2]
    logits = [sum(lam[k] * phi_pi_table[s, b, k] for k in range(d_pi)) for b in range(A)]
    top = max(logits)
    e = [math.exp(x - top) for x in logits]
    pi = [x / sum(e) for x in e]
    return [phi_pi_table[s, a, k] - sum(pi[b] * phi_pi_table[s, b, k] for b in range(A)) for k in range(d_pi)]


def hand_sigma(X) -> np.ndarray:
    """(L2) ``Sigma = (1/n) sum_i x_i x_i^T`` by loops."""
    m, n = X.shape
    S = np.zeros((m, m))
    for a in range(m):
        for b in range(m):
            S[a, b] = sum(X[a, i] * X[b, i] for i in range(n)) / n
    return S


def hand_sarsa_params(d, alpha, c):
    """(S3)/(S4): ``(c P*, V*/c)`` embedded blockwise in D x D, D = 3d + 2."""
    return hand_ac_params(d, 0, alpha, 0.0, c)


def hand_ac_params(d, d_pi, alpha, beta, c):
    """(A3): ``P12* = [[0, -I, 0], [0, I, 0], [1, 0, 0], [0, 0, 0]]`` (rows d|d|1|d_pi, columns
    1|d|d_pi) and ``Vbar21* = [[alpha I, 0, 0, 0], [0, 0, 0, beta I]]`` (rows d|d_pi, columns
    d|d|1|d_pi), every other entry zero; returned as the scaled pair ``(c P*, V*/c)``."""
    m = 2 * d + 1 + d_pi
    D = 3 * d + 2 * d_pi + 2
    P12 = np.zeros((m, D - m))
    for j in range(d):
        P12[j, 1 + j] = -1.0
        P12[d + j, 1 + j] = 1.0
    P12[2 * d, 0] = 1.0
    Vbar21 = np.zeros((d + d_pi, m))
    for j in range(d):
        Vbar21[j, j] = alpha
    for k in range(d_pi):
        Vbar21[d + k, 2 * d + 1 + k] = beta
    P = np.zeros((D, D))
    V = np.zeros((D, D))
    for a in range(m):
        for b in range(D - m):
            P[a, m + b] = c * P12[a, b]
    for a in range(d + d_pi):
        for b in range(m):
            V[m + 1 + a, b] = Vbar21[a, b] / c
    return P, V, P12, Vbar21


def hand_td_params(d, alpha):
    """(W3): ``P = e_D e_D^T``; ``Q`` zero but ``Q[:d, :d] = -alpha I``, ``Q[:d, d:2d] = alpha I``."""
    D = 2 * d + 1
    P = np.zeros((D, D))
    P[D - 1, D - 1] = 1.0
    Q = np.zeros((D, D))
    for j in range(d):
        Q[j, j] = -alpha
        Q[j, d + j] = alpha
    return P, Q


# --------------------------------------------------------------------------------------------
# Data: arbitrary random batches and on-policy rollouts, all from explicit seeds.
# --------------------------------------------------------------------------------------------


@dataclass
class Batch:
    phi: np.ndarray  # (n, d) rows phi_i
    phi_next: np.ndarray  # (n, d) rows phi_i^+ (undiscounted)
    r: np.ndarray  # (n,) r_{i+1}
    X_pkg: np.ndarray | None  # columns the package built from the rollout (None for arbitrary data)


def onehot_shape(d: int, n_actions: int) -> tuple[int, int]:
    """(S, A) with S * A = d, so that one-hot features have dimension d."""
    A = math.gcd(d, n_actions)
    return d // A, A


def rows_from_traj(table, states, actions, n):
    """``phi_i = table[s_i, a_i]`` and ``phi_i^+ = table[s_{i+1}, a_{i+1}]`` by explicit indexing."""
    d = table.shape[-1]
    phi = np.zeros((n, d))
    phi_next = np.zeros((n, d))
    for i in range(n):
        for j in range(d):
            phi[i, j] = table[states[i], actions[i], j]
            phi_next[i, j] = table[states[i + 1], actions[i + 1], j]
    return phi, phi_next


def arbitrary_rows(kind, d, n, n_actions, rng):
    if kind == "uniform":
        table = lt.random_features(n, 2, d, rng, kind="uniform")  # independent U(-1, 1) rows
        return table[:, 0, :].copy(), table[:, 1, :].copy()
    S, A = onehot_shape(d, n_actions)
    table = lt.random_features(S, A, d, rng, kind="onehot")
    s = rng.integers(S, size=n + 1)
    a = rng.integers(A, size=n + 1)
    phi, _ = rows_from_traj(table, s, a, n)
    s2 = rng.integers(S, size=n + 1)
    a2 = rng.integers(A, size=n + 1)
    _, phi_next = rows_from_traj(table, s2, a2, n)  # independent of phi: not a trajectory
    return phi, phi_next


def sarsa_batch(source, kind, d, n, gamma, n_states, n_actions, w, rng) -> Batch:
    """A SARSA batch; for rollouts ``w`` drives the epsilon-greedy behaviour policy (S6)."""
    if source == "arbitrary":
        phi, phi_next = arbitrary_rows(kind, d, n, n_actions, rng)
        return Batch(phi, phi_next, rng.uniform(-1.0, 1.0, n), None)
    S, A = onehot_shape(d, n_actions) if kind == "onehot" else (n_states, n_actions)
    mdp = lt.random_mdp(S, A, gamma, rng, reward=("sa", "sas")[int(rng.integers(2))])
    table = lt.random_features(S, A, d, rng, kind=kind)
    epsilon = float(rng.choice([0.0, 0.1, 1.0]))
    X, traj = lt.sarsa_context(mdp, table, w, n, epsilon, rng)
    assert traj.n == n and len(traj.states) == n + 1
    phi, phi_next = rows_from_traj(table, traj.states, traj.actions, n)
    return Batch(phi, phi_next, np.array(traj.rewards, dtype=float), X)


def relative_update(new, old) -> float:
    return float(np.max(np.abs(np.asarray(new) - np.asarray(old))))


# --------------------------------------------------------------------------------------------
# Strategies
# --------------------------------------------------------------------------------------------

ds = st.integers(1, 6)
d_pis = st.integers(1, 4)
ns = st.integers(1, 15)
n_layers = st.integers(1, 4)
gammas = st.floats(0.0, 0.99, allow_subnormal=False)
rates = st.floats(0.0, 1.0, exclude_min=True, allow_subnormal=False)
c_values = st.builds(lambda sign, mag: sign * mag, st.sampled_from([-1.0, 1.0]), st.floats(0.05, 20.0))
kinds = st.sampled_from(lt.FEATURE_KINDS)
sources = st.sampled_from(["arbitrary", "rollout"])
seeds = st.integers(0, 2**32 - 1)
w_scales = st.sampled_from([0.0, 1.0, 10.0])
state_counts = st.integers(1, 5)
action_counts = st.integers(1, 3)

HYP = settings(deadline=None, max_examples=60)


# --------------------------------------------------------------------------------------------
# 1 + 2. SARSA: (H), (S2), (S3)-(S5)
# --------------------------------------------------------------------------------------------


@HYP
@given(
    d=ds,
    n=ns,
    L=n_layers,
    gamma=gammas,
    alpha=rates,
    cs=st.lists(c_values, min_size=4, max_size=4),
    kind=kinds,
    source=sources,
    n_states=state_counts,
    n_actions=action_counts,
    w_scale=w_scales,
    seed=seeds,
)
@example(
    d=6, n=15, L=4, gamma=0.99, alpha=1.0, cs=[20.0, -20.0, 0.05, -0.05], kind="uniform",
    source="arbitrary", n_states=5, n_actions=3, w_scale=10.0, seed=0,
)  # fmt: skip
@example(
    d=1, n=1, L=1, gamma=0.0, alpha=1.0, cs=[-1.0] * 4, kind="onehot",
    source="rollout", n_states=1, n_actions=1, w_scale=0.0, seed=1,
)  # fmt: skip
@example(
    d=6, n=15, L=4, gamma=0.99, alpha=1.0, cs=[-0.05] * 4, kind="onehot",
    source="rollout", n_states=5, n_actions=3, w_scale=10.0, seed=2,
)  # fmt: skip
def test_sarsa_construction_equals_batch_sarsa(
    d, n, L, gamma, alpha, cs, kind, source, n_states, n_actions, w_scale, seed
):
    """(S4)/(S5): L stacked copies of ``(c_l P*, V*/c_l)`` give L iterations of (S2)."""
    rng = np.random.default_rng(seed)
    w = rng.uniform(-1.0, 1.0, d) * w_scale
    b = sarsa_batch(source, kind, d, n, gamma, n_states, n_actions, w, rng)

    # (H) by hand; the package builders must reproduce it exactly.
    X_hand = hand_context(b.phi, b.phi_next, b.r, gamma)
    H_hand = hand_sarsa_prompt(b.phi, b.phi_next, b.r, w, gamma)
    X_pkg = lt.context_columns(b.phi, b.phi_next, b.r, gamma)
    check_exact(X_pkg, X_hand, "context_columns")
    if b.X_pkg is not None:
        check_exact(b.X_pkg, X_hand, "sarsa_context columns")
    check_exact(lt.sarsa_prompt(X_pkg, w), H_hand, "sarsa_prompt")

    layers = [cn.sarsa(d, alpha, c) for c in cs[:L]]
    if L == 1:
        H_out = lt.lsa_block(H_hand, *layers[0])
        check_exact(lt.lsa_stack(H_hand, layers), H_out, "lsa_stack of one layer")
    else:
        H_out = lt.lsa_stack(H_hand, layers)
    out = lt.readout(H_out, d)

    target = lt.naive_batch_sarsa(b.phi, b.phi_next, b.r, w, gamma, alpha, n_iter=L)
    hand = hand_sarsa(b.phi, b.phi_next, b.r, w, gamma, alpha, n_iter=L)
    check_close(out, target, REL_TOL, f"sarsa L={L} vs naive_batch_sarsa")
    check_close(out, hand, HAND_TOL, "sarsa vs hand (S2)")
    check_close(hand, target, REL_TOL, "hand (S2) vs naive_batch_sarsa")
    check_close(lt.td_update(X_pkg, w, alpha, n_iter=L), target, REL_TOL, "td_update vs naive")

    # (S5): context columns, the constant row and the first block of the last column never change.
    check_exact(H_out[:, :n], H_hand[:, :n], "context columns")
    check_exact(H_out[2 * d + 1, :], H_hand[2 * d + 1, :], "constant row")
    check_exact(H_out[: 2 * d + 1, n], np.zeros(2 * d + 1), "first block of the parameter column")
    assert H_out.shape == H_hand.shape


@settings(deadline=None, max_examples=40)
@given(d=ds, n=ns, seed=seeds, alpha=st.floats(0.01, 1.0), c1=c_values, c2=c_values, gamma=gammas)
@example(d=3, n=4, seed=3, alpha=0.5, c1=-20.0, c2=0.05, gamma=0.5)
def test_sarsa_readout_independent_of_c(d, n, seed, alpha, c1, c2, gamma):
    """(S4): the readout of ``sarsa(d, alpha, c)`` does not depend on c (including c < 0)."""
    rng = np.random.default_rng(seed)
    phi, phi_next = arbitrary_rows("uniform", d, n, 1, rng)
    r = rng.uniform(-1.0, 1.0, n)
    w = rng.uniform(-1.0, 1.0, d)
    H = hand_sarsa_prompt(phi, phi_next, r, w, gamma)
    outs = [lt.readout(lt.lsa_block(H, *cn.sarsa(d, alpha, c)), d) for c in (1.0, c1, c2)]
    assert relative_update(outs[0], w) > 0.0, "the update is zero: the comparison would be vacuous"
    check_close(outs[1], outs[0], REL_TOL, "sarsa readout c vs c=1")
    check_close(outs[2], outs[0], REL_TOL, "sarsa readout c vs c=1")
    assert c1 == c2 or np.any(cn.sarsa(d, alpha, c1)[0] != cn.sarsa(d, alpha, c2)[0])


# --------------------------------------------------------------------------------------------
# Actor-critic: (A1), (A2), (A3)/(A4)
# --------------------------------------------------------------------------------------------


@HYP
@given(
    d=ds,
    d_pi=d_pis,
    n=ns,
    gamma=gammas,
    alpha=rates,
    beta=rates,
    c=c_values,
    kind=kinds,
    source=sources,
    n_states=state_counts,
    n_actions=action_counts,
    w_scale=w_scales,
    seed=seeds,
)
@example(
    d=6, d_pi=4, n=15, gamma=0.99, alpha=1.0, beta=1.0, c=-20.0, kind="uniform",
    source="rollout", n_states=5, n_actions=3, w_scale=10.0, seed=4,
)  # fmt: skip
@example(
    d=1, d_pi=1, n=1, gamma=0.0, alpha=1.0, beta=1.0, c=0.05, kind="onehot",
    source="arbitrary", n_states=1, n_actions=1, w_scale=0.0, seed=5,
)  # fmt: skip
def test_actor_critic_construction_equals_batch_actor_critic(
    d, d_pi, n, gamma, alpha, beta, c, kind, source, n_states, n_actions, w_scale, seed
):
    """(A4): one layer of ``(c P*, V*/c)`` of (A3) outputs ``[w'; lambda']`` of (A2)."""
    rng = np.random.default_rng(seed)
    w = rng.uniform(-1.0, 1.0, d) * w_scale
    lam = rng.uniform(-1.0, 1.0, d_pi)
    if source == "arbitrary":
        phi, phi_next = arbitrary_rows(kind, d, n, n_actions, rng)
        r = rng.uniform(-1.0, 1.0, n)
        g = rng.uniform(-1.0, 1.0, (d_pi, n))
        X_roll = None
    else:
        S, A = onehot_shape(d, n_actions) if kind == "onehot" else (n_states, n_actions)
        mdp = lt.random_mdp(S, A, gamma, rng)
        table = lt.random_features(S, A, d, rng, kind=kind)
        phi_pi = lt.random_features(S, A, d_pi, rng, kind="uniform")
        X_roll, g, traj = lt.actor_critic_context(mdp, table, phi_pi, lam, n, rng)
        phi, phi_next = rows_from_traj(table, traj.states, traj.actions, n)
        r = np.array(traj.rewards, dtype=float)
        # §3 score by hand, with the current lambda, at (s_i, a_i).
        g_hand = np.array([hand_score(phi_pi, lam, traj.states[i], traj.actions[i]) for i in range(n)]).T
        check_close(g, g_hand, REL_TOL, "score vs hand")
    g_rows = [[g[k, i] for k in range(d_pi)] for i in range(n)]

    X_hand = hand_context(phi, phi_next, r, gamma)
    H_hand = hand_ac_prompt(phi, phi_next, r, g_rows, w, lam, gamma)
    X_pkg = lt.context_columns(phi, phi_next, r, gamma)
    check_exact(X_pkg, X_hand, "context_columns")
    if X_roll is not None:
        check_exact(X_roll, X_hand, "actor_critic_context columns")
    check_exact(lt.actor_critic_prompt(X_pkg, g, w, lam), H_hand, "actor_critic_prompt")

    H_out = lt.lsa_block(H_hand, *cn.actor_critic(d, d_pi, alpha, beta, c))
    out = lt.readout(H_out, d + d_pi)
    w_ref, lam_ref = lt.naive_batch_actor_critic(phi, phi_next, r, g_rows, w, lam, gamma, alpha, beta)
    target = np.concatenate([w_ref, lam_ref])
    hand = hand_actor_critic(phi, phi_next, r, g_rows, w, lam, gamma, alpha, beta)
    check_close(out, target, REL_TOL, "actor-critic vs naive_batch_actor_critic")
    check_close(out, hand, HAND_TOL, "actor-critic vs hand (A2)")
    check_close(hand, target, REL_TOL, "hand (A2) vs naive_batch_actor_critic")
    w_fast, lam_fast = lt.actor_critic_update(X_pkg, g, w, lam, alpha, beta)
    check_close(np.concatenate([w_fast, lam_fast]), target, REL_TOL, "actor_critic_update vs naive")

    m = 2 * d + 1 + d_pi
    check_exact(H_out[:, :n], H_hand[:, :n], "context columns")
    check_exact(H_out[m, :], H_hand[m, :], "constant row")
    check_exact(H_out[:m, n], np.zeros(m), "first block of the parameter column")


# --------------------------------------------------------------------------------------------
# TD(0): (W1), (W2), (W3)
# --------------------------------------------------------------------------------------------


@HYP
@given(
    d=ds,
    n=ns,
    L=n_layers,
    gamma=gammas,
    alpha=rates,
    kind=kinds,
    source=sources,
    n_states=state_counts,
    n_actions=action_counts,
    seed=seeds,
)
@example(
    d=6, n=15, L=4, gamma=0.99, alpha=1.0, kind="uniform", source="arbitrary",
    n_states=5, n_actions=3, seed=6,
)  # fmt: skip
@example(
    d=1, n=1, L=1, gamma=0.0, alpha=1.0, kind="onehot", source="rollout",
    n_states=1, n_actions=1, seed=7,
)  # fmt: skip
def test_td_construction_equals_batch_td(d, n, L, gamma, alpha, kind, source, n_states, n_actions, seed):
    """(W3): L masked blocks give L steps of batch TD(0) from w = 0; -Z[-1, query] = w_L^T phi(s)."""
    rng = np.random.default_rng(seed)
    if source == "arbitrary":
        phi, phi_next = arbitrary_rows(kind, d, n, n_actions, rng)
        r = rng.uniform(-1.0, 1.0, n)
        phi_q = rng.uniform(-1.0, 1.0, d)
        X_roll = None
    else:
        S = d if kind == "onehot" else n_states
        phi_s = lt.random_features(S, 1, d, rng, kind=kind)[:, 0, :]  # state features (S, d)
        mdp = lt.random_mdp(S, n_actions, gamma, rng)
        pi = rng.dirichlet(np.ones(n_actions), size=S)
        traj = lt.rollout(mdp, pi, n, rng)
        X_roll = lt.td_columns(traj, phi_s, gamma)
        phi, phi_next = rows_from_traj(phi_s[:, None, :], traj.states, np.zeros(n + 1, dtype=int), n)
        r = np.array(traj.rewards, dtype=float)
        phi_q = phi_s[int(rng.integers(S))].copy()
    # Queries: phi(s) and the unit vectors e_1..e_d (their values read out w_L itself).
    queries = [list(phi_q)] + [[1.0 if j == k else 0.0 for j in range(d)] for k in range(d)]
    n_q = len(queries)

    X_hand = hand_context(phi, phi_next, r, gamma)
    Z_hand = hand_td_prompt(phi, phi_next, r, gamma, queries)
    X_pkg = lt.context_columns(phi, phi_next, r, gamma)
    check_exact(X_pkg, X_hand, "context_columns")
    if X_roll is not None:
        check_exact(X_roll, X_hand, "td_columns")
    check_exact(lt.td_prompt(X_pkg, np.array(queries).T, n_queries=n_q), Z_hand, "td_prompt (n_q queries)")
    check_exact(lt.td_prompt(X_pkg, phi_q), Z_hand[:, : n + 1], "td_prompt (one query)")

    layers = [cn.td(d, alpha)] * L
    if L == 1:
        Z_out = lt.masked_lsa(Z_hand, *layers[0], n_queries=n_q)
    else:
        Z_out = lt.masked_lsa_stack(Z_hand, layers, n_queries=n_q)
    values = -Z_out[-1, n:]

    w_ref = lt.naive_batch_td(phi, phi_next, r, gamma, alpha, n_iter=L)
    w_hand = hand_sarsa(phi, phi_next, r, [0.0] * d, gamma, alpha, n_iter=L)
    v_hand = sum(w_hand[j] * phi_q[j] for j in range(d))
    check_close(values[1:], w_ref, REL_TOL, f"td L={L} (unit queries) vs naive_batch_td")
    check_close(values[1:], w_hand, HAND_TOL, "td vs hand TD(0)")
    check_close(values[0], float(np.dot(w_ref, phi_q)), REL_TOL, "td value vs naive_batch_td")
    check_close(values[0], v_hand, HAND_TOL, "td value vs hand")
    check_close(w_hand, w_ref, REL_TOL, "hand TD(0) vs naive_batch_td")

    # The mask: one query alone gives the same value as among n_q queries.
    Z_one = lt.masked_lsa_stack(Z_hand[:, : n + 1], layers, n_queries=1)
    check_close(-Z_one[-1, n], values[0], REL_TOL, "td single query vs many")

    # Features rows never change; the reward row of the context ends holding delta_i(w_L) (by
    # induction over (W2)); the query's reward row holds -w_L^T phi(s).
    check_exact(Z_out[: 2 * d, :], Z_hand[: 2 * d, :], "td feature rows")
    check_close(Z_out[-1, :n], hand_deltas(phi, phi_next, r, w_hand, gamma), HAND_TOL, "td context row")


# --------------------------------------------------------------------------------------------
# 3. Block patterns (S3), (A3), (W3)
# --------------------------------------------------------------------------------------------


def assert_named_blocks(P, V, d, d_pi, alpha, beta, c):
    layout = Layout(d, d_pi)
    m, D = layout.m, layout.D
    assert P.shape == V.shape == (D, D)
    assert P.dtype == V.dtype == np.float64
    _, _, P12_star, Vbar21_star = hand_ac_params(d, d_pi, alpha, beta, c)
    zero = np.zeros
    check_exact(P[:m, :m], zero((m, m)), "P11")
    check_exact(P[m:, :m], zero((D - m, m)), "P21")
    check_exact(P[m:, m:], zero((D - m, D - m)), "P22")
    check_exact(V[:m, :m], zero((m, m)), "V11")
    check_exact(V[:m, m:], zero((m, D - m)), "V12")
    check_exact(V[m, :m], zero(m), "first row of V21")
    check_exact(V[m, m:], zero(D - m), "first row of V22")
    check_exact(V[m + 1 :, m:], zero((d + d_pi, D - m)), "Vbar22")
    blocks = layout.blocks(P, V)
    check_exact(blocks["P22"], zero((D - m, D - m)), "Layout.blocks P22")
    check_exact(blocks["Vbar22"], zero((d + d_pi, D - m)), "Layout.blocks Vbar22")
    # Values: P12 = c P12*, Vbar21 = Vbar21*/c (one rounding each), and the exact zero pattern.
    np.testing.assert_allclose(P[:m, m:], c * P12_star, rtol=1e-15, atol=0)
    np.testing.assert_allclose(V[m + 1 :, :m], Vbar21_star / c, rtol=1e-15, atol=0)
    check_exact(P[:m, m:] != 0, P12_star != 0, "P12 pattern")
    check_exact(V[m + 1 :, :m] != 0, Vbar21_star != 0, "Vbar21 pattern")
    check_exact(blocks["P12"], P[:m, m:], "Layout.blocks P12")
    check_exact(blocks["Vbar21"], V[m + 1 :, :m], "Layout.blocks Vbar21")
    # Count of non-zeros: 2d + 1 in P, d + d_pi in V.
    assert np.count_nonzero(P) == 2 * d + 1
    assert np.count_nonzero(V) == d + d_pi


@settings(deadline=None, max_examples=30)
@given(d=ds, alpha=rates, c=c_values)
@example(d=1, alpha=1.0, c=-0.05)
def test_sarsa_block_pattern(d, alpha, c):
    """(S3)/(S4): non-zeros only in P12 = c P12* and Vbar21 = Vbar21*/c."""
    P, V = cn.sarsa(d, alpha, c)
    assert_named_blocks(P, V, d, 0, alpha, 0.0, c)
    P_hand, V_hand, _, _ = hand_sarsa_params(d, alpha, c)
    np.testing.assert_allclose(P, P_hand, rtol=1e-15, atol=0)
    np.testing.assert_allclose(V, V_hand, rtol=1e-15, atol=0)
    # Explicit literal check for d = 1: rows (phi, gamma phi^+, r | 1, w).
    if d == 1:
        P_lit = np.zeros((5, 5))
        P_lit[0, 4], P_lit[1, 4], P_lit[2, 3] = -c, c, c
        V_lit = np.zeros((5, 5))
        V_lit[4, 0] = alpha / c
        check_exact(P, P_lit, "P literal d=1")
        check_exact(V, V_lit, "V literal d=1")


@settings(deadline=None, max_examples=30)
@given(d=ds, d_pi=d_pis, alpha=rates, beta=rates, c=c_values)
@example(d=2, d_pi=3, alpha=0.3, beta=0.7, c=-20.0)
def test_actor_critic_block_pattern(d, d_pi, alpha, beta, c):
    """(A3): P12 = c [[0, -I, 0], [0, I, 0], [1, 0, 0], [0, 0, 0]], Vbar21 = [[aI,0,0,0],[0,0,0,bI]]/c."""
    P, V = cn.actor_critic(d, d_pi, alpha, beta, c)
    assert_named_blocks(P, V, d, d_pi, alpha, beta, c)
    P_hand, V_hand, _, _ = hand_ac_params(d, d_pi, alpha, beta, c)
    np.testing.assert_allclose(P, P_hand, rtol=1e-15, atol=0)
    np.testing.assert_allclose(V, V_hand, rtol=1e-15, atol=0)


@settings(deadline=None, max_examples=30)
@given(d=ds, alpha=rates)
def test_td_block_pattern(d, alpha):
    """(W3): P = e_D e_D^T, Q zero but for the top-left blocks [-alpha I, alpha I]."""
    P, Q = cn.td(d, alpha)
    P_hand, Q_hand = hand_td_params(d, alpha)
    check_exact(P, P_hand, "td P")
    check_exact(Q, Q_hand, "td Q")
    assert np.count_nonzero(P) == 1 and np.count_nonzero(Q) == 2 * d


# --------------------------------------------------------------------------------------------
# 4. (L2) with dense random P, V
# --------------------------------------------------------------------------------------------


@settings(deadline=None, max_examples=50)
@given(d=ds, d_pi=st.integers(0, 4), n=ns, seed=seeds, scale=st.sampled_from([0.1, 1.0, 3.0]))
@example(d=6, d_pi=4, n=15, seed=8, scale=3.0)
@example(d=1, d_pi=0, n=1, seed=9, scale=1.0)
def test_lemma_c1_sufficient_statistics(d, d_pi, n, seed, scale):
    """(L2): for dense random P, V the (L1) readout equals tf_from_statistics(Sigma, wt, ...) and
    depends only on P12, P22, Vbar21, Vbar22."""
    rng = np.random.default_rng(seed)
    layout = Layout(d, d_pi)
    D, m, k = layout.D, layout.m, layout.k
    phi, phi_next = arbitrary_rows("uniform", d, n, 1, rng)
    r = rng.uniform(-1.0, 1.0, n)
    gamma = float(rng.uniform(0.0, 0.99))
    w = rng.uniform(-1.0, 1.0, d)
    lam = rng.uniform(-1.0, 1.0, d_pi)
    g_rows = rng.uniform(-1.0, 1.0, (n, d_pi))
    if d_pi:
        H = hand_ac_prompt(phi, phi_next, r, g_rows, w, lam, gamma)
    else:
        H = hand_sarsa_prompt(phi, phi_next, r, w, gamma)
    P = rng.standard_normal((D, D)) * scale
    V = rng.standard_normal((D, D)) * scale

    Sigma = hand_sigma(H[:m, :n])
    check_close(lt.sufficient_statistics(H[:m, :n]), Sigma, REL_TOL, "sufficient_statistics vs hand")
    wt = np.concatenate([[1.0], w, lam])
    out = lt.readout(lt.lsa_block(H, P, V), k)
    stat = lt.tf_from_statistics(Sigma, wt, P, V, n, layout)
    assert stat.shape == (k,)
    check_close(out, stat, REL_TOL, f"(L2) d_pi={d_pi}")
    assert relative_update(out, wt[1:]) > 1e-6  # a non-trivial update

    # Hand (L2) formula from the blocks.
    P12, P22 = P[:m, m:], P[m:, m:]
    Vb21, Vb22 = V[m + 1 :, :m], V[m + 1 :, m:]
    quad = sum(wt[a] * P22[a, b] * wt[b] for a in range(D - m) for b in range(D - m))
    SP = Sigma @ (P12 @ wt)
    hand = []
    for i in range(k):
        term21 = sum(Vb21[i, a] * SP[a] for a in range(m))
        term22 = sum(Vb22[i, a] * wt[a] for a in range(D - m)) * quad / n
        hand.append(wt[1 + i] + term21 + term22)
    check_close(out, hand, HAND_TOL, "(L2) vs hand")

    # Only P12, P22, Vbar21, Vbar22 matter: redraw every other entry.
    P2 = rng.standard_normal((D, D)) * scale
    V2 = rng.standard_normal((D, D)) * scale
    P2[:m, m:], P2[m:, m:] = P12, P22
    V2[m + 1 :, :] = V[m + 1 :, :]
    assert np.any(P2 != P) and np.any(V2 != V)
    check_close(lt.readout(lt.lsa_block(H, P2, V2), k), out, REL_TOL, "(L2) irrelevant blocks")


# --------------------------------------------------------------------------------------------
# 5. torch
# --------------------------------------------------------------------------------------------


def _random_prompt(layout: Layout, n: int, rng) -> np.ndarray:
    d, d_pi = layout.d, layout.d_pi
    phi, phi_next = arbitrary_rows("uniform", d, n, 1, rng)
    r = rng.uniform(-1.0, 1.0, n)
    w = rng.uniform(-1.0, 1.0, d)
    if d_pi:
        g_rows = rng.uniform(-1.0, 1.0, (n, d_pi))
        return hand_ac_prompt(phi, phi_next, r, g_rows, w, rng.uniform(-1.0, 1.0, d_pi), 0.7)
    return hand_sarsa_prompt(phi, phi_next, r, w, 0.7)


@pytest.mark.parametrize(("d", "d_pi", "n", "seed"), [(3, 0, 7, 10), (2, 3, 11, 11), (6, 4, 15, 12)])
def test_torch_block_matches_numpy(d, d_pi, n, seed):
    rng = np.random.default_rng(seed)
    layout = Layout(d, d_pi)
    H = _random_prompt(layout, n, rng)
    P = rng.standard_normal((layout.D, layout.D))
    V = rng.standard_normal((layout.D, layout.D))
    ref = lt.lsa_block(H, P, V)
    got = lt.lsa_block(torch.from_numpy(H), torch.from_numpy(P), torch.from_numpy(V))
    assert isinstance(got, torch.Tensor) and got.dtype == torch.float64
    check_close(as_np(got), ref, TORCH_TOL, "torch vs numpy lsa_block")
    # Stack of two layers and the constructions.
    Pc, Vc = cn.actor_critic(d, d_pi, 0.4, 0.6, -3.0) if d_pi else cn.sarsa(d, 0.4, -3.0)
    layers_np = [(P / 4, V / 4), (Pc, Vc)]
    ref2 = lt.lsa_stack(H, layers_np)
    got2 = lt.lsa_stack(
        torch.from_numpy(H), [(torch.from_numpy(a), torch.from_numpy(b)) for a, b in layers_np]
    )
    assert isinstance(got2, torch.Tensor)
    check_close(as_np(got2), ref2, TORCH_TOL, "torch vs numpy lsa_stack")
    # The builders in torch equal the numpy builders exactly.
    X = H[: 2 * d + 1, :n]
    w = H[layout.w, n]
    if d_pi:
        g, lam = H[layout.g, :n], H[layout.lam, n]
        Ht = lt.actor_critic_prompt(*(torch.from_numpy(np.ascontiguousarray(a)) for a in (X, g, w, lam)))
    else:
        Ht = lt.sarsa_prompt(torch.from_numpy(np.ascontiguousarray(X)), torch.from_numpy(w.copy()))
    assert isinstance(Ht, torch.Tensor)
    check_exact(as_np(Ht), H, "torch builder")


def test_torch_masked_block_matches_numpy():
    rng = np.random.default_rng(13)
    d, n, n_q = 4, 9, 3
    X = hand_context(*arbitrary_rows("uniform", d, n, 1, rng), rng.uniform(-1, 1, n), 0.9)
    Z = lt.td_prompt(X, rng.uniform(-1.0, 1.0, (d, n_q)), n_queries=n_q)
    P = rng.standard_normal((2 * d + 1, 2 * d + 1))
    Q = rng.standard_normal((2 * d + 1, 2 * d + 1))
    ref = lt.masked_lsa(Z, P, Q, n_queries=n_q)
    got = lt.masked_lsa(torch.from_numpy(Z), torch.from_numpy(P), torch.from_numpy(Q), n_queries=n_q)
    assert isinstance(got, torch.Tensor) and got.dtype == torch.float64
    check_close(as_np(got), ref, TORCH_TOL, "torch vs numpy masked_lsa")
    layers = [cn.td(d, 0.3)] * 3
    ref3 = lt.masked_lsa_stack(Z, layers, n_queries=n_q)
    got3 = lt.masked_lsa_stack(
        torch.from_numpy(Z), [(torch.from_numpy(a), torch.from_numpy(b)) for a, b in layers], n_queries=n_q
    )
    check_close(as_np(got3), ref3, TORCH_TOL, "torch vs numpy masked_lsa_stack")


@pytest.mark.parametrize(("d", "d_pi", "n", "seed"), [(3, 0, 6, 20), (2, 2, 9, 21)])
def test_torch_gradients_match_finite_differences(d, d_pi, n, seed):
    """autograd of sum(readout) w.r.t. P and V vs central differences (exact for a linear map)."""
    rng = np.random.default_rng(seed)
    layout = Layout(d, d_pi)
    D, m, k = layout.D, layout.m, layout.k
    H = _random_prompt(layout, n, rng)
    P = rng.standard_normal((D, D))
    V = rng.standard_normal((D, D))
    Pt = torch.tensor(P, requires_grad=True)
    Vt = torch.tensor(V, requires_grad=True)
    f_t = lt.readout(lt.lsa_block(torch.from_numpy(H), Pt, Vt), k).sum()
    gP, gV = (as_np(x) for x in torch.autograd.grad(f_t, (Pt, Vt)))
    assert gP.shape == gV.shape == (D, D)

    def f(P_, V_):
        return float(lt.readout(lt.lsa_block(H, P_, V_), k).sum())

    def fd(M, which, idx):
        Mp, Mm = M.copy(), M.copy()
        Mp[idx] += FD_STEP
        Mm[idx] -= FD_STEP
        fp = f(Mp, V) if which == "P" else f(P, Mp)
        fm = f(Mm, V) if which == "P" else f(P, Mm)
        return (fp - fm) / (2 * FD_STEP)

    entries = [
        ("P", (int(rng.integers(m)), m + int(rng.integers(D - m)))),  # P12
        ("P", (m + int(rng.integers(D - m)), m + int(rng.integers(D - m)))),  # P22
        ("V", (m + 1 + int(rng.integers(k)), int(rng.integers(m)))),  # Vbar21
        ("V", (m + 1 + int(rng.integers(k)), m + int(rng.integers(D - m)))),  # Vbar22
        ("P", (int(rng.integers(m)), int(rng.integers(m)))),  # P11: no influence on the readout
        ("V", (int(rng.integers(m)), int(rng.integers(D)))),  # first block rows of V: no influence
    ]
    nonzero = 0
    for which, idx in entries:
        auto = (gP if which == "P" else gV)[idx]
        num = fd(P if which == "P" else V, which, idx)
        MAX_RESIDUALS["torch grad vs FD"] = max(MAX_RESIDUALS.get("torch grad vs FD", 0.0), abs(auto - num))
        assert abs(auto - num) <= FD_TOL * max(1.0, abs(num)), (which, idx, auto, num)
        nonzero += auto != 0.0
    assert nonzero >= 4, "gradients vanished: the check would be vacuous"
    # Blocks the readout does not depend on get exactly zero gradient.
    check_exact(gP[:, :m], np.zeros((D, m)), "grad P[:, :m]")
    check_exact(gV[: m + 1, :], np.zeros((m + 1, D)), "grad of V rows outside the readout")


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("shared", [True, False])
@pytest.mark.parametrize("batch", [(5,), (2, 3)])
def test_batched_prompts_match_loop(backend, shared, batch):
    rng = np.random.default_rng(30 + len(batch) + 2 * shared)
    d, d_pi, n = 2, 2, 7
    layout = Layout(d, d_pi)
    D, k = layout.D, layout.k
    size = int(np.prod(batch))
    Xs = rng.uniform(-1.0, 1.0, (size, 2 * d + 1, n))
    gs = rng.uniform(-1.0, 1.0, (size, d_pi, n))
    ws = rng.uniform(-1.0, 1.0, (size, d))
    lams = rng.uniform(-1.0, 1.0, (size, d_pi))
    pshape = (D, D) if shared else (size, D, D)
    Ps, Vs = rng.standard_normal(pshape), rng.standard_normal(pshape)

    def cv(a):
        return torch.from_numpy(np.ascontiguousarray(a)) if backend == "torch" else a

    def rs(a):  # (size, ...) -> batch + (...)
        return a.reshape(batch + a.shape[1:])

    H_b = lt.actor_critic_prompt(cv(rs(Xs)), cv(rs(gs)), cv(rs(ws)), cv(rs(lams)))
    assert tuple(H_b.shape) == batch + (D, n + 1)
    assert isinstance(H_b, torch.Tensor) == (backend == "torch")
    P_b, V_b = (cv(Ps), cv(Vs)) if shared else (cv(rs(Ps)), cv(rs(Vs)))
    out_b = lt.lsa_block(H_b, P_b, V_b)
    Pc, Vc = cn.actor_critic(d, d_pi, 0.5, 0.25, -2.0)
    con_b = lt.lsa_stack(H_b, [(cv(Pc), cv(Vc))])
    assert tuple(out_b.shape) == batch + (D, n + 1)
    out_flat = as_np(out_b).reshape((size, D, n + 1))
    H_flat = as_np(H_b).reshape((size, D, n + 1))
    con_flat = as_np(lt.readout(con_b, k)).reshape((size, k))
    for i in range(size):
        H_i = lt.actor_critic_prompt(cv(Xs[i]), cv(gs[i]), cv(ws[i]), cv(lams[i]))
        check_exact(H_flat[i], as_np(H_i), "batched builder")
        P_i, V_i = (Ps, Vs) if shared else (Ps[i], Vs[i])
        check_close(out_flat[i], as_np(lt.lsa_block(H_i, cv(P_i), cv(V_i))), TORCH_TOL, "batched vs loop")
        g_rows = [[gs[i][kk, j] for kk in range(d_pi)] for j in range(n)]
        phi = Xs[i][:d].T
        # already discounted: discount 1 in the reference, written exactly as 0.5 * (2 phi_next)
        # (the naive loops require 0 <= gamma < 1)
        phi_next_g = 2.0 * Xs[i][d : 2 * d].T
        w_ref, lam_ref = lt.naive_batch_actor_critic(
            phi, phi_next_g, Xs[i][2 * d], g_rows, ws[i], lams[i], 0.5, 0.5, 0.25
        )
        check_close(con_flat[i], np.concatenate([w_ref, lam_ref]), REL_TOL, "batched construction vs naive")
    # Batch elements differ, so a broadcast that repeated one element would be caught.
    assert np.abs(out_flat[0] - out_flat[1]).max() > 1e-3
    # A prompt shared by the batch broadcasts against per-element parameters.
    if not shared:
        H0 = H_flat[0]
        out_bc = as_np(lt.lsa_block(cv(H0), cv(rs(Ps)), cv(rs(Vs)))).reshape((size, D, n + 1))
        for i in range(size):
            check_close(out_bc[i], lt.lsa_block(H0, Ps[i], Vs[i]), TORCH_TOL, "broadcast prompt vs loop")
    # Batched masked TD blocks.
    Zs = rng.uniform(-1.0, 1.0, (size, 2 * d + 1, n + 2))
    Zs[:, d:, n:] = 0.0
    Pt, Qt = cn.td(d, 0.3)
    Z_out = as_np(lt.masked_lsa_stack(cv(rs(Zs)), [(cv(Pt), cv(Qt))] * 2, n_queries=2)).reshape(Zs.shape)
    for i in range(size):
        ref = lt.masked_lsa_stack(Zs[i], [(Pt, Qt)] * 2, n_queries=2)
        check_close(Z_out[i], ref, TORCH_TOL, "batched masked vs loop")


# --------------------------------------------------------------------------------------------
# The comparisons can fail: small modelling errors exceed the tolerances by orders of magnitude.
# --------------------------------------------------------------------------------------------


def test_tolerance_is_discriminating():
    rng = np.random.default_rng(40)
    d, n, gamma, alpha = 3, 8, 0.6, 0.5
    phi, phi_next = arbitrary_rows("uniform", d, n, 1, rng)
    r = rng.uniform(-1.0, 1.0, n)
    w = rng.uniform(-1.0, 1.0, d)
    H = hand_sarsa_prompt(phi, phi_next, r, w, gamma)
    target = lt.naive_batch_sarsa(phi, phi_next, r, w, gamma, alpha)
    good = lt.readout(lt.lsa_block(H, *cn.sarsa(d, alpha, 1.0)), d)
    assert rel_residual(good, target) <= REL_TOL
    # alpha off by 1e-9 relative
    bad_alpha = lt.readout(lt.lsa_block(H, *cn.sarsa(d, alpha * (1 + 1e-9), 1.0)), d)
    assert rel_residual(bad_alpha, target) > 10 * REL_TOL
    # gamma dropped from the reference (discount 1, written as 0.5 * (2 phi_next): gamma < 1 is required)
    dropped = lt.naive_batch_sarsa(phi, 2.0 * np.asarray(phi_next), r, w, 0.5, alpha)
    assert rel_residual(good, dropped) > 1e-3
    # one reward perturbed by 1e-9
    H_bad = H.copy()
    H_bad[2 * d, 0] += 1e-9
    bad_r = lt.readout(lt.lsa_block(H_bad, *cn.sarsa(d, alpha, 1.0)), d)
    assert rel_residual(bad_r, target) > 10 * REL_TOL
    with pytest.raises(AssertionError):
        check_close(bad_alpha, target, REL_TOL, "deliberately wrong")
