r"""Trained L-layer stacks of the masked block (W2) on (R1) regression prompts, read against (R3).

The prediction is ``yhat = -E_L[-1, -1]`` ([Ahn]'s convention, the sign of (R3)); the loss is
``(1/2) E (yhat - y_q)^2`` on fresh antithetic batches of the configured data law (``cfg.law``,
``cfg.covariates``, ``cfg.gamma_shape``: ``RegressionConfig.law_kwargs``; default (R4)'s ``x ~ N(0,
Lambda)``, ``w ~ N(0, I)``), minimised by Adam in float64; the held-out test prompts are of the same
law. Two parameterisations:

- ``"sparse"`` ([Ahn]'s): ``P_l = e_{d+1} e_{d+1}^T`` fixed, ``Q_l = [[-A_l, 0], [0, 0]]``, only the
  ``A_l`` trained;
- ``"full"``: every entry of every ``P_l``, ``Q_l`` trained, from a random (R3) point with dense
  noise on every entry (from a fully random dense start Adam stalled at or above the one-layer
  optimum in our probes: L = 3, lr 1e-3 to 1e-2, 1500 steps, test loss 0.11 to 0.46).

Per layer we report the effective preconditioner ``A_l = -P_l[d, d] Q_l[:d, :d]`` (for the (R3) form
``P_l[d, d] = 1``) and what else is non-zero (cross blocks ``P_l[d, :d]``, ``Q_l[d, :d]``, the x-rows
``P_l[:d, :]``), its cosine with ``Lambda^{-1}``, ``Gamma^{-1}`` and ``I`` (and, for a law other
than (R4)'s, with that law's one-layer optimum ``M*`` of :func:`.experiment.target_matrix`,
``cos_target``), and its asymmetry; and the held-out loss of the trained stack against the (R3)
stack built from those ``A_l`` alone (equal losses mean the stack *is* preconditioned gradient
descent) and against the one-layer minimum of the law
(:func:`lsa_theory.dynamics.regression.one_layer_minimum`; (R4)'s for the default law). Nothing
about the form of the optimum is assumed.

**Heads and attention** (issue 23, item 3): every function takes ``heads`` ``H`` (each layer is ``H``
head pairs ``(P_{l,h}, Q_{l,h})`` that add) and ``attention``, one of :data:`lsa_theory.ATTENTIONS`;
the forward pass is :func:`lsa_theory.attention_stack`, one layer ``Z + sum_h P_h Z M sigma(Z^T Q_h
Z)`` with ``M = diag(I_N, 0)``. The one-head linear stack goes through
:func:`lsa_theory.masked_lsa_stack` instead ((W2)'s own arithmetic, so the default's numbers are the
same bit for bit as before heads existed); the two agree to round-off (tested). ``sparse`` with
``H`` heads trains ``A_{l,h}`` with ``P = e_{d+1} e_{d+1}^T`` fixed, ``Q_{l,h} = [[-A_{l,h}, 0], [0,
0]]``; for linear attention it is the (R3) layer with ``A_l = sum_h A_{l,h}``; for a nonlinear one
it is still a meaningful model (it is kept): the score ``S[j, q] = -x_j^T A x_q`` uses only the
``x`` rows and the update writes only the label row, so one softmax layer predicts ``yhat = sum_j
y_j softmax_j(-x_j^T A x_q)`` up to the sign, a kernel smoother (Nadaraya-Watson) with the learned
bilinear kernel; relu gives ``(1/N) sum_j y_j relu(-x_j^T A x_q)``.
"""

from __future__ import annotations

import time

import numpy as np
import torch

import lsa_theory as lt
from lsa_theory.checks import check_int
from lsa_theory.constructions.algorithms import regression as reg
from lsa_theory.dynamics import regression as rg

__all__ = [
    "init_stack",
    "layers_of",
    "stack_predict",
    "stack_loss",
    "train_stack",
    "spread",
    "layer_report",
    "heads_report",
    "score_spread",
    "null_loss",
    "stack_diverged",
    "stack_record",
    "train_stacks",
]

PARAMETERISATIONS = ("sparse", "full")


def _check_param_heads(param, heads) -> int:
    if param not in PARAMETERISATIONS:
        raise ValueError(f"param: expected one of {PARAMETERISATIONS}, got {param!r}")
    return check_int(heads, "heads")


def init_stack(L: int, d: int, param: str, rng: np.random.Generator, heads: int = 1) -> list[torch.Tensor]:
    """Trainable tensors from a random (R3) point: ``A_{l,h}^0 = (0.2 I + 0.05 G_{l,h}) / H``
    (``G_{l,h}`` standard normal, so non-symmetric and not aligned with ``Lambda``; the ``1/H`` makes
    the summed ``sum_h A_{l,h}^0`` of the ``H = heads`` heads the size of one head's). ``sparse``: the
    ``L H`` matrices ``A_{l,h}`` (d, d), layer-major; ``full``: per head ``P = e_{d+1} e_{d+1}^T``,
    ``Q = [[-A^0, 0], [0, 0]]`` plus ``N(0, 0.05^2)`` on *every* entry (d+1, d+1), so that nothing of
    (R3)'s sparsity is imposed after the start; listed ``P_{1,1}, Q_{1,1}, P_{1,2}, ...``. With
    ``heads = 1`` the draws are those of the one-head code, in the same order."""
    heads = _check_param_heads(param, heads)
    A0 = [(0.2 * np.eye(d) + 0.05 * rng.standard_normal((d, d))) / heads for _ in range(L * heads)]
    if param == "sparse":
        mats = A0
    else:
        mats = []
        for P, Q in reg.precond_gd(A0):
            mats += [P + 0.05 * rng.standard_normal(P.shape), Q + 0.05 * rng.standard_normal(Q.shape)]
    return [torch.tensor(m, dtype=torch.float64, requires_grad=True) for m in mats]


def layers_of(
    params: list[torch.Tensor], param: str, heads: int = 1
) -> list[list[tuple[torch.Tensor, torch.Tensor]]]:
    """``[[(P_{l,1}, Q_{l,1}), ..., (P_{l,H}, Q_{l,H})] for each layer l]`` from the trainable tensors
    of :func:`init_stack` (``H = heads``)."""
    heads = _check_param_heads(param, heads)
    per = 2 * heads if param == "full" else heads
    if not params or len(params) % per:
        raise ValueError(f"params: expected a multiple of {per} tensors for {param!r}, heads={heads}")
    if param == "full":
        pairs = [(params[2 * i], params[2 * i + 1]) for i in range(len(params) // 2)]
    else:
        d = params[0].shape[0]
        pairs = []
        for A in params:
            P = torch.zeros(d + 1, d + 1, dtype=torch.float64)
            P[d, d] = 1.0
            Q = torch.zeros(d + 1, d + 1, dtype=torch.float64)
            Q[:d, :d] = -A
            pairs.append((P, Q))
    return [pairs[i : i + heads] for i in range(0, len(pairs), heads)]


def stack_predict(layers, E, attention: str = "linear", via_w2: bool = True):
    """``yhat = -E_L[-1, -1]`` (F,) of the stack ``layers`` (a list of layers, each a list of
    ``(P, Q)`` heads) on prompts ``E`` (F, d+1, N+1), through :func:`lsa_theory.attention_stack`
    with ``attention``. With ``via_w2`` (default) a stack of one-head linear layers goes through
    :func:`lsa_theory.masked_lsa_stack` ((W2)'s arithmetic, the pre-heads code path); the two differ
    by round-off only, as the association order of the products differs."""
    if via_w2 and attention == "linear" and all(len(h) == 1 for h in layers):
        return -lt.masked_lsa_stack(E, [h[0] for h in layers])[..., -1, -1]
    return -lt.attention_stack(E, layers, attention=attention)[..., -1, -1]


def stack_loss(
    layers, E: torch.Tensor, y_query: torch.Tensor, attention: str = "linear", via_w2: bool = True
) -> torch.Tensor:
    """``(1/2) mean_f (yhat_f - y_q)^2`` of :func:`stack_predict` on prompts ``E`` (F, d+1, N+1)."""
    out = stack_predict(layers, E, attention, via_w2)
    return 0.5 * ((out - y_query) ** 2).mean()


def _stack_rng(L: int, param: str, seed: int) -> np.random.Generator:
    """``default_rng([seed, 3, L, param])`` of :func:`train_stack`: its start (:func:`init_stack`),
    then its batches."""
    return np.random.default_rng([seed, 3, L, PARAMETERISATIONS.index(param)])


def _batch(F: int, N: int, Lambda: np.ndarray, rng: np.random.Generator, **law):
    """``(E, y_q)`` of ``F`` antithetic prompts of :func:`lsa_theory.dynamics.regression.sample_prompts`
    with the data-law arguments ``law`` (``law``, ``covariates``, ``gamma_shape``; none: (R4)'s law)."""
    s = rg.sample_prompts(F, N, Lambda, rng, **law)
    return torch.as_tensor(s.prompts()), torch.as_tensor(s.y_query)


def train_stack(
    L: int,
    param: str,
    Lambda: np.ndarray,
    N: int,
    steps: int,
    batch: int,
    lr: float,
    seed: int,
    heads: int = 1,
    attention: str = "linear",
    via_w2: bool = True,
    law: str = "isotropic",
    covariates: str = "gaussian",
    gamma_shape: float = rg.GAMMA_SHAPE,
) -> tuple[list[torch.Tensor], np.ndarray]:
    """Adam (learning rate ``lr``, divided by 10 for the last third of the ``steps``) on fresh
    batches of ``batch`` prompts of the data law ``law``, ``covariates``, ``gamma_shape``
    (:func:`lsa_theory.dynamics.regression.sample_prompts`; default (R4)'s) of the loss
    :func:`stack_loss` (``attention``, ``via_w2``) of
    ``heads`` heads per layer; returns the trained tensors and the training-loss curve. The
    generator ``default_rng([seed, 3, L, param])`` does not depend on ``heads`` or ``attention``:
    runs with equal ``heads`` see the same start and the same batches whatever the attention (more
    heads take more draws for the start, so their batches differ).

    Divergence ends the training: once the loss or a weight is not finite (or a layer's input
    overflows), the rest of the curve is NaN and the weights are returned as they are, so that
    :func:`stack_diverged` lists the run as diverged instead of the run failing."""
    rng = _stack_rng(L, param, seed)
    params = init_stack(L, Lambda.shape[0], param, rng, heads=heads)
    opt = torch.optim.Adam(params, lr=lr)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[2 * steps // 3], gamma=0.1)
    curve = np.full(steps, np.nan)
    for i in range(steps):
        E, yq = _batch(batch, N, Lambda, rng, law=law, covariates=covariates, gamma_shape=gamma_shape)
        try:
            loss = stack_loss(layers_of(params, param, heads), E, yq, attention, via_w2)
        except ValueError as exc:  # a layer's input overflowed: the stack has diverged
            if "NaN or inf" not in str(exc):
                raise
            break
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        curve[i] = loss.item()
        if not (np.isfinite(curve[i]) and all(bool(torch.isfinite(p).all()) for p in params)):
            break
    return params, curve


def _cos(A: np.ndarray, B: np.ndarray) -> float:
    return float(np.sum(A * B) / (np.linalg.norm(A) * np.linalg.norm(B)))


def spread(A: np.ndarray, Lambda: np.ndarray) -> float:
    """Ratio of the extreme singular values of ``Lambda^{1/2} A Lambda^{1/2}``: 1 exactly when
    ``A = a Lambda^{-1}`` (for symmetric A), ``cond(Lambda)`` for ``A = a I``."""
    lam, V = np.linalg.eigh(Lambda)
    R = (V * np.sqrt(lam)) @ V.T
    sv = np.linalg.svd(R @ A @ R, compute_uv=False)
    return float(sv.max() / sv.min())


def _a_metrics(A: np.ndarray, Lambda: np.ndarray, Gamma: np.ndarray, target: np.ndarray | None) -> dict:
    d = Lambda.shape[0]
    Linv = np.linalg.inv(Lambda)
    a = np.sum(A * Linv) / np.sum(Linv * Linv)
    return {
        "A": A,
        "cos_Lambda_inv": _cos(A, Linv),
        "cos_Gamma_inv": _cos(A, np.linalg.inv(Gamma)),
        **({} if target is None else {"cos_target": _cos(A, target)}),
        "cos_identity": _cos(A, np.eye(d)),
        "scale_Lambda_inv": float(a),
        "resid_Lambda_inv": float(np.linalg.norm(A - a * Linv) / np.linalg.norm(A)),
        "asymmetry": float(np.linalg.norm(A - A.T) / np.linalg.norm(A)),
        "spread_A_Lambda": spread(A, Lambda),
        "norm_A": float(np.linalg.norm(A)),
    }


def layer_report(
    P: np.ndarray, Q: np.ndarray, Lambda: np.ndarray, Gamma: np.ndarray, target: np.ndarray | None = None
) -> dict:
    """What one trained layer (one head) is: the effective ``A_l = -P[d, d] Q[:d, :d]`` and its
    cosines with ``Lambda^{-1}`` (``cos_Lambda_inv``), [ZFB]'s ``Gamma^{-1}`` (``cos_Gamma_inv``, (R4)'s
    one-layer optimum, whatever the law), ``I`` (``cos_identity``) and, when ``target`` (d, d) is
    given, with it (``cos_target``: the one-layer optimum of a law other than (R4)'s,
    :func:`.experiment.target_matrix`; not given for (R4)'s law, where it would be ``cos_Gamma_inv``),
    its :func:`spread` against ``Lambda^{-1}``;
    the norms of everything (R3) sets to zero; ``r3_fraction``, the share of ``||P||_F^2 +
    ||Q||_F^2`` in (R3)'s entries ``P[d, d]``, ``Q[:d, :d]`` (1 for an (R3) layer)."""
    d = Lambda.shape[0]
    m = _a_metrics(-P[d, d] * Q[:d, :d], Lambda, Gamma, target)
    r3 = P[d, d] ** 2 + np.sum(Q[:d, :d] ** 2)
    return {
        "A": m["A"],
        "p_y": float(P[d, d]),
        **{k: v for k, v in m.items() if k not in ("A", "norm_A")},
        "norm_A": m["norm_A"],
        "norm_p_x": float(np.linalg.norm(P[d, :d])),
        "norm_q21": float(np.linalg.norm(Q[d, :d])),
        "norm_P_xrows": float(np.linalg.norm(P[:d, :])),
        "norm_Q_ycol": float(np.linalg.norm(Q[:, d])),
        "P": P,
        "Q": Q,
        "r3_fraction": float(r3 / (np.sum(P * P) + np.sum(Q * Q))),
    }


def heads_report(
    heads: list, Lambda: np.ndarray, Gamma: np.ndarray, target: np.ndarray | None = None
) -> dict:
    """One trained layer of ``H`` heads ``[(P_h, Q_h)]`` (``target`` as in :func:`layer_report`): for
    ``H = 1`` :func:`layer_report`;
    otherwise the metrics of the summed ``A_l = sum_h -P_h[d, d] Q_h[:d, :d]`` (for linear attention
    the layer's (R3) preconditioner when the cross blocks vanish), ``r3_fraction`` over all heads,
    and ``heads``, the :func:`layer_report` of each head."""
    if len(heads) == 1:
        return layer_report(*heads[0], Lambda, Gamma, target)
    d = Lambda.shape[0]
    each = [layer_report(P, Q, Lambda, Gamma, target) for P, Q in heads]
    r3 = sum(P[d, d] ** 2 + np.sum(Q[:d, :d] ** 2) for P, Q in heads)
    total = sum(np.sum(P * P) + np.sum(Q * Q) for P, Q in heads)
    return _a_metrics(sum(r["A"] for r in each), Lambda, Gamma, target) | {
        "r3_fraction": float(r3 / total),
        "heads": each,
    }


def _torch_layers(layers) -> list:
    return [[(torch.as_tensor(P), torch.as_tensor(Q)) for P, Q in heads] for heads in layers]


def _test_loss(layers, E, y_query, attention: str = "linear") -> float:
    return stack_loss(_torch_layers(layers), E, y_query, attention).item()


def _test_loss_se(layers, E, y_query, attention: str) -> float:
    """Standard error of the test loss: the losses of the antithetic pairs ``(f, f + F/2)`` are
    averaged (they are dependent), then ``std / sqrt(F/2)``."""
    err = 0.5 * (stack_predict(_torch_layers(layers), E, attention) - y_query).numpy() ** 2
    half = err.size // 2
    pair = 0.5 * (err[:half] + err[half:])
    return float(pair.std(ddof=1) / np.sqrt(half))


def score_spread(heads: list, E: torch.Tensor) -> float:
    """How far the first layer's scores are from the small-score regime: the RMS over prompts of the
    standard deviation over the ``N`` context keys ``j`` of ``S[j, q] = z_j^T Q_h z_q`` at the query
    column, largest over the heads ``[(P_h, Q_h)]``. Softmax over keys is ``(1 + S - mean_j S) / N``
    to first order when it is small, i.e. the linear block with the same ``(P, Q)`` on centred
    tokens plus the mean-token term ``P zbar``."""
    out = 0.0
    for _, Q in heads:
        S = E[..., :, :-1].mT @ (torch.as_tensor(Q) @ E[..., :, -1:])
        out = max(out, float(torch.sqrt((S[..., 0].std(dim=-1) ** 2).mean())))
    return out


def null_loss(L: int, param: str, heads: int, attention: str, loss_zero: float, N: int) -> float:
    """The exact loss of the family's *null member*, every trained tensor zero: what a stack of
    ``L`` layers of ``heads`` heads (``param``, ``attention``) predicts when it has learnt nothing.

    For every family but the sparse softmax one the null member predicts ``yhat = 0`` (``P = Q =
    0`` in ``full``; ``S = 0`` and ``sigma(0) = 0`` for the linear and the elementwise attentions in
    ``sparse``), so its loss is ``loss_zero = (1/2) E y_q^2 = (1/2) tr(Lambda W)``. The sparse
    softmax stack keeps ``P = e_{d+1} e_{d+1}^T``: at ``A = 0`` the softmax weights are uniform,
    ``1/N`` on each context key, so each head adds the mean context label ``m`` to *every* label
    entry. With ``m_0 = ybar = (1/N) sum_j y_j`` and the query label 0, a layer of ``H`` heads maps
    ``m -> (1 + H) m`` and adds ``H m`` to the query label, which ends at ``((1 + H)^L - 1) ybar``;
    the prediction ``yhat = -c ybar``, ``c = (1 + H)^L - 1``. As ``x_q`` is independent of the
    context and of mean zero, ``E[y_q ybar] = 0`` and ``E ybar^2 = tr(Lambda W) / N``, so the null
    loss is ``loss_zero (1 + c^2 / N)`` (no noise in (R1); with (R4)'s primary ``Lambda``, ``loss_zero
    = 0.708``, ``H = 2``, ``N = 20``: 0.850, 2.97, 24.6 at ``L = 1, 2, 3``; tested against held-out
    prompts)."""
    heads = _check_param_heads(param, heads)
    check_int(L, "L")
    if param == "sparse" and attention == "softmax":
        c = (1 + heads) ** L - 1
        return float(loss_zero * (1.0 + c * c / N))
    return float(loss_zero)


def stack_diverged(
    curve: np.ndarray, test_loss: float, loss_null: float, loss_start: float | None = None
) -> bool:
    """True when training diverged: a non-finite training or test loss, a test loss above
    ``loss_null``, the loss of the family's null member (:func:`null_loss`: every trained tensor
    zero, nothing learnt), or, when ``loss_start`` is given, above the test loss of the stack's own
    start (training made it worse).

    For every family but the sparse softmax stack the null member is the zero predictor, and
    ``loss_null`` is ``loss_zero = (1/2) E y_q^2 = (1/2) tr(Lambda W)`` with ``W = E[w w^T]`` (``(1/2)
    tr Lambda`` under (R4)'s law, ``d / 2`` for ``w ~ N(0, Lambda^{-1})``), which any stack that
    learnt anything beats (every trained linear stack of the saved runs is below the one-layer
    optimum, itself below ``loss_zero``; Adam at ``lr = 1e6`` gave 2.2e24). The sparse softmax stack
    cannot predict 0: at ``A = 0`` it predicts a multiple of the mean context label, and its best
    members on the lines ``A = a I`` and ``A = a Gamma^{-1}`` are above ``loss_zero`` at ``L = 2, 3``
    with two heads (docs/regression.md); "above the zero predictor" there measures the family, not
    the training, so its reference is its own null member (and its start), and the comparison
    with ``loss_zero`` is reported beside it (``above_zero_predictor``)."""
    bad = not np.isfinite(curve).all() or not np.isfinite(test_loss) or test_loss > loss_null
    return bool(bad or (loss_start is not None and test_loss > loss_start))


def stack_record(
    L: int,
    param: str,
    Lambda: np.ndarray,
    cfg,
    test: tuple[torch.Tensor, torch.Tensor],
    seed: int | None = None,
    heads: int = 1,
    attention: str = "linear",
) -> tuple[dict, np.ndarray]:
    """Train one stack (:func:`train_stack` with ``cfg.N``, ``cfg.train_steps``, ``cfg.train_batch``,
    ``cfg.train_lr``, ``seed`` (default ``cfg.seed``) and ``cfg``'s data law
    (``RegressionConfig.law_kwargs``)) and read it on the held-out prompts ``test = (E, y_q)`` (drawn
    from the same law): ``(row, training-loss curve)``, the row as :func:`train_stacks` describes
    it."""
    N = cfg.N
    seed = cfg.seed if seed is None else seed
    law = cfg.law_kwargs()
    Gamma = rg.gamma_matrix(Lambda, N)
    default = (cfg.law, cfg.covariates) == ("isotropic", "gaussian")
    target = None if default else rg.one_layer_optimum(Lambda, N, **law)  # .experiment.target_matrix
    loss_star_1 = rg.one_layer_minimum(Lambda, N, **law)  # (R4)'s (1/2)[tr Lambda - tr(Lambda^2 Gamma^{-1})]
    loss_zero = 0.5 * float(np.trace(Lambda @ rg.weight_covariance(Lambda, cfg.law)))
    E_test, y_test = test
    t0 = time.perf_counter()
    params, curve = train_stack(
        L,
        param,
        Lambda,
        N,
        cfg.train_steps,
        cfg.train_batch,
        cfg.train_lr,
        seed,
        heads=heads,
        attention=attention,
        **law,
    )
    with torch.no_grad():
        layers = [
            [(P.detach().numpy().copy(), Q.detach().numpy().copy()) for P, Q in hs]
            for hs in layers_of(params, param, heads)
        ]
        test_loss = _test_loss(layers, E_test, y_test, attention)
        extra = {}
        if attention == "linear":  # the null member is the zero predictor; the rows predate the start
            diverged = stack_diverged(curve, test_loss, loss_zero)
        else:
            start = init_stack(L, Lambda.shape[0], param, _stack_rng(L, param, seed), heads=heads)
            extra = {
                "loss_start": _test_loss(
                    [
                        [(P.detach().numpy(), Q.detach().numpy()) for P, Q in hs]
                        for hs in layers_of(start, param, heads)
                    ],
                    E_test,
                    y_test,
                    attention,
                ),
                "loss_null": null_loss(L, param, heads, attention, loss_zero, N),
                "above_zero_predictor": bool(test_loss > loss_zero),
            }
            diverged = stack_diverged(curve, test_loss, extra["loss_null"], extra["loss_start"])
        reports, test_pgd, se, spread_1 = [], None, None, None
        if not diverged:
            reports = [heads_report(hs, Lambda, Gamma, target) for hs in layers]
            as_pgd = [[pq] for pq in reg.precond_gd([r["A"] for r in reports])]
            test_pgd = _test_loss(as_pgd, E_test, y_test)
            se = _test_loss_se(layers, E_test, y_test, attention)
            spread_1 = score_spread(layers[0], E_test)
    row = {
        "L": L,
        "param": param,
        "heads": heads,
        "attention": attention,
        "test_loss": test_loss,
        "test_loss_se": se,
        "test_loss_as_pgd": test_pgd,
        "pgd_gap": None if test_pgd is None else (test_pgd - test_loss) / test_loss,
        "one_layer_optimum": loss_star_1,
        "loss_zero": loss_zero,
        **extra,
        "diverged": diverged,
        "train_loss_final": float(curve[-100:].mean()),
        "layers": reports,
        "score_spread": spread_1,
        "steps": cfg.train_steps,
        "wall_time": time.perf_counter() - t0,
    }
    return row, curve


def train_stacks(cfg, Lambda: np.ndarray) -> tuple[list[dict], dict]:
    """Train every ``L`` in ``cfg.layers`` in both parameterisations on the primary ``Lambda``, with
    ``cfg.heads`` heads and ``cfg.attention`` (default 1 and ``"linear"``: the pre-heads stacks), on
    ``cfg``'s data law (training batches and the ``cfg.test_prompts`` held-out prompts,
    ``default_rng([cfg.seed, 4])``, both of ``RegressionConfig.law_kwargs``); returns ``(rows,
    arrays)`` (rows for the JSON document, loss curves for the .npz).

    ``one_layer_optimum`` in a row is the one-layer *minimum loss* of the law
    (:func:`lsa_theory.dynamics.regression.one_layer_minimum`, (R4)'s for the default law), the
    value a trained stack is compared with; per layer ``cos_Gamma_inv`` is the cosine with [ZFB]'s
    ``Gamma^{-1}`` and, for a law other than (R4)'s, ``cos_target`` the cosine with that law's
    one-layer optimum matrix (:func:`.experiment.target_matrix`; see :func:`layer_report`).

    Each row records ``heads``, ``attention``, ``diverged`` (:func:`stack_diverged`), ``loss_zero``
    (the zero prediction's loss), ``test_loss_se`` and ``score_spread`` (first layer); a row of a
    nonlinear attention also ``loss_start`` (the held-out loss of its start), ``loss_null``
    (:func:`null_loss`) and ``above_zero_predictor`` (reported, not a verdict), and its
    ``diverged`` is measured against the first two (linear rows: against ``loss_zero``, their null
    member's loss, as before); a diverged
    stack's layers are not analysed (``layers`` empty, ``test_loss_as_pgd`` and ``pgd_gap`` None) and
    fails the run's verdict (``checks["trained_not_diverged"]``). ``test_loss_as_pgd`` is the (R3)
    stack of the per-layer ``A_l`` (:func:`heads_report`), whatever the attention."""
    test = _batch(cfg.test_prompts, cfg.N, Lambda, np.random.default_rng([cfg.seed, 4]), **cfg.law_kwargs())
    rows, arrays = [], {}
    prev_threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small tensors: one thread is fastest, and --threads cannot change them
    try:
        for L in cfg.layers:
            for param in PARAMETERISATIONS:
                row, curve = stack_record(
                    L, param, Lambda, cfg, test, heads=cfg.heads, attention=cfg.attention
                )
                rows.append(row)
                arrays[f"trained/{L}/{param}/curve"] = curve
    finally:
        torch.set_num_threads(prev_threads)
    return rows, arrays
