"""``lsa-theory reproduce [--quick] [--out DIR]``: every claim of THEORY.md §6, figures and a summary.

Parts (each in its own sub-directory of ``DIR``, each resumable on its own):

| part | what | THEORY.md |
|---|---|---|
| ``verify`` | construction claims, numeric and sympy | (S4) (S5) (A4) (W3) (L2) |
| ``converge-sarsa``, ``converge-actor_critic`` | gradient flows near the manifold | (M3) (M4) (M6) |
| ``diversity`` | richness table and held-out cost | (M5) (M7) |
| ``training`` | Algorithm 1 on random MDPs, structure recovery | (S3) (S6) (M1) |
| ``training-diversity`` | training with few MDPs / shared features | (M7) |
| ``control`` | frozen block in the closed loop on held-out MDPs and gymnasium models | (S6) §6 |
| ``context-length`` | normalised return against the context length n | §6 [W] |

``summary.json`` records each finished part with its wall time and headline numbers; a rerun skips
finished parts (and an interrupted part resumes from its own partial results).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .io import atomic_write_json, read_json, versions

__all__ = ["PARTS", "reproduce"]


def _verify(out: Path, quick: bool) -> dict:
    from constructions.verify import run_claims

    rows = run_claims(np.random.default_rng(0), quick=quick)
    doc = {"rows": [r.as_dict() for r in rows], "seed": 0, "quick": quick}
    atomic_write_json(out / "verify.json", doc)
    return {
        "claims": len(rows),
        "passed": sum(r.passed for r in rows),
        "max_residual": max(r.residual for r in rows),
    }


def _converge(algo: str) -> Callable[[Path, bool], dict]:
    def part(out: Path, quick: bool) -> dict:
        from .cli import converge_passed
        from .converge import ConvergeConfig, plot_converge, run_converge

        cfg = ConvergeConfig.quick(algo) if quick else ConvergeConfig(algo=algo)
        runs = run_converge(cfg, out)["runs"]
        plot_converge(out)
        ratios = [r["rate_ratio"] for r in runs]
        return {
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
    return {
        "m5_kernels": [r["ker_dim"] for r in m5],
        "all_morse_bott": all(r["ker_dim"] == r["tangent_dim"] for r in rows),
        "heldout_err": {
            f"k={r['k']},{r['features']},shared={r['shared_features']},{r['reward']}": r["heldout_err"]
            for r in m5
        },
    }


def _training(out: Path, quick: bool) -> dict:
    from .training import TrainConfig, plot_training, train

    # the [LL] configuration itself (1000 MDPs, d = 36) takes about a minute, so quick uses it too:
    # its weights are what ``control`` deploys on random-S9-A4
    res = train(TrainConfig.full(), out)
    plot_training(out)
    keys = ("loss", "cos", "c", "manifold_dist", "heldout_err", "frozen_moved", "train_time")
    return {k: res.final[k] for k in keys if k in res.final}


def _training_diversity(out: Path, quick: bool) -> dict:
    from .training import QUICK_DIVERSITY_KS, TrainConfig, diversity_training_sweep, plot_diversity_training

    ks = QUICK_DIVERSITY_KS if quick else (1, 4, 16, 64, 256)
    base = TrainConfig.quick() if quick else TrainConfig.full()
    doc = diversity_training_sweep(ks=ks, base=base, out=out)
    plot_diversity_training(out)
    cols = ("k", "shared_features", "cos", "heldout_err", "invisible_dim")
    return {"rows": [{c: r[c] for c in cols} for r in doc["rows"]]}


def _control(out: Path, quick: bool) -> dict:
    import dataclasses

    from .control import ControlConfig, plot_control, run_control
    from .envs import HELDOUT_NAME

    cfg = ControlConfig.quick() if quick else ControlConfig()
    rows = run_control(cfg, out / "constructed")["envs"]
    plot_control(out / "constructed")
    trained = out.parent / "training" / "train.npz"
    if trained.exists():  # the trained [LL] block on the held-out family, 1000 updates
        tcfg = dataclasses.replace(
            ControlConfig(), envs=(HELDOUT_NAME,), actor_critic_envs=(), weights=str(trained)
        )
        if quick:
            tcfg = dataclasses.replace(tcfg, tabular=False)
        rows += run_control(tcfg, out / "trained")["envs"]
        plot_control(out / "trained")
    cols = ("name", "algo", "weights", "updates", "normalized_return", "normalized_return_teacher", "n_seeds")
    return {"envs": [{c: e[c] for c in cols} for e in rows]}


def _context_length(out: Path, quick: bool) -> dict:
    from .control import context_length_sweep, plot_context_length
    from .training import teacher_matching_vs_n

    ns = (2, 5, 10, 20, 40)
    doc = context_length_sweep(ns=ns, n_mdps=10 if quick else 20, n_updates=300, out=out)
    plot_context_length(out)
    cols = ("n", "normalized_return", "normalized_return_sem", "normalized_return_teacher")
    rows = [{c: r[c] for c in cols} for r in doc["rows"]]
    trained = out.parent / "training" / "train.npz"
    if trained.exists():  # teacher matching of the trained [LL] block (trained at n = 20) against n
        with np.load(trained) as z:
            match = teacher_matching_vs_n(z["P"], z["V"], ns=ns)
        atomic_write_json(out / "teacher_matching.json", {"rows": match, "weights": str(trained)})
        for r, m in zip(rows, match, strict=True):
            r["teacher_matching_err_trained"] = m["heldout_err"]
    return {"rows": rows}


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
}


def reproduce(out: str | Path, quick: bool = False, parts: list[str] | None = None) -> dict:
    """Run every part (or ``parts``) into ``out/<part>/``; ``out/summary.json`` is rewritten
    atomically after each part, and parts already recorded there (same ``quick``) are skipped."""
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
    for name in names:
        if summary["parts"].get(name, {}).get("done"):
            continue
        t0 = time.perf_counter()
        numbers = PARTS[name](out / name, quick)
        summary["parts"][name] = {"done": True, "seconds": time.perf_counter() - t0, **numbers}
        atomic_write_json(out / "summary.json", summary)
    return summary
