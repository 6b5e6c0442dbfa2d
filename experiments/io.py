"""Results as data: atomic ``.json`` + ``.npz`` writes with config, seed and package versions."""

from __future__ import annotations

import functools
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
    "provenance",
    "config_hash",
    "git_commit",
    "blas_threads",
    "check_out",
    "check_provenance",
    "atomic_write_json",
    "atomic_savez",
    "read_json",
    "to_jsonable",
    "progress",
    "single_blas_thread",
]

_PACKAGES = ("lsa-theory", "numpy", "scipy", "sympy", "torch", "matplotlib")
_NOT_INSTALLED = "not installed"


def versions() -> dict[str, str]:
    """Python and package versions, recorded with every result (looked up once per process)."""
    return dict(_versions())


@functools.lru_cache(maxsize=1)
def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = _NOT_INSTALLED
    return out


# computed once per process: every result document records it, and the loops write documents after
# every unit (two git subprocesses each time otherwise)
@functools.lru_cache(maxsize=1)
def git_commit() -> str | None:
    """The ``HEAD`` commit of the git checkout the package runs from (with ``+dirty`` when the
    tracked files differ from it), or ``None`` outside a git checkout."""
    import subprocess

    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        )
        if head.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=10,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def config_hash(config: Any) -> str:
    """sha256 of the canonical JSON of ``config`` (sorted keys, non-finite floats as null)."""
    import hashlib

    text = json.dumps(to_jsonable(config), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def blas_threads() -> int | None:
    """The BLAS thread limit in force now (the smallest over the loaded BLAS libraries)."""
    from threadpoolctl import threadpool_info

    counts = [lib["num_threads"] for lib in threadpool_info() if lib.get("user_api") == "blas"]
    return min(counts) if counts else None


def provenance(config: Any = None, seed: Any = None) -> dict:
    """What made a result: ``version`` (lsa-theory), ``git_commit`` (``None`` outside a checkout),
    ``config_hash`` (of ``config``), ``seed``, ``blas_threads`` in force, and ``dependencies``."""
    version = _versions()["lsa-theory"]  # looked up once per process, with the dependencies
    return {
        "version": None if version == _NOT_INSTALLED else version,
        "git_commit": git_commit(),
        "config_hash": config_hash(config),
        "seed": to_jsonable(seed),
        "blas_threads": blas_threads(),
        "dependencies": versions(),
    }


def check_out(out: str | Path | None) -> Path | None:
    """``out`` as a directory path; ValueError if it exists and is not a directory (checked before
    any work is done)."""
    if out is None:
        return None
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise ValueError(f"--out: {str(path)!r} exists and is not a directory")
    return path


#: The file in an output directory that records what made the results in it.
PROVENANCE_FILE = "provenance.json"


def check_provenance(out: str | Path, prov: dict, reuse: bool = False) -> None:
    """Refuse to resume in ``out`` results made by a different code or configuration.

    Compares ``prov`` (of this run) with ``out/provenance.json`` of an earlier run: a different
    ``git_commit``, ``version``, ``seed`` or ``config_hash`` raises ValueError naming both, unless
    ``reuse``; then (or when there is no earlier record) writes ``prov`` there."""
    path = Path(out) / PROVENANCE_FILE
    if path.exists() and not reuse:
        old = read_json(path)
        for key in ("version", "git_commit", "seed", "config_hash"):
            if old.get(key) != prov.get(key):
                raise ValueError(
                    f"--out: {str(out)!r} holds results made with {key} {old.get(key)!r}, this run has "
                    f"{prov.get(key)!r}; use another --out, or --reuse to resume with them anyway"
                )
    atomic_write_json(path, prov)


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
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # mkstemp creates 0600; results get the usual mode
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_json(path: str | Path, doc: Any) -> None:
    """Write ``doc`` as JSON to ``path`` atomically (temp file + rename). A ``dict`` document
    without a ``provenance`` key gets one (:func:`provenance` of its ``config`` and seed: the
    document's ``seed`` or ``seeds``, else its config's)."""
    if isinstance(doc, dict) and "provenance" not in doc and Path(path).name != PROVENANCE_FILE:
        cfg = doc.get("config")
        seed = cfg.get("seed", cfg.get("seeds")) if isinstance(cfg, dict) else None
        seed = doc.get("seed", doc.get("seeds", seed))
        doc = {**doc, "provenance": provenance(cfg, seed)}
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
