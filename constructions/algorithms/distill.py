r"""Algorithm Distillation, exactly: the masked episode-selecting stack (AD1) of docs/theory.md §11.

The source (AD0) is episodic batch SARSA with resets (:func:`lsa_theory.distill.source_history`):
``w_{k+1} = w_k + (alpha/H) sum_{i in episode k} delta_i(w_k) phi_i``. Its history ``h_K`` is the
(H) columns of episodes 1..K, and the prompt is ``H(h_K; w_0)``: context columns ``[x_i; 0_{d+1}]``,
parameter column ``[0_{2d+1}; 1; w_0]``, ``D = 3d + 2``, ``K H + 1`` columns.

(AD1) Layer k (k = 1..K) is (L1) with the column mask of episode k,

.. math:: H \leftarrow H + \tfrac1H (V H) M_k (H^\top P H), \qquad
          M_k = \mathrm{diag}(1[\text{column in episode } k], 0),

and the (S3) weights ``(c P*, V*/c)``: the context columns and the constant row never change
((S5)'s argument) and layer k's sum runs over episode k only, with the current ``w_k`` in the
parameter column, so the readout after L layers is the source's ``w_{L+1}`` (for every ``L <= K``;
``L = K`` is THEORY's statement). The parameter column is masked too, so (L2)'s cubic term is absent.
:data:`ALGORITHM` declares it to the registry: the naive loop is
:func:`lsa_theory.distill.naive_source` (episode after episode, explicit loops), the stack
:func:`lsa_theory.distill.masked_episode_stack` (one stack for floats and exact entries).
"""

from __future__ import annotations

import numpy as np

import lsa_theory as lt
from lsa_theory import distill as ad

from .. import numeric
from ..registry import Algorithm
from .sarsa import sarsa_columns_of

__all__ = ["ad_instance", "flat", "EpisodeMaskedSarsa", "ALGORITHM"]


def ad_instance(
    S: int, A: int, d: int, H: int, K: int, rng: np.random.Generator, epsilon: float = 0.1
) -> dict:
    """A real source history (AD0): a random [LL]-family MDP (S x A, gamma 0.5), fresh features
    (S, A, d), ``w_0 ~ U(-1, 1)^d`` and K episodes of H steps of the source (alpha 0.2, epsilon-greedy
    with ``epsilon``). Returns ``phi``, ``phi_next`` (K, H, d) (undiscounted ``phi^+``), ``r`` (K, H)
    and ``w`` (= ``w_0``, d): the leading axis is the episode index."""
    mdp = lt.random_mdp(S, A, 0.5, rng)
    phi = lt.random_features(S, A, d, rng)
    w0 = rng.uniform(-1.0, 1.0, d)
    h = ad.source_history(mdp, phi, w0, H=H, K=K, alpha=0.2, epsilon=epsilon, rng=rng)
    f = h.X[:d].T.reshape(K, H, d)
    g = (h.X[d : 2 * d] / mdp.gamma).T.reshape(K, H, d)
    return {"phi": f, "phi_next": g, "r": h.X[2 * d].reshape(K, H), "w": w0}


def flat(inst) -> dict:
    """The instance with its episodes laid end to end: ``phi``, ``phi_next`` (K H, d), ``r`` (K H,)."""
    phi, phi_next, r = (np.asarray(inst[k]) for k in ("phi", "phi_next", "r"))
    K, H, d = phi.shape
    return {
        "phi": phi.reshape(K * H, d),
        "phi_next": phi_next.reshape(K * H, d),
        "r": r.reshape(K * H),
        "w": inst["w"],
    }


def _shape(inst, depth: int) -> tuple[int, int]:
    """``(K, H)`` of an instance, with ``depth <= K`` checked."""
    K, H = np.shape(inst["phi"])[:2]
    if depth > K:
        raise ValueError(f"depth: {depth} layers need at least {depth} episodes, got K = {K}")
    return K, H


class EpisodeMaskedSarsa(Algorithm):
    """(AD1): L masked (L1) layers with the (S3) weights, layer k reading episode k only, output the
    source's ``w_{L+1}`` from ``H(h_K; w_0)`` (``L <= K``; sizes ``H`` steps per episode, ``K``
    episodes)."""

    name = "ad_masked_sarsa"
    claim = "(AD1)"
    statement = "L episode-masked (S3) layers on H(h_K; w_0) = the source's w_{L+1}"
    hyper = {"gamma": 0.5, "alpha": 0.2}
    hyper_ranges = {"gamma": (0.0, 0.99), "alpha": (0.05, 1.0)}
    scales = (1.0, -3.7)
    depths = (1, 2, 3)
    symbolic_depths = (1, 2)
    bilinear = False  # masked layers: the (M2) objective of one pooled Sigma does not apply

    def sizes(self, quick):
        return (
            {"S": 3, "A": 2, "d": 6, "H": 5, "K": 3} if quick else {"S": 4, "A": 2, "d": 8, "H": 10, "K": 6}
        )

    def symbolic_sizes(self):
        return {"S": 2, "A": 1, "d": 2, "H": 2, "K": 2}

    def size_ranges(self):
        return {"S": (1, 4), "A": (1, 3), "d": (1, 6), "H": (1, 8), "K": (3, 6)}

    def draw(self, sizes, rng):
        return ad_instance(sizes["S"], sizes["A"], sizes["d"], sizes["H"], sizes["K"], rng)

    def columns(self, inst, hyper):
        return sarsa_columns_of(flat(inst), hyper["gamma"]), np.concatenate([[1], np.asarray(inst["w"])])

    def mask(self, sizes, hyper):
        return ad.episode_masks(sizes["K"], sizes["H"])

    def stack(self, Z, layers, mask):
        return ad.masked_episode_stack(Z, layers, mask)

    def naive(self, inst, hyper, depth):
        K, H = _shape(inst, depth)
        f = flat(inst)
        return ad.naive_source(
            f["phi"], f["phi_next"], f["r"], f["w"], hyper["gamma"], hyper["alpha"], H, depth
        )

    def teacher_readout(self, inst, hyper, depth):
        K, H = _shape(inst, depth)
        X = sarsa_columns_of(flat(inst), hyper["gamma"]).astype(np.float64)
        return ad.replay_source(X, np.asarray(inst["w"], dtype=np.float64), hyper["alpha"], H)[depth]

    def construction(self, sizes, hyper, c=1.0, depth=1):
        if depth > sizes["K"]:
            raise ValueError(f"depth: {depth} layers need at least {depth} episodes, got K = {sizes['K']}")
        return [numeric.sarsa(sizes["d"], hyper["alpha"], c)] * depth

    def readout(self, out, sizes):
        return out[-sizes["d"] :, -1]


ALGORITHM = EpisodeMaskedSarsa()
