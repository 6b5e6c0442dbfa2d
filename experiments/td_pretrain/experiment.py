r"""The td-pretrain experiment: [W]'s multi-task TD pretraining, THEORY §10 (WP1)-(WP6), measured.

- ``invariance`` (WP2): the exact orbit average of the sampled update (d = 3, s = 10, n = 10, 16
  windows per trajectory) over the 48 signed permutations and over ``{I, -I}``, at the (W3) point, at a
  random point of Fix and at (W3) + noise, for L = 1 and L = 3, shared and per-layer weights; its part
  outside Fix relative to the part inside, beside its first-order round-off bound; and the same with
  the mutated group (permutations of the first half), which must not keep Fix;
- ``stationary`` (WP3): ``(a*, b*)`` with standard errors at both sizes of THEORY (d = 3, n = 10, 16
  windows; d = 4, n = 30, 64 windows), compared with THEORY's values (two s.e. of the difference), and
  the flow of the expected update on Fix from the (W3) point: where it ends (theta*, not (W3));
- ``run-k<k>-s<seed>`` (WP1), (WP5)-(WP6): pretraining at the authors' sizes (d = 4, s = 10, n = 30,
  gamma = 0.9, 64 windows, 5 mini-batches per task, Adam lr 1e-3, weight decay 1e-6,
  ``xavier_normal_(0.1)``, L = 1) with k distinct tasks (k in {1, 4, 16, 64} or fresh), logging the
  distances to Fix(G), to (W3) and to theta* and the held-out value error along training.

Results: ``td_pretrain.json`` in ``--out`` (public contract in :func:`run_td_pretrain`), the figure
``td_pretrain.png`` (:func:`lsa_theory.experiments.td_pretrain.plots.plot_td_pretrain`).
"""

from __future__ import annotations

import functools
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from lsa_theory import td_pretrain as tp
from lsa_theory.checks import check_gamma, check_int, check_real
from lsa_theory.dynamics import td_pretrain as dt

from ..io import atomic_write_json, provenance, to_jsonable, versions
from ..store import UnitStore

__all__ = [
    "TDPConfig",
    "CRITERIA",
    "THEORY_WP3",
    "UNITS_FILE",
    "units",
    "run_unit",
    "run_td_pretrain",
]

#: Thresholds of the verdicts (issue 21's done-when; THEORY §10's list of checks).
CRITERIA = {
    "outside_at_fix": 1e-14,  # relative, exact orbit average at points of Fix (also <= its bound)
    "outside_off_fix": 1e-4,  # relative, at (W3) + perturbation
    "stationary_se": 2.0,  # |ours - THEORY| / sqrt(se_ours^2 + se_theory^2)
    "flow_theta_star": 1e-6,  # relative distance of the flow's end to theta*
}

#: THEORY §10 (WP3): (d, n, windows per trajectory) -> ((a*, s.e.), (b*, s.e.)).
THEORY_WP3 = {(3, 10, 16): ((1.547, 0.021), (0.100, 0.022)), (4, 30, 64): ((1.702, 0.025), (0.255, 0.028))}


@dataclass(frozen=True)
class TDPConfig:
    """Sizes and budgets; ``quick()`` is ``--quick``. Training (the authors' defaults): ``d``, ``s``,
    ``n``, ``L``, ``gamma``, ``n_windows``, ``batches``, ``lr``, ``weight_decay``, ``gain``, ``kind``;
    ``outer`` outer iterations per run (``batches`` Adam steps each); ``ks`` the numbers of distinct
    tasks (``"fresh"``: a new task every iteration); ``seeds``; ``heldout`` held-out tasks;
    ``log_every``. Invariance: ``inv_tasks`` tasks at d = 3, n = 10, 16 windows; ``inv_alpha`` the
    (W3) step; ``inv_noise`` the off-set perturbation. Stationary point: ``stat_sizes`` rows
    ``(d, n, windows, tasks)``; the flow from the (W3) point ``(p, x, y) = (1, -alpha, 0)``."""

    d: int = 4
    s: int = 10
    n: int = 30
    L: int = 1
    gamma: float = 0.9
    n_windows: int = 64
    batches: int = 5
    lr: float = 1e-3
    weight_decay: float = 1e-6
    gain: float = 0.1
    kind: str = "boyan"
    outer: int = 2000
    ks: tuple = (1, 4, 16, 64, "fresh")
    seeds: tuple[int, ...] = (0, 1, 2)
    heldout: int = 50
    log_every: int = 50
    inv_tasks: int = 8
    inv_alpha: float = 0.3
    inv_noise: float = 0.05
    stat_sizes: tuple = ((3, 10, 16, 64_000), (4, 30, 64, 48_000))
    flow_t_max: float = 2e5
    seed: int = 0

    def __post_init__(self) -> None:
        """Every field checked; ValueError naming the field."""
        for name in ("d", "s", "n", "L", "n_windows", "batches", "heldout", "log_every", "inv_tasks"):
            check_int(getattr(self, name), name)
        check_int(self.s, "s", minimum=3)
        check_int(self.outer, "outer", minimum=0)
        check_gamma(self.gamma)
        for name in ("lr", "gain", "inv_alpha", "inv_noise", "flow_t_max"):
            check_real(getattr(self, name), name, low=0.0, low_open=True)
        check_real(self.weight_decay, "weight_decay", low=0.0)
        if self.kind not in tp.TASK_KINDS:
            raise ValueError(f"kind: expected one of {tp.TASK_KINDS}, got {self.kind!r}")
        if not self.ks:
            raise ValueError("ks: expected at least one number of tasks")
        for k in self.ks:
            if k != "fresh":
                check_int(k, "ks")
        if not self.seeds:
            raise ValueError("seeds: expected at least one seed")
        for sd in self.seeds:
            check_int(sd, "seeds", minimum=0)
        for row in self.stat_sizes:
            if not isinstance(row, tuple | list) or len(row) != 4:
                raise ValueError(f"stat_sizes: expected (d, n, windows, tasks) rows, got {row!r}")
            for v, name in zip(row, ("d", "n", "windows", "tasks"), strict=True):
                check_int(v, f"stat_sizes: {name}", minimum=2 if name == "tasks" else 1)
        check_int(self.seed, "seed", minimum=0)

    @classmethod
    def full(cls) -> TDPConfig:
        """The default configuration: 2000 outer iterations = 10 000 Adam steps per run."""
        return cls()

    @classmethod
    def quick(cls) -> TDPConfig:
        """``--quick``: 300 outer iterations (1500 Adam steps) per run, 20 held-out tasks, 4 invariance
        tasks, a quarter of the stationary sample."""
        return cls(
            outer=300,
            heldout=20,
            log_every=25,
            inv_tasks=4,
            stat_sizes=((3, 10, 16, 16_000), (4, 30, 64, 12_000)),
        )


def _rng(cfg: TDPConfig, *key: int) -> np.random.Generator:
    return np.random.default_rng([cfg.seed, *key])


def _points(cfg: TDPConfig, d: int, L: int, shared: bool, rng: np.random.Generator) -> dict:
    P3, Q3 = dt.w3_theta(d, L, cfg.inv_alpha)
    k = 1 if shared else L
    c = 0.3 * rng.standard_normal((2, k, 5))
    Pf, Qf = tp.fix_from_coordinates(c[0], d), tp.fix_from_coordinates(c[1], d)
    E = cfg.inv_noise * rng.standard_normal((2, k, 2 * d + 1, 2 * d + 1))
    if shared:
        Pf, Qf, E = np.repeat(Pf, L, 0), np.repeat(Qf, L, 0), np.repeat(E, L, 1)
    return {"w3": (P3, Q3), "fix": (Pf, Qf), "off": (P3 + E[0], Q3 + E[1])}


def invariance_unit(cfg: TDPConfig) -> dict:
    """(WP2) rows ``{L, shared, group, point, outside, bound}`` (relative to the inside part) and the
    summary: ``outside_at_fix`` (max at points of Fix, both groups), ``bound_at_fix`` (max of the
    first-order round-off bounds there), ``outside_off_fix`` (min at the off-set points),
    ``mutation_outside_at_fix`` (min at points of Fix with the mutated group), ``passed``."""
    d, n, K = 3, 10, 16
    rng = _rng(cfg, 1)
    tasks = tp.sample_tasks(cfg.inv_tasks, cfg.s, d, rng, cfg.kind)
    x = tp.sample_trajectories(tasks, K + n + 2, rng)
    Z, rq = tp.prompts(tasks, x, cfg.gamma, n, K)
    groups = {
        "signed": (tp.signed_permutations(d), "signed"),
        "even": (tp.sign_group(d), "even"),
        "mutated": (tp.first_half_permutations(d), "signed"),
    }
    rows = []
    for L in (1, 3):
        for shared in (True, False):
            for point, (Ps, Qs) in _points(cfg, d, L, shared, rng).items():
                for gname, (G, fix) in groups.items():
                    dP, dQ, bP, bQ = tp.orbit_averaged_direction(
                        Z, rq, Ps, Qs, cfg.gamma, G, shared, with_bound=True
                    )
                    out, inside = tp.fix_outside(np.stack([dP, dQ]), fix)
                    bound = float(np.linalg.norm(np.stack([bP, bQ])))
                    rows.append(
                        {
                            "L": L,
                            "shared": shared,
                            "group": gname,
                            "point": point,
                            "outside": out / inside,
                            "bound": bound / inside,
                            "inside": inside,
                        }
                    )
    at_fix = [r for r in rows if r["point"] != "off" and r["group"] != "mutated"]
    off = [r for r in rows if r["point"] == "off" and r["group"] != "mutated"]
    mutated = [r for r in rows if r["point"] != "off" and r["group"] == "mutated"]
    res = {
        "outside_at_fix": max(r["outside"] for r in at_fix),
        "bound_at_fix": max(r["bound"] for r in at_fix),
        "outside_off_fix": min(r["outside"] for r in off),
        "bound_off_fix": max(r["bound"] for r in off),
        "mutation_outside_at_fix": min(r["outside"] for r in mutated),
        "rows": rows,
    }
    res["at_fix_within_bound"] = all(r["outside"] <= r["bound"] for r in at_fix)
    res["passed"] = bool(
        res["outside_at_fix"] <= CRITERIA["outside_at_fix"]
        and res["at_fix_within_bound"]
        and res["outside_off_fix"] >= CRITERIA["outside_off_fix"]
        and res["bound_off_fix"] < CRITERIA["outside_off_fix"]
        and res["mutation_outside_at_fix"] >= CRITERIA["outside_off_fix"]
    )
    return res


@functools.lru_cache(maxsize=8)
def _stationary(cfg: TDPConfig, d: int, n: int, K: int, T: int) -> dt.Stationary:
    return dt.stationary_sample(T, cfg.s, d, n, K, cfg.gamma, _rng(cfg, 2, d, n, K, T), kind=cfg.kind)


def _training_c_star(cfg: TDPConfig) -> np.ndarray | None:
    """theta*'s ``(a*, b*)`` at the training size (the largest stationary sample of that size, else
    the first sample size), or None for L > 1."""
    if cfg.L != 1:
        return None
    rows = [r for r in cfg.stat_sizes if (r[0], r[1], r[2]) == (cfg.d, cfg.n, cfg.n_windows)]
    T = max(r[3] for r in rows) if rows else cfg.stat_sizes[0][3]
    return _stationary(cfg, cfg.d, cfg.n, cfg.n_windows, T).c


def stationary_unit(cfg: TDPConfig) -> dict:
    """(WP3) per size: ``a_star``, ``a_star_sem``, ``b_star``, ``b_star_sem``, the eigenvalues of
    ``E[f (f - gamma f')^T]``, THEORY's values and the z of the differences; the flow on Fix from the
    (W3) point: its end ``(a, b)``, distance to theta* and to (W3); ``passed``."""
    sizes = []
    for d, n, K, T in cfg.stat_sizes:
        st = _stationary(cfg, d, n, K, T)
        row = {
            "d": d,
            "n": n,
            "windows_per_trajectory": K,
            "tasks": T,
            "a_star": float(st.c[0]),
            "a_star_sem": float(st.sem[0]),
            "b_star": float(st.c[1]),
            "b_star_sem": float(st.sem[1]),
            "eig": [float(e) for e in np.sort(np.real(st.eig))[::-1]],
        }
        ref = THEORY_WP3.get((d, n, K))
        if ref is not None:
            z = [abs(c - r) / np.hypot(se, rs) for c, se, (r, rs) in zip(st.c, st.sem, ref, strict=True)]
            row.update({"theory": [list(r) for r in ref], "z_vs_theory": [float(v) for v in z]})
            row["within_two_se"] = bool(max(z) <= CRITERIA["stationary_se"])
        _, zf, c = dt.fix_flow([1.0, -cfg.inv_alpha, 0.0], st.A, st.b, d, t_max=cfg.flow_t_max)
        P, Q = dt.theta_star(d, [0.0, 0.0])
        P[0, -1, -1] = zf[-1, 0]
        Q[0, :d, :d] = zf[-1, 1] * np.eye(d)
        Q[0, d : 2 * d, :d] = zf[-1, 2] * np.eye(d)
        dist = dt.distances(P, Q, st.c)
        row["flow"] = {
            "start_ab": [float(v) for v in c[0]],
            "end_ab": [float(v) for v in c[-1]],
            "dist_theta_star": dist["dist_theta_star"],
            "dist_w3": dist["dist_w3"],
            "reaches_theta_star": bool(dist["dist_theta_star"] <= CRITERIA["flow_theta_star"]),
        }
        sizes.append(row)
    passed = all(r.get("within_two_se", True) and r["flow"]["reaches_theta_star"] for r in sizes)
    main = next((r for r in sizes if (r["d"], r["n"]) == (cfg.d, cfg.n)), sizes[-1])
    keys = ("a_star", "a_star_sem", "b_star", "b_star_sem")
    return {**{k: main[k] for k in keys}, "sizes": sizes, "passed": bool(passed)}


def _k_name(k) -> str:
    return "fresh" if k == "fresh" else f"k{int(k)}"


#: Where :func:`run_td_pretrain` keeps finished units while it runs (removed once written).
UNITS_FILE = ".td-pretrain-units.json"


def units(cfg: TDPConfig) -> list[str]:
    """The unit keys in run order: ``invariance``, ``stationary``, then ``run-<k>-s<seed>``."""
    return ["invariance", "stationary"] + [f"run-{_k_name(k)}-s{sd}" for k in cfg.ks for sd in cfg.seeds]


def run_unit_training(cfg: TDPConfig, k, seed: int) -> dict:
    """One (WP6) run: the final distances, held-out error, divergence flag and the training log."""
    held = tp.sample_tasks(cfg.heldout, cfg.s, cfg.d, _rng(cfg, 3), cfg.kind)
    st = dt.pretrain(
        d=cfg.d,
        s=cfg.s,
        n=cfg.n,
        L=cfg.L,
        gamma=cfg.gamma,
        outer=cfg.outer,
        k=None if k == "fresh" else int(k),
        rng=_rng(cfg, 4, seed),
        heldout=held,
        c_star=_training_c_star(cfg),
        n_windows=cfg.n_windows,
        batches=cfg.batches,
        lr=cfg.lr,
        weight_decay=cfg.weight_decay,
        gain=cfg.gain,
        log_every=cfg.log_every,
        kind=cfg.kind,
    )
    last = st.log[-1]
    return {
        "k": k,
        "seed": seed,
        "steps": st.adam.t,
        "dist_fix": last["dist_fix"],
        "dist_w3": last["dist_w3"],
        "dist_theta_star": last["dist_theta_star"],
        "heldout_value_err": last["heldout_value_err"],
        "ab": last["ab"],
        "diverged": bool(st.diverged),
        "log": st.log,
    }


def run_unit(cfg: TDPConfig, key: str):
    """The unit ``key`` of :func:`units`: its record."""
    if key == "invariance":
        return invariance_unit(cfg)
    if key == "stationary":
        return stationary_unit(cfg)
    for k in cfg.ks:
        for sd in cfg.seeds:
            if key == f"run-{_k_name(k)}-s{sd}":
                return run_unit_training(cfg, k, sd)
    raise ValueError(f"key: expected one of {units(cfg)}, got {key!r}")


def _summary(runs: list[dict], ks) -> list[dict]:
    rows = []
    for k in ks:
        mine = [r for r in runs if r["k"] == k]
        row = {"k": k, "runs": len(mine), "diverged": sum(r["diverged"] for r in mine)}
        for m in ("dist_fix", "dist_w3", "dist_theta_star", "heldout_value_err"):
            vals = np.array([r[m] for r in mine if r[m] is not None], dtype=float)
            row[m] = float(vals.mean()) if vals.size else None
            row[f"{m}_sd"] = float(vals.std(ddof=1)) if vals.size > 1 else None
        rows.append(row)
    return rows


def run_td_pretrain(cfg: TDPConfig, out: str | Path | None = None) -> dict:
    """Every unit of ``cfg``; with ``out``, ``td_pretrain.json`` is written there (finished units kept
    in ``out/UNITS_FILE`` until then, so an interrupted run resumes by unit). Returns the document
    (public contract: ``config``; ``invariance`` with ``outside_at_fix``, ``outside_off_fix``;
    ``stationary`` with ``a_star``, ``a_star_sem``, ``b_star``, ``b_star_sem``; ``runs``, one row
    per (k, seed) with ``k``, ``seed``, ``dist_fix``, ``dist_w3``, ``dist_theta_star``,
    ``heldout_value_err``, ``diverged``; ``passed``; ``provenance``; also ``summary`` by k,
    ``criteria``, ``versions``, ``wall_time``)."""
    t0 = time.perf_counter()
    out = Path(out) if out is not None else None
    store = UnitStore(out, UNITS_FILE, config=asdict(cfg), label="td-pretrain")
    got = {key: store.unit(key, lambda key=key: (run_unit(cfg, key), None))[0] for key in units(cfg)}
    runs = [got[key] for key in units(cfg)[2:]]
    listed = len(runs) == len(cfg.ks) * len(cfg.seeds)
    doc = {
        "config": to_jsonable(asdict(cfg)),
        "invariance": got["invariance"],
        "stationary": got["stationary"],
        "runs": runs,
        "summary": _summary(runs, cfg.ks),
        "criteria": CRITERIA,
        "passed": bool(got["invariance"]["passed"] and got["stationary"]["passed"] and listed),
        "provenance": provenance(asdict(cfg), cfg.seed),
        "versions": versions(),
        "wall_time": time.perf_counter() - t0,
    }
    if out is not None:
        atomic_write_json(out / "td_pretrain.json", to_jsonable(doc))
        store.remove()
    return to_jsonable(doc)
