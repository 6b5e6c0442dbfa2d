"""The jobs of ``lsa-theory sweep`` (:mod:`lsa_theory.experiments.sweep`): the units of a sweep's
configuration (:func:`units`: one :class:`Job` per grid point), one converge / diversity / control
job (top-level, picklable) and the executors that run them.

**Executors.** ``"local"``: :class:`concurrent.futures.ProcessPoolExecutor` with the
``forkserver`` (or ``spawn``) context; ``"dask"``: :class:`dask.distributed.Client` at
``address``, or a ``LocalCluster(n_workers, threads_per_worker=1, processes=True)`` without one;
``"serial"``: in this process (for debugging). Every job runs with BLAS limited to one thread.
"""

from __future__ import annotations

import multiprocessing
import sys
import time
import traceback
from typing import NamedTuple

from ..io import to_jsonable
from .grid import SweepConfig, _control_config, _package_version, iter_grid, job_hash

# --------------------------------------------------------------------------------------------------
# jobs (top-level, picklable)
# --------------------------------------------------------------------------------------------------


def _converge_job(p: dict) -> dict:
    from .. import converge

    cfg = converge.Config(
        algo=p["algo"], S=p["S"], A=p["A"], k=p["k"], frames=p["frames"], seeds=(p["seed"],),
        scales=(p["c"],), radii=(p["radius"],),
    )  # fmt: skip
    row, _ = converge.run_unit(cfg, converge.Unit("", "runs", p["seed"], p["c"], p["radius"]))
    del row["key"]  # a sweep job's record has no converge key (its file is named by the job hash)
    return row


def _diversity_job(p: dict) -> dict:
    from .. import diversity

    cfg = diversity.Config(seed=p["seed"])
    spec = {k: p[k] for k in ("k", "features", "shared_features", "reward", "frames")} | {"table": "sweep"}
    return diversity.run_unit(cfg, diversity.Unit(str(p["index"]), p["index"], spec))[0]


def _control_job(p: dict) -> dict:
    from ..control import Unit, run_unit, unit_key

    cfg = _control_config(p)
    cfg.algorithm(p["algo"])  # ValueError naming the registered closed-loop algorithms
    row, _ = run_unit(cfg, Unit(unit_key(p["env"], p["algo"], p["seed"]), p["env"], p["algo"], p["seed"]))
    return row


_JOBS = {"converge": _converge_job, "diversity": _diversity_job, "control": _control_job}


def run_job(kind: str, params: dict, threads: int = 1) -> dict:
    """One job: ``{"status": "done", "result": metrics, "seconds"}`` or, if it raised,
    ``{"status": "failed", "error": traceback, "seconds"}``. Runs with BLAS (and torch, if
    loaded) limited to ``threads`` threads (default one); ``wall_time`` is dropped from the
    metrics (not deterministic)."""
    from threadpoolctl import threadpool_limits

    t0 = time.perf_counter()
    try:
        if "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(threads)
        with threadpool_limits(limits=threads, user_api="blas"):
            result = _JOBS[kind](dict(params))
        result = {k: v for k, v in to_jsonable(result).items() if k != "wall_time"}
        return {"status": "done", "result": result, "seconds": time.perf_counter() - t0}
    except Exception:
        return {"status": "failed", "error": traceback.format_exc(), "seconds": time.perf_counter() - t0}


class Job(NamedTuple):
    """One job of a sweep: ``key`` (:func:`lsa_theory.experiments.sweep.grid.job_hash` of kind,
    params and the installed version: its file ``OUT/jobs/<key>.json``), ``kind`` and ``params``
    (every parameter of :data:`lsa_theory.experiments.sweep.grid.PARAMS`, coerced and checked)."""

    key: str
    kind: str
    params: dict


def units(cfg: SweepConfig) -> list[Job]:
    """The jobs of ``cfg`` in the order of ``sweep.json`` (the Cartesian product of the grid, last
    name fastest: :func:`lsa_theory.experiments.sweep.grid.iter_grid`), every one expanded and
    checked. A value repeated in the grid repeats its job (same key; a sweep runs it once)."""
    version = _package_version()
    return [
        Job(job_hash(cfg.kind, p, version), cfg.kind, p) for p in iter_grid(cfg.kind, cfg.as_dict()["grid"])
    ]


def run_unit(cfg: SweepConfig, unit: Job, threads: int = 1) -> dict:
    """One job of :func:`units` run here (:func:`run_job` with ``threads`` BLAS threads): ``{"status":
    "done", "result": metrics, "seconds"}`` or ``{"status": "failed", "error": traceback,
    "seconds"}``."""
    if unit.kind != cfg.kind:
        raise ValueError(f"unit: a {unit.kind!r} job is not a unit of a {cfg.kind!r} sweep")
    return run_job(cfg.kind, unit.params, threads)


# --------------------------------------------------------------------------------------------------
# executors
# --------------------------------------------------------------------------------------------------


def _mp_context():
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


#: Seconds between two checks of a pool worker that the sweep's main process is still there.
WATCH_EVERY = 0.5

#: Exit status of a pool worker that ends itself because the sweep's main process is gone or
#: asked it to stop (:func:`_worker_init`).
EXIT_ORPHANED = 3


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie (a killed parent not yet reaped)."""
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True  # no /proc (not Linux): os.kill's answer


def _worker_init(main_pid: int, stop) -> None:
    """Initializer of every local pool worker: ignore SIGINT (Ctrl-C reaches the whole process
    group; the sweep's main process handles it and stops the workers), and watch, from a daemon
    thread every :data:`WATCH_EVERY` seconds, that the sweep's main process ``main_pid`` and this
    worker's parent (the forkserver) are alive and that ``stop`` (a multiprocessing Event the main
    process sets when interrupted) is not set; otherwise end this worker at once
    (``os._exit(EXIT_ORPHANED)``): workers die with their parent, even when it is killed with
    SIGKILL (as an out-of-memory kill does) and cannot tell them."""
    import os
    import signal
    import threading

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = os.getppid()

    def watch() -> None:
        while not stop.wait(WATCH_EVERY):
            if os.getppid() != parent or not _alive(main_pid):
                break
        os._exit(EXIT_ORPHANED)

    threading.Thread(target=watch, name="lsa-theory-parent-watch", daemon=True).start()


def _run_local(kind, todo, workers, on_done, threads: int = 1):
    """Run ``todo`` on a local process pool, ``on_done(hash, record)`` as each job finishes. On
    Ctrl-C (KeyboardInterrupt in this process) say at once on stderr what is being stopped, cancel
    the queued jobs, end the running ones (:func:`_worker_init`) and re-raise, within about
    :data:`WATCH_EVERY` seconds rather than after the running jobs finish."""
    import os
    from concurrent.futures import ProcessPoolExecutor, as_completed

    ctx = _mp_context()
    stop = ctx.Event()
    pool = ProcessPoolExecutor(
        max_workers=workers, mp_context=ctx, initializer=_worker_init, initargs=(os.getpid(), stop)
    )
    futures = {pool.submit(run_job, kind, p, threads): h for h, p in todo}
    try:
        _drain(as_completed(futures), futures, on_done)
    except KeyboardInterrupt:
        running = sum(f.running() for f in futures)
        cancelled = sum(f.cancel() for f in futures)
        print(
            f"sweep: interrupted: cancelled {cancelled} queued job(s), stopping {running} running "
            "job(s) (their work is lost)",
            file=sys.stderr,
            flush=True,
        )
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def _drain(completed, futures: dict, on_done) -> None:
    """``on_done(hash, record)`` for every future as it completes (``futures``: future -> hash)."""
    for fut in completed:
        try:
            rec = fut.result()
        except Exception:  # e.g. a worker died: record it, keep the others
            rec = {"status": "failed", "error": traceback.format_exc(), "seconds": None}
        on_done(futures[fut], rec)


def check_dask(address: str | None, timeout: float = 5.0) -> None:
    """Before any work: ValueError naming ``--executor`` when dask.distributed is not installed,
    and naming ``--address`` when nothing accepts a TCP connection at ``address``
    (``[tcp://]host:port``) within ``timeout`` seconds, or what answers is not a dask scheduler
    (dask's own client waits 30 s, then raises a traceback)."""
    import socket

    if address is not None:
        rest = address.split("://", 1)[1] if "://" in address else address
        host, sep, port = rest.rpartition(":")
        if not sep or not port.isdigit():
            raise ValueError(f"--address: expected [tcp://]host:port, got {address!r}")
        try:
            socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout=timeout).close()
        except OSError as exc:
            raise ValueError(
                f"--address: no dask scheduler answers at {address!r} ({exc.strerror or exc})"
            ) from None
    try:
        from dask.distributed import Client
    except ImportError:
        raise ValueError(
            "--executor dask: needs dask.distributed; install it with pip install 'lsa-theory[sweep]' "
            "or pip install 'dask[distributed]'"
        ) from None
    if address is not None:  # something answers: is it a dask scheduler? (a handshake, then close)
        _connect(Client, address, timeout).close()


def _connect(Client, address: str, timeout: float = 10.0):
    """``Client(address)`` or ValueError naming ``--address`` (whatever went wrong: a timeout, a
    peer that is not a dask scheduler, a refused connection)."""
    try:
        return Client(address, timeout=timeout)
    except Exception as exc:  # OSError, TimeoutError, garbage from a non-dask peer (MemoryError), ...
        what = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise ValueError(
            f"--address: no dask scheduler answers at {address!r} ({type(exc).__name__}: {what})"
        ) from None


def _run_dask(kind, todo, workers, address, on_done, threads: int = 1):
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
        client = _connect(Client, address)
    try:
        futures = {}
        for h, p in todo:
            futures[client.submit(run_job, kind, p, threads, key=f"sweep-{h}", pure=False)] = h
        _drain(as_completed(list(futures)), futures, on_done)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
