"""The context-length experiment in both regimes of docs/theory.md §6: its configuration, units
(one per regime), run and figures.

A unit is one regime's sweep: ``"closed-loop"`` (:func:`closed_loop_sweep`, ``w`` carried through
the loop (S6)) or ``"in-context"`` (:func:`in_context_sweep`, one long context read by a deep
stack); each writes ``context_length_{regime}.json`` / ``.npz`` to ``out`` and its figure
``context_length_{regime}.png`` is drawn from them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from .closed_loop import ClosedLoopConfig, closed_loop_sweep
from .common import REGIMES
from .in_context import InContextConfig, in_context_sweep
from .plots import plot_context_length_regimes

__all__ = ["ContextLengthConfig", "units", "run_unit", "regime_config", "run_context_length", "plot_regimes"]


@dataclass(frozen=True)
class ContextLengthConfig:
    """Both regimes' configurations and the regimes to run (a subset of :data:`REGIMES`, in that
    order); ``quick()`` is the small configuration of ``--quick``."""

    closed_loop: ClosedLoopConfig = field(default_factory=ClosedLoopConfig)
    in_context: InContextConfig = field(default_factory=InContextConfig)
    regimes: tuple[str, ...] = REGIMES

    def __post_init__(self) -> None:
        if not isinstance(self.closed_loop, ClosedLoopConfig):
            raise ValueError(
                f"closed_loop: expected a ClosedLoopConfig, got {type(self.closed_loop).__name__}"
            )
        if not isinstance(self.in_context, InContextConfig):
            raise ValueError(f"in_context: expected an InContextConfig, got {type(self.in_context).__name__}")
        if not self.regimes or any(r not in REGIMES for r in self.regimes):
            raise ValueError(f"regimes: expected a non-empty subset of {REGIMES}, got {self.regimes!r}")

    @classmethod
    def quick(cls, regimes: tuple[str, ...] = REGIMES) -> ContextLengthConfig:
        return cls(ClosedLoopConfig.quick(), InContextConfig.quick(), tuple(regimes))

    @classmethod
    def full(cls, regimes: tuple[str, ...] = REGIMES) -> ContextLengthConfig:
        return cls(regimes=tuple(regimes))


def units(cfg: ContextLengthConfig) -> list[str]:
    """The units of ``cfg``: its regimes, in :data:`REGIMES` order."""
    return [r for r in REGIMES if r in cfg.regimes]


def run_unit(cfg: ContextLengthConfig, unit: str, out: str | Path | None = None) -> dict:
    """One regime's sweep (the result document; with ``out``, saved there with its figure)."""
    if unit not in REGIMES:
        raise ValueError(f"unit: expected one of {REGIMES}, got {unit!r}")
    if unit == "closed-loop":
        doc = closed_loop_sweep(cfg.closed_loop, out)
    else:
        doc = in_context_sweep(cfg.in_context, out)
    if out is not None:
        plot_context_length_regimes(out, unit)
    return doc


def run(cfg: ContextLengthConfig, out: str | Path | None = None) -> dict[str, dict]:
    """Every unit (regime) of ``cfg``: ``{regime: document}``."""
    return {u: run_unit(cfg, u, out) for u in units(cfg)}


def run_context_length(
    regime: str, quick: bool = False, out: str | Path | None = None, seed: int | None = None
) -> dict:
    """``lsa-theory context-length --regime REGIME [--quick] [--seed N]``: the unit ``regime`` of
    the default (or ``quick()``) configuration (``seed`` replacing that regime's seed when given),
    with its figure."""
    return run_unit(regime_config(regime, quick, seed), regime, out)


def regime_config(regime: str, quick: bool = False, seed: int | None = None) -> ContextLengthConfig:
    """The configuration of ``lsa-theory context-length --regime REGIME [--quick] [--seed N]``: the
    default (or ``quick()``) one with that regime only, ``seed`` replacing the regime's seed when
    given (ValueError naming ``regime`` or ``seed``)."""
    if regime not in REGIMES:
        raise ValueError(f"regime: expected one of {REGIMES}, got {regime!r}")
    cfg = ContextLengthConfig.quick((regime,)) if quick else ContextLengthConfig.full((regime,))
    if seed is not None:
        part = "closed_loop" if regime == "closed-loop" else "in_context"
        cfg = dataclasses.replace(cfg, **{part: dataclasses.replace(getattr(cfg, part), seed=seed)})
    return cfg


def plot_regimes(out: str | Path) -> list[Path]:
    """The figure of every regime saved in ``out`` (``context_length_{regime}.json``)."""
    out = Path(out)
    return [
        plot_context_length_regimes(out, r) for r in REGIMES if (out / f"context_length_{r}.json").is_file()
    ]
