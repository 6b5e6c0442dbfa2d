"""Fast paths of issue 5 and the benchmark driver: each fast path against the slow path it replaces.

- ``dy.lambda_max`` by Lanczos on Hessian-vector products against the dense spectrum;
- ``dy.adam``: its first steps against Adam written out by hand; the shared stopping tests;
- ``max_seconds`` budgets of the flow and the first-order methods (status -3, never "converged");
- the chunked :func:`lsa_theory.lsa_block` against one whole-stack product and per-prompt calls,
  values and autograd gradients;
- ``benchmarks/run.py --smoke``: the JSON document's contract (slow; numbers are not checked).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import lsa_theory as lt
import lsa_theory.lsa as lsa_module
from lsa_theory import dynamics as dy

ROOT = Path(__file__).resolve().parents[2]


def _case(algorithm="sarsa", S=2, A=2, d=None, k=5, seed=0, radius=1e-2):
    spec = dy.TeacherSpec(algorithm=algorithm, S=S, A=A, d=d, k=k, frames=4)
    ds = dy.teacher_dataset(spec, np.random.default_rng(seed))
    theta = dy.construction(ds, 1.0)
    z = np.random.default_rng([seed, 1]).standard_normal(theta.size)
    return ds, theta + radius * np.linalg.norm(theta) * z / np.linalg.norm(z)


@pytest.mark.parametrize("algorithm", ["sarsa", "actor_critic"])
@pytest.mark.parametrize("radius", [1e-3, 1.0])
def test_lambda_max_lanczos_matches_dense(algorithm, radius):
    ds, theta = _case(algorithm, S=3, A=2, radius=radius)
    dense = dy.lambda_max(ds, theta, method="dense")
    lanczos = dy.lambda_max(ds, theta, method="lanczos")
    assert dense == pytest.approx(float(np.abs(np.linalg.eigvalsh(dy.hessian(ds, theta))).max()), rel=1e-14)
    assert lanczos == pytest.approx(dense, rel=1e-8)
    assert dy.lambda_max(ds, theta) == dense  # auto: dense below DENSE_MAX
    assert theta.size <= dy.DENSE_MAX


def test_lambda_max_refuses_bad_input():
    ds, theta = _case()
    with pytest.raises(ValueError, match="method"):
        dy.lambda_max(ds, theta, method="power")
    with pytest.raises(ValueError, match="theta"):
        dy.lambda_max(ds, theta[:-1], method="lanczos")


def test_adam_first_steps_match_the_update_written_out():
    ds, theta0 = _case()
    lr, (b1, b2), eps = 1e-3, (0.9, 0.999), 1e-8
    res = dy.adam(ds, theta0, lr, 3, record_every=1)
    theta, m, v = theta0.copy(), np.zeros_like(theta0), np.zeros_like(theta0)
    for i in range(1, 4):
        g = dy.loss_and_grad(ds, theta)[1]
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        theta = theta - lr * (m / (1 - b1**i)) / (np.sqrt(v / (1 - b2**i)) + eps)
        np.testing.assert_allclose(res.t[i], i * lr, rtol=1e-15)
    np.testing.assert_allclose(res.theta_final, theta, rtol=0, atol=1e-15)
    # the first step moves every coordinate by lr g / (|g| + eps), i.e. about lr
    g0 = dy.loss_and_grad(ds, theta0)[1]
    res1 = dy.adam(ds, theta0, lr, 1, record_every=1)
    np.testing.assert_allclose(theta0 - res1.theta_final, lr * g0 / (np.abs(g0) + eps), rtol=1e-12)
    assert res.status == -1 and not res.converged


def test_adam_reduces_the_loss_and_refuses_bad_arguments():
    ds, theta0 = _case(radius=1e-1)
    res = dy.adam(ds, theta0, 1e-3, 2000, record_every=100)
    assert res.loss[-1] < 1e-2 * res.loss[0]
    for kwargs, name in (({"lr": 0.0}, "lr"), ({"betas": (1.0, 0.9)}, "betas"), ({"eps": -1.0}, "eps")):
        args = {"lr": 1e-3, **kwargs}
        lr = args.pop("lr")
        with pytest.raises(ValueError, match=name):
            dy.adam(ds, theta0, lr, 10, **args)


def test_max_seconds_stops_every_method_with_status_minus_3():
    ds, theta0 = _case()
    runs = [
        dy.gradient_flow(ds, theta0, 1e12, max_seconds=1e-9),
        dy.gradient_descent(ds, theta0, 1.0, 10**6, record_every=1, max_seconds=1e-9),
        dy.adam(ds, theta0, 1e-3, 10**6, record_every=1, max_seconds=1e-9),
    ]
    for res in runs:
        assert res.status == -3 and not res.converged, res.message
        assert "max_seconds" in res.message
    with pytest.raises(ValueError, match="max_seconds"):
        dy.gradient_flow(ds, theta0, 1.0, max_seconds=0.0)


def test_max_seconds_does_not_change_a_finished_run():
    ds = dy.teacher_dataset(dy.TeacherSpec(), np.random.default_rng(0))  # k = 20 x 10 frames: rich
    theta0 = dy.construction(ds, 1.0) * (1.0 + 1e-2)
    a = dy.gradient_flow(ds, theta0, 1e12, stop_dist=1e-6)
    b = dy.gradient_flow(ds, theta0, 1e12, stop_dist=1e-6, max_seconds=3600.0)
    assert a.status == b.status == 2
    np.testing.assert_array_equal(a.theta_final, b.theta_final)


@pytest.mark.parametrize("batch", [17, 40])
def test_chunked_block_equals_whole_stack_and_per_prompt(batch, monkeypatch):
    rng = np.random.default_rng(batch)
    D, n = 7, 5
    H = rng.standard_normal((batch, D, n + 1))
    P, V = rng.standard_normal((D, D)), rng.standard_normal((D, D))
    assert batch > lsa_module.BLOCK_CHUNK
    chunked = lt.lsa_block(H, P, V)
    per_prompt = np.stack([lt.lsa_block(h, P, V) for h in H])
    monkeypatch.setattr(lsa_module, "BLOCK_CHUNK", 10**9)
    whole = lt.lsa_block(H, P, V)
    np.testing.assert_array_equal(chunked, per_prompt)
    np.testing.assert_allclose(chunked, whole, rtol=1e-13, atol=1e-13 * np.abs(whole).max())

    def grads(chunk):
        monkeypatch.setattr(lsa_module, "BLOCK_CHUNK", chunk)
        Pt, Vt = (torch.tensor(M, requires_grad=True) for M in (P, V))
        lt.readout(lt.lsa_block(torch.as_tensor(H), Pt, Vt), 3).pow(2).sum().backward()
        return Pt.grad.numpy(), Vt.grad.numpy()

    for a, b in zip(grads(16), grads(10**9), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12 * np.abs(b).max())


@pytest.mark.slow
def test_run_py_smoke_document(tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--smoke", "--json", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert json.loads(out.read_text()) == doc
    assert set(doc) == {"ratios", "slopes", "tables", "setup", "versions", "provenance"}
    assert {"version", "git_commit", "config_hash", "blas_threads", "dependencies"} <= set(doc["provenance"])
    for key in (
        "stats_vs_autograd_n16",
        "stats_vs_autograd_readout_n16",
        "flow_vs_gd_time",
        "rollouts_vectorised_vs_loop_k1000_S2A2",
        "block_batched_vs_loop_forward_n20",
        "block_forward_fraction_of_matmul_n20",
        "flow_fast_vs_dense_d4",
    ):
        assert key in doc["ratios"], key
    assert all(np.isfinite(v) and v > 0 for v in doc["ratios"].values())
    assert set(doc["tables"]) == {
        "gradient",
        "flow_vs_gd",
        "methods",
        "fast_vs_dense",
        "diffrax",
        "rollouts",
        "block",
        "scaling",
    }
    dx = doc["tables"]["diffrax"]
    assert ("skipped" in dx) or {"flow_vs_diffrax_kvaerno5_d2", "flow_vs_diffrax_tsit5_d2"} <= set(
        doc["ratios"]
    )
    assert all(np.isfinite(v) for v in doc["slopes"].values())
    assert doc["tables"]["rollouts"]["bit_identical_k10"] == {"S2A2": True, "LL": True}
