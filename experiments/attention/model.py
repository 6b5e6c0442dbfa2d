r"""The model and metrics of :mod:`lsa_theory.experiments.attention`: one (L1)-type layer with ``H``
heads and an attention function, trained by teacher mimicking (M1) on RAW (H) prompts.

Data. :func:`teacher_prompts`: the frames of :func:`lsa_theory.dynamics.teacher_dataset` (the loop
(S6) driven by the exact teacher (S2)) with their raw prompts ``H_f`` (F, D, n+1) of (H) beside the
(L2) statistics ``(Sigma_f, wt_f, y_f)``: the same generator, the same draws, the same frames
(``keep_prompts=True`` keeps the context columns; the prompts are rebuilt from them and ``w_f``).
(L2) is exact for (L1) only; a nonlinear block needs the raw prompts.

Model. Heads ``(P_h, V_h)``, ``h = 1..H``, each a full ``D x D`` pair in [LL]'s letters (``P`` the
key-query matrix, ``V`` the value matrix), and an attention function ``sigma`` of
:data:`lsa_theory.ATTENTIONS`:

.. math:: TF_\theta(H) = \mathrm{readout}_d\Big(H + \sum_h V_h H M \sigma(H^\top P_h H)\Big),
          \qquad M = I_{n+1},

computed by :func:`lsa_theory.attention_layer` with heads ``(V_h, P_h)`` (its ``(P, Q)``: the
letters swap roles) and ``mask = eye(n+1)``; the readout is the last column's ``w`` rows
(:func:`lsa_theory.readout`, ``k = d``). For ``sigma = linear`` and one head this is (L1), whose
readout is (L2) (:func:`lsa_theory.tf_from_statistics`); ``softmax`` normalises over the ``n+1``
admitted keys (the context columns and the query column), without ``1/n``.

Loss (M1): ``L = (1/2F) sum_f ||TF(H_f) - w_teacher,f||^2``, residual formed as
``(TF - w) - y``; Adam (torch, float64, full batch) with a geometric learning-rate decay; the steps,
rates and ``eps`` are the :class:`~lsa_theory.experiments.attention.AttentionConfig`'s.

Metrics (:func:`run_metrics`): the held-out teacher-matching error on fresh MDPs with fresh
features, ``heldout_err = sqrt(mean ||TF - w_teacher||^2 / mean ||w_teacher - w||^2)`` (as
:func:`lsa_theory.experiments.training.heldout_error`); ``update_corr``, the Pearson correlation of
the block's update ``TF - w`` with the teacher's ``y`` over every held-out entry; ``s3_share``, the
share of ``sum_h ||P_h||^2 + ||V_h||^2`` on the support of (S3) (``s3_share_random`` is that share
for i.i.d. entries: the support's fraction of the entries); for linear and relu heads ``op_cos``,
the cosine of the effective (M2) operator ``sum_h P12_h^T (x) Vbar21_h`` with (S3)'s ``P12*^T (x)
Vbar21*`` (invariant under each head's scaling orbit; for relu it is the operator of the block's
linear half, ``relu(x) = x/2 + |x|/2``: opposite heads ``(P, V), (-P, -V)`` cancel the other
half); for softmax heads ``attn_entropy``, the entropy of the query column's attention weights
over the ``n+1`` keys divided by ``log(n+1)``, averaged over held-out frames and heads (1: uniform
weights, the regime where softmax is linear to first order; near 0: one key); and for one linear
head the training experiment's :func:`lsa_theory.experiments.training.structure_metrics`
(``cos``, ``orbit_dist_rel``, ``manifold_dist``, ...).
"""

from __future__ import annotations

import time

import numpy as np
import torch

import lsa_theory as lt
from lsa_theory import dynamics as dy

from ..training import construction_pv, structure_metrics

__all__ = [
    "teacher_prompts",
    "block_increment",
    "heldout_metrics",
    "s3_share",
    "operator_cos",
    "attention_entropy",
    "init_heads",
    "train_heads",
    "run_metrics",
]


def teacher_prompts(spec: dy.TeacherSpec, rng: np.random.Generator) -> tuple[dy.TeacherDataset, np.ndarray]:
    """``(ds, H)``: the teacher frames of ``spec`` (:func:`lsa_theory.dynamics.teacher_dataset` with
    ``rng``, ``keep_prompts=True``: the same frames as without) and their raw (H) prompts ``H``
    (F, D, n+1), float64. SARSA only (``spec.layout.d_pi == 0``)."""
    if not isinstance(spec, dy.TeacherSpec):
        raise ValueError(f"spec: expected a TeacherSpec, got {type(spec).__name__}")
    if spec.layout.d_pi != 0:
        raise ValueError(f"spec: the attention study is SARSA's (d_pi = 0), got d_pi = {spec.layout.d_pi}")
    ds = dy.teacher_dataset(spec, rng, keep_prompts=True)
    return ds, np.asarray(ds.prompts(), dtype=float)


def _check_heads(heads, D: int) -> list:
    if not heads:
        raise ValueError("heads: need at least one (P, V) pair")
    for h, (P, V) in enumerate(heads):
        for name, M in (("P", P), ("V", V)):
            if tuple(M.shape) != (D, D):
                raise ValueError(f"heads[{h}].{name}: expected shape ({D}, {D}), got {tuple(M.shape)}")
    return list(heads)


def block_increment(H, heads, attention: str, d: int):
    """``TF_theta(H) - w`` (..., d) of the block (module docstring) on raw prompts ``H`` (..., D, n+1),
    ``heads = [(P_1, V_1), ...]`` in [LL]'s letters (each (D, D)); numpy or torch (differentiable)."""
    D, N = H.shape[-2], H.shape[-1]
    heads = _check_heads(heads, D)
    mask = np.eye(N) if not isinstance(H, torch.Tensor) else torch.eye(N, dtype=H.dtype)
    out = lt.attention_layer(H, [(V, P) for P, V in heads], attention, n_queries=1, mask=mask)
    return lt.readout(out, d) - H[..., -d:, -1]


def heldout_metrics(heads, attention: str, ds: dy.TeacherDataset, H: np.ndarray) -> dict[str, float]:
    """On held-out frames ``(ds, H)`` (float64): ``heldout_err`` (relative, module docstring),
    ``heldout_loss`` (M1), ``update_corr`` (Pearson of ``TF - w`` with ``y`` over all entries),
    ``update_cos`` (their cosine)."""
    inc = block_increment(
        H, [(np.asarray(P, float), np.asarray(V, float)) for P, V in heads], attention, ds.layout.d
    )
    e = inc - ds.y
    se = np.sum(e * e, axis=1)
    a, b = inc.ravel(), ds.y.ravel()
    ac, bc = a - a.mean(), b - b.mean()
    nac, nbc = float(np.linalg.norm(ac)), float(np.linalg.norm(bc))
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    return {
        "heldout_err": float(np.sqrt(se.mean() / np.mean(np.sum(ds.y**2, axis=1)))),
        "heldout_loss": float(0.5 * se.mean()),
        "update_corr": float(ac @ bc / (nac * nbc)) if nac > 0 and nbc > 0 else 0.0,
        "update_cos": float(a @ b / (na * nb)) if na > 0 and nb > 0 else 0.0,
    }


def s3_share(heads, spec: dy.TeacherSpec) -> tuple[float, float]:
    """``(share, share_random)``: ``sum_h (||P_h|_supp P*||^2 + ||V_h|_supp V*||^2) / sum_h (||P_h||^2 +
    ||V_h||^2)`` with ``supp`` the nonzero entries of (S3)'s ``(P*, V*)``, and that share for i.i.d.
    entries (the support's fraction of the ``2 D^2`` entries)."""
    Ps, Vs = construction_pv(spec, 1.0)
    sp, sv = Ps != 0, Vs != 0
    on = sum(float(np.sum(P[sp] ** 2) + np.sum(V[sv] ** 2)) for P, V in heads)
    tot = sum(float(np.sum(P**2) + np.sum(V**2)) for P, V in heads)
    return (on / tot if tot > 0 else 0.0), float((sp.sum() + sv.sum()) / (2 * sp.size))


def operator_cos(heads, spec: dy.TeacherSpec) -> float:
    """Cosine of ``sum_h P12_h^T (x) Vbar21_h`` with ``P12*^T (x) Vbar21*`` of (S3): the (M2) map
    ``Sigma -> sum_h Vbar21_h Sigma P12_h`` against (S3)'s, invariant under each head's scaling
    ``(P, V) -> (c P, V / c)`` (meaningful for linear heads)."""
    lay = spec.layout
    Ps, Vs = construction_pv(spec, 1.0)
    bs = lay.blocks(Ps, Vs)
    Ks = np.kron(bs["P12"].T, bs["Vbar21"])
    K = sum(np.kron(lay.blocks(P, V)["P12"].T, lay.blocks(P, V)["Vbar21"]) for P, V in heads)
    nk, ns = float(np.linalg.norm(K)), float(np.linalg.norm(Ks))
    return float(np.sum(K * Ks) / (nk * ns)) if nk > 0 and ns > 0 else 0.0


def attention_entropy(heads, H: np.ndarray) -> float:
    """Mean over frames and heads of ``-sum_j a_j log a_j / log(n+1)``, ``a = softmax_j(h_j^T P_h
    h_{n+1})`` the query column's weights over the ``n+1`` keys of ``H`` (F, D, n+1)."""
    ents = []
    for P, _ in heads:
        s = np.einsum("fdj,fd->fj", H, H[:, :, -1] @ np.asarray(P, float).T)  # h_j^T P h_q
        s = s - s.max(axis=1, keepdims=True)
        a = np.exp(s) / np.exp(s).sum(axis=1, keepdims=True)
        ents.append(-np.sum(np.where(a > 0, a * np.log(np.where(a > 0, a, 1.0)), 0.0), axis=1))
    return float(np.mean(ents) / np.log(H.shape[-1]))


def init_heads(D: int, heads: int, scale: float, seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``heads`` pairs ``(P_h, V_h)`` (D, D) with entries ``scale * N(0, 1)`` (float64 leaves) from
    ``torch.Generator().manual_seed(seed)``, drawn in the order P_1, V_1, P_2, V_2, ..."""
    g = torch.Generator().manual_seed(int(seed))
    out = []
    for _ in range(heads):
        P = (scale * torch.randn((D, D), generator=g, dtype=torch.float64)).requires_grad_(True)
        V = (scale * torch.randn((D, D), generator=g, dtype=torch.float64)).requires_grad_(True)
        out.append((P, V))
    return out


def train_heads(
    H: np.ndarray,
    y: np.ndarray,
    d: int,
    attention: str,
    heads: list[tuple[torch.Tensor, torch.Tensor]],
    steps: int,
    lr: float,
    lr_final: float,
    log_every: int,
    eps: float = 1e-12,
    diverge_factor: float = 1e6,
) -> dict:
    """Adam (``betas = (0.9, 0.999)``, ``eps``) on (M1) over all frames (full batch), float64, the
    learning rate ``lr * (lr_final / lr)^(t / steps)`` at step ``t``. Stops at the first non-finite
    loss or loss above ``diverge_factor`` times the initial one (``diverged = True``). Returns
    ``{"heads": [(P, V) numpy], "log": [(step, loss)], "loss_final", "diverged", "steps_done",
    "wall_time"}``; ``loss_final`` is (M1) at the returned parameters (the last finite ones)."""
    t0 = time.perf_counter()
    Ht, yt = torch.as_tensor(H, dtype=torch.float64), torch.as_tensor(y, dtype=torch.float64)
    leaves = [t for pv in heads for t in pv]
    opt = torch.optim.Adam(leaves, lr=lr, betas=(0.9, 0.999), eps=eps)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: (lr_final / lr) ** (t / steps))

    def loss_fn():
        e = block_increment(Ht, heads, attention, d) - yt
        return 0.5 * (e * e).sum(dim=-1).mean()

    log, diverged, loss0, done = [], False, None, 0
    last = [p.detach().clone() for p in leaves]
    for t in range(steps + 1):
        opt.zero_grad()
        loss = loss_fn()
        val = float(loss.detach())
        if loss0 is None:
            loss0 = val
        if not np.isfinite(val) or val > diverge_factor * max(loss0, 1e-300):
            diverged = True
            break
        last = [p.detach().clone() for p in leaves]
        done = t
        if t % log_every == 0 or t == steps:
            log.append((t, val))
        if t == steps:
            break
        loss.backward()
        opt.step()
        sched.step()
    out_heads = [(last[2 * h].numpy(), last[2 * h + 1].numpy()) for h in range(len(heads))]
    with torch.no_grad():
        e = (
            block_increment(
                Ht, [(torch.as_tensor(P), torch.as_tensor(V)) for P, V in out_heads], attention, d
            )
            - yt
        )
        loss_final = float(0.5 * (e * e).sum(dim=-1).mean())
    return {
        "heads": out_heads,
        "log": log,
        "loss_final": loss_final,
        "diverged": diverged,
        "steps_done": done,
        "wall_time": time.perf_counter() - t0,
    }


def run_metrics(heads, attention: str, train_ds: dy.TeacherDataset, held: tuple) -> dict:
    """Every metric of the module docstring for ``heads`` (numpy (P, V) pairs): held-out ones
    (:func:`heldout_metrics` on ``held = (ds, H)``), ``s3_share``, ``s3_share_random``; for linear
    and relu heads ``op_cos``; for softmax heads ``attn_entropy``; for one linear head the (M2)-(M4)
    ``structure_metrics`` (``cos``, ``orbit_dist_rel``, ``manifold_dist``, ``cos_full``,
    ``norm_P22_sym``, ``norm_Vbar22``) against the training data's mean ``Sigma``."""
    spec = train_ds.spec
    res = heldout_metrics(heads, attention, *held)
    res["s3_share"], res["s3_share_random"] = s3_share(heads, spec)
    res["op_cos"] = operator_cos(heads, spec) if attention in ("linear", "relu") else None
    res["attn_entropy"] = attention_entropy(heads, held[1]) if attention == "softmax" else None
    keys = ("cos", "orbit_dist_rel", "manifold_dist", "cos_full", "norm_P22_sym", "norm_Vbar22")
    if attention == "linear" and len(heads) == 1:
        lay = spec.layout
        summary = dy.TeacherDataset(
            spec=spec,
            Sigma=train_ds.Sigma.mean(axis=0)[None],
            wt=np.zeros((1, lay.D - lay.m)),
            y=np.zeros((1, lay.k)),
            mdp=np.zeros(1, dtype=int),
        )
        sm = structure_metrics(heads[0][0], heads[0][1], summary)
        res.update({k: sm[k] for k in keys})
    else:
        res.update(dict.fromkeys(keys))
    return res
