r"""Tabular MDPs, the random families of docs/theory.md §0, and exact oracles.

A tabular MDP is :math:`(\mathcal S, \mathcal A, P, r, \gamma, \mu_0)` with
:math:`P[s, a, s'] = \Pr(s_{t+1} = s' \mid s_t = s, a_t = a)` row-stochastic, reward
:math:`r[s, a]` or :math:`r[s, a, s']`, :math:`0 \le \gamma < 1` and initial law :math:`\mu_0`.
For a stochastic policy :math:`\pi \in \mathbb R^{S \times A}` the exact oracles are

.. math::

    Q^\pi = (I - \gamma P_\pi)^{-1} \bar r, \qquad
    V^\pi = (I - \gamma P^\pi)^{-1} r^\pi, \qquad J(\pi) = \mu_0^\top V^\pi,

with :math:`P_\pi[(s,a),(s',a')] = P[s,a,s']\,\pi[s',a']`, :math:`\bar r[s,a] = \sum_{s'} P[s,a,s']
r[s,a,s']` and :math:`P^\pi[s, s'] = \sum_a \pi[s,a] P[s,a,s']`. The normalised return is
:math:`(J(\pi) - J(\mathrm{uniform})) / (J(\pi^*) - J(\mathrm{uniform}))`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from .checks import (
    as_float_array,
    check_distribution,
    check_gamma,
    check_int,
    check_real,
    input_eps,
)
from .roundoff import UNIT_ROUNDOFF
from .roundoff import gamma as gamma_k

__all__ = [
    "TabularMDP",
    "OptimalSolution",
    "random_mdp",
    "q_pi",
    "v_pi",
    "expected_return",
    "optimal",
    "normalized_return",
    "uniform_policy",
    "check_policy",
]

#: Tolerance on the row sums of ``P``, ``mu0`` and policies given in float64. Inputs of a lower
#: precision get ``max(STOCHASTIC_ATOL, m * eps)`` with ``m`` the row length and ``eps`` their
#: dtype's machine epsilon (float32: ``m * 1.19e-7``), see :func:`lsa_theory.checks.check_distribution`.
STOCHASTIC_ATOL = 1e-10


@dataclass(frozen=True, eq=False)
class TabularMDP:
    """A finite MDP of docs/theory.md §0, validated on construction.

    Attributes:
        P: (S, A, S) transition kernel, each ``P[s, a]`` a distribution.
        r: (S, A) reward ``r[s, a]`` or (S, A, S) reward ``r[s, a, s']``.
        gamma: discount, ``0 <= gamma < 1``.
        mu0: (S,) initial state law.
        reward_noise: standard deviation of zero-mean Gaussian noise added to every sampled
            reward (the oracles use the mean reward). 0 by default.
    """

    P: np.ndarray
    r: np.ndarray
    gamma: float
    mu0: np.ndarray
    reward_noise: float = 0.0

    def __post_init__(self) -> None:
        # float64 copies (never the caller's arrays, which stay theirs and writable), frozen below
        P = as_float_array(self.P, "P", ndim=3, copy=True)
        S, A, S2 = P.shape
        if S != S2 or S < 1 or A < 1:
            raise ValueError(f"P: expected shape (S, A, S) with S, A >= 1, got {P.shape}")
        check_distribution(P, "P", axis=-1, atol=STOCHASTIC_ATOL, eps=input_eps(self.P))
        r = as_float_array(self.r, "r", ndim=(2, 3), copy=True)
        if r.shape not in ((S, A), (S, A, S)):
            raise ValueError(f"r: expected shape {(S, A)} or {(S, A, S)}, got {r.shape}")
        gamma = check_gamma(self.gamma)
        mu0 = as_float_array(self.mu0, "mu0", ndim=1, copy=True)
        if mu0.shape != (S,):
            raise ValueError(f"mu0: expected shape {(S,)}, got {mu0.shape}")
        check_distribution(mu0, "mu0", atol=STOCHASTIC_ATOL, eps=input_eps(self.mu0))
        noise = check_real(self.reward_noise, "reward_noise", low=0.0)
        for name, value in (("P", P), ("r", r), ("mu0", mu0)):
            value.setflags(write=False)
            object.__setattr__(self, name, value)
        object.__setattr__(self, "gamma", gamma)
        object.__setattr__(self, "reward_noise", noise)

    @property
    def n_states(self) -> int:
        return self.P.shape[0]

    @property
    def n_actions(self) -> int:
        return self.P.shape[1]

    @functools.cached_property
    def cumulative_P(self) -> np.ndarray:
        """(S, A, S) ``cumsum(P, axis=-1)``, computed once: the sampling tables of rollouts."""
        out = np.cumsum(self.P, axis=-1)
        out.setflags(write=False)
        return out

    @property
    def r_sa(self) -> np.ndarray:
        """(S, A) expected reward ``rbar[s, a] = sum_s' P[s, a, s'] r[s, a, s']``."""
        if self.r.ndim == 2:
            return self.r
        return np.einsum("sat,sat->sa", self.P, self.r)


@dataclass(frozen=True)
class OptimalSolution:
    """Result of :func:`optimal`: greedy optimal ``policy`` (S,) ints, ``Q`` (S, A), ``V`` (S,)."""

    policy: np.ndarray
    Q: np.ndarray
    V: np.ndarray
    n_iter: int

    @property
    def pi(self) -> np.ndarray:
        """(S, A) deterministic policy matrix of ``policy``."""
        S, A = self.Q.shape
        out = np.zeros((S, A))
        out[np.arange(S), self.policy] = 1.0
        return out


def random_mdp(
    n_states: int,
    n_actions: int,
    gamma: float,
    rng: np.random.Generator,
    *,
    kind: str = "dirichlet",
    branching: int | None = None,
    reward: str = "sa",
    reward_noise: float = 0.0,
) -> TabularMDP:
    """Sample an MDP of docs/theory.md §0.

    ``kind="dirichlet"`` is the [LL] family: ``P(.|s,a) ~ Dirichlet(1)``, ``mu0 ~ Dirichlet(1)``,
    rewards ``U(-1, 1)``. ``kind="garnet"`` is a Garnet MDP: each ``(s, a)`` reaches ``branching``
    distinct successors drawn uniformly, with Dirichlet(1) weights on them. ``reward`` is ``"sa"``
    for ``r[s, a]`` (shape (S, A)) or ``"sas"`` for ``r[s, a, s']`` (shape (S, A, S)).
    """
    S = check_int(n_states, "n_states")
    A = check_int(n_actions, "n_actions")
    gamma = check_gamma(gamma)
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng: expected numpy.random.Generator, got {type(rng).__name__}")
    if kind == "dirichlet":
        if branching is not None:
            raise ValueError("branching: only used by kind='garnet' (Dirichlet MDPs are dense)")
        P = rng.dirichlet(np.ones(S), size=(S, A))
    elif kind == "garnet":
        b = S if branching is None else check_int(branching, "branching")
        if b > S:
            raise ValueError(f"branching: must be <= n_states = {S}, got {b}")
        P = np.zeros((S, A, S))
        for s in range(S):
            for a in range(A):
                succ = rng.choice(S, size=b, replace=False)
                P[s, a, succ] = rng.dirichlet(np.ones(b))
    else:
        raise ValueError(f"kind: expected 'dirichlet' or 'garnet', got {kind!r}")
    if reward == "sa":
        r = rng.uniform(-1.0, 1.0, size=(S, A))
    elif reward == "sas":
        r = rng.uniform(-1.0, 1.0, size=(S, A, S))
    else:
        raise ValueError(f"reward: expected 'sa' or 'sas', got {reward!r}")
    mu0 = rng.dirichlet(np.ones(S))
    return TabularMDP(P=P, r=r, gamma=gamma, mu0=mu0, reward_noise=reward_noise)


def check_mdp(mdp: TabularMDP) -> TabularMDP:
    """``mdp`` itself; ValueError unless it is a :class:`TabularMDP`."""
    if not isinstance(mdp, TabularMDP):
        raise ValueError(f"mdp: expected a TabularMDP, got {type(mdp).__name__}")
    return mdp


def check_policy(mdp: TabularMDP, pi: np.ndarray, name: str = "pi") -> np.ndarray:
    """``pi`` as a validated (S, A) stochastic matrix for ``mdp``."""
    check_mdp(mdp)
    eps = input_eps(pi)
    pi = as_float_array(pi, name, ndim=2)
    if pi.shape != (mdp.n_states, mdp.n_actions):
        raise ValueError(f"{name}: expected shape {(mdp.n_states, mdp.n_actions)}, got {pi.shape}")
    check_distribution(pi, name, axis=-1, atol=STOCHASTIC_ATOL, eps=eps)
    return pi


def uniform_policy(mdp: TabularMDP) -> np.ndarray:
    """(S, A) uniformly random policy."""
    check_mdp(mdp)
    return np.full((mdp.n_states, mdp.n_actions), 1.0 / mdp.n_actions)


def q_pi(mdp: TabularMDP, pi: np.ndarray) -> np.ndarray:
    """(S, A) action values ``Q^pi = (I - gamma P_pi)^{-1} rbar`` (docs/theory.md §0)."""
    pi = check_policy(mdp, pi)
    S, A = mdp.n_states, mdp.n_actions
    P_pi = np.einsum("sat,tb->satb", mdp.P, pi).reshape(S * A, S * A)
    Q = np.linalg.solve(np.eye(S * A) - mdp.gamma * P_pi, mdp.r_sa.reshape(-1))
    return Q.reshape(S, A)


def discounted_solve_error_bound(T: np.ndarray, b: np.ndarray, x: np.ndarray, gamma: float) -> float:
    r"""Bound on :math:`\|\hat x - x\|_\infty` for the computed solution ``x`` (n,) of
    :math:`(I - \gamma T) x = b` with ``T`` (n, n) non-negative (``P_pi`` or ``P^pi``, as formed in
    float64) and ``b`` (n,), valid however the system was solved (an a-posteriori residual bound):

    .. math::

        \|\hat x - x\|_\infty \le \frac{\|\mathrm{fl}(b - \hat M \hat x)\|_\infty
            + \gamma_{n+1} \|\,|b| + |\hat M|\,|\hat x|\,\|_\infty
            + \gamma_2 \|(I + \gamma T) |\hat x|\|_\infty}{1 - \gamma \|T\|_\infty (1 + \gamma_n)},

    with :math:`\hat M = \mathrm{fl}(I - \gamma T)`: the residual as computed plus the error of
    computing it (Higham's inner-product bound, n + 1 terms), plus the rounding of forming
    :math:`\hat M` from ``T`` (two roundings an entry), all through
    :math:`\|(I - \gamma T)^{-1}\|_\infty \le 1 / (1 - \gamma \|T\|_\infty)`. ``inf`` when
    :math:`\gamma \|T\|_\infty (1 + \gamma_n) \ge 1`. Scales with ``b``: no absolute floor."""
    n = T.shape[0]
    M = np.eye(n) - gamma * T
    res = b - M @ x
    ax = np.abs(x)
    num = (
        np.abs(res).max(initial=0.0)
        + gamma_k(n + 1) * (np.abs(b) + np.abs(M) @ ax).max(initial=0.0)
        + gamma_k(2) * (ax + gamma * (T @ ax)).max(initial=0.0)
    )
    contraction = gamma * np.abs(T).sum(axis=1).max(initial=0.0) * (1.0 + gamma_k(n))
    return float(num / (1.0 - contraction)) if contraction < 1.0 else float("inf")


def q_error_bound(mdp: TabularMDP, pi: np.ndarray, Q: np.ndarray) -> float:
    r"""Bound on :math:`\max_{s,a} |\hat Q[s, a] - Q^\pi[s, a]|` for ``Q`` (S, A) computed by
    :func:`q_pi`: :func:`discounted_solve_error_bound` of :math:`(I - \gamma P_\pi) Q = \bar r`
    (``T = P_pi`` as :func:`q_pi` forms it, one rounding an entry, counted by the
    :math:`\gamma_2` term with one to spare) plus, for a reward ``r[s, a, s']``, the error of
    :math:`\bar r` (:func:`lsa_theory.roundoff.sum_error_bound` of its S products, each
    rounded once: :math:`\gamma_{S+1} \sum_{s'} P |r|`) times :math:`1 / (1 - \gamma)`."""
    S, A = mdp.n_states, mdp.n_actions
    P_pi = np.einsum("sat,tb->satb", mdp.P, pi).reshape(S * A, S * A)
    err = discounted_solve_error_bound(P_pi, mdp.r_sa.reshape(-1), np.asarray(Q).reshape(-1), mdp.gamma)
    if mdp.r.ndim == 3:
        r_err = gamma_k(S + 1) * np.einsum("sat,sat->sa", mdp.P, np.abs(mdp.r)).max(initial=0.0)
        err += r_err / (1.0 - mdp.gamma)
    return err


def v_error_bound(mdp: TabularMDP, pi: np.ndarray, V: np.ndarray) -> float:
    r"""Bound on :math:`\max_s |\hat V[s] - V^\pi[s]|` for ``V`` (S,) computed by :func:`v_pi`:
    :func:`discounted_solve_error_bound` of :math:`(I - \gamma P^\pi) V = r^\pi` with ``P^pi``
    and ``r^pi`` as :func:`v_pi` forms them, plus their own rounding (sums of A products:
    :math:`\gamma_{A+1}` of :math:`P^\pi` and of :math:`\sum_a \pi |\bar r|`) through
    :math:`1 / (1 - \gamma)`, plus the error of :math:`\bar r` for a reward ``r[s, a, s']``."""
    S, A = mdp.n_states, mdp.n_actions
    P_state = np.einsum("sa,sat->st", pi, mdp.P)
    r_state = np.einsum("sa,sa->s", pi, mdp.r_sa)
    err = discounted_solve_error_bound(P_state, r_state, np.asarray(V), mdp.gamma)
    ax = np.abs(V)
    formed = gamma_k(A + 1) * np.einsum("sa,sa->s", np.abs(pi), np.abs(mdp.r_sa)).max(initial=0.0)
    formed += gamma_k(A + 1) * mdp.gamma * (P_state @ ax).max(initial=0.0)
    if mdp.r.ndim == 3:
        formed += gamma_k(S + 1) * np.einsum("sat,sat->sa", mdp.P, np.abs(mdp.r)).max(initial=0.0)
    return err + formed / (1.0 - mdp.gamma)


def v_pi(mdp: TabularMDP, pi: np.ndarray) -> np.ndarray:
    """(S,) state values ``V^pi = (I - gamma P^pi)^{-1} r^pi`` (docs/theory.md §0)."""
    pi = check_policy(mdp, pi)
    P_state = np.einsum("sa,sat->st", pi, mdp.P)
    r_state = np.einsum("sa,sa->s", pi, mdp.r_sa)
    return np.linalg.solve(np.eye(mdp.n_states) - mdp.gamma * P_state, r_state)


def expected_return(mdp: TabularMDP, pi: np.ndarray) -> float:
    """Scalar ``J(pi) = mu0^T V^pi``."""
    V = v_pi(mdp, pi)
    return float(mdp.mu0 @ V)


def optimal(mdp: TabularMDP, max_iter: int = 10_000) -> OptimalSolution:
    """Optimal ``(pi*, Q*, V*)`` by exact policy iteration.

    Evaluation solves the linear system exactly; improvement is greedy on ``Q`` and keeps the
    current action unless another is better by more than ``2 * err`` (with ``err`` =
    :func:`q_error_bound` of the evaluated ``Q``, inflated by ``1 + 4u`` for the subtraction): a
    switch is then a true improvement, so ties cannot cycle, and the threshold scales with the
    rewards (no absolute floor: rewards scaled by ``c > 0`` give the same policy). The result is
    greedy up to ``2 err``. Raises ``RuntimeError`` if it has not converged after ``max_iter``
    improvements.
    """
    S, A = check_mdp(mdp).n_states, mdp.n_actions
    policy = np.zeros(S, dtype=np.int64)
    rows = np.arange(S)
    for it in range(1, check_int(max_iter, "max_iter") + 1):
        pi = np.zeros((S, A))
        pi[rows, policy] = 1.0
        Q = q_pi(mdp, pi)
        best = Q.argmax(axis=1)
        gain = Q[rows, best] - Q[rows, policy]
        improve = gain > 2.0 * q_error_bound(mdp, pi, Q) * (1.0 + 4.0 * UNIT_ROUNDOFF)
        if not improve.any():
            return OptimalSolution(policy=policy, Q=Q, V=Q[rows, policy], n_iter=it)
        policy = np.where(improve, best, policy)
    raise RuntimeError(f"policy iteration did not converge in {max_iter} iterations")


def normalized_return(mdp: TabularMDP, pi: np.ndarray, solution: OptimalSolution | None = None) -> float:
    r"""``(J(pi) - J(uniform)) / (J(pi*) - J(uniform))``: 0 for random play, 1 for optimal.

    Raises ``ValueError`` when ``J(pi*) - J(uniform)`` is not above the round-off bound of the
    two returns as computed (:func:`q_error_bound` of ``Q*``, :func:`v_error_bound` of
    ``V^uniform``, each through ``mu0`` with :math:`\gamma_{S+1}` for the inner product): every
    policy is then optimal up to rounding and the ratio is meaningless. The bound scales with the
    rewards (no absolute floor), so rewards scaled by ``c > 0`` give the same ratio.
    """
    check_mdp(mdp)
    if solution is not None and not (
        isinstance(solution, OptimalSolution) and solution.Q.shape == (mdp.n_states, mdp.n_actions)
    ):
        raise ValueError("solution: expected the OptimalSolution of this mdp (optimal(mdp))")
    sol = optimal(mdp) if solution is None else solution
    j_star = float(mdp.mu0 @ sol.V)
    unif = uniform_policy(mdp)
    v_unif = v_pi(mdp, unif)
    j_unif = float(mdp.mu0 @ v_unif)
    gap = j_star - j_unif
    S = mdp.n_states
    bound = (
        q_error_bound(mdp, sol.pi, sol.Q)
        + v_error_bound(mdp, unif, v_unif)
        + gamma_k(S + 1) * (mdp.mu0 @ (np.abs(sol.V) + np.abs(v_unif)))
    ) * (1.0 + 4.0 * UNIT_ROUNDOFF)
    if gap <= bound:
        raise ValueError(f"normalized_return: J(pi*) - J(uniform) = {gap:.3g}; the MDP is degenerate")
    return (expected_return(mdp, pi) - j_unif) / gap
