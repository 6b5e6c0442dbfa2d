"""(A6): the state-value critic is the default actor-critic; the action-value critic's expected
actor step vanishes at its fixed point. Exact tabular checks at small sizes."""

from __future__ import annotations

import numpy as np
import pytest

import constructions
import lsa_theory as lt
from experiments import control as ctl

AC, ACQ = constructions.ALGORITHMS["actor_critic"], constructions.ALGORITHMS["actor_critic_q"]


def _case(alg, rng, S=3, A=2):
    mdp = lt.random_mdp(S, A, 0.5, rng)
    dims = alg.dims(S, A)
    phi, phi_pi = alg.draw_tables(S, A, dims, rng)
    return mdp, phi, phi_pi, rng.uniform(-1.0, 1.0, dims.d_pi)


def test_state_critic_table_is_constant_over_actions(rng):
    phi = AC.critic_table(4, 3, 4, rng)
    assert phi.shape == (4, 3, 4)
    assert np.array_equal(phi, np.repeat(phi[:, :1], 3, axis=1))
    assert AC.dims(9, 4) == constructions.Dims(9, 36)
    assert ACQ.dims(9, 4) == constructions.Dims(36, 36)


def test_policy_gradient_matches_finite_differences(rng):
    """The exact grad J(pi_lambda) of expected_actor_step against central differences of J."""
    mdp, phi, phi_pi, lam = _case(AC, rng)
    grad = AC.expected_actor_step(mdp, phi, phi_pi, lam)["policy_gradient"]
    h = 1e-6
    fd = np.array([
        (lt.expected_return(mdp, lt.softmax_policy(phi_pi, lam + h * e))
         - lt.expected_return(mdp, lt.softmax_policy(phi_pi, lam - h * e))) / (2 * h)
        for e in np.eye(lam.size)
    ])  # fmt: skip
    assert np.allclose(grad, fd, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("seed", range(5))
def test_a6_q_critic_step_vanishes_v_critic_step_does_not(seed):
    rng = np.random.default_rng(seed)
    q = ACQ.expected_actor_step(*_case(ACQ, rng))
    v = AC.expected_actor_step(*_case(AC, rng))
    assert np.linalg.norm(q["step"]) < 1e-12 and q["max_abs_delta"] < 1e-10
    assert np.linalg.norm(v["step"]) > 1e-3
    assert v["cosine"] > 0.5  # the advantage-weighted score points up the policy gradient


def test_deploy_state_critic_block_equals_its_teacher(rng):
    """Frozen (A3) block with the state-value critic follows the exact teacher on an [LL]-family
    MDP (S = A = 3 here): same greedy returns, parameters equal to round-off."""
    mdp = lt.random_mdp(3, 3, 0.5, rng)
    kw = dict(n=10, n_updates=30, epsilon=0.1, alpha=0.2, beta=0.1, eval_every=10, algo="actor_critic")
    state = rng.bit_generator.state
    block = ctl.deploy(mdp, "constructed", rng=rng, **kw)
    rng.bit_generator.state = state
    teacher = ctl.deploy(mdp, "teacher", rng=rng, **kw)
    assert block.ws.shape == (31, 3) and block.lams.shape == (31, 9)
    assert np.allclose(block.ws, teacher.ws, rtol=0, atol=1e-12)
    assert np.array_equal(block.normalized_return, teacher.normalized_return)
