"""Training one LSA block by teacher mimicking (:mod:`lsa_theory.experiments.training`): (L2) forward against
(L1) on raw prompts, the frozen blocks of (M2), recovery of (S3) on a tiny run, checkpoint/resume
equality, saved outputs and input validation."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.stats
import torch

import lsa_theory as lt
from lsa_theory import constructions
from lsa_theory import dynamics as dy
from lsa_theory.experiments import tables
from lsa_theory.experiments import training as tr
from lsa_theory.experiments.training import loop as trl
from lsa_theory.experiments.training import model as trm

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
    assert torch.autograd.gradcheck(trm._SymMatVec.apply, (Sigma, v))


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

    monkeypatch.setattr(trl, "lr_at", lr_at)  # the loop's own name


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


def test_outputs_saved_and_plotted(tmp_path, figures):
    cfg = _tiny(steps=60, log_every=20, checkpoint_every=30)
    res = tr.train(cfg, tmp_path)
    with np.load(tmp_path / "train.npz") as z:
        assert {"P", "V", "P_star", "V_star"} <= set(z.files)
        D = cfg.layout.D
        assert z["P"].shape == (D, D) and z["V"].shape == (D, D)
        assert np.array_equal(z["P"], res.P)
        c = float(z["c"])
        Ps, Vs = constructions.sarsa(cfg.layout.d, cfg.alpha, c)
        assert np.array_equal(z["P_star"], Ps) and np.array_equal(z["V_star"], Vs)
    doc = json.loads((tmp_path / "train.json").read_text())
    assert doc["finished"] and doc["seed"] == cfg.seed and doc["config"] == cfg.as_dict()
    assert "torch" in doc["versions"]
    assert doc["history"]["step"] == [0, 20, 40, 60]
    assert doc["final"]["cos"] == pytest.approx(res.final["cos"])
    paths = tr.plot_training(tmp_path)
    assert all(p.exists() and p.stat().st_size > 0 for p in paths)
    assert figures.assert_heatmaps_labelled(figures["training_heatmaps.png"]) == 4


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


# ------------------------------------------------------------------------------- issue 10 (items 4, 6)


def _reward_fingerprints(Sigma: np.ndarray, d: int) -> np.ndarray:
    """Per frame, the reward table r(s, a) read off one-hot (L2) statistics: with one-hot features
    ``Sigma[sa, sa]`` is the visit frequency and ``Sigma[sa, 2d]`` frequency times ``r(s, a)``
    (NaN where (s, a) is not visited). A fingerprint of the frame's MDP."""
    freq = np.einsum("fii->fi", Sigma[:, :d, :d])
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(freq > 0, Sigma[:, :d, 2 * d] / freq, np.nan)


def _same_mdp(r1: np.ndarray, r2: np.ndarray) -> bool:
    both = np.isfinite(r1) & np.isfinite(r2)
    return both.sum() >= 2 and bool(np.all(np.abs(r1[both] - r2[both]) < 1e-9))


def test_heldout_frames_come_from_mdps_not_in_training():
    """The held-out frames ``train`` scores on are drawn from MDPs that are not training MDPs: with
    one-hot features every frame's statistics reveal its MDP's rewards, and no held-out frame's
    rewards match a training frame's (while frames of one MDP do match each other)."""
    cfg = _tiny(features="onehot", k=6, frames=3, heldout_k=6, heldout_frames=3)
    run = trl._Run(cfg, None, torch.device("cpu"))
    d = cfg.layout.d
    train_fp = _reward_fingerprints(run.data.Sigma.numpy(), d)
    held_fp = _reward_fingerprints(run.held.Sigma, d)
    matches = [_same_mdp(h, t) for h in held_fp for t in train_fp]
    assert not any(matches)
    same = [_same_mdp(held_fp[0], h) for h in held_fp[1:3]]  # frames 0-2 share held-out MDP 0
    assert all(same)
    ds = tr.heldout_data(cfg)
    np.testing.assert_array_equal(ds.Sigma, run.held.Sigma)


def test_structure_metrics_over_all_blocks(rng):
    """``cos`` sees only (Vbar21, P12); ``cos_full`` every entry and ``cos_readout`` the four (L2)
    blocks: a perturbation of Vbar22 lowers both, one of a frozen block only ``cos_full``."""
    spec = dy.TeacherSpec(S=2, A=2, k=3, frames=2)
    summary = dy.teacher_dataset(spec, rng)
    lay = spec.layout
    P, V = tr.construction_pv(spec, 1.7)
    m0 = tr.structure_metrics(P, V, summary, U=np.zeros((lay.m, 0)))
    assert m0["c"] == pytest.approx(1.7, rel=1e-12)
    assert m0["cos_full"] == pytest.approx(1.0, abs=1e-15) and m0["dist_full_rel"] < 1e-15
    assert m0["norm_offstar"] == 0.0 and m0["cos_readout"] == pytest.approx(1.0, abs=1e-15)
    V2 = V.copy()
    V2[lay.m + 1 :, lay.m :] = 0.3  # Vbar22
    m1 = tr.structure_metrics(P, V2, summary, U=np.zeros((lay.m, 0)))
    assert m1["cos"] == pytest.approx(1.0, abs=1e-15)
    assert m1["cos_full"] < 0.99 and m1["cos_readout"] < 0.99 and m1["norm_offstar"] > 0.1
    P3 = P.copy()
    P3[: lay.m, : lay.m] = 0.3  # P11: frozen, invisible to the output
    m2 = tr.structure_metrics(P3, V, summary, U=np.zeros((lay.m, 0)))
    assert m2["cos_readout"] == pytest.approx(1.0, abs=1e-15) and m2["cos_full"] < 0.99


def test_invariant_initialisation_stays_on_the_invariant_set(tmp_path):
    """(M2): from P22 = 0, Vbar22 = 0 full training never leaves the invariant set (exactly), and it
    still recovers (S3); from the random initialisation Vbar22 does not vanish."""
    res = tr.train(_tiny(init="invariant"), tmp_path)
    lay = res.config.layout
    with np.load(tmp_path / "train.npz") as z:
        b0 = lay.blocks(z["P0"], z["V0"])
    assert np.all(b0["P22"] == 0.0) and np.all(b0["Vbar22"] == 0.0) and np.abs(b0["P12"]).max() > 0
    b = lay.blocks(res.P, res.V)
    assert np.all(b["P22"] == 0.0) and np.all(b["Vbar22"] == 0.0)
    assert max(res.history["norm_P22"]) == 0.0 and max(res.history["norm_Vbar22"]) == 0.0
    assert res.final["cos"] > 0.999 and res.final["heldout_err"] < 0.05
    held = tr.heldout_data(res.config)
    assert tr.heldout_error_without_cubic(res.P, res.V, held) == res.final["heldout_err"]  # no cubic term
    ref = tr.train(_tiny(steps=50, log_every=50))
    assert ref.final["norm_Vbar22"] > 1e-3
    assert tr.heldout_error_without_cubic(ref.P, ref.V, held) != ref.final["heldout_err"]


def test_state_critic_data_has_action_constant_critic_features():
    """The state-value actor-critic (critic 'state'): the critic columns are psi(s) (constant over
    actions), so one MDP's critic Gram block has rank <= S < d; the action-value variant's has
    full rank d; a critic that is not the algorithm's own is refused."""
    for algorithm, critic, rank in (("actor_critic", "state", 2), ("actor_critic_q", "action", 4)):
        spec = dy.TeacherSpec(algorithm=algorithm, S=2, A=3, d=4, d_pi=2, k=3, frames=5)
        ds = tr.teacher_data(spec, np.random.default_rng(0), critic)
        assert ds.Sigma.shape == (15, spec.layout.m, spec.layout.m)
        for j in range(3):
            G = ds.Sigma[ds.mdp == j, :4, :4].sum(axis=0)
            assert np.linalg.matrix_rank(G, tol=1e-10) == rank
    with pytest.raises(ValueError, match="critic"):
        tr.teacher_data(dy.TeacherSpec(), np.random.default_rng(0), "state")
    with pytest.raises(ValueError, match="critic"):
        tr.teacher_data(dy.TeacherSpec(algorithm="actor_critic"), np.random.default_rng(0), "action")


def test_actor_critic_training_with_state_critic_recovers_a3():
    """Teacher mimicking with the (A1) prompt and the state-value critic recovers (A3) up to scale."""
    res = tr.train(_tiny(algorithm="actor_critic", critic="state", d=2, d_pi=4))
    assert res.history["cos"][0] < 0.5 < 0.999 < res.final["cos"]
    assert res.final["heldout_err"] < 0.05
    assert max(res.history["frozen_moved"]) == 0.0
    assert res.P.shape == (lt.Layout(2, 4).D,) * 2


def test_train_seeds_reports_every_seed(tmp_path):
    doc = tr.train_seeds(_tiny(k=20, steps=40, log_every=20, checkpoint_every=20), (0, 1, 2), tmp_path)
    assert [r["seed"] for r in doc["rows"]] == [0, 1, 2]
    assert len({r["loss"] for r in doc["rows"]}) == 3  # seeds differ
    assert doc["spread"]["cos"]["min"] <= doc["spread"]["cos"]["mean"] <= doc["spread"]["cos"]["max"]
    assert json.loads((tmp_path / "seeds.json").read_text())["seeds"] == [0, 1, 2]
    assert tr.plot_training_seeds(tmp_path).exists()
    assert tables.table("seeds", tmp_path / "seeds.json").count("\n| ") == 3  # one row per seed
    with pytest.raises(ValueError, match="seeds"):
        tr.train_seeds(_tiny(), (0, 0))


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # the diverging block, on purpose
def test_returns_by_k_lists_every_run_with_divergences(tmp_path, figures):
    """Item 5: every (seed, k, features) run appears in ``returns_by_k.json``, a diverged loop is
    counted (never dropped), and ``groups`` pool the seeds."""
    base = _tiny(steps=60, log_every=60, checkpoint_every=60)
    tr.diversity_training_sweep(
        ks=(1, 10), shared_features=(False,), base=base, total_frames=100, out=tmp_path, seeds=(0, 1)
    )
    bad = tmp_path / tr.run_dir(1, 10, False) / "train.npz"
    with np.load(bad) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["V"] = arrays["V"] * 1e3  # a block whose loop diverges
    np.savez(bad, **arrays)
    doc = tr.deployed_returns_by_k(tmp_path, n_heldout=3, n_updates=20)
    assert [(r["seed"], r["k"]) for r in doc["rows"]] == [(0, 1), (0, 10), (1, 1), (1, 10)]
    row = doc["rows"][3]
    assert (
        row["n_diverged"] == 3
        and row["normalized_return"] is None
        and row["normalized_return_nanmean"] is None
    )
    groups = {g["k"]: g for g in doc["groups"]}
    assert groups[10]["n_loops"] == 6 and groups[10]["n_diverged"] == 3 and groups[10]["n_seeds"] == 2
    assert all(r["n_diverged"] == 0 for r in doc["rows"][:3])
    # issue 18 item 5: every loop counted (diverged = 0) and the loops of one held-out MDP one
    # cluster: per-MDP means over the seeds, paired with the teacher on the same MDP (3, not 6)
    from lsa_theory.experiments import stats

    teacher = np.array(doc["normalized_returns_teacher"], dtype=float)

    def loops_of(k):  # (MDPs, seeds), NaN where a loop diverged
        rows = [r["normalized_returns"] for r in doc["rows"] if r["k"] == k]
        return np.array([[np.nan if x is None else x for x in r] for r in rows], dtype=float).T

    for k, g in groups.items():
        loops = loops_of(k)
        per_mdp = np.where(np.isnan(loops), 0.0, loops).mean(axis=1) - teacher
        mt = g["minus_teacher"]
        assert mt["n"] == 3 and mt["n_loops_a"] == 6 and mt["n_diverged_a"] == g["n_diverged"]
        assert mt["mean"] == pytest.approx(per_mdp.mean(), abs=1e-14)
        assert mt["sem"] == pytest.approx(per_mdp.std(ddof=1) / np.sqrt(3), rel=1e-12)
        half = scipy.stats.t.ppf(0.975, 2) * mt["sem"]  # the subtraction below rounds at ~u |ci_high|
        assert mt["ci_high"] - mt["mean"] == pytest.approx(half, abs=1e-14 * (1 + abs(mt["ci_high"])))
        assert g["normalized_return_mean"] == pytest.approx(np.nan_to_num(loops).mean(), abs=1e-14)
    assert groups[10]["minus_teacher"] == stats.clustered_paired_ci(loops_of(10), teacher)
    assert tr.plot_returns_by_k(tmp_path).exists()
    assert figures.assert_error_bars_labelled(figures["returns_by_k.png"]) == 1
    text = tables.table("returns-by-k", tmp_path / "returns_by_k.json")
    assert "| 10 | resampled | 2 | 3/6 |" in text and "| 1 | 10 | resampled |" in text
    assert f"{groups[10]['minus_teacher']['mean']:+.3f} [" in text and "(3) |" in text
    assert tables.table("diversity", tmp_path / "diversity_training.json").count("| resampled |") == 4


def test_returns_by_k_pairs_every_seed_with_the_teacher_streams(tmp_path):
    """Every block, whatever its training seed, runs on the held-out streams of the ``seed``
    argument (those the teacher and the held-out MDPs use): the same block saved under two
    training seeds scores identically, and the document records the requested seed."""
    import shutil

    base = _tiny(steps=20, log_every=20, checkpoint_every=20)
    tr.diversity_training_sweep(
        ks=(10,), shared_features=(False,), base=base, total_frames=100, out=tmp_path, seeds=(0, 1)
    )
    shutil.copy(
        tmp_path / tr.run_dir(0, 10, False) / "train.npz", tmp_path / tr.run_dir(1, 10, False) / "train.npz"
    )
    doc = tr.deployed_returns_by_k(tmp_path, n_heldout=3, n_updates=20, seed=2)
    a, b = doc["rows"]
    assert (a["seed"], b["seed"], doc["seed"]) == (0, 1, 2)
    assert a["normalized_return_nanmean"] == b["normalized_return_nanmean"]
    assert a["n_diverged"] == b["n_diverged"]


def test_reproduce_trains_every_group_with_at_least_three_seeds():
    """Item 4/5: every training table and figure of ``lsa-theory reproduce`` (full) stands on >= 3 seeds."""
    from lsa_theory.experiments import reproduce as rp

    assert len(rp.TRAIN_SEEDS) >= 3
    groups = rp._training_runs(False)
    assert {"random", "random_small", "invariant", "actor_critic"} <= set(groups)
    assert all(len(seeds) >= 3 for _, seeds in groups.values())
    assert groups["invariant"][0].init == "invariant" and groups["actor_critic"][0].critic == "state"
