"""lsa_theory.experiments.attention: multi-head and nonlinear attention in SARSA teacher mimicking.

Identity (issue 23, item 3): the raw (L1) block through :func:`lsa_theory.attention_layer` (one
linear head, ``mask = I_{n+1}``, heads ``(V, P)``) on the raw prompts of
:func:`~lsa_theory.experiments.attention.teacher_prompts` equals (L2)
:func:`lsa_theory.tf_from_statistics` on the same frames. Round-off: both sides are the same
polynomial ``w + (1/n) Vbar_2 H H^T P h_{n+1}`` summed in another association (raw: ``H^T (P H)``
with inner length ``D``, then ``M W`` and ``Z (.)`` of length ``n + 1``, then ``V (.)`` of length
``D``; (L2): ``Sigma = X X^T / n`` of length ``n``, then ``P12 wt``, ``Sigma (.)``, ``Vbar21 (.)`` of
length at most ``D``, plus the query term). Entrywise each is within ``gamma_k |V| |H| |H|^T |P|
|h_{n+1}| / n`` (Higham §3.5) with ``k = 3D + 2(n+1) + 2``, so their difference is within twice that
(and ``2u |TF|`` for the final additions); we assert it, and that it is below the 1e-12 relative bar.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_limits

import lsa_theory as lt
from lsa_theory import dynamics as dy
from lsa_theory.experiments import attention as at
from lsa_theory.experiments.training import construction_pv

U = np.finfo(np.float64).eps / 2
SPEC = dy.TeacherSpec(S=2, A=2, n=10, k=6, frames=5)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny products: one BLAS and one torch thread (two oversubscribe a loaded 2-core machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def frames():
    return at.teacher_prompts(SPEC, np.random.default_rng(0))


def _bound(H, P, V, n):
    D, N = H.shape[-2:]
    k = 3 * D + 2 * N + 2
    g = k * U / (1 - k * U)
    A = np.abs
    return 2 * g * (A(V) @ A(H) @ A(H).mT @ A(P) @ A(H[..., -1:]))[..., -SPEC.layout.d :, 0] / n


def test_raw_prompts_are_the_same_frames(frames):
    ds, H = frames
    plain = dy.teacher_dataset(SPEC, np.random.default_rng(0))
    assert np.array_equal(ds.Sigma, plain.Sigma) and np.array_equal(ds.y, plain.y)
    n = SPEC.n
    X = H[:, : SPEC.layout.m, :n]
    assert np.array_equal(lt.sufficient_statistics(X), ds.Sigma)
    assert np.array_equal(H[:, SPEC.layout.m :, -1], ds.wt)


def test_identity_linear_one_head_is_l2_to_roundoff(frames):
    ds, H = frames
    rng = np.random.default_rng(1)
    D = SPEC.layout.D
    P, V = rng.standard_normal((D, D)), rng.standard_normal((D, D))
    raw = ds.wt[:, 1:] + at.block_increment(H, [(P, V)], "linear", SPEC.layout.d)
    ref = lt.tf_from_statistics(ds.Sigma, ds.wt, P, V, SPEC.n, SPEC.layout)
    bound = _bound(H, P, V, SPEC.n) + 2 * U * np.abs(ref)
    assert np.all(np.abs(raw - ref) <= bound)
    scale = np.abs(ref - ds.wt[:, 1:]).max()
    assert np.abs(raw - ref).max() <= 1e-12 * scale
    assert bound.max() <= 1e-12 * scale  # the 1e-12 bar is above round-off here
    # torch path (the one trained) agrees within the same bound
    t = at.block_increment(torch.as_tensor(H), [(torch.as_tensor(P), torch.as_tensor(V))], "linear", 4)
    assert np.all(np.abs(ds.wt[:, 1:] + t.numpy() - ref) <= bound)


def test_heldout_error_is_the_training_experiments(frames):
    """One linear head: the held-out error and (M1) of the raw block are ``training.heldout_error``'s
    (via (L2)), to round-off (relative 1e-12, far above the bound of the identity test)."""
    from lsa_theory.experiments.training import heldout_error

    ds, H = frames
    rng = np.random.default_rng(4)
    D = SPEC.layout.D
    P, V = 0.3 * rng.standard_normal((D, D)), 0.3 * rng.standard_normal((D, D))
    ours = at.heldout_metrics([(P, V)], "linear", ds, H)
    rel, loss = heldout_error(P, V, ds)
    assert ours["heldout_err"] == pytest.approx(rel, rel=1e-12)
    assert ours["heldout_loss"] == pytest.approx(loss, rel=1e-12)


@pytest.mark.parametrize("control", ["mask_context_only", "transposed_P"])
def test_identity_negative_controls_miss(frames, control):
    ds, H = frames
    rng = np.random.default_rng(1)
    D, n = SPEC.layout.D, SPEC.n
    P, V = rng.standard_normal((D, D)), rng.standard_normal((D, D))
    ref = lt.tf_from_statistics(ds.Sigma, ds.wt, P, V, n, SPEC.layout)
    if control == "mask_context_only":  # the query column no longer a key: drops the cubic (L2) term
        out = lt.attention_layer(H, [(V, P)], "linear", mask=np.diag(np.r_[np.ones(n), 0.0]))
        raw = lt.readout(out, SPEC.layout.d)
    else:
        raw = ds.wt[:, 1:] + at.block_increment(H, [(P.T, V)], "linear", SPEC.layout.d)
    scale = np.abs(ref - ds.wt[:, 1:]).max()
    assert np.abs(raw - ref).max() > 1e-3 * scale


def test_relu_two_opposite_heads_are_the_linear_head(frames):
    """``relu(x) - relu(-x) = x``: heads ``(P, V), (-P, -V)`` under relu are the linear block (any P, V)."""
    ds, H = frames
    rng = np.random.default_rng(2)
    D = SPEC.layout.D
    P, V = rng.standard_normal((D, D)), rng.standard_normal((D, D))
    lin = at.block_increment(H, [(P, V)], "linear", 4)
    relu = at.block_increment(H, [(P, V), (-P, -V)], "relu", 4)
    assert np.abs(relu - lin).max() <= 4 * _bound(H, P, V, SPEC.n).max()
    assert np.abs(at.block_increment(H, [(P, V)], "relu", 4) - lin).max() > 1e-3 * np.abs(lin).max()


def test_structure_metrics_at_the_construction():
    Ps, Vs = construction_pv(SPEC, 1.0)
    assert at.s3_share([(Ps, Vs)], SPEC)[0] == 1.0
    assert at.s3_share([(Ps, Vs), (2 * Ps, -Vs)], SPEC)[0] == 1.0
    assert 0 < at.s3_share([(Ps, Vs)], SPEC)[1] < 0.1
    rng = np.random.default_rng(3)
    E = rng.standard_normal(Vs.shape)
    assert at.operator_cos([(3 * Ps, Vs / 3)], SPEC) == pytest.approx(1.0, abs=1e-14)
    # two heads whose (M2) maps sum to (S3)'s, neither alone
    assert at.operator_cos([(Ps, Vs + E), (Ps, -E)], SPEC) == pytest.approx(1.0, abs=1e-14)
    assert at.operator_cos([(Ps, Vs + E)], SPEC) < 0.9


def test_run_metrics_of_relu_opposite_heads(frames):
    """relu heads ``(P*, V*), (-P*, -V*)``: the teacher on held-out frames, all of the norm on (S3),
    the operator of the linear half that of (S3); no attention entropy (not softmax)."""
    ds, H = frames
    Ps, Vs = construction_pv(SPEC, 1.0)
    m = at.run_metrics([(Ps, Vs), (-Ps, -Vs)], "relu", ds, (ds, H))
    assert m["heldout_err"] < 1e-12 and m["s3_share"] == 1.0
    assert m["op_cos"] == pytest.approx(1.0, abs=1e-14) and m["attn_entropy"] is None
    assert m["cos"] is None  # structure_metrics: one linear head only


def test_attention_entropy_limits(frames):
    """Zero scores: uniform weights, entropy 1; one key scoring far above the rest: entropy -> 0."""
    ds, H = frames
    D = SPEC.layout.D
    assert at.attention_entropy([(np.zeros((D, D)), None)], H) == pytest.approx(1.0, abs=1e-12)
    P = np.zeros((D, D))
    P[SPEC.layout.const, SPEC.layout.const] = 1e3  # only the query column (constant row 1) scores
    assert at.attention_entropy([(P, None)], H) < 1e-6


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    out = tmp_path_factory.mktemp("attention")
    cfg = at.AttentionConfig(
        k=6, heldout_k=6, frames=5, steps=30, log_every=10, seeds=(0, 1),
        attentions=("linear", "softmax"), heads=(1, 2), cs=(1e-2, 1e-3),
    )  # fmt: skip
    return cfg, out, at.run_attention(cfg, out)


def test_study_lists_every_run(study):
    cfg, out, doc = study
    assert doc["all_listed"] and len(doc["runs"]) == 2 * 2 * 2
    keys = {(r["attention"], r["heads"], r["seed"]) for r in doc["runs"]}
    assert keys == {(a, h, s) for a in ("linear", "softmax") for h in (1, 2) for s in (0, 1)}
    for r in doc["runs"]:
        assert isinstance(r["diverged"], bool) and r["wall_time"] > 0
        assert r["loss_final"] < r["log"][0][1]  # training lowered (M1)
        assert (r["op_cos"] is None) == (r["attention"] not in ("linear", "relu"))
        assert (r["attn_entropy"] is None) == (r["attention"] != "softmax")
        assert (r["cos"] is None) == (r["attention"] != "linear" or r["heads"] != 1)
    assert [s["runs"] for s in doc["summary"]] == [2, 2, 2, 2]
    assert (out / "attention.json").exists() and (out / at.ARRAYS_FILE).exists()
    assert not (out / at.UNITS_FILE).exists()


def test_figure_is_readable(study, figures):
    """The figure of the tiny study: one figure, its layout checked by the ``figures`` fixture."""
    cfg, out, doc = study
    assert at.plot_attention(out).exists()
    assert len(figures.figs) == 1


def test_construction_probes(study):
    cfg, out, doc = study
    rows = {(r["key"], r["c"]): r for r in doc["construction"]["rows"]}
    assert rows[("linear-h1", 1.0)]["heldout_err"] < 1e-12
    assert rows[("relu-h2", 1.0)]["heldout_err"] < 1e-12
    assert rows[("relu-h1", 1.0)]["heldout_err"] > 0.1
    # tanh(x) = x - x^3/3: the error is O(c^2)
    r = rows[("tanh-h1", 1e-2)]["heldout_err"] / rows[("tanh-h1", 1e-3)]["heldout_err"]
    assert 80 < r < 120
    # softmax, one head: the (alpha/c) mean_j phi_j term, error ~ 1/c
    r = rows[("softmax-h1", 1e-3)]["heldout_err"] / rows[("softmax-h1", 1e-2)]["heldout_err"]
    assert 8 < r < 12
    # softmax, two heads: -> the centred TD update at rate O(c)
    lim = rows[("centred", 0.0)]["heldout_err"]
    e2, e3 = (abs(rows[("softmax-h2", c)]["heldout_err"] - lim) for c in (1e-2, 1e-3))
    assert e3 < 1e-3 * lim and e2 > e3


def test_unit_is_reproducible(study):
    """A unit recomputed from its key and configuration gives the saved record bit for bit."""
    cfg, out, doc = study
    rec, arrays = at.run_unit(cfg, "softmax-h2-s1")
    saved = next(r for r in doc["runs"] if (r["attention"], r["heads"], r["seed"]) == ("softmax", 2, 1))
    assert rec["loss_final"] == saved["loss_final"] and rec["heldout_err"] == saved["heldout_err"]
    assert arrays["P"].shape == (2, SPEC.layout.D, SPEC.layout.D)


def test_bad_config():
    with pytest.raises(ValueError, match="attentions"):
        at.AttentionConfig(attentions=("cubic",))
    with pytest.raises(ValueError, match="heads"):
        at.AttentionConfig(heads=(0,))
    with pytest.raises(ValueError, match="d_pi"):
        at.teacher_prompts(dy.TeacherSpec(algorithm="actor_critic", k=1, frames=1), np.random.default_rng(0))


@pytest.mark.parametrize(
    "argv, option",
    [(["--heads", "0"], "--heads"), (["--attention", "cubic"], "--attention"), (["--heads", "x"], "--heads")],
)
def test_cli_refuses_bad_options_before_out(tmp_path, capsys, argv, option):
    """A bad ``--heads`` or ``--attention`` is one line naming the option, exit 2, ``--out`` not created."""
    from lsa_theory import cli

    out = tmp_path / "o"
    try:
        rc = cli.main(["attention", "--quick", *argv, "--out", str(out)])
    except SystemExit as exc:  # argparse's own refusal (a non-integer --heads)
        rc = exc.code
    err = capsys.readouterr().err
    assert rc == 2 and option in err and "Traceback" not in err
    assert not out.exists()
