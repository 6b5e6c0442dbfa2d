"""The training data of :mod:`lsa_theory.experiments.training`: teacher frames kept as their (L2) sufficient
statistics.

Data. ``k`` MDPs of the [LL] family, features resampled per MDP (or one map shared by all), each
driven ``frames`` updates by the exact teacher (S2)/(A2) through the loop (S6)/(A5)
(:func:`lsa_theory.dynamics.teacher_dataset`). Frame ``f`` is kept only as its (L2) sufficient statistics
``Sigma_f = (1/n) sum_i x_i x_i^T`` (m, m), ``wt_f = [1; w_f(; lambda_f)]`` (p,) and the teacher's
increment ``y_f = w_teacher,f - w_f`` (k_out,); ``m = 2d+1+d_pi``, ``p = D - m = d+1+d_pi``.

Memory. Frames are generated in chunks of ``chunk_mdps`` MDPs (resampled features; with shared
features one call, since the map must be common), each chunk converted at once to the training
dtype; the frames are then shuffled once (a copy), so the peak is twice the final tensor. The [LL]
configuration, 1000 MDPs x 10 frames at d = 36 (m = 73), holds ``10^4 x 73 x 73`` entries of
``Sigma``: 213 MB in float32, 426 MB in float64 (both fine on this machine: 23 GB). Minibatches
are contiguous slices of the shuffled frames (views, visited in a fresh random order every epoch),
so a step never gathers ``Sigma``; the batched product ``Sigma_f v_f`` uses the symmetry of
``Sigma_f`` in its backward pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from lsa_theory import dynamics as dy
from lsa_theory.checks import check_int

from ..io import progress
from .config import DTYPES, TrainConfig, _check_critic


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
        """A one-frame :class:`lsa_theory.dynamics.TeacherDataset` carrying ``spec`` and ``Sigma_mean``:
        all that :func:`lsa_theory.dynamics.invisible_directions` and
        :func:`lsa_theory.dynamics.distance_to_manifold` read."""
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
    """Teacher frames (L2) of ``spec``: :func:`lsa_theory.dynamics.teacher_dataset`. The critic is the
    algorithm's own (its declaration's ``critic``: ``"state"`` for ``actor_critic``, THEORY §3
    (A1)-(A2), the critic table ``psi(s)`` repeated over actions; ``"action"`` for ``sarsa`` and
    ``actor_critic_q``); a given ``critic`` must name it (ValueError otherwise)."""
    _check_critic(spec.algorithm, critic)
    return dy.teacher_dataset(spec, rng)


def heldout_data(cfg: TrainConfig) -> dy.TeacherDataset:
    """Held-out frames of ``cfg``: ``cfg.heldout_k`` fresh MDPs x ``cfg.heldout_frames`` with fresh
    features (:meth:`TrainConfig.heldout_spec`), drawn from ``default_rng([cfg.seed, 1])``, a
    stream disjoint from the training chunks ``default_rng([cfg.seed, 0, j])`` of :func:`make_data`
    (``tests/experiments/test_training.py`` checks that no held-out MDP is a training MDP)."""
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
