"""The converge figures, from saved results only (``converge.json`` and ``converge.npz``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lsa_theory import dynamics as dy

from ..io import read_json
from ..plots import integer_ticks, pyplot, save_figure
from .pl import _pl

__all__ = ["plot_converge"]


def plot_converge(out: str | Path) -> list[Path]:
    """Figures from saved results in ``out``: log loss against t with the predicted slope
    ``-2 lambda_min^+`` through the window, and the Hessian spectra at the limits (one legend entry
    per run)."""
    plt = pyplot()

    out = Path(out)
    doc = read_json(out / "converge.json")
    window = doc["config"]["window"]
    paths = []
    with np.load(out / "converge.npz") as z:
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
        for r in doc["runs"]:
            key = r["key"]
            t, loss = z[f"{key}/t"], z[f"{key}/loss"]
            label = f"c={r['c0']:g}, r={r['radius']:g}, seed {r['seed']}"
            for ax in axes:
                (line,) = ax.semilogy(t[1:], loss[1:], lw=1, label=label)
            sel = (loss > window[0]) & (loss < window[1])
            if sel.any() and r["rate_pred_a_priori"]:
                t0, l0 = t[sel][0], loss[sel][0]
                tt = np.array([t0, t[sel][-1]])
                axes[1].semilogy(tt, l0 * np.exp(-2 * r["rate_pred_a_priori"] * (tt - t0)), "k--", lw=0.8)
        for ax in axes:
            ax.axhspan(*window, color="0.9", zorder=0)
            ax.axhline(dy.MODES_WINDOW[1], color="0.5", ls=":", lw=0.8)  # top of the criterion's fit
            ax.set_xlabel("t")
            ax.set_ylabel("L(theta(t))")
        axes[0].set_xscale("log")
        axes[0].set_title(f"{doc['runs'][0]['algo']}: loss along the flow")
        axes[1].set_title(
            "dashed: slope -2 lambda_min^+ predicted before the flow; grey: single window (reported);\n"
            "dotted: top of the three-mode fit of the criterion (resolved points below it)",
            fontsize=8,
        )
        axes[0].legend(fontsize=6)
        paths.append(save_figure(fig, out / "converge_loss.png"))

        fig, ax = plt.subplots(figsize=(7, 4))
        for r in doc["runs"]:
            key = r["key"]
            eig = np.sort(np.abs(z[f"{key}/eig"]))
            label = f"{r['algo']} c={r['c0']:g}, r={r['radius']:g}, seed {r['seed']}"
            ax.semilogy(np.arange(1, eig.size + 1), np.maximum(eig, 1e-300), ".", ms=3, label=label)
        ax.set_xlabel("index (eigenvalues sorted by magnitude)")
        integer_ticks(ax.xaxis)
        ax.legend(fontsize=6, markerscale=3)
        ax.set_ylabel("|eigenvalue| of the Hessian at the limit")
        ax.set_title("Hessian spectra at the limits (kernel at round-off)")
        paths.append(save_figure(fig, out / "converge_spectrum.png"))

        fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
        for r in doc["runs"] + doc.get("radius_sweep", []):
            key = r["key"]
            loss, g = z[f"{key}/loss"], z[f"{key}/grad_norm"]
            pl = _pl(loss, g, r["rate_pred_a_priori"])
            sweep = "reached" in r
            label = f"sweep r={r['radius']:g}, seed {r['seed']}" if sweep else None
            axes[0].loglog(loss[loss > 0], pl, ":" if sweep else "-", lw=1, label=label)
        axes[0].axhline(1.0, color="k", lw=0.8)
        axes[0].set_ylim(1e-3, 1e6)  # spurious minima of the sweep drop towards 0 off the bottom
        axes[0].invert_xaxis()
        axes[0].set_xlabel("L(theta(t)) (the flow runs right to left)")
        axes[0].set_ylabel("||grad L||^2 / (2 lambda_min^+ L)")
        axes[0].set_title("PL ratio along the path (solid: local runs; dotted: radius sweep)", fontsize=9)
        if doc.get("radius_sweep"):
            axes[0].legend(fontsize=5, ncol=2)
        for r in doc.get("unrealisable", []):
            key = r["key"]
            t, g = z[f"{key}/t"], z[f"{key}/grad_norm"]
            axes[1].semilogy(
                t[1:], g[1:], lw=1, label=f"noise {r['noise']:g}, seed {r['seed']}, L* = {r['loss_star']:.1e}"
            )
        axes[1].set_xlabel("t")
        axes[1].set_ylabel("||grad L||")
        axes[1].set_title("unrealisable targets (L* > 0): not evidence for (M6)", fontsize=9)
        if doc.get("unrealisable"):
            axes[1].legend(fontsize=6)
        paths.append(save_figure(fig, out / "converge_pl.png"))
    return paths
