r"""Deployment environments as exact tabular MDPs (docs/theory.md §0): gymnasium toy-text models and the
held-out [LL] random family.

:func:`gym_tabular` reads the model a gymnasium toy-text environment keeps in ``env.unwrapped.P``,
a dict ``P[s][a] = [(prob, s', reward, done), ...]``, and returns the exact
:class:`lsa_theory.TabularMDP`:

- ``P[s, a, s'] = sum of prob`` over the listed outcomes of ``(s, a)`` that land in ``s'``;
- ``r[s, a, s']`` (shape (S, A, S)) is the probability-weighted mean reward of those outcomes
  (0 where no outcome lands), so ``rbar[s, a] = sum_s' P[s, a, s'] r[s, a, s']`` is the exact
  expected reward;
- **terminal states are absorbing**: a state entered by an outcome with ``done = True`` is
  terminal; from it every action self-loops with reward 0, so the discounted return of the
  tabular model equals the episodic return (the environment's own rows for terminal states, which
  gymnasium never uses because the episode has ended, are replaced);
- ``mu0 = env.unwrapped.initial_state_distrib`` (all four supported environments define it);
- ``gamma`` is a parameter (gymnasium's episodes are undiscounted; a discount is needed for the
  oracles of §0).

:func:`heldout_family` yields the [LL] family of §0 (9 states, 4 actions, gamma 0.5) from seeds
disjoint from every training seed of the package.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from lsa_theory import TabularMDP, random_mdp
from lsa_theory.checks import check_gamma, check_int

__all__ = [
    "GYM_ENVS",
    "HELDOUT_NAME",
    "HELDOUT_OFFSET",
    "gym_tabular",
    "terminal_states",
    "heldout_family",
    "heldout_rng",
    "make_env",
    "env_key",
    "parse_env_key",
]

#: The gymnasium environments :func:`gym_tabular` supports, with the keyword arguments they accept.
GYM_ENVS: dict[str, tuple[str, ...]] = {
    "FrozenLake-v1": ("is_slippery", "map_name"),
    "CliffWalking-v1": (),
    "Taxi-v4": (),
}

#: Name of the held-out [LL] family in results.
HELDOUT_NAME = "random-S9-A4"

#: Seed offset of the held-out family: MDP ``i`` is drawn from ``default_rng([seed, HELDOUT_OFFSET + i])``.
HELDOUT_OFFSET = 10_000


def gym_tabular(name: str, gamma: float = 0.9, **kwargs) -> TabularMDP:
    """Exact tabular model ``(P (S, A, S), r (S, A, S), gamma, mu0 (S,))`` of a gymnasium toy-text env.

    ``name`` is one of :data:`GYM_ENVS` (``"FrozenLake-v1"`` with ``is_slippery`` True or False and
    optionally ``map_name``, ``"CliffWalking-v1"``, ``"Taxi-v4"``); ``kwargs`` go to
    ``gymnasium.make``. Shapes: FrozenLake 4x4 S = 16, A = 4; CliffWalking S = 48, A = 4; Taxi
    S = 500, A = 6. Construction rules are in the module docstring; terminal states (entered with
    ``done = True``) are made absorbing with reward 0.

    ``gamma`` defaults to 0.9, not the 0.5 of the [LL] family: the effective horizon
    ``1 / (1 - gamma) = 10`` steps is of the order of the shortest paths to the goal (6 steps in
    FrozenLake 4x4, 13 in CliffWalking, up to about 20 in Taxi), so the goal reward is visible in
    ``J(pi)`` (with 0.5 it is discounted by ``2^-6`` to ``2^-13``, and the normalised return of
    §0 would score little more than the first two steps), while ``gamma`` stays well below 1 so
    that the bootstrapped SARSA step with ``alpha = 0.2`` remains a contraction-like update.
    """
    if name not in GYM_ENVS:
        raise ValueError(f"name: expected one of {sorted(GYM_ENVS)}, got {name!r}")
    bad = set(kwargs) - set(GYM_ENVS[name])
    if bad:
        raise ValueError(f"kwargs: {name} accepts {GYM_ENVS[name] or 'no options'}, got {sorted(bad)}")
    gamma = check_gamma(gamma)
    import gymnasium as gym

    env = gym.make(name, **kwargs)
    try:
        base = env.unwrapped
        S, A = int(base.observation_space.n), int(base.action_space.n)
        table = base.P
        mu0 = np.asarray(base.initial_state_distrib, dtype=np.float64)
    finally:
        env.close()
    return _tabular_from_dict(table, S, A, mu0, gamma)


def _tabular_from_dict(table: dict, S: int, A: int, mu0: np.ndarray, gamma: float) -> TabularMDP:
    """Exact ``TabularMDP`` from a gymnasium ``P`` dict (see the module docstring)."""
    P = np.zeros((S, A, S))
    R = np.zeros((S, A, S))  # probability-weighted reward sums, divided by P below
    terminal = np.zeros(S, dtype=bool)
    for s in range(S):
        for a in range(A):
            for prob, s_next, reward, done in table[s][a]:
                P[s, a, s_next] += prob
                R[s, a, s_next] += prob * reward
                if done:
                    terminal[s_next] = True
    r = np.divide(R, P, out=np.zeros_like(R), where=P > 0)
    term = np.flatnonzero(terminal)
    P[term] = 0.0
    P[term, :, term] = 1.0
    r[term] = 0.0
    return TabularMDP(P=P, r=r, gamma=gamma, mu0=mu0 / mu0.sum())


def terminal_states(mdp: TabularMDP) -> np.ndarray:
    """(S,) bool mask of the absorbing zero-reward states: ``P[s, a, s] = 1`` and ``r[s, a, .] = 0``
    for every action ``a`` (the terminal states of :func:`gym_tabular`)."""
    S = mdp.n_states
    idx = np.arange(S)
    loops = (mdp.P[idx, :, idx] == 1.0).all(axis=1)
    r = mdp.r if mdp.r.ndim == 2 else mdp.r.reshape(S, -1)
    return loops & (r == 0.0).all(axis=1)


def heldout_rng(seed: int, i: int, stream: int | None = None) -> np.random.Generator:
    """Generator of held-out MDP ``i``: ``default_rng([seed, 10_000 + i])`` draws the MDP and
    ``default_rng([seed, 10_000 + i, stream])`` the deployment streams (features, ``w_0``, rollouts)."""
    seed = check_int(seed, "seed", minimum=0)
    i = check_int(i, "i", minimum=0)
    key = [seed, HELDOUT_OFFSET + i] + ([] if stream is None else [check_int(stream, "stream", minimum=0)])
    return np.random.default_rng(key)


def heldout_family(n_mdps: int, seed: int = 0) -> Iterator[TabularMDP]:
    """Yield ``n_mdps`` [LL] random MDPs of §0 (``P`` (9, 4, 9), ``r`` (9, 4), ``mu0`` (9,), gamma 0.5).

    Seed scheme: MDP ``i`` is ``random_mdp(9, 4, 0.5, default_rng([seed, 10_000 + i]))``. The
    package's training data use ``default_rng(seed)`` or ``default_rng([seed, index(, j)])`` with
    small indices (``lsa_theory.dynamics.teacher_dataset``, ``lsa_theory.experiments.diversity``), so
    held-out MDPs come
    from different ``SeedSequence`` entropy than any training MDP as long as fewer than 10 000
    training MDPs are indexed. The name of the family in results is :data:`HELDOUT_NAME`.
    """
    n_mdps = check_int(n_mdps, "n_mdps")
    seed = check_int(seed, "seed", minimum=0)
    for i in range(n_mdps):
        yield random_mdp(9, 4, 0.5, heldout_rng(seed, i))


def env_key(name: str, **kwargs) -> str:
    """Result name of an environment: ``name`` or ``name:k=v,...``.

    E.g. ``env_key("FrozenLake-v1", is_slippery=False) == "FrozenLake-v1:is_slippery=False"``.
    """
    if not kwargs:
        return name
    return name + ":" + ",".join(f"{k}={kwargs[k]}" for k in sorted(kwargs))


def parse_env_key(key: str) -> tuple[str, dict]:
    """Inverse of :func:`env_key`: ``(name, kwargs)``; ``True``/``False`` become bools."""
    if not isinstance(key, str) or not key:
        raise ValueError(f"key: expected a non-empty environment name, got {key!r}")
    name, _, rest = key.partition(":")
    kwargs: dict = {}
    for item in filter(None, rest.split(",")):
        k, sep, v = item.partition("=")
        if not sep:
            raise ValueError(f"key: expected 'name:k=v,...', got {key!r}")
        kwargs[k] = {"True": True, "False": False}.get(v, v)
    return name, kwargs


def make_env(key: str, gamma: float = 0.9) -> TabularMDP:
    """The single tabular MDP of a gymnasium environment key (see :func:`env_key`); ``gamma`` as in
    :func:`gym_tabular`. The held-out family is not a single MDP: use :func:`heldout_family`."""
    name, kwargs = parse_env_key(key)
    if name == HELDOUT_NAME:
        raise ValueError(f"key: {HELDOUT_NAME} is a family; use heldout_family")
    return gym_tabular(name, gamma=gamma, **kwargs)
