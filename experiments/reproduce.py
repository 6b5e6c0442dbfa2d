"""``lsa-theory reproduce [--quick] [--out DIR]``: every claim of docs/theory.md §6, figures and a summary.

Parts (each in its own sub-directory of ``DIR``, each resumable on its own):

| part | what | docs/theory.md |
|---|---|---|
| ``verify`` | construction claims, numeric and sympy | (S4) (S5) (A4) (W3) (L2) (R2) (R3) (R4) |
| ``converge-sarsa``, ``converge-actor_critic`` | gradient flows near the manifold | (M3) (M4) (M6) |
| ``diversity`` | richness table and held-out cost | (M5) (M7) |
| ``training`` | Algorithm 1 on random MDPs, structure recovery | (S3) (S6) (M1) |
| ``training-diversity`` | training with few MDPs / shared features | (M7) |
| ``control`` | frozen block in the closed loop on held-out MDPs and gymnasium models | (S6) §6 |
| ``context-length`` | closed loop (updates, steps, alpha) and one long context (stack, TD) | §6 [W] |

``summary.json`` records each finished part with its wall time and headline numbers; a rerun skips
finished parts (and an interrupted part resumes from its own partial results).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .io import atomic_write_json, read_json, versions
from .training_sweeps import deployed_returns_by_k, plot_returns_by_k

__all__ = ["PARTS", "TRAIN_SEEDS", "reproduce", "deployed_returns_by_k", "trained_weights"]


def _verify(out: Path, quick: bool) -> dict:
    from constructions.verify import run_claims

    rows = run_claims(np.random.default_rng(0), quick=quick)
    doc = {"rows": [r.as_dict() for r in rows], "seed": 0, "quick": quick}
    atomic_write_json(out / "verify.json", doc)
    return {
        "ok": all(r.passed for r in rows),
        "claims": len(rows),
        "passed": sum(r.passed for r in rows),
        "max_residual": max(r.residual for r in rows),
    }


def _converge(algo: str) -> Callable[[Path, bool], dict]:
    def part(out: Path, quick: bool) -> dict:
        from .cli import converge_passed
        from .converge import ConvergeConfig, plot_converge, run_converge

        cfg = ConvergeConfig.quick(algo) if quick else ConvergeConfig.full(algo)
        runs = run_converge(cfg, out)["runs"]
        plot_converge(out)
        ratios = [r["rate_ratio"] for r in runs]
        prior = [r["rate_ratio_a_priori"] for r in runs]
        return {
            "ok": all(converge_passed(r) for r in runs),
            "rate_ratio_a_priori_min": min(prior),
            "rate_ratio_a_priori_max": max(prior),
            "pl_min_ratio": min(r["pl_min_ratio"] for r in runs),
            "runs": len(runs),
            "passed": sum(converge_passed(r) for r in runs),
            "rate_ratio_min": min(ratios),
            "rate_ratio_max": max(ratios),
            "dist_final_max": max(r["dist_final"] for r in runs),
            "conserved_drift_max": max(r["conserved_drift"] for r in runs),
        }

    return part


def _diversity(out: Path, quick: bool) -> dict:
    from .diversity import DiversityConfig, plot_diversity, run_diversity

    rows = run_diversity(DiversityConfig.quick() if quick else DiversityConfig(), out)["rows"]
    plot_diversity(out)
    m5 = [r for r in rows if r["table"] == "M5"]
    from .cli import diversity_passed

    return {
        "ok": all(diversity_passed(r) for r in rows),
        "m5_kernels": [r["ker_dim"] for r in m5],
        "all_morse_bott": all(r["ker_dim"] == r["tangent_dim"] for r in rows if not r["rank_limited"]),
        "all_certified": all(r["kernel_certified"] for r in rows),
        "heldout_err": {
            f"k={r['k']},{r['features']},shared={r['shared_features']},{r['reward']}": r["heldout_err"]
            for r in m5
        },
    }


#: Training seeds behind every training table and figure (issue 10: at least three).
TRAIN_SEEDS = (0, 1, 2)


def trained_weights(out: Path) -> Path:
    """``train.npz`` of the [LL] training run (seed 0) that ``control`` and ``context-length``
    deploy, given the directory of one part of :func:`reproduce`."""
    return out.parent / "training" / "seed0" / "train.npz"


def _training_runs(quick: bool) -> dict:
    """The training groups of the ``training`` part: name -> (base config, seeds).

    ``random``: the [LL] configuration (:meth:`TrainConfig.full`) from a random initialisation,
    three seeds (quick: seed 0 only in every group; seed 0 of this one is the block ``control``
    deploys). ``random_small``: S = A = 3
    (:meth:`TrainConfig.quick`) from a random initialisation; ``invariant``: the same from an
    initialisation on the invariant set ``{P22 = 0, Vbar22 = 0}`` of (M2). ``actor_critic``: (A3)
    with the state-value critic of THEORY §3 (``d = S = 3`` state features ``psi``, fed as
    ``phi[s, a] = psi[s]``), actor features ``d_pi = S A = 9``, S = A = 3.
    The last three run at S = A = 3 (an [LL]-sized training takes minutes on the shared machine).
    """
    from .training import TrainConfig

    full, small = TrainConfig.full(), TrainConfig.quick()
    ac = TrainConfig.quick("actor_critic").replace(critic="state", d=3, d_pi=9)
    seeds = (0,) if quick else TRAIN_SEEDS
    return {
        "random": (full, seeds),
        "random_small": (small, seeds),
        "invariant": (small.replace(init="invariant"), seeds),
        "actor_critic": (ac, seeds),
    }


def _training(out: Path, quick: bool) -> dict:
    from .training import plot_training, plot_training_seeds, train_seeds

    numbers = {}
    for name, (base, seeds) in _training_runs(quick).items():
        sub = out if name == "random" else out / name
        doc = train_seeds(base, seeds, sub)
        plot_training_seeds(sub)
        plot_training(sub / f"seed{seeds[0]}")
        numbers[name] = {"seeds": list(seeds), "rows": doc["rows"]}
    return numbers


def _training_diversity(out: Path, quick: bool) -> dict:
    """(M7) by training at S = A = 3 (:meth:`TrainConfig.quick`, d = 9; 2560 frames over k MDPs),
    resampled and shared features; full: k in {1, 4, 16, 64, 256} and three seeds, each block then
    deployed on 20 held-out 3 x 3 MDPs for 300 updates; quick: k in {1, 16, 256}, seed 0, no
    deployment. (The [LL]-sized sweep, d = 36, three seeds: 30 [LL] trainings, about 35 min on 2 cores; it is
    not a part here, its commands and results are in ``docs/experiments.md`` and
    ``docs/figures/returns_by_k-full.json``.)"""
    from .training import (
        DIVERSITY_KS,
        QUICK_DIVERSITY_KS,
        TrainConfig,
        diversity_training_sweep,
        plot_diversity_training,
    )

    ks = QUICK_DIVERSITY_KS if quick else DIVERSITY_KS
    seeds = (0,) if quick else TRAIN_SEEDS
    doc = diversity_training_sweep(ks=ks, base=TrainConfig.quick(), out=out, seeds=seeds, total_frames=2560)
    plot_diversity_training(out)
    cols = ("seed", "k", "shared_features", "cos", "cos_full", "heldout_err", "invisible_dim")
    numbers = {"rows": [{c: r[c] for c in cols} for r in doc["rows"]]}
    if not quick:
        numbers["returns"] = deployed_returns_by_k(out, n_heldout=20, n_updates=300)["groups"]
        plot_returns_by_k(out)
    return numbers


def _control(out: Path, quick: bool) -> dict:
    import dataclasses

    from .control import ControlConfig, plot_control, run_control
    from .envs import HELDOUT_NAME

    cfg = ControlConfig.quick() if quick else ControlConfig()
    rows = run_control(cfg, out / "constructed")["envs"]
    plot_control(out / "constructed")
    trained = trained_weights(out)
    if trained.exists():  # the trained [LL] block on the held-out family, 1000 updates
        tcfg = dataclasses.replace(
            ControlConfig(), envs=(HELDOUT_NAME,), actor_critic_envs=(), weights=str(trained)
        )
        if quick:
            tcfg = dataclasses.replace(tcfg, tabular=False)
        rows += run_control(tcfg, out / "trained")["envs"]
        plot_control(out / "trained")
    from .cli import control_passed

    cols = ("name", "algo", "weights", "updates", "normalized_return", "normalized_return_teacher", "n_seeds")
    return {"ok": all(control_passed(e) for e in rows), "envs": [{c: e[c] for c in cols} for e in rows]}


def _context_length(out: Path, quick: bool) -> dict:
    from .context_length import run_context_length
    from .training import teacher_matching_vs_n

    numbers = {}
    for regime in ("closed-loop", "in-context"):
        doc = run_context_length(regime, quick=quick, out=out)
        cols = ("budget", "point", "alpha", "n", "L", "normalized_return", "sem", "value_error", "n_diverged")
        numbers[regime] = [{c: r[c] for c in cols if c in r} for r in doc["rows"]]
        if regime == "in-context":
            numbers["in-context-td"] = [
                {c: r[c] for c in ("n", "L", "value_error", "sem")} for r in doc["td_rows"]
            ]
    trained = trained_weights(out)
    if trained.exists():  # teacher matching of the trained [LL] block (trained at n = 20) against n
        ns = (2, 5, 10, 20, 40)
        with np.load(trained) as z:
            match = teacher_matching_vs_n(z["P"], z["V"], ns=ns)
        atomic_write_json(out / "teacher_matching.json", {"rows": match, "weights": str(trained)})
        numbers["teacher_matching_trained"] = match
    return numbers


def _actor_critic_variants(out: Path, quick: bool) -> dict:
    from .actor_critic_variants import run_variants

    doc = run_variants(out, n_mdps=5 if quick else 20, n_updates=300 if quick else 1000)
    return {"rows": doc["rows"]}


#: Part name -> function(out_dir, quick) -> headline numbers.
PARTS: dict[str, Callable[[Path, bool], dict]] = {
    "verify": _verify,
    "converge-sarsa": _converge("sarsa"),
    "converge-actor_critic": _converge("actor_critic"),
    "diversity": _diversity,
    "training": _training,
    "control": _control,
    "training-diversity": _training_diversity,
    "context-length": _context_length,
    "actor-critic-variants": _actor_critic_variants,
}


def reproduce(out: str | Path, quick: bool = False, parts: list[str] | None = None) -> dict:
    """Run every part (or ``parts``) into ``out/<part>/``; ``out/summary.json`` is rewritten
    atomically after each part, and parts already recorded there (same ``quick``) are skipped and
    listed in ``summary["skipped"]``. ``summary["passed"]`` is False when a part with a check
    (``ok`` in its numbers: verify, converge, diversity, control) failed."""
    out = Path(out)
    names = list(PARTS) if parts is None else parts
    unknown = set(names) - set(PARTS)
    if unknown:
        raise ValueError(f"parts: unknown {sorted(unknown)}; choose from {list(PARTS)}")
    summary = {"quick": quick, "versions": versions(), "parts": {}}
    if (out / "summary.json").exists():
        prev = read_json(out / "summary.json")
        if prev.get("quick") == quick:
            summary["parts"] = prev.get("parts", {})
    summary["skipped"] = []
    for name in names:
        if summary["parts"].get(name, {}).get("done"):
            summary["skipped"].append(name)
            continue
        t0 = time.perf_counter()
        numbers = PARTS[name](out / name, quick)
        summary["parts"][name] = {"done": True, "seconds": time.perf_counter() - t0, **numbers}
        atomic_write_json(out / "summary.json", summary)
    summary["passed"] = all(summary["parts"][n].get("ok", True) for n in names if n in summary["parts"])
    return summary
