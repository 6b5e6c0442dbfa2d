"""The units of the training experiment: one, the training run (its resume is the checkpoint
``checkpoint.pt``, :mod:`lsa_theory.experiments.training.loop`, not a unit store)."""

from __future__ import annotations

from pathlib import Path

from .config import TrainConfig
from .loop import TrainResult, train

__all__ = ["units", "run_unit"]


def units(cfg: TrainConfig) -> list[str]:
    """The units of ``cfg``: one, ``"train"``."""
    return ["train"]


def run_unit(cfg: TrainConfig, unit: str = "train", out: str | Path | None = None) -> TrainResult:
    """The one unit of :func:`units`: :func:`~lsa_theory.experiments.training.train` of ``cfg``
    (resumed from ``out``'s checkpoint)."""
    if unit != "train":
        raise ValueError(f"unit: training has one unit, 'train'; got {unit!r}")
    return train(cfg, out)
