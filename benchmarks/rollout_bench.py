"""Benchmark of teacher-data generation (not a timed test): vectorised over the k MDPs versus one at a time.

Frames per second of ``lsa_theory.dynamics.teacher_dataset`` (SARSA, 10 frames per MDP, n = 20) with
``vectorised=True`` (the k closed loops (S6) stepped together, ``lsa_theory.sarsa_loop_batched``)
and ``vectorised=False`` (``lsa_theory.sarsa_loop`` per MDP), at S = A = 2 (d = 4) and the [LL] size
S = 9, A = 4 (d = 36), for k = 10, 100, 1000 MDPs. Both paths give the same dataset bit for bit
(checked here at k = 10). ``loops_*`` columns time the closed loops alone (MDPs, features and
uniforms drawn beforehand): the dataset also pays for drawing the MDPs one by one and for the
sufficient statistics (L2), which the two paths share.

    python benchmarks/rollout_bench.py [--quick] [--json] [--out FILE]
"""

from __future__ import annotations

import sys

import numpy as np
from _timing import bench_parser, emit, median_time

import lsa_theory as lt
from lsa_theory import dynamics as dy
from lsa_theory.experiments.io import versions

SIZES = {"S2A2": (2, 2), "LL": (9, 4)}  # (S, A), d = S*A
N, FRAMES, KS = 20, 10, (10, 100, 1000)


def _spec(S: int, A: int, k: int) -> dy.TeacherSpec:
    return dy.TeacherSpec(S=S, A=A, n=N, k=k, frames=FRAMES)


def _loops(spec: dy.TeacherSpec, seed: int = 0):
    """Per-MDP and batched closed loops on the same pre-drawn MDPs and features."""
    rng = np.random.default_rng(seed)
    S, A, d, k = spec.S, spec.A, spec.dim, spec.k
    mdps = [lt.random_mdp(S, A, spec.gamma, rng) for _ in range(k)]
    phi = np.stack([lt.random_features(S, A, d, rng) for _ in range(k)])
    w0, U = rng.uniform(-1.0, 1.0, (k, d)), rng.random((k, lt.loop_draws(spec.n, spec.frames)))
    P, r, mu0 = (np.stack([getattr(m, name) for m in mdps]) for name in ("P", "r", "mu0"))
    kw = {"n": spec.n, "n_updates": spec.frames, "epsilon": spec.epsilon}

    def update(X, w):
        return lt.sarsa_update(X, w, spec.alpha)

    def one_at_a_time():
        for j, mdp in enumerate(mdps):
            lt.sarsa_loop(mdp, phi[j], w0[j], update, rng=np.random.default_rng(j), **kw)

    def batched():
        lt.sarsa_loop_batched(P, r, mu0, spec.gamma, phi, w0, update, U, **kw)

    return batched, one_at_a_time


def _identical(spec: dy.TeacherSpec, seed: int = 0) -> bool:
    a = dy.teacher_dataset(spec, np.random.default_rng(seed), keep_prompts=True)
    b = dy.teacher_dataset(spec, np.random.default_rng(seed), keep_prompts=True, vectorised=False)
    return all(np.array_equal(getattr(a, f), getattr(b, f)) for f in ("Sigma", "wt", "y", "mdp", "X"))


def bench_rollouts(quick: bool) -> dict:
    """Rows of frames/s, vectorised versus one MDP at a time, per size and k; ratios at the largest k."""
    fast_repeats, slow_repeats, warmup = (3, 1, 0) if quick else (7, 3, 1)
    rows = []
    for label, (S, A) in SIZES.items():
        for k in KS:
            spec = _spec(S, A, k)
            frames = k * FRAMES

            def dataset(vectorised: bool, spec=spec):
                return dy.teacher_dataset(spec, np.random.default_rng(0), vectorised=vectorised)

            batched, one_at_a_time = _loops(spec)
            repeats = fast_repeats if k < max(KS) else slow_repeats
            t = {
                "dataset_vectorised": median_time(lambda: dataset(True), fast_repeats, warmup),
                "dataset_loop": median_time(lambda: dataset(False), repeats, warmup),
                "loops_vectorised": median_time(batched, fast_repeats, warmup),
                "loops_loop": median_time(one_at_a_time, repeats, warmup),
            }
            row = {"size": label, "S": S, "A": A, "d": spec.dim, "n": N, "k": k, "frames": frames}
            for key, seconds in t.items():
                row[f"{key}_frames_per_s"] = frames / seconds
            row["dataset_ratio"] = t["dataset_loop"] / t["dataset_vectorised"]
            row["loops_ratio"] = t["loops_loop"] / t["loops_vectorised"]
            rows.append(row)
    largest = [row for row in rows if row["k"] == max(KS)]
    return {
        "table": rows,
        "ratio_k1000": {row["size"]: row["dataset_ratio"] for row in largest},
        "loops_ratio_k1000": {row["size"]: row["loops_ratio"] for row in largest},
        "bit_identical_k10": {label: _identical(_spec(S, A, 10)) for label, (S, A) in SIZES.items()},
    }


def main(argv=None) -> int:
    args = bench_parser(__doc__, "fewer repeats (whole run well under a minute)").parse_args(argv)
    doc = {"rollouts": bench_rollouts(args.quick), "versions": versions()}
    if not emit(doc, args):
        b = doc["rollouts"]
        print(f"SARSA teacher data, n = {N}, {FRAMES} frames per MDP: frames per second")
        print(
            f"{'size':>5} {'d':>3} {'k':>5} | {'dataset vec':>12} {'loop':>10} {'ratio':>6} | "
            f"{'loops vec':>12} {'loop':>10} {'ratio':>6}"
        )
        for r in b["table"]:
            print(
                f"{r['size']:>5} {r['d']:>3} {r['k']:>5} | {r['dataset_vectorised_frames_per_s']:>12.0f} "
                f"{r['dataset_loop_frames_per_s']:>10.0f} {r['dataset_ratio']:>5.1f}x | "
                f"{r['loops_vectorised_frames_per_s']:>12.0f} {r['loops_loop_frames_per_s']:>10.0f} "
                f"{r['loops_ratio']:>5.1f}x"
            )
        print(f"bit-identical datasets at k = 10: {b['bit_identical_k10']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
