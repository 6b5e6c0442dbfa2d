r"""Converters between our masked block (W2) on (R1) prompts and the peers' parameterisations.

Ours, THEORY (W2)/(R1): the prompt ``E`` (d+1, N+1) holds the tokens as *columns*, and one layer is
``E_out = E + (1/N) P E M E^T Q E``, ``M = diag(I_N, 0)``, ``P, Q`` (d+1, d+1). (R2) reads the
prediction as ``+E_out[-1, -1]`` (``P = e_{d+1} e_{d+1}^T``, ``Q = [[eta I, 0], [0, 0]]``); (R3) reads
``-E_L[-1, -1]``.

**[Ahn] (LinearTransformer code).** ``Z = E^T`` (N+1, d+1) holds the tokens as *rows*; a head has
``P_Ahn, Q_Ahn`` (d, d), embedded as ``P_full = [[P_Ahn, 0], [0, 1]]``, ``Q_full = [[Q_Ahn, 0], [0,
0]]``, and adds ``(1/N) Attn A K`` with ``Attn[n, m] = z_n^T Q_full z_m``, ``K[m] = P_full z_m`` and
``A = diag(I_N, 0)``. Token ``n`` gains ``(1/N) sum_{m<N} P_full z_m z_m^T Q_full^T z_n``, i.e. in
columns ``(1/N) P_full E M E^T Q_full^T E``: the same block with

.. math:: P = P_{\rm full}, \qquad Q = Q_{\rm full}^\top \quad (Q_{11} = Q_{\rm Ahn}^\top).

Their prediction is ``-Z_out[N, d] = -E_out[-1, -1]`` (their loss is ``(Z_out[N, d] + y_q)^2``).
Their Lemma-1 weights ``Q_Ahn = -A`` are therefore our ``precond_gd([A^T])`` ((R3) with
``A_l = A^T``), not ``precond_gd([A])``; the two differ whenever ``A`` is not symmetric.
Heads add: a layer with heads ``h`` is ``E + sum_h (1/N) P_h E M E^T Q_h E``.

**[vO] (the paper's Prop. 1 form).** Tokens as columns ``e_j``; one head adds ``P_vO sum_{i<=N}
(W_V e_i)(W_K e_i)^T (W_Q e_j)`` to ``e_j`` with ``W_K, W_Q, W_V, P_vO`` (d+1, d+1); the ``1/N`` is
inside ``P_vO`` (their GD weights have ``P_vO = (eta/N) I``). In columns this is
``P_vO W_V E M E^T W_K^T W_Q E``, so

.. math:: P = N\, P_{\rm vO} W_V, \qquad Q = W_K^\top W_Q .

Their prediction is ``-E_out[-1, -1]`` (the query's y-entry receives ``-Delta y``); their GD weights
``W_K = W_Q = [[I, 0], [0, 0]]``, ``W_V = [[0, 0], [W_0, -1]]``, ``P_vO = (eta/N) I`` with ``W_0 = 0``
are our ``P = -eta e_{d+1} e_{d+1}^T``, ``Q = [[I, 0], [0, 0]]``: the same product ``M = p_y Q11^T =
-eta I`` as (R2)'s ``(P, Q)`` with the opposite sign, read with the opposite sign.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lsa_theory.checks import as_float_array, check_int

__all__ = [
    "AHN_PREDICTION_SIGN",
    "VO_PREDICTION_SIGN",
    "from_ahn",
    "to_ahn",
    "from_von_oswald",
    "to_von_oswald",
]

#: [Ahn]'s prediction is this times ``E_out[-1, -1]`` (ours in (R2): ``+1``).
AHN_PREDICTION_SIGN = -1
#: [vO]'s prediction is this times ``E_out[-1, -1]`` (ours in (R2): ``+1``).
VO_PREDICTION_SIGN = -1


def _square(A: Any, name: str, size: int | None = None) -> np.ndarray:
    A = as_float_array(A, name, ndim=2)
    if A.shape[0] != A.shape[1] or (size is not None and A.shape[0] != size):
        want = f"({size}, {size})" if size is not None else "a square matrix"
        raise ValueError(f"{name}: expected {want}, got shape {A.shape}")
    return A


def from_ahn(P_ahn: Any, Q_ahn: Any) -> tuple[np.ndarray, np.ndarray]:
    """Our ``(P, Q)`` (d+1, d+1) of one [Ahn] head ``(P_Ahn, Q_Ahn)`` (d, d):
    ``P = [[P_Ahn, 0], [0, 1]]``, ``Q = [[Q_Ahn^T, 0], [0, 0]]`` (module docstring)."""
    P_ahn = _square(P_ahn, "P_ahn")
    d = P_ahn.shape[0]
    Q_ahn = _square(Q_ahn, "Q_ahn", d)
    P = np.zeros((d + 1, d + 1))
    P[:d, :d] = P_ahn
    P[d, d] = 1.0
    Q = np.zeros((d + 1, d + 1))
    Q[:d, :d] = Q_ahn.T
    return P, Q


def to_ahn(P: Any, Q: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(P_Ahn, Q_Ahn)`` (d, d) of our ``(P, Q)`` (d+1, d+1), the inverse of :func:`from_ahn`;
    ValueError unless ``(P, Q)`` lies in [Ahn]'s family (``P[d, d] = 1``, every other entry of the
    last row and column of ``P`` and of ``Q`` exactly zero)."""
    P = _square(P, "P")
    d = P.shape[0] - 1
    Q = _square(Q, "Q", d + 1)
    if d < 1:
        raise ValueError("P: expected d + 1 >= 2 rows")
    edge = np.concatenate([P[d, :d], P[:d, d], Q[d, :], Q[:, d]])
    if P[d, d] != 1.0 or np.any(edge != 0.0):
        raise ValueError(
            "(P, Q): not in [Ahn]'s family; need P[d, d] = 1 and zero last row/column otherwise "
            "(P's and all of Q's)"
        )
    return P[:d, :d].copy(), Q[:d, :d].T.copy()


def from_von_oswald(W_K: Any, W_Q: Any, W_V: Any, P_vo: Any, N: int) -> tuple[np.ndarray, np.ndarray]:
    """Our ``(P, Q)`` (d+1, d+1) of one [vO] head (all (d+1, d+1)) on prompts with ``N`` context
    tokens: ``P = N P_vO W_V``, ``Q = W_K^T W_Q`` (module docstring)."""
    W_K = _square(W_K, "W_K")
    D = W_K.shape[0]
    W_Q, W_V, P_vo = (_square(A, name, D) for A, name in ((W_Q, "W_Q"), (W_V, "W_V"), (P_vo, "P_vo")))
    N = check_int(N, "N")
    return N * (P_vo @ W_V), W_K.T @ W_Q


def to_von_oswald(P: Any, Q: Any, N: int) -> dict[str, np.ndarray]:
    """One [vO] head ``{"W_K", "W_Q", "W_V", "P_vo"}`` (each (d+1, d+1)) with our ``(P, Q)``:
    ``W_K = I``, ``W_Q = Q``, ``W_V = P``, ``P_vo = I / N`` (one of many factorisations; the
    forward pass depends only on ``N P_vO W_V`` and ``W_K^T W_Q``)."""
    P = _square(P, "P")
    Q = _square(Q, "Q", P.shape[0])
    N = check_int(N, "N")
    eye = np.eye(P.shape[0])
    return {"W_K": eye, "W_Q": Q.copy(), "W_V": P.copy(), "P_vo": eye / N}
