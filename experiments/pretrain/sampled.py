r"""(P2) and (P1) with heads and an attention function, on sampled loops (SARSA layout (H)).

The block is [LL]'s (L1) generalised by :func:`lsa_theory.attention_layer`: heads ``(P_h, V_h)``,
``h = 1..H`` (each D x D, [LL]'s letters), attention function ``sigma`` of
:data:`lsa_theory.ATTENTIONS`, mask ``I_{n+1}``, on the raw (H) prompt ``H_t`` (the context columns
and the parameter column ``[0; 1; w_t]``); the loop's update is ``w_{t+1} = TF_theta(H_t)``
(:func:`lsa_theory.experiments.attention.block_increment`). One linear head is (L1), whose readout is
(L2). The expected-context loop of :mod:`lsa_theory.experiments.pretrain.expected_loop` is exact only
for a block affine in ``Sigma``, so here every loop is sampled:

- (P2) :func:`train_rl_sampled`: Adam on the score-function (REINFORCE) estimate of the gradient of
  the sampled (P2) objective ``E[mean_k R_k(softmax(Q_{w_T} / tau))]``
  (:func:`lsa_theory.experiments.pretrain.expected_loop.score_function_gradient` with ``attention``),
  ``batch_mdps`` training MDPs x ``samples`` loops per step;
- (P1) :func:`train_teacher_heads`: teacher mimicking (M1) of the same block on raw teacher prompts
  (:func:`lsa_theory.experiments.attention.train_heads`);
- scoring :func:`score_heads`: the sampled loop (S6) with epsilon-greedy behaviour driven by the
  block, the greedy normalised return (§0) after ``T_eval`` updates, by the one deployment route
  :func:`lsa_theory.experiments.control.deploy` (critic table, ``w_0``, then the rollouts, all from
  one generator), on the held-out MDPs of :func:`lsa_theory.experiments.pretrain.heldout_batch`
  (MDP ``i`` from ``heldout_rng(seed, i)``, draws from ``heldout_rng(seed, i, 1)``): the same held-out
  MDPs, features and streams as the existing comparison. A loop that overflows is diverged and scored
  :data:`lsa_theory.experiments.stats.DIVERGED_SCORE` ``= 0``, counted, never dropped.

:func:`compare_sampled` runs (P2) and (P1) for several ``(attention, heads)`` and seeds and keeps every
run (a training stopped by non-finite gradients included).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from lsa_theory.checks import check_int
from lsa_theory.constructions import closed_loop_algorithm

from ..attention import AttentionConfig, init_heads, teacher_prompts, train_heads
from ..control import deploy
from ..envs import heldout_rng
from ..io import atomic_write_json, to_jsonable, versions
from ..stats import DIVERGED_SCORE, mean_sem, paired_ci
from . import expected_loop as el
from .config import PretrainConfig, heldout_batch, training_batch
from .train import train_rl

__all__ = [
    "SAMPLES",
    "sampled_config",
    "train_rl_sampled",
    "train_teacher_heads",
    "score_heads",
    "compare_sampled",
    "sampled_budget_config",
    "exact_heads_config",
    "compare_exact_heads",
    "compare_trained",
]


#: Loops per MDP of the sampled (P2) estimate of the command and the comparison (:func:`compare_trained`).
SAMPLES = 8


def sampled_config(quick: bool = False) -> PretrainConfig:
    """The base of the docs' comparison: :meth:`PretrainConfig.quick` (S = A = 2, d = 4, tau = 0.1,
    100 held-out MDPs) with ``n = 10``, ``T = 5`` (also ``T_eval``), ``k = 256`` training MDPs,
    ``batch_mdps = 8`` per step, 60 Adam steps at ``lr = 1e-2 -> 1e-3``; (P1) on 256 MDPs x 10
    frames, 1000 steps. ``quick=True``: 10 (P2) steps, 200 (P1) steps, 30 held-out MDPs (a smoke
    run, seconds per block)."""
    cfg = PretrainConfig.quick().replace(n=10, T=5, k=256, batch_mdps=8, steps=60, lr=1e-2, lr_final=1e-3)
    if quick:
        cfg = cfg.replace(steps=10, teacher_steps=200, heldout_k=30)
    return cfg


def _check(cfg) -> PretrainConfig:
    if not isinstance(cfg, PretrainConfig):
        raise ValueError(f"cfg: expected a PretrainConfig, got {type(cfg).__name__}")
    if cfg.alg is not closed_loop_algorithm("sarsa"):
        raise ValueError(f"cfg.algo: the sampled block with heads is SARSA's, got {cfg.algo!r}")
    return cfg


def score_heads(cfg: PretrainConfig, heads, attention: str) -> np.ndarray:
    """(heldout_k,) greedy normalised returns (§0) of ``Q_{w_T}`` after ``T_eval`` updates of the
    sampled SARSA loop (S6) driven by the block ``heads`` (``[(P_h, V_h)]``, each (D, D)) with
    ``attention``, on the held-out MDPs of ``cfg`` (MDP ``i`` and its stream as
    :func:`lsa_theory.experiments.pretrain.heldout_batch`, draws from ``heldout_rng(seed, i, 1)``), NaN
    where the loop diverged (the caller scores it 0 and counts it). Each loop is
    :func:`lsa_theory.experiments.control.deploy` with these heads (the ``"l1"`` pass of
    :func:`lsa_theory.attention_layer`; one linear head is the plain (L1) block), ``epsilon`` of ``cfg``."""
    _check(cfg)
    _, mdps = heldout_batch(cfg)
    heads = list(heads)
    out = np.empty(len(mdps))
    for i, mdp in enumerate(mdps):
        res = deploy(
            mdp, heads, attention=attention, n=cfg.n, n_updates=cfg.T_eval, epsilon=cfg.epsilon,
            alpha=cfg.alpha, rng=heldout_rng(cfg.seed, i, 1), eval_every=cfg.T_eval, forward="l1",
        )  # fmt: skip
        out[i] = np.nan if res.diverged_at is not None else res.normalized_return[-1]
    return out


def _stack(heads) -> tuple[torch.Tensor, torch.Tensor]:
    P = torch.stack([p.detach() for p, _ in heads]).clone().requires_grad_(True)
    V = torch.stack([v.detach() for _, v in heads]).clone().requires_grad_(True)
    return P, V


def train_rl_sampled(cfg: PretrainConfig, samples: int = 8, init_seed: int = 0) -> dict:
    """(P2) on sampled loops: Adam (``betas = (0.9, 0.999)``, ``eps = cfg.adam_eps``) for
    ``cfg.steps`` steps at the geometric rate ``lr (lr_final / lr)^(t / steps)``, ascending the
    score-function gradient (:func:`lsa_theory.experiments.pretrain.expected_loop.score_function_gradient`,
    ``n``, ``T``, ``tau`` of ``cfg``, ``samples`` loops per MDP) on ``batch_mdps`` of the ``k`` training
    MDPs of :func:`lsa_theory.experiments.pretrain.training_batch` per step (drawn without replacement,
    generator ``default_rng([seed, 7])``, which also drives the loops). Start: ``cfg.heads`` heads of
    :func:`lsa_theory.experiments.attention.init_heads` (``init_scale``, ``init_seed``). A step whose
    estimate is not finite is skipped (counted). Returns ``{"heads": [(P, V)] numpy, "heads0",
    "objective": [mean f per step], "skipped", "wall_time"}``."""
    _check(cfg)
    samples = check_int(samples, "samples", minimum=2)
    t0 = time.perf_counter()
    batch, mdps = training_batch(cfg)
    lay = cfg.layout
    P, V = _stack(init_heads(lay.D, cfg.heads, cfg.init_scale, init_seed))
    heads0 = [(P[h].detach().numpy().copy(), V[h].detach().numpy().copy()) for h in range(cfg.heads)]
    opt = torch.optim.Adam([P, V], lr=cfg.lr, betas=(0.9, 0.999), eps=cfg.adam_eps)
    rng = np.random.default_rng([cfg.seed, 7])
    bm = cfg.k if cfg.batch_mdps is None else min(cfg.batch_mdps, cfg.k)
    objective, skipped = [], 0
    for t in range(cfg.steps):
        for grp in opt.param_groups:
            grp["lr"] = cfg.lr * (cfg.lr_final / cfg.lr) ** (t / cfg.steps)
        idx = np.sort(rng.choice(cfg.k, size=bm, replace=False))
        sub = batch.take(torch.as_tensor(idx))
        try:
            gP, gV, f = el.score_function_gradient(
                sub, [mdps[i] for i in idx], P.detach(), V.detach(), lay,
                n=cfg.n, T=cfg.T, tau=cfg.tau, samples=samples, rng=rng, attention=cfg.attention,
            )  # fmt: skip
        except ValueError as exc:  # a loop's update overflowed in the driver
            if "NaN or inf" not in str(exc):
                raise
            gP = gV = None
            f = float("nan")
        objective.append(f)
        if gP is None or not (torch.isfinite(gP).all() and torch.isfinite(gV).all()):
            skipped += 1
            continue
        opt.zero_grad(set_to_none=True)
        P.grad, V.grad = -gP, -gV
        opt.step()
    heads = [(P[h].detach().numpy().copy(), V[h].detach().numpy().copy()) for h in range(cfg.heads)]
    return {
        "heads": heads,
        "heads0": heads0,
        "objective": objective,
        "skipped": skipped,
        "wall_time": time.perf_counter() - t0,
    }


def train_teacher_heads(cfg: PretrainConfig, init_seed: int = 0) -> dict:
    """(P1) of the same block: :func:`lsa_theory.experiments.attention.train_heads` (full-batch Adam,
    ``teacher_steps`` steps, ``teacher_lr`` -> ``teacher_lr_final``) on the raw prompts of
    ``min(k, teacher_k)`` MDPs x ``frames`` teacher frames (SARSA (S2) with ``alpha``, ``epsilon``,
    :func:`lsa_theory.experiments.attention.teacher_prompts` from ``default_rng([seed, 8])``), from
    :func:`lsa_theory.experiments.attention.init_heads` (``init_scale``, ``init_seed``): the same start
    as :func:`train_rl_sampled`."""
    _check(cfg)
    acfg = AttentionConfig(
        S=cfg.S, A=cfg.A, n=cfg.n, gamma=cfg.gamma, alpha=cfg.alpha, epsilon=cfg.epsilon,
        k=min(cfg.k, cfg.teacher_k), frames=cfg.frames,
    )  # fmt: skip
    ds, H = teacher_prompts(acfg.spec(), np.random.default_rng([cfg.seed, 8]))
    lay = cfg.layout
    res = train_heads(
        H, ds.y, lay.d, cfg.attention, init_heads(lay.D, cfg.heads, cfg.init_scale, init_seed),
        steps=cfg.teacher_steps, lr=cfg.teacher_lr, lr_final=cfg.teacher_lr_final,
        log_every=max(1, cfg.teacher_steps // 10),
    )  # fmt: skip
    return res


def _summary(vals: np.ndarray) -> dict:
    scored = np.where(np.isnan(vals), DIVERGED_SCORE, vals)
    m, s = mean_sem(scored)
    return {"heldout_return": m, "heldout_return_sem": s, "n_diverged": int(np.isnan(vals).sum())}


def _score_run(run: dict, cfg: PretrainConfig, rl_heads, start_heads, teacher: dict) -> dict:
    """Fill ``run`` with the held-out scores (:func:`score_heads` on ``cfg``'s held-out MDPs, its
    attention) of the (P2) block ``rl_heads``, the (P1) block ``teacher["heads"]`` and their start
    ``start_heads``: ``run["rl"|"teacher"|"initial"]`` (mean ± s.e.m., diverged loops scored 0 and
    counted), the (P1) training record, and the paired 95 % intervals ``rl - teacher`` and ``rl -
    initial`` over all held-out MDPs. Returns ``run``."""
    vals = {
        "rl": score_heads(cfg, rl_heads, cfg.attention),
        "teacher": score_heads(cfg, teacher["heads"], cfg.attention),
        "initial": score_heads(cfg, start_heads, cfg.attention),
    }
    for name, v in vals.items():
        run[name] = _summary(v)
    run["teacher"].update(
        loss_final=teacher["loss_final"], diverged=bool(teacher["diverged"]), train_time=teacher["wall_time"]
    )
    for a, b in (("rl", "teacher"), ("rl", "initial")):
        va, vb = (np.where(np.isnan(vals[x]), DIVERGED_SCORE, vals[x]) for x in (a, b))
        run[f"{a}-{b}"] = paired_ci(va, vb)
    return run


def compare_sampled(
    base: PretrainConfig,
    models=(("softmax", 1), ("relu", 1), ("linear", 2)),
    seeds=(0, 1, 2),
    samples: int = 8,
    path: str | Path | None = None,
) -> dict:
    """For every ``(attention, heads)`` of ``models`` and every seed: ``base`` with that block and
    ``seed``, (P2) by :func:`train_rl_sampled` and (P1) by :func:`train_teacher_heads` from the same
    start (``init_seed = seed``), each scored by :func:`score_heads` (also the start, ``initial``) on
    that seed's held-out MDPs; paired 95 % intervals ``rl - teacher`` and ``rl - initial`` over all
    held-out MDPs (diverged loops scored 0). Returns ``{"base", "samples", "runs", "versions"}``, every
    run kept; with ``path`` written there as JSON."""
    _check(base)
    runs = []
    for attention, H in models:
        for seed in seeds:
            cfg = base.replace(attention=attention, heads=int(H), seed=int(seed))
            run = {"attention": attention, "heads": int(H), "seed": int(seed)}
            rl = train_rl_sampled(cfg, samples, init_seed=int(seed))
            te = train_teacher_heads(cfg, init_seed=int(seed))
            _score_run(run, cfg, rl["heads"], rl["heads0"], te)
            obj = np.asarray(rl["objective"], float)
            k = max(1, len(obj) // 10)
            run["rl"].update(
                objective_first=float(np.nanmean(obj[:k])), objective_last=float(np.nanmean(obj[-k:])),
                skipped=rl["skipped"], train_time=rl["wall_time"],
            )  # fmt: skip
            runs.append(run)
            if path is not None:
                atomic_write_json(
                    Path(path), to_jsonable({"base": base.as_dict(), "samples": samples, "runs": runs})
                )
    doc = to_jsonable({"base": base.as_dict(), "samples": samples, "runs": runs, "versions": versions()})
    if path is not None:
        atomic_write_json(Path(path), doc)
    return doc


def sampled_budget_config() -> PretrainConfig:
    """The sampled (P2) budget of the comparison :func:`compare_trained`: :func:`sampled_config` with
    k = 4096 training MDPs (each minibatch MDP is then almost always new: the estimate follows the
    population objective, not 256 MDPs seen again and again), 400 Adam steps at lr ``3e-2 -> 3e-3``,
    8 MDPs x :data:`SAMPLES` loops per step (about 7 min of one core per run at S = A = 2). The
    probes that chose it are listed in docs/pretraining.md."""
    return sampled_config().replace(k=4096, steps=400, lr=3e-2, lr_final=3e-3)


def exact_heads_config(quick: bool = False) -> PretrainConfig:
    """The base of the exact (P2) of linear heads in the comparison: :func:`sampled_config` (S = A = 2,
    n = 10, T = 5, tau = 0.1, the same held-out MDPs and (P1) on 256 MDPs x 10 frames) with 2 linear
    heads, k = 4096 training MDPs (with 256 the exact (P2) fits its training MDPs, objective 0.55,
    but not the held-out ones, 0.13) and the exact expected-context (P2) budget of
    :meth:`PretrainConfig.quick`: minibatches of 128 MDPs, 150 Adam steps, lr ``3e-2 -> 1e-3``.
    ``quick=True``: 10 (P2) steps, 200 (P1) steps, 30 held-out MDPs (a smoke run)."""
    cfg = sampled_config(quick).replace(heads=2, k=4096, batch_mdps=128, lr=3e-2, lr_final=1e-3)
    return cfg.replace(steps=10 if quick else 150)


def compare_exact_heads(base: PretrainConfig, seeds=(0, 1, 2), path: str | Path | None = None) -> dict:
    """Linear heads (``base.heads``, attention ``"linear"``) by the EXACT (P2) of the expected-context
    loop (:func:`lsa_theory.experiments.pretrain.train_rl`, whose start is
    :func:`lsa_theory.experiments.attention.init_heads` with seed ``seed``) against (P1) of the same block
    (:func:`train_teacher_heads`, ``init_seed = seed``, the same start), for every seed; scored as
    :func:`compare_sampled` (:func:`score_heads`, paired 95 % intervals over all held-out MDPs, diverged
    loops scored 0). Each run as in :func:`compare_sampled`, with ``route = "exact"``, ``rl.skipped``
    and ``rl.objective_first`` / ``objective_last`` the smooth (P2) objective on the training MDPs at
    the first and last logged step (``rl.heldout_objective_*`` on the held-out MDPs). Returns ``{"base",
    "runs", "versions"}``; with ``path`` written there as JSON."""
    _check(base)
    if not base.exact_loop:
        raise ValueError(f"base.attention: the exact (P2) needs linear heads, got {base.attention!r}")
    runs = []
    for seed in seeds:
        cfg = base.replace(seed=int(seed))
        run = {"route": "exact", "attention": cfg.attention, "heads": cfg.heads, "seed": int(seed)}
        rl = train_rl(cfg)
        heads = [(rl.P[h], rl.V[h]) for h in range(cfg.heads)]
        heads0 = [(rl.P0[h], rl.V0[h]) for h in range(cfg.heads)]
        te = train_teacher_heads(cfg, init_seed=int(seed))
        _score_run(run, cfg, heads, heads0, te)
        h = rl.history
        run["rl"].update(
            objective_first=h["objective"][0], objective_last=h["objective"][-1],
            heldout_objective_first=h["heldout_objective"][0],
            heldout_objective_last=h["heldout_objective"][-1],
            skipped=rl.final["skipped"], train_time=rl.train_time,
        )  # fmt: skip
        runs.append(run)
        if path is not None:
            atomic_write_json(Path(path), to_jsonable({"base": base.as_dict(), "runs": runs}))
    doc = to_jsonable({"base": base.as_dict(), "runs": runs, "versions": versions()})
    if path is not None:
        atomic_write_json(Path(path), doc)
    return doc


def compare_trained(
    exact: PretrainConfig,
    sampled: PretrainConfig,
    samples: int,
    models=(("softmax", 1), ("relu", 1)),
    seeds=(0, 1, 2),
    path: str | Path | None = None,
) -> dict:
    """The comparison with the budgets that train: linear heads by the exact (P2)
    (:func:`compare_exact_heads` of ``exact``) and the nonlinear ``models`` by the sampled (P2)
    (:func:`compare_sampled` of ``sampled`` with ``samples`` loops per MDP), each against (P1) of the same
    block, every seed. Returns ``{"exact", "sampled", "runs", "versions"}`` (``runs``: every run of both,
    each with its ``route``, ``"exact"`` or ``"sampled"``); with ``path`` written there as JSON (after
    every part)."""
    ex = compare_exact_heads(exact, seeds)
    doc = {"exact": ex["base"], "sampled": sampled.as_dict(), "samples": samples, "runs": list(ex["runs"])}
    if path is not None:
        atomic_write_json(Path(path), to_jsonable(doc))
    sa = compare_sampled(sampled, models, seeds, samples)
    doc["runs"] += [{"route": "sampled", **r} for r in sa["runs"]]
    doc = to_jsonable(doc | {"versions": versions()})
    if path is not None:
        atomic_write_json(Path(path), doc)
    return doc
