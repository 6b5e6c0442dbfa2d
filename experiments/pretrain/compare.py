"""(P3) driver: train the (P2) and (P1) blocks and score them (:func:`run_pretrain`), and the
sweeps over the (P2) horizon ``T`` and the number of training MDPs ``k`` (:func:`pretrain_sweep`).
The pieces are :mod:`lsa_theory.experiments.pretrain` (training) and
:mod:`lsa_theory.experiments.pretrain.evaluate`
(metrics, paired intervals, figures)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..io import atomic_write_json, read_json, to_jsonable, versions
from .config import PretrainConfig
from .evaluate import evaluate_blocks
from .plots import curve_band, plot_blocks, plot_returns, plot_rl_training, plot_seeds, plot_sweep
from .train import TrainingDiverged, train_rl

__all__ = [
    "RUN_MODES",
    "UNITS",
    "units",
    "run_unit",
    "run_pretrain",
    "plot_pretrain",
    "SWEEP_TS",
    "SWEEP_KS",
    "pretrain_sweep",
    "seeds_document",
]

RUN_MODES = ("rl", "teacher", "both")


def run_pretrain(
    cfg: PretrainConfig,
    mode: str = "both",
    out: str | Path | None = None,
    teacher_out: str | Path | None = None,
) -> dict:
    """(P3): train the (P2) block (``mode`` ``"rl"``/``"both"``, :func:`train_rl` into ``out/rl``)
    and the (P1) block (``"teacher"``/``"both"``, :func:`lsa_theory.experiments.training.train` of
    ``cfg.teacher_config()`` into ``teacher_out``, default ``out/teacher``), then score them with the
    constructed block ((S3), or (A3) for ``cfg.algo = "actor_critic"``) and the exact update ((S2)/(A2))
    (:func:`lsa_theory.experiments.pretrain.evaluate.evaluate_blocks`). Returns ``{"rl": {...},
    "rl_initial": {...}, "teacher": {...}, "constructed": {...}, "exact": {...}, "paired": {...}, "passed",
    "config", ...}`` (entries of the blocks trained in ``mode``; each entry and the document name their
    ``reference_update``); ``rl`` also carries ``initial_heldout_return`` (the same block before training),
    ``train_objective`` and ``heldout_objective`` (the final smooth (P2) objectives), ``train_time`` and
    ``skipped``. ``passed``: the 95 % paired interval of ``rl - rl_initial`` over all held-out MDPs (a
    diverged loop scored 0, counted in ``n_diverged_a``, ``n_diverged_b``) lies above 0 (``True`` in mode
    ``"teacher"``). With ``out``: ``pretrain.json``, ``pretrain_eval.npz`` and the figures."""
    if mode not in RUN_MODES:
        raise ValueError(f"mode: expected one of {RUN_MODES}, got {mode!r}")
    if not isinstance(cfg, PretrainConfig):
        raise ValueError(f"cfg: expected a PretrainConfig, got {type(cfg).__name__}")
    out = Path(out) if out is not None else None
    if teacher_out is None and out is not None:
        teacher_out = out / "teacher"
    blocks, timings, rl = {}, {}, None
    if mode in ("rl", "both"):
        t0 = time.perf_counter()
        rl = run_unit(cfg, "rl", out)
        timings["rl_session"] = time.perf_counter() - t0
        blocks["rl"], blocks["rl_initial"] = (rl.P, rl.V), (rl.P0, rl.V0)
    if mode in ("teacher", "both"):
        t0 = time.perf_counter()
        tres = run_unit(cfg, "teacher", out, teacher_out)
        timings["teacher_session"] = time.perf_counter() - t0
        timings["teacher_train_time"] = tres.train_time
        blocks["teacher"] = (tres.P, tres.V)
    blocks["constructed"], blocks["exact"] = "constructed", "teacher"
    t0 = time.perf_counter()
    ev = evaluate_blocks(cfg, blocks, out)
    ev.pop("_arrays")
    timings["evaluation"] = time.perf_counter() - t0
    doc = dict(ev["entries"])
    passed = True
    if rl is not None:
        doc["rl"]["initial_heldout_return"] = doc["rl_initial"]["heldout_return"]
        doc["rl"]["initial_heldout_return_sem"] = doc["rl_initial"]["heldout_return_sem"]
        doc["rl"]["initial_n_diverged"] = doc["rl_initial"]["n_diverged"]
        doc["rl"]["train_objective"] = rl.final["objective"]
        doc["rl"]["heldout_objective"] = rl.final["heldout_objective"]
        doc["rl"]["train_time"] = rl.train_time
        doc["rl"]["skipped"] = rl.final["skipped"]
        low = ev["paired"]["at_T"]["rl-rl_initial"]["ci_low"]
        passed = low is not None and low > 0
    doc.update(
        reference_update=ev["reference_update"],
        paired=ev["paired"],
        passed=bool(passed),
        mode=mode,
        blocks=list(blocks),
        T_eval=ev["T_eval"],
        n_heldout=ev["n_heldout"],
        n_update_frames=ev["n_update_frames"],
        config=cfg.as_dict(),
        seed=cfg.seed,
        versions=versions(),
        timings=timings,
    )
    doc = to_jsonable(doc)
    if out is not None:
        atomic_write_json(out / "pretrain.json", doc)
        plot_pretrain(out)
    return doc


#: The units of a (P3) comparison: the two trained blocks, (P2) and (P1), each resumed from its
#: own checkpoint.
UNITS = ("rl", "teacher")


def units(cfg: PretrainConfig) -> list[str]:
    """The units of ``cfg``: :data:`UNITS` (the scoring that follows needs both)."""
    return list(UNITS)


def run_unit(
    cfg: PretrainConfig, unit: str, out: str | Path | None = None, teacher_out: str | Path | None = None
):
    """Train one block of ``cfg``: ``"rl"``, the (P2) block (:func:`train_rl` into ``out/rl``,
    an :class:`RLResult`), or ``"teacher"``, the (P1) block
    (:func:`lsa_theory.experiments.training.train` of ``cfg.teacher_config()`` into ``teacher_out``,
    default ``out/teacher``, a :class:`~lsa_theory.experiments.training.TrainResult`)."""
    from ..training import train

    out = Path(out) if out is not None else None
    if unit == "rl":
        return train_rl(cfg, None if out is None else out / "rl")
    if unit == "teacher":
        if teacher_out is None and out is not None:
            teacher_out = out / "teacher"
        return train(cfg.teacher_config(), teacher_out)
    raise ValueError(f"unit: expected one of {UNITS}, got {unit!r}")


def plot_pretrain(out: str | Path) -> list[Path]:
    """The figures of a saved comparison in ``out``: the held-out returns (``pretrain.json``) and,
    when that run trained the (P2) block (``"rl"`` in its ``blocks``), its training curves and
    blocks (from ``rl/rl.json``, ``rl/rl.npz``)."""
    out = Path(out)
    paths = [plot_returns(out)]
    if "rl" in read_json(out / "pretrain.json").get("blocks", []):
        paths += [plot_rl_training(out), plot_blocks(out)]
    return paths


SWEEP_TS = (5, 10, 20, 40)
SWEEP_KS = (16, 64, 256, 1024)


def pretrain_sweep(base: PretrainConfig, Ts=SWEEP_TS, ks=SWEEP_KS, out: str | Path | None = None) -> dict:
    """(P3) against the horizon and the task count: :func:`run_pretrain` (mode ``"both"``) at
    ``(T, base.k)`` for ``T`` in ``Ts`` and at ``(base.T, k)`` for ``k`` in ``ks`` (minibatches of
    ``min(base.batch_mdps, k)`` MDPs), each in ``out/T{T}_k{k}`` (the (P1) block, which does not
    depend on ``T``, in ``out/teacher_k{k}``; all resumable). Returns ``{"rows": [...], "base"}``,
    one row per run with the held-out returns of every block and its diverged loops
    (``{block}_n_diverged``; diverged loops are scored 0 in every mean, :mod:`lsa_theory.experiments.stats`),
    the paired ``rl - teacher`` and ``rl - rl_initial`` intervals and the RL block's structure
    and update agreement; with ``out`` also
    ``pretrain_sweep.json`` and ``pretrain_sweep.png``. A run whose (P2) training stops with
    :class:`~lsa_theory.experiments.pretrain.TrainingDiverged` (every training loop overflowed,
    :data:`lsa_theory.experiments.pretrain.MAX_SKIPS` steps in a row) is recorded as a row ``{"T", "k",
    "failed": message}`` and the sweep goes on."""
    out = Path(out) if out is not None else None
    runs = [(int(T), base.k) for T in Ts] + [
        (base.T, int(k)) for k in ks if (base.T, int(k)) not in {(int(t), base.k) for t in Ts}
    ]
    rows = []

    def _write() -> None:
        if out is not None:
            doc = {"base": base.as_dict(), "rows": rows, "versions": versions()}
            atomic_write_json(out / "pretrain_sweep.json", doc)

    for T, k in runs:
        cfg = base.replace(T=T, k=k, batch_mdps=None if base.batch_mdps is None else min(base.batch_mdps, k))
        sub = None if out is None else out / f"T{T}_k{k}"
        try:
            doc = run_pretrain(cfg, "both", sub, None if out is None else out / f"teacher_k{k}")
        except TrainingDiverged as exc:
            rows.append({"T": T, "k": k, "failed": str(exc)})
            _write()
            continue
        row = {"T": T, "k": k}
        for name in ("rl", "rl_initial", "teacher", "constructed", "exact"):
            row[f"{name}_return"] = doc[name]["heldout_return"]
            row[f"{name}_return_sem"] = doc[name]["heldout_return_sem"]
            row[f"{name}_n_diverged"] = doc[name]["n_diverged"]
        for key in (
            "cos_S3_effective",
            "cos_S3_full",
            "alpha_eff",
            "update_corr_sarsa",
            "train_objective",
            "heldout_objective",
        ):
            row[f"rl_{key}"] = doc["rl"][key]
        row["teacher_update_corr_sarsa"] = doc["teacher"]["update_corr_sarsa"]
        row["rl_minus_teacher"] = doc["paired"]["at_T"]["rl-teacher"]
        row["rl_minus_initial"] = doc["paired"]["at_T"]["rl-rl_initial"]
        row["rl_minus_exact"] = doc["paired"]["at_T"]["rl-exact"]
        rows.append(row)
        _write()
    if out is not None:
        plot_sweep(out)
    return to_jsonable({"base": base.as_dict(), "rows": rows, "versions": versions()})


#: The per-block keys a seeds document keeps of each run's ``pretrain.json``.
SEED_ENTRY_KEYS = (
    "heldout_return",
    "heldout_return_sem",
    "n_diverged",
    "update_corr_sarsa",
    "cos_S3_effective",
    "cos_S3_full",
)


def seeds_document(outs, name: str, path: str | Path | None = None) -> dict:
    """Several seeds of one (P3) configuration, gathered from the ``out`` directories of
    :func:`run_pretrain` (``outs``, one per seed): per run its ``seed``, ``source`` (directory name),
    ``passed``, ``config``, ``n_heldout``, the paired ``at_T`` intervals (every loop counted,
    :mod:`lsa_theory.experiments.stats`), each block's :data:`SEED_ENTRY_KEYS`, the (P2) ``history`` (step,
    smooth objective on training / held-out MDPs, cosine to the construction) and the held-out return
    ``curves`` of the ``rl`` and ``exact`` blocks (:func:`lsa_theory.experiments.pretrain.plots.curve_band`:
    mean, s.e.m. over all held-out MDPs, diverged count) at ``updates``. A directory without
    ``pretrain.json`` (its (P2) training failed) is a run ``{"source", "failed"}``. Returns ``{"name",
    "runs", "versions"}``; with ``path`` writes it there and draws
    :func:`lsa_theory.experiments.pretrain.plots.plot_seeds` beside it."""
    runs = []
    for out in map(Path, outs):
        if not (out / "pretrain.json").exists():
            runs.append({"source": out.name, "failed": "no pretrain.json: the (P2) training did not finish"})
            continue
        doc = read_json(out / "pretrain.json")
        hist = read_json(out / "rl" / "rl.json")["history"]
        run = {
            "seed": doc["seed"],
            "source": out.name,
            "passed": doc["passed"],
            "config": doc["config"],
            "n_heldout": doc["n_heldout"],
            "paired": doc["paired"]["at_T"],
            "history": {k: hist[k] for k in ("step", "objective", "heldout_objective", "cos_S3_effective")},
            "curves": {},
        }
        for b in doc["blocks"]:
            run[b] = {k: doc[b].get(k) for k in SEED_ENTRY_KEYS}
        with np.load(out / "pretrain_eval.npz") as z:
            run["updates"] = z["updates"]
            for b in ("rl", "exact"):
                m, s, n_div = curve_band(z[f"{b}/curves"])
                run["curves"][b] = {"mean": m, "sem": s, "n_diverged": n_div}
        runs.append(run)
    result = to_jsonable({"name": name, "runs": runs, "versions": versions()})
    if path is not None:
        atomic_write_json(Path(path), result)
        plot_seeds(path)
    return result
