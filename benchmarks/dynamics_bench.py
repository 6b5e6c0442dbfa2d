"""Benchmarks of the dynamics (not timed tests): medians over repeats, printed and saved as JSON.

1. Gradient of (M1) from the sufficient statistics (L2) (numpy, closed form) versus torch autograd
   through the raw block (L1) on the raw prompts, and through only its read-out entries, at
   S = A = 2 (d = 4), 200 frames, n = 16 ... 1024.
2. Wall time until the distance to the manifold is <= 1e-8: LSODA with the Hessian as Jacobian
   versus gradient descent at its largest stable step ``eta = 1.99 / lambda_max`` (lambda_max of
   the Hessian at the start), from a perturbation of relative size 1e-2, at S = A = 2.
3. The same race with DOP853 and Adam added at S = 9, A = 4 for d = 4 ... 36, with time budgets.

    python benchmarks/dynamics_bench.py [--quick] [--json] [--out FILE]   (run.py runs all benchmarks)
"""

from __future__ import annotations

import sys
import time

import numpy as np
import torch
from _timing import bench_parser, emit, loglog_slope, median_time

from lsa_theory import dynamics as dy
from lsa_theory.experiments.io import versions


def readout_only(H, P, V, k: int):
    """(B, k) the read-out entries of (L1) alone: ``w + Vbar[-k:] (H H^T)(P h_last) / n`` (what
    :func:`lsa_theory.dynamics.full_loss_torch` keeps of the block), as a matrix-vector chain."""
    n = H.shape[-1] - 1
    return H[..., -k:, -1] + (V[-k:] @ ((H @ H.mT) @ (P @ H[..., -1:])))[..., 0] / n


def _readout_loss_torch(P, V, H, targets):
    """(M1) through the raw prompts computing only the read-out entries of (L1)."""
    out = readout_only(H, P, V, targets.shape[-1])
    return 0.5 * ((out - targets) ** 2).sum(dim=-1).mean()


def near_construction(ds) -> np.ndarray:
    """``theta*`` of ``c = 1`` plus ``1e-2 N(0, I)`` (seeded): a generic point near the manifold."""
    return dy.construction(ds, 1.0) + 1e-2 * np.random.default_rng(1).standard_normal(dy.shapes(ds).size)


def autograd_timer(ds, theta):
    """``run(loss_fn) -> (loss, grad_P, grad_V)``: one forward + backward of ``loss_fn(P, V, H,
    targets)`` at the full ``(P, V)`` of ``theta`` on the dataset's raw prompts (float64 torch)."""
    H = torch.as_tensor(ds.prompts())
    targets = torch.as_tensor(ds.wt[:, 1:] + ds.y)
    P0, V0 = (torch.as_tensor(M) for M in dy.to_full(theta, ds.layout))

    def run(loss_fn=dy.full_loss_torch):
        P, V = P0.clone().requires_grad_(True), V0.clone().requires_grad_(True)
        loss = loss_fn(P, V, H, targets)
        loss.backward()
        return float(loss.detach()), P.grad, V.grad

    return run


def bench_gradient(n: int = 64, repeats: int = 50, seed: int = 0) -> dict:
    """Gradient of (M1) at S = A = 2 (d = 4), k = 20 MDPs x 10 frames, contexts of ``n``:
    closed form from the sufficient statistics (L2) versus torch autograd through the raw block (L1)
    on the raw prompts (``dy.full_loss_torch``), and through only the read-out entries of the block
    (the cheapest raw-prompt evaluation). Asserts the three losses agree to 1e-10 relative."""
    torch.set_num_threads(1)
    ds = dy.teacher_dataset(dy.TeacherSpec(n=n), np.random.default_rng(seed), keep_prompts=True)
    theta = near_construction(ds)
    autograd = autograd_timer(ds, theta)
    l_stats = dy.loss(ds, theta)
    for fn in (dy.full_loss_torch, _readout_loss_torch):
        l_auto = autograd(fn)[0]
        if abs(l_auto - l_stats) > 1e-10 * abs(l_stats):
            raise AssertionError(f"{fn.__name__}: loss {l_auto!r} != statistics {l_stats!r}")
    t_stats = median_time(lambda: dy.loss_and_grad(ds, theta), repeats)
    t_auto = median_time(lambda: autograd(dy.full_loss_torch), repeats)
    t_read = median_time(lambda: autograd(_readout_loss_torch), repeats)
    return {
        "n": n,
        "frames": ds.n_frames,
        "params_effective": dy.shapes(ds).size,
        "stats_seconds": t_stats,
        "autograd_seconds": t_auto,
        "autograd_readout_seconds": t_read,
        "ratio": t_auto / t_stats,
        "ratio_readout": t_read / t_stats,
    }


def bench_gradient_sweep(ns=(16, 64, 256, 1024), repeats: int = 20) -> dict:
    """:func:`bench_gradient` for each context length in ``ns`` and the log-log slopes in n."""
    rows = [bench_gradient(n, repeats=repeats) for n in ns]
    return {
        "table": rows,
        "slopes": {
            "stats_vs_n": loglog_slope(ns, [r["stats_seconds"] for r in rows]),
            "autograd_vs_n": loglog_slope(ns, [r["autograd_seconds"] for r in rows]),
            "autograd_readout_vs_n": loglog_slope(ns, [r["autograd_readout_seconds"] for r in rows]),
        },
        "ratios": {f"stats_vs_autograd_n{r['n']}": r["ratio"] for r in rows}
        | {f"stats_vs_autograd_readout_n{r['n']}": r["ratio_readout"] for r in rows},
    }


def _start(ds, radius: float, seed: int) -> np.ndarray:
    """``theta*`` of ``c = 1`` moved by ``radius ||theta*||`` in a seeded random direction."""
    theta_star = dy.construction(ds, 1.0)
    z = np.random.default_rng([seed, 1]).standard_normal(theta_star.size)
    return theta_star + radius * np.linalg.norm(theta_star) * z / np.linalg.norm(z)


def bench_flow_vs_gd(radius: float = 1e-2, target: float = 1e-8, seed: int = 0) -> dict:
    ds = dy.teacher_dataset(dy.TeacherSpec(), np.random.default_rng(seed))
    theta0 = _start(ds, radius, seed)
    flow = dy.gradient_flow(ds, theta0, 1e12, method="LSODA", stop_dist=target)
    eta = 1.99 / dy.lambda_max(ds, theta0)
    gd = dy.gradient_descent(ds, theta0, eta, max_steps=20_000_000, record_every=2000, stop_dist=target)
    return {
        "radius": radius,
        "target_dist": target,
        "flow_seconds": flow.wall_time,
        "flow_dist": float(flow.dist[-1]),
        "flow_message": flow.message,
        "flow_nfev": flow.stats["nfev"],
        "gd_eta": eta,
        "gd_seconds": gd.wall_time,
        "gd_steps": gd.stats["steps"],
        "gd_dist": float(gd.dist[-1]),
        "gd_message": gd.message,
        "ratio": gd.wall_time / flow.wall_time,
    }


def _row(method: str, d: int, res, target: float) -> dict:
    return {
        "d": d,
        "method": method,
        "seconds": res.wall_time,
        "reached": bool(np.isfinite(res.dist[-1]) and res.dist[-1] <= target),
        "dist": float(res.dist[-1]),
        "min_dist": float(res.dist.min()),
        "message": res.message,
        "stats": {k: v for k, v in res.stats.items() if isinstance(v, int | float)},
    }


def bench_methods(
    d_values=(4, 9, 16),
    budget: float = 20.0,
    flow_budget: float = 120.0,
    k: int = 20,
    radius: float = 1e-2,
    target: float = 1e-8,
    adam_lr: float = 1e-3,
    seed: int = 0,
) -> dict:
    """Time to distance ``target`` from the manifold on SARSA teacher data at S = 9, A = 4 with
    ``d`` uniform features (``k`` MDPs x 10 frames, n = 20), from a perturbation of relative size
    ``radius``: LSODA + closed-form Hessian, DOP853 (explicit, same rtol 1e-11 / atol 1e-14), gradient
    descent at ``eta = 1.99 / lambda_max`` (``lambda_max`` by Lanczos on Hessian-vector products past
    ``dy.DENSE_MAX`` parameters) and Adam at ``adam_lr``. Each method stops at the target or after
    ``budget`` seconds (LSODA: ``flow_budget``); a method that hits its budget gives a lower bound on
    its time, flagged ``reached = False``."""
    rows = []
    for d in d_values:
        ds = dy.teacher_dataset(dy.TeacherSpec(S=9, A=4, d=d, k=k), np.random.default_rng(seed))
        theta0 = _start(ds, radius, seed)
        t0 = time.perf_counter()
        lam_max = dy.lambda_max(ds, theta0)
        t_lam = time.perf_counter() - t0
        for method in ("LSODA+Hessian", "DOP853", "GD", "Adam"):
            if method == "LSODA+Hessian":
                res = dy.gradient_flow(
                    ds, theta0, 1e12, method="LSODA", stop_dist=target, max_seconds=flow_budget
                )
            elif method == "DOP853":
                res = dy.gradient_flow(
                    ds, theta0, 1e12, method="DOP853", stop_dist=target, max_seconds=budget
                )
            elif method == "GD":
                res = dy.gradient_descent(
                    ds, theta0, 1.99 / lam_max, 10**9, record_every=1000, stop_dist=target, max_seconds=budget
                )
            else:
                res = dy.adam(
                    ds, theta0, adam_lr, 10**9, record_every=1000, stop_dist=target, max_seconds=budget
                )
            row = _row(method, d, res, target)
            row["params"] = dy.shapes(ds).size
            if method == "GD":
                row["lambda_max"], row["lambda_max_seconds"] = lam_max, t_lam
            rows.append(row)
    ratios = {}
    for d in d_values:
        by = {r["method"]: r for r in rows if r["d"] == d}
        flow = by["LSODA+Hessian"]
        if not flow["reached"]:
            continue
        for other, key in (("GD", "gd"), ("DOP853", "dop853"), ("Adam", "adam")):
            o = by[other]
            suffix = "" if o["reached"] else "_lower_bound"
            ratios[f"flow_vs_{key}_time_d{d}{suffix}"] = o["seconds"] / flow["seconds"]
    return {"table": rows, "ratios": ratios, "k": k, "radius": radius, "target": target, "budget": budget}


def main(argv=None) -> int:
    args = bench_parser(__doc__, "fewer repeats, d up to 16 (about 2.5 min)").parse_args(argv)
    doc = {
        "gradient": bench_gradient_sweep(repeats=10 if args.quick else 50),
        "flow_vs_gd": bench_flow_vs_gd(),
        "methods": bench_methods(
            (4, 9, 16) if args.quick else (4, 9, 16, 25, 36),
            *((15.0, 120.0) if args.quick else (300.0, 1800.0)),
        ),
        "versions": versions(),
    }
    if emit(doc, args):
        return 0
    print("gradient of (M1): statistics (L2) vs autograd through the raw block / its read-out entries")
    for g in doc["gradient"]["table"]:
        print(
            f"  n = {g['n']:5d}  {g['stats_seconds'] * 1e6:8.1f} us  {g['autograd_seconds'] * 1e3:8.2f} ms "
            f"({g['ratio']:.0f}x)  {g['autograd_readout_seconds'] * 1e3:8.2f} ms ({g['ratio_readout']:.0f}x)"
        )
    f = doc["flow_vs_gd"]
    print(f"S = A = 2, time to distance {f['target_dist']:g} from radius {f['radius']:g}:")
    print(f"  LSODA + Hessian       {f['flow_seconds']:9.2f} s  ({f['flow_message']})")
    print(
        f"  GD eta = 1.99/lam_max {f['gd_seconds']:9.2f} s  ({f['gd_steps']} steps)   ratio {f['ratio']:.1f}x"
    )
    print("S = 9, A = 4, d features: seconds to the target (* = budget hit, distance then)")
    for r in doc["methods"]["table"]:
        mark = "" if r["reached"] else f" *  {r['dist']:.2g}"
        print(f"  d = {r['d']:2d} ({r['params']:5d} params)  {r['method']:<14} {r['seconds']:8.2f} s{mark}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
