"""The distill figure, from saved results only."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..io import read_json

__all__ = ["plot_distill"]

_LABELS = {
    "source": "source (AD0): batch SARSA, one step per episode",
    "ctx_all": "ctx-all: reads all its past episodes",
    "ctx_last": "ctx-last: reads its last episode only",
    "ctx_src": "ctx-src: reads the source's history",
}


def plot_distill(out: str | Path) -> Path:
    """``distill.png`` from ``distill.json`` in ``out``: (left) the greedy normalised return against
    the episode k for the four agents of (AD3), mean over the held-out MDPs with its 95 % t-interval
    band; (right) the late-minus-early paired difference against the number of episodes in the
    context and the late return itself, each with its 95 % interval."""
    import scipy.stats

    from ..plots import pyplot, save_figure

    plt = pyplot()
    out = Path(out)
    doc = read_json(out / "distill.json")
    cfg = doc["config"]
    q = float(scipy.stats.t.ppf(0.5 + cfg["level"] / 2, cfg["n_mdps"] - 1))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    ax = axes[0]
    k = np.arange(1, cfg["K"] + 1)
    for name, label in _LABELS.items():
        a = doc["agents"][name]
        m = np.array(a["return_by_episode"], dtype=float)
        s = np.array(a["sem_by_episode"], dtype=float)
        (line,) = ax.plot(k, m, lw=1.2, label=label)
        ax.fill_between(k, m - q * s, m + q * s, color=line.get_color(), alpha=0.15, lw=0)
    for lo, hi in (cfg["early"], cfg["late"]):
        ax.axvspan(lo - 0.5, hi + 0.5, color="0.92", zorder=0)
    ax.set_xlabel("episode k")
    ax.set_ylabel("greedy normalised return of the parameter held")
    ax.set_title(f"(AD3), {cfg['n_mdps']} held-out MDPs (shaded: early, late)")
    ax.legend(fontsize=7)
    ax = axes[1]
    rows = doc["by_context"]
    m = np.array([r["episodes"] for r in rows])
    diff = np.array([r["late_minus_early"] for r in rows], dtype=float)
    ax.errorbar(m, diff[:, 0], yerr=[diff[:, 0] - diff[:, 1], diff[:, 2] - diff[:, 0]], fmt="o-", capsize=3,
                label="ctx-m: late - early, paired, 95 % interval")  # fmt: skip
    late = np.array([r["late"] for r in rows], dtype=float)
    sem = np.array([r["late_sem"] for r in rows], dtype=float)
    ax.errorbar(m, late, yerr=q * sem, fmt="s--", capsize=3, label="ctx-m: late return (mean, 95 % interval)")
    ax.axhline(0.0, color="k", lw=0.6)
    ax.set_xscale("log", base=2)
    ax.set_xticks(m, [f"{v}" + (" (all)" if r["all"] else "") for v, r in zip(m, rows, strict=True)])
    ax.set_xlabel("episodes in the context (m)")
    ax.set_ylabel("greedy normalised return")
    ax.set_title(f"against the context: late = episodes {cfg['late'][0]}-{cfg['late'][1]}")
    ax.legend(fontsize=7)
    return save_figure(fig, out / "distill.png")
