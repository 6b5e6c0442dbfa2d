"""Shared helpers of the benchmark scripts: timing medians, log-log fits, the command line and
the JSON output (medians over repeats, never timed tests)."""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np

from lsa_theory.experiments.io import atomic_write_json, provenance, to_jsonable

__all__ = ["median_time", "loglog_slope", "bench_parser", "emit"]


def median_time(fn, repeats: int, warmup: int = 1) -> float:
    """Median wall time in seconds of ``fn()`` over ``repeats`` calls after ``warmup`` calls."""
    if repeats < 1:
        raise ValueError(f"repeats: expected >= 1, got {repeats}")
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def loglog_slope(x, y) -> float:
    """Least-squares slope of ``log y`` against ``log x`` (the exponent of ``y ~ x^slope``)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or x.size < 2 or (x <= 0).any() or (y <= 0).any():
        raise ValueError("loglog_slope: need >= 2 positive (x, y) pairs of equal length")
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


def bench_parser(doc: str, quick_help: str, threads: str | None = None) -> argparse.ArgumentParser:
    """The benchmark command line: ``--quick``, ``--json``, ``--out FILE`` (and ``--threads N``,
    default 1, when ``threads`` gives its help text)."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--quick", action="store_true", help=quick_help)
    p.add_argument("--json", action="store_true", help="print the JSON document")
    p.add_argument("--out", default=None, help="write the JSON document to this file (atomically)")
    if threads is not None:
        p.add_argument("--threads", type=int, default=1, help=threads)
    return p


def emit(doc: dict, args: argparse.Namespace) -> bool:
    """Write ``doc`` to ``args.out`` if given; print it as JSON and return True if ``args.json``.
    The printed and the written document are the same, ``provenance`` included."""
    if isinstance(doc, dict) and "provenance" not in doc:
        doc = {**doc, "provenance": provenance(doc.get("setup"), doc.get("seed"))}
    if args.out:
        atomic_write_json(args.out, doc)
    if args.json:
        print(json.dumps(to_jsonable(doc), indent=2))
    return bool(args.json)
