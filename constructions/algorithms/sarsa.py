r"""Batch semi-gradient SARSA in context: (S2)-(S6) of docs/theory.md, [LL] Thm 3.1.

Update (S2), one batch step on the context's ``n`` transitions:

.. math:: w_{\rm SARSA} = w + \frac{\alpha}{n}\sum_{i} \delta_i \phi_i, \qquad
          \delta_i = r_{i+1} + \gamma w^\top \phi_i^+ - w^\top \phi_i .

Prompt (H): context columns ``[x_i; 0_{d+1}]`` with ``x_i = [phi_i; gamma phi_i^+; r_{i+1}]``,
parameter column ``[0_{2d+1}; 1; w]``. Construction (S3): ``P12* = [[0, -I], [0, I], [1, 0]]``,
``Vbar21* = [alpha I, 0, 0]``, every other entry zero; (S4) ``(c P*, V*/c)`` gives ``w_SARSA``
for every ``c != 0``; (S5) ``L`` stacked copies give ``L`` iterations on the same batch (the
context columns and the constant row never change). Closed loop (S6): epsilon-greedy on ``Q_w``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

import lsa_theory as lt

from .. import numeric
from ..closed_loop import ClosedLoopAlgorithm, Dims


def sarsa_instance(S: int, A: int, d: int, n: int, rng: np.random.Generator, epsilon: float = 0.1) -> dict:
    """A real SARSA context: a random MDP (S x A), fresh features (S, A, d), ``w ~ U(-1, 1)^d`` and
    an ``n``-step epsilon-greedy rollout; returns ``phi``, ``phi_next`` (n, d), ``r`` (n,), ``w`` (d,)."""
    mdp = lt.random_mdp(S, A, 0.5, rng)
    phi = lt.random_features(S, A, d, rng)
    w = rng.uniform(-1.0, 1.0, d)
    _, traj = lt.sarsa_context(mdp, phi, w, n, epsilon, rng)
    f = phi[traj.states, traj.actions]
    return {"phi": f[:-1], "phi_next": f[1:], "r": traj.rewards, "w": w}


def sarsa_columns_of(inst: Mapping[str, Any], gamma: Any) -> np.ndarray:
    """(H) context rows ``[phi^T; gamma phi_next^T; r^T]`` (2d+1, n), for float or object arrays."""
    phi, phi_next, r = (np.asarray(inst[k]) for k in ("phi", "phi_next", "r"))
    return np.concatenate([phi.T, gamma * phi_next.T, r[None, :]], axis=0)


class Sarsa(ClosedLoopAlgorithm):
    """(S3)/(S4)/(S5): one (L1) block per batch-SARSA iteration."""

    name = "sarsa"
    claim = "(S4)"
    statement = "(c P*, V*/c) of (S3) = batch SARSA (S2)"
    hyper = {"gamma": 0.5, "alpha": 0.2}
    hyper_ranges = {"gamma": (0.0, 0.99), "alpha": (0.05, 2.0)}
    scales = (1.0, -3.7, 0.05)
    depths = (1, 2, 3, 4)
    depth_claims = {2: "(S5)", 3: "(S5)", 4: "(S5)"}
    symbolic_depths = (1, 2)

    def sizes(self, quick: bool) -> dict[str, int]:
        return {"S": 3, "A": 3, "d": 9, "n": 20} if quick else {"S": 9, "A": 4, "d": 36, "n": 20}

    def symbolic_sizes(self) -> dict[str, int]:
        return {"S": 2, "A": 1, "d": 2, "n": 3}

    def size_ranges(self) -> dict[str, tuple[int, int]]:
        return {"S": (1, 4), "A": (1, 3), "d": (1, 6), "n": (1, 15)}

    def draw(self, sizes, rng):
        return sarsa_instance(sizes["S"], sizes["A"], sizes["d"], sizes["n"], rng)

    def columns(self, inst, hyper):
        return sarsa_columns_of(inst, hyper["gamma"]), np.concatenate([[1], np.asarray(inst["w"])])

    def naive(self, inst, hyper, depth):
        return lt.naive_batch_sarsa(
            inst["phi"], inst["phi_next"], inst["r"], inst["w"], hyper["gamma"], hyper["alpha"], n_iter=depth
        )

    def teacher_readout(self, inst, hyper, depth):
        X = sarsa_columns_of(inst, hyper["gamma"]).astype(np.float64)
        return lt.td_update(X, np.asarray(inst["w"], dtype=np.float64), hyper["alpha"], n_iter=depth)

    def construction(self, sizes, hyper, c=1.0, depth=1):
        return [numeric.sarsa(sizes["d"], hyper["alpha"], c)] * depth

    def sparse_construction(self, dims, hyper, c=1.0):
        return numeric.sarsa(dims.d, hyper["alpha"], c, sparse=True)

    def teacher_error_bound(self, X, g, w, lam, hyper):
        return lt.sarsa_update_error_bound(X, w, hyper["alpha"])

    def readout(self, out, sizes):
        return out[-sizes["d"] :, -1]

    # closed loop (S6)
    def dims(self, S, A, d=None, d_pi=None):
        """``d = S A`` by default; SARSA has no actor, so ``d_pi`` is 0 whatever is passed."""
        return Dims(S * A if d is None else d)

    def teacher(self, hyper):
        alpha = hyper["alpha"]
        return lambda X, g, w, lam: (lt.sarsa_update(X, w, alpha), None)

    def all_sizes_forms(self):
        from ..proof_forms import sarsa_forms

        return sarsa_forms()


ALGORITHM = Sarsa()
