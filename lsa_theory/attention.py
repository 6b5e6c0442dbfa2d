r"""Multi-head and nonlinear attention: the block (W2) with ``H`` heads and an attention function.

One layer with heads ``(P_h, Q_h)``, ``h = 1..H``, mask ``M`` and attention function ``sigma``:

.. math:: TF(Z) = Z + \sum_{h=1}^{H} P_h\, Z\, M\, \sigma\big(Z^\top Q_h Z\big),

``Z`` (..., D, N) with ``N = n + n_q`` columns, the last ``n_q`` of them queries; ``P_h``, ``Q_h``
(..., D, D). The score ``S_h = Z^T Q_h Z`` (N, N) has entry ``S[j, k] = z_j^T Q_h z_k``: key ``j``
against output column ``k``. ``sigma`` is one of :data:`ATTENTIONS`:

- ``"linear"``: ``sigma(S) = S / n``. With one head and ``M = diag(I_n, 0)`` this is (W2) exactly,
  ``Z + (1/n) P Z M Z^T Q Z`` (:func:`lsa_theory.lsa.masked_lsa`); with ``M = I_{n+1}`` and ``(P, Q) =
  (V, P)`` of [LL] it is (L1) (:func:`lsa_theory.lsa.lsa_block`; the letters swap roles, THEORY §5).
- elementwise ``"relu"``, ``"tanh"``, ``"elu"``, ``"selu"``, ``"leaky_relu"``: ``sigma(S) = f(S) / n``
  entry by entry (the activations of [W]'s code, ``experiment/activation.py``, with torch's default
  constants: ``leaky_relu`` slope 0.01, ``elu`` alpha 1, ``selu`` its fixed constants).
- ``"softmax"``: for each output column ``k`` the weights ``softmax_j(S[j, k])`` over the *admitted
  keys* ``j`` (the columns of ``M`` that are not identically zero: the ``n`` context columns for
  ``diag(I_n, 0)`` and for the (W5) trace mask), zero on the other keys; no ``1/n`` (the weights sum to
  one). This is the usual softmax attention over keys. [W]'s code normalises ``Softmax(dim=1)`` of the
  full (N, N) score, i.e. over the *output* index ``k`` for each key; that is a different function and
  is not offered here.

``mask=None`` is ``diag(I_n, 0_{n_q})``. Unlike :func:`lsa_theory.lsa.masked_lsa`, any (N, N) mask is
accepted, including one that admits the query columns as keys (``np.eye(N)`` gives (L1)); the
normalisation is always ``1/n`` with ``n = N - n_q``. Heads add; a stack applies layers in order, each
with its own heads (pass the same pairs in every layer for shared weights, [W]'s "auto" mode).
numpy in -> numpy out, torch in -> torch out (differentiable).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from . import backend as B
from .checks import check_finite, check_int
from .lsa import _check_block_args, _in_layer, _nonempty_list

__all__ = ["ATTENTIONS", "attention_layer", "attention_stack"]

#: The attention functions ``sigma`` of :func:`attention_layer`.
ATTENTIONS = ("linear", "softmax", "relu", "tanh", "elu", "selu", "leaky_relu")

# torch.nn.SELU's constants.
_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946
_LEAKY_SLOPE = 0.01


def _check_attention(attention: Any) -> str:
    if not isinstance(attention, str) or attention not in ATTENTIONS:
        raise ValueError(f"attention: expected one of {ATTENTIONS}, got {attention!r}")
    return attention


def _elementwise(S: Any, attention: str) -> Any:
    """``f(S)`` entry by entry for the elementwise attentions (numpy or torch)."""
    if B.is_torch(S):
        import torch.nn.functional as tf

        f = {
            "relu": tf.relu,
            "tanh": lambda x: x.tanh(),
            "elu": tf.elu,
            "selu": tf.selu,
            "leaky_relu": lambda x: tf.leaky_relu(x, _LEAKY_SLOPE),
        }[attention]
        return f(S)
    if attention == "relu":
        return np.maximum(S, 0.0)
    if attention == "tanh":
        return np.tanh(S)
    if attention == "leaky_relu":
        return np.where(S > 0, S, _LEAKY_SLOPE * S)
    neg = np.expm1(np.minimum(S, 0.0))
    if attention == "elu":
        return np.where(S > 0, S, neg)
    return _SELU_SCALE * np.where(S > 0, S, _SELU_ALPHA * neg)


def _softmax_keys(S: Any, admitted: np.ndarray) -> Any:
    """``softmax_j S[..., j, k]`` over the admitted keys ``j`` (bool (N,)), zero elsewhere."""
    if B.is_torch(S):
        import torch

        keep = torch.as_tensor(admitted, device=S.device)[:, None]
        W = torch.softmax(S.masked_fill(~keep, float("-inf")), dim=-2)
        return W.masked_fill(~keep, 0.0)
    Sa = np.where(admitted[:, None], S, -np.inf)
    E = np.exp(Sa - Sa.max(axis=-2, keepdims=True))
    return E / E.sum(axis=-2, keepdims=True)


def _check_mask(mask: Any, Z: Any, n: int) -> tuple[Any, np.ndarray]:
    N = Z.shape[-1]
    if mask is None:
        mask = np.diag(np.r_[np.ones(n), np.zeros(N - n)])
    mask = B.as_array(mask, "mask", ref=Z)
    if mask.ndim != 2 or tuple(mask.shape) != (N, N):
        raise ValueError(
            f"mask: expected shape ({N}, {N}) to match the {N} columns of Z, got {tuple(mask.shape)}"
        )
    Mnp = mask.detach().cpu().numpy() if B.is_torch(mask) else mask
    admitted = (Mnp != 0).any(axis=0)
    if not admitted.any():
        raise ValueError("mask: admits no key (every column is zero)")
    return mask, admitted


def _check_heads(heads: Any, where: str) -> list:
    heads = _nonempty_list(heads, where, "(P, Q) head pairs", "(P, Q) head")
    for h, pq in enumerate(heads):
        try:
            ok = len(pq) == 2
        except TypeError:
            ok = False
        if not ok:
            raise ValueError(f"{where}[{h}]: expected a (P, Q) pair, got {type(pq).__name__}")
    return heads


def attention_layer(
    Z: Any, heads: Sequence[tuple[Any, Any]], attention: str = "linear", n_queries: int = 1, mask: Any = None
) -> Any:
    r"""One layer ``Z + sum_h P_h Z M sigma(Z^T Q_h Z)`` (module docstring); ``Z`` (..., D, N),
    ``heads = [(P_1, Q_1), ...]`` with ``P_h``, ``Q_h`` (..., D, D), ``mask`` (N, N) or None for
    ``diag(I_n, 0_{n_q})``; returns (..., D, N)."""
    attention = _check_attention(attention)
    n_queries = check_int(n_queries, "n_queries", minimum=0)
    heads = _check_heads(heads, "heads")
    Z = B.as_array(Z, "Z")
    if Z.ndim < 2:
        raise ValueError(f"Z: expected shape (..., D, N), got {tuple(Z.shape)}")
    out = Z
    admitted = M = None
    for h, (P, Q) in enumerate(heads):
        try:
            Z, m, n = _check_block_args(Z, {"P": P, "Q": Q}, n_queries=n_queries, name="Z")
        except ValueError as exc:
            if str(exc)[:3] in ("P: ", "Q: "):
                raise ValueError(f"heads[{h}].{exc}") from exc
            raise
        if M is None:
            M, admitted = _check_mask(mask, Z, n)
        S = Z.mT @ (m["Q"] @ Z)
        if attention == "softmax":
            W = _softmax_keys(S, admitted)
        elif attention == "linear":
            W = S / n
        else:
            W = _elementwise(S, attention) / n
        out = out + m["P"] @ (Z @ (M @ W))
    if not B.is_torch(out):
        check_finite(out, "attention_layer output")
    return out


def attention_stack(
    Z: Any,
    layers: Sequence[Sequence[tuple[Any, Any]]],
    attention: str = "linear",
    n_queries: int = 1,
    mask: Any = None,
) -> Any:
    """``L`` layers of :func:`attention_layer`, ``layers = [heads_1, ..., heads_L]`` (each a list of
    ``(P, Q)`` pairs), one ``attention`` and one ``mask`` for all; returns (..., D, N)."""
    layers = _nonempty_list(layers, "layers", "layers (lists of heads)", "layer")
    for i, heads in enumerate(layers):
        with _in_layer(i):
            try:
                Z = attention_layer(Z, heads, attention=attention, n_queries=n_queries, mask=mask)
            except ValueError as exc:
                if str(exc).startswith("heads"):
                    raise ValueError(f"layers[{i}].{exc}") from exc
                raise
    return Z
