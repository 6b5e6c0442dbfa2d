"""Benchmarks of the structured stiff path of the gradient flow (not timed tests; docs/performance-flow.md).

1. ``bench_fast_vs_dense``: wall (and CPU) time to distance 1e-8 from the manifold (M4) on SARSA
   teacher data at S = 9, A = 4 with d uniform features, k MDPs x 10 frames, from a perturbation of
   relative size 1e-2: ``gradient_flow(method="structured")`` (BDF, Schur-complement Newton solves,
   distance-relative error control, (M3) projection) against the dense reference
   ``method="LSODA"`` (dense closed-form Hessian as Jacobian), both at rtol 1e-11 / atol 1e-14,
   from the same start in the same run. Checks that the limits (nearest manifold points) agree to 1e-9.
2. ``bench_diffrax``: the same flow written the way a researcher would write it without this
   package (optional ``bench`` extra: JAX + diffrax): the loss in ``jax.numpy`` from the same dataset
   arrays, ``jax.grad``, ``diffrax.diffeqsolve`` with ``Kvaerno5`` (implicit) and ``Tsit5`` (explicit),
   ``PIDController(rtol=1e-11, atol=1e-14)``, float64, integrated to the time ``T`` at which the
   dense LSODA reaches distance 1e-8; JIT time reported apart from solve time. Ours integrates to
   the same ``T``; the endpoints must agree to 1e-12 (relative).

    python benchmarks/flow_bench.py [--quick] [--json] [--out FILE]   (run.py runs all benchmarks)
"""

from __future__ import annotations

import statistics
import sys
import time

import numpy as np
from _timing import bench_parser, emit
from dynamics_bench import _start

from lsa_theory import dynamics as dy
from lsa_theory.experiments.io import versions

S, A = 9, 4
LIMIT_RTOL = 1e-9  # fast and dense limits must agree to this (issue 14)
ENDPOINT_RTOL = 1e-12  # ours and diffrax at the same T must agree to this


def _dataset(d: int, k: int, seed: int):
    return dy.teacher_dataset(dy.TeacherSpec(S=S, A=A, d=d, k=k), np.random.default_rng(seed))


def _timed_flow(ds, theta0, t_max, **kw):
    c0 = time.process_time()
    res = dy.gradient_flow(ds, theta0, t_max, **kw)
    return res, time.process_time() - c0


def _rel(a, b) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def bench_fast_vs_dense(
    d_values=(16,), k: int = 100, radius: float = 1e-2, target: float = 1e-8, seed: int = 0
) -> dict:
    """Rows ``{d, k, params, {dense,fast}_{seconds,cpu_seconds,t_end,dist,stats}, limit_rel_diff,
    conserved_drift_{dense,fast}, ratio, cpu_ratio}`` and ratios ``flow_fast_vs_dense_d{d}``
    (dense wall time / structured wall time), emitted only when both reached ``target`` and their
    limits agree to :data:`LIMIT_RTOL`; otherwise the row says why."""
    rows, ratios = [], {}
    for d in d_values:
        ds = _dataset(d, k, seed)
        theta0 = _start(ds, radius, seed)
        U = dy.invisible_directions(ds)
        row = {"d": d, "k": k, "params": theta0.size}
        lims = {}
        for name, method in (("fast", "structured"), ("dense", "LSODA")):
            res, cpu = _timed_flow(ds, theta0, 1e12, method=method, stop_dist=target)
            lims[name] = dy.nearest_manifold_point(ds, res.theta_final, U)
            row |= {
                f"{name}_seconds": res.wall_time,
                f"{name}_cpu_seconds": cpu,
                f"{name}_reached": res.status == 2,
                f"{name}_t_end": float(res.t[-1]),
                f"{name}_dist": float(res.dist[-1]),
                f"{name}_conserved_drift": res.conserved_drift,
                f"{name}_stats": {k_: v for k_, v in res.stats.items() if isinstance(v, int | float)},
            }
        row["limit_rel_diff"] = _rel(lims["fast"], lims["dense"])
        row["ratio"] = row["dense_seconds"] / row["fast_seconds"]
        row["cpu_ratio"] = row["dense_cpu_seconds"] / row["fast_cpu_seconds"]
        ok = row["fast_reached"] and row["dense_reached"] and row["limit_rel_diff"] <= LIMIT_RTOL
        row["valid"] = bool(ok)
        if ok:
            ratios[f"flow_fast_vs_dense_d{d}"] = row["ratio"]
        rows.append(row)
    return {"table": rows, "ratios": ratios, "radius": radius, "target": target, "limit_rtol": LIMIT_RTOL}


def _diffrax_solver(ds, T: float, solver_name: str):
    """``(solve, y0 -> theta(T))`` JIT-compiled: the (M1) loss in ``jax.numpy`` from the dataset's
    ``Sigma``, ``wt``, ``y``; vector field ``-jax.grad(loss)``; ``diffrax.diffeqsolve`` from 0 to ``T``
    with ``PIDController(rtol=1e-11, atol=1e-14)``."""
    import diffrax
    import jax
    import jax.numpy as jnp

    sh = dy.shapes(ds)
    km = sh.k * sh.m
    Sigma, wt, y = jnp.asarray(ds.Sigma), jnp.asarray(ds.wt), jnp.asarray(ds.y)

    def loss(theta):
        A_ = theta[:km].reshape(sh.k, sh.m)
        B_ = theta[km:].reshape(sh.m, sh.p)
        u = jnp.einsum("fjl,lq,fq->fj", Sigma, B_, wt)
        e = u @ A_.T - y
        return 0.5 * jnp.mean(jnp.sum(e * e, axis=1))

    grad = jax.grad(loss)
    term = diffrax.ODETerm(lambda t, th, args: -grad(th))
    solver = {"Kvaerno5": diffrax.Kvaerno5, "Tsit5": diffrax.Tsit5}[solver_name]()
    ctrl = diffrax.PIDController(rtol=1e-11, atol=1e-14)

    @jax.jit
    def solve(y0):
        sol = diffrax.diffeqsolve(
            term,
            solver,
            t0=0.0,
            t1=T,
            dt0=None,
            y0=y0,
            stepsize_controller=ctrl,
            saveat=diffrax.SaveAt(t1=True),
            max_steps=10**7,
        )
        return sol.ys[-1], sol.stats["num_steps"]

    return solve


def bench_diffrax(
    d_values=(4, 9), k: int = 20, radius: float = 1e-2, target: float = 1e-8, seed: int = 0, repeats: int = 3
) -> dict:
    """Ours (``gradient_flow`` default ``method="auto"``) against JAX + diffrax (module docstring) on
    the same flow to the same time ``T``; ratios ``flow_vs_diffrax_{kvaerno5,tsit5}_d{d}`` (diffrax
    solve time / our time, JIT excluded), emitted when the endpoints agree to :data:`ENDPOINT_RTOL`.
    Without jax/diffrax: ``{"skipped": reason}``."""
    try:
        import diffrax  # noqa: F401
        import jax
    except ImportError as err:
        return {"skipped": f"jax/diffrax not installed ({err}); pip install -e '.[bench]'", "ratios": {}}
    jax.config.update("jax_enable_x64", True)
    rows, ratios = [], {}
    for d in d_values:
        ds = _dataset(d, k, seed)
        theta0 = _start(ds, radius, seed)
        dense = dy.gradient_flow(ds, theta0, 1e12, method="LSODA", stop_dist=target)
        T = float(dense.t[-1])
        dense_T = dy.gradient_flow(ds, theta0, T, method="LSODA")
        ours_times, ours_cpu = [], []
        for _ in range(repeats):
            ours, cpu = _timed_flow(ds, theta0, T)
            ours_times.append(ours.wall_time)
            ours_cpu.append(cpu)
        row = {
            "d": d,
            "k": k,
            "params": theta0.size,
            "T": T,
            "lsoda_seconds_to_target": dense.wall_time,
            "lsoda_seconds_to_T": dense_T.wall_time,
            "ours_method": ours.method,
            "ours_seconds": statistics.median(ours_times),
            "ours_cpu_seconds": statistics.median(ours_cpu),
            "ours_vs_lsoda_endpoint": _rel(ours.theta_final, dense_T.theta_final),
            "ours_dist_at_T": float(ours.dist[-1]),
        }
        y0 = jax.numpy.asarray(theta0)
        for name in ("Kvaerno5", "Tsit5"):
            solve = _diffrax_solver(ds, T, name)
            t0 = time.perf_counter()
            compiled = solve.lower(y0).compile()
            t_jit = time.perf_counter() - t0
            times = []
            for _ in range(repeats if name == "Kvaerno5" and d <= 4 else 1):
                t0 = time.perf_counter()
                yT, steps = compiled(y0)
                yT.block_until_ready()
                times.append(time.perf_counter() - t0)
            yT = np.asarray(yT)
            key = name.lower()
            agree = _rel(yT, ours.theta_final)
            row |= {
                f"{key}_jit_seconds": t_jit,
                f"{key}_seconds": statistics.median(times),
                f"{key}_steps": int(steps),
                f"{key}_vs_ours_endpoint": agree,
                f"{key}_vs_lsoda_endpoint": _rel(yT, dense_T.theta_final),
            }
            row[f"ratio_{key}"] = row[f"{key}_seconds"] / row["ours_seconds"]
            if agree <= ENDPOINT_RTOL:
                ratios[f"flow_vs_diffrax_{key}_d{d}"] = row[f"ratio_{key}"]
        rows.append(row)
    return {
        "table": rows,
        "ratios": ratios,
        "endpoint_rtol": ENDPOINT_RTOL,
        "versions": {"jax": jax.__version__, "diffrax": __import__("diffrax").__version__},
    }


def main(argv=None) -> int:
    args = bench_parser(__doc__, "d = 16 only for fast vs dense (about 1 min)").parse_args(argv)
    doc = {
        "fast_vs_dense": bench_fast_vs_dense((16,) if args.quick else (16, 25, 36)),
        "diffrax": bench_diffrax(),
        "versions": versions(),
    }
    if emit(doc, args):
        return 0
    for r in doc["fast_vs_dense"]["table"]:
        print(
            f"d = {r['d']:2d} ({r['params']} params, k = {r['k']}): structured {r['fast_seconds']:.2f} s, "
            f"dense LSODA {r['dense_seconds']:.2f} s, ratio {r['ratio']:.1f} (CPU {r['cpu_ratio']:.1f}), "
            f"limits differ by {r['limit_rel_diff']:.1e}"
        )
    dx = doc["diffrax"]
    if "skipped" in dx:
        print("diffrax:", dx["skipped"])
    for r in dx.get("table", []):
        print(
            f"d = {r['d']}: ours {r['ours_seconds']:.3f} s; Kvaerno5 {r['kvaerno5_seconds']:.2f} s "
            f"(JIT {r['kvaerno5_jit_seconds']:.1f} s), Tsit5 {r['tsit5_seconds']:.2f} s "
            f"(JIT {r['tsit5_jit_seconds']:.1f} s); endpoints {r['kvaerno5_vs_ours_endpoint']:.1e} / "
            f"{r['tsit5_vs_ours_endpoint']:.1e}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
