r"""What multi-head and nonlinear attention learns on (R4)'s law, against the linear construction.

Issue 23, item 3 (regression part): trained stacks (:func:`.stack.stack_record`) with ``H`` heads and
attention ``sigma`` (:func:`lsa_theory.attention_stack`) on (R1) prompts of (R4)'s law (``x ~ N(0,
Lambda)``, ``w ~ N(0, I)``, the primary ``Lambda`` of :class:`.experiment.RegressionConfig`). Every
run is read against the trained one-head linear stack of the same ``L``, parameterisation and seed
(the same start and batches when ``H = 1``; see :func:`.stack.train_stack`) and against the
one-layer optimum ``L*`` of ``Gamma^{-1}`` (R4). Structure: the summed ``A_l = sum_h -P_h[d, d]
Q_h[:d, :d]`` and its cosine with ``Gamma^{-1}``, the share of the parameters in (R3)'s blocks, the
test loss of the (R3) stack of those ``A_l`` alone, the first layer's score spread
(:func:`.stack.score_spread`), and for softmax the mean-token term ``sum_h P_h[d, :] zbar`` that its
small-score expansion ``softmax_j(S[j, q]) ~ (1 + S[j, q] - mean_j S) / N`` adds to a linear block
with the same ``(P, Q)`` on centred tokens.

``python -m lsa_theory.experiments.regression.attention --out DIR`` writes
``DIR/regression-attention.json`` (the saved study is ``docs/figures/regression-attention.json``);
its tables in docs/regression.md are the kinds ``regression-attention-summary``,
``regression-attention-runs`` and ``regression-attention-constructed`` of
:mod:`lsa_theory.experiments.tables`.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np
import torch

from ..io import atomic_write_json, provenance, to_jsonable, versions
from ..store import UnitStore
from ..tables import TABLES
from .experiment import RegressionConfig, _lambda
from .stack import (
    _batch,
    _stack_rng,
    _test_loss,
    _test_loss_se,
    init_stack,
    layers_of,
    null_loss,
    stack_record,
)

__all__ = [
    "STUDY",
    "study_config",
    "constructed",
    "attention_study",
    "LINE_GRID",
    "sparse_softmax_lines",
]

#: The scalars ``a`` of :func:`sparse_softmax_lines`: 0 and ``+-`` 16 log-spaced values in [0.01, 30].
LINE_GRID = tuple(sorted({0.0, *np.geomspace(0.01, 30.0, 16), *(-np.geomspace(0.01, 30.0, 16))}))

#: The runs of the saved study: ``(L, param, attention, heads)``; every one for each seed.
STUDY = tuple(
    [(1, "full", a, h) for a in ("linear", "softmax", "relu") for h in (1, 2)]
    + [(1, "sparse", a, 1) for a in ("linear", "softmax", "relu")]
    + [
        (2, "full", a, h)
        for a, h in (("linear", 1), ("linear", 2), ("softmax", 1), ("softmax", 2), ("relu", 1))
    ]
)


def study_config() -> RegressionConfig:
    """The study's training settings: :class:`RegressionConfig`'s primary ``(d, N, kappa) = (3, 20,
    10)``, Adam 1500 steps on batches of 500 prompts, learning rate 3e-3 (divided by 10 for the last
    third), 40000 held-out prompts (``default_rng([0, 4])``, the same for every run)."""
    return dataclasses.replace(RegressionConfig(), train_steps=1500, train_batch=500, test_prompts=40000)


def _mean_token_term(layer: list, E: torch.Tensor) -> float:
    """RMS over prompts of ``sum_h P_h[d, :] zbar`` (``zbar`` the mean context token): the constant
    that softmax attention's small-score expansion adds to the label entry."""
    zbar = E[..., :, :-1].mean(dim=-1).numpy()
    term = sum(zbar @ P[-1, :] for P, _ in layer)
    return float(np.sqrt(np.mean(term**2)))


def constructed(Lambda: np.ndarray, N: int, test: tuple, eps: float = 1e-3) -> list[dict]:
    """Held-out losses (+- s.e., :func:`.stack._test_loss_se`) of the one-layer constructions on the
    prompts ``test``: the (R3) layer with ``A = Gamma^{-1}`` (the one-layer optimum ``L*`` of (R4),
    ``P = e e^T``, ``Q = [[-A, 0], [0, 0]]``); the same ``(P, Q)`` as two relu heads ``(P, Q)``,
    ``(-P, -Q)`` (exactly the linear layer); as two softmax heads ``(P / eps, eps Q)``, ``(-P / eps,
    0)`` (the linear layer on centred tokens plus O(eps), tests/experiments/test_regression_attention
    .py); as one softmax head ``(P / eps, eps Q)`` and as one softmax or relu head ``(P, Q)``."""
    from lsa_theory.constructions.algorithms import regression as reg
    from lsa_theory.dynamics import regression as rg

    from .stack import _test_loss, _test_loss_se

    ((P, Q),) = reg.precond_gd([np.linalg.inv(rg.gamma_matrix(Lambda, N))])
    cases = [
        ("(R3), A = Gamma^-1", "linear", [(P, Q)]),
        ("relu, 2 heads (P, Q), (-P, -Q)", "relu", [(P, Q), (-P, -Q)]),
        (
            f"softmax, 2 heads (P/eps, eps Q), (-P/eps, 0), eps = {eps:g}",
            "softmax",
            [(P / eps, eps * Q), (-P / eps, 0 * Q)],
        ),
        (f"softmax, 1 head (P/eps, eps Q), eps = {eps:g}", "softmax", [(P / eps, eps * Q)]),
        ("softmax, 1 head (P, Q)", "softmax", [(P, Q)]),
        ("relu, 1 head (P, Q)", "relu", [(P, Q)]),
    ]
    return [
        {
            "construction": name,
            "attention": att,
            "heads": len(layer),
            "test_loss": _test_loss([layer], *test, att),
            "test_loss_se": _test_loss_se([layer], *test, att),
        }
        for name, att, layer in cases
    ]


def attention_study(
    cfg: RegressionConfig | None = None,
    runs: tuple = STUDY,
    seeds: tuple[int, ...] = (0, 1, 2),
    out: str | Path | None = None,
) -> dict:
    """Every ``(L, param, attention, heads)`` of ``runs`` for every seed (``cfg`` default
    :func:`study_config`): ``{"runs": [row, ...], "config", "seeds", "Lambda", ...}``, each row
    :func:`.stack.stack_record`'s plus ``seed``, ``mean_token_term`` and ``linear_test_loss`` (the
    one-head linear run of the same ``L``, param and seed, when in ``runs``). With ``out``, each
    finished run is kept (:class:`UnitStore`, resumable) and ``regression-attention.json`` written."""
    cfg = study_config() if cfg is None else cfg
    t0 = time.perf_counter()
    out = Path(out) if out is not None else None
    store = UnitStore(
        out,
        ".regression-attention-units.json",
        config=dataclasses.asdict(cfg),  # a unit depends on the training settings; its key names the run
        label="regression-attention",
    )
    Lambda = _lambda(cfg, cfg.d, cfg.N, cfg.kappa)
    test = _batch(cfg.test_prompts, cfg.N, Lambda, np.random.default_rng([cfg.seed, 4]), **cfg.law_kwargs())
    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    rows = []
    try:
        for L, param, attention, heads in runs:
            for seed in seeds:

                def compute(L=L, param=param, attention=attention, heads=heads, seed=seed):
                    row, curve = stack_record(L, param, Lambda, cfg, test, seed, heads, attention)
                    row["seed"] = seed
                    row["mean_token_term"] = None
                    if row["layers"]:
                        first = row["layers"][0]
                        pairs = [(h["P"], h["Q"]) for h in first.get("heads", [first])]
                        row["mean_token_term"] = _mean_token_term(pairs, test[0])
                    return to_jsonable(row), None

                rows.append(store.unit(f"{L}/{param}/{attention}/{heads}/{seed}", compute)[0])
    finally:
        torch.set_num_threads(prev)
    base = {
        (r["L"], r["param"], r["seed"]): r["test_loss"]
        for r in rows
        if (r["attention"], r["heads"]) == ("linear", 1)
    }
    for r in rows:
        r["linear_test_loss"] = base.get((r["L"], r["param"], r["seed"]))
    doc = {
        "d": cfg.d,
        "N": cfg.N,
        "kappa": cfg.kappa,
        "Lambda": Lambda,
        "law": "x ~ N(0, Lambda), w ~ N(0, I) (R4)",
        "one_layer_optimum": rows[0]["one_layer_optimum"],
        "seeds": list(seeds),
        "runs": rows,
        "n_diverged": sum(r["diverged"] for r in rows),
        "constructed": constructed(Lambda, cfg.N, test),
        "config": to_jsonable(dataclasses.asdict(cfg)),
        "provenance": provenance(dataclasses.asdict(cfg), list(seeds)),
        "versions": versions(),
        "wall_time": time.perf_counter() - t0,
    }
    if out is not None:
        atomic_write_json(out / "regression-attention.json", doc)
        store.remove()
    return to_jsonable(doc)


def sparse_softmax_lines(
    cfg: RegressionConfig | None = None,
    layers: tuple[int, ...] = (1, 2, 3),
    grid: tuple[float, ...] = LINE_GRID,
    out: str | Path | None = None,
) -> dict:
    """What the sparse softmax family (:mod:`.stack`, ``A_{l,h}`` trained, ``P`` fixed) can reach,
    on one-parameter lines: for each ``L`` of ``layers`` with ``cfg.heads`` heads, the held-out loss
    (+- s.e.) of every ``A_{l,h} = a M`` for ``a`` in ``grid`` and ``M`` in ``I``, ``Gamma^{-1}``,
    the best ``a`` of each line, the stack's start (:func:`.stack.init_stack`, the draw of
    :func:`.stack.train_stack`), its null member ``A = 0`` measured and in closed form
    (:func:`.stack.null_loss`) and the zero predictor's loss. ``cfg`` default: ``--quick --heads 2
    --attention softmax`` (its 4000 held-out prompts, ``default_rng([seed, 4])``, and (R4)'s law).
    With ``out``, written to ``out/regression-softmax-lines.json``."""
    from lsa_theory.dynamics import regression as rg

    if cfg is None:
        cfg = dataclasses.replace(RegressionConfig.quick("softmax"), heads=2)
    t0 = time.perf_counter()
    H, d = cfg.heads, cfg.d
    Lambda = _lambda(cfg, cfg.d, cfg.N, cfg.kappa)
    E, y = _batch(cfg.test_prompts, cfg.N, Lambda, np.random.default_rng([cfg.seed, 4]), **cfg.law_kwargs())
    loss_zero = 0.5 * float(np.trace(Lambda @ rg.weight_covariance(Lambda, cfg.law)))
    directions = {"I": np.eye(d), "Gamma^-1": np.linalg.inv(rg.gamma_matrix(Lambda, cfg.N))}

    def of(As: list) -> list:
        return [[(P.numpy(), Q.numpy()) for P, Q in hs] for hs in layers_of(As, "sparse", H)]

    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    rows = []
    try:
        with torch.no_grad():
            for L in layers:
                start = of(
                    [p.detach() for p in init_stack(L, d, "sparse", _stack_rng(L, "sparse", cfg.seed), H)]
                )
                zero = of([torch.zeros(d, d, dtype=torch.float64)] * (L * H))
                row = {
                    "L": L,
                    "heads": H,
                    "loss_zero": loss_zero,
                    "loss_null": null_loss(L, "sparse", H, "softmax", loss_zero, cfg.N),
                    "loss_null_measured": _test_loss(zero, E, y, "softmax"),
                    "loss_null_se": _test_loss_se(zero, E, y, "softmax"),
                    "loss_start": _test_loss(start, E, y, "softmax"),
                    "lines": {},
                }
                for name, M in directions.items():
                    losses = [
                        _test_loss(of([torch.as_tensor(a * M)] * (L * H)), E, y, "softmax") for a in grid
                    ]
                    i = int(np.argmin(losses))
                    best = of([torch.as_tensor(grid[i] * M)] * (L * H))
                    row["lines"][name] = {
                        "losses": losses,
                        "best_a": grid[i],
                        "best_loss": losses[i],
                        "best_loss_se": _test_loss_se(best, E, y, "softmax"),
                    }
                rows.append(row)
    finally:
        torch.set_num_threads(prev)
    doc = {
        "grid": list(grid),
        "rows": rows,
        "config": to_jsonable(dataclasses.asdict(cfg)),
        "provenance": provenance(dataclasses.asdict(cfg), cfg.seed),
        "versions": versions(),
        "wall_time": time.perf_counter() - t0,
    }
    if out is not None:
        Path(out).mkdir(parents=True, exist_ok=True)
        atomic_write_json(Path(out) / "regression-softmax-lines.json", doc)
    return to_jsonable(doc)


if __name__ == "__main__":  # pragma: no cover - the saved study's maker
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--steps", type=int, default=None)
    args = parser.parse_args()
    c = study_config()
    if args.steps is not None:
        c = dataclasses.replace(c, train_steps=args.steps)
    d = attention_study(c, out=args.out)
    print(TABLES["regression-attention-summary"](d))
