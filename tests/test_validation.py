"""Input validation: every bad input to a public function raises a ValueError naming the argument.

Each case is ``(call, pattern)``; the pattern is anchored at the start of the message, which the
library writes as ``"<argument>: <fault>"``. REGRESSIONS are gaps an earlier sweep found (a different
exception, a wrong argument name, or no error at all), now fixed in the library.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from lsa_theory import (
    Layout,
    TabularMDP,
    actor_critic_columns,
    actor_critic_context,
    actor_critic_prompt,
    actor_critic_update,
    context_columns,
    epsilon_greedy,
    expected_return,
    greedy,
    lsa_block,
    lsa_stack,
    masked_lsa,
    naive_batch_actor_critic,
    naive_batch_sarsa,
    naive_batch_td,
    normalized_return,
    optimal,
    q_pi,
    q_values,
    random_features,
    random_mdp,
    random_state_features,
    readout,
    rollout,
    sarsa_columns,
    sarsa_context,
    sarsa_dims,
    sarsa_loop,
    sarsa_prompt,
    sarsa_update,
    score,
    softmax_policy,
    sufficient_statistics,
    td_columns,
    td_errors,
    td_prompt,
    td_update,
    tf_from_statistics,
    uniform_policy,
    v_pi,
)
from lsa_theory.constructions import numeric

NAN, INF = float("nan"), float("inf")
S, A, d = 3, 2, 4
D = 3 * d + 2
n = 5


def _rng() -> np.random.Generator:
    return np.random.default_rng(0)


_r = _rng()
MDP = random_mdp(S, A, 0.5, _r)
P_OK, R_OK, MU_OK = np.array(MDP.P), np.array(MDP.r), np.array(MDP.mu0)
PHI = random_features(S, A, d, _r)
PHI_S = random_state_features(S, d, _r)
W = _r.uniform(-1, 1, d)
PI = uniform_policy(MDP)
TRAJ = rollout(MDP, PI, n, _r)
X = _r.uniform(-1, 1, (2 * d + 1, n))  # SARSA columns (2d+1, n)
G = _r.uniform(-1, 1, (2, n))  # scores, d_pi = 2
LAM = _r.uniform(-1, 1, 2)
H = sarsa_prompt(X, W)  # (D, n+1)
EYE = np.eye(D)


def _with(arr: np.ndarray, index, value) -> np.ndarray:
    out = np.array(arr, dtype=np.float64, copy=True)
    out[index] = value
    return out


def _mdp(**kw):
    args = {"P": P_OK, "r": R_OK, "gamma": 0.5, "mu0": MU_OK}
    args.update(kw)
    return lambda: TabularMDP(**args)


def _neg_P() -> np.ndarray:
    P = P_OK.copy()
    P[0, 0] = 0.0
    P[0, 0, 0], P[0, 0, 1] = 1.5, -0.5  # rows still sum to 1
    return P


def _neg_mu0() -> np.ndarray:
    mu = np.zeros(S)
    mu[0], mu[1] = 1.5, -0.5
    return mu


# (id, call, pattern): pattern is matched with re.search against the message
CASES = [
    # --- TabularMDP ------------------------------------------------------------------------
    ("mdp-P-not-stochastic", _mdp(P=P_OK * 1.1), r"^P: does not sum to 1"),
    ("mdp-P-slightly-off", _mdp(P=P_OK * (1 + 1e-8)), r"^P: does not sum to 1"),
    ("mdp-P-negative", _mdp(P=_neg_P()), r"^P: has negative entries"),
    ("mdp-P-2d", _mdp(P=P_OK[:, 0]), r"^P: expected 3 dimensions"),
    ("mdp-P-not-square", _mdp(P=P_OK[:, :, :2]), r"^P: expected shape \(S, A, S\)"),
    ("mdp-P-empty", _mdp(P=np.zeros((0, 1, 0)), r=np.zeros((0, 1)), mu0=np.zeros(0)), r"^P: expected shape"),
    ("mdp-P-nan", _mdp(P=_with(P_OK, (0, 0, 0), NAN)), r"^P: contains NaN or inf"),
    ("mdp-P-inf", _mdp(P=_with(P_OK, (1, 1, 2), INF)), r"^P: contains NaN or inf"),
    ("mdp-P-strings", _mdp(P=np.full((S, A, S), "x")), r"^P: expected a real numeric array"),
    ("mdp-r-wrong-shape-sa", _mdp(r=np.zeros((S, A + 1))), r"^r: expected shape"),
    ("mdp-r-wrong-shape-sas", _mdp(r=np.zeros((S, A, S + 1))), r"^r: expected shape"),
    ("mdp-r-transposed", _mdp(r=np.zeros((A, S))), r"^r: expected shape"),
    ("mdp-r-1d", _mdp(r=np.zeros(S)), r"^r: expected 2 or 3 dimensions"),
    ("mdp-r-nan", _mdp(r=_with(R_OK, (2, 1), NAN)), r"^r: contains NaN or inf"),
    ("mdp-r-inf", _mdp(r=_with(R_OK, (0, 0), -INF)), r"^r: contains NaN or inf"),
    ("mdp-mu0-wrong-shape", _mdp(mu0=np.ones(S + 1) / (S + 1)), r"^mu0: expected shape"),
    ("mdp-mu0-2d", _mdp(mu0=MU_OK[None, :]), r"^mu0: expected 1 dimensions"),
    ("mdp-mu0-not-summing", _mdp(mu0=MU_OK * 0.9), r"^mu0: does not sum to 1"),
    ("mdp-mu0-negative", _mdp(mu0=_neg_mu0()), r"^mu0: has negative entries"),
    ("mdp-mu0-nan", _mdp(mu0=_with(MU_OK, 0, NAN)), r"^mu0: contains NaN or inf"),
    ("mdp-mu0-inf", _mdp(mu0=_with(MU_OK, 0, INF)), r"^mu0: contains NaN or inf"),
    ("mdp-gamma-1", _mdp(gamma=1.0), r"^gamma: must be < 1"),
    ("mdp-gamma-above-1", _mdp(gamma=1.5), r"^gamma: must be < 1"),
    ("mdp-gamma-negative", _mdp(gamma=-0.1), r"^gamma: must be >= 0"),
    ("mdp-gamma-nan", _mdp(gamma=NAN), r"^gamma: must be finite"),
    ("mdp-gamma-inf", _mdp(gamma=INF), r"^gamma: must be finite"),
    ("mdp-gamma-string", _mdp(gamma="0.5"), r"^gamma: expected a real number"),
    ("mdp-gamma-bool", _mdp(gamma=False), r"^gamma: expected a real number"),
    ("mdp-noise-negative", _mdp(reward_noise=-0.1), r"^reward_noise: must be >= 0"),
    ("mdp-noise-nan", _mdp(reward_noise=NAN), r"^reward_noise: must be finite"),
    ("mdp-noise-inf", _mdp(reward_noise=INF), r"^reward_noise: must be finite"),
    # --- random_mdp ------------------------------------------------------------------------
    (
        "rmdp-kind",
        lambda: random_mdp(S, A, 0.5, _rng(), kind="grid"),
        r"^kind: expected 'dirichlet' or 'garnet'",
    ),
    ("rmdp-reward", lambda: random_mdp(S, A, 0.5, _rng(), reward="s"), r"^reward: expected 'sa' or 'sas'"),
    ("rmdp-branching-0", lambda: random_mdp(S, A, 0.5, _rng(), kind="garnet", branching=0), r"^branching:"),
    (
        "rmdp-branching-big",
        lambda: random_mdp(S, A, 0.5, _rng(), kind="garnet", branching=S + 1),
        r"^branching:",
    ),
    (
        "rmdp-branching-float",
        lambda: random_mdp(S, A, 0.5, _rng(), kind="garnet", branching=2.0),
        r"^branching:",
    ),
    ("rmdp-rng-int", lambda: random_mdp(S, A, 0.5, 0), r"^rng: expected numpy.random.Generator"),
    ("rmdp-rng-none", lambda: random_mdp(S, A, 0.5, None), r"^rng: expected numpy.random.Generator"),
    ("rmdp-rng-legacy", lambda: random_mdp(S, A, 0.5, np.random.RandomState(0)), r"^rng: expected"),
    ("rmdp-n_states-0", lambda: random_mdp(0, A, 0.5, _rng()), r"^n_states: must be >= 1"),
    ("rmdp-n_actions-0", lambda: random_mdp(S, 0, 0.5, _rng()), r"^n_actions: must be >= 1"),
    ("rmdp-n_states-float", lambda: random_mdp(3.0, A, 0.5, _rng()), r"^n_states: expected an integer"),
    ("rmdp-gamma-1", lambda: random_mdp(S, A, 1.0, _rng()), r"^gamma: must be < 1"),
    ("rmdp-noise-negative", lambda: random_mdp(S, A, 0.5, _rng(), reward_noise=-1.0), r"^reward_noise:"),
    # --- features ----------------------------------------------------------------------------
    (
        "feat-onehot-wrong-d",
        lambda: random_features(S, A, S * A + 1, kind="onehot"),
        r"^d: one-hot features need",
    ),
    ("feat-bad-kind", lambda: random_features(S, A, d, _rng(), kind="gauss"), r"^kind: expected one of"),
    ("feat-uniform-no-rng", lambda: random_features(S, A, d), r"^rng: uniform features need"),
    ("feat-d-0", lambda: random_features(S, A, 0, _rng()), r"^d: must be >= 1"),
    ("feat-state-d-0", lambda: random_state_features(S, 0, _rng()), r"^d: must be >= 1"),
    # --- policies ------------------------------------------------------------------------------
    ("q_values-w-mismatch", lambda: q_values(PHI, np.ones(d + 1)), r"^w: length 5 does not match"),
    ("q_values-phi-2d", lambda: q_values(PHI[:, 0], W), r"^phi: expected 3 dimensions"),
    ("q_values-w-nan", lambda: q_values(PHI, _with(W, 0, NAN)), r"^w: contains NaN"),
    ("softmax-lam-mismatch", lambda: softmax_policy(PHI, np.ones(d - 1)), r"^lam: length 3 does not match"),
    ("softmax-lam-nan", lambda: softmax_policy(PHI, _with(W, 1, NAN)), r"^lam: contains NaN"),
    ("score-lam-mismatch", lambda: score(PHI, np.ones(d + 2)), r"^lam: length 6 does not match"),
    ("score-phi-nan", lambda: score(_with(PHI, (0, 0, 0), NAN), W), r"^phi_pi: contains NaN"),
    ("greedy-Q-nan", lambda: greedy(np.array([[NAN, 1.0]])), r"^Q: contains NaN"),
    ("greedy-Q-1d", lambda: greedy(np.ones(3)), r"^Q: expected 2 dimensions"),
    ("eps-greedy-above-1", lambda: epsilon_greedy(np.ones((S, A)), 1.5), r"^epsilon: must be <= 1"),
    ("eps-greedy-negative", lambda: epsilon_greedy(np.ones((S, A)), -0.1), r"^epsilon: must be >= 0"),
    ("eps-greedy-nan", lambda: epsilon_greedy(np.ones((S, A)), NAN), r"^epsilon: must be finite"),
    # --- oracles -------------------------------------------------------------------------------
    ("q_pi-pi-shape", lambda: q_pi(MDP, np.ones((S, A + 1)) / (A + 1)), r"^pi: expected shape"),
    ("v_pi-pi-rows", lambda: v_pi(MDP, np.ones((S, A))), r"^pi: does not sum to 1"),
    ("v_pi-pi-nan", lambda: v_pi(MDP, _with(PI, (0, 0), NAN)), r"^pi: contains NaN"),
    ("J-pi-negative", lambda: expected_return(MDP, np.array([[1.5, -0.5]] * S)), r"^pi: has negative"),
    ("normret-pi-rows", lambda: normalized_return(MDP, np.ones((S, A))), r"^pi: does not sum to 1"),
    ("optimal-max_iter-0", lambda: optimal(MDP, 0), r"^max_iter: must be >= 1"),
    # --- rollout -------------------------------------------------------------------------------
    ("rollout-n-0", lambda: rollout(MDP, PI, 0, _rng()), r"^n: must be >= 1"),
    ("rollout-n-negative", lambda: rollout(MDP, PI, -3, _rng()), r"^n: must be >= 1"),
    ("rollout-n-float", lambda: rollout(MDP, PI, 3.0, _rng()), r"^n: expected an integer"),
    ("rollout-s0-too-big", lambda: rollout(MDP, PI, 3, _rng(), s0=S), r"^s0: must be < S = 3"),
    ("rollout-s0-negative", lambda: rollout(MDP, PI, 3, _rng(), s0=-1), r"^s0: must be >= 0"),
    ("rollout-s0-float", lambda: rollout(MDP, PI, 3, _rng(), s0=1.0), r"^s0: expected an integer"),
    ("rollout-rng", lambda: rollout(MDP, PI, 3, 0), r"^rng: expected numpy.random.Generator"),
    ("rollout-pi-rows", lambda: rollout(MDP, np.ones((S, A)), 3, _rng()), r"^pi: does not sum to 1"),
    ("sarsa_columns-gamma", lambda: sarsa_columns(TRAJ, PHI, 1.0), r"^gamma: must be < 1"),
    ("td_columns-phi_s-3d", lambda: td_columns(TRAJ, PHI, 0.5), r"^phi_s: expected 2 dimensions"),
    (
        "sarsa_context-phi-shape",
        lambda: sarsa_context(MDP, PHI[:2], W, n, 0.1, _rng()),
        r"^phi: expected shape",
    ),
    (
        "sarsa_context-w",
        lambda: sarsa_context(MDP, PHI, W[:-1], n, 0.1, _rng()),
        r"^w: length 3 does not match",
    ),
    ("sarsa_context-eps", lambda: sarsa_context(MDP, PHI, W, n, 2.0, _rng()), r"^epsilon: must be <= 1"),
    ("sarsa_context-n-0", lambda: sarsa_context(MDP, PHI, W, 0, 0.1, _rng()), r"^n: must be >= 1"),
    (
        "ac_context-phi_pi-shape",
        lambda: actor_critic_context(MDP, PHI, PHI[:, :1], W, n, _rng()),
        r"^phi_pi: expected shape",
    ),
    (
        "sarsa_loop-n_updates-0",
        lambda: sarsa_loop(MDP, PHI, W, lambda X, w: w, n=n, n_updates=0, epsilon=0.1, rng=_rng()),
        r"^n_updates: must be >= 1",
    ),
    (
        "sarsa_loop-w0-nan",
        lambda: sarsa_loop(
            MDP, PHI, _with(W, 0, NAN), lambda X, w: w, n=n, n_updates=1, epsilon=0.1, rng=_rng()
        ),
        r"^w0: contains NaN",
    ),
    (
        "sarsa_loop-update-nan",
        lambda: sarsa_loop(MDP, PHI, W, lambda X, w: w * NAN, n=n, n_updates=1, epsilon=0.1, rng=_rng()),
        r"^update\(X, w\): contains NaN",
    ),
    # --- prompts -------------------------------------------------------------------------------
    (
        "sarsa_prompt-X-1d",
        lambda: sarsa_prompt(np.ones(2 * d + 1), W),
        r"^X: expected shape \(\.\.\., 2d\+1, n\)",
    ),
    ("sarsa_prompt-X-even-rows", lambda: sarsa_prompt(np.ones((2 * d, n)), W), r"^X: expected 2d\+1 rows"),
    ("sarsa_prompt-X-one-row", lambda: sarsa_prompt(np.ones((1, n)), W), r"^X: expected 2d\+1 rows"),
    ("sarsa_prompt-n-0", lambda: sarsa_prompt(np.ones((2 * d + 1, 0)), W), r"^X: context has no columns"),
    ("sarsa_prompt-w-mismatch", lambda: sarsa_prompt(X, np.ones(d + 1)), r"^w: expected shape \(\.\.\., 4\)"),
    ("sarsa_prompt-w-scalar", lambda: sarsa_prompt(X, 1.0), r"^w: expected shape"),
    ("sarsa_prompt-X-nan", lambda: sarsa_prompt(_with(X, (3, 2), NAN), W), r"^X: contains NaN or inf"),
    ("sarsa_prompt-X-inf", lambda: sarsa_prompt(_with(X, (0, 0), INF), W), r"^X: contains NaN or inf"),
    ("sarsa_prompt-w-nan", lambda: sarsa_prompt(X, _with(W, 2, NAN)), r"^w: contains NaN or inf"),
    (
        "sarsa_prompt-batch",
        lambda: sarsa_prompt(np.ones((2, 2 * d + 1, n)), np.ones((3, d))),
        r"^batch shapes .* do not broadcast",
    ),
    ("ac_prompt-g-wrong-n", lambda: actor_critic_prompt(X, G[:, :-1], W, LAM), r"^g: expected shape"),
    (
        "ac_prompt-g-d_pi-0",
        lambda: actor_critic_prompt(X, np.ones((0, n)), W, np.ones(0)),
        r"^g: expected shape",
    ),
    ("ac_prompt-g-1d", lambda: actor_critic_prompt(X, np.ones(n), W, LAM), r"^g: expected shape"),
    ("ac_prompt-lam-mismatch", lambda: actor_critic_prompt(X, G, W, np.ones(3)), r"^lam: expected shape"),
    ("ac_prompt-w-mismatch", lambda: actor_critic_prompt(X, G, W[:-1], LAM), r"^w: expected shape"),
    ("ac_prompt-n-0", lambda: actor_critic_prompt(X[:, :0], G[:, :0], W, LAM), r"^X: context has no columns"),
    ("ac_prompt-g-nan", lambda: actor_critic_prompt(X, _with(G, (0, 0), NAN), W, LAM), r"^g: contains NaN"),
    ("ac_prompt-lam-nan", lambda: actor_critic_prompt(X, G, W, _with(LAM, 0, NAN)), r"^lam: contains NaN"),
    ("ac_prompt-X-nan", lambda: actor_critic_prompt(_with(X, (1, 1), NAN), G, W, LAM), r"^X: contains NaN"),
    ("td_prompt-query-mismatch", lambda: td_prompt(X, np.ones(d + 1)), r"^phi_query: expected shape"),
    (
        "td_prompt-n_queries-mismatch",
        lambda: td_prompt(X, np.ones((d, 3)), n_queries=2),
        r"^phi_query: expected shape \(\.\.\., 4, 2\)",
    ),
    (
        "td_prompt-n_queries-0",
        lambda: td_prompt(X, np.ones((d, 0)), n_queries=0),
        r"^n_queries: must be >= 1",
    ),
    ("td_prompt-n-0", lambda: td_prompt(X[:, :0], np.ones(d)), r"^X: context has no columns"),
    ("td_prompt-X-even-rows", lambda: td_prompt(np.ones((2 * d, n)), np.ones(d)), r"^X: expected 2d\+1 rows"),
    ("td_prompt-X-nan", lambda: td_prompt(_with(X, (0, 1), NAN), np.ones(d)), r"^X: contains NaN"),
    ("td_prompt-query-nan", lambda: td_prompt(X, _with(np.ones(d), 0, NAN)), r"^phi_query: contains NaN"),
    (
        "td_prompt-queries-nan",
        lambda: td_prompt(X, _with(np.ones((d, 2)), (0, 1), INF), n_queries=2),
        r"^phi_query: contains NaN",
    ),
    (
        "context_columns-n-0",
        lambda: context_columns(np.ones((0, d)), np.ones((0, d)), np.ones(0), 0.5),
        r"^phi, phi_next",
    ),
    (
        "context_columns-shape-mismatch",
        lambda: context_columns(np.ones((n, d)), np.ones((n, d + 1)), np.ones(n), 0.5),
        r"^phi, phi_next: expected equal shapes",
    ),
    (
        "context_columns-r-shape",
        lambda: context_columns(np.ones((n, d)), np.ones((n, d)), np.ones(n + 1), 0.5),
        r"^r:",
    ),
    (
        "context_columns-gamma",
        lambda: context_columns(np.ones((n, d)), np.ones((n, d)), np.ones(n), -0.5),
        r"^gamma",
    ),
    (
        "context_columns-r-nan",
        lambda: context_columns(np.ones((n, d)), np.ones((n, d)), _with(np.ones(n), 0, NAN), 0.5),
        r"^r: contains NaN",
    ),
    (
        "context_columns-phi_next-nan",
        lambda: context_columns(np.ones((n, d)), _with(np.ones((n, d)), (0, 0), NAN), np.ones(n), 0.5),
        r"^phi_next: contains NaN",
    ),
    ("sarsa_dims-bad-D", lambda: sarsa_dims(D + 1), r"^D: a SARSA prompt H has D = 3d \+ 2 rows"),
    ("sarsa_dims-too-small", lambda: sarsa_dims(2), r"^D: a SARSA prompt"),
    ("layout-d-0", lambda: Layout(0), r"^d: must be >= 1"),
    ("layout-d_pi-negative", lambda: Layout(2, -1), r"^d_pi: must be >= 0"),
    ("layout-blocks-shape", lambda: Layout(d).blocks(np.eye(D + 1), EYE), r"^P: expected shape"),
    # --- LSA blocks ----------------------------------------------------------------------------
    (
        "lsa-P-mismatched-D",
        lambda: lsa_block(H, np.eye(D + 3), EYE),
        r"^P: expected shape \(\.\.\., 14, 14\)",
    ),
    (
        "lsa-V-mismatched-D",
        lambda: lsa_block(H, EYE, np.eye(D - 3)),
        r"^V: expected shape \(\.\.\., 14, 14\)",
    ),
    ("lsa-P-non-square", lambda: lsa_block(H, np.ones((D, D + 1)), EYE), r"^P: expected shape"),
    ("lsa-V-non-square", lambda: lsa_block(H, EYE, np.ones((D - 1, D))), r"^V: expected shape"),
    ("lsa-P-1d", lambda: lsa_block(H, np.ones(D), EYE), r"^P: expected shape"),
    ("lsa-H-nan", lambda: lsa_block(_with(H, (0, 0), NAN), EYE, EYE), r"^H: contains NaN or inf"),
    ("lsa-P-nan", lambda: lsa_block(H, _with(EYE, (1, 2), NAN), EYE), r"^P: contains NaN or inf"),
    ("lsa-V-inf", lambda: lsa_block(H, EYE, _with(EYE, (0, 0), INF)), r"^V: contains NaN or inf"),
    ("lsa-n-0", lambda: lsa_block(H[:, -1:], EYE, EYE), r"^H: needs at least one context column"),
    ("lsa-H-1d", lambda: lsa_block(np.ones(D), EYE, EYE), r"^H: expected shape"),
    (
        "lsa-batch",
        lambda: lsa_block(np.stack([H, H]), np.stack([EYE] * 3), EYE),
        r"^batch shapes .* do not broadcast",
    ),
    ("lsa_stack-empty", lambda: lsa_stack(H, []), r"^layers: need at least one"),
    (
        "lsa_stack-bad-layer",
        lambda: lsa_stack(H, [(EYE, EYE), (EYE, np.eye(2))]),
        r"^layers\[1\]\.V: expected shape",
    ),
    ("masked-Q-mismatched-D", lambda: masked_lsa(X, np.eye(2 * d + 1), np.eye(2 * d)), r"^Q: expected shape"),
    (
        "masked-P-non-square",
        lambda: masked_lsa(X, np.ones((2 * d + 1, 2)), np.eye(2 * d + 1)),
        r"^P: expected shape",
    ),
    (
        "masked-P-nan",
        lambda: masked_lsa(X, _with(np.eye(2 * d + 1), (0, 0), NAN), np.eye(2 * d + 1)),
        r"^P: contains",
    ),
    (
        "masked-n_queries-0",
        lambda: masked_lsa(X, np.eye(2 * d + 1), np.eye(2 * d + 1), n_queries=0),
        r"^n_queries:",
    ),
    ("readout-k-too-big", lambda: readout(H, D + 1), r"^k: must be <= D = 14"),
    ("readout-k-0", lambda: readout(H, 0), r"^k: must be >= 1"),
    ("readout-k-float", lambda: readout(H, 2.0), r"^k: expected an integer"),
    ("sufficient_statistics-n-0", lambda: sufficient_statistics(X[:, :0]), r"^X: expected shape"),
    (
        "tf_from_statistics-n-0",
        lambda: tf_from_statistics(np.eye(2 * d + 1), np.ones(d + 1), EYE, EYE, 0, Layout(d)),
        r"^n: must be >= 1",
    ),
    (
        "tf_from_statistics-P-shape",
        lambda: tf_from_statistics(np.eye(2 * d + 1), np.ones(d + 1), np.eye(D + 1), EYE, n, Layout(d)),
        r"^P: expected shape",
    ),
    # --- constructions.numeric -----------------------------------------------------------------
    ("num-sarsa-d-0", lambda: numeric.sarsa(0, 0.1), r"^d: must be >= 1"),
    ("num-sarsa-d-float", lambda: numeric.sarsa(2.0, 0.1), r"^d: expected an integer"),
    ("num-sarsa-alpha-0", lambda: numeric.sarsa(2, 0.0), r"^alpha: must be > 0"),
    ("num-sarsa-alpha-negative", lambda: numeric.sarsa(2, -0.1), r"^alpha: must be > 0"),
    ("num-sarsa-alpha-nan", lambda: numeric.sarsa(2, NAN), r"^alpha: must be finite"),
    ("num-sarsa-alpha-inf", lambda: numeric.sarsa(2, INF), r"^alpha: must be finite"),
    ("num-sarsa-c-0", lambda: numeric.sarsa(2, 0.1, c=0.0), r"^c: must be non-zero"),
    ("num-sarsa-c-nan", lambda: numeric.sarsa(2, 0.1, c=NAN), r"^c: must be finite"),
    ("num-ac-d-0", lambda: numeric.actor_critic(0, 2, 0.1, 0.1), r"^d: must be >= 1"),
    ("num-ac-d_pi-0", lambda: numeric.actor_critic(2, 0, 0.1, 0.1), r"^d_pi: must be >= 1"),
    ("num-ac-alpha-0", lambda: numeric.actor_critic(2, 2, 0.0, 0.1), r"^alpha: must be > 0"),
    ("num-ac-alpha-nan", lambda: numeric.actor_critic(2, 2, NAN, 0.1), r"^alpha: must be finite"),
    ("num-ac-beta-negative", lambda: numeric.actor_critic(2, 2, 0.1, -1.0), r"^beta: must be > 0"),
    ("num-ac-beta-nan", lambda: numeric.actor_critic(2, 2, 0.1, NAN), r"^beta: must be finite"),
    ("num-ac-c-0", lambda: numeric.actor_critic(2, 2, 0.1, 0.1, c=0), r"^c: must be non-zero"),
    ("num-td-d-0", lambda: numeric.td(0, 0.1), r"^d: must be >= 1"),
    ("num-td-alpha-0", lambda: numeric.td(2, 0.0), r"^alpha: must be > 0"),
    ("num-td-alpha-nan", lambda: numeric.td(2, NAN), r"^alpha: must be finite"),
    # --- reference (naive) ---------------------------------------------------------------------
    ("naive-sarsa-n-0", lambda: naive_batch_sarsa([], [], [], [0.0], 0.5, 0.1), r"^r: the batch is empty"),
    (
        "naive-sarsa-phi-length",
        lambda: naive_batch_sarsa([[1.0]], [[1.0], [2.0]], [1.0, 2.0], [0.0], 0.5, 0.1),
        r"^phi, phi_next: expected 2 rows",
    ),
    (
        "naive-sarsa-row-length",
        lambda: naive_batch_sarsa([[1.0, 2.0]], [[1.0]], [1.0], [0.0], 0.5, 0.1),
        re.escape("phi[0]: expected 1 entries"),
    ),
    (
        "naive-sarsa-next-row-length",
        lambda: naive_batch_sarsa([[1.0]], [[1.0, 2.0]], [1.0], [0.0], 0.5, 0.1),
        re.escape("phi_next[0]: expected 1 entries"),
    ),
    (
        "naive-sarsa-n_iter-0",
        lambda: naive_batch_sarsa([[1.0]], [[1.0]], [1.0], [0.0], 0.5, 0.1, 0),
        r"^n_iter:",
    ),
    (
        "naive-sarsa-r-nan",
        lambda: naive_batch_sarsa([[1.0]], [[1.0]], [NAN], [0.0], 0.5, 0.1),
        r"^r: contains",
    ),
    (
        "naive-sarsa-w-inf",
        lambda: naive_batch_sarsa([[1.0]], [[1.0]], [1.0], [INF], 0.5, 0.1),
        r"^w: contains",
    ),
    (
        "naive-sarsa-alpha-nan",
        lambda: naive_batch_sarsa([[1.0]], [[1.0]], [1.0], [0.0], 0.5, NAN),
        r"^alpha: contains",
    ),
    (
        "naive-ac-n-0",
        lambda: naive_batch_actor_critic([], [], [], [], [0.0], [0.0], 0.5, 0.1, 0.1),
        r"^r: the batch is empty",
    ),
    (
        "naive-ac-phi-length",
        lambda: naive_batch_actor_critic([[1.0]], [[1.0]], [1.0, 2.0], [[1.0]], [0.0], [0.0], 0.5, 0.1, 0.1),
        r"^phi, phi_next: expected 2 rows",
    ),
    (
        "naive-ac-g-rows",
        lambda: naive_batch_actor_critic(
            [[1.0]], [[1.0]], [1.0], [[1.0], [1.0]], [0.0], [0.0], 0.5, 0.1, 0.1
        ),
        r"^g: expected 1 rows",
    ),
    (
        "naive-ac-g-row-length",
        lambda: naive_batch_actor_critic([[1.0]], [[1.0]], [1.0], [[1.0, 2.0]], [0.0], [0.0], 0.5, 0.1, 0.1),
        r"^g: expected 1 rows of 1 entries",
    ),
    (
        "naive-ac-beta-nan",
        lambda: naive_batch_actor_critic([[1.0]], [[1.0]], [1.0], [[1.0]], [0.0], [0.0], 0.5, 0.1, NAN),
        r"^beta: contains",
    ),
    ("naive-td-n-0", lambda: naive_batch_td([], [], [], 0.5, 0.1), r"^r: the batch is empty"),
    (
        "naive-td-phi-length",
        lambda: naive_batch_td([[1.0]], [[1.0]], [1.0, 2.0], 0.5, 0.1),
        r"^phi, phi_next",
    ),
    ("naive-td-n_iter-0", lambda: naive_batch_td([[1.0]], [[1.0]], [1.0], 0.5, 0.1, n_iter=0), r"^n_iter:"),
    ("naive-td-r-nan", lambda: naive_batch_td([[1.0]], [[1.0]], [NAN], 0.5, 0.1), r"^r: contains"),
    # --- algorithms ----------------------------------------------------------------------------
    (
        "sarsa_update-w-mismatch",
        lambda: sarsa_update(X, np.ones(d + 1), 0.1),
        r"^w: expected shape \(\.\.\., 4\)",
    ),
    ("sarsa_update-w-nan", lambda: sarsa_update(X, _with(W, 0, NAN), 0.1), r"^w: contains NaN"),
    ("sarsa_update-alpha-nan", lambda: sarsa_update(X, W, NAN), r"^alpha: must be finite"),
    ("sarsa_update-alpha-string", lambda: sarsa_update(X, W, "0.1"), r"^alpha: expected a real number"),
    ("sarsa_update-X-nan", lambda: sarsa_update(_with(X, (2, 2), NAN), W, 0.1), r"^X: contains NaN"),
    ("sarsa_update-n-0", lambda: sarsa_update(X[:, :0], W, 0.1), r"^X: context has no columns"),
    (
        "sarsa_update-X-even-rows",
        lambda: sarsa_update(np.ones((2 * d, n)), W, 0.1),
        r"^X: expected 2d\+1 rows",
    ),
    ("td_errors-w-mismatch", lambda: td_errors(X, W[:-1]), r"^w: expected shape"),
    ("td_update-w-mismatch", lambda: td_update(X, W[:-1], 0.1), r"^w: expected shape"),
    ("td_update-n_iter-0", lambda: td_update(X, W, 0.1, n_iter=0), r"^n_iter: must be >= 1"),
    (
        "ac_update-g-wrong-n",
        lambda: actor_critic_update(X, G[:, :-1], W, LAM, 0.1, 0.1),
        r"^g: expected shape",
    ),
    (
        "ac_update-lam-mismatch",
        lambda: actor_critic_update(X, G, W, np.ones(3), 0.1, 0.1),
        r"^lam: expected shape",
    ),
    ("ac_update-w-mismatch", lambda: actor_critic_update(X, G, W[:-1], LAM, 0.1, 0.1), r"^w: expected shape"),
    ("ac_update-beta-nan", lambda: actor_critic_update(X, G, W, LAM, 0.1, NAN), r"^beta: must be finite"),
    (
        "ac_update-g-nan",
        lambda: actor_critic_update(X, _with(G, (0, 0), NAN), W, LAM, 0.1, 0.1),
        r"^g: contains",
    ),
]


@pytest.mark.parametrize(("call", "pattern"), [pytest.param(c, p, id=i) for i, c, p in CASES])
def test_bad_input_raises_value_error(call, pattern):
    with pytest.raises(ValueError, match=pattern):
        call()


def test_case_ids_are_unique():
    ids = [i for i, _, _ in CASES]
    assert len(ids) == len(set(ids))


def test_valid_inputs_behind_the_cases_are_accepted():
    """The fixtures the cases perturb are valid: each failure above is caused by the perturbation."""
    TabularMDP(P=P_OK, r=R_OK, gamma=0.5, mu0=MU_OK)
    TabularMDP(P=P_OK, r=np.zeros((S, A, S)), gamma=0.0, mu0=MU_OK, reward_noise=0.1)
    random_mdp(S, A, 0.5, _rng(), kind="garnet", branching=S)
    random_features(S, A, S * A, kind="onehot")
    q_values(PHI, W), softmax_policy(PHI, W), score(PHI, W), epsilon_greedy(np.ones((S, A)), 1.0)
    q_pi(MDP, PI), expected_return(MDP, PI), normalized_return(MDP, PI), optimal(MDP, 1000)
    rollout(MDP, PI, 1, _rng(), s0=S - 1)
    sarsa_columns(TRAJ, PHI, 0.0), td_columns(TRAJ, PHI_S, 0.5)
    sarsa_context(MDP, PHI, W, 1, 1.0, _rng())
    actor_critic_context(MDP, PHI, PHI[:, :, :2], LAM, n, _rng())
    sarsa_loop(MDP, PHI, W, lambda X, w: w, n=1, n_updates=1, epsilon=0.1, rng=_rng())
    assert sarsa_prompt(X, W).shape == (D, n + 1)
    assert sarsa_prompt(X[:, :1], W).shape == (D, 2)
    assert actor_critic_prompt(X, G, W, LAM).shape == (D + 4, n + 1)
    assert td_prompt(X, np.ones(d)).shape == (2 * d + 1, n + 1)
    assert td_prompt(X, np.ones((d, 2)), n_queries=2).shape == (2 * d + 1, n + 2)
    assert context_columns(np.ones((1, d)), np.ones((1, d)), np.ones(1), 0.0).shape == (2 * d + 1, 1)
    assert sarsa_dims(D) == d
    assert lsa_block(H[:, -2:], EYE, EYE).shape == (D, 2)
    assert lsa_stack(H, [(EYE, EYE)]).shape == H.shape
    assert masked_lsa(X, np.eye(2 * d + 1), np.eye(2 * d + 1)).shape == X.shape
    assert readout(H, D).shape == (D,)
    assert sufficient_statistics(X).shape == (2 * d + 1, 2 * d + 1)
    tf_from_statistics(np.eye(2 * d + 1), np.ones(d + 1), EYE, EYE, n, Layout(d))
    numeric.sarsa(1, 1e-9, c=-2.0), numeric.actor_critic(1, 1, 0.1, 0.1), numeric.td(1, 0.1)
    naive_batch_sarsa([[1.0]], [[1.0]], [1.0], [0.0], 0.5, 0.1)
    naive_batch_actor_critic([[1.0]], [[1.0]], [1.0], [[1.0]], [0.0], [0.0], 0.5, 0.1, 0.1)
    naive_batch_td([[1.0]], [[1.0]], [1.0], 0.5, 0.1)
    sarsa_update(X, W, 0.1), td_errors(X, W), td_update(X, W, 0.1, n_iter=2)
    actor_critic_update(X, G, W, LAM, 0.1, 0.1)


def test_numpy_prompt_with_torch_parameters_is_refused():
    torch = pytest.importorskip("torch")
    with pytest.raises(ValueError, match="mixing a numpy prompt with torch parameters"):
        lsa_block(H, torch.eye(D, dtype=torch.float64), torch.eye(D, dtype=torch.float64))


# ---------------------------------------------------------------------------------------------
# Gaps found by an earlier sweep of this file, now fixed in the library (kept as regressions)
# ---------------------------------------------------------------------------------------------


def actor_critic_columns_too_few_actions():
    traj = rollout(MDP, PI, 30, _rng(), s0=S - 1)
    return actor_critic_columns(traj, PHI, PHI[:, :1, :2], LAM, 0.5)


REGRESSIONS = [
    (
        "sarsa_columns-phi-too-few-states",
        lambda: sarsa_columns(rollout(MDP, PI, 30, _rng(), s0=S - 1), PHI[:1], 0.5),
        r"^phi:",
    ),
    (
        "td_columns-phi_s-too-few-states",
        lambda: td_columns(rollout(MDP, PI, 30, _rng(), s0=S - 1), PHI_S[:1], 0.5),
        r"^phi_s:",
    ),
    ("actor_critic_columns-phi_pi-too-few-actions", actor_critic_columns_too_few_actions, r"^phi_pi:"),
    (
        "naive-sarsa-phi-nan",
        lambda: naive_batch_sarsa([[NAN]], [[1.0]], [1.0], [0.0], 0.5, 0.1),
        r"^phi: contains",
    ),
    (
        "naive-sarsa-phi_next-inf",
        lambda: naive_batch_sarsa([[1.0]], [[INF]], [1.0], [0.0], 0.5, 0.1),
        r"^phi_next: contains",
    ),
    (
        "naive-ac-g-nan",
        lambda: naive_batch_actor_critic([[1.0]], [[1.0]], [1.0], [[NAN]], [0.0], [0.0], 0.5, 0.1, 0.1),
        r"^g: contains",
    ),
    ("naive-td-phi-nan", lambda: naive_batch_td([[NAN]], [[1.0]], [1.0], 0.5, 0.1), r"^phi: contains"),
    (
        "sarsa_prompt-X-strings",
        lambda: sarsa_prompt(np.full((2 * d + 1, n), "x"), W),
        r"^X: expected a real numeric",
    ),
    (
        "sarsa_prompt-X-object",
        lambda: sarsa_prompt([[1.0, None]] * (2 * d + 1), W),
        r"^X: expected a real numeric",
    ),
    ("lsa-P-strings", lambda: lsa_block(H, np.full((D, D), "x"), EYE), r"^P: expected a real numeric"),
    (
        "masked-Z-n-0",
        lambda: masked_lsa(X[:, :1], np.eye(2 * d + 1), np.eye(2 * d + 1)),
        r"^Z: needs at least",
    ),
    (
        "masked-Z-nan",
        lambda: masked_lsa(_with(X, (0, 0), NAN), np.eye(2 * d + 1), np.eye(2 * d + 1)),
        r"^Z: contains",
    ),
    (
        "masked-Z-too-many-queries",
        lambda: masked_lsa(X, np.eye(2 * d + 1), np.eye(2 * d + 1), n_queries=n),
        r"^Z: needs at least",
    ),
    ("readout-H_out-1d", lambda: readout(np.ones(D), 1), r"^H_out: expected shape"),
    ("readout-H_out-list", lambda: readout([[1.0, 2.0], [3.0, 4.0]], 3), r"^k: must be <= D = 2"),
    (
        "sarsa_loop-w0-mismatch",
        lambda: sarsa_loop(MDP, PHI, W[:-1], lambda X, w: w, n=n, n_updates=1, epsilon=0.1, rng=_rng()),
        r"^w0: expected length",
    ),
    (
        "random_mdp-branching-with-dirichlet",
        lambda: random_mdp(S, A, 0.5, _rng(), kind="dirichlet", branching=2),
        r"^branching:",
    ),
    ("sufficient_statistics-nan", lambda: sufficient_statistics(_with(X, (0, 0), NAN)), r"^X: contains NaN"),
]


@pytest.mark.parametrize(("call", "pattern"), [pytest.param(c, p, id=i) for i, c, p in REGRESSIONS])
def test_fixed_validation_gaps(call, pattern):
    with pytest.raises(ValueError, match=pattern):
        call()


def test_epsilon_greedy_accepts_array_like():
    np.testing.assert_allclose(epsilon_greedy([[1.0, 2.0]], 0.5), [[0.25, 0.75]])
