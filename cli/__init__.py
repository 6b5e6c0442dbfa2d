"""``lsa-theory`` command line.

- ``lsa-theory verify [--json] [--quick] [--seed N] [--module FILE.py] [--timeout SECONDS]`` checks
  every construction claim of docs/theory.md on fresh random instances
  (:func:`lsa_theory.constructions.run_claims`); ``--json`` prints ``{"rows": [{"claim", "residual", "tol",
  "passed"}, ...]}`` (rows also carry ``check``). Progress on stderr as each level starts;
  ``--timeout``: exit 2 naming the level that was running.
- ``lsa-theory converge [--algo sarsa|actor_critic] [--quick] [--json] [--out DIR]`` runs gradient
  flows from perturbations of the construction (:mod:`lsa_theory.experiments.converge`); ``--json`` prints
  ``{"runs": [{"algo", "seed", "radius", "loss0", "loss_final", "dist_final", "rate_fit",
  "rate_pred", "rate_ratio", "rate_ratio_a_priori", "pl_min_ratio", "ker_dim", "tangent_dim", "rich",
  "conserved_drift", "c_pred", "c_final"}, ...], "unrealisable": [...], "radius_sweep": [...]}`` (runs
  carry a few more fields, e.g. ``c0``, ``converged``, ``passed``; ``rate_ratio_a_priori`` divides by
  ``lambda_min^+`` at ``theta*(c_pred)``, computed before the flow). Unrealisable-target runs and the
  radius sweep are reported, never counted in the exit code.
- ``lsa-theory diversity [--quick] [--json] [--out DIR]`` sweeps the (M5) rows and k
  (:mod:`lsa_theory.experiments.diversity`); ``--json`` prints ``{"rows": [{"S", "A", "d", "k", "features",
  "shared_features", "reward", "ker_dim", "kernel_certified", "tangent_dim", "scaling_only",
  "lambda_min_plus", "heldout_err"}, ...]}`` (``ker_dim`` is the exactly certified kernel dimension,
  None with ``ker_bounds`` and ``kernel_reason`` when the data do not decide).

- ``lsa-theory control [--algo NAME] [--module FILE.py] [--weights constructed|trained|PATH]
  [--updates N] [--quick] [--json] [--out DIR]`` deploys a frozen block
  (:mod:`lsa_theory.experiments.control`);
  ``--json`` prints ``{"envs": [{"name", "algo", "weights", "updates", "normalized_return",
  "normalized_return_teacher", "n_seeds"}, ...]}``, the held-out [LL] family named ``random-S9-A4``.

- ``lsa-theory regression [--quick] [--json] [--out DIR]`` measures [ZFB]'s global optimum of gradient
  flow on in-context regression (R4)/(R5) and trains L-layer stacks against (R3)
  (:mod:`lsa_theory.experiments.regression`); ``--json`` prints ``{"d", "N", "Lambda", "population":
  {"M_flow",
  "M_star", "rel_err", "loss_final", "loss_star", ...}, "sampled": [{"F", "rel_err"}, ...], "slope",
  ...}`` (also ``configs``, ``trained``, ``checks``, ``passed``).
- ``lsa-theory autoregressive [--quick] [--json] [--out DIR]`` measures in-context autoregressive
  learning (AR1)-(AR10) (:mod:`lsa_theory.experiments.autoregressive`); ``--json`` prints ``{"d",
  "T", "phase", "gd_class": {"c_star", "loss_star", "c_flow", "rate_ratio_a_priori", ...},
  "theta6": {"loss_min", "grad_k12_at_gd", ...}, "dense": {"loss_final", ...}, "verify": [...],
  "passed", "provenance", ...}``.
- ``lsa-theory distill --mode in-context|train [--quick] [--json] [--out DIR]`` measures Algorithm
  Distillation's principle with constructed stacks, (AD0)-(AD3) and (AD5)
  (:mod:`lsa_theory.experiments.distill`); ``--json`` prints ``{"config", "agents": {"source"|"ctx_all"|
  "ctx_last"|"ctx_src": {"return_by_episode", "sem_by_episode"}}, "paired":
  {"ctx_all_late_minus_early", "ctx_last_late_minus_early", "ctx_all_minus_ctx_last_late"} (each
  ``[mean, lo, hi]``), "passed", "provenance", ...}`` (also ``by_context``, ``mdps``, ``verify``);
  ``--mode train`` (AD4) prints ``{"config", "runs": [{"k", "L", "masked", "seed", "heldout_err",
  "return_gain", ...}], "constructed", "verify", "passed", "provenance", ...}``.
- ``lsa-theory td-pretrain [--quick] [--json] [--out DIR]`` measures [W]'s multi-task TD pretraining
  (WP1)-(WP6) (:mod:`lsa_theory.experiments.td_pretrain`); ``--json`` prints ``{"config",
  "invariance": {"outside_at_fix", "outside_off_fix", ...}, "stationary": {"a_star", "a_star_sem",
  "b_star", "b_star_sem", ...}, "runs": [{"k", "seed", "dist_fix", "dist_w3", "dist_theta_star",
  "heldout_value_err", "diverged", ...}], "passed", "provenance", ...}``.
- ``lsa-theory attention [--quick] [--heads H ...] [--attention NAME ...] [--json] [--out DIR]``
  trains one (L1)-type layer with H heads and a nonlinear attention by SARSA teacher mimicking
  (:mod:`lsa_theory.experiments.attention`); ``--json`` prints ``{"config", "construction": {"rows":
  [{"key", "block", "c", "heldout_err", "update_corr"}]}, "runs": [{"attention", "heads", "seed",
  "loss_final", "heldout_err", "update_corr", "s3_share", "op_cos", "diverged", "wall_time", ...}],
  "summary", "all_listed", "provenance", ...}``.
- ``lsa-theory depth [--quick] [--seeds S ...] [--json] [--out DIR]`` measures error against depth L
  and context length for trained stacks against tuned baselines, regression and TD, with
  out-of-distribution tests (:mod:`lsa_theory.experiments.depth`); ``--json`` prints ``{"config",
  "regression": {"runs", "baselines", "summary"}, "td": {"runs", "baselines", "summary"}, "ood",
  "counts", "passed", "provenance", ...}``.
- ``lsa-theory context-length --regime closed-loop|in-context [--quick] [--json] [--out DIR]``
  sweeps the context length n in either regime of docs/theory.md §6
  (:mod:`lsa_theory.experiments.context_length`);
  ``--json`` prints ``{"regime", "rows": [{"n", "L", "normalized_return", "value_error", "sem",
  ...}], "td_rows": [...], ...}`` (in context; closed-loop rows carry ``budget``, ``point``,
  ``alpha``, ``n``, ``normalized_return``, ``sem``, ``n_diverged``, ``diff_prev``).
- ``lsa-theory pretrain --mode rl|teacher|both [--algo sarsa|actor_critic] [--heads H] [--attention NAME]
  [--quick] [--sweep] [--json] [--out DIR]`` trains a
  block by reinforcement pretraining (P2) and/or teacher mimicking (P1) and compares them
  (:mod:`lsa_theory.experiments.pretrain`); ``--json`` prints ``{"rl": {...}, "teacher": {...},
  "constructed": {...}, "exact": {...}, "paired": {...}, ...}``, each block's entry with
  ``heldout_return``, ``heldout_return_sem``, ``cos_S3_effective``, ``cos_S3_full``,
  ``update_corr_sarsa`` (``rl`` also ``initial_heldout_return``). With ``--heads H > 1`` or a
  nonlinear ``--attention`` it trains both blocks of that seed (exact (P2) for linear heads, sampled
  (P2) otherwise) and prints its ``pretrain-sampled`` table (:mod:`lsa_theory.experiments.tables`);
  ``--json`` prints ``{"base",
  "runs", "passed", ...}``.

- ``lsa-theory sweep CONFIG.toml [--executor local|dask] [--address ADDR] [--workers N]`` runs a
  grid of converge/diversity/control jobs (:mod:`lsa_theory.experiments.sweep`).
- ``lsa-theory reproduce [--quick] [--seed S] [--out DIR]`` runs all of the above into ``DIR`` with
  figures and ``summary.json`` (:mod:`lsa_theory.experiments.reproduce`; every part's seeds shifted by ``S``);
  a rerun skips finished parts, and refuses results of another seed unless ``--reuse``. Progress per
  part on stderr; ``--json`` prints one JSON document (the summary, ``failed`` naming each failed
  part with its criterion), the table then on stderr.

Every command exits with 1 when one of its checks fails (the criteria are in
:data:`lsa_theory.experiments.criteria.CRITERIA`), 2 on
bad input (refused before ``--out`` is created), a filesystem error or ``verify --timeout``, 130
when interrupted; ``--threads N`` limits BLAS and torch (docs/tool.md).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from lsa_theory import constructions

from .commands import (
    _attention_config,
    _autoregressive_config,
    _check_control,
    _check_converge,
    _check_verify,
    _cmd_attention,
    _cmd_autoregressive,
    _cmd_context_length,
    _cmd_control,
    _cmd_converge,
    _cmd_depth,
    _cmd_distill,
    _cmd_diversity,
    _cmd_regression,
    _cmd_reproduce,
    _cmd_td_pretrain,
    _cmd_verify,
    _context_length_config,
    _depth_config,
    _distill_config,
    _diversity_config,
    _print_json,
    _print_table,
    _provenance,
    _regression_config,
    _td_pretrain_config,
)


def _pretrain_config(args: argparse.Namespace):
    """The :class:`PretrainConfig` of ``pretrain``'s options (ValueError naming the option), refused
    when its ``k`` training MDPs would not fit in this machine's memory (:func:`_pretrain_bytes`)."""
    from lsa_theory import ATTENTIONS
    from lsa_theory.experiments.pretrain import PretrainConfig, sampled

    heads, attention = getattr(args, "heads", 1), getattr(args, "attention", "linear")
    if heads < 1:
        raise ValueError(f"--heads: must be >= 1, got {heads}")
    if attention not in ATTENTIONS:
        raise ValueError(f"--attention: expected one of {' '.join(ATTENTIONS)}, got {attention!r}")
    if (heads, attention) != (1, "linear"):  # the heads route: both blocks of one seed, compared
        for bad, opt, why in (
            (args.sweep, "--sweep", "the sweep runs the one-linear-head block"),
            (args.mode != "both", "--mode", "a block with --heads/--attention is trained both ways (both)"),
            (
                constructions.closed_loop_algorithm(args.algo).has_actor,
                "--algo",
                "heads and attention functions run on a layout without an actor (SARSA's (H))",
            ),
            (attention != "linear" and args.init != "random", "--init", "the sampled (P2) starts at random"),
        ):
            if bad:
                raise ValueError(f"{opt}: {why}; got --heads {heads} --attention {attention}")
    if attention != "linear":  # the sampled (P2) route at S = A = 2, at the budget of the comparison
        cfg = sampled.sampled_config(quick=True) if args.quick else sampled.sampled_budget_config()
    elif heads > 1 and args.quick:  # (P1) of raw prompts with heads: 200 steps, as the sampled quick
        cfg = PretrainConfig.quick().replace(teacher_steps=200)
    else:
        cfg = PretrainConfig.quick() if args.quick else PretrainConfig()
    cfg = cfg.replace(init=args.init, algo=args.algo, heads=heads, attention=attention)
    if args.seed is not None:
        cfg = cfg.replace(seed=args.seed)
    if args.k is not None:
        if args.k < 1:
            raise ValueError(f"--k: must be >= 1, got {args.k}")
        cfg = cfg.replace(k=args.k, batch_mdps=min(cfg.batch_mdps or args.k, args.k))
    if args.steps is not None:
        if args.steps < 1:
            raise ValueError(f"--steps: must be >= 1, got {args.steps}")
        cfg = cfg.replace(steps=args.steps)
    need, have = _pretrain_bytes(cfg), _physical_memory()
    if have is not None and need > have:
        raise ValueError(
            f"--k: {cfg.k} training MDPs of size S = {cfg.S}, A = {cfg.A} need at least "
            f"{need / 2**30:.3g} GiB, this machine has {have / 2**30:.3g} GiB; use a smaller --k"
        )
    return cfg


def _pretrain_bytes(cfg) -> int:
    """A lower bound on the memory of (P2)'s ``k`` training MDPs: each is held twice in float64 (its
    :class:`lsa_theory.TabularMDP` and the torch batch), ``P`` (S A S), ``r`` (S A), ``mu0`` (S) and
    the critic table ``phi`` (S A d) with ``w_0`` (d), ``d = S A`` (the largest layout; an actor's
    tables are not counted)."""
    S, A = cfg.S, cfg.A
    d = S * A
    return 2 * 8 * cfg.k * (S * A * S + S * A + S + S * A * d + d)


def _physical_memory() -> int | None:
    """Bytes of physical memory of this machine (``None`` where the OS does not say)."""
    import os

    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def _check_pretrain(args: argparse.Namespace) -> None:
    _pretrain_config(args)


def _cmd_pretrain(args: argparse.Namespace) -> int:
    from lsa_theory.experiments.pretrain import TrainingDiverged
    from lsa_theory.experiments.pretrain.compare import pretrain_sweep, run_pretrain

    cfg = _pretrain_config(args)
    if not cfg.linear_block:
        return _cmd_pretrain_heads(args, cfg)
    if args.sweep:
        doc = pretrain_sweep(cfg, out=None if args.out is None else f"{args.out}/sweep")
        if args.json:
            _print_json(args, doc)
        else:
            cols = [("T", ""), ("k", ""), ("rl_return", ".3f"), ("rl_n_diverged", "")]
            cols += [("rl_initial_return", ".3f")]
            cols += [("teacher_return", ".3f"), ("exact_return", ".3f"), ("rl_cos_S3_effective", ".3f")]
            _print_table(doc["rows"], cols + [("rl_update_corr_sarsa", ".3f")])
        return 0
    try:
        doc = run_pretrain(cfg, args.mode, args.out)
    except TrainingDiverged as exc:  # a run that failed, reported as such (exit 1), not a traceback
        print(f"lsa-theory pretrain: the (P2) training failed: {exc}", file=sys.stderr)
        if args.json:
            _print_json(args, {"failed": str(exc), "passed": False, "config": cfg.as_dict()})
        return 1
    if args.json:
        _print_json(args, doc)
    else:
        rows = [{"block": name, **doc[name]} for name in doc["blocks"]]
        _print_table(
            rows,
            [
                ("block", ""),
                ("heldout_return", ".3f"),
                ("heldout_return_sem", ".3f"),
                ("n_diverged", ""),
                ("heldout_return_softmax", ".3f"),
                ("heldout_smooth_return", ".3f"),
                ("cos_S3_effective", ".3f"),
                ("cos_S3_full", ".3f"),
                ("alpha_eff", ".3f"),
                ("update_corr_sarsa", ".3f"),
            ],
        )
        for pair, ci in doc["paired"]["at_T"].items():
            print(
                f"{pair:28} {ci['mean']:+.3f}  95% CI "
                f"[{ci['ci_low']:+.3f}, {ci['ci_high']:+.3f}]  n={ci['n']} "
                f"(diverged {ci['n_diverged_a']} / {ci['n_diverged_b']}, scored {ci['diverged_score']:g})"
            )
    return 0 if doc["passed"] else 1


def _cmd_pretrain_heads(args: argparse.Namespace, cfg) -> int:
    """``pretrain --heads H --attention NAME``: linear heads by the exact (P2)
    (:func:`lsa_theory.experiments.pretrain.sampled.compare_exact_heads`), a nonlinear attention by the
    sampled (P2) (:func:`~lsa_theory.experiments.pretrain.sampled.compare_sampled`, ``SAMPLES`` loops per
    MDP), each against (P1) of the same block on the seed's held-out MDPs; ``out/pretrain_heads.json``.
    Exit 0 when the paired 95 % interval of (P2) minus its start lies above 0, else 1."""
    from pathlib import Path

    from lsa_theory.experiments.pretrain import sampled
    from lsa_theory.experiments.tables import TABLES

    path = None if args.out is None else Path(args.out) / "pretrain_heads.json"
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    if cfg.exact_loop:
        doc = sampled.compare_exact_heads(cfg, seeds=(cfg.seed,), path=path)
    else:
        models = ((cfg.attention, cfg.heads),)
        doc = sampled.compare_sampled(cfg, models, (cfg.seed,), sampled.SAMPLES, path)
    run = doc["runs"][0]
    passed = run["rl-initial"]["ci_low"] is not None and run["rl-initial"]["ci_low"] > 0
    doc["passed"] = bool(passed)
    if args.json:
        _print_json(args, doc)
    else:
        print(TABLES["pretrain-sampled"](doc))
    return 0 if passed else 1


def _common(p: argparse.ArgumentParser, *, out: str | None = None, seed: bool = True) -> None:
    """Options every command shares: --json, --threads, and where they apply --seed, --out, --reuse."""
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        metavar="N",
        help="BLAS and torch threads (default 1: the small products here run fastest single-threaded; "
        "recorded in provenance)",
    )
    if seed:
        p.add_argument("--seed", type=int, default=None, help="seed of every random draw (recorded)")
    if out is not None:
        p.add_argument("--out", default=None, metavar="DIR", help=out)
        p.add_argument(
            "--reuse",
            action="store_true",
            help="resume in --out even if its results were made by another code or configuration",
        )


def build_parser() -> argparse.ArgumentParser:
    """The ``lsa-theory`` argument parser: one subcommand per command, each with its options."""
    parser = argparse.ArgumentParser(
        prog="lsa-theory",
        description="Check the theory of in-context RL in linear self-attention (docs/theory.md). "
        "Exit codes: 0 every check passed, 1 a check ran and failed, 2 bad input, 130 interrupted.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("verify", help="check every construction claim on fresh random instances")
    p.add_argument("--quick", action="store_true", help="small sizes (S = A = 3), fewer instances")
    _common(p)
    p.add_argument(
        "--module",
        default=None,
        metavar="FILE.py",
        help="verify the Algorithm declarations of your own file (docs/extending.md), not the package's",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="stop after SECONDS: exit 2 with one line naming the declaration and level that was running",
    )
    p.set_defaults(func=_cmd_verify, precheck=_check_verify)

    loop_algos = constructions.ALGORITHMS.with_capability(constructions.ClosedLoopAlgorithm)
    algo_help = "registered closed-loop algorithm: " + ", ".join(
        f"{a} {constructions.ALGORITHMS[a].claim}" for a in loop_algos
    )
    p = sub.add_parser("converge", help="gradient flows from perturbations of the construction (M6)")
    p.add_argument(
        "--algo", default="sarsa", metavar="NAME", help=algo_help + "; or one declared in --module's file"
    )
    p.add_argument(
        "--module",
        default=None,
        metavar="FILE.py",
        help="a user's file declaring closed-loop algorithms; --algo names one of them (its teacher data, "
        "its construction)",
    )
    p.add_argument("--quick", action="store_true", help="one seed, two scales, two radii")
    _common(p, out="directory for converge.json/.npz and plots (resumes)")
    p.set_defaults(func=_cmd_converge, precheck=_check_converge)

    p = sub.add_parser("diversity", help="richness (M5) and held-out cost of low diversity (M7)")
    p.add_argument("--quick", action="store_true", help="S = A = 2, k up to 16")
    _common(p, out="directory for diversity.json and its plot (resumes)")
    p.set_defaults(func=_cmd_diversity, precheck=_diversity_config)

    p = sub.add_parser("control", help="frozen block in the closed loop (S6)/(A5) on held-out MDPs")
    p.add_argument(
        "--algo",
        default="sarsa",
        metavar="NAME",
        help=algo_help + "; or one declared in --module's file",
    )
    p.add_argument(
        "--module",
        default=None,
        metavar="FILE.py",
        help="a user's file declaring closed-loop algorithms (lsa_theory.constructions.ClosedLoopAlgorithm); "
        "--algo names one of them, deployed with its own construction and its own teacher",
    )
    p.add_argument(
        "--weights",
        default="constructed",
        metavar="constructed|trained|PATH",
        help="'constructed': the construction (S3)/(A3) with the run's alpha (beta); 'trained': the [LL] "
        "SARSA block trained by 'reproduce --parts training' (trained first if missing, ~1 min; "
        "random-S9-A4 only); PATH: an .npz with arrays P, V, each (D, D), or (H, D, D) for H heads "
        "with an optional 0-d string array 'attention' (lsa_theory.ATTENTIONS). The exact teacher "
        "(S2)/(A2) runs beside every block as its baseline.",
    )
    p.add_argument("--updates", type=int, default=None, help="number of updates (default 1000; quick 300)")
    p.add_argument("--quick", action="store_true", help="5 held-out MDPs, 3 seeds per env, no Taxi")
    _common(p, out="directory for control.json/.npz and the plot (resumes)")
    p.set_defaults(func=_cmd_control, precheck=_check_control)

    p = sub.add_parser("regression", help="in-context regression: [ZFB]'s flow optimum (R5), trained stacks")
    p.add_argument("--quick", action="store_true", help="two population configurations, small sweeps")
    p.add_argument(
        "--law",
        choices=("isotropic", "sigma_inverse"),
        default="isotropic",
        help="law of the regression weight: w ~ N(0, I) ((R4), default) or w ~ N(0, Lambda^{-1}) ([Ahn]'s "
        "code); the target is that law's one-layer optimum",
    )
    p.add_argument(
        "--covariates",
        choices=("gaussian", "sphere", "gamma"),
        default="gaussian",
        help="law of the x's, all with E[x x^T] = Lambda: N(0, Lambda) (default), sqrt(d) Lambda^{1/2} u "
        "(u uniform on the sphere), or [Ahn]'s gamma-scaled sphere (shape 0.1); the trained stacks "
        "train on the same law",
    )
    p.add_argument(
        "--heads", type=int, default=1, metavar="H", help="heads per layer of the trained stacks (default 1)"
    )
    p.add_argument(
        "--attention",
        default="linear",
        metavar="NAME",
        help="attention function of the trained stacks: linear (default), softmax, relu, tanh, elu, selu, "
        "leaky_relu; with --quick a nonlinear one trains 150 steps of batch 250 at lr 1e-2 and tests on "
        "4000 prompts (RegressionConfig.quick, QUICK_NONLINEAR; linear: 500 steps of 500, lr 3e-3, "
        "20000 prompts)",
    )
    _common(p, out="directory for regression.json/.npz and the figure")
    p.set_defaults(func=_cmd_regression, precheck=_regression_config)

    p = sub.add_parser(
        "autoregressive",
        help="in-context autoregressive learning (AR1)-(AR10): the GD class, its flow, Theta_6",
    )
    p.add_argument(
        "--quick", action="store_true", help="fewer T in the curve, 2e4 Monte Carlo draws, d = 2 only"
    )
    _common(p, out="directory for autoregressive.json/.npz and the figure (resumes)")
    p.set_defaults(func=_cmd_autoregressive, precheck=_autoregressive_config)

    p = sub.add_parser(
        "distill",
        help="Algorithm Distillation (AD0)-(AD5): the masked stack, pooled stacks, in-context improvement",
    )
    p.add_argument(
        "--mode",
        choices=("in-context", "train"),
        required=True,
        help="in-context: the four agents of (AD3) (source, ctx-all, ctx-last, ctx-src) on held-out MDPs "
        "with constructed stacks, and the exact rows of (AD1), (AD2), (AD5); train: (AD4), stacks trained "
        "by teacher mimicking on source histories (with and without episode masks), deployed in context",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="in-context: 4 context windows, 6 histories for the exact rows; train: k = 30, one seed, "
        "300 steps",
    )
    _common(p, out="directory for distill.json/.npz and the figure (resumes; train: distill-train.json)")
    p.set_defaults(func=_cmd_distill, precheck=_distill_config)

    p = sub.add_parser(
        "td-pretrain",
        help="[W]'s multi-task TD pretraining (WP1)-(WP6): Fix(G), theta*, emergence against task diversity",
    )
    p.add_argument(
        "--quick", action="store_true", help="1500 Adam steps per run, smaller samples (under two minutes)"
    )
    _common(p, out="directory for td_pretrain.json and the figure (resumes)")
    p.set_defaults(func=_cmd_td_pretrain, precheck=_td_pretrain_config)

    p = sub.add_parser(
        "attention",
        help="multi-head and nonlinear attention in SARSA teacher mimicking (softmax, relu against linear)",
    )
    p.add_argument(
        "--quick", action="store_true", help="50 training MDPs, 200 Adam steps per run (under two minutes)"
    )
    p.add_argument(
        "--heads", type=int, nargs="+", default=None, metavar="H", help="numbers of heads (default 1 2)"
    )
    p.add_argument(
        "--attention",
        nargs="+",
        default=None,
        metavar="NAME",
        help="attention functions: linear softmax relu tanh elu selu leaky_relu (default: the first three)",
    )
    _common(p, out="directory for attention.json/.npz and the figure (resumes)")
    p.set_defaults(func=_cmd_attention, precheck=_attention_config)

    p = sub.add_parser(
        "depth",
        help="error against depth L and context length: trained stacks against tuned GD/PGD and batch TD, "
        "out-of-distribution scales",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="regression L in {1, 2, 4}, N in {5, 20, 80}; TD L in {1, 2, 4}, shared weights; 400 Adam steps",
    )
    p.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=None,
        metavar="S",
        help="training seeds of every trained stack (default 0 1 2; distinct, >= 0)",
    )
    _common(p, out="directory for depth.json/.npz and the figure (resumes)")
    p.set_defaults(func=_cmd_depth, precheck=_depth_config)

    p = sub.add_parser("context-length", help="context length n in the closed-loop or in-context regime (§6)")
    p.add_argument(
        "--regime",
        choices=("closed-loop", "in-context"),
        required=True,
        help="closed-loop: w carried from prompt to prompt (S6), n a batch size; in-context: one long "
        "prompt read by a deep stack from a fixed w_0",
    )
    p.add_argument("--quick", action="store_true", help="fewer n, alpha and budgets")
    _common(p, out="directory for context_length_REGIME.json/.npz and the plot")
    p.set_defaults(func=_cmd_context_length, precheck=_context_length_config)

    p = sub.add_parser("pretrain", help="reinforcement pretraining (P2) against teacher mimicking (P1), (P3)")
    p.add_argument(
        "--mode",
        choices=("rl", "teacher", "both"),
        default="both",
        help="rl: reinforcement pretraining (P2); teacher: teacher mimicking (P1); both, compared (P3)",
    )
    p.add_argument("--quick", action="store_true", help="S = A = 2, 150 (P2) steps (about a minute)")
    p.add_argument("--sweep", action="store_true", help="also vary the horizon T and the training MDPs k")
    p.add_argument(
        "--init", choices=("random", "constructed"), default="random", help="(P2) start: small random or (S3)"
    )
    p.add_argument("--k", type=int, default=None, help="training MDPs of (P2) (default 16384; quick 1024)")
    p.add_argument("--steps", type=int, default=None, help="(P2) Adam steps (default 1000; quick 150)")
    p.add_argument(
        "--algo",
        choices=loop_algos,
        default="sarsa",
        help="layout, teacher, construction: sarsa (H)/(S3) or actor_critic (A1)/(A3) (recorded in config)",
    )
    p.add_argument(
        "--heads",
        type=int,
        default=1,
        metavar="H",
        help="heads of the block (default 1); H linear heads train by the exact expected-context (P2)",
    )
    p.add_argument(
        "--attention",
        default="linear",
        metavar="NAME",
        help="attention function: linear (default), softmax, relu, tanh, elu, selu, leaky_relu; a "
        "nonlinear one trains by the sampled (P2) at S = A = 2",
    )
    _common(p, out="directory for pretrain.json/.npz, checkpoints, figures (resumes)")
    p.set_defaults(
        func=_cmd_pretrain, precheck=_check_pretrain, omit_at_default={"heads": 1, "attention": "linear"}
    )

    from lsa_theory.experiments.sweep import add_parser as add_sweep_parser

    add_sweep_parser(sub)

    from lsa_theory.experiments.reproduce import PARTS

    p = sub.add_parser(
        "reproduce",
        help="every experiment, figure and summary.json (resumable; --quick about 5 min on 2 quiet cores)",
    )
    p.add_argument("--quick", action="store_true", help="small configurations (about 5 minutes on 2 cores)")
    p.add_argument("--parts", nargs="+", default=None, choices=list(PARTS), metavar="PART",
                   help="only these parts, of: " + ", ".join(PARTS))  # fmt: skip
    p.add_argument("--seed", type=int, default=0, metavar="S",
                   help="base seed: every part's seeds shifted by S (default 0: the documented results; "
                   "recorded in every result's provenance)")  # fmt: skip
    _common(p, out="output directory (default: results)", seed=False)
    p.set_defaults(func=_cmd_reproduce, out="results")
    return parser


#: Largest ``--seed`` (a 32-bit seed: larger ones overflowed C longs deep inside a run).
SEED_MAX = 2**32 - 1

#: Commands that train or evaluate with torch: ``--threads N`` also sets torch's intra- and
#: inter-op threads for them (:func:`lsa_theory.experiments.io.set_torch_threads`), recorded in provenance.
TORCH_COMMANDS = frozenset(
    {"regression", "pretrain", "control", "context-length", "reproduce", "attention", "depth"}
)


def _run(args: argparse.Namespace) -> int:
    """Check the options (``--threads``, ``--seed``, ``--out``, then the command's own
    ``precheck``: every command builds its configuration there, so a configuration error is
    reported before ``--out`` is created) before anything is written; limit BLAS and (for the
    commands in :data:`TORCH_COMMANDS`) torch to ``--threads`` threads; then, with ``--out``, hold its lock
    (:class:`lsa_theory.experiments.io.out_lock`: a second process on the same directory is refused), check
    and record its provenance and run the command. ``sweep`` manages its ``--out`` itself."""
    from threadpoolctl import threadpool_limits

    from lsa_theory.experiments.io import check_out, check_provenance, out_lock, set_torch_threads

    threads = getattr(args, "threads", 1)
    if threads < 1:
        raise ValueError(f"--threads: must be >= 1, got {threads}")
    seed = getattr(args, "seed", None)
    if seed is not None and not 0 <= seed <= SEED_MAX:
        raise ValueError(f"--seed: must be in [0, {SEED_MAX}] (a 32-bit seed), got {seed}")
    if args.command in TORCH_COMMANDS or "torch" in sys.modules:
        set_torch_threads(threads)
    with threadpool_limits(limits=threads, user_api="blas"):
        out = check_out(getattr(args, "out", None))
        precheck = getattr(args, "precheck", None)
        if precheck is not None:
            precheck(args)
        if out is None or getattr(args, "own_out", False):
            return args.func(args)
        with out_lock(out):
            check_provenance(out, _provenance(args), getattr(args, "reuse", False))
            return args.func(args)


def _option_named(args: argparse.Namespace, message: str) -> str:
    """``message`` naming the option it is about the way the command line spells it: a library
    error ``"module: ..."`` or ``"algo: ..."`` (the argument's name) is ``"--module: ..."`` /
    ``"--algo: ..."`` when the command has that option, so every command says it the same way."""
    name = message.split(":", 1)[0]
    if name in ("module", "algo") and hasattr(args, name):
        return f"--{message}"
    return message


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _os_error(exc: OSError) -> str:
    """One line for a filesystem error: the path first, then what the system said (read-only,
    full, no permission, ...)."""
    what = exc.strerror or type(exc).__name__
    if exc.filename is not None:
        where = f"{exc.filename}" + (f" -> {exc.filename2}" if exc.filename2 is not None else "")
        return _one_line(f"{where}: {what}")
    return _one_line(str(exc) or what)


#: Commands that keep nothing of an interrupted run (``verify`` has no ``--out``).
NO_RESUME = frozenset({"verify"})


def _after_interrupt(args: argparse.Namespace) -> str:
    """What a rerun does after Ctrl-C: resume from the units saved in ``--out``, or start over (the
    commands of :data:`NO_RESUME`, and any command run without ``--out``)."""
    if args.command in NO_RESUME or getattr(args, "out", None) is None:
        return "nothing was kept (nothing is saved without --out); a rerun starts over"
    return "rerun the same command to resume"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``lsa-theory``; returns the exit code (0 passed, 1 a check failed, 2 bad
    input or environment (a filesystem error: read-only, full, no permission) with one line on
    stderr naming the option or file, 130 interrupted)."""
    args = build_parser().parse_args(argv)
    try:
        return _run(args)
    except KeyboardInterrupt:
        print(f"lsa-theory {args.command}: interrupted; {_after_interrupt(args)}", file=sys.stderr)
        return 130
    except ValueError as exc:
        print(f"lsa-theory {args.command}: error: {_option_named(args, _one_line(exc))}", file=sys.stderr)
        return 2
    except OSError as exc:  # FileExistsError, NotADirectoryError, PermissionError, ENOSPC, EROFS, ...
        print(f"lsa-theory {args.command}: error: {_os_error(exc)}", file=sys.stderr)
        return 2
