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
    "torch_threads",
    "set_torch_threads",
    "check_out",
    "check_provenance",
    "atomic_write_json",
    "atomic_savez",
    "atomic_write",
    "read_json",
    "load_npz",
    "check_npz_arrays",
    "load_checkpoint",
    "DamagedFile",
    "out_lock",
    "OutInUse",
    "to_jsonable",
    "progress",
    "Heartbeat",
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


def file_sha256(path: str | Path) -> str:
    """sha256 of the bytes of the file ``path`` (ValueError naming it if it cannot be read)."""
    import hashlib

    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError as exc:
        raise ValueError(f"{path}: cannot read ({exc.strerror})") from None


def blas_threads() -> int | None:
    """The BLAS thread limit in force now (the smallest over the loaded BLAS libraries)."""
    from threadpoolctl import threadpool_info

    counts = [lib["num_threads"] for lib in threadpool_info() if lib.get("user_api") == "blas"]
    return min(counts) if counts else None


def torch_threads() -> dict[str, int] | None:
    """torch's thread counts in force now, ``{"intra_op": n, "inter_op": m}``, or ``None`` when
    this process has not imported torch (then it uses no torch threads)."""
    import sys

    torch = sys.modules.get("torch")
    if torch is None or not hasattr(torch, "get_num_threads"):
        return None
    return {"intra_op": torch.get_num_threads(), "inter_op": torch.get_num_interop_threads()}


def set_torch_threads(threads: int) -> None:
    """Limit torch to ``threads`` threads (``--threads N``; imports torch): intra-op threads
    (``torch.set_num_threads``) and inter-op threads (``torch.set_num_interop_threads``), the
    latter only where torch still allows it (before its first inter-op parallel work, once per
    process; otherwise left as it is and visible in :func:`torch_threads`)."""
    import torch

    torch.set_num_threads(threads)
    if torch.get_num_interop_threads() != threads:
        try:
            torch.set_num_interop_threads(threads)
        except RuntimeError:  # already set, or parallel work has started: torch refuses
            pass


def provenance(config: Any = None, seed: Any = None) -> dict:
    """What made a result: ``version`` (lsa-theory), ``git_commit`` (``None`` outside a checkout),
    ``config_hash`` (of ``config``), ``seed``, ``blas_threads`` and ``torch_threads``
    (:func:`torch_threads`) in force, and ``dependencies``."""
    version = _versions()["lsa-theory"]  # looked up once per process, with the dependencies
    return {
        "version": None if version == _NOT_INSTALLED else version,
        "git_commit": git_commit(),
        "config_hash": config_hash(config),
        "seed": to_jsonable(seed),
        "blas_threads": blas_threads(),
        "torch_threads": torch_threads(),
        "dependencies": versions(),
    }


def check_out(out: str | Path | None, flag: str = "--out") -> Path | None:
    """``out`` as a directory path, checked before any work is done; ValueError naming ``flag``
    if it is empty (``--out ''`` would write into the current directory), if it or one of its
    parents exists and is not a directory (``--out FILE/sub``), or if the nearest existing
    ancestor cannot be written to."""
    if out is None:
        return None
    if not str(out).strip():
        raise ValueError(f"{flag}: expected a directory name, got {str(out)!r}")
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{flag}: {str(path)!r} exists and is not a directory")
    probe = path
    while not probe.exists():  # the nearest existing ancestor: a directory we may write into
        if probe.is_symlink():
            raise ValueError(f"{flag}: {str(probe)!r} is a dangling symbolic link")
        probe = probe.parent
    if not probe.is_dir():
        raise ValueError(f"{flag}: {str(path)!r} lies under {str(probe)!r}, which is not a directory")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ValueError(f"{flag}: {str(probe)!r} is not writable (permission denied)")
    return path


class DamagedFile(ValueError):
    """A results or state file that cannot be read back (truncated, not JSON, not an ``.npz``,
    not a checkpoint): the message names the file and how to recompute it."""

    def __init__(self, path: str | Path, problem: str):
        self.path, self.problem = Path(path), problem
        super().__init__(
            f"{self.path}: {problem}; the file is damaged (truncated or overwritten): delete it to "
            "recompute it (a rerun of 'lsa-theory reproduce' recomputes a finished part whose files "
            "are damaged)"
        )


class OutInUse(ValueError):
    """Another process holds the lock of an output directory (:func:`out_lock`)."""


#: The lock file of an output directory (:func:`out_lock`).
LOCK_FILE = ".lsa-theory.lock"


class out_lock:
    """Exclusive use of the output directory ``out`` by this process: a context manager holding an
    ``fcntl.flock`` on ``out/.lsa-theory.lock`` (creating ``out``). A second process asking for the
    same directory is refused at once with :class:`OutInUse` (a ValueError naming ``flag``, the
    directory and the holder's pid), so that two runs never interleave their read-modify-write
    of the same documents (``summary.json``, ``provenance.json``). The lock goes with the process
    (the kernel releases it on exit or crash); the file itself stays, empty of meaning."""

    def __init__(self, out: str | Path, flag: str = "--out"):
        self.out, self.flag = Path(out), flag

    def __enter__(self) -> out_lock:
        import fcntl

        self.out.mkdir(parents=True, exist_ok=True)
        self.key = os.path.realpath(self.out)
        if self.key in _HELD:  # already ours (a command whose function locks again): re-entrant
            _HELD[self.key][1] += 1
            return self
        fd = os.open(self.out / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise OutInUse(
                f"{self.flag}: {str(self.out)!r} is in use by another lsa-theory process (pid {holder}); "
                "wait for it to finish or use another directory"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        _HELD[self.key] = [fd, 1]
        return self

    def __exit__(self, *exc) -> None:
        import fcntl

        held = _HELD.get(self.key)
        if held is None:
            return
        held[1] -= 1
        if held[1] == 0:
            del _HELD[self.key]
            fcntl.flock(held[0], fcntl.LOCK_UN)
            os.close(held[0])


#: Output directories this process has locked (:class:`out_lock`): real path -> [fd, depth].
_HELD: dict[str, list] = {}


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


def _fsync_dir(directory: Path) -> None:
    """``fsync`` a directory, so that a rename (or a new entry) in it survives a crash."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str | Path, write) -> None:
    """Write ``path`` atomically and durably: ``write(fh)`` into a temporary file in the same
    directory, ``fsync`` it, rename it over ``path``, then ``fsync`` the directory. After a crash
    (or power loss) ``path`` holds either its old content or the complete new one, never a prefix;
    on any error the temporary file is removed and ``path`` is untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # mkstemp creates 0600; results get the usual mode
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())  # the data on disk before the rename makes it visible
        os.replace(tmp, path)
        _fsync_dir(path.parent)  # the rename itself on disk
    except BaseException as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.filename is None:  # e.g. ENOSPC from write(): name it
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
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
    atomic_write(path, lambda fh: fh.write(data))


def atomic_savez(path: str | Path, **arrays: np.ndarray) -> None:
    """``np.savez_compressed`` to ``path`` atomically."""
    atomic_write(path, lambda fh: np.savez_compressed(fh, **arrays))


def read_json(path: str | Path) -> Any:
    """The JSON document at ``path``; :class:`DamagedFile` (a ValueError naming the file) when it
    is not valid UTF-8 JSON (truncated, overwritten). A missing or unreadable file raises the
    ``OSError`` of ``open`` (which names it)."""
    with open(path, "rb") as fh:
        data = fh.read()
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DamagedFile(path, f"not valid JSON ({exc})") from None


def load_npz(path: str | Path) -> dict[str, np.ndarray]:
    """Every array of the ``.npz`` at ``path`` (read in full, no pickles); :class:`DamagedFile`
    naming the file when it is not a complete ``.npz`` (not a zip file, truncated, a bad member).
    A missing or unreadable file raises the ``OSError`` of ``open``."""
    import zipfile
    import zlib

    with open(path, "rb") as fh:  # OSError (missing, permission) as it is, with its file name
        if fh.read(4) not in (b"PK\x03\x04", b"PK\x05\x06"):
            raise DamagedFile(path, "not a readable .npz (not a zip archive; nothing was unpickled)")
        fh.seek(0)
        try:
            with np.load(fh, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, KeyError, OSError) as exc:
            raise DamagedFile(path, f"not a readable .npz ({type(exc).__name__}: {exc})") from None


def check_npz_arrays(path: str | Path, flag: str, names: tuple[str, ...] = ("P", "V")) -> None:
    """ValueError naming ``flag`` and the file unless ``path`` is an existing ``.npz`` that reads
    back (:func:`load_npz`: nothing unpickled) and holds the arrays ``names``: the check of a
    weights file before any work is done."""
    p = Path(path)
    if p.suffix != ".npz":
        raise ValueError(f"{flag}: expected an .npz file, got {str(path)!r}")
    if not p.is_file():
        raise ValueError(f"{flag}: no such file {str(path)!r}")
    try:
        arrays = load_npz(p)
    except DamagedFile as exc:
        raise ValueError(f"{flag}: {path} {exc.problem}") from None
    except OSError as exc:
        raise ValueError(f"{flag}: cannot read {path} ({exc.strerror})") from None
    missing = sorted(set(names) - set(arrays))
    if missing:
        raise ValueError(f"{flag}: {path} has no array(s) {missing}; it holds {sorted(arrays)}")


def load_checkpoint(path: str | Path, map_location: Any = None) -> Any:
    """The training checkpoint at ``path`` (``torch.save`` of tensors and plain data), loaded with
    ``torch.load(weights_only=True)``: tensors, dicts, lists, numbers, strings, never pickled code
    (a results directory written by someone else cannot run code here). :class:`DamagedFile`
    naming the file when it is truncated or not a checkpoint, or when it holds other pickled
    objects (refused, not executed). A missing or unreadable file raises the ``OSError`` of
    ``open``."""
    import pickle
    import zipfile

    import torch

    with open(path, "rb") as fh:
        try:
            return torch.load(fh, map_location=map_location, weights_only=True)
        except pickle.UnpicklingError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise DamagedFile(
                path, f"not a weights-only checkpoint, refused rather than unpickled ({first})"
            ) from None
        except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise DamagedFile(path, f"not a readable checkpoint ({type(exc).__name__}: {first})") from None


def progress(iterable, total: int | None = None, desc: str = ""):
    """tqdm progress bar, silent when stderr is not a terminal."""
    import sys

    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, disable=not sys.stderr.isatty(), leave=False)


class Heartbeat:
    """While its ``with`` block runs: every ``every`` seconds, the line ``line(seconds elapsed)``
    on stderr, from a daemon thread (stopped and joined on exit; ``every <= 0``: silent). What a
    long step prints so that it is never silent for minutes."""

    def __init__(self, line, every: float):
        import threading

        self.line, self.every = line, every
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._beat, name="lsa-theory-heartbeat", daemon=True)

    def _beat(self) -> None:
        import sys
        import time

        t0 = time.perf_counter()
        while not self.stop.wait(self.every):
            print(self.line(time.perf_counter() - t0), file=sys.stderr, flush=True)

    def __enter__(self) -> Heartbeat:
        if self.every > 0:
            self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        if self.thread.is_alive():
            self.thread.join()


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
