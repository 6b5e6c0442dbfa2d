"""Input checks shared by the public functions: every fault raises ``ValueError``.

The messages name the argument and the fault, so that a researcher never gets a silent
wrong number from a malformed input.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np


def is_torch(x: Any) -> bool:
    """True when ``x`` is a ``torch.Tensor`` (without importing torch if it is not loaded)."""
    mod = type(x).__module__
    return mod.startswith("torch") and hasattr(x, "detach")


def as_float_array(x: Any, name: str, ndim: int | tuple[int, ...] | None = None) -> np.ndarray:
    """``x`` as a float64 numpy array; ValueError if not numeric, wrong ndim, NaN or inf."""
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: expected a real numeric array, got {type(x).__name__}") from exc
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else ndim
        if arr.ndim not in allowed:
            raise ValueError(
                f"{name}: expected {' or '.join(map(str, allowed))} dimensions, got shape {arr.shape}"
            )
    check_finite(arr, name)
    return arr


def check_finite(x: Any, name: str) -> None:
    """ValueError if the numpy array or torch tensor ``x`` holds NaN or inf."""
    if is_torch(x):
        import torch

        ok = bool(torch.isfinite(x.detach()).all())
    else:
        x = np.asarray(x)
        if x.dtype.kind not in "biuf":
            raise ValueError(f"{name}: expected a real numeric array, got dtype {x.dtype}")
        ok = bool(np.isfinite(x).all())
    if not ok:
        raise ValueError(f"{name}: contains NaN or inf")


def check_int(x: Any, name: str, minimum: int = 1) -> int:
    """``x`` as an int ``>= minimum``; ValueError otherwise (bools are refused)."""
    if isinstance(x, bool) or not isinstance(x, numbers.Integral):
        raise ValueError(f"{name}: expected an integer, got {x!r}")
    if x < minimum:
        raise ValueError(f"{name}: must be >= {minimum}, got {x}")
    return int(x)


def check_real(
    x: Any,
    name: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    nonzero: bool = False,
) -> float:
    """``x`` as a finite float inside the stated interval; ValueError otherwise."""
    if isinstance(x, bool) or not isinstance(x, numbers.Real):
        raise ValueError(f"{name}: expected a real number, got {x!r}")
    x = float(x)
    if not np.isfinite(x):
        raise ValueError(f"{name}: must be finite, got {x}")
    if low is not None and (x < low or (low_open and x == low)):
        raise ValueError(f"{name}: must be {'>' if low_open else '>='} {low}, got {x}")
    if high is not None and (x > high or (high_open and x == high)):
        raise ValueError(f"{name}: must be {'<' if high_open else '<='} {high}, got {x}")
    if nonzero and x == 0.0:
        raise ValueError(f"{name}: must be non-zero")
    return x


def check_gamma(gamma: Any) -> float:
    """Discount factor with ``0 <= gamma < 1``."""
    return check_real(gamma, "gamma", low=0.0, high=1.0, high_open=True)


def check_distribution(p: np.ndarray, name: str, axis: int = -1, atol: float = 1e-10) -> None:
    """ValueError unless ``p`` is non-negative and sums to 1 along ``axis`` (to ``atol``)."""
    if (p < 0).any():
        raise ValueError(f"{name}: has negative entries (min {p.min():.3g})")
    err = np.abs(p.sum(axis=axis) - 1.0).max(initial=0.0)
    if err > atol:
        raise ValueError(f"{name}: does not sum to 1 (max deviation {err:.3g} > {atol:g})")
