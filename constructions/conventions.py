r"""Converters between our masked block (W2) on (R1) and (W1) prompts and the peers' parameterisations.

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
**[W] (InContextTD code).** The same layout and block as ours, THEORY (W1)/(W2): prompt ``Z``
(2d+1, n+1) with columns ``[phi_i; gamma phi_i'; r_i]`` and the query ``[phi(s); 0; 0]``; one layer
is ``Z + (alpha/n) P_W Z M Z^T Q_W Z`` (``P_W @ Z @ M @ Z.T @ Q_W @ Z``; their trainable
``LinearAttention`` has ``alpha = 1``, their hard-coded TD layers a step ``alpha``), so

.. math:: P = P_W, \qquad Q = \alpha\, Q_W,

with no transpose. Their hard-coded preconditioned layer builds ``Q_W[:2d, :2d] = B M_1``,
``B = [[C^T, 0], [0, 0]]``, ``M_1 = [[-I, I], [0, 0]]``, i.e. ``Q_W[:d, :2d] = [-C^T, C^T]``: their
``C`` is our ``C_l`` of (W4) (``td_precond(d, alpha, C)``), the transpose sits inside ``Q`` in both
codes. Their residual-gradient layer is ``Q_W[:2d, :2d] = M_2^T B M_1``, ``M_2 = -M_1``
(``= [[-C^T, C^T], [C^T, -C^T]]``; (W6) is ``C = I``). Their TD(lambda) mask ``M[i, j] = lmbd^(i-j)``
(``0 <= j <= i < n``, query row and column zero) is :func:`lsa_theory.trace_mask` itself, not its
transpose. Their discounted prediction is ``-Z_out[-1, -1]``, as in (W2).
Their ``mode='auto'`` applies one layer ``l`` times (our ``masked_lsa_stack(Z, [(P, Q)] * L)``),
``mode='sequential'`` has one pair per layer (a list of L pairs).

*Average reward* ((W7), their ``AVGREWTDLayer``). Prompt (2d+2, n+1), columns ``[phi_i; phi_i'; r_i;
0]``, query ``[phi(s); 0; 0; 0]`` (ours: :func:`~lsa_theory.constructions.average_reward_prompt`). Two
heads concatenated and mixed by ``W`` (2d+2, 4d+4), one shared ``Q_W`` and step ``alpha``:

.. math:: Z + \frac{\alpha}{n} W \begin{bmatrix} P_1 Z R M Z^\top Q_W Z \\ P_2 Z M Z^\top Q_W Z
          \end{bmatrix}, \qquad R = \mathrm{triu}(1)\,\mathrm{diag}(1/k) - I,

``P_1 = e_{2d} e_{2d}^T`` (the reward row), ``P_2 = e_D e_D^T`` (the last row), ``W`` adds both
heads' rows into the last row, ``Q_W[:d, :2d] = [-C^T, C^T]`` with **C random by default**
(``torch.randn(d, d)``). ``R M = -N`` with our running-mean mask ``N``
(:func:`~lsa_theory.constructions.numeric.running_mean_mask`): the running mean enters through
this mask on the reward row, as ``rbar_i - r_i``, and their last row accumulates
``-w^T (phi_k' - phi_k)`` on context columns and ``+w^T phi(s)`` on the query: **minus our value
row**. Their prediction is ``+Z_out[-1, -1]``. With ``S = diag(1, ..., 1, -1)`` (the value-row
flip, :func:`flip_value_row`) and ``W = [W_1, W_2]``, their layer on ``Z_W`` is ``S`` times our
two-head layer (:func:`~lsa_theory.constructions.algorithms.td_average_reward.average_reward_layer`)
on ``S Z_W`` with

.. math:: P_r = -S W_1 P_1 S, \qquad P_v = S W_2 P_2 S, \qquad Q_r = Q_v = \alpha\, S Q_W S;

their hard-coded heads give ``P_r = e_D e_{2d}^T``, ``P_v = e_D e_D^T``,
``Q[:d, :2d] = alpha [-C^T, C^T]``: our (W7) heads (``C = I``:
:func:`~lsa_theory.constructions.td_average_reward`). Their prompts start with a zero last row, so
``S Z_W = Z_W``: the same prompt, the same prediction.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lsa_theory.checks import as_float_array, check_int, check_real

__all__ = [
    "AHN_PREDICTION_SIGN",
    "VO_PREDICTION_SIGN",
    "from_ahn",
    "to_ahn",
    "from_von_oswald",
    "to_von_oswald",
    "INCONTEXTTD_PREDICTION_SIGN",
    "INCONTEXTTD_AVERAGE_REWARD_PREDICTION_SIGN",
    "from_incontexttd",
    "to_incontexttd",
    "flip_value_row",
    "from_incontexttd_average_reward",
    "to_incontexttd_average_reward",
]

#: [Ahn]'s prediction is this times ``E_out[-1, -1]`` (ours in (R2): ``+1``).
AHN_PREDICTION_SIGN = -1
#: [vO]'s prediction is this times ``E_out[-1, -1]`` (ours in (R2): ``+1``).
VO_PREDICTION_SIGN = -1
#: [W]'s discounted prediction (``pred_v``) is this times ``Z_out[-1, -1]`` (ours in (W2): ``-1``).
INCONTEXTTD_PREDICTION_SIGN = -1
#: [W]'s average-reward prediction (``AVGREWTDTransformer``) is this times ``Z_out[-1, -1]``
#: (ours in (W7): ``-1``; their value row is minus ours).
INCONTEXTTD_AVERAGE_REWARD_PREDICTION_SIGN = 1


def _square(A: Any, name: str, size: int | None = None) -> np.ndarray:
    A = as_float_array(A, name, ndim=2)
    if A.shape[0] != A.shape[1] or A.size == 0 or (size is not None and A.shape[0] != size):
        want = f"({size}, {size})" if size is not None else "a non-empty square matrix"
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
    if d < 1:
        raise ValueError(f"P: expected d + 1 >= 2 rows, got shape {P.shape}")
    Q = _square(Q, "Q", d + 1)
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


def from_incontexttd(P_w: Any, Q_w: Any, alpha: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Our ``(P, Q)`` (D, D) of one [W] layer ``Z + (alpha/n) P_W Z M Z^T Q_W Z`` (``P_W, Q_W``
    (D, D), D = 2d+1 for (W1) prompts; the mask ``M`` is the same in both codes):
    ``P = P_W``, ``Q = alpha Q_W`` (module docstring); ``alpha = 1`` for their trainable layer."""
    P_w = _square(P_w, "P_w")
    Q_w = _square(Q_w, "Q_w", P_w.shape[0])
    alpha = check_real(alpha, "alpha")
    return P_w.copy(), alpha * Q_w


def to_incontexttd(P: Any, Q: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(P_W, Q_W)`` (D, D) of [W]'s layer with ``alpha = 1`` equal to our ``(P, Q)`` (D, D): the
    same matrices (copies), the inverse of :func:`from_incontexttd` at ``alpha = 1``."""
    P = _square(P, "P")
    Q = _square(Q, "Q", P.shape[0])
    return P.copy(), Q.copy()


def flip_value_row(Z: Any) -> np.ndarray:
    """``S Z`` with ``S = diag(1, ..., 1, -1)``: a (W7) prompt or layer output (D, n+1) moved between
    [W]'s value row and ours (minus each other); its own inverse. A zero last row is unchanged."""
    Z = as_float_array(Z, "Z", ndim=2)
    if Z.shape[0] == 0:
        raise ValueError(f"Z: expected at least one row (the value row), got shape {Z.shape}")
    out = Z.copy()
    out[-1] = -out[-1]
    return out


def _flip(A: np.ndarray) -> np.ndarray:
    """``S A S``, ``S = diag(1, ..., 1, -1)``: negate the last row and the last column."""
    out = A.copy()
    out[-1, :] = -out[-1, :]
    out[:, -1] = -out[:, -1]
    return out


def from_incontexttd_average_reward(
    P1: Any, P2: Any, W: Any, Q_w: Any, alpha: float = 1.0
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Our (W7) heads ``((P_r, Q_r), (P_v, Q_v))`` (each (D, D), D = 2d+2) of [W]'s two-head
    average-reward layer ``(P1, P2, W, Q_W, alpha)`` (``P1, P2, Q_W`` (D, D), ``W`` (D, 2D)):
    ``P_r = -S W_1 P1 S``, ``P_v = S W_2 P2 S``, ``Q_r = Q_v = alpha S Q_W S`` (module
    docstring), for :func:`~lsa_theory.constructions.algorithms.td_average_reward.average_reward_layer`
    on ``flip_value_row(Z_W)``; its output is ``flip_value_row`` of theirs."""
    P1 = _square(P1, "P1")
    D = P1.shape[0]
    P2 = _square(P2, "P2", D)
    Q_w = _square(Q_w, "Q_w", D)
    W = as_float_array(W, "W", ndim=2)
    if W.shape != (D, 2 * D):
        raise ValueError(f"W: expected shape ({D}, {2 * D}), got {W.shape}")
    alpha = check_real(alpha, "alpha")
    Q = _flip(alpha * Q_w)
    return (_flip(-(W[:, :D] @ P1)), Q), (_flip(W[:, D:] @ P2), Q.copy())


def to_incontexttd_average_reward(heads: Any) -> dict[str, np.ndarray]:
    """One [W] average-reward layer ``{"P1", "P2", "W", "Q_w"}`` (``alpha = 1``; ``P1, P2, Q_w``
    (D, D), ``W`` (D, 2D)) equal to our (W7) heads ``((P_r, Q), (P_v, Q))``: ``P1 = P2 = I``,
    ``W = [-S P_r S, S P_v S]``, ``Q_w = S Q S`` (one of many factorisations); ValueError unless both
    heads share one ``Q`` (their layer has one)."""
    try:
        (P_r, Q_r), (P_v, Q_v) = heads
    except (TypeError, ValueError) as exc:
        raise ValueError("heads: expected ((P_r, Q_r), (P_v, Q_v))") from exc
    P_r = _square(P_r, "P_r")
    D = P_r.shape[0]
    P_v, Q_r, Q_v = (_square(A, name, D) for A, name in ((P_v, "P_v"), (Q_r, "Q_r"), (Q_v, "Q_v")))
    if not np.array_equal(Q_r, Q_v):
        raise ValueError("heads: [W]'s layer shares one Q between its heads; got Q_r != Q_v")
    eye = np.eye(D)
    return {"P1": eye, "P2": eye.copy(), "W": np.hstack([-_flip(P_r), _flip(P_v)]), "Q_w": _flip(Q_r)}
