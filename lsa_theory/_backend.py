"""numpy / torch dispatch for the array functions: numpy in -> numpy out, torch in -> torch out."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._checks import is_torch

__all__ = ["is_torch", "like", "result_dtype", "zeros", "broadcast_batch", "concat"]


def like(ref: Any, x: Any) -> Any:
    """``x`` as an array of ``ref``'s kind (torch tensor on ``ref``'s dtype/device, or numpy)."""
    if is_torch(ref):
        import torch

        if is_torch(x):
            return x.to(dtype=ref.dtype, device=ref.device)
        return torch.as_tensor(np.asarray(x), dtype=ref.dtype, device=ref.device)
    if is_torch(x):
        raise ValueError("mixing a numpy prompt with torch parameters: pass torch tensors for both")
    return np.asarray(x)


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
