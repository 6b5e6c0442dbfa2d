r"""The driver of ``lsa-theory sweep`` (:mod:`lsa_theory.experiments.sweep`): :func:`run_sweep` scans
a sweep's grid, skips its finished jobs, runs the others on an executor
(:mod:`lsa_theory.experiments.sweep.jobs`) and writes ``sweep.json``.

**Outputs.** Each job is written atomically to ``OUT/jobs/<hash>.json`` with ``hash`` =
:func:`lsa_theory.experiments.sweep.grid.job_hash` (sha256 of the canonical JSON of kind, full
params and the package version): ``{"kind", "params", "hash", "version", "status": "done" |
"failed", "result" | "error", "seconds"}``. A rerun skips jobs whose file holds
``status == "done"`` and retries failed ones. At the end ``OUT/sweep.json`` holds ``{"kind",
"grid", "version", "versions", "executor", "n_jobs", "n_done", "n_failed", "n_pending",
"n_computed", "n_skipped", "seconds", "jobs": [{"hash", "params", "status", "result" | "error"},
...]}`` in job order (Cartesian product in the order of the ``[grid]`` keys, last key fastest).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from ..io import atomic_write_json, check_out, out_lock, progress, provenance, versions
from ..store import UnitFiles
from .grid import (
    PARAMS,
    SweepConfig,
    _check_grid,
    _check_kind,
    _package_version,
    count_jobs,
    iter_grid,
    job_hash,
    load_config,
)
from .jobs import _run_dask, _run_local, check_dask, run_job

__all__ = ["MAX_JOBS", "PROGRESS_EVERY", "EXECUTORS", "run_sweep"]


#: Largest grid (in jobs, counted from the axis lengths before any expansion) that runs without
#: ``force=True`` / ``--force``. A full scan lists, validates and hashes every job (about 0.1 ms
#: and 1 kB each), and even the fastest control job takes ~20 ms on one core.
MAX_JOBS = 10_000

#: Seconds between two progress lines on stderr when stderr is not a terminal.
PROGRESS_EVERY = 5.0
EXECUTORS = ("local", "dask", "serial")


class _Progress:
    """Progress of one phase of a sweep: a tqdm bar when stderr is a terminal; otherwise a line
    ``"<desc>: <verb> k/total jobs (p%) in t s"`` on stderr at most every ``every`` seconds, and
    a last one at :meth:`close` if the phase lasted ``every`` seconds or more."""

    def __init__(self, desc: str, verb: str, total: int, every: float):
        self.desc, self.verb, self.total, self.every = desc, verb, total, every
        self.k, self.t0 = 0, time.perf_counter()
        self.last, self.printed = self.t0, None
        self.bar = progress(None, total=total, desc=f"{desc} {verb}") if sys.stderr.isatty() else None

    def update(self, k: int = 1) -> None:
        self.k += k
        if self.bar is not None:
            self.bar.update(k)
            return
        now = time.perf_counter()
        if now - self.last >= self.every:
            self._line(now)

    def _line(self, now: float) -> None:
        pct = 100.0 * self.k / max(self.total, 1)
        print(
            f"{self.desc}: {self.verb} {self.k}/{self.total} jobs ({pct:.1f}%) in {now - self.t0:.1f} s",
            file=sys.stderr,
            flush=True,
        )
        self.last, self.printed = now, self.k

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            return
        now = time.perf_counter()
        if self.printed != self.k and (self.printed is not None or now - self.t0 >= self.every):
            self._line(now)


def _check_count(name: str, value: Any, minimum: int) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < minimum):
        kind = "positive" if minimum > 0 else "non-negative"
        raise ValueError(f"{name}: expected a {kind} int, got {value!r}")


def run_sweep(
    config: str | Path | dict,
    out: str | Path | None = None,
    *,
    executor: str = "local",
    address: str | None = None,
    workers: int | None = None,
    limit: int | None = None,
    force: bool = False,
    max_jobs: int = MAX_JOBS,
    progress_every: float = PROGRESS_EVERY,
    seed: int | None = None,
    threads: int = 1,
) -> dict:
    """Run every job of a sweep config and return the ``sweep.json`` document.

    ``config``: a :class:`lsa_theory.experiments.sweep.grid.SweepConfig`, a TOML path or a dict
    ``{"kind", "grid"[, "out"]}``; ``out`` overrides its ``out``. Jobs whose
    ``OUT/jobs/<hash>.json`` is finished are skipped; the others (new or failed) run on
    ``executor`` ("local", "dask" at ``address`` or a new LocalCluster, "serial") with ``workers``
    processes (default ``os.cpu_count()``); ``limit`` runs at most that many (the rest stay
    ``"pending"``). Each result file is written as soon as its job finishes.

    The number of jobs is counted from the grid's axis lengths before anything is expanded; a
    grid of more than ``max_jobs`` (default :data:`MAX_JOBS`) is refused at once with a
    ValueError unless ``force=True``. Jobs are then expanded, validated and hashed lazily: a
    grid of at most ``max_jobs`` is scanned in full before anything runs (every value checked,
    every job listed in ``sweep.json``); a forced larger grid is scanned only until ``limit``
    pending jobs are found, and ``sweep.json`` lists that scanned prefix (``n_listed`` rows,
    unscanned jobs counted in ``n_pending``). Off a terminal, a progress line goes to stderr
    every ``progress_every`` seconds, during the scan and during the run.

    ``seed`` (``--seed S``) shifts every job's ``seed`` by ``S`` (the grid's values, or the
    default 0 when the grid has none); ``threads``: BLAS threads of each job (default 1).
    Nothing is written before every check has passed (the options, the grid, every scanned job,
    ``--out``, a dask scheduler at ``address``); then ``OUT`` is locked for this process
    (:class:`lsa_theory.experiments.io.out_lock`: a second sweep on it is refused) and
    ``OUT/provenance.json`` records the config (kind and grid, not the config file's path: job
    files are content-addressed, so a rerun never conflicts with them), seed and versions.
    """
    if isinstance(config, SweepConfig):
        cfg = config.as_dict()
    elif isinstance(config, dict):
        cfg = {"kind": _check_kind(config.get("kind")), "out": config.get("out", "results/sweep")}
        cfg["grid"] = _check_grid(cfg["kind"], config.get("grid"))
    else:
        cfg = load_config(config)
    if executor not in EXECUTORS:
        raise ValueError(f"executor: expected one of {EXECUTORS}, got {executor!r}")
    _check_count("workers", workers, 1)
    _check_count("limit", limit, 0)
    _check_count("max_jobs", max_jobs, 1)
    if max_jobs is None:
        raise ValueError("max_jobs: expected a positive int, got None")
    every_ok = isinstance(progress_every, int | float) and not isinstance(progress_every, bool)
    if not (every_ok and progress_every >= 0):
        raise ValueError(f"progress_every: expected seconds >= 0, got {progress_every!r}")
    if address is not None and executor != "dask":
        raise ValueError(f"address: only used by executor 'dask', got executor {executor!r}")
    _check_count("threads", threads, 1)
    _check_count("seed", seed, 0)
    workers = workers or os.cpu_count() or 1
    kind = cfg["kind"]
    if seed:
        base = PARAMS[kind]["seed"][1]
        cfg["grid"] = {**cfg["grid"], "seed": [s + seed for s in cfg["grid"].get("seed", [base])]}
    n_jobs = count_jobs(kind, cfg["grid"])
    if n_jobs > max_jobs and not force:
        raise ValueError(
            f"grid: {n_jobs} jobs > max_jobs = {max_jobs}; pass --force (force=True) to scan and run "
            "it anyway (with --limit N to run only N of them), or shrink the grid"
        )
    full_scan = n_jobs <= max_jobs
    out = check_out(out if out is not None else cfg["out"])
    if executor == "dask":
        check_dask(address)
    # one file per finished job; its hash covers params and version
    store = UnitFiles(out / "jobs", label="sweep")
    version = _package_version()
    desc = f"sweep {kind}"
    listed: list[tuple[str, dict]] = []
    records: dict[str, dict] = {}
    todo: list[tuple[str, dict]] = []
    seen = set()
    scan = _Progress(desc, "scanned", n_jobs, progress_every)
    try:
        for p in iter_grid(kind, cfg["grid"]):
            if not full_scan and limit is not None and len(todo) >= limit:
                break
            h = job_hash(kind, p, version)
            listed.append((h, p))
            if h not in seen:
                rec = store.get(h, finished=lambda r: r.get("status") == "done")
                if rec is not None:
                    records[h] = rec
                elif limit is None or len(todo) < limit:
                    todo.append((h, p))
            seen.add(h)
            scan.update(1)
    finally:
        scan.close()
    with out_lock(out):
        atomic_write_json(out / "provenance.json", provenance({"kind": kind, "grid": cfg["grid"]}, seed or 0))
        return _run_listed(
            kind, cfg, out, version, listed, records, todo, n_jobs,
            executor=executor, address=address, workers=workers, threads=threads,
            progress_every=progress_every, store=store,
        )  # fmt: skip


def _run_listed(
    kind, cfg, out, version, listed, records, todo, n_jobs, *, executor, address, workers, threads,
    progress_every, store,
) -> dict:  # fmt: skip
    """Run the pending jobs ``todo`` of a scanned sweep and write ``sweep.json`` (:func:`run_sweep`)."""
    desc = f"sweep {kind}"
    n_skipped = len(records)
    t0 = time.perf_counter()
    run = _Progress(desc, "ran", len(todo), progress_every)
    params_of = dict(todo)

    def on_done(h: str, rec: dict) -> None:
        doc = {"kind": kind, "params": params_of[h], "hash": h, "version": version, **rec}
        store.put(h, doc)
        records[h] = doc
        run.update(1)

    try:
        if todo:
            if executor == "serial":
                for h, p in todo:
                    on_done(h, run_job(kind, p, threads))
            elif executor == "local":
                _run_local(kind, todo, workers, on_done, threads)
            else:
                _run_dask(kind, todo, workers, address, on_done, threads)
    except KeyboardInterrupt:  # say what is kept (each finished job's file is already written)
        ran = len(records) - n_skipped
        print(
            f"sweep: {ran} job(s) finished in this run and {n_skipped} from earlier runs are kept in "
            f"{store.directory}; rerun the same command to run the other {len(todo) - ran}",
            file=sys.stderr,
            flush=True,
        )
        raise
    finally:
        run.close()
    rows = []
    for h, p in listed:
        rec = records.get(h)
        row = {"hash": h, "params": p, "status": rec["status"] if rec else "pending"}
        if rec and rec["status"] == "done":
            row["result"] = rec["result"]
        elif rec:
            row["error"] = rec["error"]
        rows.append(row)
    n_done = sum(r["status"] == "done" for r in rows)
    n_failed = sum(r["status"] == "failed" for r in rows)
    doc = {
        "kind": kind,
        "grid": cfg["grid"],
        "version": version,
        "versions": versions(),
        "executor": executor,
        "n_jobs": n_jobs,
        "n_listed": len(rows),
        "n_done": n_done,
        "n_failed": n_failed,
        "n_pending": n_jobs - n_done - n_failed,
        "n_computed": len(todo),
        "n_skipped": n_skipped,
        "seconds": time.perf_counter() - t0,
        "jobs": rows,
    }
    atomic_write_json(out / "sweep.json", doc)
    return doc
