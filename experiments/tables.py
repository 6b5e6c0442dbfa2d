"""Markdown tables of saved results, so that documentation tables are regenerated, never retyped.

``python -m lsa_theory.experiments.tables KIND PATH`` prints the table of one saved document: ``in-context``
and ``closed-loop`` (``context_length_{regime}.json`` of :mod:`lsa_theory.experiments.context_length`),
``seeds`` (``seeds.json`` of :func:`lsa_theory.experiments.training.train_seeds`), ``diversity``
(``diversity_training.json``), ``returns-by-k`` (``returns_by_k.json``) and ``pretrain-seeds``
(``docs/figures/pretrain-seeds.json``: every seed of every (P3) configuration), ``td-pretrain-runs``
and ``td-pretrain-stationary`` (``td_pretrain.json`` of :mod:`lsa_theory.experiments.td_pretrain`),
``attention-runs``, ``attention-summary`` and ``attention-construction`` (``attention.json`` of
:mod:`lsa_theory.experiments.attention`).
Every row of the document appears (reporting rule: tables list every run, failures included).
"""

from __future__ import annotations

import sys
from pathlib import Path

from .io import read_json

__all__ = ["TABLES", "table"]


def _f(x, spec: str = ".3f") -> str:
    return "—" if x is None else format(x, spec)


def _pm(m, s, spec: str = ".3f") -> str:
    return "—" if m is None else f"{m:{spec}} ± {_f(s, spec)}"


def _ci(d, spec: str = "+.3f") -> str:
    if not d or d.get("mean") is None:
        return ""
    lo, hi = d["ci"]
    return f"{d['mean']:{spec}} [{lo:{spec}}, {hi:{spec}}]"


def in_context(doc: dict) -> str:
    """(n, L) rows: return ± s.e., value error ± s.e., paired differences to the previous n (95 % CI),
    diverged count; then [W]'s TD rows."""
    out = [
        "| L | n | greedy return | paired diff. to previous n [95 % CI] | value error vs Q^pi "
        "| paired diff. | diverged |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in doc["rows"]:
        out.append(
            f"| {r['L']} | {r['n']} | {_pm(r['normalized_return'], r['sem'])} | "
            f"{_ci(r['return_diff_prev'])} | "
            f"{_pm(r['value_error'], r['value_error_sem'])} | {_ci(r['value_error_diff_prev'])} | "
            f"{r['n_diverged']}/{r['n_mdps']} |"
        )
    out += [
        "",
        "| L | n | TD value error vs V^pi ([W], (W3)) | paired diff. to previous n [95 % CI] | diverged |",
    ]
    out.append("|---|---|---|---|---|")
    for r in doc["td_rows"]:
        out.append(
            f"| {r['L']} | {r['n']} | {_pm(r['value_error'], r['sem'])} | "
            f"{_ci(r['value_error_diff_prev'])} | "
            f"{r['n_diverged']}/{r['n_mdps']} |"
        )
    return "\n".join(out)


def closed_loop(doc: dict) -> str:
    """One table per budget: rows alpha, columns n, cells return ± s.e. (diverged loops counted)."""
    ns = doc["config"]["ns"]
    out = []
    for budget in ("updates", "env_steps"):
        points = sorted({r["point"] for r in doc["rows"] if r["budget"] == budget})
        for p in points:
            out.append(f"**{p} {'updates' if budget == 'updates' else 'environment steps'}**")
            out.append("")
            out.append("| alpha | " + " | ".join(f"n = {n}" for n in ns) + " |")
            out.append("|---|" + "---|" * len(ns))
            for alpha in doc["config"]["alphas"]:
                cells = []
                for n in ns:
                    (r,) = [
                        x
                        for x in doc["rows"]
                        if x["budget"] == budget and x["point"] == p and x["alpha"] == alpha and x["n"] == n
                    ]
                    c = _pm(r["normalized_return"], r["sem"], ".2f")
                    if r["n_diverged"]:
                        c += f" ({r['n_diverged']} div.)"
                    cells.append(c)
                out.append(f"| {alpha} | " + " | ".join(cells) + " |")
            out.append("")
    return "\n".join(out).rstrip()


def closed_loop_diffs(doc: dict, alpha: float) -> str:
    """Paired differences to the previous n at one ``alpha``, one row per budget point."""
    ns = doc["config"]["ns"]
    out = ["| budget | " + " | ".join(f"n = {a} -> {b}" for a, b in zip(ns, ns[1:], strict=False)) + " |"]
    out.append("|---|" + "---|" * (len(ns) - 1))
    pts = sorted({(r["budget"], r["point"]) for r in doc["rows"]}, key=lambda t: (t[0] != "updates", t[1]))
    for budget, p in pts:
        rows = [r for r in doc["rows"] if r["budget"] == budget and r["point"] == p and r["alpha"] == alpha]
        rows = sorted(rows, key=lambda r: r["n"])
        name = f"{p} {'updates' if budget == 'updates' else 'steps'}"
        out.append(f"| {name} | " + " | ".join(_ci(r["diff_prev"], "+.2f") for r in rows[1:]) + " |")
    return "\n".join(out)


SEED_COLS = (
    ("1 - cos", ".1e"),
    ("cos_full", ".4f"),
    ("cos_readout", ".4f"),
    ("heldout_err", ".2e"),
    ("heldout_err_no_cubic", ".2e"),
    ("loss", ".1e"),
    ("norm_Vbar22", ".3g"),
    ("norm_P22_sym", ".1e"),
    ("norm_P22", ".2e"),
    ("frozen_moved", ".1g"),
    ("c", ".4f"),
)


def seeds(doc: dict) -> str:
    """One row per seed of :func:`lsa_theory.experiments.training.train_seeds`."""
    out = ["| seed | " + " | ".join(k for k, _ in SEED_COLS) + " |", "|---|" + "---|" * len(SEED_COLS)]
    for r in doc["rows"]:
        r = r | {"1 - cos": None if r.get("cos") is None else 1.0 - r["cos"]}
        out.append(f"| {r['seed']} | " + " | ".join(_f(r.get(k), s) for k, s in SEED_COLS) + " |")
    return "\n".join(out)


def diversity(doc: dict) -> str:
    """One row per (seed, k, features) run of the (M7) training sweep."""
    cols = (
        ("1 - cos", ".1e"),
        ("cos_full", ".4f"),
        ("invisible_dim", "d"),
        ("loss", ".1e"),
        ("heldout_err", ".2e"),
    )
    out = [
        "| seed | k | frames | features | " + " | ".join(k for k, _ in cols) + " |",
        "|---|---|---|---|" + "---|" * len(cols),
    ]
    for r in doc["rows"]:
        feats = "shared" if r["shared_features"] else "resampled"
        r = r | {"1 - cos": None if r.get("cos") is None else 1.0 - r["cos"]}
        cells = " | ".join(_f(r.get(k), s) for k, s in cols)
        out.append(f"| {r.get('seed', 0)} | {r['k']} | {r['frames']} | {feats} | {cells} |")
    return "\n".join(out)


def _pci(p, spec: str = "+.3f") -> str:
    """``mean [ci_low, ci_high]`` of a :func:`lsa_theory.experiments.stats.paired_ci` dict."""
    if not p or p.get("ci_low") is None:
        return "—" if not p or p.get("mean") is None else format(p["mean"], spec)
    return f"{p['mean']:{spec}} [{p['ci_low']:{spec}}, {p['ci_high']:{spec}}]"


def returns_by_k(doc: dict) -> str:
    """Groups (diverged loops counted) and then every (seed, k, features) row. A document with the
    MDP-clustered comparison (``minus_teacher`` in its groups, :mod:`lsa_theory.experiments.stats`) shows the
    return over all loops (a diverged loop scored ``diverged_score``) with the clustered s.e. and
    the clustered paired interval against the teacher; older documents have only the pooled
    return of the loops that did not diverge, shown as such."""
    groups = sorted(doc["groups"], key=lambda g: (g["shared_features"], g["k"]))
    if any("minus_teacher" in g for g in groups):
        score = doc.get("diverged_score", 0.0)
        out = [
            f"| k | features | seeds | loops diverged | return, all loops (diverged = {score:g}; ± s.e. over "
            "MDPs) | block − teacher, paired by MDP, seeds averaged per MDP (95 % CI, MDPs) |",
            "|---|---|---|---|---|---|",
        ]
        for g in groups:
            feats = "shared" if g["shared_features"] else "resampled"
            ret = _pm(g["normalized_return_mean"], g["normalized_return_clustered_sem"])
            mt = g["minus_teacher"]
            out.append(
                f"| {g['k']} | {feats} | {g['n_seeds']} | {g['n_diverged']}/{g['n_loops']} | {ret} | "
                f"{_pci(mt)} ({mt['n']}) |"
            )
    else:
        out = [
            "| k | features | seeds | loops diverged | return of the other loops (mean ± s.e.) |",
            "|---|---|---|---|---|",
        ]
        for g in groups:
            feats = "shared" if g["shared_features"] else "resampled"
            ret = _pm(g["normalized_return_converged_mean"], g["normalized_return_converged_sem"])
            out.append(f"| {g['k']} | {feats} | {g['n_seeds']} | {g['n_diverged']}/{g['n_loops']} | {ret} |")
    out += ["", "| seed | k | features | held-out error | diverged | return (all loops) | return (others) |"]
    out.append("|---|---|---|---|---|---|---|")
    for r in doc["rows"]:
        feats = "shared" if r["shared_features"] else "resampled"
        out.append(
            f"| {r.get('seed', 0)} | {r['k']} | {feats} | {_f(r.get('heldout_err'), '.2e')} | "
            f"{r['n_diverged']}/{r.get('n_mdps', r.get('n_seeds'))} | {_f(r['normalized_return'])} | "
            f"{_f(r.get('normalized_return_nanmean'))} |"
        )
    return "\n".join(out)


def pretrain_seeds(doc: dict) -> str:
    """(P3), one row per (configuration, seed): held-out return of the (P2) block ± s.e.m., before
    training and of the exact teacher, the loops that diverged of each of the three (of the
    held-out MDPs), the paired ``rl - start`` and ``rl - exact`` differences (95 % CI over all
    held-out MDPs, a diverged loop scored 0: :mod:`lsa_theory.experiments.stats`), the update correlation with
    the layout's teacher and the effective-block cosine to its construction; a run whose (P2)
    training diverged is a row saying so."""
    ci = _pci

    def div(r):
        n = r["paired"]["rl-rl_initial"]["n"]
        return " / ".join(str(r[b]["n_diverged"]) for b in ("rl", "rl_initial", "exact")) + f" of {n}"

    out = [
        "| configuration | seed | (P2) block | before training | exact teacher | loops diverged ((P2) / "
        "start / exact) | (P2) − start (95 % CI) | (P2) − exact (95 % CI) | update corr. | cos effective "
        "| above start |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for g in doc["groups"]:
        for r in g["runs"]:
            if "failed" in r:
                failed = f"**training failed**: {r['failed']}"
                out.append(f"| {g['name']} | {r['seed']} | {failed} | | | | | | | | **no** |")
                continue
            rl, pa = r["rl"], r["paired"]
            above = "yes" if pa["rl-rl_initial"]["ci_low"] > 0 else "**no**"
            out.append(
                f"| {g['name']} | {r['seed']} | {_pm(rl['heldout_return'], rl['heldout_return_sem'])} | "
                f"{_f(r['rl_initial']['heldout_return'])} | {_f(r['exact']['heldout_return'])} | {div(r)} | "
                f"{ci(pa['rl-rl_initial'])} | {ci(pa['rl-exact'])} | {_f(rl['update_corr_sarsa'], '.2f')} | "
                f"{_f(rl['cos_S3_effective'], '.2f')} | {above} |"
            )
    return "\n".join(out)


def td_pretrain_runs(doc: dict) -> str:
    """(WP6), one row per (k, seed) run of ``td_pretrain.json``: the distances to Fix(G), to (W3) up
    to scale and to theta*, the share of the norm inside Fix (``1 - dist_fix^2``, THEORY's ``sym``),
    the effective ``(a, b)`` of the part in Fix, the held-out relative value error and whether the
    run diverged, after the last Adam step."""
    out = [
        "| k | seed | Adam steps | dist. to Fix(G) | share in Fix | dist. to (W3) | dist. to theta* | (a, b) "
        "| held-out value error | diverged |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in doc["runs"]:
        ab = "—" if r.get("ab") is None else f"({r['ab'][0]:.3f}, {r['ab'][1]:.3f})"
        out.append(
            f"| {r['k']} | {r['seed']} | {r['steps']} | {_f(r['dist_fix'])} | {_f(1 - r['dist_fix'] ** 2)} | "
            f"{_f(r['dist_w3'])} | {_f(r['dist_theta_star'])} | {ab} | {_f(r['heldout_value_err'])} | "
            f"{'**yes**' if r['diverged'] else 'no'} |"
        )
    return "\n".join(out)


def td_pretrain_stationary(doc: dict) -> str:
    """(WP3), one row per size of ``td_pretrain.json``: ``(a*, b*)`` ± s.e., THEORY's values, the
    distance of the two in s.e. of the difference, the eigenvalues of ``E[f (f - gamma f')^T]`` and
    where the flow of the expected update on Fix from the (W3) point ends."""
    out = [
        "| d | n | windows | tasks | a* | b* | THEORY's (a*, b*) | z (a, b) | eigenvalues "
        "| flow from (W3) ends at (a, b) | its distance to theta* | to (W3) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in doc["stationary"]["sizes"]:
        th = r.get("theory")
        ref = "—" if th is None else f"({_pm(*th[0])}, {_pm(*th[1])})"
        z = "—" if th is None else f"{r['z_vs_theory'][0]:.2f}, {r['z_vs_theory'][1]:.2f}"
        fl = r["flow"]
        out.append(
            f"| {r['d']} | {r['n']} | {r['windows_per_trajectory']} | {r['tasks']:,} | "
            f"{_pm(r['a_star'], r['a_star_sem'])} | {_pm(r['b_star'], r['b_star_sem'])} | {ref} | {z} | "
            f"{', '.join(f'{e:.4f}' for e in r['eig'])} | ({fl['end_ab'][0]:.4f}, {fl['end_ab'][1]:.4f}) | "
            f"{fl['dist_theta_star']:.1e} | {fl['dist_w3']:.3f} |"
        )
    return "\n".join(out)


def attention_runs(doc: dict) -> str:
    """One row per (attention, heads, seed) run of ``attention.json``
    (:mod:`lsa_theory.experiments.attention`): Adam steps done, final training loss (M1), held-out
    error, correlation of the block's update with the teacher's, (S3) norm share, the (M2) operator
    cosine (linear and relu heads), the attention entropy (softmax), cos and orbit distance of (S4)
    (one linear head), diverged, wall time."""
    out = [
        "| attention | heads | seed | steps | training loss (M1) | held-out error | update corr. "
        "| (S3) norm share | operator cos | attn. entropy | cos (S4) | orbit dist. | diverged "
        "| wall time (s) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in doc["runs"]:
        out.append(
            f"| {r['attention']} | {r['heads']} | {r['seed']} | {r['steps_done']} | "
            f"{_f(r['loss_final'], '.2e')} | {_f(r['heldout_err'])} | {_f(r['update_corr'], '.4f')} | "
            f"{_f(r['s3_share'])} | {_f(r['op_cos'], '.4f')} | {_f(r.get('attn_entropy'))} | "
            f"{_f(r['cos'], '.4f')} | {_f(r['orbit_dist_rel'])} | "
            f"{'**yes**' if r['diverged'] else 'no'} | {r['wall_time']:.0f} |"
        )
    return "\n".join(out)


def attention_summary(doc: dict) -> str:
    """One row per model (attention, heads) of ``attention.json``: runs, diverged, and the median
    (range over the seeds) of the held-out error, the update correlation, the (S3) norm share, the
    operator cosine and the attention entropy."""

    def med(r, m, spec=".3g"):
        if r.get(m) is None:
            return "—"
        return f"{r[m]:{spec}} ({r[m + '_min']:{spec}} to {r[m + '_max']:{spec}})"

    out = [
        "| attention | heads | runs | diverged | held-out error | update corr. | (S3) norm share "
        "| operator cos | attn. entropy |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in doc["summary"]:
        out.append(
            f"| {r['attention']} | {r['heads']} | {r['runs']} | {r['diverged']} | {med(r, 'heldout_err')} | "
            f"{med(r, 'update_corr', '.4f')} | {med(r, 's3_share', '.3f')} | {med(r, 'op_cos', '.4f')} | "
            f"{med(r, 'attn_entropy', '.3f')} |"
        )
    return "\n".join(out)


def attention_construction(doc: dict) -> str:
    """The (S3) construction evaluated through each block of ``attention.json``: one row per probe
    (block, scale c), the held-out error and the update correlation."""
    out = ["| block | c | held-out error | update corr. |", "|---|---|---|---|"]
    for r in doc["construction"]["rows"]:
        c = "→ 0" if r["c"] == 0 else f"{r['c']:g}"
        out.append(f"| {r['block']} | {c} | {r['heldout_err']:.4g} | {r['update_corr']:.4f} |")
    return "\n".join(out)


TABLES = {
    "in-context": in_context,
    "closed-loop": closed_loop,
    "seeds": seeds,
    "diversity": diversity,
    "returns-by-k": returns_by_k,
    "pretrain-seeds": pretrain_seeds,
    "td-pretrain-runs": td_pretrain_runs,
    "td-pretrain-stationary": td_pretrain_stationary,
    "attention-runs": attention_runs,
    "attention-summary": attention_summary,
    "attention-construction": attention_construction,
}


def table(kind: str, path: str | Path) -> str:
    """The markdown table ``kind`` (a key of :data:`TABLES`) of the JSON document at ``path``."""
    if kind not in TABLES:
        raise ValueError(f"kind: expected one of {sorted(TABLES)}, got {kind!r}")
    return TABLES[kind](read_json(Path(path)))


if __name__ == "__main__":
    print(table(sys.argv[1], sys.argv[2]))
