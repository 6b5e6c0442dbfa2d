r"""The model and metrics of :mod:`lsa_theory.experiments.training`: the (L2) forward pass on full ``P, V``,
the loss (M1), the initialisation and the structure metrics.

Model. The FULL ``P, V`` (D x D, ``D = 3d+2(+2 d_pi)``) of one (L1) block. Its readout is computed
from the statistics by (L2), exact for (L1) on every prompt with these statistics,

.. math:: TF_\theta(H) - w = \bar V_{21} \Sigma P_{12} \tilde w + \tfrac1n \bar V_{22} \tilde w
          (\tilde w^\top P_{22} \tilde w),

so no raw prompt is ever built; the residual is formed as ``(TF - w) - y`` (equal to
``TF - w_teacher``, without the float32 cancellation of adding and subtracting ``w``). The loss is
(M1): ``L = (1/2F) sum_f ||TF(H_f) - w_teacher,f||^2``, minimised with Adam (or SGD) over
minibatches of frames. Per (M2) only ``P12, P22, Vbar21, Vbar22`` receive gradient: the other
blocks (``P11, P21`` and the first ``m+1`` rows of ``V``) get exactly zero gradient and, with
Adam or SGD without weight decay, never move — every log reports how far they moved. Mode
``"effective"`` trains only ``(A, B) = (Vbar21, P12)`` with every other entry zero (the invariant
set of (M2)).

Metrics (every ``log_every`` steps and at the end): training loss (M1) on all frames; with
``theta = [vec(A); vec(B)]`` and the scale ``c`` minimising ``||theta - [vec(A*/c); vec(c B*)]||``
(the scaling orbit of (S4), :func:`lsa_theory.dynamics.distance_to_manifold` with no invisible direction),
``cos = <theta, theta*(c)> / (|theta| |theta*(c)|)`` and ``orbit_dist = |theta - theta*(c)|``;
``manifold_dist``, the distance to the full optimal manifold (M4) (scaling and the directions the
training data cannot see); norms of ``P22``, its symmetric part (the antisymmetric part is
invisible: the gradient in ``P22`` is ``mean (Vbar22^T e)/n * wt wt^T``, symmetric), ``Vbar22`` and
of the frozen blocks and their displacement from the initialisation; (M3) ``||A||^2 - ||B||^2``;
and the held-out teacher-matching error on fresh MDPs with fresh features,
``heldout_err = sqrt(mean ||TF - w_teacher||^2 / mean ||w_teacher - w||^2)`` (float64).
"""

from __future__ import annotations

import numpy as np
import torch

import lsa_theory as lt
from lsa_theory import constructions
from lsa_theory import dynamics as dy

from .config import DTYPES, TrainConfig, _seed
from .data import TrainData

# ---------------------------------------------------------------------------------------------
# model: (L2) forward on full P, V
# ---------------------------------------------------------------------------------------------


class _SymMatVec(torch.autograd.Function):
    """``u_f = Sigma_f v_f`` for symmetric ``Sigma_f`` (F, m, m), ``v`` (F, m); the backward uses
    ``Sigma_f^T = Sigma_f`` so that both passes read ``Sigma`` contiguously (the transposed batched
    product is about 4x slower here). The ``Sigma`` gradient, when asked for, is ``g v^T``."""

    @staticmethod
    def forward(ctx, Sigma, v):
        ctx.save_for_backward(Sigma, v)
        return torch.bmm(Sigma, v[:, :, None])[:, :, 0]

    @staticmethod
    def backward(ctx, g):
        Sigma, v = ctx.saved_tensors
        gS = g[:, :, None] * v[:, None, :] if ctx.needs_input_grad[0] else None
        gv = torch.bmm(Sigma, g[:, :, None])[:, :, 0] if ctx.needs_input_grad[1] else None
        return gS, gv


def increment(Sigma: torch.Tensor, wt: torch.Tensor, P: torch.Tensor, V: torch.Tensor, n: int, layout):
    """(L2): ``TF_theta(H) - w = Vbar21 Sigma P12 wt + (1/n) Vbar22 wt (wt^T P22 wt)``, shape (F, k_out).

    ``Sigma`` (F, m, m) symmetric, ``wt`` (F, p), full ``P``, ``V`` (D, D) split by ``layout``; equals
    ``lsa_theory.tf_from_statistics(...) - w`` and the readout of (L1) on the raw prompts, minus
    ``w``. Differentiable; cost ``O(F m^2)``.
    """
    b = layout.blocks(P, V)
    u = _SymMatVec.apply(Sigma, wt @ b["P12"].mT)  # Sigma P12 wt, (F, m); Sigma symmetric
    quad = ((wt @ b["P22"].mT) * wt).sum(dim=-1)  # wt^T P22 wt, (F,)
    return u @ b["Vbar21"].mT + (quad / n)[:, None] * (wt @ b["Vbar22"].mT)


def training_loss(data: TrainData, P: torch.Tensor, V: torch.Tensor, idx=None) -> torch.Tensor:
    """(M1) on frames ``idx`` (all when ``None``): ``(1/2|idx|) sum_f ||TF(H_f) - w_teacher,f||^2``."""
    S, wt, y = (data.Sigma, data.wt, data.y) if idx is None else (data.Sigma[idx], data.wt[idx], data.y[idx])
    e = increment(S, wt, P, V, data.spec.n, data.spec.layout) - y
    return 0.5 * (e * e).sum(dim=-1).mean()


def _full_loss_chunked(data: TrainData, P, V, chunk: int = 20000) -> float:
    with torch.no_grad():
        tot = 0.0
        for s in range(0, data.n_frames, chunk):
            idx = slice(s, s + chunk)
            e = increment(data.Sigma[idx], data.wt[idx], P, V, data.spec.n, data.spec.layout) - data.y[idx]
            tot += float((e.double() ** 2).sum())
    return 0.5 * tot / data.n_frames


def init_params(cfg: TrainConfig, device: str = "cpu") -> dict[str, torch.Tensor]:
    """Initial leaves: ``{"P", "V"}`` (D, D) (mode ``"full"``) or ``{"A", "B"}`` = (Vbar21 (k, m),
    P12 (m, p)) (mode ``"effective"``), entries ``init_scale * N(0, 1)`` from a
    ``torch.Generator`` seeded with ``cfg.seed`` (the same draw in both dtypes: float64, then cast).
    ``cfg.init == "invariant"`` (mode ``"full"``): the same draw with ``P22`` (p, p) and ``Vbar22``
    (k, p) set to 0, a point of the invariant set ``{P22 = 0, Vbar22 = 0}`` of (M2)."""
    lay = cfg.layout
    g = torch.Generator().manual_seed(_seed(cfg.seed, 3))
    dt = DTYPES[cfg.dtype]
    if cfg.mode == "full":
        shp = {"P": (lay.D, lay.D), "V": (lay.D, lay.D)}
    else:
        shp = {"A": (lay.k, lay.m), "B": (lay.m, lay.D - lay.m)}
    draw = {k: cfg.init_scale * torch.randn(s, generator=g, dtype=torch.float64) for k, s in shp.items()}
    if cfg.init == "invariant" and cfg.mode == "full":
        m = lay.m
        draw["P"][m:, m:] = 0.0  # P22
        draw["V"][m + 1 :, m:] = 0.0  # Vbar22: the last k rows of V22
    return {k: v.to(dt).to(device) for k, v in draw.items()}


def full_params(params: dict[str, torch.Tensor], layout) -> tuple[torch.Tensor, torch.Tensor]:
    """``(P, V)`` (D, D) from the leaves: themselves in mode ``"full"``; in mode ``"effective"``
    ``P12 = B``, ``Vbar21 = A`` and every other entry zero (differentiable)."""
    if "P" in params:
        return params["P"], params["V"]
    A, B = params["A"], params["B"]
    m, D = layout.m, layout.D
    P = torch.zeros((D, D), dtype=A.dtype, device=A.device)
    V = torch.zeros((D, D), dtype=A.dtype, device=A.device)
    P = P.index_put((torch.arange(m)[:, None], torch.arange(m, D)[None, :]), B)
    V = V.index_put((torch.arange(m + 1, D)[:, None], torch.arange(m)[None, :]), A)
    return P, V


# ---------------------------------------------------------------------------------------------
# metrics
# ---------------------------------------------------------------------------------------------


def frozen_blocks(P: np.ndarray, V: np.ndarray, layout) -> dict[str, np.ndarray]:
    """Blocks that (M2) says never move: ``P11``, ``P21`` and the first ``m+1`` rows of ``V``
    (``V11``, ``V12`` and the constant row of ``V21``, ``V22``)."""
    m = layout.m
    return {"P11": P[:m, :m], "P21": P[m:, :m], "V_top": V[: m + 1, :]}


def heldout_error(P: np.ndarray, V: np.ndarray, held: dy.TeacherDataset) -> tuple[float, float]:
    """``(rel, loss)`` on held-out frames in float64, via (L2) on the full ``P, V``:
    ``rel = sqrt(mean ||TF - w_teacher||^2 / mean ||w_teacher - w||^2)``, ``loss`` = (M1)."""
    lay = held.layout
    tf = lt.tf_from_statistics(
        held.Sigma, held.wt, np.asarray(P, float), np.asarray(V, float), held.spec.n, lay
    )
    e = (tf - held.wt[:, 1:]) - held.y
    se = np.sum(e * e, axis=1)
    return float(np.sqrt(se.mean() / np.mean(np.sum(held.y**2, axis=1)))), float(0.5 * se.mean())


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    return float(np.clip(a @ b / (na * nb), -1.0, 1.0)) if na > 0 and nb > 0 else 0.0


def construction_pv(spec: dy.TeacherSpec, c: float) -> tuple[np.ndarray, np.ndarray]:
    """The full ``(c P*, V*/c)`` (D, D) of (S3) (SARSA) or (A3) (actor-critic) for ``spec``."""
    lay = spec.layout
    if lay.d_pi == 0:
        return constructions.sarsa(lay.d, spec.alpha, c)
    return constructions.actor_critic(lay.d, lay.d_pi, spec.alpha, spec.beta, c)


def _full_structure(P: np.ndarray, V: np.ndarray, spec: dy.TeacherSpec, c: float) -> dict[str, float]:
    """Structure over *every* entry, at the scale ``c`` fitted on ``(Vbar21, P12)``: ``cos_full`` and
    ``dist_full_rel`` of ``[vec P; vec V]`` against ``[vec cP*; vec V*/c]``; ``cos_readout`` over the
    four blocks the output depends on by (L2) (``P12, P22, Vbar21, Vbar22``); ``norm_offstar``, the
    norm of every entry where (S3)/(A3) is zero."""
    Ps, Vs = construction_pv(spec, c)
    lay = spec.layout
    theta, star = np.concatenate([P.ravel(), V.ravel()]), np.concatenate([Ps.ravel(), Vs.ravel()])
    b, bs = lay.blocks(P, V), lay.blocks(Ps, Vs)
    keys = ("P12", "P22", "Vbar21", "Vbar22")
    rd = np.concatenate([b[k].ravel() for k in keys])
    rds = np.concatenate([bs[k].ravel() for k in keys])
    return {
        "cos_full": _cos(theta, star),
        "dist_full_rel": float(np.linalg.norm(theta - star) / np.linalg.norm(star)),
        "cos_readout": _cos(rd, rds),
        "norm_offstar": float(np.linalg.norm(theta[star == 0.0])),
    }


def structure_metrics(
    P: np.ndarray, V: np.ndarray, summary: dy.TeacherDataset, U: np.ndarray | None = None
) -> dict[str, float]:
    """Structure recovery against (S3)/(A3). On the (M2) blocks ``(Vbar21, P12)``: orbit-optimal
    ``c``, ``cos``, ``orbit_dist`` (and relative to ``|theta*(c)|``), ``manifold_dist`` to (M4)
    (with the invisible directions ``U`` of the training data), (M3) ``||A||^2 - ||B||^2``. Over
    all blocks (at that ``c``): ``cos_full``, ``dist_full_rel``, ``cos_readout`` (the (L2) blocks
    P12, P22, Vbar21, Vbar22) and ``norm_offstar`` (:func:`_full_structure`); and the norms of the
    blocks that should vanish (``P22``, its symmetric part, ``Vbar22``) or not move."""
    lay = summary.layout
    b = lay.blocks(P, V)
    theta = dy.pack(b["Vbar21"], b["P12"])
    orbit_dist, c = dy.distance_to_manifold(summary, theta, U=np.zeros((lay.m, 0)))
    star = dy.construction(summary, c)
    cos = float(np.clip(theta @ star / (np.linalg.norm(theta) * np.linalg.norm(star)), -1.0, 1.0))
    U = dy.invisible_directions(summary) if U is None else U
    man_dist, c_man = dy.distance_to_manifold(summary, theta, U=U)
    P22 = b["P22"]
    full = _full_structure(P, V, summary.spec, c)
    return {
        "c": c,
        "cos": cos,
        **full,
        "orbit_dist": orbit_dist,
        "orbit_dist_rel": orbit_dist / float(np.linalg.norm(star)),
        "manifold_dist": man_dist,
        "c_manifold": c_man,
        "invisible_dim": int(U.shape[1]),
        "conserved": float(np.sum(b["Vbar21"] ** 2) - np.sum(b["P12"] ** 2)),
        "norm_P22": float(np.linalg.norm(P22)),
        "norm_P22_sym": float(np.linalg.norm(0.5 * (P22 + P22.T))),
        "norm_Vbar22": float(np.linalg.norm(b["Vbar22"])),
        "norm_A": float(np.linalg.norm(b["Vbar21"])),
        "norm_B": float(np.linalg.norm(b["P12"])),
    }
