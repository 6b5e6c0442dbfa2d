r"""Batch SARSA on the scaled reward ``kappa r``: a closed-loop algorithm declared outside the package.

Update, one batch step on the context's ``n`` transitions (``kappa`` a hyperparameter, default 2):

.. math:: w' = w + \frac{\alpha}{n} \sum_i \delta_i \phi_i, \qquad
          \delta_i = \kappa r_{i+1} + \gamma w^\top \phi_i^+ - w^\top \phi_i .

Prompt: the (H) prompt of SARSA, unchanged (context rows ``[phi_i; gamma phi_i^+; r_{i+1}]``,
parameter column ``[0; 1; w]``). Construction: (S3) with ``kappa`` in the reward entry of ``P12``
(``P12[r, const] = kappa`` instead of 1), so the block, not the prompt, scales the reward; with
``(c P, V / c)`` it computes the same update for every ``c != 0``. ``kappa = 1`` is (S3).

The declaration is a :class:`lsa_theory.constructions.ClosedLoopAlgorithm`, so the package's verification,
dynamics and deployment all reach this construction (not (S3)) through it:

    lsa-theory verify --module examples/reward_scaled_sarsa.py --quick
    lsa-theory control --module examples/reward_scaled_sarsa.py --algo reward_scaled_sarsa \
        --weights constructed --quick

(docs/extending.md walks through both.)
"""

import numpy as np

import lsa_theory as lt
from lsa_theory import constructions


class RewardScaledSarsa(constructions.ClosedLoopAlgorithm):
    name = "reward_scaled_sarsa"
    claim = "(RS)"
    statement = "(S3) with kappa in P12's reward entry = batch SARSA on the reward kappa r"
    hyper = {"gamma": 0.5, "alpha": 0.2, "kappa": 2.0}
    hyper_ranges = {"gamma": (0.0, 0.99), "alpha": (0.05, 2.0), "kappa": (0.25, 4.0)}
    scales = (1.0, -2.0)
    depths = (1, 2)

    # ------------------------------------------------------------------ verification
    def sizes(self, quick):
        return {"S": 3, "A": 3, "d": 9, "n": 20} if quick else {"S": 9, "A": 4, "d": 36, "n": 20}

    def symbolic_sizes(self):
        return {"S": 2, "A": 1, "d": 2, "n": 2}

    def size_ranges(self):
        return {"S": (1, 4), "A": (1, 3), "d": (1, 6), "n": (1, 12)}

    def draw(self, sizes, rng):
        mdp = lt.random_mdp(sizes["S"], sizes["A"], 0.5, rng)
        phi = lt.random_features(sizes["S"], sizes["A"], sizes["d"], rng)
        w = rng.uniform(-1.0, 1.0, sizes["d"])
        _, traj = lt.sarsa_context(mdp, phi, w, sizes["n"], 0.1, rng)
        f = phi[traj.states, traj.actions]
        return {"phi": f[:-1], "phi_next": f[1:], "r": traj.rewards, "w": w}

    def columns(self, inst, hyper):
        phi, phi_next, r = (np.asarray(inst[k]) for k in ("phi", "phi_next", "r"))
        X = np.concatenate([phi.T, hyper["gamma"] * phi_next.T, r[None, :]], axis=0)
        return X, np.concatenate([[1], np.asarray(inst["w"])])

    def naive(self, inst, hyper, depth):
        r = [hyper["kappa"] * x for x in inst["r"]]  # the scaled reward, written as a loop
        return lt.naive_batch_sarsa(
            inst["phi"], inst["phi_next"], r, inst["w"], hyper["gamma"], hyper["alpha"], n_iter=depth
        )

    def construction(self, sizes, hyper, c=1.0, depth=1):
        d = sizes["d"]
        P, V = constructions.sarsa(d, hyper["alpha"], c)
        P[2 * d, 2 * d + 1] = hyper["kappa"] * c  # reward row r -> constant column of P12
        return [(P, V)] * depth

    def readout(self, out, sizes):
        return out[-sizes["d"] :, -1]

    # ------------------------------------------------------------------- closed loop
    def dims(self, S, A, d=None, d_pi=None):
        return constructions.Dims(S * A if d is None else d)

    def teacher(self, hyper):
        alpha, kappa = hyper["alpha"], hyper["kappa"]

        def update(X, g, w, lam):
            X = np.array(X, dtype=np.float64)
            X[..., -1, :] *= kappa  # the reward row
            return lt.sarsa_update(X, w, alpha), None

        return update
