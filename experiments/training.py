r"""Training one LSA block by teacher mimicking: Algorithm 1 of [LL] (S6) on the objective (M1).

Data. ``k`` MDPs of the [LL] family, features resampled per MDP (or one map shared by all), each
driven ``frames`` updates by the exact teacher (S2)/(A2) through the loop (S6)/(A5)
(:func:`dynamics.teacher_dataset`). Frame ``f`` is kept only as its (L2) sufficient statistics
``Sigma_f = (1/n) sum_i x_i x_i^T`` (m, m), ``wt_f = [1; w_f(; lambda_f)]`` (p,) and the teacher's
increment ``y_f = w_teacher,f - w_f`` (k_out,); ``m = 2d+1+d_pi``, ``p = D - m = d+1+d_pi``.

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
(the scaling orbit of (S4), :func:`dynamics.distance_to_manifold` with no invisible direction),
``cos = <theta, theta*(c)> / (|theta| |theta*(c)|)`` and ``orbit_dist = |theta - theta*(c)|``;
``manifold_dist``, the distance to the full optimal manifold (M4) (scaling and the directions the
training data cannot see); norms of ``P22``, its symmetric part (the antisymmetric part is
invisible: the gradient in ``P22`` is ``mean (Vbar22^T e)/n * wt wt^T``, symmetric), ``Vbar22`` and
of the frozen blocks and their displacement from the initialisation; (M3) ``||A||^2 - ||B||^2``;
and the held-out teacher-matching error on fresh MDPs with fresh features,
``heldout_err = sqrt(mean ||TF - w_teacher||^2 / mean ||w_teacher - w||^2)`` (float64).

Memory. Frames are generated in chunks of ``chunk_mdps`` MDPs (resampled features; with shared
features one call, since the map must be common), each chunk converted at once to the training
dtype; the frames are then shuffled once (a copy), so the peak is twice the final tensor. The [LL]
configuration, 1000 MDPs x 10 frames at d = 36 (m = 73), holds ``10^4 x 73 x 73`` entries of
``Sigma``: 213 MB in float32, 426 MB in float64 (both fine on this machine: 23 GB). Minibatches
are contiguous slices of the shuffled frames (views, visited in a fresh random order every epoch),
so a step never gathers ``Sigma``; the batched product ``Sigma_f v_f`` uses the symmetry of
``Sigma_f`` in its backward pass.

Results (``out``): ``train.json`` (config, seed, versions, metric history, final metrics, run
times) and ``train.npz`` (learned ``P``, ``V``; ``P_star``, ``V_star`` = ``(c P*, V*/c)`` at the
fitted ``c``; the initialisation ``P0``, ``V0``), both rewritten atomically at every checkpoint
(``"finished": false``) and at the end; ``checkpoint.pt`` (params, optimizer state, step, batch
RNG state, history) every ``checkpoint_every`` steps. ``train(cfg, out)`` resumes from
``checkpoint.pt``; the resumed run is bit-for-bit the uninterrupted one (same thread count).
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

import constructions
import dynamics as dy
import lsa_theory as lt
from lsa_theory._checks import check_int, check_real

from .io import atomic_savez, atomic_write_json, progress, to_jsonable, versions

__all__ = [
    "TrainConfig",
    "TrainData",
    "TrainResult",
    "make_data",
    "increment",
    "training_loss",
    "init_params",
    "full_params",
    "structure_metrics",
    "construction_pv",
    "teacher_data",
    "heldout_data",
    "heldout_error",
    "train",
]

MODES = ("full", "effective")
INITS = ("random", "invariant")
CRITICS = ("action", "state")
OPTIMIZERS = ("adam", "sgd")
SCHEDULES = ("constant", "exp", "cosine")
DTYPES = {"float32": torch.float32, "float64": torch.float64}
CHECKPOINT = "checkpoint.pt"


# ---------------------------------------------------------------------------------------------
# configuration
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainConfig:
    """One training run. Data fields are those of :class:`dynamics.TeacherSpec` ([LL] defaults:
    S = 9, A = 4, d = S A = 36, n = 20, gamma = 0.5, alpha = 0.2, epsilon = 0.1, features ``U(-1, 1)``
    resampled per MDP); ``heldout_k`` x ``heldout_frames`` fresh MDPs with fresh features score
    generalisation. Optimisation: ``optimizer`` (``"adam"``/``"sgd"``, ``momentum`` for SGD),
    ``lr`` decayed to ``lr_final`` by ``schedule`` (``"exp"`` geometric, ``"cosine"``,
    ``"constant"``) after a linear ``warmup`` of that many steps; ``batch_size`` frames per step
    (``None``: all); ``init_scale`` the std of the Gaussian initial entries (seeded
    ``torch.Generator``); ``dtype`` ``"float32"``/``"float64"``; ``polish_steps``: the last that many
    steps run in float64 (parameters and optimizer state promoted, data regenerated in float64),
    a trick for float32 runs. ``init``: ``"random"`` (every entry Gaussian) or ``"invariant"``
    (the same draw with ``P22 = 0`` and ``Vbar22 = 0``: a point of the invariant set of (M2), which
    full training must then never leave). ``critic``: ``None`` (the algorithm's own) or its
    name, checked against the declaration (``"state"`` for ``actor_critic``, whose critic is
    ``V_w(s) = w^T psi(s)`` of THEORY §3; ``"action"`` for ``sarsa`` and ``actor_critic_q``; see
    :func:`teacher_data`). Every seed derives from ``seed``."""

    algorithm: str = "sarsa"
    S: int = 9
    A: int = 4
    d: int | None = None
    d_pi: int | None = None
    n: int = 20
    gamma: float = 0.5
    alpha: float = 0.2
    beta: float = 0.1
    epsilon: float = 0.1
    k: int = 1000
    frames: int = 10
    features: str = "uniform"
    shared_features: bool = False
    reward: str = "sa"
    heldout_k: int = 100
    heldout_frames: int = 10
    mode: str = "full"
    optimizer: str = "adam"
    momentum: float = 0.0
    lr: float = 1e-2
    lr_final: float = 1e-6
    schedule: str = "exp"
    warmup: int = 0
    adam_betas: tuple[float, float] = (0.9, 0.999)
    adam_eps: float = 1e-12
    amsgrad: bool = False
    steps: int = 6000
    batch_size: int | None = 1000
    init_scale: float = 1e-2
    dtype: str = "float32"
    polish_steps: int = 0
    seed: int = 0
    log_every: int = 500
    checkpoint_every: int = 1000
    chunk_mdps: int = 100
    init: str = "random"
    critic: str | None = None

    def __post_init__(self) -> None:
        self.spec()  # validates the data fields (ValueError naming the field)
        self.heldout_spec()
        for name in ("steps", "log_every", "checkpoint_every", "chunk_mdps", "heldout_k", "heldout_frames"):
            check_int(getattr(self, name), name)
        check_int(self.warmup, "warmup", minimum=0)
        check_int(self.polish_steps, "polish_steps", minimum=0)
        check_int(self.seed, "seed", minimum=0)
        if self.polish_steps > self.steps:
            raise ValueError(f"polish_steps: must be <= steps = {self.steps}, got {self.polish_steps}")
        if self.batch_size is not None:
            check_int(self.batch_size, "batch_size")
        if self.mode not in MODES:
            raise ValueError(f"mode: expected one of {MODES}, got {self.mode!r}")
        if self.init not in INITS:
            raise ValueError(f"init: expected one of {INITS}, got {self.init!r}")
        if self.critic is not None and self.critic not in CRITICS:
            raise ValueError(f"critic: expected one of {CRITICS} or None, got {self.critic!r}")
        _check_critic(self.algorithm, self.critic)
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer: expected one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule: expected one of {SCHEDULES}, got {self.schedule!r}")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype: expected one of {tuple(DTYPES)}, got {self.dtype!r}")
        check_real(self.lr, "lr", low=0.0, low_open=True)
        check_real(self.lr_final, "lr_final", low=0.0, low_open=True)
        check_real(self.momentum, "momentum", low=0.0, high=1.0, high_open=True)
        check_real(self.init_scale, "init_scale", low=0.0, low_open=True)
        check_real(self.adam_eps, "adam_eps", low=0.0, low_open=True)  # eps = 0 would give 0/0 = NaN
        if not isinstance(self.amsgrad, bool):
            raise ValueError(f"amsgrad: expected a bool, got {self.amsgrad!r}")
        if len(self.adam_betas) != 2:
            raise ValueError(f"adam_betas: expected two numbers, got {self.adam_betas!r}")
        for b in self.adam_betas:
            check_real(b, "adam_betas", low=0.0, high=1.0, high_open=True)

    def spec(self) -> dy.TeacherSpec:
        """The training data's :class:`dynamics.TeacherSpec`."""
        return dy.TeacherSpec(
            algorithm=self.algorithm,
            S=self.S,
            A=self.A,
            d=self.d,
            d_pi=self.d_pi,
            n=self.n,
            gamma=self.gamma,
            alpha=self.alpha,
            beta=self.beta,
            epsilon=self.epsilon,
            k=self.k,
            frames=self.frames,
            features=self.features,
            shared_features=self.shared_features,
            reward=self.reward,
        )

    def heldout_spec(self) -> dy.TeacherSpec:
        """Held-out data: ``heldout_k`` fresh MDPs, fresh (resampled) features."""
        return self.spec().replace(k=self.heldout_k, frames=self.heldout_frames, shared_features=False)

    @property
    def layout(self) -> lt.Layout:
        return self.spec().layout

    def replace(self, **changes) -> TrainConfig:
        return replace(self, **changes)

    def as_dict(self) -> dict:
        return to_jsonable(asdict(self))

    @classmethod
    def quick(cls, algorithm: str = "sarsa") -> TrainConfig:
        """Small run (< 3 min on 2 cores): S = A = 3 (d = 9, D = 29), 200 MDPs x 10 frames,
        resampled features, Adam, float64."""
        return cls(
            algorithm=algorithm,
            S=3,
            A=3,
            k=200,
            frames=10,
            heldout_k=50,
            steps=6000,
            batch_size=500,
            lr=1e-2,
            lr_final=1e-4,
            dtype="float64",
            log_every=200,
            checkpoint_every=1000,
        )

    @classmethod
    def full(cls) -> TrainConfig:
        """The [LL] configuration: 9 x 4 MDPs, d = 36, 1000 MDPs x 10 frames, resampled features;
        Adam (eps 1e-12), lr 1e-2 decayed geometrically to 1e-6 over 6000 steps, batches of 1000
        frames, float32.

        Measured on this machine (2 cores, idle; seed 0): data 3.5 s, training 48 s; cos >= 0.99
        by step 500 and 1 - 6e-13 at the end, orbit distance 1.1e-6 relative, held-out error
        1.1e-5, loss 1.1e-12. That cosine is over ``(Vbar21, P12)`` only: over every entry of
        (P, V) it is 0.942 (the frozen blocks keep their random start, ``|Vbar22| = 1.05``), and
        with ``P22`` zeroed the held-out error is 1.3e-6 (seeds 0-2: ``docs/experiments.md``).
        The residual is the cubic (L2) term: ``Vbar22`` stays O(1) while
        ``sym(P22)`` decays only slowly (5e-4 at the end), since the optimal set in these blocks
        is the union ``{Vbar22 = 0} u {sym P22 = 0}``. float64 gives the same curve (float32 is not
        the limit); a slower decay (20000 steps to 1e-5) reaches 1e-14 but Adam spikes on the way
        (up to 1e-5 loss); AMSGrad avoids the spikes but ends higher; SGD with momentum 0.9, lr
        0.5 -> 0.05, reaches cos 1 - 2e-7 but held-out error 3e-3 in 6000 steps ((M6)).
        """
        return cls()


# ---------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class TrainData:
    """Training frames as torch tensors: ``Sigma`` (F, m, m), ``wt`` (F, p), ``y`` (F, k_out);
    ``Sigma_mean`` (m, m) float64 numpy (for the invisible directions of (M4)); ``spec``."""

    spec: dy.TeacherSpec
    Sigma: torch.Tensor
    wt: torch.Tensor
    y: torch.Tensor
    Sigma_mean: np.ndarray

    @property
    def n_frames(self) -> int:
        return self.Sigma.shape[0]

    def summary(self) -> dy.TeacherDataset:
        """A one-frame :class:`dynamics.TeacherDataset` carrying ``spec`` and ``Sigma_mean``: all that
        :func:`dynamics.invisible_directions` and :func:`dynamics.distance_to_manifold` read."""
        p = self.spec.layout.D - self.spec.layout.m
        return dy.TeacherDataset(
            spec=self.spec,
            Sigma=self.Sigma_mean[None],
            wt=np.zeros((1, p)),
            y=np.zeros((1, self.spec.layout.k)),
            mdp=np.zeros(1, dtype=int),
        )


def teacher_data(
    spec: dy.TeacherSpec, rng: np.random.Generator, critic: str | None = None
) -> dy.TeacherDataset:
    """Teacher frames (L2) of ``spec``: :func:`dynamics.teacher_dataset`. The critic is the
    algorithm's own (its declaration's ``critic``: ``"state"`` for ``actor_critic``, THEORY §3
    (A1)-(A2), the critic table ``psi(s)`` repeated over actions; ``"action"`` for ``sarsa`` and
    ``actor_critic_q``); a given ``critic`` must name it (ValueError otherwise)."""
    _check_critic(spec.algorithm, critic)
    return dy.teacher_dataset(spec, rng)


def _check_critic(algorithm: str, critic: str | None) -> None:
    own = constructions.ALGORITHMS[algorithm].critic
    if critic is not None and critic != own:
        raise ValueError(
            f"critic: {algorithm!r} has the {own!r} critic, got {critic!r} (the action-value "
            "actor-critic is 'actor_critic_q', the state-value one 'actor_critic')"
        )


def heldout_data(cfg: TrainConfig) -> dy.TeacherDataset:
    """Held-out frames of ``cfg``: ``cfg.heldout_k`` fresh MDPs x ``cfg.heldout_frames`` with fresh
    features (:meth:`TrainConfig.heldout_spec`), drawn from ``default_rng([cfg.seed, 1])``, a
    stream disjoint from the training chunks ``default_rng([cfg.seed, 0, j])`` of :func:`make_data`
    (``tests/test_training.py`` checks that no held-out MDP is a training MDP)."""
    return teacher_data(cfg.heldout_spec(), np.random.default_rng([cfg.seed, 1]), cfg.critic)


def make_data(
    spec: dy.TeacherSpec,
    seed: Any,
    dtype: str = "float32",
    chunk_mdps: int = 100,
    device: str = "cpu",
    critic: str | None = None,
) -> TrainData:
    """Teacher frames of ``spec`` (``spec.k`` MDPs x ``spec.frames``) as (L2) statistics in ``dtype``.

    Chunk ``j`` of ``chunk_mdps`` MDPs is drawn with ``np.random.default_rng([*seed, j])``
    (resampled features; shared features: one chunk, ``default_rng([*seed, 0])``) and converted
    to ``dtype`` at once; ``Sigma_mean`` is accumulated in float64. ``critic``: see
    :func:`teacher_data`.
    """
    if not isinstance(spec, dy.TeacherSpec):
        raise ValueError(f"spec: expected a TeacherSpec, got {type(spec).__name__}")
    if dtype not in DTYPES:
        raise ValueError(f"dtype: expected one of {tuple(DTYPES)}, got {dtype!r}")
    chunk_mdps = check_int(chunk_mdps, "chunk_mdps")
    seed = list(np.atleast_1d(seed).astype(int).tolist())
    tdt = DTYPES[dtype]
    chunk = spec.k if spec.shared_features else chunk_mdps
    Sig, wts, ys = [], [], []
    total = np.zeros((spec.layout.m, spec.layout.m))
    starts = list(range(0, spec.k, chunk))
    for j, start in enumerate(progress(starts, desc="teacher data")):
        ds = teacher_data(
            spec.replace(k=min(chunk, spec.k - start)), np.random.default_rng([*seed, j]), critic
        )
        total += ds.Sigma.sum(axis=0)
        Sig.append(torch.as_tensor(ds.Sigma, dtype=tdt, device=device))
        wts.append(torch.as_tensor(ds.wt, dtype=tdt, device=device))
        ys.append(torch.as_tensor(ds.y, dtype=tdt, device=device))
        del ds
    F = spec.k * spec.frames
    return TrainData(spec, torch.cat(Sig), torch.cat(wts), torch.cat(ys), total / F)


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


# ---------------------------------------------------------------------------------------------
# training
# ---------------------------------------------------------------------------------------------


def lr_at(cfg: TrainConfig, step: int) -> float:
    """Learning rate of step ``step`` (0-based): linear warm-up, then ``cfg.schedule`` from ``lr``
    to ``lr_final`` at the last step."""
    if cfg.warmup and step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    span = max(cfg.steps - 1 - cfg.warmup, 1)
    t = min(max(step - cfg.warmup, 0) / span, 1.0)
    if cfg.schedule == "constant":
        return cfg.lr
    if cfg.schedule == "exp":
        return cfg.lr * (cfg.lr_final / cfg.lr) ** t
    return cfg.lr_final + 0.5 * (cfg.lr - cfg.lr_final) * (1.0 + math.cos(math.pi * t))


def _make_optimizer(cfg: TrainConfig, leaves: list[torch.Tensor]) -> torch.optim.Optimizer:
    if cfg.optimizer == "adam":
        return torch.optim.Adam(
            leaves, lr=cfg.lr, betas=tuple(cfg.adam_betas), eps=cfg.adam_eps, amsgrad=cfg.amsgrad
        )
    return torch.optim.SGD(leaves, lr=cfg.lr, momentum=cfg.momentum)


@dataclass
class TrainResult:
    """Outcome of :func:`train`: learned ``P``, ``V`` (float64 numpy), the construction at the
    fitted scale ``P_star``, ``V_star`` = ``(c P*, V*/c)``, ``final`` metrics, ``history``
    (metric name -> list over logged steps), ``finished`` (False after ``stop_at``), ``train_time``
    the seconds spent in optimizer steps over all sessions (metrics, data and I/O excluded)."""

    config: TrainConfig
    P: np.ndarray
    V: np.ndarray
    P_star: np.ndarray
    V_star: np.ndarray
    final: dict[str, float]
    history: dict[str, list]
    finished: bool
    train_time: float
    out: Path | None = field(default=None)


def _atomic_torch_save(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(obj, fh)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


class _Batches:
    """Minibatches as contiguous slices of the (once-shuffled, see :func:`_load_data`) frames: the
    ``ceil(F / batch)`` blocks are visited in a fresh random order every epoch (seeded generator,
    state checkpointed). Slices are views: no gather of ``Sigma`` per step."""

    def __init__(self, F: int, batch: int | None, seed: int):
        self.F, self.batch = F, (F if batch is None else min(batch, F))
        self.n_blocks = -(-F // self.batch)
        self.gen = torch.Generator().manual_seed(_seed(seed, 2))
        self.order: torch.Tensor | None = None
        self.pos = 0

    def next(self) -> slice | None:
        if self.n_blocks == 1:
            return None
        if self.order is None or self.pos == self.n_blocks:
            self.order = torch.randperm(self.n_blocks, generator=self.gen)
            self.pos = 0
        j = int(self.order[self.pos])
        self.pos += 1
        return slice(j * self.batch, min((j + 1) * self.batch, self.F))

    def state(self) -> dict:
        return {"gen": self.gen.get_state(), "order": self.order, "pos": self.pos}

    def load(self, st: dict) -> None:
        self.gen.set_state(st["gen"])
        self.order, self.pos = st["order"], st["pos"]


def _seed(seed: int, stream: int) -> int:
    """A 32-bit torch seed for stream ``stream`` of ``seed`` (numpy ``SeedSequence``)."""
    return int(np.random.SeedSequence([seed, stream]).generate_state(1)[0])


def _load_data(cfg: TrainConfig, dtype: str, device) -> TrainData:
    """Training frames of ``cfg`` in ``dtype``, shuffled once (seeded) so that contiguous
    minibatches mix MDPs."""
    data = make_data(cfg.spec(), [cfg.seed, 0], dtype, cfg.chunk_mdps, str(device), cfg.critic)
    perm = torch.randperm(data.n_frames, generator=torch.Generator().manual_seed(_seed(cfg.seed, 4)))
    perm = perm.to(data.Sigma.device)
    return replace(data, Sigma=data.Sigma[perm], wt=data.wt[perm], y=data.y[perm])


def _numpy_pv(params, layout) -> tuple[np.ndarray, np.ndarray]:
    with torch.no_grad():
        P, V = full_params(params, layout)
        return P.detach().cpu().double().numpy(), V.detach().cpu().double().numpy()


def _promote_state(state: dict) -> dict:
    """Optimizer state with its floating tensors (moments) in float64; the step counter unchanged."""
    for st in state["state"].values():
        for key, val in st.items():
            if torch.is_tensor(val) and val.is_floating_point() and key != "step":
                st[key] = val.double()
    return state


class _Run:
    """Mutable state of one training run: data, parameters, optimizer, batches, history."""

    def __init__(self, cfg: TrainConfig, out: Path | None, device) -> None:
        self.cfg, self.out, self.device, self.lay = cfg, out, device, cfg.layout
        self.t_start = t0 = time.perf_counter()
        self.data = _load_data(cfg, cfg.dtype, device)
        self.held = heldout_data(cfg)
        self.summary = self.data.summary()
        self.U = dy.invisible_directions(self.summary)
        self.data_time = time.perf_counter() - t0
        self.params = init_params(cfg, str(device))
        self.P0, self.V0 = _numpy_pv(self.params, self.lay)
        self.batches = _Batches(self.data.n_frames, cfg.batch_size, cfg.seed)
        self.polish_at = cfg.steps - cfg.polish_steps if cfg.polish_steps else None
        self.step, self.hist, self.train_time = 0, [], 0.0
        self._set_params(self.params)

    def _set_params(self, params: dict, opt_state: dict | None = None) -> None:
        self.params = {k: v.detach().clone().requires_grad_(True) for k, v in params.items()}
        self.opt = _make_optimizer(self.cfg, list(self.params.values()))
        if opt_state is not None:
            self.opt.load_state_dict(opt_state)

    def resume(self, ckpt: dict) -> None:
        self.step, self.hist, self.train_time = ckpt["step"], ckpt["history"], ckpt["train_time"]
        if self.polish_at is not None and self.step > self.polish_at:
            self.data = _load_data(self.cfg, "float64", self.device)
        self._set_params({k: v.to(self.device) for k, v in ckpt["params"].items()}, ckpt["optimizer"])
        self.batches.load(ckpt["batches"])

    def promote(self) -> None:
        """Start of the float64 polish: parameters, Adam moments and data in float64."""
        state = _promote_state(self.opt.state_dict())
        self.data = _load_data(self.cfg, "float64", self.device)
        self._set_params({k: v.double() for k, v in self.params.items()}, state)

    def sgd_step(self) -> None:
        if (
            self.polish_at is not None
            and self.step == self.polish_at
            and self.data.Sigma.dtype != torch.float64
        ):
            self.promote()
        for grp in self.opt.param_groups:
            grp["lr"] = lr_at(self.cfg, self.step)
        self.opt.zero_grad(set_to_none=True)
        P, V = full_params(self.params, self.lay)
        training_loss(self.data, P, V, self.batches.next()).backward()
        self.opt.step()
        self.step += 1

    def metrics(self) -> dict:
        """The logged metrics at the current parameters (module docstring)."""
        P, V = _numpy_pv(self.params, self.lay)
        row = {"step": self.step, "lr": lr_at(self.cfg, max(self.step - 1, 0)), "train_time": self.train_time}
        with torch.no_grad():
            row["loss"] = _full_loss_chunked(self.data, *full_params(self.params, self.lay))
        row.update(structure_metrics(P, V, self.summary, self.U))
        row["heldout_err"], row["heldout_loss"] = heldout_error(P, V, self.held)
        fz, fz0 = frozen_blocks(P, V, self.lay), frozen_blocks(self.P0, self.V0, self.lay)
        row["frozen_norm"] = float(np.sqrt(sum(np.sum(b**2) for b in fz.values())))
        row["frozen_moved"] = float(max(np.abs(fz[k] - fz0[k]).max() for k in fz))
        return row

    def log(self) -> None:
        if not self.hist or self.hist[-1]["step"] != self.step:
            self.hist.append(self.metrics())

    def save(self, finished: bool) -> TrainResult:
        """Checkpoint (with ``out``), then the result (and ``train.json``/``train.npz``)."""
        cfg, lay = self.cfg, self.lay
        if self.out is not None:
            _atomic_torch_save(
                self.out / CHECKPOINT,
                {
                    "config": cfg.as_dict(),
                    "step": self.step,
                    "params": {k: v.detach().cpu() for k, v in self.params.items()},
                    "optimizer": self.opt.state_dict(),
                    "batches": self.batches.state(),
                    "history": self.hist,
                    "train_time": self.train_time,
                },
            )
        P, V = _numpy_pv(self.params, lay)
        final = self.hist[-1] if self.hist and self.hist[-1]["step"] == self.step else self.metrics()
        Ps, Vs = construction_pv(cfg.spec(), final["c"])
        res = TrainResult(
            cfg, P, V, Ps, Vs, dict(final), _columns(self.hist), finished, self.train_time, self.out
        )
        if self.out is not None:
            arrays = {"P": P, "V": V, "P_star": Ps, "V_star": Vs, "P0": self.P0, "V0": self.V0}
            atomic_savez(self.out / "train.npz", **arrays, c=np.array(final["c"]))
            doc = {
                "config": cfg.as_dict(),
                "seed": cfg.seed,
                "device": str(self.device),
                "versions": versions(),
                "finished": finished,
                "final": final,
                "history": res.history,
                "timings": {
                    "data_time": self.data_time,
                    "train_time": self.train_time,
                    "session_wall_time": time.perf_counter() - self.t_start,
                },
            }
            atomic_write_json(self.out / "train.json", doc)
        return res


def train(
    cfg: TrainConfig,
    out: str | Path | None = None,
    device: str = "cpu",
    stop_at: int | None = None,
    num_threads: int | None = 1,
) -> TrainResult:
    """Algorithm 1 of [LL] (S6) with the objective (M1): train one LSA block on teacher frames.

    Trains full ``P, V`` (D, D) (or ``(Vbar21, P12)`` in mode ``"effective"``) from a small random
    initialisation; logs the metrics of the module docstring every ``cfg.log_every`` steps and at
    the end. With ``out``: checkpoints every ``cfg.checkpoint_every`` steps, resumes from
    ``out/checkpoint.pt`` (ValueError if it belongs to another configuration), and saves
    ``train.json`` and ``train.npz`` (keys ``P``, ``V``, ``P_star``, ``V_star``, ``P0``, ``V0``,
    ``c``). ``stop_at``: stop after that many total steps, checkpoint and return
    ``finished=False`` (a time-boxed run). ``num_threads``: torch threads inside the loop
    (restored afterwards; 1 is fastest at these sizes and keeps runs bit-reproducible).
    """
    if not isinstance(cfg, TrainConfig):
        raise ValueError(f"cfg: expected a TrainConfig, got {type(cfg).__name__}")
    if stop_at is not None:
        stop_at = check_int(stop_at, "stop_at", minimum=0)
    if num_threads is not None:
        num_threads = check_int(num_threads, "num_threads")
    out = Path(out) if out is not None else None
    ckpt = None
    if out is not None and (out / CHECKPOINT).exists():
        ckpt = torch.load(out / CHECKPOINT, map_location=device, weights_only=False)
        if ckpt["config"] != cfg.as_dict():
            raise ValueError(f"out: {out / CHECKPOINT} holds another configuration; use a fresh directory")
    prev_threads = torch.get_num_threads()
    if num_threads is not None:
        torch.set_num_threads(num_threads)
    try:
        run = _Run(cfg, out, torch.device(device))
        if ckpt is not None:
            run.resume(ckpt)
        end = cfg.steps if stop_at is None else min(cfg.steps, max(stop_at, run.step))
        t_seg = time.perf_counter()
        for _ in progress(
            range(run.step, end), total=end - run.step, desc=f"train {cfg.mode} d={cfg.layout.d}"
        ):
            if run.step % cfg.log_every == 0:
                run.train_time += time.perf_counter() - t_seg
                run.log()
                t_seg = time.perf_counter()
            run.sgd_step()
            if run.step % cfg.checkpoint_every == 0 and run.step < cfg.steps:
                run.train_time += time.perf_counter() - t_seg
                run.save(False)
                t_seg = time.perf_counter()
        run.train_time += time.perf_counter() - t_seg
        finished = run.step >= cfg.steps
        if finished:
            run.log()
        return run.save(finished)
    finally:
        torch.set_num_threads(prev_threads)


def _columns(hist: list[dict]) -> dict[str, list]:
    keys = list(hist[0]) if hist else []
    return {k: [row.get(k) for row in hist] for k in keys}


# the sweeps and figures live in :mod:`experiments.training_sweeps`; importable from here too (lazily,
# so that either module can be imported first)
_SWEEP_NAMES = frozenset(
    {
        "DIVERSITY_KS",
        "QUICK_DIVERSITY_KS",
        "diversity_training_sweep",
        "plot_diversity_training",
        "plot_training",
        "plot_training_seeds",
        "teacher_matching_vs_n",
        "train_seeds",
        "heldout_error_without_cubic",
        "run_dir",
        "deployed_returns_by_k",
        "plot_returns_by_k",
    }
)


def __getattr__(name: str):
    if name in _SWEEP_NAMES:
        from . import training_sweeps

        return getattr(training_sweeps, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
