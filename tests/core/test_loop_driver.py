"""The one closed-loop driver (issue 19, step 2): a third closed-loop declaration, written here and
implementing only hooks, runs through deployment and the batched loop, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

import lsa_theory as lt
from lsa_theory import constructions
from lsa_theory.experiments.control import deploy
from lsa_theory.loop_driver import linear
from lsa_theory.policies import softmax_rows

S, A, N, T, K = 3, 2, 6, 12, 4


class BoltzmannSarsa(constructions.ClosedLoopAlgorithm):
    """Batch SARSA (S2) acting with the Boltzmann policy ``softmax_a(Q_w(s, a) / temperature)``
    instead of epsilon-greedy: the construction (S3), a different behaviour hook, nothing else."""

    name = "test_boltzmann_sarsa"
    claim = "(S4)"
    statement = "(S3) = batch SARSA, Boltzmann behaviour"
    hyper = {"gamma": 0.5, "alpha": 0.2}
    temperature = 0.5

    def sizes(self, quick):
        return {"S": S, "A": A, "d": S * A, "n": N}

    def draw(self, sizes, rng):
        raise NotImplementedError  # not needed for the loop

    def columns(self, inst, hyper):
        raise NotImplementedError

    def naive(self, inst, hyper, depth):
        raise NotImplementedError

    def construction(self, sizes, hyper, c=1.0, depth=1):
        return [constructions.sarsa(sizes["d"], hyper["alpha"], c)] * depth

    def readout(self, out, sizes):
        return out[-sizes["d"] :, -1]

    def dims(self, S, A, d=None, d_pi=None):
        return constructions.Dims(S * A if d is None else d)

    def teacher(self, hyper):
        alpha = hyper["alpha"]
        return lambda X, g, w, lam: (lt.sarsa_update(X, w, alpha), None)

    def behaviour(self, draws, w, lam, epsilon):
        return softmax_rows(linear(draws.phi, w) / self.temperature)  # one MDP or a (k,) stack


ALG = BoltzmannSarsa()
LOOP_METHODS = {"loop", "loop_batched", "context", "agent", "block_update"}


def _mdps(seed: int) -> list[lt.TabularMDP]:
    rng = np.random.default_rng(seed)
    return [lt.random_mdp(S, A, 0.8, rng) for _ in range(K)]


def test_the_third_declaration_overrides_no_loop_method():
    assert not LOOP_METHODS & set(vars(BoltzmannSarsa))
    assert not ALG.has_actor


@pytest.mark.parametrize("shared", [True, False])
def test_its_batched_and_single_loops_agree_bit_for_bit(shared):
    mdps, rng = _mdps(0), np.random.default_rng(1)
    d = ALG.dims(S, A).d
    tables = [ALG.critic_table(S, A, d, rng) for _ in range(1 if shared else K)]
    w0 = rng.uniform(-1.0, 1.0, (K, d))
    teacher = ALG.teacher(ALG.hyper)
    U = np.stack([np.random.default_rng([2, j]).random(lt.loop_draws(N, T)) for j in range(K)])
    phi = tables[0] if shared else np.stack(tables)
    stack = [np.stack([getattr(m, a) for m in mdps]) for a in ("P", "r", "mu0")]
    batched = ALG.loop_batched(*stack, 0.8, phi, None, w0, None, teacher, U, n=N, n_updates=T, epsilon=0.3)
    assert batched.lams is None and batched.ws.shape == (K, T + 1, d)
    for j, mdp in enumerate(mdps):
        draws = constructions.Draws(tables[0 if shared else j], None, w0[j], None)
        single = ALG.loop(
            mdp, draws, teacher, n=N, n_updates=T, epsilon=0.3, rng=np.random.default_rng([2, j])
        )
        assert single.diverged_at is None
        assert np.array_equal(single.ws, batched.ws[j]) and np.array_equal(single.Xs, batched.Xs[j])
    # the behaviour hook is the one acting: SARSA's epsilon-greedy loop on the same draws differs
    sarsa = constructions.ALGORITHMS["sarsa"]
    other = sarsa.loop_batched(*stack, 0.8, phi, None, w0, None, teacher, U, n=N, n_updates=T, epsilon=0.3)
    assert not np.array_equal(other.Xs, batched.Xs)


def test_it_deploys_through_the_driver():
    mdp = _mdps(3)[0]
    kw = dict(n=N, n_updates=T, epsilon=0.3, alpha=0.2, eval_every=4, algo=ALG)
    teacher = deploy(mdp, "teacher", rng=np.random.default_rng(4), **kw)
    block = deploy(mdp, "constructed", rng=np.random.default_rng(4), **kw)
    assert teacher.diverged_at is None and block.diverged_at is None
    np.testing.assert_allclose(block.ws, teacher.ws, rtol=1e-12, atol=1e-12)
    # deployment = the declaration's loop on deploy's own draws (critic table, w_0, then rollouts)
    rng = np.random.default_rng(4)
    phi = ALG.critic_table(S, A, S * A, rng)
    draws = constructions.Draws(phi, None, rng.uniform(-1.0, 1.0, S * A), None)
    loop = ALG.loop(mdp, draws, ALG.teacher({"alpha": 0.2}), n=N, n_updates=T, epsilon=0.3, rng=rng)
    assert np.array_equal(teacher.ws, loop.ws)
    # scored with the declaration's own behaviour (Boltzmann) and greedy policies
    w = teacher.ws[-1]
    pi_b = softmax_rows(phi @ w / ALG.temperature)
    assert teacher.normalized_return_behaviour[-1] == lt.normalized_return(mdp, pi_b, lt.optimal(mdp))
