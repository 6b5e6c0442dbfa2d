"""The depth figure, from saved results only."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..io import read_json

__all__ = ["plot_depth"]

_COLOURS = {"sparse": "C0", "full": "C1", "gd": "C2", "gd_layers": "C4", "pgd": "C3", "gamma_inv": "k"}
_TD_COLOURS = {"shared": "C0", "per-layer": "C1", "batch_td": "C2", "lstd": "k", "w3": "C2"}
_KIND_STYLE = {"representable": "-", "boyan": "--"}


#: Where a diverged run (a non-finite error, ``null`` in the JSON) or a huge error is drawn.
CAP = 1e6


def _cap(v) -> float:
    """``v`` capped at :data:`CAP`; a missing (non-finite, diverged) value is drawn at the cap."""
    return CAP if v is None else min(v, CAP)


def _runs_vs(ax, runs, x, y, colour, label):
    """Every run as a dot, the mean over seeds as a line (diverged runs at :data:`CAP`)."""
    xs = sorted({r[x] for r in runs})
    ax.plot([r[x] for r in runs], [_cap(r[y]) for r in runs], "o", color=colour, alpha=0.4, ms=3)
    means = [np.mean([_cap(r[y]) for r in runs if r[x] == v]) for v in xs]
    ax.plot(xs, means, "-", color=colour, label=label)


def plot_depth(out: str | Path) -> Path:
    """``depth.png`` from ``depth.json`` in ``out``: six panels, regression held-out loss against L
    and against N, TD held-out ``rel_msve`` against L and against n (every trained run a dot, the
    mean over seeds a line; baselines tuned per point), the out-of-distribution errors against the
    scale, and the population loss along the segment from the trained L = 1 matrix to
    ``Gamma^{-1}``."""
    from ..plots import pyplot, save_figure

    plt = pyplot()
    out = Path(out)
    doc = read_json(out / "depth.json")
    cfg = doc["config"]
    reg, td, ood = doc["regression"], doc["td"], doc["ood"]
    fig, axes = plt.subplots(2, 3, figsize=(15, 8.5))

    ax = axes[0, 0]
    for param in cfg["reg_params"]:
        runs = [r for r in reg["runs"] if r["study"] == "L" and r["param"] == param]
        _runs_vs(ax, runs, "L", "heldout_loss", _COLOURS[param], f"trained {param}")
    for m in ("gd", "gd_layers", "pgd"):
        rows = sorted(
            (r for r in reg["baselines"] if r["study"] == "L" and r["method"] == m), key=lambda r: r["L"]
        )
        if rows:
            ax.plot([r["L"] for r in rows], [_cap(r["heldout_loss"]) for r in rows], "s--",
                    color=_COLOURS[m], ms=4, label=f"{m} (tuned)")  # fmt: skip
    g = [r for r in reg["baselines"] if r["method"] == "gamma_inv" and r["N"] == cfg["reg_N"]]
    if g:
        ax.plot([1], [g[0]["heldout_loss"]], "k*", ms=10, label="Gamma^-1 (L = 1 optimum)")
    ax.set(xlabel="layers L", ylabel="held-out loss", yscale="log", title=f"regression, N = {cfg['reg_N']}")
    ax.legend(fontsize=7)

    ax = axes[0, 1]
    LN = cfg["reg_N_layers"]
    runs = [r for r in reg["runs"] if r["param"] == "sparse" and r["L"] == LN]
    _runs_vs(ax, runs, "N", "heldout_loss", _COLOURS["sparse"], f"trained sparse, L = {LN}")
    for m in ("gd", "gd_layers", "pgd"):
        rows = sorted(
            (r for r in reg["baselines"] if r["L"] == LN and r["method"] == m), key=lambda r: r["N"]
        )
        rows = list({r["N"]: r for r in rows}.values())
        if rows:
            ax.plot([r["N"] for r in rows], [_cap(r["heldout_loss"]) for r in rows], "s--",
                    color=_COLOURS[m], ms=4, label=f"{m} (tuned per N)")  # fmt: skip
    ax.set(xlabel="context length N", ylabel="held-out loss", xscale="log", yscale="log",
           title=f"regression, L = {LN}")  # fmt: skip
    ax.legend(fontsize=7)

    ax = axes[0, 2]
    for param in cfg["reg_params"]:
        for seed in cfg["seeds"]:
            rows = [r for r in ood["interpolation"] if r["param"] == param and r["seed"] == seed]
            if rows:
                ax.plot([r["t"] for r in rows], [r["population_loss"] for r in rows], color=_COLOURS[param],
                        alpha=0.7, label=f"{param}" if seed == cfg["seeds"][0] else None)  # fmt: skip
    ax.axhline(ood["loss_star"], color="k", ls=":", label="(R4) minimum")
    ax.set(xlabel="t (0 trained, 1 Gamma^-1)", ylabel="population loss (R4)",
           title="L = 1: segment trained -> Gamma^-1")  # fmt: skip
    ax.legend(fontsize=7)

    n0 = str(cfg["td_n"])
    ax = axes[1, 0]
    for kind in cfg["td_kinds"]:
        ls = _KIND_STYLE[kind]
        for mode in cfg["td_modes"]:
            runs = [
                r | {"e": r["heldout_by_n"][n0][0]}
                for r in td["runs"]
                if r["kind"] == kind and r["mode"] == mode
            ]
            _runs_vs(ax, runs, "L", "e", _TD_COLOURS[mode], f"trained {mode}, {kind}")
            ax.lines[-1].set_linestyle(ls)
        rows = sorted((r for r in td["baselines"] if r["kind"] == kind and r["method"] == "batch_td"
                       and str(r["n"]) == n0), key=lambda r: r["L"])  # fmt: skip
        ax.plot([r["L"] for r in rows], [_cap(r["heldout_err"]) for r in rows], "s" + ls, color="C2", ms=4,
                label=f"batch TD tuned, {kind}")  # fmt: skip
        lst = [
            r for r in td["baselines"] if r["kind"] == kind and r["method"] == "lstd" and str(r["n"]) == n0
        ]
        if lst and lst[0]["heldout_err"] is not None:
            ax.axhline(lst[0]["heldout_err"], color="k", ls=ls, lw=0.8, label=f"LSTD (mean), {kind}")
    ax.set(xlabel="layers L", ylabel="held-out rel_msve", yscale="log", title=f"TD, n = {n0}")
    ax.legend(fontsize=6)

    ax = axes[1, 1]
    Ls = cfg["ood_td_layers"]
    for kind in cfg["td_kinds"]:
        ls = _KIND_STYLE[kind]
        for mode in cfg["td_modes"]:
            for L in Ls:
                runs = [r for r in td["runs"] if r["kind"] == kind and r["mode"] == mode and r["L"] == L]
                pts = [{"n": int(n), "e": v[0], "diverged": r["diverged"]} for r in runs
                       for n, v in r["heldout_by_n"].items()]  # fmt: skip
                _runs_vs(
                    ax, pts, "n", "e", _TD_COLOURS[mode], f"trained {mode} L = {L} (n_train {n0}), {kind}"
                )
                ax.lines[-1].set_linestyle(ls)
        for L in Ls:
            rows = sorted((r for r in td["baselines"] if r["kind"] == kind and r["method"] == "batch_td"
                           and r["L"] == L), key=lambda r: r["n"])  # fmt: skip
            ax.plot([r["n"] for r in rows], [_cap(r["heldout_err"]) for r in rows], "s" + ls,
                    color="C2", ms=4, label=f"batch TD L = {L} tuned per n, {kind}")  # fmt: skip
        lst = sorted((r for r in td["baselines"] if r["kind"] == kind and r["method"] == "lstd"
                      and r["heldout_median"] is not None), key=lambda r: r["n"])  # fmt: skip
        ax.plot([r["n"] for r in lst], [r["heldout_median"] for r in lst], "x" + ls, color="k",
                label=f"LSTD (median), {kind}")  # fmt: skip
    ax.set(xlabel="context length n", ylabel="held-out rel_msve", xscale="log", yscale="log",
           title=f"TD, L = {', '.join(map(str, Ls))}")  # fmt: skip
    ax.legend(fontsize=6)

    ax = axes[1, 2]
    for shift, ls in (("input", "-"), ("weight", ":")):
        for who in list(cfg["reg_params"]) + ["gd", "pgd"]:
            for L in cfg["ood_reg_layers"][-1:]:
                rows = [
                    r for r in ood["regression"] if r["shift"] == shift and r["who"] == who and r["L"] == L
                ]
                if not rows:
                    continue
                sc = sorted({r["scale"] for r in rows})
                m = [np.mean([_cap(r["err"]) for r in rows if r["scale"] == s]) for s in sc]
                ax.plot(
                    sc,
                    m,
                    ls,
                    marker="o",
                    ms=3,
                    color=_COLOURS[who],
                    label=f"reg {who} L = {L}, {shift} scale",
                )
    for shift, ls in (("feature", "-."),):
        for who in list(cfg["td_modes"]) + ["w3"]:
            rows = [
                r
                for r in ood["td"]
                if r["shift"] == shift and r["who"] == who and r["kind"] == cfg["td_kinds"][0]
            ]
            if not rows:
                continue
            sc = sorted({r["scale"] for r in rows})
            m = [np.mean([_cap(r["err"]) for r in rows if r["scale"] == s]) for s in sc]
            ax.plot(sc, m, ls, marker="^", ms=3, color=_TD_COLOURS[who] if who != "w3" else "C5",
                    label=f"TD {who}, {shift} scale ({cfg['td_kinds'][0]})")  # fmt: skip
    ax.set(xlabel="scale s", ylabel="normalised error / rel_msve", xscale="log", yscale="log",
           title="out of distribution")  # fmt: skip
    ax.legend(fontsize=6)

    fig.tight_layout()
    return save_figure(fig, out / "depth.png")
