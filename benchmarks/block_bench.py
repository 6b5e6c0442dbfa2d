"""Throughput of the LSA block (L1) in float64 on CPU (torch), batched versus a per-prompt loop,
against the matrix-product ceiling of the same machine (not a timed test: medians over repeats).

Size: the [LL] SARSA prompt for d = |S||A| = 36, ``D = lsa_theory.Layout(36, 0).D`` (= 3d + 2 =
110), n = 20 and n = 256 context columns (N = n + 1), B = 1000 prompts (``--quick``: B = 100).
Prompts, ``P``, ``V`` and targets are Gaussian: the cost of dense products does not depend on the
values. Batched and looped results are checked equal before timing.

Measured, every case at the same torch thread setting (recorded as ``setup.threads``):

1. forward ``lsa_theory.lsa_block(H, P, V)``: one batched call on (B, D, N); a Python loop over
   the B prompts (D, N); calls on chunks of ``CHUNK`` prompts; the bare expression
   ``H + (V @ (H @ H^T)) @ (P @ H) / n`` without ``lsa_block``'s checks, on the chunks of
   ``lsa.BLOCK_CHUNK`` prompts ``lsa_block`` uses and as one product over the whole stack (what
   ``lsa_block`` did before it chunked); only the d entries that ``full_loss_torch`` reads,
   ``w + V[-d:] (H H^T)(P h_last) / n``; and each operation of the
   batched call alone (``part:`` rows, on precomputed inputs).
2. gradient: forward + backward of ``lsa_theory.dynamics.full_loss_torch(P, V, H, targets)`` w.r.t. P, V:
   batched; a loop that sums the B per-prompt losses (divided by B: the same loss) and calls
   ``backward()`` once on the sum; chunks of ``CHUNK`` prompts with one ``backward()`` per chunk.
3. the ceiling: ``torch.matmul`` of (B, D, D) @ (B, D, N) (batched, as in the block), and one
   (D, D) @ (D, B N) GEMM of the same flops, both into preallocated outputs (``out=``: no fresh
   memory to fault in); the ceiling is the faster of the two (at n = 20 the thin batched product
   is far below the single GEMM). ``fraction_of_matmul`` is a row's GFLOP/s over the ceiling's
   (``fraction_of_matmul_exact`` with the exact gradient count).

Flops per prompt (forward): ``H H^T`` 2 D^2 N, ``V (H H^T)`` 2 D^3, ``P H`` 2 D^2 N,
``(V H H^T)(P H)`` 2 D^2 N: 6 D^2 N + 2 D^3 (the add, the 1/n and the readout not counted).
Gradient convention: backward = 2 x forward, so forward + backward = 3 x forward
(``gflop_per_s``). Exactly, the backward of this block w.r.t. (P, V) (H needs no gradient) costs
the same 6 D^2 N + 2 D^3 as the forward; ``gflop_per_s_exact`` counts 2 x forward.
``page_faults_per_call``: minor page faults per call (first touches of freshly mapped memory).

Threads: one by default (``--threads 0`` keeps torch's default, the core count). On the shared
2-core development machine (load average 2-5) two OpenMP threads made the timings stall in
multiples of ~12 ms (n = 20, B = 100: the batched matmul ceiling 2.1 GFLOP/s with 2 threads,
14.8 with 1; a loop repeated 0.58 s / 1.1 s / 5.5 s), so single-threaded figures are the
reproducible ones; the block and the ceiling always share the setting.

Measured (B = 1000, one thread, 2-core machine under load): at n = 256 one batched call is ~3x
slower than the per-prompt loop (forward 2.0 s vs 0.61 s, gradient 3.3 s vs 1.25 s): every
(B, D, N) temporary is 226 MB, freshly mapped and faulted in on each call (~330 000 page faults
per forward), while the loop's 0.2 MB temporaries are reused in cache; chunks of 16 prompts
match or beat the loop (n = 20: 1.6x faster than the loop, 0.76 of the ceiling).

    python benchmarks/block_bench.py [--quick] [--json] [--out FILE] [--threads N]
"""

from __future__ import annotations

import os
import resource
import sys
import time

import torch
from _timing import bench_parser, emit, median_time
from dynamics_bench import readout_only

import lsa_theory as lt
from lsa_theory import dynamics as dy
from lsa_theory.experiments.io import versions
from lsa_theory.lsa import BLOCK_CHUNK

D_FEATURES = 36  # d = |S||A| for the [LL] 9 x 4 family
NS = (20, 256)
CHUNK = 16  # prompts per call of the chunked variants


def forward_flops(D: int, N: int) -> int:
    """Flops of one prompt's forward pass of (L1): 6 D^2 N + 2 D^3 (see the module docstring)."""
    return 6 * D * D * N + 2 * D**3


def _data(B: int, D: int, n: int, k: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    f64 = torch.float64
    H = torch.randn(B, D, n + 1, generator=g, dtype=f64)
    P = torch.randn(D, D, generator=g, dtype=f64) / D**0.5
    V = torch.randn(D, D, generator=g, dtype=f64) / D**0.5
    targets = torch.randn(B, k, generator=g, dtype=f64)
    return H, P, V, targets


def _check_equal(H, P, V, targets, n: int) -> None:
    """The batched and looped computations agree (they compare like with like)."""
    out_b = lt.lsa_block(H, P, V)
    out_l = torch.stack([lt.lsa_block(H[b], P, V) for b in range(H.shape[0])])
    whole = H + (V @ (H @ H.mT)) @ (P @ H) / n
    assert torch.allclose(out_b, out_l, rtol=1e-10, atol=1e-10)
    assert torch.allclose(out_b, whole, rtol=1e-10, atol=1e-10)
    grads = []
    for looped in (False, True):
        Pg, Vg = P.clone().requires_grad_(True), V.clone().requires_grad_(True)
        if looped:
            total = sum(dy.full_loss_torch(Pg, Vg, H[b], targets[b]) for b in range(H.shape[0]))
            (total / H.shape[0]).backward()
        else:
            dy.full_loss_torch(Pg, Vg, H, targets).backward()
        grads.append((Pg.grad, Vg.grad))
    for a, b in zip(grads[0], grads[1], strict=True):
        assert torch.allclose(a, b, rtol=1e-9, atol=1e-12)


def _timed(fn, repeats: int) -> tuple[float, float]:
    """Median seconds of ``fn()`` and minor page faults per call (warm-up included in the count)."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    t = median_time(fn, repeats)
    return t, (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / (repeats + 1)


def _bench_size(B: int, n: int, repeats: int, seed: int) -> list[dict]:
    layout = lt.Layout(D_FEATURES, 0)
    D, N, k = layout.D, n + 1, layout.k
    H, P, V, targets = _data(B, D, n, k, seed)
    _check_equal(H[: min(B, 8)], P, V, targets[: min(B, 8)], n)
    A_bmm = torch.randn(B, D, D, dtype=torch.float64)
    A_gemm, Y_gemm = P.clone(), H.transpose(0, 1).reshape(D, B * N).contiguous()
    out_bmm, out_gemm = torch.empty_like(H), torch.empty_like(Y_gemm)
    chunks = [slice(i, min(i + CHUNK, B)) for i in range(0, B, CHUNK)]

    def fwd_batched():
        return lt.lsa_block(H, P, V)

    def raw(h):
        return h + (V @ (h @ h.mT)) @ (P @ h) / n

    def fwd_raw():  # what lsa_block computes (chunks of lsa.BLOCK_CHUNK), without its checks
        return torch.cat([raw(H[i : i + BLOCK_CHUNK]) for i in range(0, B, BLOCK_CHUNK)])

    def fwd_whole_stack():  # one product over all B prompts: lsa_block before chunking
        return raw(H)

    def fwd_loop():
        return [lt.lsa_block(H[b], P, V) for b in range(B)]

    def fwd_chunked():
        return [lt.lsa_block(H[c], P, V) for c in chunks]

    def fwd_readout_only():
        return readout_only(H, P, V, k)

    def grad_batched():
        Pg, Vg = P.clone().requires_grad_(True), V.clone().requires_grad_(True)
        dy.full_loss_torch(Pg, Vg, H, targets).backward()
        return Pg.grad, Vg.grad

    def grad_loop():
        Pg, Vg = P.clone().requires_grad_(True), V.clone().requires_grad_(True)
        total = sum(dy.full_loss_torch(Pg, Vg, H[b], targets[b]) for b in range(B))
        (total / B).backward()
        return Pg.grad, Vg.grad

    def grad_chunked():
        Pg, Vg = P.clone().requires_grad_(True), V.clone().requires_grad_(True)
        for c in chunks:
            (dy.full_loss_torch(Pg, Vg, H[c], targets[c]) * ((c.stop - c.start) / B)).backward()
        return Pg.grad, Vg.grad

    G, VG, PH = H @ H.mT, V @ (H @ H.mT), P @ H
    C = VG @ PH
    parts = {
        "part: isfinite(H) check": (lambda: bool(torch.isfinite(H).all()), 0),
        "part: H @ H^T": (lambda: H @ H.mT, 2 * D * D * N),
        "part: V @ (H H^T)": (lambda: V @ G, 2 * D**3),
        "part: P @ H": (lambda: P @ H, 2 * D * D * N),
        "part: (V H H^T) @ (P H)": (lambda: VG @ PH, 2 * D * D * N),
        "part: H + C / n": (lambda: H + C / n, 0),
    }

    fl = forward_flops(D, N)
    cases = {
        "matmul (B,D,D)@(B,D,N)": (lambda: torch.matmul(A_bmm, H, out=out_bmm), 2 * D * D * N, None),
        "matmul (D,D)@(D,B*N)": (lambda: torch.matmul(A_gemm, Y_gemm, out=out_gemm), 2 * D * D * N, None),
        "forward batched": (fwd_batched, fl, None),
        "forward batched, bare expression": (fwd_raw, fl, None),
        "forward whole stack, one product": (fwd_whole_stack, fl, None),
        "forward loop": (fwd_loop, fl, None),
        f"forward chunks of {CHUNK}": (fwd_chunked, fl, None),
        "forward readout column only": (fwd_readout_only, 2 * D * D * N + 4 * D * D + 2 * k * D, None),
        "grad batched": (grad_batched, 3 * fl, 2 * fl),
        "grad loop (sum of losses, one backward)": (grad_loop, 3 * fl, 2 * fl),
        f"grad chunks of {CHUNK} (backward per chunk)": (grad_chunked, 3 * fl, 2 * fl),
        **{name: (fn, f, None) for name, (fn, f) in parts.items()},
    }
    rows = []
    for what, (fn, flops_per_prompt, exact_per_prompt) in cases.items():
        t, faults = _timed(fn, repeats)
        row = {
            "n": n,
            "N": N,
            "D": D,
            "B": B,
            "what": what,
            "seconds": t,
            "prompts_per_s": B / t,
            "gflop": B * flops_per_prompt / 1e9,
            "gflop_per_s": B * flops_per_prompt / t / 1e9 if flops_per_prompt else None,
            "page_faults_per_call": faults,
        }
        if exact_per_prompt is not None:
            row["gflop_per_s_exact"] = B * exact_per_prompt / t / 1e9
        rows.append(row)
    ceiling = max(rows[0]["gflop_per_s"], rows[1]["gflop_per_s"])
    for row in rows:
        row["fraction_of_matmul"] = row["gflop_per_s"] / ceiling if row["gflop_per_s"] else None
        if "gflop_per_s_exact" in row:
            row["fraction_of_matmul_exact"] = row["gflop_per_s_exact"] / ceiling
    return rows


def bench_block(quick: bool, threads: int = 1, seed: int = 0) -> dict:
    """Rows of every (n, case) and the headline ratios (see the module docstring).

    ``threads``: torch intra-op threads for every case (0 keeps torch's setting); restored after.
    """
    prev_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    B, repeats = (100, 5) if quick else (1000, 5)
    t0 = time.perf_counter()
    table = []
    ratios = {}
    try:
        used_threads = torch.get_num_threads()
        for n in NS:
            rows = _bench_size(B, n, repeats, seed)
            table += rows
            ratios.update(_ratios(rows, n))
    finally:
        torch.set_num_threads(prev_threads)
    return {
        "setup": {
            "d": D_FEATURES,
            "D": lt.Layout(D_FEATURES, 0).D,
            "B": B,
            "repeats": repeats,
            "dtype": "float64",
            "device": "cpu",
            "threads": used_threads,
            "cpu_count": os.cpu_count(),
            "flops_forward_per_prompt": "6 D^2 N + 2 D^3",
            "flops_grad_convention": "3 x forward (backward = 2 x forward); exact: 2 x forward",
            "ceiling": "max GFLOP/s of matmul (B,D,D)@(B,D,N) and (D,D)@(D,B*N)",
            "grad_loop": "sum of the B per-prompt losses / B, one backward()",
            "seconds_total": time.perf_counter() - t0,
        },
        "table": table,
        "ratios": ratios,
    }


def _ratios(rows: list[dict], n: int) -> dict:
    """Speed-ups are time ratios (> 1: the first-named is faster); fractions are GFLOP/s ratios."""
    r = {row["what"]: row for row in rows}
    fb, fl, fr = r["forward batched"], r["forward loop"], r["forward batched, bare expression"]
    fw = r["forward whole stack, one product"]
    fc, fo = r[f"forward chunks of {CHUNK}"], r["forward readout column only"]
    gb, gl = r["grad batched"], r["grad loop (sum of losses, one backward)"]
    gc = r[f"grad chunks of {CHUNK} (backward per chunk)"]
    mm, gemm = r["matmul (B,D,D)@(B,D,N)"], r["matmul (D,D)@(D,B*N)"]
    parts = sum(row["seconds"] for row in rows if row["what"].startswith("part:"))
    return {
        f"block_batched_vs_loop_forward_n{n}": fl["seconds"] / fb["seconds"],
        f"block_batched_vs_loop_grad_n{n}": gl["seconds"] / gb["seconds"],
        f"block_chunked_vs_loop_forward_n{n}": fl["seconds"] / fc["seconds"],
        f"block_whole_stack_vs_loop_forward_n{n}": fl["seconds"] / fw["seconds"],
        f"block_chunked_vs_loop_grad_n{n}": gl["seconds"] / gc["seconds"],
        f"block_forward_fraction_of_matmul_n{n}": fb["fraction_of_matmul"],
        f"block_forward_loop_fraction_of_matmul_n{n}": fl["fraction_of_matmul"],
        f"block_forward_chunked_fraction_of_matmul_n{n}": fc["fraction_of_matmul"],
        f"block_grad_fraction_of_matmul_n{n}": gb["fraction_of_matmul"],
        f"block_grad_fraction_of_matmul_exact_n{n}": gb["fraction_of_matmul_exact"],
        f"block_grad_loop_fraction_of_matmul_n{n}": gl["fraction_of_matmul"],
        f"block_grad_chunked_fraction_of_matmul_n{n}": gc["fraction_of_matmul"],
        f"block_grad_vs_forward_time_n{n}": gb["seconds"] / fb["seconds"],
        f"block_checks_overhead_forward_n{n}": fb["seconds"] / fr["seconds"],
        f"block_parts_sum_vs_forward_n{n}": parts / fb["seconds"],
        f"readout_only_vs_full_forward_n{n}": fb["seconds"] / fo["seconds"],
        f"matmul_single_gemm_vs_batched_gflops_n{n}": gemm["gflop_per_s"] / mm["gflop_per_s"],
    }


def _fmt(x, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def main(argv=None) -> int:
    p = bench_parser(
        __doc__, "B = 100, fewer repeats (< 60 s)", "torch threads (default 1; 0: torch's default)"
    )
    args = p.parse_args(argv)
    doc = {**bench_block(args.quick, threads=args.threads), "versions": versions()}
    if emit(doc, args):
        return 0
    s = doc["setup"]
    print(
        f"LSA block (L1), float64 CPU, d = {s['d']}, D = {s['D']}, B = {s['B']}, "
        f"torch threads = {s['threads']}; grad flops = {s['flops_grad_convention']}"
    )
    print(
        f"{'n':>4} {'what':<44} {'seconds':>9} {'prompts/s':>10} {'GFLOP/s':>8} {'exact':>6} "
        f"{'of mm':>6} {'faults':>7}"
    )
    for r in doc["table"]:
        print(
            f"{r['n']:>4} {r['what']:<44} {r['seconds']:>9.5f} {r['prompts_per_s']:>10.0f} "
            f"{_fmt(r['gflop_per_s'], '8.2f'):>8} {_fmt(r.get('gflop_per_s_exact'), '6.2f'):>6} "
            f"{_fmt(r['fraction_of_matmul'], '6.2f'):>6} {r['page_faults_per_call']:>7.0f}"
        )
    print("ratios:")
    for key, val in doc["ratios"].items():
        print(f"  {key:<48} {val:8.3f}")
    print(f"total {s['seconds_total']:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
