"""Results as data: atomic ``.json`` + ``.npz`` writes with config, seed and package versions."""

from __future__ import annotations

import json
import math
import os
import platform
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "versions",
    "atomic_write_json",
    "atomic_savez",
    "read_json",
    "to_jsonable",
    "progress",
    "single_blas_thread",
]

_PACKAGES = ("lsa-theory", "numpy", "scipy", "sympy", "torch", "matplotlib")


def versions() -> dict[str, str]:
    """Python and package versions, recorded with every result."""
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def to_jsonable(x: Any) -> Any:
    """Plain JSON types; non-finite floats become ``None`` (JSON has no NaN)."""
    if isinstance(x, dict):
        return {str(k): to_jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [to_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return to_jsonable(x.tolist())
    if isinstance(x, np.bool_ | bool):
        return bool(x)
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, float | np.floating):
        x = float(x)
        return x if math.isfinite(x) else None
    return x


def _atomic(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_json(path: str | Path, doc: Any) -> None:
    """Write ``doc`` as JSON to ``path`` atomically (temp file + rename)."""
    data = json.dumps(to_jsonable(doc), indent=2).encode()
    _atomic(Path(path), lambda fh: fh.write(data))


def atomic_savez(path: str | Path, **arrays: np.ndarray) -> None:
    """``np.savez_compressed`` to ``path`` atomically."""
    _atomic(Path(path), lambda fh: np.savez_compressed(fh, **arrays))


def read_json(path: str | Path) -> Any:
    with open(path) as fh:
        return json.load(fh)


def progress(iterable, total: int | None = None, desc: str = ""):
    """tqdm progress bar, silent when stderr is not a terminal."""
    import sys

    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, disable=not sys.stderr.isatty(), leave=False)


def single_blas_thread(fn):
    """Run ``fn`` with BLAS limited to one thread (restored afterwards).

    The closed loops multiply many small matrices; on a 2-core machine OpenBLAS threading made
    them about 10x slower (``ControlConfig.quick()``: 3.5 s single-threaded, 42 s threaded).
    """
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1, user_api="blas"):
            return fn(*args, **kwargs)

    return wrapper
