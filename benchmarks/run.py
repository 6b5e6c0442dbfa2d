"""All benchmarks in one run: medians over repeats, one JSON document (never timed tests).

    python benchmarks/run.py --quick --json            # < 10 min on 2 cores; prints the document
    python benchmarks/run.py --out bench.json          # full sizes (d up to 36; about an hour)
    python benchmarks/run.py --smoke --json            # tiny sizes: checks the document, not speed

The document is ``{"ratios": {...}, "slopes": {...}, "tables": {...}, "setup": {...},
"versions": {...}}``. Ratios are speed-ups (> 1: the first-named is faster):

- ``stats_vs_autograd_n{n}``: gradient of (M1) from the sufficient statistics (L2) against autograd
  through the raw block (L1), n = 16 ... 1024 (``stats_vs_autograd_readout_n{n}``: against autograd
  through only the read-out entries of the block, the cheapest raw-prompt baseline);
- ``flow_vs_gd_time``: LSODA + Hessian against gradient descent at ``eta = 1.99 / lambda_max``,
  wall time to distance 1e-8 from the manifold at S = A = 2 (d = 4);
- ``flow_vs_{gd,dop853,adam}_time_d{d}``: the same race at S = 9, A = 4 for d = 4 ... 36 (suffix
  ``_lower_bound`` when the other method hit its time budget first);
- ``flow_fast_vs_dense_d{d}``: ``gradient_flow(method="structured")`` against the dense LSODA reference,
  wall time to distance 1e-8 at S = 9, A = 4, k = 100 MDPs, d = 16 (quick) and 25, 36 (full), emitted
  only when the limits agree to 1e-9 (``flow_bench.py``);
- ``flow_vs_diffrax_{kvaerno5,tsit5}_d{d}``: diffrax's Kvaerno5 / Tsit5 solve time (JIT excluded) on the
  same flow written in JAX, against ours, to the same time, d = 4 and 9, k = 20, emitted when the
  endpoints agree to 1e-12; skipped (and said so in ``tables["diffrax"]``) without the ``bench`` extra;
- ``rollouts_vectorised_vs_loop_k1000_{size}``: teacher-data frames per second, the k MDPs'
  loops stepped together against one MDP at a time (bit-identical datasets);
- ``block_*``: the LSA block's forward and gradient throughput, batched against a per-prompt loop,
  and as a fraction of a same-size matrix product (GFLOP/s).

``slopes`` are log-log cost exponents in d, n and the sample size F. BLAS and torch run on
``--threads`` threads (default 1: on the 2 shared cores threaded BLAS made the small products of
these loops 10-50x slower).
"""

from __future__ import annotations

import argparse
import sys
import time

import torch
from _timing import emit
from block_bench import bench_block
from dynamics_bench import bench_flow_vs_gd, bench_gradient_sweep, bench_methods
from flow_bench import bench_diffrax, bench_fast_vs_dense
from rollout_bench import bench_rollouts
from scaling_bench import bench_scaling
from threadpoolctl import threadpool_limits

from lsa_theory.experiments.io import versions

LEVELS = {
    "smoke": {
        "gradient": {"ns": (16, 32), "repeats": 1},
        "flow_vs_gd": {"target": 1e-4},
        "methods": {"d_values": (4,), "budget": 1.0, "flow_budget": 10.0, "target": 1e-4},
        "fast_vs_dense": {"d_values": (4,), "k": 20, "target": 1e-4},
        "diffrax": {"d_values": (2,), "k": 5, "repeats": 1},
        "quick": True,
    },
    "quick": {
        "gradient": {"ns": (16, 64, 256, 1024), "repeats": 10},
        "flow_vs_gd": {},
        "methods": {"d_values": (4, 9, 16), "budget": 15.0, "flow_budget": 120.0},
        "fast_vs_dense": {"d_values": (16,)},
        "diffrax": {"d_values": (4, 9)},
        "quick": True,
    },
    "full": {
        "gradient": {"ns": (16, 32, 64, 128, 256, 512, 1024), "repeats": 50},
        "flow_vs_gd": {},
        "methods": {"d_values": (4, 9, 16, 25, 36), "budget": 300.0, "flow_budget": 1800.0},
        "fast_vs_dense": {"d_values": (16, 25, 36)},
        "diffrax": {"d_values": (4, 9)},
        "quick": False,
    },
}


def run_all(level: str = "quick", threads: int = 1, progress=print) -> dict:
    """Run every benchmark at ``level`` ("smoke", "quick" or "full") and return the document."""
    if level not in LEVELS:
        raise ValueError(f"level: expected one of {tuple(LEVELS)}, got {level!r}")
    cfg = LEVELS[level]
    prev = torch.get_num_threads()
    seconds, tables = {}, {}
    try:
        with threadpool_limits(limits=threads, user_api="blas"):
            torch.set_num_threads(threads)
            parts = {
                "gradient": lambda: bench_gradient_sweep(**cfg["gradient"]),
                "flow_vs_gd": lambda: bench_flow_vs_gd(**cfg["flow_vs_gd"]),
                "methods": lambda: bench_methods(**cfg["methods"]),
                "fast_vs_dense": lambda: bench_fast_vs_dense(**cfg["fast_vs_dense"]),
                "diffrax": lambda: bench_diffrax(**cfg["diffrax"]),
                "rollouts": lambda: bench_rollouts(cfg["quick"]),
                "block": lambda: bench_block(cfg["quick"], threads=threads),
                "scaling": lambda: bench_scaling(cfg["quick"], threads=threads),
            }
            for name, fn in parts.items():
                t0 = time.perf_counter()
                tables[name] = fn()
                seconds[name] = time.perf_counter() - t0
                progress(f"[run.py] {name}: {seconds[name]:.1f} s", file=sys.stderr)
    finally:
        torch.set_num_threads(prev)
    ratios = dict(tables["gradient"]["ratios"])
    ratios["flow_vs_gd_time"] = tables["flow_vs_gd"]["ratio"]
    ratios.update(tables["methods"]["ratios"])
    ratios.update(tables["fast_vs_dense"]["ratios"])
    ratios.update(tables["diffrax"]["ratios"])
    for size, r in tables["rollouts"]["ratio_k1000"].items():
        ratios[f"rollouts_vectorised_vs_loop_k1000_{size}"] = r
    ratios.update(tables["block"]["ratios"])
    slopes = {f"gradient_{k}": v for k, v in tables["gradient"]["slopes"].items()}
    slopes.update({f"{k}_last3": v for k, v in tables["scaling"]["slopes_last3"].items()})
    slopes.update(tables["scaling"]["slopes"])
    return {
        "ratios": ratios,
        "slopes": slopes,
        "tables": tables,
        "setup": {
            "level": level,
            "threads": threads,
            "seconds": seconds,
            "seconds_total": sum(seconds.values()),
        },
        "versions": versions(),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    g = p.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true", help="small sizes, < 10 min")
    g.add_argument("--smoke", action="store_true", help="tiny sizes: checks the document, not the speed")
    p.add_argument("--json", action="store_true", help="print the JSON document")
    p.add_argument("--out", default=None, help="write the JSON document to this file (atomically)")
    p.add_argument("--threads", type=int, default=1, help="BLAS and torch threads (default 1)")
    args = p.parse_args(argv)
    if args.threads < 1:
        p.error("--threads must be >= 1")
    level = "smoke" if args.smoke else "quick" if args.quick else "full"
    doc = run_all(level, threads=args.threads)
    if emit(doc, args):
        return 0
    print(f"benchmarks ({level}, {args.threads} thread(s), {doc['setup']['seconds_total']:.0f} s)")
    for key, val in doc["ratios"].items():
        print(f"  {key:<52} {val:10.2f}")
    print("log-log slopes:")
    for key, val in doc["slopes"].items():
        print(f"  {key:<52} {val:10.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
