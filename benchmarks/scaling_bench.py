"""How the cost of the dynamics' building blocks grows: log-log slopes of median wall times (not a
timed test). SARSA teacher data on the [LL] 9 x 4 MDP family with uniform random features of
dimension d, float64, theta = ``lsa_theory.dynamics.construction(ds, 1.0)`` + 1e-2 N(0, I).

Sweeps (F = k x frames frames; the other sizes fixed at the values printed with each sweep):

- ``loss_grad_vs_d``, ``_vs_n``, ``_vs_F``: ``lsa_theory.dynamics.loss_and_grad(ds, theta)`` from the
  sufficient statistics (L2) in closed form. Expected: ~F m^2 with m = 2d + 1, so slope 2 in d
  (asymptotically), 0 in n (Sigma is precomputed), 1 in F.
- ``autograd_vs_n``, ``_vs_d``: ``lsa_theory.dynamics.full_loss_torch`` + ``backward()`` through the raw
  block (L1) on the F raw prompts (``keep_prompts=True``, ``ds.prompts()``). Expected:
  ~F (6 D^2 N + 2 D^3) x 2 with D = 3d + 2, N = n + 1: slope 1 in n once 3N >> D, between 2 and 3
  in d at fixed n.
- ``hessian_vs_d``: ``lsa_theory.dynamics.hessian(ds, theta)`` (dense closed form). Expected: ~F m^2 p^2
  with p = d + 1 for the B-B block (and as much for the A-B block), slope 4 in d.
- ``data_vs_F``: ``lsa_theory.dynamics.teacher_dataset`` generation time versus k (frames fixed). Expected 1.

``slopes`` fit all points of a sweep; ``slopes_last3`` only its three largest sizes (closer to the
asymptotic exponent when small sizes are overhead-bound).

Threads: one BLAS thread (threadpoolctl) and one torch thread by default, ``--threads 0`` keeps
the libraries' defaults; recorded in ``setup``. On the shared 2-core machine (load average 2-5)
threaded OpenBLAS turned the 0.06 ms ``u @ A.T`` of ``loss_and_grad`` (F = 1000, d = 25) into
12 ms and the whole call from 1.5 ms into 70 ms (d = 36, F = 200: 0.41 ms -> 48 ms): thread
hand-offs on busy cores, not work. The operations timed here are small enough that one thread is
also the fast setting.

    python benchmarks/scaling_bench.py [--quick] [--json] [--out FILE] [--threads N]
"""

from __future__ import annotations

import sys
import time
from contextlib import nullcontext

import numpy as np
import torch
from _timing import bench_parser, emit, loglog_slope, median_time
from dynamics_bench import autograd_timer, near_construction
from threadpoolctl import threadpool_info, threadpool_limits

from lsa_theory import dynamics as dy
from lsa_theory.experiments.io import versions

S, A = 9, 4
# (quick, full) sweep points; frames = 10 throughout, so F = 10 k
DS = ((4, 9, 16, 25, 36), (4, 9, 16, 25, 36, 49, 64))
DS_HESSIAN = ((4, 9, 16, 25, 36), (4, 9, 16, 25, 36, 49))
NS = ((10, 20, 40, 80, 160, 320), (10, 20, 40, 80, 160, 320, 640, 1280))
KS_LOSS = ((10, 20, 40, 80, 160, 320), (10, 20, 40, 80, 160, 320, 640))
KS_DATA = ((10, 20, 40, 80, 160), (10, 20, 40, 80, 160, 320))
EXPECTED = {
    "loss_grad_vs_d": "2 (F m^2, m = 2d+1)",
    "loss_grad_vs_n": "0 (Sigma precomputed)",
    "loss_grad_vs_F": "1",
    "autograd_vs_n": "1 (F D^2 N once 3N >> D)",
    "autograd_vs_d": "2..3 (F (6 D^2 N + 2 D^3))",
    "hessian_vs_d": "4 (F m^2 p^2)",
    "data_vs_F": "1",
}


def _dataset(d: int, n: int, k: int, frames: int, keep_prompts: bool = False, seed: int = 0):
    spec = dy.TeacherSpec(S=S, A=A, d=d, n=n, k=k, frames=frames, features="uniform")
    return dy.teacher_dataset(spec, np.random.default_rng(seed), keep_prompts=keep_prompts)


def _loss_grad_row(ds, repeats: int) -> dict:
    theta = near_construction(ds)
    t = median_time(lambda: dy.loss_and_grad(ds, theta), repeats)
    return {"d": ds.layout.d, "n": ds.spec.n, "F": ds.n_frames, "params": theta.size, "seconds": t}


def _autograd_row(ds, repeats: int) -> dict:
    t = median_time(autograd_timer(ds, near_construction(ds)), repeats)
    return {"d": ds.layout.d, "D": ds.layout.D, "n": ds.spec.n, "F": ds.n_frames, "seconds": t}


def _hessian_row(ds, repeats: int) -> dict:
    theta = near_construction(ds)
    t = median_time(lambda: dy.hessian(ds, theta), repeats, warmup=1)
    return {"d": ds.layout.d, "F": ds.n_frames, "params": theta.size, "seconds": t}


def _data_row(d: int, n: int, k: int, frames: int, repeats: int) -> dict:
    t = median_time(lambda: _dataset(d, n, k, frames), repeats)
    return {"d": d, "n": n, "k": k, "frames": frames, "F": k * frames, "seconds": t}


def _sweeps(quick: bool) -> dict[str, list[dict]]:
    r_fast, r_auto, r_hess, r_data = (10, 3, 2, 3) if quick else (30, 7, 5, 7)
    i = 0 if quick else 1
    d_n = 16  # d of the n and F sweeps
    t = {}
    t["loss_grad_vs_d"] = [_loss_grad_row(_dataset(d, 20, 100, 10), r_fast) for d in DS[i]]
    t["loss_grad_vs_n"] = [_loss_grad_row(_dataset(d_n, n, 100, 10), r_fast) for n in NS[i]]
    t["loss_grad_vs_F"] = [_loss_grad_row(_dataset(d_n, 20, k, 10), r_fast) for k in KS_LOSS[i]]
    t["autograd_vs_n"] = [_autograd_row(_dataset(d_n, n, 20, 10, keep_prompts=True), r_auto) for n in NS[i]]
    t["autograd_vs_d"] = [_autograd_row(_dataset(d, 20, 20, 10, keep_prompts=True), r_auto) for d in DS[i]]
    t["hessian_vs_d"] = [_hessian_row(_dataset(d, 20, 20, 10), r_hess) for d in DS_HESSIAN[i]]
    t["data_vs_F"] = [_data_row(36, 20, k, 10, r_data) for k in KS_DATA[i]]
    return t


_X = {
    "loss_grad_vs_d": "d",
    "loss_grad_vs_n": "n",
    "loss_grad_vs_F": "F",
    "autograd_vs_n": "n",
    "autograd_vs_d": "d",
    "hessian_vs_d": "d",
    "data_vs_F": "F",
}


def bench_scaling(quick: bool, threads: int = 1) -> dict:
    """Rows per sweep and their log-log slopes (see the module docstring).

    ``threads``: BLAS (threadpoolctl) and torch threads (0 keeps the libraries' settings);
    torch's setting is restored after.
    """
    prev_threads = torch.get_num_threads()
    t0 = time.perf_counter()
    limits = threadpool_limits(limits=threads, user_api="blas") if threads else nullcontext()
    try:
        with limits:
            if threads:
                torch.set_num_threads(threads)
            info = threadpool_info()
            blas = [(i["internal_api"], i["num_threads"]) for i in info if i["user_api"] == "blas"]
            used = {"torch": torch.get_num_threads(), "blas": blas}
            table = _sweeps(quick)
    finally:
        torch.set_num_threads(prev_threads)
    slopes, last3 = {}, {}
    for name, rows in table.items():
        x = [r[_X[name]] for r in rows]
        y = [r["seconds"] for r in rows]
        slopes[name] = loglog_slope(x, y)
        last3[name] = loglog_slope(x[-3:], y[-3:])
    return {
        "setup": {
            "S": S,
            "A": A,
            "features": "uniform",
            "threads": used,
            "quick": quick,
            "x": _X,
            "expected": EXPECTED,
            "seconds_total": time.perf_counter() - t0,
        },
        "table": table,
        "slopes": slopes,
        "slopes_last3": last3,
    }


def main(argv=None) -> int:
    p = bench_parser(__doc__, "fewer repeats (< 90 s)", "BLAS and torch threads (default 1; 0: defaults)")
    args = p.parse_args(argv)
    doc = {**bench_scaling(args.quick, threads=args.threads), "versions": versions()}
    if emit(doc, args):
        return 0
    s = doc["setup"]
    print(f"scaling, SARSA teacher data S = {s['S']}, A = {s['A']}, {s['features']} features")
    print(f"threads {s['threads']}")
    for name, rows in doc["table"].items():
        x = s["x"][name]
        fixed = {k: v for k, v in rows[0].items() if k in ("d", "n", "F", "frames") and k != x}
        print(
            f"{name}: slope {doc['slopes'][name]:.2f} (three largest {doc['slopes_last3'][name]:.2f}; "
            f"expected {s['expected'][name]}); fixed {fixed}"
        )
        print("    " + "  ".join(f"{x}={r[x]:>4}: {r['seconds'] * 1e3:9.3f} ms" for r in rows[:3]))
        print("    " + "  ".join(f"{x}={r[x]:>4}: {r['seconds'] * 1e3:9.3f} ms" for r in rows[3:]))
    print(f"total {s['seconds_total']:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
