"""``lsa-theory reproduce [--quick] [--out DIR]``: every claim of THEORY.md §6, figures and a summary.

Parts (each in its own sub-directory of ``DIR``, each resumable on its own):

| part | what | THEORY.md |
|---|---|---|
| ``verify`` | construction claims, numeric and sympy | (S4) (S5) (A4) (W3) (L2) (R2) (R3) (R4) |
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

__all__ = ["PARTS", "reproduce", "deployed_returns_by_k"]


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
    numbers = {"rows": [{c: r[c] for c in cols} for r in doc["rows"]]}
    if not quick:  # [LL]-sized blocks: deploy each on the held-out family
        numbers["returns"] = deployed_returns_by_k(out)["rows"]
    return numbers


def deployed_returns_by_k(sweep_out: str | Path, n_heldout: int = 20, n_updates: int = 1000) -> dict:
    """Normalised return (§0) on random-S9-A4 of every block a [LL]-sized
    :func:`experiments.training.diversity_training_sweep` saved under ``sweep_out``
    (``k{k}_{resampled|shared}/train.npz``), deployed frozen in the loop (S6) on ``n_heldout``
    held-out MDPs for ``n_updates`` updates. Writes ``sweep_out/returns_by_k.json`` and
    ``returns_by_k.png``; returns ``{"rows": [{"k", "shared_features", "normalized_return",
    "normalized_return_sem", "normalized_return_teacher"}, ...]}``."""
    import dataclasses

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .control import ControlConfig, run_control
    from .envs import HELDOUT_NAME

    sweep_out = Path(sweep_out)
    base = dataclasses.replace(
        ControlConfig(), envs=(HELDOUT_NAME,), actor_critic_envs=(), tabular=False,
        n_heldout=n_heldout, n_updates=n_updates,
    )  # fmt: skip
    rows = []
    for r in read_json(sweep_out / "diversity_training.json")["rows"]:
        path = sweep_out / f"k{r['k']}_{'shared' if r['shared_features'] else 'resampled'}" / "train.npz"
        env = run_control(dataclasses.replace(base, weights=str(path)))["envs"][0]
        rows.append(
            {
                "k": r["k"],
                "shared_features": r["shared_features"],
                "normalized_return": env["normalized_return"],
                "normalized_return_sem": env["normalized_return_sem"],
                "normalized_return_teacher": env["normalized_return_teacher"],
                "n_seeds": env["n_seeds"],
                "n_diverged": env["n_diverged"],
            }
        )
    doc = {"n_heldout": n_heldout, "n_updates": n_updates, "rows": rows, "versions": versions()}
    atomic_write_json(sweep_out / "returns_by_k.json", doc)
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
    for shared, style in ((False, "o-"), (True, "s--")):
        sel = [r for r in rows if r["shared_features"] == shared]
        label = "shared features" if shared else "resampled features"
        ax.errorbar(
            [r["k"] for r in sel],
            [np.nan if r["normalized_return"] is None else r["normalized_return"] for r in sel],
            yerr=[np.nan if r["normalized_return_sem"] is None else r["normalized_return_sem"] for r in sel],
            fmt=style,
            capsize=3,
            label=label,
        )
        ax2.plot([r["k"] for r in sel], [r["n_diverged"] / r["n_seeds"] for r in sel], style, label=label)
    if rows:
        ax.axhline(rows[0]["normalized_return_teacher"], color="k", lw=0.8, label="exact teacher")
    for a in (ax, ax2):
        a.set_xscale("log")
        a.set_xlabel("training MDPs k")
        a.legend(fontsize=8)
    ax.set_ylabel(f"normalised return after {n_updates} updates")
    ax.set_title("mean over held-out MDPs (missing: some loops diverged)", fontsize=9)
    ax2.set_ylabel("fraction of held-out MDPs where the loop diverged")
    ax2.set_title("(M7): trained block deployed on held-out MDPs", fontsize=9)
    fig.tight_layout()
    fig.savefig(sweep_out / "returns_by_k.png", dpi=120)
    plt.close(fig)
    return doc


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
    from .cli import control_passed

    cols = ("name", "algo", "weights", "updates", "normalized_return", "normalized_return_teacher", "n_seeds")
    return {"ok": all(control_passed(e) for e in rows), "envs": [{c: e[c] for c in cols} for e in rows]}


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
