"""``lsa-theory`` command line.

- ``lsa-theory verify [--json] [--quick] [--seed N]`` checks every construction claim of THEORY.md
  on fresh random instances (:func:`constructions.run_claims`); ``--json`` prints
  ``{"rows": [{"claim", "residual", "tol", "passed"}, ...]}`` (rows also carry ``check``).
- ``lsa-theory converge [--algo sarsa|actor_critic] [--quick] [--json] [--out DIR]`` runs gradient
  flows from perturbations of the construction (:mod:`experiments.converge`); ``--json`` prints
  ``{"runs": [{"algo", "seed", "radius", "loss0", "loss_final", "dist_final", "rate_fit",
  "rate_pred", "rate_ratio", "ker_dim", "tangent_dim", "rich", "conserved_drift", "c_pred",
  "c_final"}, ...]}`` (runs carry a few more fields, e.g. ``c0``, ``converged``, ``passed``).
- ``lsa-theory diversity [--quick] [--json] [--out DIR]`` sweeps the (M5) rows and k
  (:mod:`experiments.diversity`); ``--json`` prints ``{"rows": [{"k", "features",
  "shared_features", "reward", "ker_dim", "tangent_dim", "scaling_only", "lambda_min_plus",
  "heldout_err"}, ...]}``.

- ``lsa-theory control [--algo sarsa|actor_critic] [--weights constructed|trained|PATH]
  [--updates N] [--quick] [--json] [--out DIR]`` deploys a frozen block (:mod:`experiments.control`);
  ``--json`` prints ``{"envs": [{"name", "algo", "weights", "updates", "normalized_return",
  "normalized_return_teacher", "n_seeds"}, ...]}``, the held-out [LL] family named ``random-S9-A4``.

- ``lsa-theory pretrain --mode rl|teacher|both [--quick] [--sweep] [--json] [--out DIR]`` trains a
  block by reinforcement pretraining (P2) and/or teacher mimicking (P1) and compares them
  (:mod:`experiments.pretrain`); ``--json`` prints ``{"rl": {...}, "teacher": {...},
  "constructed": {...}, "exact": {...}, "paired": {...}, ...}``, each block's entry with
  ``heldout_return``, ``heldout_return_sem``, ``cos_S3_effective``, ``cos_S3_full``,
  ``update_corr_sarsa`` (``rl`` also ``initial_heldout_return``).

- ``lsa-theory sweep CONFIG.toml [--executor local|dask] [--address ADDR] [--workers N]`` runs a
  grid of converge/diversity/control jobs (:mod:`experiments.sweep`).
- ``lsa-theory reproduce [--quick] [--out DIR]`` runs all of the above into ``DIR`` with figures
  and ``summary.json`` (:mod:`experiments.reproduce`); a rerun skips finished parts.

Every command exits with 1 when one of its checks fails (the criteria are in ``CRITERIA``).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence

import numpy as np


def _json_float(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _cmd_verify(args: argparse.Namespace) -> int:
    from constructions.verify import run_claims

    seed = args.seed if args.seed is not None else int(np.random.SeedSequence().entropy % 2**32)
    rows = run_claims(np.random.default_rng(seed), quick=args.quick)
    ok = all(r.passed for r in rows)
    if args.json:
        doc = {
            "rows": [
                {
                    "claim": r.claim,
                    "check": r.check,
                    "residual": _json_float(r.residual),
                    "tol": r.tol,
                    "passed": r.passed,
                }
                for r in rows
            ],
            "seed": seed,
            "quick": args.quick,
            "passed": ok,
        }
        print(json.dumps(doc, indent=2))
    else:
        width = max(len(r.check) for r in rows)
        print(f"lsa-theory verify  seed={seed}  quick={args.quick}")
        print(f"{'claim':<6}  {'check':<{width}}  {'residual':>10}  {'tol':>8}  result")
        for r in rows:
            print(
                f"{r.claim:<6}  {r.check:<{width}}  {r.residual:>10.2e}  {r.tol:>8.0e}  "
                f"{'pass' if r.passed else 'FAIL'}"
            )
        print(f"{sum(r.passed for r in rows)}/{len(rows)} claims pass")
    return 0 if ok else 1


#: Acceptance criteria of a converge run (THEORY.md (M3), (M4), (M6)).
CRITERIA = {
    "dist_final": 1e-8,  # distance of the limit to the manifold
    "rate_ratio": 0.10,  # |rate_fit / rate_pred - 1|
    "conserved_drift": 1e-8,  # relative drift of ||A||^2 - ||B||^2
    "c_rel": 1e-6,  # |c_final / c_pred - 1| where the tangent is the scaling direction alone
}


def converge_passed(run: dict) -> bool:
    """A run passes when it converged and meets every entry of :data:`CRITERIA`."""
    ok = (
        run["converged"]
        and run["dist_final"] < CRITERIA["dist_final"]
        and abs(run["rate_ratio"] - 1.0) < CRITERIA["rate_ratio"]
        and run["conserved_drift"] < CRITERIA["conserved_drift"]
        and run["rich"]
    )
    if run["scaling_only"]:
        ok = ok and abs(run["c_final"] / run["c_pred"] - 1.0) < CRITERIA["c_rel"]
    return bool(ok)


def _print_table(rows: list[dict], columns: list[tuple[str, str]]) -> None:
    def fmt(v, spec):
        if v is None:
            return "nan"
        return format(v, spec) if spec else str(v)

    cells = [[fmt(r.get(k), spec) for k, spec in columns] for r in rows]
    widths = [max(len(k), *(len(c[i]) for c in cells)) for i, (k, _) in enumerate(columns)]
    print("  ".join(k.rjust(w) for (k, _), w in zip(columns, widths, strict=True)))
    for c in cells:
        print("  ".join(v.rjust(w) for v, w in zip(c, widths, strict=True)))


def _cmd_converge(args: argparse.Namespace) -> int:
    from .converge import ConvergeConfig, plot_converge, run_converge
    from .io import to_jsonable

    cfg = ConvergeConfig.quick(args.algo) if args.quick else ConvergeConfig(algo=args.algo)
    out = args.out
    doc = run_converge(cfg, out)
    for run in doc["runs"]:
        run["passed"] = converge_passed(run)
    ok = all(r["passed"] for r in doc["runs"])
    if out is not None:
        plot_converge(out)
    if args.json:
        print(json.dumps(to_jsonable({"runs": doc["runs"], "config": doc["config"], "passed": ok}), indent=2))
    else:
        _print_table(
            doc["runs"],
            [
                ("seed", ""),
                ("c0", "g"),
                ("radius", "g"),
                ("loss0", ".1e"),
                ("loss_final", ".1e"),
                ("dist_final", ".1e"),
                ("rate_ratio", ".4f"),
                ("ker_dim", ""),
                ("tangent_dim", ""),
                ("conserved_drift", ".1e"),
                ("c_pred", ".9f"),
                ("c_final", ".9f"),
                ("passed", ""),
            ],
        )
        print(f"{sum(r['passed'] for r in doc['runs'])}/{len(doc['runs'])} runs pass; criteria {CRITERIA}")
    return 0 if ok else 1


def diversity_passed(row: dict) -> bool:
    """(M5) Morse-Bott in every row; (M7) held-out error ~0 iff the tangent is scaling-only is
    reported, not asserted per row (see the README for the figures)."""
    return bool(row["ker_dim"] == row["tangent_dim"] and row["morse_bott"])


def _cmd_diversity(args: argparse.Namespace) -> int:
    from .diversity import DiversityConfig, plot_diversity, run_diversity
    from .io import to_jsonable

    cfg = DiversityConfig.quick() if args.quick else DiversityConfig()
    doc = run_diversity(cfg, args.out)
    for row in doc["rows"]:
        row["passed"] = diversity_passed(row)
    ok = all(r["passed"] for r in doc["rows"])
    if args.out is not None:
        plot_diversity(args.out)
    if args.json:
        print(json.dumps(to_jsonable({"rows": doc["rows"], "config": doc["config"], "passed": ok}), indent=2))
    else:
        _print_table(
            doc["rows"],
            [
                ("k", ""),
                ("features", ""),
                ("shared_features", ""),
                ("reward", ""),
                ("ker_dim", ""),
                ("tangent_dim", ""),
                ("scaling_only", ""),
                ("lambda_min_plus", ".2e"),
                ("heldout_err", ".2e"),
                ("passed", ""),
            ],
        )
        print(
            f"{sum(r['passed'] for r in doc['rows'])}/{len(doc['rows'])} rows Morse-Bott "
            "(ker_dim == tangent_dim)"
        )
    return 0 if ok else 1


def _trained_weights(out: str | None) -> str:
    """Path of trained weights for ``--weights trained``: ``<out>/training/train.npz`` (where
    ``lsa-theory reproduce`` puts them), trained there first with the [LL] configuration
    ``TrainConfig.full()`` (about a minute; it resumes) if it does not exist."""
    from pathlib import Path

    from .training import TrainConfig, train

    base = Path(out if out is not None else "results") / "training"
    path = base / "train.npz"
    if not path.exists():
        train(TrainConfig.full(), base)
    return str(path)


def _cmd_control(args: argparse.Namespace) -> int:
    import dataclasses

    from .control import ControlConfig, plot_control, run_control
    from .envs import HELDOUT_NAME
    from .io import to_jsonable

    cfg = ControlConfig.quick() if args.quick else ControlConfig()
    weights = _trained_weights(args.out) if args.weights == "trained" else args.weights
    changes = {"weights": weights}
    if args.algo == "actor_critic":
        changes.update(envs=(HELDOUT_NAME,), actor_critic_envs=(HELDOUT_NAME,))
    elif weights != "constructed":
        # a trained block has the D of the MDPs it was trained on: the [LL] family only
        changes.update(envs=(HELDOUT_NAME,), actor_critic_envs=())
    if args.updates is not None:
        changes["n_updates"] = args.updates
    cfg = dataclasses.replace(cfg, **changes)
    out = None if args.out is None else f"{args.out}/control"
    doc = run_control(cfg, out)
    if out is not None:
        plot_control(out)
    envs = [e for e in doc["envs"] if e["algo"] == args.algo]
    if args.json:
        print(json.dumps(to_jsonable({"envs": envs, "config": doc["config"]}), indent=2))
    else:
        _print_table(
            envs,
            [
                ("name", ""),
                ("algo", ""),
                ("updates", ""),
                ("n_seeds", ""),
                ("normalized_return", ".3f"),
                ("normalized_return_teacher", ".3f"),
            ],
        )
    return 0


def _cmd_pretrain(args: argparse.Namespace) -> int:
    from .io import to_jsonable
    from .pretrain import PretrainConfig
    from .pretrain_compare import pretrain_sweep, run_pretrain

    cfg = PretrainConfig.quick() if args.quick else PretrainConfig()
    cfg = cfg.replace(init=args.init)
    if args.k is not None:
        cfg = cfg.replace(k=args.k, batch_mdps=min(cfg.batch_mdps or args.k, args.k))
    if args.steps is not None:
        cfg = cfg.replace(steps=args.steps)
    if args.sweep:
        doc = pretrain_sweep(cfg, out=None if args.out is None else f"{args.out}/sweep")
        if args.json:
            print(json.dumps(to_jsonable(doc), indent=2))
        else:
            cols = [("T", ""), ("k", ""), ("rl_return", ".3f"), ("rl_initial_return", ".3f")]
            cols += [("teacher_return", ".3f"), ("exact_return", ".3f"), ("rl_cos_S3_effective", ".3f")]
            _print_table(doc["rows"], cols + [("rl_update_corr_sarsa", ".3f")])
        return 0
    doc = run_pretrain(cfg, args.mode, args.out)
    if args.json:
        print(json.dumps(to_jsonable(doc), indent=2))
    else:
        rows = [{"block": name, **doc[name]} for name in doc["blocks"]]
        _print_table(
            rows,
            [
                ("block", ""),
                ("heldout_return", ".3f"),
                ("heldout_return_sem", ".3f"),
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
                f"[{ci['ci_low']:+.3f}, {ci['ci_high']:+.3f}]  n={ci['n']}"
            )
    return 0 if doc["passed"] else 1


def _cmd_reproduce(args: argparse.Namespace) -> int:
    from .reproduce import reproduce

    summary = reproduce(args.out, quick=args.quick, parts=args.parts)
    for name, part in summary["parts"].items():
        print(f"{name:24} {part['seconds']:8.1f} s")
    print(f"summary: {args.out}/summary.json")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lsa-theory", description="Check the theory of in-context RL in linear self-attention."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("verify", help="check every construction claim on fresh random instances")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.add_argument("--quick", action="store_true", help="small sizes (S = A = 3), fewer instances")
    p.add_argument("--seed", type=int, default=None, help="seed of the instances (default: fresh)")
    p.set_defaults(func=_cmd_verify)

    p = sub.add_parser("converge", help="gradient flows from perturbations of the construction (M6)")
    p.add_argument("--algo", choices=("sarsa", "actor_critic"), default="sarsa")
    p.add_argument("--quick", action="store_true", help="one seed, two scales, two radii")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.add_argument("--out", default=None, help="directory for converge.json/.npz and plots (resumes)")
    p.set_defaults(func=_cmd_converge)

    p = sub.add_parser("diversity", help="richness (M5) and held-out cost of low diversity (M7)")
    p.add_argument("--quick", action="store_true", help="S = A = 2, k up to 16")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.add_argument("--out", default=None, help="directory for diversity.json and its plot (resumes)")
    p.set_defaults(func=_cmd_diversity)

    p = sub.add_parser("control", help="frozen block in the closed loop (S6)/(A5) on held-out MDPs")
    p.add_argument("--algo", choices=("sarsa", "actor_critic"), default="sarsa")
    p.add_argument(
        "--weights",
        default="constructed",
        help="'constructed', 'trained' or a .npz path with arrays P, V (trained blocks: random-S9-A4 only)",
    )
    p.add_argument("--updates", type=int, default=None, help="number of updates (default 1000; quick 300)")
    p.add_argument("--quick", action="store_true", help="5 held-out MDPs, 3 seeds per env, no Taxi")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.add_argument("--out", default=None, help="directory for control.json/.npz and the plot (resumes)")
    p.set_defaults(func=_cmd_control)

    p = sub.add_parser("pretrain", help="reinforcement pretraining (P2) against teacher mimicking (P1), (P3)")
    p.add_argument("--mode", choices=("rl", "teacher", "both"), default="both")
    p.add_argument("--quick", action="store_true", help="S = A = 2, 150 (P2) steps (about a minute)")
    p.add_argument("--sweep", action="store_true", help="also vary the horizon T and the training MDPs k")
    p.add_argument(
        "--init", choices=("random", "constructed"), default="random", help="(P2) start: small random or (S3)"
    )
    p.add_argument("--k", type=int, default=None, help="training MDPs of (P2) (default 16384; quick 1024)")
    p.add_argument("--steps", type=int, default=None, help="(P2) Adam steps (default 1000; quick 150)")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.add_argument(
        "--out", default=None, help="directory for pretrain.json/.npz, checkpoints, figures (resumes)"
    )
    p.set_defaults(func=_cmd_pretrain)

    from .sweep import add_parser as add_sweep_parser

    add_sweep_parser(sub)

    p = sub.add_parser("reproduce", help="every experiment, figure and summary.json (resumable)")
    p.add_argument("--quick", action="store_true", help="small configurations (under 10 minutes)")
    p.add_argument("--out", default="results", help="output directory (default: results)")
    p.add_argument("--parts", nargs="+", default=None, help="only these parts")
    p.set_defaults(func=_cmd_reproduce)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``lsa-theory``; returns the exit code."""
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
