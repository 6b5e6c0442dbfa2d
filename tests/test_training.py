"""Training one LSA block by teacher mimicking (:mod:`experiments.training`): (L2) forward against
(L1) on raw prompts, the frozen blocks of (M2), recovery of (S3) on a tiny run, checkpoint/resume
equality, saved outputs and input validation."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import dynamics as dy
import lsa_theory as lt
from experiments import training as tr

TINY = dict(
    S=2,
    A=2,
    k=100,
    frames=10,
    heldout_k=10,
    steps=300,
    batch_size=50,
    lr=1e-2,
    lr_final=1e-3,
    schedule="constant",
    dtype="float64",
    log_every=50,
    checkpoint_every=100,
)


def _tiny(**kw) -> tr.TrainConfig:
    return tr.TrainConfig(**{**TINY, **kw})


def _raw(algorithm: str, seed: int = 0):
    d_pi = 2 if algorithm == "actor_critic" else None
    spec = dy.TeacherSpec(algorithm=algorithm, S=2, A=3, k=3, frames=4, d_pi=d_pi)
    ds = dy.teacher_dataset(spec, np.random.default_rng(seed), keep_prompts=True)
    g = torch.Generator().manual_seed(seed)
    D = ds.layout.D
    P = torch.randn((D, D), generator=g, dtype=torch.float64, requires_grad=True)
    V = torch.randn((D, D), generator=g, dtype=torch.float64, requires_grad=True)
    return ds, P, V


@pytest.mark.parametrize("algorithm", ["sarsa", "actor_critic"])
def test_l2_forward_equals_lsa_block_on_raw_prompts(algorithm):
    """(L2): the training forward is exactly (L1) on the raw prompts, for full random P, V."""
    ds, P, V = _raw(algorithm)
    lay = ds.layout
    H = torch.as_tensor(ds.prompts())
    Sigma, wt = torch.as_tensor(ds.Sigma), torch.as_tensor(ds.wt)
    raw = lt.readout(lt.lsa_block(H, P, V), lay.k).detach()
    inc = tr.increment(Sigma, wt, P, V, ds.spec.n, lay).detach()
    scale = float(raw.abs().max())
    assert float((wt[:, 1:] + inc - raw).abs().max()) <= 1e-12 * scale
    stat = lt.tf_from_statistics(Sigma, wt, P, V, ds.spec.n, lay).detach()
    assert float((wt[:, 1:] + inc - stat).abs().max()) <= 1e-12 * scale


@pytest.mark.parametrize("algorithm", ["sarsa", "actor_critic"])
def test_frozen_blocks_get_exactly_zero_gradient(algorithm):
    """(M2): P11, P21 and the first m+1 rows of V get exactly zero gradient; the other blocks get the
    gradient of (M1) through the raw block (L1) (to 1e-10 relative)."""
    ds, P, V = _raw(algorithm, seed=1)
    lay = ds.layout
    data = tr.TrainData(
        ds.spec, torch.as_tensor(ds.Sigma), torch.as_tensor(ds.wt), torch.as_tensor(ds.y), ds.Sigma.mean(0)
    )
    gP, gV = torch.autograd.grad(tr.training_loss(data, P, V), (P, V))
    for name, block in tr.frozen_blocks(gP.numpy(), gV.numpy(), lay).items():
        assert np.all(block == 0.0), name
    targets = torch.as_tensor(ds.wt[:, 1:] + ds.y)
    rP, rV = torch.autograd.grad(dy.full_loss_torch(P, V, torch.as_tensor(ds.prompts()), targets), (P, V))
    scale = max(float(rP.abs().max()), float(rV.abs().max()))
    assert float((gP - rP).abs().max()) <= 1e-10 * scale
    assert float((gV - rV).abs().max()) <= 1e-10 * scale
    live = lay.blocks(gP.numpy(), gV.numpy())
    assert all(np.abs(b).max() > 0 for b in live.values())


def test_symmetric_matvec_gradcheck():
    g = torch.Generator().manual_seed(0)
    X = torch.randn((4, 5, 7), generator=g, dtype=torch.float64)
    Sigma = (X @ X.mT / 7).requires_grad_(True)
    v = torch.randn((4, 5), generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(tr._SymMatVec.apply, (Sigma, v))


@pytest.mark.parametrize("mode", ["full", "effective"])
def test_tiny_training_recovers_the_construction(mode):
    """Loss falls by many orders, cos with (c P*, V*/c) rises to ~1, frozen blocks never move,
    and the learned block matches the teacher on held-out MDPs with fresh features."""
    res = tr.train(_tiny(mode=mode))
    h = res.history
    assert res.finished and h["step"][-1] == 300
    assert h["loss"][-1] < 1e-3 * h["loss"][0]
    assert np.all(np.diff(h["loss"]) < 0)
    assert h["cos"][0] < 0.5 < 0.999 < res.final["cos"]
    assert res.final["heldout_err"] < 0.05
    assert max(h["frozen_moved"]) == 0.0
    assert res.final["invisible_dim"] == 0
    if mode == "effective":
        b = lt.Layout(4).blocks(res.P, res.V)
        assert np.all(b["P22"] == 0) and np.all(b["Vbar22"] == 0)
        # every entry of V outside Vbar21 is exactly zero (compare entries, not round-off-prone sums)
        lay = lt.Layout(4)
        outside = res.V.copy()
        outside[lay.m + 1 :, : lay.m] = 0.0
        assert np.all(outside == 0.0)


def _interrupt_at(monkeypatch, at: int):
    real = tr.lr_at

    def lr_at(cfg, step):
        if step == at:
            raise KeyboardInterrupt
        return real(cfg, step)

    monkeypatch.setattr(tr, "lr_at", lr_at)


@pytest.mark.parametrize(
    ("kw", "crash_at"),
    [
        (dict(), 27),
        (dict(dtype="float32", polish_steps=15), 23),  # resume in float32, promote at step 25
        (dict(dtype="float32", polish_steps=15), 33),  # resume after the promotion to float64
    ],
)
def test_checkpoint_resume_is_bitwise_identical(tmp_path, monkeypatch, kw, crash_at):
    cfg = _tiny(k=20, frames=5, steps=40, checkpoint_every=10, log_every=5, schedule="exp", **kw)
    ref = tr.train(cfg, tmp_path / "ref")
    with monkeypatch.context() as mp:
        _interrupt_at(mp, crash_at)
        with pytest.raises(KeyboardInterrupt):
            tr.train(cfg, tmp_path / "run")
    ck = torch.load(tmp_path / "run" / tr.CHECKPOINT, weights_only=False)
    assert ck["step"] == 10 * (crash_at // 10)
    part = tr.train(cfg, tmp_path / "run2", stop_at=13)  # a time-boxed stop, then resumed too
    assert not part.finished and part.history["step"][-1] == 10
    res = tr.train(cfg, tmp_path / "run")
    res2 = tr.train(cfg, tmp_path / "run2")
    for r in (res, res2):
        assert r.finished
        assert np.array_equal(r.P, ref.P) and np.array_equal(r.V, ref.V)
        assert r.history["loss"] == ref.history["loss"]
        assert r.history["step"] == ref.history["step"]
    again = tr.train(cfg, tmp_path / "run")  # a finished run is only reloaded
    assert np.array_equal(again.P, ref.P)


def test_outputs_saved_and_plotted(tmp_path):
    cfg = _tiny(steps=60, log_every=20, checkpoint_every=30)
    res = tr.train(cfg, tmp_path)
    with np.load(tmp_path / "train.npz") as z:
        assert {"P", "V", "P_star", "V_star"} <= set(z.files)
        D = cfg.layout.D
        assert z["P"].shape == (D, D) and z["V"].shape == (D, D)
        assert np.array_equal(z["P"], res.P)
        c = float(z["c"])
        Ps, Vs = tr.constructions.sarsa(cfg.layout.d, cfg.alpha, c)
        assert np.array_equal(z["P_star"], Ps) and np.array_equal(z["V_star"], Vs)
    doc = json.loads((tmp_path / "train.json").read_text())
    assert doc["finished"] and doc["seed"] == cfg.seed and doc["config"] == cfg.as_dict()
    assert "torch" in doc["versions"]
    assert doc["history"]["step"] == [0, 20, 40, 60]
    assert doc["final"]["cos"] == pytest.approx(res.final["cos"])
    paths = tr.plot_training(tmp_path)
    assert all(p.exists() and p.stat().st_size > 0 for p in paths)


def test_diversity_sweep_saves_and_plots(tmp_path):
    base = _tiny(steps=100, log_every=50, checkpoint_every=50)
    doc = tr.diversity_training_sweep(
        ks=(1, 10), shared_features=(False, True), base=base, total_frames=200, out=tmp_path
    )
    rows = doc["rows"]
    assert [(r["k"], r["shared_features"]) for r in rows] == [(1, False), (10, False), (1, True), (10, True)]
    assert [r["frames"] for r in rows] == [200, 20, 200, 20]
    by = {(r["k"], r["shared_features"]): r for r in rows}
    assert by[(10, True)]["invisible_dim"] > 0 == by[(10, False)]["invisible_dim"]
    assert (tmp_path / "diversity_training.json").exists()
    assert tr.plot_diversity_training(tmp_path).exists()


@pytest.mark.parametrize(
    ("kw", "name"),
    [
        (dict(mode="diag"), "mode"),
        (dict(optimizer="lbfgs"), "optimizer"),
        (dict(dtype="float16"), "dtype"),
        (dict(schedule="step"), "schedule"),
        (dict(lr=0.0), "lr"),
        (dict(lr_final=-1.0), "lr_final"),
        (dict(steps=0), "steps"),
        (dict(batch_size=0), "batch_size"),
        (dict(init_scale=0.0), "init_scale"),
        (dict(polish_steps=400), "polish_steps"),
        (dict(S=0), "S"),
        (dict(k=0), "k"),
        (dict(gamma=1.0), "gamma"),
        (dict(algorithm="q_learning"), "algorithm"),
        (dict(log_every=0), "log_every"),
        (dict(momentum=1.0), "momentum"),
    ],
)
def test_bad_config_raises(kw, name):
    with pytest.raises(ValueError, match=name):
        _tiny(**kw)


def test_bad_arguments_raise(tmp_path):
    cfg = _tiny(steps=20, checkpoint_every=10)
    with pytest.raises(ValueError, match="cfg"):
        tr.train({"steps": 10})
    with pytest.raises(ValueError, match="stop_at"):
        tr.train(cfg, stop_at=-1)
    tr.train(cfg, tmp_path, stop_at=10)
    with pytest.raises(ValueError, match="out"):
        tr.train(cfg.replace(seed=1), tmp_path)
    with pytest.raises(ValueError, match="ks"):
        tr.diversity_training_sweep(ks=(0,), base=cfg)
    with pytest.raises(ValueError, match="shared_features"):
        tr.diversity_training_sweep(ks=(1,), shared_features=("yes",), base=cfg)
    with pytest.raises(ValueError, match="dtype"):
        tr.make_data(cfg.spec(), 0, dtype="half")
