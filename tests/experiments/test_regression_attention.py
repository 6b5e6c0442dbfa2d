"""Issue 23, item 3 (regression): heads and the attention function in the trained regression stacks
(:mod:`lsa_theory.experiments.regression.stack`), their identity cases, negative controls, the
config/command options and the study's tables."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

import lsa_theory as lt
from lsa_theory import cli
from lsa_theory.dynamics import regression as rg
from lsa_theory.experiments.regression import RegressionConfig, units
from lsa_theory.experiments.regression import attention as at
from lsa_theory.experiments.regression import stack as st
from lsa_theory.experiments.tables import TABLES

D, N = 3, 20
LAMBDA = rg.random_covariance(D, 10.0, np.random.default_rng(7))


@pytest.fixture(autouse=True)
def _one_thread():
    """Small tensors: one torch thread (as the experiment runs them), restored after."""
    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(prev)


def _prompts(F=200, seed=1):
    s = rg.sample_prompts(F, N, LAMBDA, np.random.default_rng(seed))
    return torch.as_tensor(s.prompts()), torch.as_tensor(s.y_query)


def _random_heads(L, H, rng, scale=0.3):
    def mat():
        return torch.as_tensor(scale * rng.standard_normal((D + 1, D + 1)))

    return [[(mat(), mat()) for _ in range(H)] for _ in range(L)]


def _rel(a, b) -> float:
    return abs(float(a) - float(b)) / abs(float(b))


# Round-off bound of the identity checks: the (W2) path computes ``(P (Zc Zc^T)) (Q Z) / n`` and the
# attention path ``P (Z (M (Z^T Q Z) / n))``; the same sums of N products in another order. Each
# layer's output then differs by at most ~ (N + D) eps |terms| ~ 24 x 2.2e-16 x (growth of the terms
# over L <= 3 layers of size <= 0.5, at most ~10) ~ 5e-14 relative to the loss; 1e-12 leaves 20x.
ROUNDOFF = 1e-12


@pytest.mark.parametrize("L", [1, 2, 3])
def test_one_head_linear_is_the_w2_stack_to_roundoff(L):
    """heads = 1, attention = "linear" through ``lsa_theory.attention_stack`` gives the loss of the
    pre-heads path (``masked_lsa_stack``) to 1e-12 relative, for dense random (P, Q) and (R3) layers."""
    rng = np.random.default_rng(L)
    E, y = _prompts()
    dense = _random_heads(L, 1, rng)
    r3 = st.layers_of(st.init_stack(L, D, "full", rng), "full")
    for layers in (dense, r3):
        w2 = st.stack_loss(layers, E, y, "linear", via_w2=True)
        att = st.stack_loss(layers, E, y, "linear", via_w2=False)
        assert _rel(att, w2) <= ROUNDOFF
        assert float(w2) > 1e-3  # a real loss, not two zeros
        # and each is the path it names (bit for bit: the same arithmetic)
        one = [h[0] for h in layers]
        assert float(w2) == float(0.5 * ((-lt.masked_lsa_stack(E, one)[..., -1, -1] - y) ** 2).mean())
        assert float(att) == float(0.5 * ((-lt.attention_stack(E, layers)[..., -1, -1] - y) ** 2).mean())


def test_one_head_linear_trains_the_same_matrices_either_path():
    """On a fixed seed, 60 Adam steps through ``attention_stack`` give the matrices of the (W2) path to
    1e-12 absolute (entries of size ~1; measured 7e-17): per step the updates differ by lr x the
    relative round-off of the gradient (<~ 1e-13), over 60 steps at lr 3e-3 ~ 2e-14, with room for
    50x growth by the training dynamics."""
    Lam = LAMBDA
    for L, param in ((2, "full"), (2, "sparse")):
        a, ca = st.train_stack(L, param, Lam, N, 60, 60, 3e-3, 0, via_w2=True)
        b, cb = st.train_stack(L, param, Lam, N, 60, 60, 3e-3, 0, via_w2=False)
        assert max(float((x - y).abs().max()) for x, y in zip(a, b, strict=True)) <= 1e-12
        assert np.abs(ca - cb).max() <= ROUNDOFF * ca.max()
        assert (
            max(
                float((x - x0).abs().max())
                for x, x0 in zip(
                    a,
                    st.init_stack(
                        L, D, param, np.random.default_rng([0, 3, L, st.PARAMETERISATIONS.index(param)])
                    ),
                    strict=True,
                )
            )
            > 1e-3
        )


def test_init_stack_one_head_draws_as_before_and_heads_share_the_scale():
    """heads = 1: ``A^0 = 0.2 I + 0.05 G`` in the one-head code's draw order (sparse: the A's; full:
    the A's, then the noise on P_1, Q_1, P_2, ...); heads = H: ``L H`` matrices, each ``1/H`` of that."""
    L = 2
    for param in ("sparse", "full"):
        got = st.init_stack(L, D, param, np.random.default_rng(3))
        rng = np.random.default_rng(3)
        A0 = [0.2 * np.eye(D) + 0.05 * rng.standard_normal((D, D)) for _ in range(L)]
        if param == "sparse":
            want = A0
        else:
            want = []
            for A in A0:
                P = np.zeros((D + 1, D + 1))
                P[D, D] = 1.0
                Q = np.zeros((D + 1, D + 1))
                Q[:D, :D] = -A
                want += [P + 0.05 * rng.standard_normal(P.shape), Q + 0.05 * rng.standard_normal(Q.shape)]
        assert len(got) == len(want)
        for g, w in zip(got, want, strict=True):
            np.testing.assert_array_equal(g.detach().numpy(), w)
    two = st.init_stack(L, D, "sparse", np.random.default_rng(3), heads=2)
    assert len(two) == 2 * L
    summed = (two[0] + two[1]).detach().numpy()
    assert np.abs(np.diag(summed) - 0.2).max() < 0.3 and np.abs(summed).max() < 1.0
    nested = st.layers_of(two, "sparse", heads=2)
    assert len(nested) == L and all(len(h) == 2 for h in nested)
    with pytest.raises(ValueError, match="params"):
        st.layers_of(two[:3], "sparse", heads=2)
    with pytest.raises(ValueError, match="heads"):
        st.init_stack(L, D, "sparse", np.random.default_rng(3), heads=0)


@pytest.mark.parametrize("L", [1, 2])
def test_linear_heads_are_one_head_with_the_summed_product(L):
    """Linear attention: ``sum_h P Z M Z^T Q_h Z / n = P Z M Z^T (sum_h Q_h) Z / n`` for a shared P.
    sparse (P = e e^T): H heads ``A_{l,h}`` are the (R3) layer of ``sum_h A_{l,h}``; full: heads with
    one P and their own Q are the head ``(P, sum_h Q_h)``. Negative control: heads with their own P
    and Q are not the head ``(sum P_h, sum Q_h)``; and not the first head alone."""
    rng = np.random.default_rng(10 + L)
    E, y = _prompts()
    params = [torch.as_tensor(0.2 * rng.standard_normal((D, D))) for _ in range(3 * L)]
    heads = st.layers_of(params, "sparse", heads=3)
    summed = st.layers_of([params[3 * l] + params[3 * l + 1] + params[3 * l + 2] for l in range(L)], "sparse")
    one = st.stack_loss(summed, E, y)
    assert _rel(st.stack_loss(heads, E, y), one) <= ROUNDOFF
    P = torch.as_tensor(0.3 * rng.standard_normal((D + 1, D + 1)))
    Qs = [[torch.as_tensor(0.3 * rng.standard_normal((D + 1, D + 1))) for _ in range(2)] for _ in range(L)]
    shared = [[(P, Q) for Q in qs] for qs in Qs]
    assert (
        _rel(st.stack_loss(shared, E, y), st.stack_loss([[(P, qs[0] + qs[1])] for qs in Qs], E, y))
        <= ROUNDOFF
    )
    own = _random_heads(L, 2, rng)
    wrong = [[(h[0][0] + h[1][0], h[0][1] + h[1][1])] for h in own]
    assert _rel(st.stack_loss(wrong, E, y), st.stack_loss(own, E, y)) > 1e-3
    assert _rel(st.stack_loss([[h[0]] for h in heads], E, y), one) > 1e-3


@pytest.mark.parametrize("attention", ["softmax", "relu", "tanh"])
def test_nonlinear_attention_is_not_the_linear_stack(attention):
    """Negative control: on the same layers a nonlinear attention's loss differs from the linear one's
    (relative > 1e-3), and the stack's loss is the one of ``lsa_theory.attention_stack`` with it."""
    rng = np.random.default_rng(5)
    E, y = _prompts()
    for param, H in (("full", 1), ("full", 2), ("sparse", 1)):
        layers = st.layers_of(st.init_stack(2, D, param, rng, heads=H), param, heads=H)
        got = st.stack_loss(layers, E, y, attention)
        assert _rel(got, st.stack_loss(layers, E, y, "linear")) > 1e-3
        ref = 0.5 * ((-lt.attention_stack(E, layers, attention=attention)[..., -1, -1] - y) ** 2).mean()
        assert float(got) == float(ref)


def test_sparse_softmax_is_a_kernel_smoother():
    """One sparse softmax layer predicts ``yhat = -sum_j y_j softmax_j(-x_j^T A x_q)`` (module note)."""
    rng = np.random.default_rng(2)
    E, y = _prompts(F=10)
    A = torch.as_tensor(0.3 * rng.standard_normal((D, D)))
    yhat = st.stack_predict(st.layers_of([A], "sparse"), E, "softmax")
    X, Y, xq = E[:, :D, :-1], E[:, D, :-1], E[:, :D, -1]
    w = torch.softmax(-(X.mT @ (A @ xq[..., None]))[..., 0], dim=-1)
    assert torch.allclose(yhat, -(w * Y).sum(-1), rtol=1e-13, atol=1e-14)


def _tiny_cfg(**kw):
    return dataclasses.replace(
        RegressionConfig.quick(), layers=(1,), train_steps=5, train_batch=20, test_prompts=400, **kw
    )


def test_train_stacks_records_heads_and_attention_and_its_loss_is_the_attention_one():
    """Each stack row names ``heads`` and ``attention``; its test loss is the saved layers' loss on
    the test prompts under that attention (not under linear)."""
    cfg = _tiny_cfg(heads=2, attention="softmax")
    Lam = LAMBDA
    rows, _ = st.train_stacks(cfg, Lam)
    E, y = st._batch(cfg.test_prompts, cfg.N, Lam, np.random.default_rng([cfg.seed, 4]))
    for r in rows:
        assert (r["heads"], r["attention"]) == (2, "softmax")
        layers = [
            [(torch.as_tensor(h["P"]), torch.as_tensor(h["Q"])) for h in lay["heads"]] for lay in r["layers"]
        ]
        assert r["test_loss"] == pytest.approx(float(st.stack_loss(layers, E, y, "softmax")), rel=1e-12)
        assert _rel(st.stack_loss(layers, E, y, "linear"), r["test_loss"]) > 1e-3
        assert r["test_loss_se"] > 0 and r["score_spread"] > 0


def test_config_refuses_bad_heads_and_attention():
    for kw, name in (
        ({"heads": 0}, "heads"),
        ({"heads": 1.5}, "heads"),
        ({"attention": "cosine"}, "attention"),
        ({"attention": None}, "attention"),
    ):
        with pytest.raises(ValueError, match=name):
            dataclasses.replace(RegressionConfig.quick(), **kw)


def test_command_options(capsys):
    """``--heads``/``--attention`` reach the configuration, with any data law (the stacks train on
    it); bad values say ``lsa-theory regression: error: --opt: ...`` with exit 2 and nothing run."""
    from lsa_theory.cli.commands import _regression_config

    args = cli.build_parser().parse_args(["regression", "--quick", "--heads", "2", "--attention", "relu"])
    cfg = _regression_config(args)
    assert (cfg.heads, cfg.attention) == (2, "relu")
    for argv, want in (
        (["--law", "sigma_inverse", "--attention", "softmax"], ("sigma_inverse", "gaussian", 1, "softmax")),
        (["--covariates", "sphere", "--heads", "2"], ("isotropic", "sphere", 2, "linear")),
    ):
        cfg = _regression_config(cli.build_parser().parse_args(["regression", "--quick", *argv]))
        assert (cfg.law, cfg.covariates, cfg.heads, cfg.attention) == want
        assert "trained" in units(cfg)
    for argv, opt in (
        (["--attention", "cosine"], "--attention"),
        (["--heads", "0"], "--heads"),
    ):
        rc = cli.main(["regression", "--quick", *argv])
        out, err = capsys.readouterr()
        assert rc == 2 and out == ""
        assert err.strip().startswith(f"lsa-theory regression: error: {opt}: "), err


def test_study_tables_list_every_run_with_divergences():
    """The study's tables (docs/regression.md): one row per run, the summary counts diverged runs."""
    doc = {
        "one_layer_optimum": 0.11,
        "runs": [
            {
                "L": 1,
                "param": "full",
                "attention": a,
                "heads": 1,
                "seed": s,
                "test_loss": 0.2 + s,
                "test_loss_se": 0.01,
                "linear_test_loss": 0.2 + s,
                "test_loss_as_pgd": None,
                "layers": [],
                "score_spread": None,
                "mean_token_term": None,
                "diverged": d,
            }
            for a, d in (("linear", False), ("softmax", True))
            for s in (0, 1)
        ],
    }
    assert TABLES["regression-attention-runs"](doc).count("\n") == 2 + 4 - 1
    summary = TABLES["regression-attention-summary"](doc)
    assert "| 1 | full | softmax | 1 | - | - | 0.1100 | 2 of 2 |" in summary
    assert "| 1 | full | linear | 1 | 0.7000 +- 0.5000 | 0.0000 +- 0.0000 | 0.1100 | 0 of 2 |" in summary


def test_heads_report_sums_the_heads_preconditioners():
    """The layer's ``A_l`` of H sparse heads is ``sum_h A_{l,h}`` (the (R3) layer they equal), with
    each head's own report kept; one head is :func:`layer_report` itself."""
    rng = np.random.default_rng(4)
    Gamma = rg.gamma_matrix(LAMBDA, N)
    As = [0.2 * rng.standard_normal((D, D)) for _ in range(3)]
    (heads,) = st.layers_of([torch.as_tensor(A) for A in As], "sparse", heads=3)
    rep = st.heads_report([(P.numpy(), Q.numpy()) for P, Q in heads], LAMBDA, Gamma)
    (one,) = st.layers_of([torch.as_tensor(sum(As))], "sparse")
    ref = st.layer_report(*(m.numpy() for m in one[0]), LAMBDA, Gamma)
    np.testing.assert_allclose(rep["A"], sum(As), rtol=0, atol=1e-15)
    assert rep["cos_Gamma_inv"] == pytest.approx(ref["cos_Gamma_inv"], abs=1e-14)
    assert len(rep["heads"]) == 3 and rep["r3_fraction"] == 1.0
    np.testing.assert_array_equal(rep["heads"][1]["A"], As[1])
    assert abs(rep["cos_Gamma_inv"] - rep["heads"][0]["cos_Gamma_inv"]) > 1e-3


def test_what_two_heads_of_relu_and_softmax_can_represent():
    """The constructions the study reads its runs against (docs/regression.md): two relu heads
    ``(P, Q)``, ``(-P, -Q)`` are the linear head ``(P, Q)`` exactly (``relu(S) - relu(-S) = S``).
    Two softmax heads ``(P / eps, eps Q)``, ``(-P / eps, 0)`` tend, with a gap O(eps), to the linear
    head ``(P, Q)`` on *centred* context tokens ``z_j - zbar`` (``softmax_j(eps S) = (1 + eps (S_j -
    mean S)) / N + O(eps^2)``; the second head removes the first's mean-token term ``P zbar / eps``),
    which differs from the linear head by ``P zbar zbar^T Q z_q``; one softmax head keeps ``P zbar /
    eps`` and does not tend to either."""
    rng = np.random.default_rng(8)
    E, y = _prompts()
    P, Q = (torch.as_tensor(0.4 * rng.standard_normal((D + 1, D + 1))) for _ in range(2))
    lin = st.stack_predict([[(P, Q)]], E)
    relu2 = st.stack_predict([[(P, Q), (-P, -Q)]], E, "relu")
    assert float((relu2 - lin).abs().max()) <= 1e-13 * float(lin.abs().max())
    assert float((st.stack_predict([[(P, Q)]], E, "relu") - lin).abs().max()) > 1e-2
    Ec = E.clone()
    Ec[..., :, :-1] -= E[..., :, :-1].mean(dim=-1, keepdim=True)
    centred = st.stack_predict([[(P, Q)]], Ec)

    def gap(eps, two=True, ref=centred):
        heads = [(P / eps, eps * Q)] + ([(-P / eps, 0 * Q)] if two else [])
        return float((st.stack_predict([heads], E, "softmax") - ref).abs().max() / ref.abs().max())

    assert gap(1e-2) < 0.05 and gap(1e-3) < gap(1e-2) / 5
    assert gap(1e-3, ref=lin) > 1e-3  # not the uncentred linear head
    assert gap(1e-3, two=False) > 10


def test_study_constructions():
    """The study's constructed rows: two relu heads are the (R3) layer of Gamma^{-1} (1e-12
    relative); two softmax heads are near it (within 20 %: the centring's O(1/N) and O(eps)); one
    softmax head (P/eps, eps Q) is far off (its mean-token term P zbar / eps)."""
    E, y = _prompts(F=2000, seed=3)
    rows = at.constructed(LAMBDA, N, (E, y))
    losses = [r["test_loss"] for r in rows]
    assert len(rows) == 6 and all(r["test_loss_se"] > 0 for r in rows)
    assert _rel(losses[1], losses[0]) <= ROUNDOFF
    assert _rel(losses[2], losses[0]) < 0.2 and losses[3] > 100 * losses[0]


# Issue 23, item 5: the divergence reference of a stack is its family's null member.
Z_NULL = 4.89  # two-sided normal quantile at 1e-6: a correct null loss fails with probability 1e-6


@pytest.mark.parametrize("L", [1, 2, 3])
def test_null_loss_is_the_sparse_softmax_stack_at_A_zero(L):
    """At ``A = 0`` the sparse softmax stack of two heads predicts ``-((1 + H)^L - 1) ybar``: its
    held-out loss (2000 antithetic prompts) is :func:`.stack.null_loss` within ``Z_NULL`` standard
    errors; with (R4)'s law ``loss_zero = (1/2) tr Lambda``. Every other family's null member
    predicts 0 exactly, and its null loss is ``loss_zero``."""
    H, loss_zero = 2, 0.5 * float(np.trace(LAMBDA))
    E, y = _prompts(F=2000, seed=3)
    zeros = [np.zeros((D, D))] * (L * H)
    layers = [
        [(P.numpy(), Q.numpy()) for P, Q in hs]
        for hs in st.layers_of(list(map(torch.as_tensor, zeros)), "sparse", H)
    ]
    loss, se = st._test_loss(layers, E, y, "softmax"), st._test_loss_se(layers, E, y, "softmax")
    c = (1 + H) ** L - 1
    assert float(st.stack_predict(st._torch_layers(layers), E, "softmax").std()) > 0
    null = st.null_loss(L, "sparse", H, "softmax", loss_zero, N)
    assert null == pytest.approx(loss_zero * (1 + c * c / N), rel=1e-15)
    assert abs(loss - null) <= Z_NULL * se, (loss, null, se)
    for param, attention in (("sparse", "relu"), ("sparse", "linear"), ("full", "softmax"), ("full", "tanh")):
        params = st.init_stack(L, D, param, np.random.default_rng(0), heads=H)
        params = [torch.zeros_like(p) for p in params]
        yhat = st.stack_predict(st.layers_of(params, param, H), E[:8], attention)
        assert torch.equal(yhat, torch.zeros_like(yhat)), (param, attention)
        assert st.null_loss(L, param, H, attention, loss_zero, N) == loss_zero


def test_stack_diverged_against_the_null_member_and_the_start():
    curve = np.array([3.0, 2.0, 1.7])
    assert not st.stack_diverged(curve, 1.7, 2.97, 2.4)  # above loss_zero = 0.708: data, not divergence
    assert st.stack_diverged(curve, 2.5, 2.97, 2.4)  # above its start
    assert st.stack_diverged(curve, 3.0, 2.97)  # above its null member
    assert st.stack_diverged(np.array([3.0, np.nan]), 1.7, 2.97, 2.4)


def test_quick_budget_of_nonlinear_attention():
    """``RegressionConfig.quick(attention)``: the linear budget unchanged, a nonlinear one lighter
    (:data:`QUICK_NONLINEAR`), and the command's ``--quick --attention`` uses it."""
    from lsa_theory.cli.commands import _regression_config
    from lsa_theory.experiments.regression import QUICK_NONLINEAR

    lin = RegressionConfig.quick()
    assert lin == RegressionConfig.quick("linear")
    assert (lin.train_steps, lin.train_batch, lin.test_prompts, lin.train_lr) == (500, 500, 20000, 3e-3)
    for attention in ("softmax", "relu"):
        cfg = _regression_config(
            cli.build_parser().parse_args(["regression", "--quick", "--attention", attention])
        )
        assert cfg == dataclasses.replace(lin, attention=attention, **QUICK_NONLINEAR)
    with pytest.raises(ValueError, match="attention"):
        RegressionConfig.quick("cosine")


def test_sparse_softmax_row_reports_its_references():
    """A nonlinear stack's row carries ``loss_start``, ``loss_null`` and ``above_zero_predictor``
    (its verdict uses the first two); a linear row is as before (no new keys)."""
    cfg = dataclasses.replace(_tiny_cfg(heads=2, attention="softmax"), layers=(2,))
    rows, _ = st.train_stacks(cfg, LAMBDA)
    E, y = st._batch(cfg.test_prompts, cfg.N, LAMBDA, np.random.default_rng([cfg.seed, 4]))
    for r in rows:
        start = st.init_stack(2, D, r["param"], st._stack_rng(2, r["param"], cfg.seed), heads=2)
        with torch.no_grad():
            want = float(st.stack_loss(st.layers_of(start, r["param"], 2), E, y, "softmax"))
        assert r["loss_start"] == pytest.approx(want, rel=1e-12)
        assert r["loss_null"] == st.null_loss(2, r["param"], 2, "softmax", r["loss_zero"], cfg.N)
        assert r["above_zero_predictor"] == (r["test_loss"] > r["loss_zero"])
        assert r["diverged"] == st.stack_diverged(
            np.zeros(1), r["test_loss"], r["loss_null"], r["loss_start"]
        )
    sparse = next(r for r in rows if r["param"] == "sparse")
    assert sparse["loss_null"] > sparse["loss_zero"] and sparse["above_zero_predictor"]
    linear, _ = st.train_stacks(dataclasses.replace(cfg, heads=1, attention="linear"), LAMBDA)
    assert not {"loss_start", "loss_null", "above_zero_predictor"} & set(linear[0])


def test_sparse_softmax_lines_small():
    """:func:`.attention.sparse_softmax_lines` on 400 prompts, ``L = 1, 2``, three scalars: the line
    at ``a = 0`` is the null member on both directions, the best ``a`` is the argmin of its line,
    and the null member's measured loss is its closed form within ``Z_NULL`` standard errors."""
    cfg = dataclasses.replace(_tiny_cfg(heads=2, attention="softmax"), test_prompts=400)
    doc = at.sparse_softmax_lines(cfg, layers=(1, 2), grid=(-0.5, 0.0, 0.5))
    assert [r["L"] for r in doc["rows"]] == [1, 2]
    for r in doc["rows"]:
        assert abs(r["loss_null_measured"] - r["loss_null"]) <= Z_NULL * r["loss_null_se"]
        for line in r["lines"].values():
            assert line["losses"][1] == r["loss_null_measured"]
            assert line["best_loss"] == min(line["losses"])
            assert line["best_a"] == doc["grid"][int(np.argmin(line["losses"]))]
    assert TABLES["regression-softmax-lines"](doc).count("\n") == 1 + 2
