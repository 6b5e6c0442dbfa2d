"""Off-policy batch TD(0) with per-decision importance ratios, declared outside the package
(docs/extending.md).

    w' = w + (alpha/n) sum_i rho_i delta_i phi_i,    rho_i = pi(a_i | s_i) / mu(a_i | s_i),
    delta_i = r_{i+1} + gamma w^T phi(s_{i+1}, a_{i+1}) - w^T phi(s_i, a_i),

on a rollout of the behaviour policy mu, evaluating the target policy pi (a_{i+1} ~ pi). The
ratio multiplies the whole term, so it cannot go into (S3)'s rows [phi_i; gamma phi_{i+1}; r_{i+1}]
without a square root (docs/extending.md, "Pitfalls"). Instead the prompt gets d more rows,
rho_i phi_i, and the construction is (S3) with V's block that reads phi_i moved onto them: P*
still forms delta_i from the first 2d + 1 rows, V* now scales the update direction by rho_i.
Run: lsa-theory verify --module examples/offpolicy_td0.py --quick
"""

import numpy as np

import lsa_theory as lt
from lsa_theory import constructions


def widen(pair, d):
    """(S3)'s ``(P, V)`` (3d+2, 3d+2), float64 or exact (object), widened to the prompt
    ``[phi; gamma phi'; r; rho phi | 1; w]`` (4d+2, 4d+2): d zero rows and columns after the
    reward row, and V's ``w <- phi`` block moved to ``w <- rho phi``."""
    out = []
    for M in pair:
        M = np.insert(M, [2 * d + 1] * d, 0, axis=0)
        out.append(np.insert(M, [2 * d + 1] * d, 0, axis=1))
    P, V = out
    V[-d:, 2 * d + 1 : 3 * d + 1] = V[-d:, :d]
    V[-d:, :d] = 0
    return P, V


class OffPolicyTD0(constructions.Algorithm):
    name = "offpolicy_td0"
    claim = "(OP)"
    statement = "(S3) with V reading the rows rho_i phi_i = batch off-policy TD(0), per-decision ratios"
    block = "lsa"
    hyper = {"gamma": 0.5, "alpha": 0.2}
    hyper_ranges = {"gamma": (0.0, 0.99), "alpha": (0.05, 1.0)}
    scales = (1.0, -2.0)

    def sizes(self, quick):
        return {"S": 3, "A": 3, "d": 9, "n": 20} if quick else {"S": 9, "A": 4, "d": 36, "n": 20}

    def symbolic_sizes(self):
        return {"S": 2, "A": 2, "d": 2, "n": 2}

    def size_ranges(self):
        return {"S": (1, 4), "A": (1, 3), "d": (1, 5), "n": (1, 10)}

    def draw(self, sizes, rng):
        S, A, d, n = sizes["S"], sizes["A"], sizes["d"], sizes["n"]
        mdp = lt.random_mdp(S, A, 0.5, rng)
        phi = lt.random_features(S, A, d, rng)
        mu = rng.dirichlet(np.ones(A), size=S)  # behaviour policy, every action possible
        pi = rng.dirichlet(np.ones(A), size=S)  # target policy
        traj = lt.rollout(mdp, mu, n, rng)
        s, a = traj.states, traj.actions
        a_next = np.array([rng.choice(A, p=pi[x]) for x in s[1:]])  # a_{i+1} ~ pi(. | s_{i+1})
        return {
            "phi": phi[s[:-1], a[:-1]],  # (n, d)
            "phi_next": phi[s[1:], a_next],  # (n, d)
            "rho": pi[s[:-1], a[:-1]] / mu[s[:-1], a[:-1]],  # (n,): pi(a_i|s_i) / mu(a_i|s_i)
            "r": traj.rewards,
            "w": rng.uniform(-1.0, 1.0, d),
        }

    def columns(self, inst, hyper):
        phi, rho = inst["phi"], inst["rho"]
        X = np.concatenate(
            [phi.T, hyper["gamma"] * inst["phi_next"].T, inst["r"][None, :], (rho[:, None] * phi).T], axis=0
        )
        return X, np.concatenate([[1], inst["w"]])

    def naive(self, inst, hyper, depth):
        w, n = list(inst["w"]), len(inst["r"])
        gamma, alpha = hyper["gamma"], hyper["alpha"]
        for _ in range(depth):
            new = list(w)
            for i in range(n):
                q = sum(w[j] * inst["phi"][i][j] for j in range(len(w)))
                q_next = sum(w[j] * inst["phi_next"][i][j] for j in range(len(w)))
                delta = inst["r"][i] + gamma * q_next - q
                for j in range(len(w)):
                    new[j] = new[j] + alpha * inst["rho"][i] * delta * inst["phi"][i][j] / n
            w = new
        return np.array(w)

    def construction(self, sizes, hyper, c=1.0, depth=1):
        return [widen(constructions.sarsa(sizes["d"], hyper["alpha"], c), sizes["d"])] * depth

    def readout(self, out, sizes):
        return out[-sizes["d"] :, -1]
