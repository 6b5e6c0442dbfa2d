"""Shared timing and fitting helpers of the benchmark scripts (medians over repeats, never timed tests)."""

from __future__ import annotations

import statistics
import time

import numpy as np

__all__ = ["median_time", "loglog_slope"]


def median_time(fn, repeats: int, warmup: int = 1) -> float:
    """Median wall time in seconds of ``fn()`` over ``repeats`` calls after ``warmup`` calls."""
    if repeats < 1:
        raise ValueError(f"repeats: expected >= 1, got {repeats}")
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def loglog_slope(x, y) -> float:
    """Least-squares slope of ``log y`` against ``log x`` (the exponent of ``y ~ x^slope``)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or x.size < 2 or (x <= 0).any() or (y <= 0).any():
        raise ValueError("loglog_slope: need >= 2 positive (x, y) pairs of equal length")
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])
