"""``lsa-theory reproduce [--quick] [--seed S] [--out DIR]``: every claim of docs/theory.md §6, figures
and a summary.

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

``summary.json`` records each finished part with its wall time, seed, headline numbers and the
sha256 of every file it wrote (``files``); a rerun skips finished parts whose files are intact,
recomputes a finished part whose files are missing, truncated or changed (each damaged file moved
to ``<file>.damaged``, one line on stderr), and an interrupted part resumes from its own partial
results. One process at a time per directory (:class:`lsa_theory.experiments.io.out_lock`): a second is
refused at once rather than overwriting the first one's ``summary.json`` updates.

**Seeds.** ``seed`` (``--seed S``, default 0) shifts every seed a part uses by ``S``: a part that
draws with seed 0 by default draws with ``S``, a seed tuple ``(0, 1, 2)`` becomes ``(S, S + 1, S + 2)``
(as ``converge --seed S`` does). ``S = 0`` is exactly the configuration the documented results were
made with. Every result document a part writes records its seed in its ``provenance`` (and
``config``), ``summary.json`` records ``S``, and a rerun in the same directory with another seed is
refused (``ValueError``) unless ``reuse``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from lsa_theory.checks import check_int

from .criteria import control_passed, converge_passed, diversity_passed
from .io import DamagedFile, Heartbeat, atomic_write_json, load_npz, out_lock, read_json, versions

__all__ = ["PARTS", "CRITERION", "TRAIN_SEEDS", "failure", "reproduce"]
__all__ += ["trained_weights"]


def _shift(seeds: tuple[int, ...], seed: int) -> tuple[int, ...]:
    """The seed tuple of a part under the base seed ``seed`` (module docstring)."""
    return tuple(int(s) + seed for s in seeds)


def _verify(out: Path, quick: bool, seed: int = 0) -> dict:
    from lsa_theory.constructions.verify import run_claims

    rows = run_claims(np.random.default_rng(seed), quick=quick)
    doc = {"rows": [r.as_dict() for r in rows], "seed": seed, "quick": quick}
    atomic_write_json(out / "verify.json", doc)
    return {
        "ok": all(r.passed for r in rows),
        "failing": [f"{r.claim} {r.check}" for r in rows if not r.passed],
        "claims": len(rows),
        "passed": sum(r.passed for r in rows),
        "max_residual": max(r.residual for r in rows),
    }


def _converge(algo: str) -> Callable[[Path, bool, int], dict]:
    def part(out: Path, quick: bool, seed: int = 0) -> dict:
        import dataclasses

        from .converge import ConvergeConfig, plot_converge, run_converge

        cfg = ConvergeConfig.quick(algo) if quick else ConvergeConfig.full(algo)
        cfg = dataclasses.replace(cfg, seeds=_shift(cfg.seeds, seed))
        runs = run_converge(cfg, out)["runs"]
        plot_converge(out)
        ratios = [r["rate_ratio"] for r in runs]
        failing = [r for r in runs if not converge_passed(r)]
        prior = [r["rate_ratio_a_priori"] for r in runs]
        return {
            "ok": all(converge_passed(r) for r in runs),
            "failing": [f"seed {r['seed']} c0 {r['c0']:g} radius {r['radius']:g}" for r in failing],
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


def _diversity(out: Path, quick: bool, seed: int = 0) -> dict:
    import dataclasses

    from .diversity import DiversityConfig, plot_diversity, run_diversity

    cfg = DiversityConfig.quick() if quick else DiversityConfig()
    rows = run_diversity(dataclasses.replace(cfg, seed=cfg.seed + seed), out)["rows"]
    plot_diversity(out)
    m5 = [r for r in rows if r["table"] == "M5"]
    failing = [r for r in rows if not diversity_passed(r)]
    return {
        "ok": all(diversity_passed(r) for r in rows),
        "failing": [f"{r['table']} k={r['k']} frames={r['frames']} d={r['d']}" for r in failing],
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


def trained_weights(out: Path, seed: int = 0) -> Path:
    """``train.npz`` of the [LL] training run (its first seed: ``seed``) that ``control`` and
    ``context-length`` deploy, given the directory of one part of :func:`reproduce`."""
    return out.parent / "training" / f"seed{seed}" / "train.npz"


def _training_runs(quick: bool, seed: int = 0) -> dict:
    """The training groups of the ``training`` part: name -> (base config, seeds).

    ``random``: the [LL] configuration (:meth:`TrainConfig.full`) from a random initialisation,
    three seeds (quick: seed 0 only in every group; seed 0 of this one is the block ``control``
    deploys; every seed shifted by ``seed``). ``random_small``: S = A = 3
    (:meth:`TrainConfig.quick`) from a random initialisation; ``invariant``: the same from an
    initialisation on the invariant set ``{P22 = 0, Vbar22 = 0}`` of (M2). ``actor_critic``: (A3)
    with the state-value critic of THEORY §3 (``d = S = 3`` state features ``psi``, fed as
    ``phi[s, a] = psi[s]``), actor features ``d_pi = S A = 9``, S = A = 3.
    The last three run at S = A = 3 (an [LL]-sized training takes minutes on the shared machine).
    """
    from .training import TrainConfig

    full, small = TrainConfig.full(), TrainConfig.quick()
    ac = TrainConfig.quick("actor_critic").replace(critic="state", d=3, d_pi=9)
    seeds = _shift((0,) if quick else TRAIN_SEEDS, seed)
    return {
        "random": (full, seeds),
        "random_small": (small, seeds),
        "invariant": (small.replace(init="invariant"), seeds),
        "actor_critic": (ac, seeds),
    }


def _training(out: Path, quick: bool, seed: int = 0) -> dict:
    from .training import plot_training, plot_training_seeds, train_seeds

    numbers = {}
    for name, (base, seeds) in _training_runs(quick, seed).items():
        sub = out if name == "random" else out / name
        doc = train_seeds(base, seeds, sub)
        plot_training_seeds(sub)
        plot_training(sub / f"seed{seeds[0]}")
        numbers[name] = {"seeds": list(seeds), "rows": doc["rows"]}
    return numbers


def _training_diversity(out: Path, quick: bool, seed: int = 0) -> dict:
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
    seeds = _shift((0,) if quick else TRAIN_SEEDS, seed)
    doc = diversity_training_sweep(ks=ks, base=TrainConfig.quick(), out=out, seeds=seeds, total_frames=2560)
    plot_diversity_training(out)
    cols = ("seed", "k", "shared_features", "cos", "cos_full", "heldout_err", "invisible_dim")
    numbers = {"rows": [{c: r[c] for c in cols} for r in doc["rows"]]}
    if not quick:
        from .training import deployed_returns_by_k, plot_returns_by_k

        numbers["returns"] = deployed_returns_by_k(out, n_heldout=20, n_updates=300, seed=seed)["groups"]
        plot_returns_by_k(out)
    return numbers


def _control(out: Path, quick: bool, seed: int = 0) -> dict:
    import dataclasses

    from .control import ControlConfig, plot_control, run_control
    from .envs import HELDOUT_NAME

    cfg = ControlConfig.quick() if quick else ControlConfig()
    rows = run_control(dataclasses.replace(cfg, seed=cfg.seed + seed), out / "constructed")["envs"]
    plot_control(out / "constructed")
    trained = trained_weights(out, seed)
    if trained.exists():  # the trained [LL] block on the held-out family, 1000 updates
        tcfg = ControlConfig()
        tcfg = dataclasses.replace(
            tcfg, envs=(HELDOUT_NAME,), actor_critic_envs=(), weights=str(trained), seed=tcfg.seed + seed
        )
        if quick:
            tcfg = dataclasses.replace(tcfg, tabular=False)
        rows += run_control(tcfg, out / "trained")["envs"]
        plot_control(out / "trained")
    cols = ("name", "algo", "weights", "updates", "normalized_return", "normalized_return_teacher", "n_seeds")
    failing = [f"{e['name']} {e['algo']} {e['weights']}" for e in rows if not control_passed(e)]
    return {"ok": not failing, "failing": failing, "envs": [{c: e[c] for c in cols} for e in rows]}


def _context_length(out: Path, quick: bool, seed: int = 0) -> dict:
    from .context_length import ClosedLoopConfig, InContextConfig, run_context_length
    from .training import teacher_matching_vs_n

    numbers = {}
    for regime, config in (("closed-loop", ClosedLoopConfig), ("in-context", InContextConfig)):
        doc = run_context_length(regime, quick=quick, out=out, seed=config.seed + seed)
        cols = ("budget", "point", "alpha", "n", "L", "normalized_return", "sem", "value_error", "n_diverged")
        numbers[regime] = [{c: r[c] for c in cols if c in r} for r in doc["rows"]]
        if regime == "in-context":
            numbers["in-context-td"] = [
                {c: r[c] for c in ("n", "L", "value_error", "sem")} for r in doc["td_rows"]
            ]
    trained = trained_weights(out, seed)
    if trained.exists():  # teacher matching of the trained [LL] block (trained at n = 20) against n
        ns = (2, 5, 10, 20, 40)
        with np.load(trained) as z:
            match = teacher_matching_vs_n(z["P"], z["V"], ns=ns, seed=seed)
        doc = {"rows": match, "weights": str(trained), "seed": seed}
        atomic_write_json(out / "teacher_matching.json", doc)
        numbers["teacher_matching_trained"] = match
    return numbers


def _actor_critic_variants(out: Path, quick: bool, seed: int = 0) -> dict:
    import dataclasses

    from . import actor_critic_variants as acv

    cfg = acv.Config.quick() if quick else acv.Config.full()
    doc = acv.run(dataclasses.replace(cfg, seed=seed), out)
    return {"rows": doc["rows"]}


#: Part name -> function(out_dir, quick, seed) -> headline numbers.
PARTS: dict[str, Callable[[Path, bool, int], dict]] = {
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


#: What a part with a check must meet (``ok`` in its numbers): named with the failing items when a
#: part fails (``summary["failed"]``, and the line ``lsa-theory reproduce`` prints).
CRITERION = {
    "verify": "every claim's residual <= its tol (lsa_theory.constructions.verify)",
    "converge-sarsa": "every run converge_passed (lsa_theory.experiments.criteria.CRITERIA: converged, "
    "dist_final, rate ratios, pl_min_ratio, conserved_drift)",
    "diversity": "every row's certified kernel dimension = max(tangent_dim, size - rank_rows) (M5)",
    "control": "the constructed block equals the exact teacher within round-off (block_equals_teacher)",
}
CRITERION["converge-actor_critic"] = CRITERION["converge-sarsa"]


def failure(name: str, numbers: dict) -> dict | None:
    """``{"criterion", "failing"}`` of a part whose check failed (``numbers["ok"]`` False), else
    ``None``: the criterion of :data:`CRITERION` and the items that missed it (claims, runs, rows
    or environments)."""
    if numbers.get("ok", True):
        return None
    return {"criterion": CRITERION.get(name, "its check"), "failing": list(numbers.get("failing", []))}


#: Seconds between two "part running" lines on stderr (:class:`lsa_theory.experiments.io.Heartbeat`).
HEARTBEAT_EVERY = 30.0


def _sha256(path: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _part_files(part_dir: Path) -> dict[str, str]:
    """sha256 of every file a part left in ``part_dir`` (relative POSIX path -> hex digest),
    leaving out hidden files (temporary files of an atomic write, locks) and set-aside ``.damaged``
    copies: recorded in ``summary.json`` when the part finishes."""
    if not part_dir.is_dir():
        return {}
    return {
        f.relative_to(part_dir).as_posix(): _sha256(f)
        for f in sorted(part_dir.rglob("*"))
        if f.is_file()
        and not any(x.startswith(".") for x in f.relative_to(part_dir).parts)
        and not f.name.endswith(".damaged")
    }


def _damaged_files(part_dir: Path, record: dict) -> dict[Path, str]:
    """Files of a finished part that are not as it left them: path -> what is wrong. With the
    ``files`` digests of its ``summary.json`` record: every recorded file missing or with another
    sha256 (truncated, overwritten). Records written before the digests: every ``.json`` and
    ``.npz`` of the part that does not read back (:func:`lsa_theory.experiments.io.read_json`,
    :func:`lsa_theory.experiments.io.load_npz`)."""
    bad: dict[Path, str] = {}
    files = record.get("files")
    if isinstance(files, dict):
        for rel, digest in files.items():
            f = part_dir / rel
            if not f.is_file():
                bad[f] = "missing"
            elif _sha256(f) != digest:
                bad[f] = "changed since the part finished (truncated or overwritten)"
        return bad
    for f in sorted(part_dir.rglob("*")) if part_dir.is_dir() else ():
        if f.name.startswith(".") or f.suffix not in (".json", ".npz"):
            continue
        try:
            read_json(f) if f.suffix == ".json" else load_npz(f)
        except DamagedFile as exc:
            bad[f] = exc.problem
    return bad


def _set_aside(bad: dict[Path, str], name: str) -> None:
    """Move damaged files to ``<file>.damaged`` (kept, not deleted) so the part recomputes them,
    with one line per file on stderr."""
    import os
    import sys

    for f, problem in bad.items():
        if f.is_file():
            os.replace(f, f.with_name(f.name + ".damaged"))
            note = f"moved to {f.name}.damaged"
        else:
            note = "recomputed"
        print(f"reproduce: part {name}: {f} {problem}; {note}, recomputing the part", file=sys.stderr)


def reproduce(
    out: str | Path,
    quick: bool = False,
    parts: list[str] | None = None,
    seed: int = 0,
    reuse: bool = False,
) -> dict:
    """Run every part (or ``parts``) into ``out/<part>/`` with the base seed ``seed`` (module
    docstring); ``out/summary.json`` is rewritten atomically after each part, and parts already
    recorded there (same ``quick``) are skipped and listed in ``summary["skipped"]``. A summary made
    with another seed is refused (ValueError naming both) unless ``reuse``: then its finished parts
    are kept with the seed they record. ``summary["passed"]`` is False when a part with a check
    (``ok`` in its numbers: verify, converge, diversity, control) failed; ``summary["failed"]``
    names each such part with its criterion and failing items (:func:`failure`). Progress goes to
    stderr: a line when a part starts, is skipped or finishes (with its wall time and the total),
    and every :data:`HEARTBEAT_EVERY` seconds while it runs."""
    out = Path(out)
    seed = check_int(seed, "seed", minimum=0)
    names = list(PARTS) if parts is None else parts
    unknown = set(names) - set(PARTS)
    if unknown:
        raise ValueError(f"parts: unknown {sorted(unknown)}; choose from {list(PARTS)}")
    with out_lock(out):  # one process per directory: no lost update of summary.json
        return _reproduce(out, quick, names, seed, reuse)


def _reproduce(out: Path, quick: bool, names: list[str], seed: int, reuse: bool) -> dict:
    summary = {"quick": quick, "seed": seed, "versions": versions(), "parts": {}}
    if (out / "summary.json").exists():
        prev = read_json(out / "summary.json")
        if not isinstance(prev, dict) or not isinstance(prev.get("parts", {}), dict):
            raise DamagedFile(out / "summary.json", "not a reproduce summary (no 'parts' table)")
        old = prev.get("seed", 0)  # summaries from before --seed were all made with seed 0
        if old != seed and not reuse:
            raise ValueError(
                f"seed: {str(out)!r} holds results made with seed {old}, this run has seed {seed}; "
                "use another --out, or --reuse to resume with them anyway"
            )
        if prev.get("quick") == quick:
            summary["parts"] = {n: {"seed": old} | p for n, p in prev.get("parts", {}).items()}
    summary["skipped"] = []
    t_start = time.perf_counter()
    for i, name in enumerate(names, 1):
        record = summary["parts"].get(name, {})
        if record.get("done"):
            bad = _damaged_files(out / name, record)
            if not bad:
                summary["skipped"].append(name)
                _say(f"part {i}/{len(names)} {name}: done in an earlier run, skipped")
                continue
            _set_aside(bad, name)
            del summary["parts"][name]
        _say(f"part {i}/{len(names)} {name}: started (total {time.perf_counter() - t_start:.0f} s)")
        t0 = time.perf_counter()

        def beat(t: float, name: str = name) -> str:
            return f"reproduce: part {name} running, {t:.0f} s (total {time.perf_counter() - t_start:.0f} s)"

        with Heartbeat(beat, HEARTBEAT_EVERY):
            numbers = PARTS[name](out / name, quick, seed)
        summary["parts"][name] = {"done": True, "seconds": time.perf_counter() - t0, "seed": seed, **numbers}
        summary["parts"][name]["files"] = _part_files(out / name)
        atomic_write_json(out / "summary.json", summary)
        verdict = "" if numbers.get("ok", True) else ", CHECK FAILED"
        _say(f"part {i}/{len(names)} {name}: finished in {time.perf_counter() - t0:.1f} s{verdict}")
    failed = {n: failure(n, summary["parts"][n]) for n in names if n in summary["parts"]}
    summary["failed"] = {n: f for n, f in failed.items() if f is not None}
    summary["passed"] = not summary["failed"]
    return summary


def _say(line: str) -> None:
    """One progress line of :func:`reproduce` on stderr."""
    import sys

    print(f"reproduce: {line}", file=sys.stderr, flush=True)
