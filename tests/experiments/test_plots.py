"""Figures drawn from tiny synthetic saved results: the (M4) tangent beside the kernel on integer
ticks, one legend entry per converge run, labelled heatmaps (issue 13, plots). The figures of the
other experiments are checked where their tests already save results (test_training, test_control,
test_context_length) with the ``figures`` fixture of conftest."""

from __future__ import annotations

import json

import numpy as np

import lsa_theory as lt
from lsa_theory.experiments.converge import plot_converge
from lsa_theory.experiments.diversity import plot_diversity
from lsa_theory.experiments.plots import construction_heatmaps


def _diversity_doc(tmp_path):
    rows = []
    for shared, ker, tangent in ((False, (3, 2, 1), (3, 2, 1)), (True, (4, 3, 3), (4, 3, 2))):
        for k, kd, td in zip((1, 2, 4), ker, tangent, strict=True):
            rows.append(
                dict(table="k", shared_features=shared, k=k, d=4, S=2, A=2, reward="sa",
                     heldout_err=1e-3 / k, ker_dim=kd, tangent_dim=td)
            )  # fmt: skip
    rows.append(dict(table="M5", shared_features=True, k=1, d=2, S=2, A=2, reward="sa", heldout_err=0.1,
                     ker_dim=2, tangent_dim=2))  # fmt: skip
    (tmp_path / "diversity.json").write_text(json.dumps({"rows": rows}))
    return rows


def test_diversity_kernel_axis_has_integer_ticks_and_the_tangent(tmp_path, figures):
    rows = _diversity_doc(tmp_path)
    plot_diversity(tmp_path)
    fig = figures["diversity.png"]
    (ax,) = [a for a in fig.axes if "kernel" in a.get_ylabel()]
    figures.assert_integer_ticks(ax.yaxis)
    labels = figures.legend_texts(ax)
    for shared, name in ((False, "resampled"), (True, "shared")):
        want = [r["tangent_dim"] for r in rows if r["table"] == "k" and r["shared_features"] == shared]
        tangent = f"{name} features: (M4) tangent dimension"
        (line,) = [ln for ln in ax.get_lines() if ln.get_label() == tangent]
        assert list(line.get_ydata()) == want
        assert any(text.startswith(line.get_label()) for text in labels)  # + a note if it hides the kernel
        assert f"{name} features: certified kernel" in labels


def _converge_doc(tmp_path, n_runs=3):
    runs, arrays = [], {}
    for i in range(n_runs):
        key = f"run{i}"
        runs.append(dict(key=key, algo="sarsa", c0=1.0 + i, radius=0.1, seed=i, rate_pred_a_priori=0.5))
        t = np.linspace(0, 10, 20)
        arrays |= {f"{key}/t": t, f"{key}/loss": np.exp(-t) + 1e-12, f"{key}/grad_norm": np.exp(-t / 2),
                   f"{key}/eig": np.r_[np.zeros(2), np.linspace(0.5, 2, 5) * (i + 1)]}  # fmt: skip
    (tmp_path / "converge.json").write_text(json.dumps({"config": {"window": [1e-8, 1e-2]}, "runs": runs}))
    np.savez(tmp_path / "converge.npz", **arrays)
    return runs


def test_converge_spectrum_names_every_run(tmp_path, figures):
    runs = _converge_doc(tmp_path)
    plot_converge(tmp_path)
    (ax,) = figures["converge_spectrum.png"].axes
    labels = figures.legend_texts(ax)
    assert len(labels) == len(runs) == len(set(labels))
    for r, text in zip(runs, labels, strict=True):
        assert f"c={r['c0']:g}" in text and f"seed {r['seed']}" in text
    figures.assert_integer_ticks(ax.xaxis)  # eigenvalue index


def test_construction_heatmaps_are_labelled():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lsa_theory import constructions

    P, V = constructions.sarsa(2, 0.1, 1.0)
    fig = construction_heatmaps(P, V, lt.Layout(2))
    fig.canvas.draw()
    from conftest import SavedFigures

    assert SavedFigures.assert_heatmaps_labelled(fig) == 2
    plt.close(fig)
