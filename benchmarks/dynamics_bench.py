"""Benchmarks of the dynamics (not timed tests): medians over repeats, printed and saved as JSON.

1. Gradient of (M1) from the sufficient statistics (L2) (numpy, closed form) versus torch autograd
   through the raw block (L1) on the raw prompts, at S = A = 2 (d = 4), 200 frames, n = 64.
2. Wall time until the distance to the manifold is <= 1e-8: LSODA with the Hessian as Jacobian
   versus gradient descent at its largest stable step ``eta = 1.99 / lambda_max`` (lambda_max of
   the Hessian at the start), from a perturbation of relative size 1e-2.

    python benchmarks/dynamics_bench.py [--quick] [--json] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import torch
from _timing import median_time

import dynamics as dy
from experiments.io import atomic_write_json, versions


def bench_gradient(n: int = 64, repeats: int = 50, seed: int = 0) -> dict:
    torch.set_num_threads(1)
    ds = dy.teacher_dataset(dy.TeacherSpec(n=n), np.random.default_rng(seed), keep_prompts=True)
    theta = dy.construction(ds, 1.0) + 1e-2 * np.random.default_rng(1).standard_normal(dy.shapes(ds).size)
    H = torch.as_tensor(ds.prompts())
    targets = torch.as_tensor(ds.wt[:, 1:] + ds.y)
    P0, V0 = (torch.as_tensor(M) for M in dy.to_full(theta, ds.layout))

    def autograd():
        P, V = P0.clone().requires_grad_(True), V0.clone().requires_grad_(True)
        dy.full_loss_torch(P, V, H, targets).backward()
        return P.grad, V.grad

    def stats():
        return dy.loss_and_grad(ds, theta)

    t_stats, t_auto = median_time(stats, repeats), median_time(autograd, repeats)
    return {
        "n": n,
        "frames": ds.n_frames,
        "params_effective": dy.shapes(ds).size,
        "stats_seconds": t_stats,
        "autograd_seconds": t_auto,
        "ratio": t_auto / t_stats,
    }


def bench_flow_vs_gd(radius: float = 1e-2, target: float = 1e-8, seed: int = 0) -> dict:
    ds = dy.teacher_dataset(dy.TeacherSpec(), np.random.default_rng(seed))
    theta_star = dy.construction(ds, 1.0)
    z = np.random.default_rng([seed, 1]).standard_normal(theta_star.size)
    theta0 = theta_star + radius * np.linalg.norm(theta_star) * z / np.linalg.norm(z)
    flow = dy.gradient_flow(ds, theta0, 1e12, stop_dist=target)
    lam_max = dy.hessian_spectrum(ds, theta0).lambda_max
    eta = 1.99 / lam_max
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


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer repeats")
    p.add_argument("--json", action="store_true")
    p.add_argument("--out", default=None, help="write the JSON document here")
    args = p.parse_args(argv)
    doc = {
        "gradient": bench_gradient(repeats=10 if args.quick else 50),
        "flow_vs_gd": bench_flow_vs_gd(),
        "versions": versions(),
    }
    if args.out:
        atomic_write_json(args.out, doc)
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        g, f = doc["gradient"], doc["flow_vs_gd"]
        print(f"gradient at n = {g['n']}, {g['frames']} frames, {g['params_effective']} parameters:")
        print(f"  sufficient statistics {g['stats_seconds'] * 1e6:9.1f} us")
        print(f"  autograd, raw block   {g['autograd_seconds'] * 1e6:9.1f} us   ratio {g['ratio']:.1f}x")
        print(f"time to distance {f['target_dist']:g} from radius {f['radius']:g}:")
        print(f"  LSODA + Hessian       {f['flow_seconds']:9.2f} s  ({f['flow_message']})")
        print(
            f"  GD eta = 1.99/lam_max {f['gd_seconds']:9.2f} s  ({f['gd_steps']} steps; {f['gd_message']})"
            f"   ratio {f['ratio']:.1f}x"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
