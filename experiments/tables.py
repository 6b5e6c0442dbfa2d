"""Markdown tables of saved results, so that documentation tables are regenerated, never retyped.

``python -m lsa_theory.experiments.tables KIND PATH`` prints the table of one saved document:
``in-context`` and ``closed-loop`` (``context_length_{regime}.json`` of
:mod:`lsa_theory.experiments.context_length`), ``seeds`` (``seeds.json`` of
:func:`lsa_theory.experiments.training.train_seeds`), ``diversity`` (``diversity_training.json``),
``returns-by-k`` (``returns_by_k.json``) and ``pretrain-seeds`` (``docs/figures/pretrain-seeds.json``:
every seed of every (P3) configuration), ``td-pretrain-runs`` and ``td-pretrain-stationary``
(``td_pretrain.json`` of :mod:`lsa_theory.experiments.td_pretrain`), ``attention-runs``,
``attention-summary`` and ``attention-construction`` (``attention.json`` of
:mod:`lsa_theory.experiments.attention`), ``depth`` (every table of docs/depth.md from ``depth.json`` of
:mod:`lsa_theory.experiments.depth`), ``regression-gamma-check`` and ``regression-trained``
(``regression.json`` of :mod:`lsa_theory.experiments.regression`), ``regression-laws`` and
``regression-laws-calibration`` (``regression-laws.json``), ``regression-attention-runs``,
``regression-attention-summary`` and ``regression-attention-constructed`` (``regression-attention.json``),
``regression-softmax-lines`` (``regression-softmax-lines.json``), ``actor-critic-variants``
(``actor_critic_variants.json``, the two (A6) tables), ``pretrain-sampled`` (``pretrain-attention.json``,
``pretrain-heads.json`` and ``pretrain --heads/--attention``'s ``pretrain_heads.json``).
``regression-law-runs`` is one table of several
documents (:data:`MULTI`; ``python -m lsa_theory.experiments.tables regression-law-runs PATH ...``: the
saved ``regression --law W --covariates X`` runs, a row each). Every row of the document appears
(reporting rule: tables list every run, failures included). One set of cell formatters serves all:
:func:`_f`, :func:`_pm`, :func:`_ci`, :func:`_pci` (em dash for a missing value) and :func:`_g` (``-`` for
a missing value)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from .io import read_json

__all__ = ["TABLES", "MULTI", "table"]


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


def _g(x, spec: str = ".4g") -> str:
    """``format(x, spec)`` for a float, ``-`` for None, ``str(x)`` for anything else (the depth, law and
    regression-attention tables; :func:`_f` writes an em dash for None)."""
    if x is None:
        return "-"
    if isinstance(x, float) and not np.isfinite(x):
        return "inf"
    return format(x, spec) if isinstance(x, float) else str(x)


def _mean_sd(rows: list[dict], value: str) -> str:
    vals = np.array([r[value] for r in rows], dtype=float)
    fin = vals[np.isfinite(vals)]
    if not fin.size:
        return "-"
    with np.errstate(over="ignore"):  # a diverged run's 1e243 squared: the s.d. is inf, shown so
        sd = f" ± {fin.std(ddof=1):.2g}" if fin.size > 1 else ""
    return f"{fin.mean():.4g}{sd}"


def _depth_summary(doc: dict) -> list[str]:
    """The two summary tables: trained stacks (mean ± sample s.d. over seeds, runs, diverged) beside
    the tuned baselines at the same point."""
    cfg = doc["config"]
    reg, td = doc["regression"], doc["td"]
    base = {(r["study"], r["L"], r["N"], r["method"]): r for r in reg["baselines"]}
    params = cfg["reg_params"]
    lines = ["#### Summary: regression (held-out loss; trained: mean ± s.d. over seeds)", ""]
    lines += [
        "| study | L | N | " + " | ".join(f"trained {p} (runs, diverged)" for p in params)
        + " | gd | gd_layers | pgd | Gamma^-1 |",
        "|---|---|---|" + "---|" * len(params) + "---|---|---|---|",
    ]  # fmt: skip
    points = list(dict.fromkeys((r["study"], r["L"], r["N"]) for r in reg["runs"]))
    if cfg["reg_N"] in cfg["reg_Ns"]:
        points += [("N", cfg["reg_N_layers"], cfg["reg_N"])]
    points = sorted(set(points), key=lambda p: (p[0], p[1], p[2]))
    for study, L, N in points:
        cells = []
        for p in params:
            rs = [r for r in reg["runs"] if (r["L"], r["N"], r["param"]) == (L, N, p)]
            cells.append(
                f"{_mean_sd(rs, 'heldout_loss')} ({len(rs)}, {sum(r['diverged'] for r in rs)})" if rs else "-"
            )
        bcells = []
        for m in ("gd", "gd_layers", "pgd", "gamma_inv"):
            b = base.get((study, L, N, m)) or (base.get(("L", L, N, m)) if m != "gamma_inv" else None)
            if m == "gamma_inv":
                b = next((r for r in reg["baselines"] if r["method"] == m and r["N"] == N and L == 1), None)
            bcells.append("-" if b is None else f"{_g(b['heldout_loss'])}")
        lines.append(f"| {study} | {L} | {N} | " + " | ".join(cells + bcells) + " |")
    n0 = str(cfg["td_n"])
    lines += ["", f"#### Summary: TD (held-out rel_msve at n = {n0}; trained: mean ± s.d. over seeds)", ""]
    modes = cfg["td_modes"]
    lines += [
        "| kind | L | "
        + " | ".join(f"trained {m} (runs, diverged)" for m in modes)
        + " | batch TD (tuned) | LSTD |",
        "|---|---|" + "---|" * len(modes) + "---|---|",
    ]
    for kind in cfg["td_kinds"]:
        lst = next(
            r for r in td["baselines"] if r["kind"] == kind and r["method"] == "lstd" and str(r["n"]) == n0
        )
        for L in cfg["td_layers"]:
            cells = []
            for m in modes:
                rs = [
                    r | {"e": r["heldout_by_n"][n0][0]}
                    for r in td["runs"]
                    if (r["kind"], r["L"], r["mode"]) == (kind, L, m)
                ]
                cells.append(f"{_mean_sd(rs, 'e')} ({len(rs)}, {sum(r['diverged'] for r in rs)})")
            b = next(
                r for r in td["baselines"]
                if (r["kind"], r["L"], str(r["n"]), r["method"]) == (kind, L, n0, "batch_td")
            )  # fmt: skip
            lines.append(
                f"| {kind} | {L} | "
                + " | ".join(cells)
                + f" | {_g(b['heldout_err'])} | {_g(lst['heldout_err'])} |"
            )
    return lines + [""]


def depth_tables(doc: dict) -> str:
    """The study tables of docs/depth.md from a saved ``depth.json`` document: every trained run
    (regression, TD), every baseline row. Markdown text."""
    lines = _depth_summary(doc) + ["#### Regression: every trained stack", ""]
    lines += [
        "| study | L | N | param | seed | steps | final train loss | held-out loss | s.e. | diverged |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in doc["regression"]["runs"]:
        lines.append(
            f"| {r['study']} | {r['L']} | {r['N']} | {r['param']} | {r['seed']} | {r['steps']} | "
            f"{_g(r['train_loss_final'])} | {_g(r['heldout_loss'])} | {_g(r['heldout_se'], '.2g')} | "
            f"{r['diverged']} |"
        )
    lines += ["", "#### Regression: tuned baselines and the one-layer optimum", ""]
    lines += [
        "| study | L | N | method | tuned steps | train loss | held-out loss | s.e. | diverged |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in doc["regression"]["baselines"]:
        steps = "-" if r["steps"] is None else ", ".join(f"{e:.3g}" for e in r["steps"])
        lines.append(
            f"| {r['study']} | {r['L']} | {r['N']} | {r['method']} | {steps} | {_g(r['train_loss'])} | "
            f"{_g(r['heldout_loss'])} | {_g(r['heldout_se'], '.2g')} | {r['diverged']} |"
        )
    ns = [str(n) for n in doc["config"]["td_ns"]]
    lines += ["", "#### TD: every trained stack (held-out rel_msve at each context length n)", ""]
    lines += [
        "| kind | L | mode | seed | steps | final train loss | " + " | ".join(f"n = {n}" for n in ns)
        + " | diverged | worse than 0 |",
        "|---|---|---|---|---|---|" + "---|" * len(ns) + "---|---|",
    ]  # fmt: skip
    for r in doc["td"]["runs"]:
        cells = " | ".join(
            f"{_g(r['heldout_by_n'][n][0])} ± {_g(r['heldout_by_n'][n][1], '.2g')}" for n in ns
        )
        lines.append(
            f"| {r['kind']} | {r['L']} | {r['mode']} | {r['seed']} | {r['steps']} | "
            f"{_g(r['train_loss_final'])} | {cells} | {r['diverged']} | {r['worse_than_zero']} |"
        )
    lines += ["", "#### TD: batch TD(0) = (W3) with tuned alpha, and the exact fixed point (LSTD)", ""]
    lines += [
        "| kind | method | L | n | alpha | tune err | held-out rel_msve | s.e. | note |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in doc["td"]["baselines"]:
        note = (
            f"exists {r['exists']}/{r['tasks']}, median {_g(r['heldout_median'])}"
            if r["method"] == "lstd"
            else ""
        )
        lines.append(
            f"| {r['kind']} | {r['method']} | {_g(r['L'])} | {r['n']} | {_g(r['alpha'], '.4g')} | "
            f"{_g(r['tune_err'])} | {_g(r['heldout_err'])} | {_g(r['heldout_se'], '.2g')} | {note} |"
        )
    return "\n".join(lines + [""] + _depth_ood(doc)) + "\n"


def _mean_err(rows: list[dict], keys: tuple, values: tuple) -> float:
    return float(np.mean([r["err"] for r in rows if tuple(r[k] for k in keys) == values]))


def _depth_ood(doc: dict) -> list[str]:
    """Out-of-distribution errors (mean over seeds for the trained stacks, every seed counted) and
    the interpolation's population losses."""
    ood = doc["ood"]
    lines = ["#### Out of distribution: regression (normalised error mean (yhat - y)^2 / mean y^2)", ""]
    scales = sorted({r["scale"] for r in ood["regression"]})
    head = "| shift | L | who | " + " | ".join(f"s = {s:g}" for s in scales) + " |"
    lines += [head, "|---|---|---|" + "---|" * len(scales)]
    groups = dict.fromkeys((r["shift"], r["L"], r["who"]) for r in ood["regression"])
    for shift, L, who in groups:
        cells = [
            _g(_mean_err(ood["regression"], ("shift", "L", "who", "scale"), (shift, L, who, s)))
            for s in scales
        ]
        lines.append(f"| {shift} | {L} | {who} | " + " | ".join(cells) + " |")
    lines += ["", "#### Out of distribution: TD (held-out rel_msve at the training n)", ""]
    scales = sorted({r["scale"] for r in ood["td"]})
    lines += ["| shift | kind | L | who | " + " | ".join(f"s = {s:g}" for s in scales) + " |"]
    lines += ["|---|---|---|---|" + "---|" * len(scales)]
    groups = dict.fromkeys((r["shift"], r["kind"], r["L"], r["who"]) for r in ood["td"])
    for shift, kind, L, who in groups:
        key = ("shift", "kind", "L", "who", "scale")
        cells = [_g(_mean_err(ood["td"], key, (shift, kind, L, who, s))) for s in scales]
        lines.append(f"| {shift} | {kind} | {L} | {who} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"#### Interpolation, L = 1: population loss (R4) along A_t (minimum {_g(ood['loss_star'])})",
        "",
    ]
    ts = sorted({r["t"] for r in ood["interpolation"]})
    shown = [t for t in ts if any(abs(t - u) < 1e-9 for u in (-0.5, 0.0, 0.5, 0.9, 1.0, 1.1, 1.5))] or ts
    lines += ["| param | seed | " + " | ".join(f"t = {t:g}" for t in shown) + " |"]
    lines += ["|---|---|" + "---|" * len(shown)]
    for param, seed in dict.fromkeys((r["param"], r["seed"]) for r in ood["interpolation"]):
        rows = {
            r["t"]: r["population_loss"]
            for r in ood["interpolation"]
            if (r["param"], r["seed"]) == (param, seed)
        }
        lines.append(f"| {param} | {seed} | " + " | ".join(_g(rows[t], ".5g") for t in shown) + " |")
    return lines


def regression_gamma_check(doc: dict) -> str:
    """The markdown table of docs/regression.md for ``doc["gamma_check"]`` of a saved
    ``regression.json``: F, relative error, Wald statistic, critical value, p-value, scale ± s.e.,
    passed."""
    g = doc["gamma_check"]
    return "\n".join(
        [
            f"| F | `||M_F - Gamma^{{-1}}|| / ||Gamma^{{-1}}||` | Wald `T` (chi^2_{g['dof']}) | "
            f"critical (alpha = {g['alpha']:g}) | p-value | scale of `M_F` along `Gamma^{{-1}}` | "
            "P(miss a 3 % error) | passed |",
            "|---|---|---|---|---|---|---|---|",
            f"| {g['F']} | {g['rel_err']:.4f} | {g['wald']:.2f} | {g['critical']:.2f} | "
            f"{g['p_value']:.2f} | {g['scale']:.4f} +- {g['scale_se']:.4f} | {g['miss_3pct']:.1e} | "
            f"{g['passed']} |",
        ]
    )


def regression_laws_calibration(doc: dict) -> str:
    """The markdown table of the Wald calibration of a saved ``regression-laws.json``."""
    lines = [
        "| x | F | samples | Wald mean (chi^2 mean = dof) | median | max | critical (99.9 %) | above it |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in doc["calibration"]:
        lines.append(
            f"| {c['covariates']} | {c['F']} | {c['reps']} | {c['mean']:.1f} ({c['dof']}) | "
            f"{c['median']:.1f} | {c['max']:.1f} | {c['critical']:.1f} | {c['exceed']} |"
        )
    return "\n".join(lines)


def regression_laws(doc: dict) -> str:
    """The markdown table of docs/regression.md for a saved ``regression-laws.json``."""
    lines = [
        f"| d | N | kappa | w | x | c2 | Wald `T` of `M*` | critical (alpha = {doc['alpha']:g}) | "
        "`||M_F - M*|| / ||M*||` | Wald of `Gamma^{-1}` (distance) | Wald of the Gaussian-x optimum "
        "(distance) | passed |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in doc["rows"]:
        gauss = (
            "-"
            if r["wald_gaussian"] is None
            else f"{_g(r['wald_gaussian'], '.3g')} ({r['rel_gaussian']:.2f})"
        )
        lines.append(
            f"| {r['d']} | {r['N']} | {r['kappa']:g} | {r['w']} | {r['x']} | {r['c2']:.3f} | "
            f"{r['wald']:.1f} | {r['critical']:.1f} | {r['rel_err']:.1e} | "
            f"{_g(r['wald_gamma'], '.3g')} ({r['rel_gamma']:.2f}) | {gauss} | {r['passed']} |"
        )
    return "\n".join(lines)


def regression_law_runs(docs: list[dict]) -> str:
    """The markdown table of docs/regression.md for saved ``regression --law W --covariates X``
    documents: the target, the population flows' worst relative error to it and loss gap, the
    sampled slope, the least-squares check (Wald against its critical value, scale of ``M_F`` along
    the target), and the verdict."""
    lines = [
        "| w | x | target | population max `rel_err` | max abs `loss_gap` | sampled slope | "
        "least squares: F, Wald (critical) | scale of `M_F` | passed |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for doc in docs:
        g = doc["gamma_check"]
        rel = max(r["rel_err"] for r in doc["configs"])
        gap = max(abs(r["loss_gap"]) for r in doc["configs"])
        lines.append(
            f"| {doc['law']['w']} | {doc['law']['x']} | `{doc['target']}` | {rel:.1e} | {gap:.1e} | "
            f"{doc['slope']:.3f} | {g['F']}, {g['wald']:.2f} ({g['critical']:.2f}) | "
            f"{g['scale']:.4f} +- {g['scale_se']:.4f} | {doc['passed']} |"
        )
    return "\n".join(lines)


def regression_attention_constructed(doc: dict) -> str:
    """The constructions of a saved study (markdown): construction, held-out loss +- s.e."""
    lines = ["| one layer, constructed | held-out loss |", "|---|---|"]
    lines += [
        f"| {c['construction']} | {c['test_loss']:.4f} +- {c['test_loss_se']:.4f} |"
        for c in doc["constructed"]
    ]
    return "\n".join(lines)


def regression_attention_runs(doc: dict) -> str:
    """Every run of a saved study (markdown): ``L``, param, attention, ``H``, seed, test loss +- s.e.,
    the one-head linear run's loss, the (R3) stack of the learned ``A_l``, ``cos(A_1, Gamma^{-1})``,
    layer 1's share in (R3)'s blocks, score spread, mean-token term, diverged."""
    lines = [
        "| L | param | attention | H | seed | test loss | linear, H = 1 | (R3) of the A_l | "
        "cos(A_1, Gamma^-1) | (R3) share | score spread | mean-token term | diverged |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in doc["runs"]:
        lay = r["layers"][0] if r["layers"] else {}
        lines.append(
            f"| {r['L']} | {r['param']} | {r['attention']} | {r['heads']} | {r['seed']} | "
            f"{_g(r['test_loss'], '.4f')} +- {_g(r.get('test_loss_se'), '.4f')} | "
            f"{_g(r['linear_test_loss'], '.4f')} | {_g(r['test_loss_as_pgd'], '.4f')} | "
            f"{_g(lay.get('cos_Gamma_inv'), '.3f')} | {_g(lay.get('r3_fraction'), '.3f')} | "
            f"{_g(r['score_spread'], '.3f')} | {_g(r['mean_token_term'], '.3f')} | {r['diverged']} |"
        )
    return "\n".join(lines)


def _mean_se(x: np.ndarray) -> str:
    """``mean +- s.e.`` (4 decimals) of the values ``x``, the mean alone for one value, ``-`` for none."""
    if x.size == 0:
        return "-"
    return f"{x.mean():.4f}" + (f" +- {x.std(ddof=1) / np.sqrt(x.size):.4f}" if x.size > 1 else "")


def regression_attention_summary(doc: dict) -> str:
    """Per ``(L, param, attention, H)`` over the seeds (markdown): the mean test loss +- its s.e.
    over seeds, the mean paired difference to the one-head linear run +- its s.e. over seeds, the
    one-layer optimum ``L*``, runs diverged of runs."""
    lines = [
        "| L | param | attention | H | mean test loss (+- s.e. over seeds) | minus linear, H = 1 (paired) "
        "| L* (Gamma^-1, one layer) | diverged |",
        "|---|---|---|---|---|---|---|---|",
    ]
    keys = list(dict.fromkeys((r["L"], r["param"], r["attention"], r["heads"]) for r in doc["runs"]))
    for key in keys:
        rs = [r for r in doc["runs"] if (r["L"], r["param"], r["attention"], r["heads"]) == key]
        ok = [r for r in rs if not r["diverged"]]
        loss = np.array([r["test_loss"] for r in ok])
        diff = np.array(
            [r["test_loss"] - r["linear_test_loss"] for r in ok if r["linear_test_loss"] is not None]
        )

        lines.append(
            f"| {key[0]} | {key[1]} | {key[2]} | {key[3]} | {_mean_se(loss)} | {_mean_se(diff)} | "
            f"{doc['one_layer_optimum']:.4f} | {len(rs) - len(ok)} of {len(rs)} |"
        )
    return "\n".join(lines)


def regression_trained(doc: dict) -> str:
    """The trained stacks of a saved ``regression.json`` (:mod:`lsa_theory.experiments.regression`),
    one row per stack: ``L``, param, heads, attention, held-out loss +- s.e., the loss of its start,
    of its family's null member (:func:`lsa_theory.experiments.regression.stack.null_loss`; both
    only for a nonlinear attention), of the zero predictor, the one-layer optimum ``L*``, the (R3)
    stack of the learned ``A_l``, diverged. ``-`` where a document predates a field (before heads:
    one linear head)."""
    lines = [
        "| L | param | H | attention | held-out loss | its start | null member | zero predictor | L* "
        "| (R3) of the A_l | diverged |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in doc["trained"]:
        loss = f"{_g(r['test_loss'], '.4f')} +- {_g(r.get('test_loss_se'), '.4f')}"
        refs = " | ".join(_g(r.get(k), ".4f") for k in ("loss_start", "loss_null", "loss_zero"))
        lines.append(
            f"| {r['L']} | {r['param']} | {r.get('heads', 1)} | {r.get('attention', 'linear')} | {loss} | "
            f"{refs} | {r['one_layer_optimum']:.4f} | {_g(r['test_loss_as_pgd'], '.4f')} | "
            f"{_g(r.get('diverged'))} |"
        )
    return "\n".join(lines)


def regression_softmax_lines(doc: dict) -> str:
    """What the sparse softmax family reaches on the lines ``A_{l,h} = a M`` of a saved
    ``regression-softmax-lines.json``
    (:func:`lsa_theory.experiments.regression.attention.sparse_softmax_lines`), one row per ``L``:
    the zero predictor's loss, the null member ``A = 0`` (closed form; measured +- s.e.), the start,
    and the best ``a`` with its held-out loss +- s.e. on ``M = I`` and on ``M = Gamma^{-1}``."""
    lines = [
        "| L | H | zero predictor | null member A = 0 (closed form) | A = 0, measured | start "
        "| best on A = a I (a) | best on A = a Gamma^-1 (a) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in doc["rows"]:
        best = [r["lines"][m] for m in ("I", "Gamma^-1")]
        cells = [f"{b['best_loss']:.4f} +- {b['best_loss_se']:.4f} ({b['best_a']:.3g})" for b in best]
        lines.append(
            f"| {r['L']} | {r['heads']} | {r['loss_zero']:.4f} | {r['loss_null']:.4f} | "
            f"{r['loss_null_measured']:.4f} +- {r['loss_null_se']:.4f} | {r['loss_start']:.4f} | "
            + " | ".join(cells)
            + " |"
        )
    return "\n".join(lines)


def actor_critic_variants_tables(doc: dict) -> str:
    """The two (A6) tables of docs/actor-critic.md from a saved ``actor_critic_variants.json``:
    the expected actor step (mean ± s.e., max; cosine mean ± s.e.) and the closed loop (returns ±
    s.e., ``max |w_block - w_teacher|``, diverged), one row per variant."""
    from lsa_theory import constructions

    from .actor_critic_variants.experiment import Q_STEP_CEILING, VARIANTS  # not the face: it prints this

    label = {"state": "state value", "action": "action value"}
    out = [
        "| critic | `|E[delta g]|` (mean +- s.e., max) | cosine with `grad J` (mean +- s.e.) |",
        "|---|---|---|",
    ]
    for r in doc["rows"]:
        d = constructions.ALGORITHMS[r["algo"]].dims(9, 4).d
        name = f"{label[r['critic']]}, d = {d}" + (" (default)" if r["algo"] == VARIANTS[0] else "")
        if r["step_norm_max"] < Q_STEP_CEILING:  # action-value critic: the step is 0, its value round-off
            step = f"{r['step_norm_mean']:.1e} +- {r['step_norm_sem']:.1e}, max {r['step_norm_max']:.1e}"
            cos = f"{r['cosine_mean']:.2f} +- {r['cosine_sem']:.2f} (the step is round-off)"
        else:
            step = f"{r['step_norm_mean']:.3f} +- {r['step_norm_sem']:.3f}, max {r['step_norm_max']:.3f}"
            cos = f"{r['cosine_mean']:.3f} +- {r['cosine_sem']:.3f}"
        out.append(f"| {name} | {step} | {cos} |")
    out += [
        "",
        "| critic | frozen block | exact teacher | max abs(w_block - w_teacher) | diverged |",
        "|---|---|---|---|---|",
    ]
    for r in doc["rows"]:
        name = f"{label[r['critic']]} " + ("(default)" if r["algo"] == VARIANTS[0] else f"(`{r['algo']}`)")
        out.append(
            f"| {name} | {r['normalized_return']:.3f} +- {r['normalized_return_sem']:.3f} | "
            f"{r['normalized_return_teacher']:.3f} +- {r['normalized_return_teacher_sem']:.3f} | "
            f"{r['max_w_diff']:.1e} | {r['diverged']} / {r['n_mdps']} |"
        )
    return "\n".join(out)


def pretrain_sampled(doc: dict) -> str:
    """A :func:`lsa_theory.experiments.pretrain.sampled.compare_sampled` (or ``compare_trained``)
    document, one row per run in its order: block, seed, held-out return (mean ± s.e.m., diverged
    loops) of (P2), (P1) and the start, the paired ``rl - teacher`` and ``rl - initial`` (mean and
    95 % interval), (P2) skipped steps and the (P1) final loss. A ``compare_trained`` document (runs
    with a ``route``) has a (P2) route column after the block."""

    def ret(e: dict) -> str:
        return f"{_f(e['heldout_return'], '+.3f')} ± {_f(e['heldout_return_sem'])} ({e['n_diverged']})"

    def ci(c: dict) -> str:
        return f"{_f(c['mean'], '+.3f')} [{_f(c['ci_low'], '+.3f')}, {_f(c['ci_high'], '+.3f')}]"

    routed = any("route" in r for r in doc["runs"])
    rows = [
        "| block |" + (" (P2) route |" if routed else "") + " seed | (P2) return | (P1) return | start | "
        "(P2) - (P1) | (P2) - start | skipped | (P1) loss |",
        "|---|---|---|---|---|---|---|---|---|" + ("---|" if routed else ""),
    ]
    for r in doc["runs"]:
        block = f"| {r['attention']} x {r['heads']} |" + (f" {r['route']} |" if routed else "")
        rows.append(
            f"{block} {r['seed']} | {ret(r['rl'])} | {ret(r['teacher'])} | "
            f"{ret(r['initial'])} | {ci(r['rl-teacher'])} | {ci(r['rl-initial'])} | "
            f"{r['rl']['skipped']} | {r['teacher']['loss_final']:.2e} |"
        )
    return "\n".join(rows)


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
    "depth": depth_tables,
    "regression-gamma-check": regression_gamma_check,
    "regression-laws": regression_laws,
    "regression-laws-calibration": regression_laws_calibration,
    "regression-law-runs": regression_law_runs,
    "regression-attention-runs": regression_attention_runs,
    "regression-attention-summary": regression_attention_summary,
    "regression-attention-constructed": regression_attention_constructed,
    "regression-trained": regression_trained,
    "regression-softmax-lines": regression_softmax_lines,
    "actor-critic-variants": actor_critic_variants_tables,
    "pretrain-sampled": pretrain_sampled,
}

#: The kinds whose table is of several documents (``table(kind, path, path, ...)``), in order.
MULTI = frozenset({"regression-law-runs"})


def table(kind: str, *paths: str | Path) -> str:
    """The markdown table ``kind`` (a key of :data:`TABLES`) of the JSON document at the one path
    given, or, for a kind of :data:`MULTI`, of the documents at ``paths`` in order."""
    if kind not in TABLES:
        raise ValueError(f"kind: expected one of {sorted(TABLES)}, got {kind!r}")
    if not paths or (len(paths) > 1 and kind not in MULTI):
        want = "one or more paths" if kind in MULTI else "one path"
        raise ValueError(f"paths: {kind!r} takes {want}, got {len(paths)}")
    docs = [read_json(Path(p)) for p in paths]
    return TABLES[kind](docs if kind in MULTI else docs[0])


if __name__ == "__main__":
    print(table(sys.argv[1], *sys.argv[2:]))
