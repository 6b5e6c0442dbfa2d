"""The regression figure, from saved results only."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..io import read_json

__all__ = ["plot_regression"]


def plot_regression(out: str | Path) -> Path:
    """``regression.png`` from saved results: the flow's limit ``M`` against ``Gamma^{-1}`` (the
    document's ``target``, for another data law) entry by entry (every population configuration),
    the sampled error against F with the fitted slope and a -1/2 reference, and the excess loss
    along the primary flow with the predicted slope."""
    from ..plots import pyplot, save_figure

    plt = pyplot()

    out = Path(out)
    doc = read_json(out / "regression.json")
    target = doc.get("target", "Gamma^{-1}")  # documents saved before the data laws have no target
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.3))
    ax = axes[0]
    for r in doc["configs"]:
        ax.plot(
            np.ravel(r["M_star"]),
            np.ravel(r["M_flow"]),
            ".",
            ms=4,
            label=f"d={r['d']} N={r['N']} kappa={r['kappa']:g}",
        )
    lim = ax.get_xlim()
    ax.plot(lim, lim, "k-", lw=0.6)
    worst = max(r["rel_err"] for r in doc["configs"])
    ax.set_xlabel(f"entries of {target}")
    ax.set_ylabel("entries of M = u U^T at the flow's limit")
    ax.set_title(f"population (R5): max rel. error {worst:.1e}")
    ax.legend(fontsize=6, ncol=2)
    ax = axes[1]
    F = np.array([r["F"] for r in doc["sampled"]], dtype=float)
    e = np.array([r["rel_err"] for r in doc["sampled"]])
    with np.load(out / "regression.npz") as z:
        errs = z["sampled/errors"]
        key = f"pop/{doc['d']}/{doc['N']}/{doc['kappa']:g}"
        t, excess = z[f"{key}/t"], z[f"{key}/excess"]
    for j in range(errs.shape[1]):
        ax.loglog(F, errs[:, j], ".", color="0.6", ms=3)
    ax.loglog(F, e, "o-", label=f"RMS over reps, slope {doc['slope']:.3f}")
    ax.loglog(F, e[0] * (F / F[0]) ** -0.5, "k--", lw=0.8, label="slope -1/2")
    ax.set_xlabel("F (sampled prompts)")
    ax.set_ylabel(
        "||M_flow - M*||_F / ||M*||_F"
        if target != "Gamma^{-1}"
        else "||M_flow - Gamma^{-1}||_F / ||Gamma^{-1}||_F"
    )
    ax.set_title(f"sampled prompts, d={doc['d']}, N={doc['N']}, kappa={doc['kappa']:g}")
    ax.legend(fontsize=7)
    ax = axes[2]
    pop = doc["population"]
    ax.semilogy(t[1:], excess[1:], lw=1, label="L - L* along the flow")
    lo, hi = doc["config"]["window"]
    sel = (excess > lo) & (excess < hi)
    if sel.any():
        t0, l0 = t[sel][0], excess[sel][0]
        tt = np.array([t0, t[sel][-1]])
        ax.semilogy(
            tt, l0 * np.exp(-2 * pop["rate_pred"] * (tt - t0)), "k--", lw=0.8, label="-2 lambda_min^+"
        )
    ax.axhspan(lo, hi, color="0.9", zorder=0)
    ax.set_xlabel("t")
    ax.set_title(f"primary flow: rate / lambda_min^+ = {pop['rate_ratio']:.4f}")
    ax.legend(fontsize=7)
    return save_figure(fig, out / "regression.png")
