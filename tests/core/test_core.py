"""Correctness of the core (docs/theory.md §0, §1, (S2), (S6), §5).

MDPs and their samplers, the exact oracles (checked against ``mdptoolbox`` policy iteration, the
Bellman equations and brute force over deterministic policies), the behaviour policies, rollouts
and the prompt columns they give, and the closed loop (S6) with the exact SARSA teacher.
"""

from __future__ import annotations

import itertools

import mdptoolbox.mdp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from lsa_theory import (
    TabularMDP,
    actor_critic_columns,
    actor_critic_loop,
    actor_critic_update,
    epsilon_greedy,
    expected_return,
    greedy,
    naive_batch_actor_critic,
    naive_batch_sarsa,
    normalized_return,
    optimal,
    q_pi,
    q_values,
    random_features,
    random_mdp,
    random_state_features,
    rollout,
    sarsa_columns,
    sarsa_context,
    sarsa_loop,
    sarsa_update,
    score,
    softmax_policy,
    td_columns,
    uniform_policy,
    v_pi,
)

HYP = settings(deadline=None, max_examples=40)
HYP_SMALL = settings(deadline=None, max_examples=20)

sizes = st.integers(min_value=1, max_value=5)
seeds = st.integers(min_value=0, max_value=2**32 - 1)
gammas = st.floats(min_value=0.0, max_value=0.95, allow_nan=False)
kinds = st.sampled_from(["dirichlet", "garnet"])
rewards = st.sampled_from(["sa", "sas"])


def _random_policy(rng: np.random.Generator, S: int, A: int) -> np.ndarray:
    return rng.dirichlet(np.ones(A), size=S)


def _policy_evaluation_by_iteration(mdp: TabularMDP, pi: np.ndarray) -> np.ndarray:
    """Q^pi by fixed-point iteration of Q <- rbar + gamma P (pi . Q), with plain loops for rbar."""
    S, A = mdp.n_states, mdp.n_actions
    rbar = np.zeros((S, A))
    for s in range(S):
        for a in range(A):
            if mdp.r.ndim == 2:
                rbar[s, a] = mdp.r[s, a]
            else:
                rbar[s, a] = sum(mdp.P[s, a, t] * mdp.r[s, a, t] for t in range(S))
    Q = np.zeros((S, A))
    for _ in range(5000):
        V = (pi * Q).sum(axis=1)
        Q_new = rbar + mdp.gamma * mdp.P @ V
        if np.abs(Q_new - Q).max() < 1e-14:
            return Q_new
        Q = Q_new
    raise AssertionError("policy evaluation by iteration did not converge")


def _all_deterministic_values(mdp: TabularMDP) -> np.ndarray:
    """(A^S, S) values V^pi of every deterministic policy, by batched linear solves."""
    S, A = mdp.n_states, mdp.n_actions
    rsa = mdp.r_sa
    policies = np.array(list(itertools.product(range(A), repeat=S)))  # (N, S)
    rows = np.arange(S)
    P_pi = mdp.P[rows, policies]  # (N, S, S)
    r_pi = rsa[rows, policies]  # (N, S)
    return np.linalg.solve(np.eye(S) - mdp.gamma * P_pi, r_pi[..., None])[..., 0]


# ---------------------------------------------------------------------------------------------
# TabularMDP and random_mdp
# ---------------------------------------------------------------------------------------------


@HYP
@given(S=sizes, A=sizes, gamma=gammas, seed=seeds, kind=kinds, reward=rewards)
def test_random_mdp_shapes_and_stochasticity(S, A, gamma, seed, kind, reward):
    mdp = random_mdp(S, A, gamma, np.random.default_rng(seed), kind=kind, reward=reward)
    assert mdp.P.shape == (S, A, S)
    assert mdp.r.shape == ((S, A) if reward == "sa" else (S, A, S))
    assert mdp.mu0.shape == (S,)
    assert mdp.n_states == S and mdp.n_actions == A
    for arr in (mdp.P, mdp.r, mdp.mu0):
        assert arr.dtype == np.float64
        assert not arr.flags.writeable
    assert (mdp.P >= 0).all() and (mdp.mu0 >= 0).all()
    np.testing.assert_allclose(mdp.P.sum(axis=-1), 1.0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(mdp.mu0.sum(), 1.0, rtol=0, atol=1e-12)
    assert (mdp.r >= -1).all() and (mdp.r < 1).all()
    assert mdp.gamma == gamma and isinstance(mdp.gamma, float)
    assert mdp.reward_noise == 0.0
    assert mdp.r_sa.shape == (S, A)
    if S >= 2:  # mu0 ~ Dirichlet(1) is not the uniform law (with probability one)
        assert np.ptp(mdp.mu0) > 0


@HYP_SMALL
@given(S=sizes, A=sizes, seed=seeds, kind=kinds, reward=rewards)
def test_random_mdp_reproducible(S, A, seed, kind, reward):
    m1 = random_mdp(S, A, 0.5, np.random.default_rng(seed), kind=kind, reward=reward, reward_noise=0.3)
    m2 = random_mdp(S, A, 0.5, np.random.default_rng(seed), kind=kind, reward=reward, reward_noise=0.3)
    for name in ("P", "r", "mu0"):
        np.testing.assert_array_equal(getattr(m1, name), getattr(m2, name))
    assert m1.reward_noise == m2.reward_noise == 0.3
    # a different seed gives a different MDP (the rewards alone are continuous)
    m3 = random_mdp(S, A, 0.5, np.random.default_rng(seed + 1), kind=kind, reward=reward)
    assert not np.array_equal(m1.r, m3.r)


@HYP
@given(S=sizes, A=sizes, seed=seeds, data=st.data())
def test_garnet_branching_exact_successor_count(S, A, seed, data):
    b = data.draw(st.integers(min_value=1, max_value=S), label="branching")
    mdp = random_mdp(S, A, 0.5, np.random.default_rng(seed), kind="garnet", branching=b)
    counts = np.count_nonzero(mdp.P > 0, axis=-1)
    np.testing.assert_array_equal(counts, np.full((S, A), b))
    np.testing.assert_allclose(mdp.P.sum(axis=-1), 1.0, rtol=0, atol=1e-12)


def test_garnet_default_branching_is_full_support():
    mdp = random_mdp(6, 3, 0.5, np.random.default_rng(3), kind="garnet")
    assert (mdp.P > 0).all()


def test_dirichlet_family_has_full_support_and_spread():
    # Dirichlet(1) rows: all positive, and not all equal (it is not the uniform kernel)
    mdp = random_mdp(9, 4, 0.5, np.random.default_rng(4))
    assert (mdp.P > 0).all()
    assert mdp.P.std() > 0.02
    assert mdp.r.std() > 0.3  # U(-1, 1) has std 0.577


def test_r_sa_is_expected_reward_for_sas():
    mdp = random_mdp(4, 3, 0.7, np.random.default_rng(5), reward="sas")
    S, A = 4, 3
    expected = np.zeros((S, A))
    for s in range(S):
        for a in range(A):
            for t in range(S):
                expected[s, a] += mdp.P[s, a, t] * mdp.r[s, a, t]
    np.testing.assert_allclose(mdp.r_sa, expected, rtol=0, atol=1e-15)
    sa = random_mdp(4, 3, 0.7, np.random.default_rng(5), reward="sa")
    assert sa.r_sa is sa.r


def test_tabular_mdp_accepts_lists_and_stores_float64():
    mdp = TabularMDP(
        P=[[[1, 0], [0.5, 0.5]], [[0, 1], [0.25, 0.75]]],
        r=[[1, 0], [0, 2]],
        gamma=0.5,
        mu0=[0.5, 0.5],
        reward_noise=0.1,
    )
    assert mdp.P.dtype == np.float64 and mdp.r.dtype == np.float64 and mdp.mu0.dtype == np.float64
    assert mdp.P.shape == (2, 2, 2)
    assert mdp.reward_noise == 0.1
    with pytest.raises(ValueError):
        mdp.P[0, 0, 0] = 0.0  # read-only


# ---------------------------------------------------------------------------------------------
# Oracles
# ---------------------------------------------------------------------------------------------


@HYP
@given(S=sizes, A=sizes, gamma=gammas, seed=seeds, kind=kinds, reward=rewards)
def test_optimal_matches_mdptoolbox_policy_iteration(S, A, gamma, seed, kind, reward):
    mdp = random_mdp(S, A, gamma, np.random.default_rng(seed), kind=kind, reward=reward)
    sol = optimal(mdp)
    assert sol.policy.shape == (S,) and sol.Q.shape == (S, A) and sol.V.shape == (S,)
    scale = 1.0 + np.abs(sol.V).max()
    if gamma > 0:
        # mdptoolbox: P (A, S, S), R (S, A); it checks row sums to 10 ulp, so renormalise
        P = np.transpose(mdp.P, (1, 0, 2)).copy()
        P /= P.sum(axis=-1, keepdims=True)
        pi_tb = mdptoolbox.mdp.PolicyIteration(P, mdp.r_sa, gamma)
        pi_tb.run()
        V_tb = np.asarray(pi_tb.V)
        pol_tb = np.asarray(pi_tb.policy)
    else:  # mdptoolbox refuses gamma = 0; then V* = max_a rbar
        V_tb = mdp.r_sa.max(axis=1)
        pol_tb = mdp.r_sa.argmax(axis=1)
    np.testing.assert_allclose(sol.V, V_tb, rtol=0, atol=1e-9 * scale)
    # policies: equal where the optimal action is unique by a clear margin, both optimal everywhere
    Qs = np.sort(sol.Q, axis=1)
    clear = (Qs[:, -1] - Qs[:, -2] > 1e-7 * scale) if A > 1 else np.ones(S, bool)
    np.testing.assert_array_equal(sol.policy[clear], pol_tb[clear])
    rows = np.arange(S)
    np.testing.assert_allclose(sol.Q[rows, pol_tb], sol.V, rtol=0, atol=1e-9 * scale)
    np.testing.assert_allclose(sol.Q[rows, sol.policy], sol.Q.max(axis=1), rtol=0, atol=1e-9 * scale)


@HYP
@given(S=sizes, A=sizes, gamma=gammas, seed=seeds, kind=kinds, reward=rewards)
def test_optimal_bellman_and_brute_force(S, A, gamma, seed, kind, reward):
    mdp = random_mdp(S, A, gamma, np.random.default_rng(seed), kind=kind, reward=reward)
    sol = optimal(mdp)
    scale = 1.0 + np.abs(sol.V).max()
    # Bellman optimality: Q* = rbar + gamma P max_a Q*, V* = max_a Q*
    np.testing.assert_allclose(sol.Q, mdp.r_sa + gamma * mdp.P @ sol.Q.max(axis=1), atol=1e-10 * scale)
    np.testing.assert_allclose(sol.V, sol.Q.max(axis=1), rtol=0, atol=1e-10 * scale)
    np.testing.assert_array_equal(sol.pi, np.eye(A)[sol.policy])
    # brute force: V* dominates every deterministic policy and is attained by one of them
    Vs = _all_deterministic_values(mdp)
    assert (Vs <= sol.V + 1e-9 * scale).all()
    assert (np.abs(Vs - sol.V).max(axis=1) < 1e-9 * scale).any()
    # and the oracle value of pi* is V*
    np.testing.assert_allclose(v_pi(mdp, sol.pi), sol.V, rtol=0, atol=1e-10 * scale)


@HYP
@given(S=sizes, A=sizes, gamma=gammas, seed=seeds, kind=kinds, reward=rewards)
def test_policy_oracles_satisfy_bellman_equations(S, A, gamma, seed, kind, reward):
    rng = np.random.default_rng(seed)
    mdp = random_mdp(S, A, gamma, rng, kind=kind, reward=reward)
    pi = _random_policy(rng, S, A)
    Q = q_pi(mdp, pi)
    V = v_pi(mdp, pi)
    scale = 1.0 + np.abs(Q).max()
    assert Q.shape == (S, A) and V.shape == (S,)
    # V^pi = sum_a pi Q^pi and Q^pi = rbar + gamma P V^pi
    np.testing.assert_allclose(V, (pi * Q).sum(axis=1), rtol=0, atol=1e-10 * scale)
    np.testing.assert_allclose(Q, mdp.r_sa + gamma * mdp.P @ V, rtol=0, atol=1e-10 * scale)
    # independent evaluation by fixed-point iteration with explicit loops for rbar
    np.testing.assert_allclose(Q, _policy_evaluation_by_iteration(mdp, pi), rtol=0, atol=1e-10 * scale)
    J = expected_return(mdp, pi)
    assert isinstance(J, float)
    np.testing.assert_allclose(J, sum(mdp.mu0[s] * V[s] for s in range(S)), rtol=0, atol=1e-12 * scale)
    # every policy is dominated by pi*
    sol = optimal(mdp)
    assert (V <= sol.V + 1e-9 * scale).all()
    assert J <= float(mdp.mu0 @ sol.V) + 1e-9 * scale


def test_oracles_gamma_zero_and_single_state():
    rng = np.random.default_rng(11)
    mdp = random_mdp(4, 3, 0.0, rng, reward="sas")
    pi = _random_policy(rng, 4, 3)
    np.testing.assert_allclose(q_pi(mdp, pi), mdp.r_sa, rtol=0, atol=1e-15)
    np.testing.assert_allclose(optimal(mdp).V, mdp.r_sa.max(axis=1), rtol=0, atol=1e-15)
    # one state, one action: V = r / (1 - gamma)
    one = TabularMDP(P=np.ones((1, 1, 1)), r=np.array([[0.3]]), gamma=0.75, mu0=np.ones(1))
    np.testing.assert_allclose(v_pi(one, np.ones((1, 1))), [0.3 / 0.25], rtol=1e-14)
    np.testing.assert_allclose(optimal(one).V, [1.2], rtol=1e-14)


@pytest.mark.parametrize("eps", [1e-9, 1e-6, 1e-3])
def test_optimal_resolves_small_reward_gaps(eps):
    # action 1 is better than action 0 by eps everywhere; policy iteration starts from action 0
    P = np.full((2, 2, 2), 0.5)
    mdp = TabularMDP(P=P, r=np.array([[0.0, eps], [0.1, 0.1 + eps]]), gamma=0.5, mu0=np.array([0.5, 0.5]))
    sol = optimal(mdp)
    np.testing.assert_array_equal(sol.policy, [1, 1])
    np.testing.assert_allclose(sol.V, v_pi(mdp, np.array([[0.0, 1.0], [0.0, 1.0]])), rtol=0, atol=1e-15)


@HYP
@given(S=sizes, A=sizes, gamma=gammas, seed=seeds, kind=kinds, reward=rewards)
def test_normalized_return_zero_for_uniform_one_for_optimal(S, A, gamma, seed, kind, reward):
    rng = np.random.default_rng(seed)
    mdp = random_mdp(S, A, gamma, rng, kind=kind, reward=reward)
    sol = optimal(mdp)
    unif = uniform_policy(mdp)
    np.testing.assert_allclose(unif, np.full((S, A), 1.0 / A))
    # independent degeneracy test: the gap J* - J(uniform) from the brute-force oracle
    j_star = float(mdp.mu0 @ _all_deterministic_values(mdp).max(axis=0))
    P_unif = np.einsum("sa,sat->st", unif, mdp.P)
    j_unif = float(mdp.mu0 @ np.linalg.solve(np.eye(S) - gamma * P_unif, (unif * mdp.r_sa).sum(axis=1)))
    gap = j_star - j_unif
    if A == 1:
        with pytest.raises(ValueError, match="degenerate"):
            normalized_return(mdp, unif)
        return
    if gap <= 1e-9 * (1 + abs(j_star)):  # near-degenerate: either answer is acceptable; skip
        return
    assert normalized_return(mdp, unif) == pytest.approx(0.0, abs=1e-8)
    assert normalized_return(mdp, sol.pi) == pytest.approx(1.0, abs=1e-8)
    assert normalized_return(mdp, sol.pi, solution=sol) == pytest.approx(1.0, abs=1e-8)
    # an arbitrary policy is at most optimal; its score is the affine image of J
    pi = _random_policy(rng, S, A)
    nr = normalized_return(mdp, pi)
    assert nr <= 1.0 + 1e-8
    np.testing.assert_allclose(nr, (expected_return(mdp, pi) - j_unif) / gap, rtol=1e-6, atol=1e-8)
    # the worst deterministic policy scores <= 0 (it is no better than uniform play)
    Vs = _all_deterministic_values(mdp)
    worst = np.eye(A)[np.array(list(itertools.product(range(A), repeat=S)))[np.argmin(Vs @ mdp.mu0)]]
    assert normalized_return(mdp, worst) <= 1e-8


@pytest.mark.parametrize("reward", ["sa", "sas"])
def test_normalized_return_degenerate_raises(reward):
    S, A = 3, 2
    rng = np.random.default_rng(0)
    P = rng.dirichlet(np.ones(S), size=(S, A))
    r = np.full((S, A) if reward == "sa" else (S, A, S), 0.4)  # every policy has the same return
    mdp = TabularMDP(P=P, r=r, gamma=0.9, mu0=np.ones(S) / S)
    with pytest.raises(ValueError, match="normalized_return.*degenerate"):
        normalized_return(mdp, uniform_policy(mdp))


# ---------------------------------------------------------------------------------------------
# Policies
# ---------------------------------------------------------------------------------------------


@HYP
@given(
    S=sizes,
    A=sizes,
    seed=seeds,
    epsilon=st.floats(min_value=0.0, max_value=1.0, allow_nan=False),
)
def test_epsilon_greedy_rows_and_values(S, A, seed, epsilon):
    Q = np.random.default_rng(seed).standard_normal((S, A))
    pi = epsilon_greedy(Q, epsilon)
    assert pi.shape == (S, A)
    np.testing.assert_allclose(pi.sum(axis=1), 1.0, rtol=0, atol=1e-15)
    assert (pi >= 0).all()
    for s in range(S):
        best = int(np.argmax(Q[s]))
        for a in range(A):
            expected = epsilon / A + (1.0 - epsilon if a == best else 0.0)
            assert pi[s, a] == pytest.approx(expected, abs=1e-15)
    np.testing.assert_array_equal(epsilon_greedy(Q, 0.0), greedy(Q))
    np.testing.assert_allclose(epsilon_greedy(Q, 1.0), np.full((S, A), 1.0 / A))


def test_greedy_ties_go_to_lowest_index():
    Q = np.array([[1.0, 1.0, 0.0], [0.0, 2.0, 2.0], [3.0, 3.0, 3.0], [-1.0, 0.0, -1.0]])
    pi = greedy(Q)
    np.testing.assert_array_equal(pi.argmax(axis=1), [0, 1, 0, 1])
    np.testing.assert_array_equal(pi.sum(axis=1), 1.0)
    assert set(np.unique(pi)) == {0.0, 1.0}
    eg = epsilon_greedy(Q, 0.3)
    np.testing.assert_allclose(eg[2], [0.7 + 0.1, 0.1, 0.1])


@HYP
@given(S=sizes, A=sizes, d=st.integers(1, 6), seed=seeds)
def test_q_values_and_softmax_policy(S, A, d, seed):
    rng = np.random.default_rng(seed)
    phi = rng.uniform(-1, 1, (S, A, d))
    lam = rng.standard_normal(d)
    Qw = q_values(phi, lam)
    for s in range(S):
        for a in range(A):
            assert Qw[s, a] == pytest.approx(sum(lam[j] * phi[s, a, j] for j in range(d)), abs=1e-12)
    pi = softmax_policy(phi, lam)
    expected = np.exp(Qw) / np.exp(Qw).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(pi, expected, rtol=1e-12, atol=1e-15)
    # invariance to a per-state constant: shifting phi(s, .) by u_s adds lam.u_s to every logit
    u = rng.uniform(-3, 3, (S, d))
    np.testing.assert_allclose(softmax_policy(phi + u[:, None, :], lam), pi, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(score(phi + u[:, None, :], lam), score(phi, lam), rtol=1e-9, atol=1e-11)


def test_softmax_policy_stable_for_large_logits():
    rng = np.random.default_rng(2)
    phi = rng.uniform(-1, 1, (4, 3, 5))
    lam = 1e4 * rng.standard_normal(5)
    pi = softmax_policy(phi, lam)
    assert np.isfinite(pi).all()
    np.testing.assert_allclose(pi.sum(axis=1), 1.0, atol=1e-15)
    np.testing.assert_array_equal(pi.argmax(axis=1), q_values(phi, lam).argmax(axis=1))


@HYP
@given(S=sizes, A=sizes, d=st.integers(1, 6), seed=seeds)
def test_score_has_zero_policy_weighted_mean(S, A, d, seed):
    rng = np.random.default_rng(seed)
    phi = rng.uniform(-1, 1, (S, A, d))
    lam = 2.0 * rng.standard_normal(d)
    g = score(phi, lam)
    pi = softmax_policy(phi, lam)
    assert g.shape == (S, A, d)
    np.testing.assert_allclose(np.einsum("sa,sak->sk", pi, g), 0.0, atol=1e-12)
    # the definition, by loops
    for s in range(S):
        mean = sum(pi[s, b] * phi[s, b] for b in range(A))
        for a in range(A):
            np.testing.assert_allclose(g[s, a], phi[s, a] - mean, atol=1e-13)


# ---------------------------------------------------------------------------------------------
# Rollouts and prompt columns
# ---------------------------------------------------------------------------------------------


@HYP_SMALL
@given(S=sizes, A=sizes, n=st.integers(1, 50), seed=seeds, reward=rewards)
def test_rollout_reproducible_and_well_formed(S, A, n, seed, reward):
    rng = np.random.default_rng(seed)
    mdp = random_mdp(S, A, 0.5, rng, kind="garnet", branching=min(2, S), reward=reward, reward_noise=0.1)
    pi = _random_policy(rng, S, A)
    t1 = rollout(mdp, pi, n, np.random.default_rng(seed + 7))
    t2 = rollout(mdp, pi, n, np.random.default_rng(seed + 7))
    np.testing.assert_array_equal(t1.states, t2.states)
    np.testing.assert_array_equal(t1.actions, t2.actions)
    np.testing.assert_array_equal(t1.rewards, t2.rewards)
    assert t1.n == n
    assert t1.states.shape == (n + 1,) and t1.actions.shape == (n + 1,) and t1.rewards.shape == (n,)
    assert ((0 <= t1.states) & (t1.states < S)).all() and ((0 <= t1.actions) & (t1.actions < A)).all()
    assert mdp.mu0[t1.states[0]] > 0
    # garnet: only reachable successors are ever visited
    assert (mdp.P[t1.states[:-1], t1.actions[:-1], t1.states[1:]] > 0).all()


@pytest.mark.parametrize("s0", [0, 2, 4])
def test_rollout_continues_from_s0(s0):
    rng = np.random.default_rng(8)
    mdp = random_mdp(5, 2, 0.5, rng)
    # mu0 concentrated away from s0, so a rollout that ignored s0 would be caught
    mdp = TabularMDP(P=mdp.P, r=mdp.r, gamma=0.5, mu0=np.eye(5)[(s0 + 1) % 5])
    for seed in range(5):
        traj = rollout(mdp, uniform_policy(mdp), 3, np.random.default_rng(seed), s0=s0)
        assert traj.states[0] == s0
        assert rollout(mdp, uniform_policy(mdp), 3, np.random.default_rng(seed)).states[0] == (s0 + 1) % 5
    assert rollout(mdp, uniform_policy(mdp), 3, rng, s0=np.int64(s0)).states[0] == s0


def test_rollout_deterministic_policy_takes_its_action():
    rng = np.random.default_rng(9)
    mdp = random_mdp(4, 3, 0.5, rng)
    policy = np.array([2, 0, 1, 2])
    traj = rollout(mdp, np.eye(3)[policy], 200, rng)
    np.testing.assert_array_equal(traj.actions, policy[traj.states])


def test_rollout_transition_and_action_frequencies_match_P_and_pi():
    rng = np.random.default_rng(12345)
    S, A, n = 3, 2, 60_000
    mdp = random_mdp(S, A, 0.5, rng)
    pi = np.array([[0.3, 0.7], [0.5, 0.5], [0.8, 0.2]])
    traj = rollout(mdp, pi, n, rng)
    s, a, s1 = traj.states[:-1], traj.actions[:-1], traj.states[1:]
    N_sas = np.zeros((S, A, S))
    np.add.at(N_sas, (s, a, s1), 1)
    N_sa = N_sas.sum(axis=-1)
    assert N_sa.min() > 3000  # so the bounds below are tight (width < 0.05)
    # 5-sigma binomial bound on each P[s, a, s']
    freq = N_sas / N_sa[..., None]
    sigma = np.sqrt(mdp.P * (1 - mdp.P) / N_sa[..., None])
    assert (np.abs(freq - mdp.P) <= 5 * sigma + 1e-12).all()
    assert (5 * sigma).max() < 0.05
    # chi-square goodness of fit per (s, a), at level 1e-6
    for i in range(S):
        for j in range(A):
            E = N_sa[i, j] * mdp.P[i, j]
            chi2 = ((N_sas[i, j] - E) ** 2 / E).sum()
            assert chi2 < stats.chi2.ppf(1 - 1e-6, df=S - 1)
    # the bound would reject a wrong kernel: the frequencies are far from a permuted P
    assert (np.abs(freq - mdp.P[:, :, ::-1]) > 5 * sigma).any()
    # action frequencies: a_i ~ pi(. | s_i), including the last sampled action
    N_s = np.bincount(traj.states, minlength=S)
    N_s_a = np.zeros((S, A))
    np.add.at(N_s_a, (traj.states, traj.actions), 1)
    sig_a = np.sqrt(pi * (1 - pi) / N_s[:, None])
    assert (np.abs(N_s_a / N_s[:, None] - pi) <= 5 * sig_a).all()


def test_rollout_initial_state_follows_mu0():
    rng = np.random.default_rng(77)
    mdp = random_mdp(4, 2, 0.5, rng)
    m = 4000
    first = np.array([rollout(mdp, uniform_policy(mdp), 1, rng).states[0] for _ in range(m)])
    freq = np.bincount(first, minlength=4) / m
    sigma = np.sqrt(mdp.mu0 * (1 - mdp.mu0) / m)
    assert (np.abs(freq - mdp.mu0) <= 5 * sigma + 1e-12).all()


@pytest.mark.parametrize("reward", ["sa", "sas"])
def test_rollout_rewards_without_and_with_noise(reward):
    rng = np.random.default_rng(21)
    mdp = random_mdp(4, 3, 0.5, rng, reward=reward)
    traj = rollout(mdp, uniform_policy(mdp), 500, rng)
    s, a, s1 = traj.states[:-1], traj.actions[:-1], traj.states[1:]
    expected = mdp.r[s, a] if reward == "sa" else mdp.r[s, a, s1]
    np.testing.assert_array_equal(traj.rewards, expected)
    # noisy rewards: residuals are N(0, sigma^2)
    noisy = TabularMDP(P=mdp.P, r=mdp.r, gamma=0.5, mu0=mdp.mu0, reward_noise=0.5)
    n = 20_000
    t2 = rollout(noisy, uniform_policy(noisy), n, rng)
    s, a, s1 = t2.states[:-1], t2.actions[:-1], t2.states[1:]
    res = t2.rewards - (noisy.r[s, a] if reward == "sa" else noisy.r[s, a, s1])
    assert abs(res.mean()) < 5 * 0.5 / np.sqrt(n)
    assert res.std() == pytest.approx(0.5, rel=0.05)


def _sarsa_columns_loop(traj, phi, gamma):
    d = phi.shape[-1]
    n = traj.n
    X = np.zeros((2 * d + 1, n))
    for i in range(n):
        for j in range(d):
            X[j, i] = phi[traj.states[i], traj.actions[i], j]
            X[d + j, i] = gamma * phi[traj.states[i + 1], traj.actions[i + 1], j]
        X[2 * d, i] = traj.rewards[i]
    return X


@HYP_SMALL
@given(S=sizes, A=sizes, d=st.integers(1, 6), n=st.integers(1, 30), gamma=gammas, seed=seeds)
def test_sarsa_td_and_actor_critic_columns_layout(S, A, d, n, gamma, seed):
    rng = np.random.default_rng(seed)
    mdp = random_mdp(S, A, gamma, rng, reward="sas")
    phi = random_features(S, A, d, rng)
    traj = rollout(mdp, _random_policy(rng, S, A), n, rng)
    X = sarsa_columns(traj, phi, gamma)
    assert X.shape == (2 * d + 1, n) and X.dtype == np.float64
    np.testing.assert_array_equal(X, _sarsa_columns_loop(traj, phi, gamma))
    # TD(0) columns with state features: [phi(s_i); gamma phi(s_{i+1}); r_{i+1}]
    phi_s = random_state_features(S, d, rng)
    Xtd = td_columns(traj, phi_s, gamma)
    assert Xtd.shape == (2 * d + 1, n)
    for i in range(n):
        np.testing.assert_array_equal(Xtd[:d, i], phi_s[traj.states[i]])
        np.testing.assert_array_equal(Xtd[d : 2 * d, i], gamma * phi_s[traj.states[i + 1]])
        assert Xtd[2 * d, i] == traj.rewards[i]
    # actor-critic: X as above and g_i = g(s_i, a_i) at lam, computed from scratch
    d_pi = d + 1
    phi_pi = rng.uniform(-1, 1, (S, A, d_pi))
    lam = rng.standard_normal(d_pi)
    Xac, G = actor_critic_columns(traj, phi, phi_pi, lam, gamma)
    np.testing.assert_array_equal(Xac, X)
    assert G.shape == (d_pi, n)
    for i in range(n):
        s, a = traj.states[i], traj.actions[i]
        logits = np.array([lam @ phi_pi[s, b] for b in range(A)])
        p = np.exp(logits - logits.max())
        p /= p.sum()
        g = phi_pi[s, a] - sum(p[b] * phi_pi[s, b] for b in range(A))
        np.testing.assert_allclose(G[:, i], g, rtol=1e-12, atol=1e-13)


def test_sarsa_context_is_an_epsilon_greedy_rollout():
    rng = np.random.default_rng(31)
    mdp = random_mdp(5, 3, 0.6, rng)
    phi = random_features(5, 3, None, rng)
    assert phi.shape == (5, 3, 15)
    w = rng.uniform(-1, 1, 15)
    X, traj = sarsa_context(mdp, phi, w, 40, 0.2, np.random.default_rng(5), s0=2)
    ref = rollout(mdp, epsilon_greedy(phi @ w, 0.2), 40, np.random.default_rng(5), s0=2)
    np.testing.assert_array_equal(traj.states, ref.states)
    np.testing.assert_array_equal(traj.actions, ref.actions)
    np.testing.assert_array_equal(X, _sarsa_columns_loop(ref, phi, 0.6))


def _decode(phi: np.ndarray, f: np.ndarray) -> tuple[int, int]:
    """The unique (s, a) with phi[s, a] == f (random features have distinct rows)."""
    hits = np.argwhere(np.all(np.isclose(phi, f, rtol=0, atol=1e-14), axis=-1))
    assert len(hits) == 1, hits
    return int(hits[0, 0]), int(hits[0, 1])


def test_sarsa_loop_teacher_matches_naive_batch_sarsa_and_chains():
    S, A, d, n, T, gamma, alpha, eps = 5, 3, 6, 8, 25, 0.7, 0.3, 0.2
    rng = np.random.default_rng(41)
    mdp = random_mdp(S, A, gamma, rng, reward="sas")
    phi = random_features(S, A, d, rng)
    w0 = rng.uniform(-1, 1, d)
    res = sarsa_loop(
        mdp,
        phi,
        w0,
        lambda X, w: sarsa_update(X, w, alpha),
        n=n,
        n_updates=T,
        epsilon=eps,
        rng=np.random.default_rng(99),
    )
    assert res.ws.shape == (T + 1, d) and res.Xs.shape == (T, 2 * d + 1, n)
    assert res.lams is None and res.gs is None
    np.testing.assert_array_equal(res.ws[0], w0)
    first_states, last_states = [], []
    for t in range(T):
        X = res.Xs[t]
        sa = [_decode(phi, X[:d, i]) for i in range(n)]
        sa_next = [_decode(gamma * phi, X[d : 2 * d, i]) for i in range(n)]
        # within a context, (s_{i+1}, a_{i+1}) of column i is (s_i, a_i) of column i+1 (on-policy)
        assert sa_next[:-1] == sa[1:]
        # rewards are r[s, a, s'] without noise
        for i in range(n):
            (s, a), (s1, _) = sa[i], sa_next[i]
            assert X[2 * d, i] == mdp.r[s, a, s1]
        w_ref = naive_batch_sarsa(
            [phi[s, a] for s, a in sa], [phi[s, a] for s, a in sa_next], X[2 * d], res.ws[t], gamma, alpha
        )
        np.testing.assert_allclose(res.ws[t + 1], w_ref, rtol=1e-12, atol=1e-13)
        first_states.append(sa[0][0])
        last_states.append(sa_next[-1][0])
    # consecutive contexts chain: s_0 of context t+1 is s_n of context t
    assert first_states[1:] == last_states[:-1]
    assert len(set(first_states)) > 1  # the chain is not trivially constant
    # the parameters actually move
    assert np.abs(np.diff(res.ws, axis=0)).max() > 1e-3
    # reproducible: a hand-written loop with the same seed gives the same frames
    rng2 = np.random.default_rng(99)
    w, s = w0, None
    for t in range(T):
        X, traj = sarsa_context(mdp, phi, w, n, eps, rng2, s)
        np.testing.assert_array_equal(X, res.Xs[t])
        w, s = sarsa_update(X, w, alpha), int(traj.states[-1])
        np.testing.assert_array_equal(w, res.ws[t + 1])


def test_actor_critic_loop_teacher_matches_naive_reference():
    S, A, d, d_pi, n, T, gamma, alpha, beta = 4, 3, 5, 4, 6, 10, 0.6, 0.2, 0.5
    rng = np.random.default_rng(43)
    mdp = random_mdp(S, A, gamma, rng)
    phi = random_features(S, A, d, rng)
    phi_pi = random_features(S, A, d_pi, rng)
    w0, lam0 = rng.uniform(-1, 1, d), rng.uniform(-1, 1, d_pi)
    res = actor_critic_loop(
        mdp,
        phi,
        phi_pi,
        w0,
        lam0,
        lambda X, g, w, lam: actor_critic_update(X, g, w, lam, alpha, beta),
        n=n,
        n_updates=T,
        rng=np.random.default_rng(3),
    )
    assert res.ws.shape == (T + 1, d) and res.lams.shape == (T + 1, d_pi)
    assert res.Xs.shape == (T, 2 * d + 1, n) and res.gs.shape == (T, d_pi, n)
    for t in range(T):
        X, g = res.Xs[t], res.gs[t]
        sa = [_decode(phi, X[:d, i]) for i in range(n)]
        sa_next = [_decode(gamma * phi, X[d : 2 * d, i]) for i in range(n)]
        G = score(phi_pi, res.lams[t])
        np.testing.assert_allclose(g, np.array([G[s, a] for s, a in sa]).T, rtol=0, atol=1e-15)
        w_ref, lam_ref = naive_batch_actor_critic(
            [phi[s, a] for s, a in sa],
            [phi[s, a] for s, a in sa_next],
            X[2 * d],
            g.T,
            res.ws[t],
            res.lams[t],
            gamma,
            alpha,
            beta,
        )
        np.testing.assert_allclose(res.ws[t + 1], w_ref, rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(res.lams[t + 1], lam_ref, rtol=1e-12, atol=1e-13)
    assert np.abs(np.diff(res.lams, axis=0)).max() > 1e-3


# ---------------------------------------------------------------------------------------------
# Closed loop (S6)
# ---------------------------------------------------------------------------------------------


def test_closed_loop_sarsa_improves_policy():
    """(S6) in the [LL] family: 9 x 4, d = 36, n = 20, alpha = 0.2, epsilon = 0.1, 300 updates."""
    S, A, d, n, alpha, eps, T, n_mdps = 9, 4, 36, 20, 0.2, 0.1, 300, 5
    rng = np.random.default_rng(2026)
    before, after = [], []
    for _ in range(n_mdps):
        mdp = random_mdp(S, A, 0.5, rng)
        phi = random_features(S, A, d, rng)
        w0 = rng.uniform(-1, 1, d)
        res = sarsa_loop(
            mdp, phi, w0, lambda X, w: sarsa_update(X, w, alpha), n=n, n_updates=T, epsilon=eps, rng=rng
        )
        sol = optimal(mdp)
        before.append(normalized_return(mdp, greedy(q_values(phi, w0)), sol))
        after.append(normalized_return(mdp, greedy(q_values(phi, res.ws[-1])), sol))
    mean_before, mean_after = float(np.mean(before)), float(np.mean(after))
    print(f"(S6) greedy normalised return: w0 {mean_before:.3f}, after {T} updates {mean_after:.3f}")
    assert mean_after > 0.5
    assert mean_after > mean_before + 0.2
