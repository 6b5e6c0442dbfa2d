"""``lsa-theory distill --mode train``: (AD4), distillation by training (docs/theory.md §11). The
model's forward pass against the exact statements, the cosine, the checks and the JSON contract
on a tiny grid; the measured runs are in docs/figures/distill-train-full.json (docs/distill.md)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from lsa_theory.constructions import derive
from lsa_theory.experiments.distill import train as tr


def _tiny():
    return dataclasses.replace(
        tr.TrainConfig.quick(),
        ks=(4,),
        Ls=(1, 2),
        K=3,
        steps=20,
        n_heldout=3,
        n_deploy=2,
        deploy_K=6,
        early=2,
        late=2,
    )


@pytest.fixture(scope="module")
def data():
    cfg = _tiny()
    return cfg, tr.source_data(cfg, [np.random.default_rng([9, j]) for j in range(3)])


def test_masked_construction_is_the_source_on_statistics(data):
    """(AD1) on the invariant set: the masked stack with (S3)'s blocks and step alpha gives the
    source's w_{k+1} for every prefix k (1e-12); a mutation (layer l reading episode l + 1, the
    last episode wrapping) fails."""
    cfg, D = data
    A, B = tr.construction_blocks(cfg.d, cfg.alpha)
    out = tr.stack_outputs(A, B, D, cfg.K, masked=True).numpy()
    assert derive.relative_residual(out, D["ws"][:, 1:]) <= derive.READOUT_TOL
    shifted = {**D, "ep": np.roll(D["ep"], -1, axis=1)}
    bad = tr.stack_outputs(A, B, shifted, cfg.K, masked=True).numpy()
    assert derive.relative_residual(bad, D["ws"][:, 1:]) > 1e-4


def test_unmasked_stack_is_pooled_sarsa(data):
    """(AD2) on the invariant set: L unmasked layers with (S3)'s blocks = L pooled iterations."""
    from lsa_theory import distill as ad

    cfg, D = data
    A, B = tr.construction_blocks(cfg.d, 0.3)
    out = tr.stack_outputs(A, B, D, 2, masked=False).numpy()
    rng = np.random.default_rng([9, 0])
    mdp, phi, w0 = tr._mdp(cfg, rng)
    h = ad.source_history(mdp, phi, w0, H=cfg.H, K=cfg.K, alpha=cfg.alpha, epsilon=cfg.epsilon, rng=rng)
    for k in range(1, cfg.K + 1):
        ref = ad.pooled_sarsa(h.episodes(0, k), w0, 0.3, 2)
        assert derive.relative_residual(out[0, k - 1], ref) <= derive.READOUT_TOL


def test_cosine_to_construction():
    A, B = tr.construction_blocks(3, 0.2)
    assert tr.cosine_to_construction(-2 * A, -B / 5) == pytest.approx(1.0, abs=1e-15)  # scale-free
    rng = np.random.default_rng(0)
    assert tr.cosine_to_construction(A + 0.1 * rng.standard_normal(A.shape), B) < 0.999


def test_checks_catch_a_masked_run_that_is_not_the_construction():
    good = {"k": 300, "L": 8, "seed": 0, "masked": True, "heldout_err": 1e-15, "cos_S3": 1.0}
    bad = {**good, "heldout_err": 1e-3}
    flat = {"k": 300, "L": 8, "seed": 0, "masked": False, "heldout_err": 0.5, "cos_S3": 0.9}
    assert all(r["passed"] for r in tr._checks([good], 300))
    assert not all(r["passed"] for r in tr._checks([bad], 300))
    assert not all(r["passed"] for r in tr._checks([flat], 300))
    assert tr._checks([{**bad, "k": 30}], 30) == []  # small k is reported, not checked


def test_contract_every_run_listed():
    cfg = _tiny()
    doc = tr.run_train(cfg)
    assert len(doc["runs"]) == len(cfg.ks) * len(cfg.seeds) * (len(cfg.Ls) + 1)
    for r in doc["runs"]:
        assert {"k", "L", "masked", "seed", "heldout_err", "return_gain"} <= set(r)
        assert len(r["heldout_err_by_k"]) == cfg.K and len(r["return_gain"]) == 3
    assert {c["masked"] for c in doc["constructed"]} == {False, True}
    assert [c for c in doc["constructed"] if c["masked"]][0]["heldout_err"] <= 1e-12
    assert doc["passed"] and {"config", "provenance", "verify"} <= set(doc)


def test_config_is_checked():
    with pytest.raises(ValueError, match="ks"):
        tr.TrainConfig(ks=())
    with pytest.raises(ValueError, match="early"):
        tr.TrainConfig(early=30, late=20)
