"""The autoregressive figure, from saved results only."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..io import read_json

__all__ = ["plot_autoregressive"]


def plot_autoregressive(out: str | Path) -> Path:
    """``autoregressive.png`` from ``autoregressive.json`` / ``.npz`` in ``out``: (left) the loss
    against T of the GD class at its optimum ``L*`` (AR7), of the plain step ``c = d`` and of the
    ``Theta_6`` optimum (AR8); (right) ``L - L*`` along the GD-class flow (AR9a) with the a-priori
    slope ``-2 lambda`` (the factor 1/d included) and the fit window shaded."""
    from ..plots import pyplot, save_figure

    plt = pyplot()
    out = Path(out)
    doc = read_json(out / "autoregressive.json")
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    ax = axes[0]
    rows = doc["curve"]
    T = np.array([r["T"] for r in rows])
    ax.plot(T, [r["loss_step_d"] for r in rows], "s-", ms=3, label="one GD step of size d (c = d)")
    ax.plot(T, [r["loss_star"] for r in rows], "o-", ms=3, label="GD class optimum L* (step c*)")
    ax.plot(T, [r["theta6_min"] for r in rows], "^-", ms=3, label="Theta_6 optimum (not one GD step)")
    ax.set_xlabel("T (positions averaged)")
    ax.set_ylabel("population loss (1/T) sum_t E||shat_{t+1} - s_{t+1}||^2")
    ax.set_title(f"(AR7)/(AR8), d = {doc['d']}, random phase")
    ax.legend(fontsize=7)
    ax = axes[1]
    with np.load(out / "autoregressive.npz") as z:
        t, excess = z["gd_flow/t"], z["gd_flow/excess"]
    g = doc["gd_class"]
    keep = excess > 0
    ax.semilogy(t[keep], excess[keep], lw=1, label="L - L* along the flow (all entries of A, B)")
    lo, hi = doc["config"]["window"]
    sel = keep & (excess > lo) & (excess < hi)
    if sel.any():
        t0, l0 = t[sel][0], excess[sel][0]
        tt = np.array([t0, t[sel][-1]])
        ax.semilogy(
            tt,
            l0 * np.exp(-2 * g["rate_a_priori"] * (tt - t0)),
            "k--",
            lw=0.8,
            label="a-priori slope -2 l''(c*)(a^2 + b^2)/d",
        )
    ax.axhspan(lo, hi, color="0.9", zorder=0)
    ax.set_xlabel("t")
    ax.set_ylabel("L - L*")
    ax.set_title(f"(AR9) GD-class flow: fitted / a-priori rate = {g['rate_ratio_a_priori']:.5f}")
    ax.legend(fontsize=7)
    return save_figure(fig, out / "autoregressive.png")
