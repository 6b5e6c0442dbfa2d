r"""Batch actor-critic in context with a state-value critic: (A1)-(A5) of docs/theory.md.

Softmax actor :math:`\pi_\lambda(a|s) \propto \exp(\lambda^\top \phi_\pi(s, a))` with score
:math:`g_i = \phi_\pi(s_i, a_i) - \sum_b \pi_\lambda(b|s_i)\phi_\pi(s_i, b)`; critic
:math:`V_w(s) = w^\top\psi(s)` on state features ``psi`` (S, d). Update (A2):

.. math:: w' = w + \frac{\alpha}{n}\sum_i \delta_i \psi_i, \qquad
          \lambda' = \lambda + \frac{\beta}{n}\sum_i \delta_i g_i, \qquad
          \delta_i = r_{i+1} + \gamma w^\top\psi_{i+1} - w^\top\psi_i,

the TD error an estimate of the advantage of ``a_i``. Prompt (A1): ``x_i = [psi_i; gamma
psi_{i+1}; r_{i+1}; g_i]``, parameter column ``[0; 1; w; lambda]``, ``D = 3d + 2 d_pi + 2``.
Construction (A3): ``P12* = [[0, -I, 0], [0, I, 0], [1, 0, 0], [0, 0, 0]]``, ``Vbar21* = [[alpha I,
0, 0, 0], [0, 0, 0, beta I]]``; (A4) one layer outputs ``[w'; lambda']``, with the scaling
``(cP, V/c)``. Closed loop (A5): act with ``pi_lambda``. In the loops the critic's table is
``psi(s)`` repeated over actions, so ``phi(s_i, a_i) = psi(s_i)``.
"""

from __future__ import annotations

import numpy as np

import lsa_theory as lt
from lsa_theory.loop_driver import critic_columns, linear, score_rows
from lsa_theory.policies import softmax_rows

from .. import numeric
from ..closed_loop import ClosedLoopAlgorithm, Dims
from .sarsa import sarsa_columns_of


class ActorCritic(ClosedLoopAlgorithm):
    """(A3)/(A4) with the state-value critic (the default actor-critic)."""

    name = "actor_critic"
    claim = "(A4)"
    statement = "(c P*, V*/c) of (A3) = batch actor-critic (A2), state-value critic"
    critic = "state"
    smooth_is_behaviour = True  # (P2) acts with the loop's own pi_lambda
    hyper = {"gamma": 0.5, "alpha": 0.2, "beta": 0.1}
    hyper_ranges = {"gamma": (0.0, 0.99), "alpha": (0.05, 2.0), "beta": (0.05, 2.0)}
    scales = (1.0, -3.7, 0.05)

    def sizes(self, quick):
        return (
            {"S": 3, "A": 3, "d": 3, "d_pi": 9, "n": 20}
            if quick
            else {"S": 9, "A": 4, "d": 9, "d_pi": 36, "n": 20}
        )

    def symbolic_sizes(self):
        return {"S": 2, "A": 2, "d": 2, "d_pi": 2, "n": 3}

    def size_ranges(self):
        return {"S": (1, 4), "A": (1, 3), "d": (1, 5), "d_pi": (1, 5), "n": (1, 12)}

    def draw(self, sizes, rng):
        """A real (A5) context on a random MDP with fresh critic and actor tables, ``w``, ``lambda``
        ``~ U(-1, 1)``: ``phi``/``phi_next`` (n, d) critic rows, ``r`` (n,), ``g`` (n, d_pi)."""
        S, A, n = sizes["S"], sizes["A"], sizes["n"]
        dims = Dims(sizes["d"], sizes["d_pi"])
        mdp = lt.random_mdp(S, A, 0.5, rng)
        phi, phi_pi = self.draw_tables(S, A, dims, rng)
        w = rng.uniform(-1.0, 1.0, dims.d)
        lam = rng.uniform(-1.0, 1.0, dims.d_pi)
        _, g, traj = lt.actor_critic_context(mdp, phi, phi_pi, lam, n, rng)
        f = phi[traj.states, traj.actions]
        return {"phi": f[:-1], "phi_next": f[1:], "r": traj.rewards, "g": g.T, "w": w, "lam": lam}

    def columns(self, inst, hyper):
        X = np.concatenate([sarsa_columns_of(inst, hyper["gamma"]), np.asarray(inst["g"]).T], axis=0)
        return X, np.concatenate([[1], np.asarray(inst["w"]), np.asarray(inst["lam"])])

    def naive(self, inst, hyper, depth):
        if depth != 1:
            raise ValueError(f"depth: the (A4) identity is one layer, got {depth}")
        w, lam = lt.naive_batch_actor_critic(
            inst["phi"],
            inst["phi_next"],
            inst["r"],
            inst["g"],
            inst["w"],
            inst["lam"],
            hyper["gamma"],
            hyper["alpha"],
            hyper["beta"],
        )
        return np.concatenate([w, lam])

    def teacher_readout(self, inst, hyper, depth):
        X = sarsa_columns_of(inst, hyper["gamma"]).astype(np.float64)
        g = np.asarray(inst["g"], dtype=np.float64).T
        w, lam = lt.actor_critic_update(X, g, inst["w"], inst["lam"], hyper["alpha"], hyper["beta"])
        return np.concatenate([w, lam])

    def construction(self, sizes, hyper, c=1.0, depth=1):
        return [numeric.actor_critic(sizes["d"], sizes["d_pi"], hyper["alpha"], hyper["beta"], c)] * depth

    def sparse_construction(self, dims, hyper, c=1.0):
        return numeric.actor_critic(dims.d, dims.d_pi, hyper["alpha"], hyper["beta"], c, sparse=True)

    def teacher_error_bound(self, X, g, w, lam, hyper):
        return lt.sarsa_update_error_bound(X, w, hyper["alpha"], g, lam, hyper["beta"])

    def readout(self, out, sizes):
        return out[-(sizes["d"] + sizes["d_pi"]) :, -1]

    def dims(self, S, A, d=None, d_pi=None):
        """State critic: ``d = S`` (an invertible random table can represent every ``V``), actor
        ``d_pi = S A`` by default."""
        return Dims(S if d is None else d, S * A if d_pi is None else d_pi)

    def teacher(self, hyper):
        alpha, beta = hyper["alpha"], hyper["beta"]
        return lambda X, g, w, lam: lt.actor_critic_update(X, g, w, lam, alpha, beta)

    # closed loop (A5): the hooks of constructions.ClosedLoopAlgorithm with an actor
    def behaviour(self, draws, w, lam, epsilon):
        """(A5): act with the softmax actor ``pi_lambda`` (``epsilon`` unused)."""
        return softmax_rows(linear(draws.phi_pi, lam))

    def greedy(self, draws, w, lam):
        """The argmax of ``lambda^T phi_pi(s, a)``: the greedy policy of the actor."""
        return lt.greedy(np.einsum("sak,k->sa", draws.phi_pi, lam))

    def frame(self, draws, gamma, states, actions, rewards, w, lam, pi):
        """(A1) frame: the (H) columns of the critic's table and the score rows ``g_i = g(s_i, a_i)``
        at the acting ``pi_lambda`` (d_pi, n)."""
        X = critic_columns(draws.phi, states, actions, rewards, gamma)
        return X, score_rows(draws.phi_pi, pi, states, actions)

    def split(self, out, d):
        """``[w'; lambda']`` into ``(w', lambda')``."""
        return out[..., :d], out[..., d:]

    def full_prompt(self, X, g, w, lam):
        return lt.actor_critic_prompt(X, g, w, lam)

    def smooth_behaviour(self, draws, w, lam, tau):
        """(P2) with an actor: the loop's own ``pi_lambda`` (``tau`` unused), as deployed."""
        return self.behaviour(draws, w, lam, 0.0)

    def smooth_policy(self, phi, phi_pi, v, tau):
        """(P2) smooth behaviour: the loop's own (A5) actor ``pi_lambda = softmax_a(lambda^T
        phi_pi(s, a))`` on ``phi_pi`` (K, S, A, d_pi), ``v = [w; lambda]`` (K, d + d_pi), ``tau``
        unused (the smooth and the deployed behaviour agree)."""
        import torch

        return torch.softmax(torch.einsum("ksaj,kj->ksa", phi_pi, v[:, phi.shape[-1] :]), dim=-1)

    def smooth_extra_rows(self, phi_pi, pi):
        """The (A1) score ``g(s, a) = phi_pi(s, a) - sum_b pi(b|s) phi_pi(s, b)`` at the current
        actor ``pi`` (K, S, A), a (K, S, A, d_pi) torch table."""
        import torch

        return phi_pi - torch.einsum("ksb,ksbj->ksj", pi, phi_pi)[:, :, None, :]

    def expected_actor_step(
        self, mdp: lt.TabularMDP, phi: np.ndarray, phi_pi: np.ndarray, lam: np.ndarray
    ) -> dict:
        r"""(A6): the expected actor step ``E[delta_i g_i]`` at the critic's TD fixed point, exactly.

        The loop's pairs ``(s_i, a_i)`` form a Markov chain with kernel ``P[s, a, s'] pi(a'|s')``
        (``pi = pi_lambda``); ``rho`` (S A,) is its stationary law. With the critic's table
        ``phi`` (S, A, d) (``psi(s)`` repeated over actions for the state-value critic) as the
        (SA, d) matrix ``Phi``, the batch critic's fixed point solves
        ``Phi^T D_rho (Phi - gamma P_pair Phi) w = Phi^T D_rho rbar`` and the expected TD error is
        ``delta(s, a) = rbar(s, a) + gamma (P_pair Phi w)(s, a) - (Phi w)(s, a)``. Returns
        ``step = sum rho delta g`` (d_pi,), the true policy gradient ``grad J(pi_lambda) =
        sum_s d_gamma(s) sum_a pi(a|s) Q^pi(s, a) g(s, a)`` with ``d_gamma = mu0^T (I - gamma
        P_pi)^{-1}`` (d_pi,), their cosine, ``w`` and the largest ``|delta|`` (zero when the critic
        is exact for the action values, the Q-critic case of (A6)).
        """
        S, A = mdp.n_states, mdp.n_actions
        pi = lt.softmax_policy(phi_pi, lam)
        g = lt.score(phi_pi, lam)  # (S, A, d_pi)
        P_pair = np.einsum("sat,tb->satb", mdp.P, pi).reshape(S * A, S * A)
        evals, evecs = np.linalg.eig(P_pair.T)
        rho = np.real(evecs[:, np.argmin(np.abs(evals - 1.0))])
        rho = rho / rho.sum()
        Phi = np.asarray(phi, dtype=np.float64).reshape(S * A, -1)
        rbar = mdp.r_sa.reshape(-1)
        Dm = rho[:, None] * Phi
        w = np.linalg.lstsq(Dm.T @ (Phi - mdp.gamma * P_pair @ Phi), Dm.T @ rbar, rcond=None)[0]
        delta = rbar + mdp.gamma * P_pair @ (Phi @ w) - Phi @ w
        step = np.einsum("k,kd->d", rho * delta, g.reshape(S * A, -1))
        P_state = np.einsum("sa,sat->st", pi, mdp.P)
        d_gamma = np.linalg.solve((np.eye(S) - mdp.gamma * P_state).T, mdp.mu0)
        grad = np.einsum("s,sa,sa,sad->d", d_gamma, pi, lt.q_pi(mdp, pi), g)
        cos = (
            float(step @ grad / (np.linalg.norm(step) * np.linalg.norm(grad)))
            if np.linalg.norm(step) > 0
            else 0.0
        )
        return {
            "step": step,
            "policy_gradient": grad,
            "cosine": cos,
            "w": w,
            "max_abs_delta": float(np.abs(delta).max()),
        }

    def all_sizes_forms(self):
        from ..proof_forms import actor_critic_forms

        return actor_critic_forms()


ALGORITHM = ActorCritic()
