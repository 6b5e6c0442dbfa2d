"""numpy / torch dispatch for the array functions: numpy in -> numpy out, torch in -> torch out."""

from __future__ import annotations

from typing import Any

import numpy as np

from .checks import check_finite, check_real_dtype, is_torch

__all__ = ["is_torch", "as_array", "like", "result_dtype", "zeros", "broadcast_batch", "concat"]


def like(ref: Any, x: Any, name: str = "x") -> Any:
    """``x`` as an array of ``ref``'s kind (torch tensor on ``ref``'s dtype/device, or numpy).

    Unchecked: call :func:`as_array` on user input (it refuses complex input before any cast)."""
    if is_torch(ref):
        import torch

        if is_torch(x):
            return x.to(dtype=ref.dtype, device=ref.device)
        return torch.as_tensor(np.asarray(x), dtype=ref.dtype, device=ref.device)
    if is_torch(x):
        raise ValueError(f"{name}: mixing a numpy prompt with torch parameters: pass torch tensors for both")
    return np.asarray(x)


def as_array(x: Any, name: str, ref: Any = None) -> Any:
    """Checked input of an array function: ``x`` as an array of ``ref``'s kind (``x``'s own if
    ``ref`` is None), real numeric and finite, else ValueError naming ``name``.

    numpy: nested sequences become arrays, integer arrays float64, float16/32/64 are kept.
    torch: a floating tensor (integer, bool and complex tensors are refused), converted to
    ``ref``'s dtype and device; no copy and no ``detach``, so gradients flow through the result
    (only the checks read ``x.detach()``). Complex input is refused before any cast."""
    if not is_torch(x):
        try:
            x = np.asarray(x)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise ValueError(f"{name}: expected a real numeric array, got {type(x).__name__}") from exc
    check_real_dtype(x, name)
    if not is_torch(x) and x.dtype.kind in "iu":
        x = x.astype(np.float64)
    if is_torch(x) and not x.dtype.is_floating_point:
        raise ValueError(f"{name}: expected a floating-point torch tensor, got dtype {x.dtype}")
    out = like(x if ref is None else ref, x, name)
    check_finite(out, name)
    return out


def result_dtype(*xs: Any) -> Any:
    """Common floating dtype of numpy arrays (at least float64) or of torch tensors."""
    if is_torch(xs[0]):
        return xs[0].dtype
    return np.result_type(np.float64, *[np.asarray(x).dtype for x in xs])


def zeros(ref: Any, shape: tuple[int, ...], dtype: Any) -> Any:
    """Zeros of ``shape`` of ``ref``'s kind."""
    if is_torch(ref):
        import torch

        return torch.zeros(shape, dtype=dtype, device=ref.device)
    return np.zeros(shape, dtype=dtype)


def broadcast_batch(*shapes: tuple[int, ...]) -> tuple[int, ...]:
    """Broadcast batch shapes, raising ValueError on mismatch."""
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError as exc:
        raise ValueError(f"batch shapes {shapes} do not broadcast") from exc


def concat(parts: list[Any], axis: int = 0) -> Any:
    """Concatenate arrays of one kind along ``axis`` (torch: differentiable ``torch.cat``)."""
    if is_torch(parts[0]):
        import torch

        return torch.cat(parts, dim=axis)
    return np.concatenate(parts, axis=axis)
