"""Batch n-step SARSA (k-step returns), declared outside the package (docs/extending.md).

    w' = w + (alpha/n) sum_i delta_i phi_i,
    delta_i = G_i + gamma^k w^T phi_{i+k} - w^T phi_i,    G_i = sum_{j<k} gamma^j r_{i+j+1}.

With the context rows x_i = [phi_i; gamma^k phi_{i+k}; G_i] this is the (S3) layout unchanged
(discounted next features, then the reward row), so the SARSA construction (S3) computes it: only
the prompt and the naive loop are new. The step count k is a size, and `columns` / `naive` never
receive the sizes: k travels in the shape of the instance's rewards, ``r`` (n, k).
Run: lsa-theory verify --module examples/nstep_td.py --quick
"""

import numpy as np

import lsa_theory as lt
from lsa_theory import constructions


class NStepSarsa(constructions.Algorithm):
    name = "nstep_sarsa"
    claim = "(NS)"
    statement = "(c P*, V*/c) of (S3) on k-step returns = batch k-step SARSA"
    block = "lsa"
    hyper = {"gamma": 0.5, "alpha": 0.2}
    hyper_ranges = {"gamma": (0.0, 0.99), "alpha": (0.05, 2.0)}
    scales = (1.0, -2.0)
    depths = (1, 2)

    def sizes(self, quick):
        return (
            {"S": 3, "A": 3, "d": 9, "n": 20, "k": 3} if quick else {"S": 9, "A": 4, "d": 36, "n": 20, "k": 4}
        )

    def symbolic_sizes(self):
        return {"S": 2, "A": 2, "d": 2, "n": 2, "k": 2}

    def size_ranges(self):
        return {"S": (1, 4), "A": (1, 3), "d": (1, 5), "n": (1, 10), "k": (1, 4)}

    def draw(self, sizes, rng):
        S, A, d, n, k = sizes["S"], sizes["A"], sizes["d"], sizes["n"], sizes["k"]
        mdp = lt.random_mdp(S, A, 0.5, rng)
        phi = lt.random_features(S, A, d, rng)
        traj = lt.rollout(mdp, lt.uniform_policy(mdp), n + k - 1, rng)  # n windows of k steps
        s, a, r = traj.states, traj.actions, traj.rewards
        return {
            "phi": phi[s[:n], a[:n]],  # (n, d): phi_i
            "phi_k": phi[s[k : n + k], a[k : n + k]],  # (n, d): phi_{i+k}
            "r": np.stack([r[i : i + k] for i in range(n)]),  # (n, k): r_{i+1}, ..., r_{i+k}; k = shape[1]
            "w": rng.uniform(-1.0, 1.0, d),
        }

    def columns(self, inst, hyper):
        k = inst["r"].shape[1]  # the sizes are not passed: k comes from the shape
        gamma = hyper["gamma"]
        G = inst["r"] @ np.array([gamma**j for j in range(k)])  # integer powers: exact in sympy
        X = np.concatenate([inst["phi"].T, gamma**k * inst["phi_k"].T, G[None, :]], axis=0)
        return X, np.concatenate([[1], inst["w"]])

    def naive(self, inst, hyper, depth):
        w, (n, k) = list(inst["w"]), inst["r"].shape
        gamma, alpha = hyper["gamma"], hyper["alpha"]
        for _ in range(depth):
            new = list(w)
            for i in range(n):
                G, g = 0, 1
                for j in range(k):
                    G += g * inst["r"][i][j]
                    g = g * gamma  # gamma^(j+1); after the loop gamma^k
                q = sum(w[j] * inst["phi"][i][j] for j in range(len(w)))
                q_k = sum(w[j] * inst["phi_k"][i][j] for j in range(len(w)))
                delta = G + g * q_k - q
                for j in range(len(w)):
                    new[j] = new[j] + alpha * delta * inst["phi"][i][j] / n
            w = new
        return np.array(w)

    def construction(self, sizes, hyper, c=1.0, depth=1):
        return [constructions.sarsa(sizes["d"], hyper["alpha"], c)] * depth

    def readout(self, out, sizes):
        return out[-sizes["d"] :, -1]
