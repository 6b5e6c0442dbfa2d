"""The command line of ``lsa-theory sweep`` and ``python -m lsa_theory.experiments.sweep``: the
options of :func:`lsa_theory.experiments.sweep.driver.run_sweep`, a summary line and the exit code."""

from __future__ import annotations

import argparse
import sys

from .driver import MAX_JOBS, run_sweep
from .grid import load_config

__all__ = ["add_parser", "main_sweep", "main"]


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
    p.add_argument(
        "--seed", type=int, default=None, metavar="S", help="shift every job's seed by S (recorded)"
    )
    p.add_argument("--threads", type=int, default=1, metavar="N", help="BLAS threads per job (default 1)")
    p.set_defaults(func=main_sweep, own_out=True)
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
            seed=getattr(args, "seed", None),
            threads=getattr(args, "threads", 1),
        )
    except ValueError as exc:
        print(f"lsa-theory sweep: {' '.join(str(exc).split())}", file=sys.stderr)
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
    """``python -m lsa_theory.experiments.sweep CONFIG [options]`` (same options as ``lsa-theory sweep``)."""
    parser = argparse.ArgumentParser(prog="python -m lsa_theory.experiments.sweep")
    add_parser(parser.add_subparsers(dest="command", required=True))
    return main_sweep(parser.parse_args(["sweep", *(sys.argv[1:] if argv is None else argv)]))
