"""Helpers shared by the context-length sweeps of :mod:`experiments.context_length`: the regimes,
sequence checks and the paired statistics.

**Paired differences.** For each ``n`` after the first, the per-MDP difference to the previous
``n`` (same MDPs, features and, in context, trajectory prefixes) with its mean and a 95 %
Student-t confidence interval over the MDPs where neither value is missing.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.stats

from lsa_theory._checks import check_int, check_real

REGIMES = ("closed-loop", "in-context")

#: Stream of the in-context regime's draws: ``heldout_rng(seed, i, IN_CONTEXT_STREAM)``.
IN_CONTEXT_STREAM = 3


def _ints(v, name: str) -> tuple[int, ...]:
    if isinstance(v, str | bytes) or not isinstance(v, Sequence) or len(v) < 1:
        raise ValueError(f"{name}: expected a non-empty sequence of positive integers, got {v!r}")
    out = tuple(check_int(x, name) for x in v)
    if list(out) != sorted(set(out)):
        raise ValueError(f"{name}: expected strictly increasing values, got {v!r}")
    return out


def _reals(v, name: str) -> tuple[float, ...]:
    if isinstance(v, str | bytes) or not isinstance(v, Sequence) or len(v) < 1:
        raise ValueError(f"{name}: expected a non-empty sequence of positive numbers, got {v!r}")
    return tuple(check_real(x, name, low=0.0, low_open=True) for x in v)


def paired_difference(a: np.ndarray, b: np.ndarray, level: float = 0.95) -> dict:
    """Mean of the paired differences ``b - a`` (both (N,), NaN = missing) with a Student-t
    ``level`` confidence interval over the ``N_ok`` pairs where both are finite:
    ``{"mean", "ci": [lo, hi], "n_pairs"}`` (``None`` entries with fewer than two pairs)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"a, b: expected two arrays of equal shape (N,), got {a.shape} and {b.shape}")
    level = check_real(level, "level", low=0.0, high=1.0, low_open=True, high_open=True)
    diff = (b - a)[np.isfinite(a) & np.isfinite(b)]
    if diff.size < 2:
        return {"mean": None, "ci": None, "n_pairs": int(diff.size)}
    m = float(diff.mean())
    half = float(scipy.stats.t.ppf(0.5 + level / 2, diff.size - 1) * diff.std(ddof=1) / np.sqrt(diff.size))
    return {"mean": m, "ci": [m - half, m + half], "n_pairs": int(diff.size)}


def _mean_sem_nan(x: np.ndarray) -> tuple[float | None, float | None, int]:
    """Mean and s.e. over the finite entries of ``x`` (N,), and the number of missing entries."""
    x = np.asarray(x, dtype=float)
    ok = x[np.isfinite(x)]
    mean = float(ok.mean()) if ok.size else None
    sem = float(ok.std(ddof=1) / np.sqrt(ok.size)) if ok.size > 1 else None
    return mean, sem, int(x.size - ok.size)
