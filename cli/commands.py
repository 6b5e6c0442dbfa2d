"""The ``lsa-theory`` commands but ``pretrain`` (:mod:`lsa_theory.cli` holds that one, the parser and
the entry point): each runs its experiment, prints a table or one JSON document and returns the
exit code (0 passed, 1 a check failed).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys

import numpy as np

from lsa_theory import ATTENTIONS, constructions
from lsa_theory.experiments.criteria import CRITERIA, control_passed, converge_passed, diversity_passed

#: Options that do not change what a command computes (left out of its configuration hash).
_NOT_CONFIG = {"json", "out", "reuse", "func", "threads", "parts", "limit", "workers", "executor", "address"}
_NOT_CONFIG |= {"precheck", "own_out", "timeout"}  # how the command is run, not what it computes


def _json_float(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _provenance(args: argparse.Namespace, seed=None) -> dict:
    """The ``provenance`` object of a command's JSON document
    (:func:`lsa_theory.experiments.io.provenance`)."""
    from lsa_theory.experiments.io import provenance

    # options added later whose defaults compute what the command computed before them
    # (``omit_at_default``, set by the parser): left out at their defaults, so the hash stays
    omit = getattr(args, "omit_at_default", {})
    config = {
        k: v
        for k, v in vars(args).items()
        if k not in _NOT_CONFIG and k != "omit_at_default" and not (k in omit and v == omit[k])
    }
    return provenance(config, seed if seed is not None else getattr(args, "seed", None))


def _print_json(args: argparse.Namespace, doc: dict, seed=None) -> None:
    """Print a command's JSON document with its ``provenance`` object (issue 13: every result
    document carries one; a document that already has it keeps its own)."""
    from lsa_theory.experiments.io import to_jsonable

    if "provenance" not in doc:
        if seed is None:  # the seed the command ran with: the document's own, else --seed
            config = doc.get("config") if isinstance(doc.get("config"), dict) else {}
            seed = doc.get("seed", config.get("seed"))
        doc = {**doc, "provenance": _provenance(args, seed)}
    print(json.dumps(to_jsonable(doc), indent=2))


def _cmd_verify(args: argparse.Namespace) -> int:
    from lsa_theory.constructions.verify import run_claims

    algorithms, module = None, None
    if args.module is not None:  # a ValueError "--module: ..." is main()'s one-line exit 2
        algorithms, module = _load_user_module(args.module)
    seed = args.seed if args.seed is not None else int(np.random.SeedSequence().entropy % 2**32)
    rows = _run_claims_watched(
        run_claims, args, np.random.default_rng(seed), algorithms=algorithms, block_rows=algorithms is None
    )
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
        if module is not None:
            doc["module"] = module
        _print_json(args, doc, seed)
    else:
        print(f"lsa-theory verify  seed={seed}  quick={args.quick}")
        _print_verify_table(rows)
        print(f"{sum(r.passed for r in rows)}/{len(rows)} claims pass")
    return 0 if ok else 1


#: Seconds between two "still running" lines of ``verify`` on stderr.
VERIFY_HEARTBEAT_EVERY = 30.0


class VerifyTimeout(ValueError):
    """``verify --timeout``: the checks took longer than allowed (exit 2; the message names the
    declaration's level that was running)."""


def _run_claims_watched(run_claims, args: argparse.Namespace, rng, **kwargs) -> list:
    """``run_claims(rng, quick=..., **kwargs)`` with progress on stderr (a line as each declaration's
    level starts, with the elapsed time, and every :data:`VERIFY_HEARTBEAT_EVERY` seconds while it
    runs) and, with ``--timeout SECONDS``, a :class:`VerifyTimeout` naming the level running when
    the time ran out (SIGALRM: the main thread, POSIX)."""
    import signal
    import time

    from lsa_theory.experiments.io import Heartbeat

    t0 = time.perf_counter()
    stage = ["start"]

    def progress(line: str) -> None:
        stage[0] = line
        print(f"verify: {line} ({time.perf_counter() - t0:.1f} s)", file=sys.stderr, flush=True)

    def beat(t: float) -> str:
        return f"verify: still running {stage[0]} ({time.perf_counter() - t0:.0f} s)"

    timeout = getattr(args, "timeout", None)
    if timeout is not None:

        def expired(signum, frame):
            raise VerifyTimeout(f"--timeout: {timeout:g} s elapsed while checking {stage[0]}")

        previous = signal.signal(signal.SIGALRM, expired)
        signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        with Heartbeat(beat, VERIFY_HEARTBEAT_EVERY):
            return run_claims(rng, quick=args.quick, progress=progress, **kwargs)
    finally:
        if timeout is not None:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)


def _check_verify(args: argparse.Namespace) -> None:
    """``verify``'s options: ``--timeout`` positive and finite."""
    t = getattr(args, "timeout", None)
    if t is not None and not (math.isfinite(t) and t > 0):
        raise ValueError(f"--timeout: expected seconds > 0, got {t:g}")


#: Width of ``verify``'s table (the check's text wraps onto further lines; ``--json`` keeps it whole).
TABLE_WIDTH = 100


def _print_verify_table(rows: list) -> None:
    """``verify``'s table in at most :data:`TABLE_WIDTH` columns: claim, check (wrapped), residual,
    tol, result; the numbers on the check's first line."""
    import textwrap

    claim_w = max([5, *(len(r.claim) for r in rows)])
    fixed = claim_w + 2 + 2 + 10 + 2 + 8 + 2 + 6
    width = max(20, min(max([5, *(len(r.check) for r in rows)]), TABLE_WIDTH - fixed))
    print(f"{'claim':<{claim_w}}  {'check':<{width}}  {'residual':>10}  {'tol':>8}  result")
    for r in rows:
        lines = textwrap.wrap(r.check, width, break_long_words=True) or [""]
        print(
            f"{r.claim:<{claim_w}}  {lines[0]:<{width}}  {r.residual:>10.2e}  {r.tol:>8.0e}  "
            f"{'pass' if r.passed else 'FAIL'}"
        )
        for more in lines[1:]:
            print(f"{'':<{claim_w}}  {more}")


def _load_user_module(path: str) -> tuple[list, dict]:
    """The Algorithm declarations of the user's file ``path`` (:func:`lsa_theory.constructions.load_module`,
    whose ValueErrors name the file, the line and the failure) and what identifies it: ``{"path":
    absolute path, "sha256": of its bytes}`` (read before the import). Every failure is a
    ValueError starting ``--module:``."""
    from pathlib import Path

    from lsa_theory.experiments.io import file_sha256

    file = Path(path)
    try:
        digest = file_sha256(file) if file.is_file() else None
    except ValueError as exc:  # unreadable
        raise ValueError(f"--module: {exc}") from None
    try:
        algorithms = constructions.load_module(path)
    except ValueError as exc:  # every message of load_module starts "module:"
        raise ValueError(f"--{exc}") from None
    return algorithms, {"path": str(file.resolve()), "sha256": digest}


def _print_table(rows: list[dict], columns: list[tuple[str, str]]) -> None:
    def fmt(v, spec):
        if v is None:
            return "nan"
        return format(v, spec) if spec else str(v)

    cells = [[fmt(r.get(k), spec) for k, spec in columns] for r in rows]
    widths = [max([len(k), *(len(c[i]) for c in cells)]) for i, (k, _) in enumerate(columns)]
    print("  ".join(k.rjust(w) for (k, _), w in zip(columns, widths, strict=True)))
    for c in cells:
        print("  ".join(v.rjust(w) for v, w in zip(c, widths, strict=True)))


def _converge_config(args: argparse.Namespace):
    """The :class:`ConvergeConfig` of ``converge``'s options, ``--seed`` applied (ValueError naming
    ``--algo`` or ``--module``); also its precheck: built before ``--out`` is touched, so a
    configuration error writes nothing."""
    from lsa_theory.experiments.converge import ConvergeConfig

    names = constructions.ALGORITHMS.with_capability(constructions.ClosedLoopAlgorithm)
    if args.module is None and args.algo not in names:
        raise ValueError(
            f"--algo: expected a registered closed-loop algorithm {names} (or pass --module FILE.py), "
            f"got {args.algo!r}"
        )
    cfg = (
        ConvergeConfig.quick(args.algo, args.module)
        if args.quick
        else ConvergeConfig.full(args.algo, args.module)
    )
    if args.seed is not None:  # --seed N: the seeds N, N + 1, ... in place of 0, 1, ...
        cfg = dataclasses.replace(cfg, seeds=tuple(args.seed + i for i in range(len(cfg.seeds))))
    return cfg


def _check_converge(args: argparse.Namespace) -> None:
    """``converge``'s options, before anything is written."""
    _converge_config(args)


def _diversity_config(args: argparse.Namespace):
    """The :class:`DiversityConfig` of ``diversity``'s options (also its precheck)."""
    from lsa_theory.experiments.diversity import DiversityConfig

    cfg = DiversityConfig.quick() if args.quick else DiversityConfig()
    return cfg if args.seed is None else dataclasses.replace(cfg, seed=args.seed)


def _regression_config(args: argparse.Namespace):
    """The :class:`RegressionConfig` of ``regression``'s options (also its precheck)."""
    from lsa_theory.experiments.regression import RegressionConfig

    heads, attention = getattr(args, "heads", 1), getattr(args, "attention", "linear")
    if heads < 1:
        raise ValueError(f"--heads: must be >= 1, got {heads}")
    if attention not in ATTENTIONS:
        raise ValueError(f"--attention: expected one of {', '.join(ATTENTIONS)}, got {attention!r}")
    cfg = RegressionConfig.quick(attention) if args.quick else RegressionConfig()
    cfg = dataclasses.replace(
        cfg, law=getattr(args, "law", cfg.law), covariates=getattr(args, "covariates", cfg.covariates)
    )
    cfg = dataclasses.replace(cfg, heads=heads, attention=attention)
    return cfg if args.seed is None else dataclasses.replace(cfg, seed=args.seed)


def _autoregressive_config(args: argparse.Namespace):
    """The :class:`ARConfig` of ``autoregressive``'s options (also its precheck)."""
    from lsa_theory.experiments.autoregressive import ARConfig

    cfg = ARConfig.quick() if args.quick else ARConfig()
    return cfg if args.seed is None else dataclasses.replace(cfg, seed=args.seed)


def _distill_config(args: argparse.Namespace):
    """The :class:`DistillConfig` of ``distill``'s options (also its precheck)."""
    from lsa_theory.experiments.distill import DistillConfig
    from lsa_theory.experiments.distill.train import TrainConfig

    kind = TrainConfig if args.mode == "train" else DistillConfig
    cfg = kind.quick() if args.quick else kind.full()
    return cfg if args.seed is None else dataclasses.replace(cfg, seed=args.seed)


def _td_pretrain_config(args: argparse.Namespace):
    """The :class:`TDPConfig` of ``td-pretrain``'s options (also its precheck)."""
    from lsa_theory.experiments.td_pretrain import TDPConfig

    cfg = TDPConfig.quick() if args.quick else TDPConfig()
    return cfg if args.seed is None else dataclasses.replace(cfg, seed=args.seed)


def _attention_config(args: argparse.Namespace):
    """The :class:`AttentionConfig` of ``attention``'s options (also its precheck); ValueError naming
    ``--heads`` or ``--attention``."""
    from lsa_theory import ATTENTIONS
    from lsa_theory.experiments.attention import AttentionConfig

    cfg = AttentionConfig.quick() if args.quick else AttentionConfig.full()
    if args.seed is not None:
        cfg = cfg.replace(seed=args.seed)
    if args.heads is not None:
        if any(h < 1 for h in args.heads):
            raise ValueError(f"--heads: every number of heads must be >= 1, got {args.heads}")
        cfg = cfg.replace(heads=tuple(dict.fromkeys(args.heads)))
    if args.attention is not None:
        bad = [a for a in args.attention if a not in ATTENTIONS]
        if bad:
            raise ValueError(f"--attention: expected names from {' '.join(ATTENTIONS)}, got {bad[0]!r}")
        cfg = cfg.replace(attentions=tuple(dict.fromkeys(args.attention)))
    return cfg


def _depth_config(args: argparse.Namespace):
    """The :class:`DepthConfig` of ``depth``'s options (also its precheck): ``--seed`` the data seed,
    ``--seeds`` the training seeds."""
    from lsa_theory.experiments.depth import DepthConfig

    cfg = DepthConfig.quick() if args.quick else DepthConfig.full()
    if args.seeds is not None:
        if any(s < 0 for s in args.seeds):
            raise ValueError(f"--seeds: every seed must be >= 0, got {args.seeds}")
        if len(set(args.seeds)) != len(args.seeds):
            raise ValueError(f"--seeds: repeated seeds in {args.seeds}")
        if any(s > 2**32 - 1 for s in args.seeds):
            raise ValueError(f"--seeds: every seed must be <= {2**32 - 1}, got {args.seeds}")
        cfg = dataclasses.replace(cfg, seeds=tuple(args.seeds))
    return cfg if args.seed is None else dataclasses.replace(cfg, seed=args.seed)


def _context_length_config(args: argparse.Namespace):
    """The configuration :func:`lsa_theory.experiments.context_length.run_context_length` builds for
    ``context-length``'s options (its precheck: built, and so checked, before ``--out`` is touched)."""
    from lsa_theory.experiments.context_length import regime_config

    return regime_config(args.regime, args.quick, args.seed)


def _cmd_converge(args: argparse.Namespace) -> int:
    from lsa_theory.experiments.converge import plot_converge, run_converge

    cfg = _converge_config(args)
    out = args.out
    doc = run_converge(cfg, out)
    for run in doc["runs"]:
        run["passed"] = converge_passed(run)
    ok = all(r["passed"] for r in doc["runs"])
    if out is not None:
        plot_converge(out)
    if args.json:
        extra = {k: doc[k] for k in ("unrealisable", "radius_sweep", "radius_max_reached")}
        # provenance from _print_json: the config has ``seeds``, no ``seed``, so it records --seed
        _print_json(args, {"runs": doc["runs"], **extra, "config": doc["config"], "passed": ok})
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
                ("rate_ratio_a_priori", ".4f"),
                ("pl_min_ratio", ".4f"),
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
        if doc["unrealisable"]:
            print("unrealisable targets (L* > 0; reported, not evidence for (M6)):")
            cols = [("seed", ""), ("noise", "g"), ("loss_star", ".2e"), ("rate_ratio_a_priori", ".4f")]
            _print_table(doc["unrealisable"], cols + [("rate_ratio_limit", ".4f"), ("converged", "")])
        if doc["radius_sweep"]:
            print(f"radius sweep (c = 1): largest radius reaching the manifold {doc['radius_max_reached']}")
            cols = [("seed", ""), ("radius", "g"), ("reached", ""), ("dist_final", ".1e")]
            _print_table(doc["radius_sweep"], cols + [("c_final", ".6f"), ("pl_min_ratio", ".4f")])
    return 0 if ok else 1


def _cmd_diversity(args: argparse.Namespace) -> int:
    from lsa_theory.experiments.diversity import plot_diversity, run_diversity

    doc = run_diversity(_diversity_config(args), args.out)
    for row in doc["rows"]:
        row["passed"] = diversity_passed(row)
    ok = all(r["passed"] for r in doc["rows"])
    if args.out is not None:
        plot_diversity(args.out)
    if args.json:
        body = {"rows": doc["rows"], "config": doc["config"], "passed": ok, "provenance": _provenance(args)}
        _print_json(args, body)
    else:
        _print_table(
            doc["rows"],
            [
                ("table", ""),
                ("S", ""),
                ("A", ""),
                ("d", ""),
                ("k", ""),
                ("frames", ""),
                ("features", ""),
                ("shared_features", ""),
                ("reward", ""),
                ("kernel_certified", ""),
                ("ker_dim", ""),
                ("tangent_dim", ""),
                ("ker_dim_threshold", ""),
                ("float_kernel_max", ".1e"),
                ("float_nonzero_min", ".1e"),
                ("heldout_err", ".2e"),
                ("passed", ""),
            ],
        )
        print(
            f"{sum(r['passed'] for r in doc['rows'])}/{len(doc['rows'])} rows with a certified kernel "
            "equal to the (M4) tangent (or to the rank bound where the data are below it)"
        )
        for r in doc["rows"]:
            if r["rank_warning"] or not r["kernel_certified"]:
                print(
                    f"  k={r['k']} frames={r['frames']} d={r['d']}: {r['rank_warning'] or r['kernel_reason']}"
                )
    return 0 if ok else 1


def _trained_weights(out: str | None) -> str:
    """Path of trained weights for ``--weights trained``: ``<out>/training/seed0/train.npz`` (where
    ``lsa-theory reproduce`` puts them), trained there first with the [LL] configuration
    ``TrainConfig.full()`` (about a minute; it resumes) if it does not exist."""
    from pathlib import Path

    from lsa_theory.experiments.reproduce import trained_weights
    from lsa_theory.experiments.training import TrainConfig, train

    path = trained_weights(Path(out if out is not None else "results") / "control")  # the control part
    if not path.exists():
        train(TrainConfig.full(), path.parent)
    return str(path)


def _check_control(args: argparse.Namespace) -> None:
    """``control``'s options, before anything is written: the configuration builds
    (:func:`_control_config`, e.g. ``--updates 0`` is refused) and ``--weights PATH`` is an
    ``.npz`` file holding arrays ``P`` and ``V`` that resolve to a block of the held-out family's
    size (a pair or ``H`` heads with an optional ``attention``,
    :func:`lsa_theory.experiments.control.resolve_weights`; ValueError naming ``--weights`` and the
    file)."""
    from lsa_theory.experiments.control import deployment_dims, resolve_weights
    from lsa_theory.experiments.envs import heldout_family
    from lsa_theory.experiments.io import check_npz_arrays

    cfg = _control_config(args, "trained.npz" if args.weights == "trained" else args.weights)
    if args.weights not in ("constructed", "trained", "teacher"):
        check_npz_arrays(args.weights, "--weights")
        mdp = next(heldout_family(1))  # a file's block runs on the held-out family only
        alg = cfg.algorithm(args.algo)
        try:
            dims, _ = deployment_dims(
                alg, mdp.n_states, mdp.n_actions, args.weights, None, cfg.alpha, cfg.beta
            )
            resolve_weights(args.weights, dims.layout)
        except ValueError as exc:
            inner = str(exc).removeprefix("weights: ")
            where = "" if str(args.weights) in inner else f"{args.weights}: "
            raise ValueError(f"--weights: {where}{inner}") from None


def _control_config(args: argparse.Namespace, weights: str):
    """The :class:`ControlConfig` of ``control``'s options with the block ``weights``."""
    from lsa_theory.experiments.control import ControlConfig
    from lsa_theory.experiments.envs import HELDOUT_NAME

    cfg = ControlConfig.quick() if args.quick else ControlConfig()
    if args.module is not None:
        cfg = dataclasses.replace(cfg, module=args.module)
    names = constructions.ALGORITHMS.with_capability(constructions.ClosedLoopAlgorithm)
    if args.algo not in names and args.algo not in cfg.user_algorithms():
        where = f" or declared in {args.module}" if args.module is not None else " (or pass --module FILE.py)"
        raise ValueError(
            f"--algo: expected a registered closed-loop algorithm {names}{where}, got {args.algo!r}"
        )
    alg = cfg.algorithm(args.algo)
    if args.weights == "trained" and args.module is not None:
        raise ValueError(
            "--weights trained: the trained block is the [LL] SARSA block, not a --module algorithm's"
        )
    if args.weights == "trained" and alg.has_actor:
        raise ValueError(
            f"--weights trained: the trained block is the [LL] SARSA block; for --algo {args.algo} pass "
            "'constructed' or a .npz with P, V of the (A1) size"
        )
    if args.weights == "teacher":
        raise ValueError("--weights teacher: the exact teacher is the baseline of every run (column teacher)")
    changes = {"weights": weights}
    if args.seed is not None:
        changes["seed"] = args.seed
    if alg.has_actor:  # actor-based algorithms: the [LL] family
        changes.update(
            envs=(HELDOUT_NAME,),
            actor_critic_envs=(HELDOUT_NAME,),
            env_algos=(),
            actor_critic_algos=(args.algo,),
        )
    else:
        changes.update(env_algos=(args.algo,), actor_critic_envs=())
        if weights != "constructed":
            # a trained block has the D of the MDPs it was trained on: the [LL] family only
            changes["envs"] = (HELDOUT_NAME,)
    if args.updates is not None:
        changes["n_updates"] = args.updates
    return dataclasses.replace(cfg, **changes)


def _cmd_control(args: argparse.Namespace) -> int:
    from lsa_theory.experiments.control import plot_control, run_control

    _control_config(args, args.weights)  # the refusals, before training a block for 'trained'
    weights = _trained_weights(args.out) if args.weights == "trained" else args.weights
    cfg = _control_config(args, weights)
    out = None if args.out is None else f"{args.out}/control"
    doc = run_control(cfg, out)
    if out is not None:
        plot_control(out)
    envs = [e for e in doc["envs"] if e["algo"] == args.algo]
    for e in envs:
        e["passed"] = control_passed(e)
    ok = all(e["passed"] for e in envs)
    if args.json:
        body = {"envs": envs, "config": doc["config"], "passed": ok, "provenance": _provenance(args)}
        _print_json(args, body)
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
                ("passed", ""),
            ],
        )
    return 0 if ok else 1


def _cmd_regression(args: argparse.Namespace) -> int:
    from lsa_theory.experiments.regression import CRITERIA, plot_regression, run_regression

    doc = run_regression(_regression_config(args), args.out)
    if args.out is not None:
        plot_regression(args.out)
    if args.json:
        _print_json(args, doc)
    else:
        cols = [("d", ""), ("N", ""), ("kappa", "g"), ("rel_err", ".1e"), ("loss_gap", ".1e")]
        cols += [("rate_ratio", ".5f"), ("ker_dim", ""), ("conserved_drift", ".1e"), ("passed", "")]
        _print_table(doc["configs"], cols)
        _print_table(doc["sampled"], [("F", ""), ("rel_err", ".3e"), ("to_sample_minimiser", ".1e")])
        print(f"slope {doc['slope']:.3f} (expected -0.5)")
        _print_table(
            doc["trained"],
            [
                ("L", ""),
                ("param", ""),
                ("test_loss", ".4f"),
                ("test_loss_as_pgd", ".4f"),
                ("one_layer_optimum", ".4f"),
            ],
        )
        print(f"checks {doc['checks']}; criteria {CRITERIA}")
    return 0 if doc["passed"] else 1


def _cmd_distill(args: argparse.Namespace) -> int:
    from lsa_theory.experiments.distill import plot_distill, run_distill

    if args.mode == "train":
        return _cmd_distill_train(args)
    doc = run_distill(_distill_config(args), args.out)
    if args.out is not None:
        plot_distill(args.out)
    if args.json:
        _print_json(args, doc)
        return 0 if doc["passed"] else 1
    _print_verify_table([constructions.Row(**r) for r in doc["verify"]])
    cfg = doc["config"]
    print(f"(AD3): {cfg['n_mdps']} held-out MDPs, H = {cfg['H']}, K = {cfg['K']}; greedy normalised return")
    for name, a in doc["agents"].items():
        r = a["return_by_episode"]
        marks = [k for k in (1, 2, 5, 10, 20, 40) if k <= len(r)]
        print(f"  {name:<9}" + "  ".join(f"k={k}: {r[k - 1]:.3f}" for k in marks))
    for key, (m, lo, hi) in doc["paired"].items():
        print(f"  {key}: {m:+.3f} [{lo:+.3f}, {hi:+.3f}]")
    return 0 if doc["passed"] else 1


def _cmd_distill_train(args: argparse.Namespace) -> int:
    from pathlib import Path

    from lsa_theory.experiments.distill.train import run_train
    from lsa_theory.experiments.io import atomic_write_json

    doc = run_train(_distill_config(args))
    if args.out is not None:
        atomic_write_json(Path(args.out) / "distill-train.json", doc)
    if args.json:
        _print_json(args, doc)
        return 0 if doc["passed"] else 1
    _print_table(
        doc["runs"],
        [("k", ""), ("L", ""), ("masked", ""), ("seed", ""), ("heldout_err", ".3g"), ("train_err", ".3g"),
         ("cos_S3", ".4f"), ("late_return", ".3f")],
    )  # fmt: skip
    for c in doc["constructed"]:
        print(f"constructed (S3) stack, masked = {c['masked']}: held-out error {c['heldout_err']:.3g} "
              f"(step {c['step']}, L = {c['L']})")  # fmt: skip
    if doc["verify"]:
        _print_verify_table([constructions.Row(**r) for r in doc["verify"]])
    return 0 if doc["passed"] else 1


def _cmd_attention(args: argparse.Namespace) -> int:
    from lsa_theory.experiments.attention import plot_attention, run_attention

    doc = run_attention(_attention_config(args), args.out)
    if args.out is not None:
        plot_attention(args.out)
    if args.json:
        _print_json(args, doc)
    else:
        _print_table(
            doc["construction"]["rows"],
            [("block", ""), ("c", ".0e"), ("heldout_err", ".3g"), ("update_corr", ".4f")],
        )
        cols = [("attention", ""), ("heads", ""), ("seed", ""), ("loss_final", ".3g"), ("heldout_err", ".3g")]
        cols += [("update_corr", ".4f"), ("s3_share", ".3f"), ("op_cos", ".4f"), ("diverged", "")]
        _print_table(doc["runs"], cols + [("wall_time", ".1f")])
    return 0 if doc["all_listed"] else 1


def _cmd_depth(args: argparse.Namespace) -> int:
    from lsa_theory.experiments.depth import plot_depth, run_depth

    doc = run_depth(_depth_config(args), args.out)
    if args.out is not None:
        plot_depth(args.out)
    if args.json:
        _print_json(args, doc)
        return 0 if doc["passed"] else 1
    _print_table(
        doc["regression"]["summary"],
        [("study", ""), ("L", ""), ("N", ""), ("param", ""), ("runs", ""), ("diverged", ""), ("mean", ".4g"),
         ("sd", ".2g")],
    )  # fmt: skip
    _print_table(
        doc["regression"]["baselines"],
        [("study", ""), ("L", ""), ("N", ""), ("method", ""), ("heldout_loss", ".4g"), ("heldout_se", ".2g")],
    )  # fmt: skip
    _print_table(
        doc["td"]["summary"],
        [("kind", ""), ("L", ""), ("mode", ""), ("runs", ""), ("diverged", ""), ("mean", ".4g"),
         ("sd", ".2g")],
    )  # fmt: skip
    _print_table(
        doc["td"]["baselines"],
        [("kind", ""), ("method", ""), ("L", ""), ("n", ""), ("alpha", ".4g"), ("heldout_err", ".4g"),
         ("heldout_se", ".2g")],
    )  # fmt: skip
    print(f"counts {doc['counts']}; passed {doc['passed']}")
    return 0 if doc["passed"] else 1


def _cmd_td_pretrain(args: argparse.Namespace) -> int:
    from lsa_theory.experiments.td_pretrain import plot_td_pretrain, run_td_pretrain

    doc = run_td_pretrain(_td_pretrain_config(args), args.out)
    if args.out is not None:
        plot_td_pretrain(args.out)
    if args.json:
        _print_json(args, doc)
    else:
        inv, st = doc["invariance"], doc["stationary"]
        print(
            f"(WP2) outside Fix at points of Fix {inv['outside_at_fix']:.2e} (round-off bound "
            f"{inv['bound_at_fix']:.1e}); off Fix {inv['outside_off_fix']:.2e}; mutated group at Fix "
            f"{inv['mutation_outside_at_fix']:.2e}"
        )
        _print_table(
            st["sizes"],
            [
                ("d", ""),
                ("n", ""),
                ("a_star", ".3f"),
                ("a_star_sem", ".3f"),
                ("b_star", ".3f"),
                ("b_star_sem", ".3f"),
                ("within_two_se", ""),
            ],
        )
        _print_table(
            doc["runs"],
            [
                ("k", ""),
                ("seed", ""),
                ("dist_fix", ".3f"),
                ("dist_w3", ".3f"),
                ("dist_theta_star", ".3f"),
                ("heldout_value_err", ".3f"),
                ("diverged", ""),
            ],
        )
        print(f"passed {doc['passed']}")
    return 0 if doc["passed"] else 1


def _cmd_autoregressive(args: argparse.Namespace) -> int:
    from lsa_theory.experiments.autoregressive import plot_autoregressive, run_autoregressive

    doc = run_autoregressive(_autoregressive_config(args), args.out)
    if args.out is not None:
        plot_autoregressive(args.out)
    if args.json:
        _print_json(args, doc)
    else:
        _print_verify_table([constructions.Row(**r) for r in doc["verify"]])
        g, th, dn = doc["gd_class"], doc["theta6"], doc["dense"]
        print(f"d = {doc['d']}, T = {doc['T']}, {doc['phase']} phase")
        print(
            f"GD class: c* = {g['c_star']:.12f}, L* = {g['loss_star']:.12f}, "
            f"flow's ab = {g['c_flow']:.12f}, fitted / a-priori rate = {g['rate_ratio_a_priori']:.5f}"
        )
        print(
            f"Theta_6: minimum {th['loss_min']:.12f}, "
            f"gradient along k12 at the GD point {th['grad_k12_at_gd']:.4f}"
        )
        print(f"dense flow from the GD-class start: {dn['loss_final']:.6f}; pushed along v2: "
              f"{dn['pushed']['loss_final']:.6f}; GD value {dn['gd_value']:.6f}")  # fmt: skip
    return 0 if doc["passed"] else 1


def _cmd_context_length(args: argparse.Namespace) -> int:
    from lsa_theory.experiments.context_length import run_context_length

    doc = run_context_length(args.regime, quick=args.quick, out=args.out, seed=args.seed)
    if args.json:
        _print_json(args, doc)
    elif args.regime == "in-context":
        _print_table(
            doc["rows"],
            [
                ("n", ""),
                ("L", ""),
                ("normalized_return", ".3f"),
                ("sem", ".3f"),
                ("value_error", ".3f"),
                ("n_diverged", ""),
            ],
        )
    else:
        _print_table(
            doc["rows"],
            [
                ("budget", ""),
                ("point", ""),
                ("alpha", ""),
                ("n", ""),
                ("normalized_return", ".3f"),
                ("sem", ".3f"),
                ("n_diverged", ""),
            ],
        )
    return 0


def _cmd_reproduce(args: argparse.Namespace) -> int:
    """Run :func:`lsa_theory.experiments.reproduce.reproduce`; the table of parts goes to stdout, or with
    ``--json`` to stderr (stdout then holds one JSON document: the summary with ``passed``,
    ``failed`` and ``provenance``). A failed part is named on stderr with its criterion and
    failing items."""
    from lsa_theory.experiments.reproduce import reproduce

    summary = reproduce(args.out, quick=args.quick, parts=args.parts, seed=args.seed, reuse=args.reuse)
    table = sys.stderr if args.json else sys.stdout
    for name, part in summary["parts"].items():
        if name in summary["skipped"]:
            print(f"{name:24} skipped (done in an earlier run, recorded in summary.json)", file=table)
        else:
            ok = {True: "", False: "  CHECK FAILED"}[part.get("ok", True)]
            print(f"{name:24} {part['seconds']:8.1f} s{ok}", file=table)
    print(f"summary: {args.out}/summary.json", file=table)
    for name, why in summary["failed"].items():
        failing = "; ".join(why["failing"][:5]) + (" ..." if len(why["failing"]) > 5 else "")
        print(
            f"lsa-theory reproduce: part {name} failed its check: {why['criterion']}"
            + (f"; failing: {failing}" if failing else ""),
            file=sys.stderr,
        )
    if args.json:
        _print_json(args, summary, args.seed)
    return 0 if summary["passed"] else 1
