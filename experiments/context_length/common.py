"""Helpers shared by the context-length sweeps of :mod:`lsa_theory.experiments.context_length`: the regimes,
sequence checks (the statistics are :mod:`lsa_theory.experiments.stats`'s ``mean_sem_finite`` and
``paired_difference``: for each ``n`` after the first, the per-MDP difference to the previous
``n``, same MDPs, features and, in context, trajectory prefixes).
"""

from __future__ import annotations

from collections.abc import Sequence

from lsa_theory.checks import check_int, check_real

__all__ = ["REGIMES", "IN_CONTEXT_STREAM", "check_lengths", "check_rates"]

REGIMES = ("closed-loop", "in-context")

#: Stream of the in-context regime's draws: ``heldout_rng(seed, i, IN_CONTEXT_STREAM)``.
IN_CONTEXT_STREAM = 3


def check_lengths(v, name: str) -> tuple[int, ...]:
    """``v`` as a tuple of positive integers, strictly increasing (context lengths, depths, read-out
    points); a ValueError naming ``name`` otherwise."""
    if isinstance(v, str | bytes) or not isinstance(v, Sequence) or len(v) < 1:
        raise ValueError(f"{name}: expected a non-empty sequence of positive integers, got {v!r}")
    out = tuple(check_int(x, name) for x in v)
    if list(out) != sorted(set(out)):
        raise ValueError(f"{name}: expected strictly increasing values, got {v!r}")
    return out


def check_rates(v, name: str) -> tuple[float, ...]:
    """``v`` as a non-empty tuple of positive numbers (step sizes); a ValueError naming ``name``
    otherwise."""
    if isinstance(v, str | bytes) or not isinstance(v, Sequence) or len(v) < 1:
        raise ValueError(f"{name}: expected a non-empty sequence of positive numbers, got {v!r}")
    return tuple(check_real(x, name, low=0.0, low_open=True) for x in v)
