r"""Feature maps of docs/theory.md §0: :math:`\phi : \mathcal S \times \mathcal A \to \mathbb R^d`.

``Q_w(s, a) = w^T phi(s, a)``. The [LL] default is dense random features, ``d = |S||A|``, entries
``U(-1, 1)``, resampled for every MDP; one-hot features (``d = |S||A|``, ``phi(s, a) = e_{sA+a}``)
are an option and change the optimal manifold (docs/theory.md (M4)).
"""

from __future__ import annotations

import numpy as np

from .checks import check_int

__all__ = ["random_features", "random_state_features", "FEATURE_KINDS"]

#: The feature kinds :func:`random_features` draws: i.i.d. uniform entries, or one-hot (tabular).
FEATURE_KINDS = ("uniform", "onehot")


def random_features(
    n_states: int,
    n_actions: int,
    d: int | None,
    rng: np.random.Generator | None = None,
    kind: str = "uniform",
) -> np.ndarray:
    """(S, A, d) feature table ``phi[s, a]``.

    ``kind="uniform"``: i.i.d. ``U(-1, 1)`` entries (needs ``rng``); ``d=None`` means ``S*A``.
    ``kind="onehot"``: ``phi[s, a] = e_{s*A + a}``; ``d`` must be ``None`` or ``S*A``.
    """
    S = check_int(n_states, "n_states")
    A = check_int(n_actions, "n_actions")
    d = S * A if d is None else check_int(d, "d")
    if kind == "uniform":
        if not isinstance(rng, np.random.Generator):
            raise ValueError("rng: uniform features need a numpy.random.Generator")
        return rng.uniform(-1.0, 1.0, size=(S, A, d))
    if kind == "onehot":
        if d != S * A:
            raise ValueError(f"d: one-hot features need d = S*A = {S * A}, got {d}")
        return np.eye(S * A).reshape(S, A, S * A)
    raise ValueError(f"kind: expected one of {FEATURE_KINDS}, got {kind!r}")


def random_state_features(n_states: int, d: int, rng: np.random.Generator) -> np.ndarray:
    """(S, d) state feature table ``phi[s]`` with ``U(-1, 1)`` entries, for TD(0) of §5."""
    return random_features(n_states, 1, check_int(d, "d"), rng, kind="uniform")[:, 0, :]
