r"""``lsa-theory sweep CONFIG.toml``: a grid of converge / diversity / control jobs, resumable.

**Config** (TOML, read with :mod:`tomllib`)::

    [sweep]
    kind = "control"          # "converge" | "diversity" | "control"
    out = "results/sweep"     # default output directory (``--out`` overrides)

    [grid]                    # parameter name -> list of values; jobs = Cartesian product
    seed = [0, 1, 2]
    n_updates = [20, 50]

Parameters not named in ``[grid]`` take the defaults of :data:`PARAMS`. Per kind:

- ``converge`` (one gradient flow, :func:`experiments.converge._one_run`): ``algo`` ("sarsa" |
  "actor_critic"), ``seed`` (teacher data ``default_rng(seed)`` and the perturbation), ``c``
  (scale of the construction, non-zero), ``radius`` (relative size of the perturbation), ``S``,
  ``A``, ``k`` (training MDPs), ``frames`` (frames per MDP). Metrics: ``loss0``, ``loss_final``,
  ``dist_final``, ``rate_fit``, ``rate_pred``, ``rate_ratio``, ``rate_ratio_a_priori``,
  ``pl_min_ratio``, ``conserved_drift``, ``c_pred``,
  ``c_final``, ``ker_dim``, ``tangent_dim``, ``rich``, ``scaling_only``, ``converged``, ...
- ``diversity`` (one row, :func:`experiments.diversity._row`): ``k``, ``features`` ("uniform" |
  "onehot" | ...), ``shared_features`` (bool), ``reward`` ("sa" | "sas"), ``frames``, ``seed``,
  and ``index`` (row index of the random streams ``default_rng([seed, index, ...])``; 0 by default).
  Metrics: ``ker_dim`` (certified; None when undecided), ``kernel_certified``, ``tangent_dim``,
  ``morse_bott``, ``scaling_only``, ``lambda_min_plus``,
  ``heldout_err``, ``dist_final``, ...
- ``control`` (one deployment unit, :func:`experiments.control._run_unit`): ``env`` (env key, e.g.
  "random-S9-A4" or "FrozenLake-v1:is_slippery=False"), ``algo``, ``seed`` (the unit index: the
  held-out MDP index for "random-S9-A4", the seed index for gymnasium envs; family seed 0),
  ``n`` (context length), ``n_updates``, ``weights`` ("constructed" or an ``.npz`` path),
  ``alpha``, ``epsilon``, ``tabular`` (bool). Metrics: ``normalized_return`` (block),
  ``normalized_return_teacher``, ``normalized_return_tabular``, ``max_w_diff``, ...

Wall times are kept out of the metrics (they are in each job file as ``seconds``), so the metrics
of a job are a deterministic function of (kind, params).

**Outputs.** Each job is written atomically to ``OUT/jobs/<hash>.json`` with ``hash`` =
:func:`job_hash` (sha256 of the canonical JSON of kind, full params and the package version):
``{"kind", "params", "hash", "version", "status": "done" | "failed", "result" | "error",
"seconds"}``. A rerun skips jobs whose file holds ``status == "done"`` and retries failed ones.
At the end ``OUT/sweep.json`` holds ``{"kind", "grid", "version", "versions", "executor",
"n_jobs", "n_done", "n_failed", "n_pending", "n_computed", "n_skipped", "seconds", "jobs":
[{"hash", "params", "status", "result" | "error"}, ...]}`` in job order (Cartesian product in the
order of the ``[grid]`` keys, last key fastest).

**Executors.** ``"local"``: :class:`concurrent.futures.ProcessPoolExecutor` with the
``forkserver`` (or ``spawn``) context; ``"dask"``: :class:`dask.distributed.Client` at
``address``, or a ``LocalCluster(n_workers, threads_per_worker=1, processes=True)`` without one;
``"serial"``: in this process (for debugging). Every job runs with BLAS limited to one thread.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import itertools
import json
import math
import multiprocessing
import os
import sys
import time
import tomllib
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .io import atomic_write_json, progress, read_json, to_jsonable, versions

__all__ = [
    "KINDS",
    "EXECUTORS",
    "PARAMS",
    "MAX_JOBS",
    "PROGRESS_EVERY",
    "load_config",
    "count_jobs",
    "iter_grid",
    "expand_grid",
    "job_hash",
    "run_job",
    "run_sweep",
    "add_parser",
    "main_sweep",
]

KINDS = ("converge", "diversity", "control")

#: Largest grid (in jobs, counted from the axis lengths before any expansion) that runs without
#: ``force=True`` / ``--force``. A full scan lists, validates and hashes every job (about 0.1 ms
#: and 1 kB each), and even the fastest control job takes ~20 ms on one core.
MAX_JOBS = 10_000

#: Seconds between two progress lines on stderr when stderr is not a terminal.
PROGRESS_EVERY = 5.0
EXECUTORS = ("local", "dask", "serial")

#: Parameters accepted by each kind: name -> (type, default). ``float`` parameters accept ints.
PARAMS: dict[str, dict[str, tuple[type, Any]]] = {
    "converge": {
        "algo": (str, "sarsa"),
        "seed": (int, 0),
        "c": (float, 1.0),
        "radius": (float, 1e-2),
        "S": (int, 2),
        "A": (int, 2),
        "k": (int, 20),
        "frames": (int, 10),
    },
    "diversity": {
        "k": (int, 20),
        "features": (str, "uniform"),
        "shared_features": (bool, False),
        "reward": (str, "sa"),
        "frames": (int, 10),
        "seed": (int, 0),
        "index": (int, 0),
    },
    "control": {
        "env": (str, "random-S9-A4"),
        "algo": (str, "sarsa"),
        "seed": (int, 0),
        "n": (int, 20),
        "n_updates": (int, 300),
        "weights": (str, "constructed"),
        "alpha": (float, 0.2),
        "epsilon": (float, 0.1),
        "tabular": (bool, True),
    },
}


def _package_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("lsa-theory")
    except metadata.PackageNotFoundError:  # pragma: no cover - always installed in practice
        return "unknown"


# --------------------------------------------------------------------------------------------------
# config, grid and hashing
# --------------------------------------------------------------------------------------------------


def _coerce(kind: str, name: str, value: Any) -> Any:
    """``value`` of parameter ``name`` as its declared type (ints accepted for floats)."""
    typ = PARAMS[kind][name][0]
    if typ is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if typ is int and isinstance(value, int) and not isinstance(value, bool):
        return int(value)
    if typ in (str, bool) and type(value) is typ:
        return value
    raise ValueError(f"grid.{name}: expected {typ.__name__} values for kind {kind!r}, got {value!r}")


def _check_kind(kind: Any) -> str:
    if kind not in KINDS:
        raise ValueError(f"kind: expected one of {KINDS}, got {kind!r}")
    return kind


def _check_grid(kind: str, grid: Any) -> dict[str, list]:
    """Validated grid: known parameter names, non-empty lists of values of the right type."""
    if not isinstance(grid, dict) or not grid:
        raise ValueError("grid: expected a non-empty table of parameter -> list of values")
    out = {}
    for name, values in grid.items():
        if name not in PARAMS[kind]:
            raise ValueError(
                f"grid.{name}: unknown parameter for kind {kind!r}; expected one of {sorted(PARAMS[kind])}"
            )
        if not isinstance(values, list) or not values:
            raise ValueError(f"grid.{name}: expected a non-empty list of values, got {values!r}")
        out[name] = [_coerce(kind, name, v) for v in values]
    return out


def load_config(path: str | Path) -> dict:
    """Read a sweep TOML file: ``{"kind", "out", "grid"}`` validated (ValueError naming the field)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"config: no such file {str(path)!r}")
    try:
        with open(path, "rb") as fh:
            doc = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"config: {path} is not valid TOML: {exc}") from exc
    extra = set(doc) - {"sweep", "grid"}
    if extra:
        raise ValueError(f"config: unknown tables {sorted(extra)}; expected [sweep] and [grid]")
    sweep = doc.get("sweep")
    if not isinstance(sweep, dict):
        raise ValueError("sweep: missing [sweep] table with 'kind'")
    extra = set(sweep) - {"kind", "out"}
    if extra:
        raise ValueError(f"sweep: unknown keys {sorted(extra)}; expected 'kind' and 'out'")
    kind = _check_kind(sweep.get("kind"))
    out = sweep.get("out", "results/sweep")
    if not isinstance(out, str) or not out:
        raise ValueError(f"sweep.out: expected a directory name, got {out!r}")
    if "grid" not in doc:
        raise ValueError("grid: missing [grid] table")
    return {"kind": kind, "out": out, "grid": _check_grid(kind, doc["grid"])}


def _validate_params(kind: str, p: dict) -> None:
    """Build the configuration objects of one job (cheap) so that bad values fail before running.

    The configuration objects do not depend on ``seed`` and ``index`` (checked here directly), so
    the rest is validated once per distinct combination (:func:`_validate_config`)."""
    if kind in ("diversity", "control") and p["seed"] < 0:
        raise ValueError(f"seed: must be >= 0, got {p['seed']}")
    if kind == "diversity" and p["index"] < 0:
        raise ValueError(f"index: must be >= 0, got {p['index']}")
    rest = tuple(sorted((k, v) for k, v in p.items() if k not in ("seed", "index")))
    _validate_config(kind, rest)


@functools.lru_cache(maxsize=4096)
def _validate_config(kind: str, rest: tuple) -> None:
    p = {**dict(rest), "seed": 0, "index": 0}
    if kind == "converge":
        from .converge import ConvergeConfig

        ConvergeConfig(
            algo=p["algo"], S=p["S"], A=p["A"], k=p["k"], frames=p["frames"], seeds=(p["seed"],),
            scales=(p["c"],), radii=(p["radius"],),
        )  # fmt: skip
    elif kind == "diversity":
        import dynamics as dy

        dy.TeacherSpec(
            k=p["k"], frames=p["frames"], features=p["features"], shared_features=p["shared_features"],
            reward=p["reward"],
        )  # fmt: skip
    else:
        _control_config(p)


def count_jobs(kind: str, grid: dict[str, list]) -> int:
    """Number of jobs of ``grid``: the product of its axis lengths, known before any expansion."""
    return math.prod(len(v) for v in _check_grid(_check_kind(kind), grid).values())


def iter_grid(kind: str, grid: dict[str, list]) -> Iterator[dict]:
    """The jobs of :func:`expand_grid` one at a time (lazily): a job is built and validated only
    when it is reached, so the first ``m`` jobs of a huge grid cost ``O(m)``."""
    kind = _check_kind(kind)
    grid = _check_grid(kind, grid)
    defaults = {name: default for name, (_, default) in PARAMS[kind].items()}
    names = list(grid)
    for values in itertools.product(*(grid[n] for n in names)):
        params = {**defaults, **dict(zip(names, values, strict=True))}
        _validate_params(kind, params)
        yield params


def expand_grid(kind: str, grid: dict[str, list]) -> list[dict]:
    """Cartesian product of ``grid`` (last key fastest), each point completed with the defaults
    of :data:`PARAMS` and coerced to the declared types; every job's values are validated."""
    return list(iter_grid(kind, grid))


def job_hash(kind: str, params: dict, version: str | None = None) -> str:
    """sha256 (hex) of the canonical JSON (sorted keys, no spaces) of ``{"kind", "params",
    "version"}``; ``version`` defaults to the installed ``lsa-theory`` version. Independent of
    the order of ``params``."""
    doc = {"kind": kind, "params": params, "version": _package_version() if version is None else version}
    text = json.dumps(to_jsonable(doc), sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


# --------------------------------------------------------------------------------------------------
# jobs (top-level, picklable)
# --------------------------------------------------------------------------------------------------


def _control_config(p: dict):
    from .control import ControlConfig

    return ControlConfig(
        envs=(p["env"],),
        actor_critic_envs=(),
        env_algos=(p["algo"],),
        weights=p["weights"],
        n=p["n"],
        n_updates=p["n_updates"],
        alpha=p["alpha"],
        epsilon=p["epsilon"],
        tabular=p["tabular"],
    )


def _converge_job(p: dict) -> dict:
    import numpy as np

    import dynamics as dy

    from .converge import ConvergeConfig, _one_run

    cfg = ConvergeConfig(
        algo=p["algo"], S=p["S"], A=p["A"], k=p["k"], frames=p["frames"], seeds=(p["seed"],),
        scales=(p["c"],), radii=(p["radius"],),
    )  # fmt: skip
    ds = dy.teacher_dataset(cfg.spec(), np.random.default_rng(p["seed"]))
    row, _ = _one_run(cfg, ds, p["seed"], p["c"], p["radius"])
    return row


def _diversity_job(p: dict) -> dict:
    from .diversity import DiversityConfig, _row

    cfg = DiversityConfig(seed=p["seed"])
    spec = {k: p[k] for k in ("k", "features", "shared_features", "reward", "frames")} | {"table": "sweep"}
    return _row(cfg, spec, p["index"])


def _control_job(p: dict) -> dict:
    from .control import _algorithm, _MDPCache, _run_unit

    _algorithm(p["algo"])  # ValueError naming the registered closed-loop algorithms
    cfg = _control_config(p)
    row, _ = _run_unit(cfg, _MDPCache(cfg), p["env"], p["algo"], p["seed"])
    return row


_JOBS = {"converge": _converge_job, "diversity": _diversity_job, "control": _control_job}


def run_job(kind: str, params: dict) -> dict:
    """One job: ``{"status": "done", "result": metrics, "seconds"}`` or, if it raised,
    ``{"status": "failed", "error": traceback, "seconds"}``. Runs with BLAS (and torch, if
    loaded) limited to one thread; ``wall_time`` is dropped from the metrics (not deterministic)."""
    from threadpoolctl import threadpool_limits

    t0 = time.perf_counter()
    try:
        if "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(1)
        with threadpool_limits(limits=1, user_api="blas"):
            result = _JOBS[kind](dict(params))
        result = {k: v for k, v in to_jsonable(result).items() if k != "wall_time"}
        return {"status": "done", "result": result, "seconds": time.perf_counter() - t0}
    except Exception:
        return {"status": "failed", "error": traceback.format_exc(), "seconds": time.perf_counter() - t0}


# --------------------------------------------------------------------------------------------------
# executors
# --------------------------------------------------------------------------------------------------


def _mp_context():
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


def _run_local(kind, todo, workers, on_done):
    from concurrent.futures import ProcessPoolExecutor, as_completed

    with ProcessPoolExecutor(max_workers=workers, mp_context=_mp_context()) as pool:
        futures = {pool.submit(run_job, kind, p): h for h, p in todo}
        for fut in as_completed(futures):
            try:
                rec = fut.result()
            except Exception:  # e.g. a worker died: record it, keep the others
                rec = {"status": "failed", "error": traceback.format_exc(), "seconds": None}
            on_done(futures[fut], rec)


def _run_dask(kind, todo, workers, address, on_done):
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError as exc:
        raise ImportError(
            "executor: 'dask' needs dask.distributed; install it with pip install 'lsa-theory[sweep]' "
            "or pip install 'dask[distributed]'"
        ) from exc
    cluster = None
    if address is None:
        cluster = LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
        )
        client = Client(cluster)
    else:
        client = Client(address)
    try:
        futures = {}
        for h, p in todo:
            futures[client.submit(run_job, kind, p, key=f"sweep-{h}", pure=False)] = h
        for fut in as_completed(list(futures)):
            try:
                rec = fut.result()
            except Exception:
                rec = {"status": "failed", "error": traceback.format_exc(), "seconds": None}
            on_done(futures[fut], rec)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


# --------------------------------------------------------------------------------------------------
# driver
# --------------------------------------------------------------------------------------------------


def _finished(path: Path) -> dict | None:
    """The job record at ``path`` if it is a finished (``status == "done"``) job, else ``None``."""
    if not path.is_file():
        return None
    try:
        rec = read_json(path)
    except (OSError, ValueError):
        return None
    return rec if isinstance(rec, dict) and rec.get("status") == "done" else None


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
) -> dict:
    """Run every job of a sweep config and return the ``sweep.json`` document.

    ``config``: a TOML path or a dict ``{"kind", "grid"[, "out"]}``; ``out`` overrides its
    ``out``. Jobs whose ``OUT/jobs/<hash>.json`` is finished are skipped; the others (new or
    failed) run on ``executor`` ("local", "dask" at ``address`` or a new LocalCluster, "serial")
    with ``workers`` processes (default ``os.cpu_count()``); ``limit`` runs at most that many
    (the rest stay ``"pending"``). Each result file is written as soon as its job finishes.

    The number of jobs is counted from the grid's axis lengths before anything is expanded; a
    grid of more than ``max_jobs`` (default :data:`MAX_JOBS`) is refused at once with a
    ValueError unless ``force=True``. Jobs are then expanded, validated and hashed lazily: a
    grid of at most ``max_jobs`` is scanned in full before anything runs (every value checked,
    every job listed in ``sweep.json``); a forced larger grid is scanned only until ``limit``
    pending jobs are found, and ``sweep.json`` lists that scanned prefix (``n_listed`` rows,
    unscanned jobs counted in ``n_pending``). Off a terminal, a progress line goes to stderr
    every ``progress_every`` seconds, during the scan and during the run.
    """
    if isinstance(config, dict):
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
    workers = workers or os.cpu_count() or 1
    kind = cfg["kind"]
    n_jobs = count_jobs(kind, cfg["grid"])
    if n_jobs > max_jobs and not force:
        raise ValueError(
            f"grid: {n_jobs} jobs > max_jobs = {max_jobs}; pass --force (force=True) to scan and run "
            "it anyway (with --limit N to run only N of them), or shrink the grid"
        )
    full_scan = n_jobs <= max_jobs
    out = Path(out if out is not None else cfg["out"])
    jobs_dir = out / "jobs"
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
                rec = _finished(jobs_dir / f"{h}.json")
                if rec is not None:
                    records[h] = rec
                elif limit is None or len(todo) < limit:
                    todo.append((h, p))
            seen.add(h)
            scan.update(1)
    finally:
        scan.close()
    n_skipped = len(records)
    t0 = time.perf_counter()
    run = _Progress(desc, "ran", len(todo), progress_every)
    params_of = dict(todo)

    def on_done(h: str, rec: dict) -> None:
        doc = {"kind": kind, "params": params_of[h], "hash": h, "version": version, **rec}
        atomic_write_json(jobs_dir / f"{h}.json", doc)
        records[h] = doc
        run.update(1)

    try:
        if todo:
            if executor == "serial":
                for h, p in todo:
                    on_done(h, run_job(kind, p))
            elif executor == "local":
                _run_local(kind, todo, workers, on_done)
            else:
                _run_dask(kind, todo, workers, address, on_done)
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


# --------------------------------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------------------------------


def add_parser(sub) -> argparse.ArgumentParser:
    """Register ``sweep`` on an ``argparse`` subparsers object; sets ``func=main_sweep``."""
    p = sub.add_parser("sweep", help="grid of converge/diversity/control jobs from a TOML config (resumable)")
    p.add_argument("config", help="TOML file with [sweep] kind/out and [grid] parameter lists")
    p.add_argument("--executor", choices=("local", "dask"), default="local")
    p.add_argument("--address", default=None, help="dask scheduler address (default: a new LocalCluster)")
    p.add_argument("--workers", type=int, default=None, help="worker processes (default: CPU count)")
    p.add_argument("--out", default=None, help="output directory (default: [sweep] out)")
    p.add_argument("--limit", type=int, default=None, help="run at most this many pending jobs")
    p.add_argument(
        "--force",
        action="store_true",
        help=f"run a grid of more than --max-jobs jobs (default {MAX_JOBS}) instead of refusing it",
    )
    p.add_argument("--max-jobs", type=int, default=MAX_JOBS, help="largest grid that runs without --force")
    p.set_defaults(func=main_sweep)
    return p


def main_sweep(args: argparse.Namespace) -> int:
    """Run the sweep of ``args`` (config, executor, address, workers, out, limit); print a summary
    and return 0 when no job failed, 1 otherwise."""
    try:
        doc = run_sweep(
            args.config,
            args.out,
            executor=args.executor,
            address=args.address,
            workers=args.workers,
            limit=getattr(args, "limit", None),
            force=getattr(args, "force", False),
            max_jobs=getattr(args, "max_jobs", MAX_JOBS),
        )
    except ValueError as exc:
        print(f"lsa-theory sweep: {exc}", file=sys.stderr)
        return 2
    out = args.out if args.out is not None else load_config(args.config)["out"]
    print(
        f"sweep {doc['kind']}: {doc['n_jobs']} jobs, {doc['n_done']} done, {doc['n_failed']} failed, "
        f"{doc['n_pending']} pending; computed {doc['n_computed']}, skipped {doc['n_skipped']} "
        f"in {doc['seconds']:.1f} s -> {out}/sweep.json"
    )
    for row in doc["jobs"]:
        if row["status"] == "failed":
            last = row["error"].strip().splitlines()[-1]
            print(f"  failed {row['hash'][:12]} {row['params']}: {last}")
    return 1 if doc["n_failed"] else 0


def main(argv: list[str] | None = None) -> int:
    """``python -m experiments.sweep CONFIG [options]`` (same options as ``lsa-theory sweep``)."""
    parser = argparse.ArgumentParser(prog="python -m experiments.sweep")
    add_parser(parser.add_subparsers(dest="command", required=True))
    return main_sweep(parser.parse_args(["sweep", *(sys.argv[1:] if argv is None else argv)]))


if __name__ == "__main__":
    sys.exit(main())
