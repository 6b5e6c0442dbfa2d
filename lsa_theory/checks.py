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


#: numpy dtype kinds accepted as real numeric input: (unsigned) integers and floats. Complex
#: ("c") would be truncated to its real part by a cast, bool ("b") would turn sums into logical
#: or's in a matmul, object ("O") and strings are not numbers.
REAL_KINDS = "iuf"


def _kind(x: Any) -> tuple[str, Any]:
    """(numpy-style dtype kind, dtype) of a numpy array or a torch tensor."""
    if is_torch(x):
        import torch

        dt = x.dtype
        if x.is_complex():
            return "c", dt
        if dt.is_floating_point:
            return "f", dt
        return ("b" if dt == torch.bool else "i"), dt
    return x.dtype.kind, x.dtype


def check_real_dtype(x: Any, name: str) -> None:
    """ValueError unless the numpy array or torch tensor ``x`` has a real numeric dtype (integer
    or floating): complex, bool, object and string arrays are refused, never cast."""
    kind, dt = _kind(x)
    if kind == "c":
        raise ValueError(
            f"{name}: expected a real numeric array, got complex dtype {dt} (refused rather than "
            "truncated to its real part; pass x.real if that is what you mean)"
        )
    if kind not in REAL_KINDS:
        raise ValueError(f"{name}: expected a real numeric array, got dtype {dt}")


def input_eps(x: Any) -> float:
    """Machine epsilon of ``x``'s floating dtype (numpy or torch); float64's for anything else.

    The precision an input was given in: a float32 kernel is stochastic to ~float32 eps only."""
    if is_torch(x):
        import torch

        return float(torch.finfo(x.dtype).eps) if x.dtype.is_floating_point else float(np.finfo(float).eps)
    dt = getattr(x, "dtype", None)
    if isinstance(dt, np.dtype) and dt.kind == "f":
        return float(np.finfo(dt).eps)
    return float(np.finfo(np.float64).eps)


def as_float_array(
    x: Any, name: str, ndim: int | tuple[int, ...] | None = None, *, copy: bool = False
) -> np.ndarray:
    """``x`` as a float64 numpy array; ValueError if not real numeric, wrong ndim, NaN or inf.

    Accepts numpy arrays, nested sequences and torch tensors (with or without ``requires_grad``:
    their values are read through ``detach()``; the result is numpy and carries no gradient).
    Complex, bool, object and string input is refused (:func:`check_real_dtype`), never cast.
    ``copy=True`` always returns a fresh array (never the caller's own)."""
    if is_torch(x):
        check_real_dtype(x, name)
        import torch

        arr = x.detach().to(device="cpu", dtype=torch.float64).numpy()
        copy = True  # the numpy view of a float64 CPU tensor would share its memory
    else:
        try:
            arr = np.asarray(x)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise ValueError(f"{name}: expected a real numeric array, got {type(x).__name__}") from exc
        check_real_dtype(arr, name)
    arr = arr.astype(np.float64, copy=copy)
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else ndim
        if arr.ndim not in allowed:
            raise ValueError(
                f"{name}: expected {' or '.join(map(str, allowed))} dimensions, got shape {arr.shape}"
            )
    check_finite(arr, name)
    return arr


def check_finite(x: Any, name: str) -> None:
    """ValueError if the numpy array or torch tensor ``x`` is not real numeric (complex, bool,
    object, strings: :func:`check_real_dtype`) or holds NaN or inf. Torch values are read
    through ``detach()``, so a tensor that requires grad is checked without touching its graph."""
    if is_torch(x):
        import torch

        check_real_dtype(x, name)
        ok = bool(torch.isfinite(x.detach()).all())
    else:
        x = np.asarray(x)
        check_real_dtype(x, name)
        ok = bool(np.isfinite(x).all())
    if not ok:
        raise ValueError(f"{name}: contains NaN or inf")


def check_rng(rng: Any, name: str = "rng") -> np.random.Generator:
    """``rng`` if it is a ``numpy.random.Generator``; ValueError naming ``name`` otherwise (a seed
    is not accepted: every random draw of the package comes from a Generator the caller owns)."""
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"{name}: expected numpy.random.Generator, got {type(rng).__name__}")
    return rng


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


def check_distribution(
    p: np.ndarray, name: str, axis: int = -1, atol: float = 1e-10, eps: float | None = None
) -> None:
    """ValueError unless ``p`` is non-negative and sums to 1 along ``axis``.

    Tolerance on the sums: ``max(atol, m * eps)`` with ``m = p.shape[axis]`` and ``eps`` the
    machine epsilon of the dtype the input was given in (:func:`input_eps`; default float64's,
    for which ``m * eps < 1e-10`` while ``m < 4.5e5``, so ``atol`` rules). A float32 row of
    ``m`` entries normalised in float32 sums to 1 within about ``m * 2^-24 < m * eps``."""
    if (p < 0).any():
        raise ValueError(f"{name}: has negative entries (min {p.min():.3g})")
    if eps is not None and p.ndim:
        atol = max(atol, p.shape[axis] * eps)
    err = np.abs(p.sum(axis=axis) - 1.0).max(initial=0.0)
    if err > atol:
        raise ValueError(f"{name}: does not sum to 1 (max deviation {err:.3g} > {atol:g})")
