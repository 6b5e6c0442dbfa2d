r"""Batch TD(0) in context with the masked block: (W1)-(W3) of docs/theory.md, [W].

Prompt (W1): context columns ``[phi(s_i); gamma phi(s_i'); r_i]`` (state features), one query
column ``[phi(s); 0; 0]``. Block (W2): ``Z + (1/n) P Z M Z^T Q Z``, ``M = diag(I_n, 0)``; the value
estimate is ``-Z[-1, -1]``. Construction (W3): ``P = e_D e_D^T``, ``Q`` zero but for its top-left
blocks ``[-alpha I, alpha I]``: ``L`` layers give ``L`` steps of batch TD(0) from ``w = 0``,

.. math:: w_{l+1} = w_l + \frac{\alpha}{n}\sum_i \delta_i(w_l)\,\phi_i, \qquad
          -Z_L[-1, -1] = w_L^\top \phi(s).
"""

from __future__ import annotations

import numpy as np

import lsa_theory as lt

from .. import numeric
from ..registry import Algorithm
from .sarsa import sarsa_columns_of


def td_instance(S: int, d: int, n: int, rng: np.random.Generator) -> dict:
    """A uniform-policy rollout of ``n`` steps on a random MDP with fresh state features (S, d):
    ``phi``, ``phi_next`` (n, d), ``r`` (n,), and a query ``q = phi(s_0)`` (d,)."""
    mdp = lt.random_mdp(S, 2, 0.5, rng)
    phi_s = lt.random_state_features(S, d, rng)
    traj = lt.rollout(mdp, lt.uniform_policy(mdp), n, rng)
    return {
        "phi": phi_s[traj.states[:-1]],
        "phi_next": phi_s[traj.states[1:]],
        "r": traj.rewards,
        "q": phi_s[0],
    }


def query_value(w, q) -> np.ndarray:
    """(W3) readout target ``w^T phi(s)`` as a (1,) array, by a plain sum so that ``w`` (d,) and the
    query features ``q`` (d,) may hold floats or sympy expressions."""
    return np.array([sum(w[j] * q[j] for j in range(len(w)))])


def td_query(inst, m: int) -> np.ndarray:
    """The (W1) query column ``[phi(s); 0; 0]`` of length ``m = 2d + 1``."""
    q = np.asarray(inst["q"])
    return np.concatenate([q, np.zeros(m - q.shape[0], dtype=q.dtype)])


class TD(Algorithm):
    """(W3): ``L`` masked blocks = ``L`` batch TD(0) steps from 0, read out as ``-Z[-1, -1]``."""

    name = "td"
    claim = "(W3)"
    statement = "L masked blocks (W2) with (W3) = L batch TD(0) steps from 0, -Z[-1, -1] = w_L^T phi(s)"
    block = "masked"
    hyper = {"gamma": 0.5, "alpha": 0.2}
    hyper_ranges = {"gamma": (0.0, 0.99), "alpha": (0.05, 1.0)}
    depths = (1, 2, 4)
    symbolic_depths = (2,)

    def sizes(self, quick):
        return {"S": 3, "d": 3, "n": 20} if quick else {"S": 9, "d": 9, "n": 20}

    def symbolic_sizes(self):
        return {"S": 2, "d": 2, "n": 3}

    def size_ranges(self):
        return {"S": (1, 5), "d": (1, 6), "n": (1, 15)}

    def draw(self, sizes, rng):
        return td_instance(sizes["S"], sizes["d"], sizes["n"], rng)

    def columns(self, inst, hyper):
        X = sarsa_columns_of(inst, hyper["gamma"])
        return X, td_query(inst, X.shape[0])

    def naive(self, inst, hyper, depth):
        w = lt.naive_batch_td(
            inst["phi"], inst["phi_next"], inst["r"], hyper["gamma"], hyper["alpha"], n_iter=depth
        )
        return query_value(w, inst["q"])

    def teacher_readout(self, inst, hyper, depth):
        X = sarsa_columns_of(inst, hyper["gamma"]).astype(np.float64)
        w = lt.td_update(X, np.zeros(X.shape[0] // 2), hyper["alpha"], n_iter=depth)
        return np.array([w @ np.asarray(inst["q"], dtype=np.float64)])

    #: One layer's ``(P, Q)`` from ``(d, alpha)``, float64 or exact (symbolic ``alpha``); every
    #: layer is the same.
    pair = staticmethod(numeric.td)

    def construction(self, sizes, hyper, c=1.0, depth=1):
        return [self.pair(sizes["d"], hyper["alpha"])] * depth

    def readout(self, out, sizes):
        return -out[-1:, -1]

    def all_sizes_forms(self):
        from ..proof_forms import td_forms

        return td_forms()


ALGORITHM = TD()
