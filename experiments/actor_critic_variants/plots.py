"""(A6) has tables, not a figure: :func:`plot` prints them from a saved run."""

from __future__ import annotations

from pathlib import Path

from ..tables import table

__all__ = ["plot"]


def plot(out: str | Path) -> str:
    """The two (A6) markdown tables of the saved ``out/actor_critic_variants.json``: the kind
    ``actor-critic-variants`` of :mod:`lsa_theory.experiments.tables` (the expected actor step, and
    the closed loop, one row per critic)."""
    return table("actor-critic-variants", Path(out) / "actor_critic_variants.json")
