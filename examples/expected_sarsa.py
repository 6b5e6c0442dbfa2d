"""Expected SARSA under a fixed target policy, declared outside the package (docs/extending.md).

    w' = w + (alpha/n) sum_i delta_i phi_i,
    delta_i = r_{i+1} + gamma sum_b pi(b | s_{i+1}) w^T phi(s_{i+1}, b) - w^T phi_i.

With the context rows x_i = [phi_i; gamma phibar_i; r_{i+1}], phibar_i = sum_b pi(b|s_{i+1})
phi(s_{i+1}, b), the SARSA construction (S3) computes it: only the prompt and the naive loop change.
Run: lsa-theory verify --module examples/expected_sarsa.py --quick
"""

import numpy as np

import lsa_theory as lt
from lsa_theory import constructions


class ExpectedSarsa(constructions.Algorithm):
    name = "expected_sarsa"
    claim = "(ES)"
    statement = "(c P*, V*/c) of (S3) on expected next features = batch expected SARSA"
    block = "lsa"
    hyper = {"gamma": 0.5, "alpha": 0.2}
    hyper_ranges = {"gamma": (0.0, 0.99), "alpha": (0.05, 2.0)}
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
        target = rng.dirichlet(np.ones(A), size=S)  # the fixed target policy pi(b|s)
        traj = lt.rollout(mdp, lt.uniform_policy(mdp), n, rng)  # any behaviour policy
        s, a = traj.states, traj.actions
        return {
            "phi": phi[s[:-1], a[:-1]],  # (n, d)
            "phi_all": phi[s[1:]],  # (n, A, d): phi(s_{i+1}, b) for every b
            "pi": target[s[1:]],  # (n, A): pi(b | s_{i+1})
            "r": traj.rewards,
            "w": rng.uniform(-1.0, 1.0, d),
        }

    def columns(self, inst, hyper):
        phibar = np.einsum("nb,nbd->nd", inst["pi"], inst["phi_all"])  # works on sympy objects too
        X = np.concatenate([inst["phi"].T, hyper["gamma"] * phibar.T, inst["r"][None, :]], axis=0)
        return X, np.concatenate([[1], inst["w"]])

    def naive(self, inst, hyper, depth):
        w, n = list(inst["w"]), len(inst["r"])
        gamma, alpha = hyper["gamma"], hyper["alpha"]
        for _ in range(depth):
            new = list(w)
            for i in range(n):
                q = sum(w[j] * inst["phi"][i][j] for j in range(len(w)))
                q_next = 0
                for b in range(len(inst["pi"][i])):
                    q_next += inst["pi"][i][b] * sum(w[j] * inst["phi_all"][i][b][j] for j in range(len(w)))
                delta = inst["r"][i] + gamma * q_next - q
                for j in range(len(w)):
                    new[j] = new[j] + alpha * delta * inst["phi"][i][j] / n
            w = new
        return np.array(w)

    def construction(self, sizes, hyper, c=1.0, depth=1):
        return [constructions.sarsa(sizes["d"], hyper["alpha"], c)] * depth

    def readout(self, out, sizes):
        return out[-sizes["d"] :, -1]
