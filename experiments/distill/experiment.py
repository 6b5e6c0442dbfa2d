r"""The distill experiment, ``--mode in-context``: Algorithm Distillation's principle measured with
constructed stacks, (AD0)-(AD3) and (AD5) of docs/theory.md §11.

Units (:func:`units`):

- ``verify``: the exact statements at THEORY's sizes (S = 4, A = 2, d = 8, gamma = 0.5, H = 10,
  K = 6, alpha = 0.2, epsilon = 0.1, ``n_verify`` source histories): (AD1) K episode-masked (S3)
  layers against the source's ``w_{K+1}``; (AD2) L = 1, 3, 10 unmasked (S3) layers against L pooled
  SARSA iterations, and the pooled TD residual after 20 000 iterations where the contraction rate
  reaches the float floor (``rate^20000 <= 1e-13``); the agents' reader (``L`` pooled iterations with
  ``step``) against ``L`` stacked (S3) layers on a raw prompt; (AD5) random dense 3-layer stacks under
  a column permutation, and the source's order dependence (the change of ``w_{K+1}`` when its
  episodes are replayed in a random order, relative to its displacement: reported, and a row that
  fails if the source were order-free). Each row ``{claim, check, residual, tol, passed}``.
- ``mdp-<i>`` (i = 0..n_mdps-1): one held-out MDP of (AD3). MDP ``i`` is
  ``random_mdp(S, A, gamma, heldout_rng(seed, i))``, its features ``(S, A, d) ~ U(-1, 1)`` and
  ``w_0 ~ U(-1, 1)^d`` from ``heldout_rng(seed, i, 0)``; every agent acts with the generator
  ``heldout_rng(seed, i, 1)`` afresh (common random numbers: the agents' first episodes coincide).
  Agents (each holds a parameter after every episode, scored by the exact greedy normalised return
  of THEORY §0): ``source`` (AD0) with ``alpha``; ``ctx-m`` for m in ``windows``: after each episode
  reads its own last m episodes (all of them for ``m >= K``) with ``L`` pooled (S3) layers of step
  ``step`` from ``w_0`` and acts epsilon-greedy on the result in the next episode (``ctx_last`` is
  m = 1, ``ctx_all`` is m = K); ``ctx_src``: reads the source's first k episodes, does not act.

:func:`run_distill` writes ``distill.json`` (the public contract of issue 22) and ``distill.npz``.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

import lsa_theory as lt
from lsa_theory import constructions
from lsa_theory import distill as ad
from lsa_theory.checks import check_int, check_real
from lsa_theory.constructions import Row, derive

from ..envs import heldout_rng
from ..io import atomic_savez, atomic_write_json, provenance, single_blas_thread, to_jsonable, versions
from ..stats import mean_sem_finite, paired_difference
from ..store import UnitStore

__all__ = ["DistillConfig", "CRITERIA", "UNITS_FILE", "AGENTS", "units", "run_unit", "run_distill"]

#: Tolerances of the exact rows (THEORY §11's checks; each fails on a 1 % error).
CRITERIA = {
    "masked": derive.READOUT_TOL,  # (AD1) relative to max(1, max|w_{K+1}|)
    "pooled": derive.READOUT_TOL,  # (AD2) relative, stack against the pooled loop
    "fixed_point": 1e-10,  # (AD2) |Ahat w - bhat| / |bhat| after 20 000 iterations
    "fixed_point_rate": 1e-13,  # instances where rate^20000 <= this
    "permutation": derive.READOUT_TOL,  # (AD5) relative to the parameter column's displacement
    "order_median": 0.01,  # (AD5) the source's median relative change must exceed this
}

#: The four agents of THEORY's (AD3) table, in the JSON's order.
AGENTS = ("source", "ctx_all", "ctx_last", "ctx_src")


@dataclass(frozen=True)
class DistillConfig:
    """(AD3)'s sizes and agents; ``quick()`` is ``--quick``. MDPs: ``n_mdps`` held-out random MDPs
    (S x A, ``gamma``), ``d`` random features each; episodes of ``H`` steps, ``K`` of them;
    ``epsilon``-greedy acting; the source's step ``alpha``; the in-context agents' ``L`` pooled (S3)
    layers of step ``step``; ``windows``: the numbers of episodes the ``ctx-m`` agents read (values
    ``>= K`` mean all); ``early``, ``late``: inclusive 1-based episode ranges of the paired
    intervals; ``n_verify``: source histories of the exact rows; ``level``: the intervals' level."""

    n_mdps: int = 30
    S: int = 4
    A: int = 2
    d: int = 8
    gamma: float = 0.5
    H: int = 10
    K: int = 40
    epsilon: float = 0.1
    alpha: float = 0.2
    step: float = 0.5
    L: int = 100
    windows: tuple[int, ...] = (1, 2, 4, 8, 16, 40)
    early: tuple[int, int] = (1, 3)
    late: tuple[int, int] = (31, 40)
    n_verify: int = 20
    level: float = 0.95
    seed: int = 0

    def __post_init__(self) -> None:
        """Every field checked; ValueError naming the field."""
        check_int(self.n_mdps, "n_mdps", minimum=2)
        for name in ("S", "A", "d", "H", "K", "L", "n_verify"):
            check_int(getattr(self, name), name)
        check_real(self.gamma, "gamma", low=0.0, high=1.0, high_open=True)
        check_real(self.epsilon, "epsilon", low=0.0, high=1.0)
        check_real(self.alpha, "alpha", low=0.0, low_open=True)
        check_real(self.step, "step", low=0.0, low_open=True)
        check_real(self.level, "level", low=0.0, high=1.0, low_open=True, high_open=True)
        check_int(self.seed, "seed", minimum=0)
        if not self.windows:
            raise ValueError("windows: expected at least one number of episodes")
        for m in self.windows:
            check_int(m, "windows")
        for name in ("early", "late"):
            lo_hi = getattr(self, name)
            if len(lo_hi) != 2 or not 1 <= check_int(lo_hi[0], name) <= check_int(lo_hi[1], name) <= self.K:
                raise ValueError(f"{name}: expected 1 <= first <= last <= K = {self.K}, got {lo_hi!r}")

    @classmethod
    def full(cls) -> DistillConfig:
        """THEORY's sizes (the default)."""
        return cls()

    @classmethod
    def quick(cls) -> DistillConfig:
        """``--quick``: the same 30 MDPs and agents (a few seconds), 4 context windows, 6 verify histories."""
        return cls(windows=(1, 4, 16, 40), n_verify=6)

    def all_windows(self) -> tuple[int, ...]:
        """The windows run: ``windows`` with 1 (ctx-last) and K (ctx-all), capped at K, sorted."""
        return tuple(sorted({min(m, self.K) for m in (*self.windows, 1, self.K)}))


def _row(claim: str, check: str, residual: float, tol: float) -> dict:
    """A JSON row ``{claim, check, residual, tol, passed}``: :meth:`lsa_theory.constructions.Row.against`."""
    return Row.against(claim, check, residual, tol).as_dict()


def _above(check: str, interval: list) -> dict:
    """(AD3) row: the interval ``[mean, lo, hi]`` lies above 0, strictly (residual ``-lo``, tol 0,
    passed when ``-lo < 0``: an interval that is exactly 0, two agents that coincide, fails)."""
    lo = interval[1]
    res = np.inf if lo is None else -float(lo)
    return {"claim": "(AD3)", "check": check, "residual": res, "tol": 0.0, "passed": bool(res < 0.0)}


def _prompt(X: np.ndarray, w0: np.ndarray) -> np.ndarray:
    """``H(h; w_0)`` (3d+2, N+1): context columns ``[x_i; 0]``, parameter column ``[0; 1; w_0]``."""
    d = w0.shape[0]
    Z = np.zeros((3 * d + 2, X.shape[1] + 1))
    Z[: 2 * d + 1, :-1] = X
    Z[2 * d + 1, -1] = 1.0
    Z[2 * d + 2 :, -1] = w0
    return Z


def _verify_history(cfg: DistillConfig, j: int, K: int = 6):
    rng = np.random.default_rng([cfg.seed, 7, j])
    mdp = lt.random_mdp(cfg.S, cfg.A, cfg.gamma, rng)
    phi = lt.random_features(cfg.S, cfg.A, cfg.d, rng)
    w0 = rng.uniform(-1.0, 1.0, cfg.d)
    h = ad.source_history(mdp, phi, w0, H=cfg.H, K=K, alpha=cfg.alpha, epsilon=cfg.epsilon, rng=rng)
    return w0, h, rng


def verify_unit(cfg: DistillConfig) -> dict:
    """The exact rows (module docstring) and the source's order dependence (``order_change``:
    median, min, max of ``||w'_{K+1} - w_{K+1}|| / ||w_{K+1} - w_0||``)."""
    d, K, H = cfg.d, 6, cfg.H
    P, V = constructions.sarsa(d, cfg.alpha)
    masked, pooled, fixed, perm, order, reader = [], [], [], [], [], []
    n_fixed = 0
    for j in range(cfg.n_verify):
        w0, h, rng = _verify_history(cfg, j, K)
        Z = _prompt(h.X, w0)
        out = ad.masked_episode_stack(Z, [(P, V)] * K, ad.episode_masks(K, H))
        masked.append(derive.relative_residual(out[-d:, -1], h.ws[-1]))
        for L in (1, 3, 10):
            got = lt.lsa_stack(Z, [(P, V)] * L)[-d:, -1]
            pooled.append(derive.relative_residual(got, ad.pooled_sarsa(h.X, w0, cfg.alpha, L)))
        rate = ad.pooled_rate(h.X, cfg.alpha)
        if rate < 1.0 and rate**20_000 <= CRITERIA["fixed_point_rate"]:
            n_fixed += 1
            A, b = ad.pooled_td(h.X)
            w = ad.pooled_sarsa(h.X, w0, cfg.alpha, 20_000)
            fixed.append(float(np.linalg.norm(A @ w - b) / np.linalg.norm(b)))
        D = Z.shape[0]
        layers = [tuple(0.3 * rng.standard_normal((D, D)) / np.sqrt(D) for _ in range(2)) for _ in range(3)]
        p = np.concatenate([rng.permutation(Z.shape[1] - 1), [Z.shape[1] - 1]])
        o1, o2 = lt.lsa_stack(Z, layers)[:, -1], lt.lsa_stack(Z[:, p], layers)[:, -1]
        perm.append(float(np.abs(o2 - o1).max() / np.abs(o1 - Z[:, -1]).max()))
        wr = ad.replay_source(h.X, w0, cfg.alpha, H, rng.permutation(K))[-1]
        order.append(float(np.linalg.norm(wr - h.ws[-1]) / np.linalg.norm(h.ws[-1] - w0)))
        if j == 0:  # the agents' reader on a raw prompt of this history
            Ps, Vs = constructions.sarsa(d, cfg.step)
            got = lt.lsa_stack(Z, [(Ps, Vs)] * cfg.L)[-d:, -1]
            reader.append(derive.relative_residual(got, ad.pooled_sarsa(h.X, w0, cfg.step, cfg.L)))
    where = f"{cfg.n_verify} source histories, S = {cfg.S}, A = {cfg.A}, d = {d}, H = {H}, K = {K}"
    rows = [
        _row(
            "(AD1)",
            f"K episode-masked (S3) layers = the source's w_(K+1); {where}",
            max(masked),
            CRITERIA["masked"],
        ),
        _row(
            "(AD2)",
            f"L = 1, 3, 10 unmasked (S3) layers = L pooled SARSA iterations; {where}",
            max(pooled),
            CRITERIA["pooled"],
        ),
        _row(
            "(AD2)",
            f"pooled TD residual after 20 000 iterations, {n_fixed} of {cfg.n_verify} histories with "
            f"rate^20000 <= {CRITERIA['fixed_point_rate']:.0e}",
            max(fixed, default=0.0),
            CRITERIA["fixed_point"],
        ),
        _row(
            "(AD2)",
            f"the agents' reader: {cfg.L} pooled iterations of step {cfg.step} = {cfg.L} stacked (S3) layers",
            max(reader),
            CRITERIA["pooled"],
        ),
        _row(
            "(AD5)",
            f"random dense 3-layer stacks: parameter column under a column permutation (relative); {where}",
            max(perm),
            CRITERIA["permutation"],
        ),
        _row(
            "(AD5)",
            f"the source depends on its episodes' order: {CRITERIA['order_median']} - median relative change "
            f"of w_(K+1) (median {np.median(order):.3f}, {min(order):.3f} to {max(order):.3f})",
            CRITERIA["order_median"] - float(np.median(order)),
            0.0,
        ),
    ]
    change = {"median": float(np.median(order)), "min": float(min(order)), "max": float(max(order))}
    return {
        "rows": rows,
        "order_change": change,
        "n_fixed_point": n_fixed,
        "fixed_point_max": max(fixed, default=None),
    }


def _score(mdp, phi, sol):
    def score(w):
        if not np.all(np.isfinite(w)):
            return np.nan
        return lt.normalized_return(mdp, lt.greedy(phi @ w), sol)

    return score


def window_reader(cfg: DistillConfig, w0: np.ndarray, m: int):
    """The ``ctx-m`` agent's update ``(frames, w) -> w'``: ``L`` pooled (S3) layers of step ``step``
    from ``w0`` on its last ``m`` episodes (the ``w`` it holds is not read: nothing is carried)."""

    def read(frames, w):
        return ad.pooled_sarsa(np.concatenate(frames[-m:], axis=1), w0, cfg.step, cfg.L)

    return read


def mdp_unit(cfg: DistillConfig, i: int) -> dict[str, np.ndarray]:
    """Held-out MDP ``i`` (module docstring): arrays ``source``, ``ctx_src`` (K,) and ``windows``
    (len(all_windows), K), the greedy normalised return of each agent's parameter after episode
    k = 1..K (NaN after a divergence)."""
    mdp = lt.random_mdp(cfg.S, cfg.A, cfg.gamma, heldout_rng(cfg.seed, i))
    rng0 = heldout_rng(cfg.seed, i, 0)
    phi = lt.random_features(cfg.S, cfg.A, cfg.d, rng0)
    w0 = rng0.uniform(-1.0, 1.0, cfg.d)
    score = _score(mdp, phi, lt.optimal(mdp))
    kw = {"H": cfg.H, "K": cfg.K, "epsilon": cfg.epsilon}
    src = ad.source_history(mdp, phi, w0, alpha=cfg.alpha, rng=heldout_rng(cfg.seed, i, 1), **kw)
    out = {
        "source": np.array([score(w) for w in src.ws[1:]]),
        "ctx_src": np.array(
            [score(ad.pooled_sarsa(src.episodes(0, k), w0, cfg.step, cfg.L)) for k in range(1, cfg.K + 1)]
        ),
    }
    rows = []
    for m in cfg.all_windows():
        h = ad.episodic_loop(mdp, phi, w0, window_reader(cfg, w0, m), rng=heldout_rng(cfg.seed, i, 1), **kw)
        rows.append([score(w) for w in h.ws[1:]])
    out["windows"] = np.array(rows)
    return out


#: Where :func:`run_distill` keeps finished units while it runs (removed once written).
UNITS_FILE = ".distill-units.json"


def units(cfg: DistillConfig) -> list[str]:
    """The unit keys in run order: ``verify``, then ``mdp-000`` ... one per held-out MDP."""
    return ["verify"] + [f"mdp-{i:03d}" for i in range(cfg.n_mdps)]


def run_unit(cfg: DistillConfig, key: str):
    """The unit ``key`` of :func:`units`: ``(record, arrays)``."""
    if key == "verify":
        return verify_unit(cfg), {}
    keys = units(cfg)
    if key not in keys:
        raise ValueError(f"key: expected one of {keys[:3]} ... {keys[-1]}, got {key!r}")
    return {}, mdp_unit(cfg, int(key.split("-")[1]))


def _interval(diff: dict) -> list:
    return [diff["mean"], *(diff["ci"] or [None, None])]


def _paired(a: np.ndarray, b: np.ndarray, level: float) -> list:
    """``[mean, lo, hi]`` of the paired difference ``b - a`` over the MDPs (Student-t ``level``)."""
    return _interval(paired_difference(a, b, level))


@single_blas_thread
def run_distill(cfg: DistillConfig, out: str | Path | None = None) -> dict:
    """Every unit of ``cfg``; with ``out``, ``distill.json`` and ``distill.npz`` are written there
    (finished units kept in ``out/UNITS_FILE`` until then, so an interrupted run resumes). Returns the
    JSON document (public contract of issue 22: ``config``, ``agents`` with ``return_by_episode``,
    ``sem_by_episode`` for ``source``, ``ctx_all``, ``ctx_last``, ``ctx_src``; ``paired`` with
    ``ctx_all_late_minus_early``, ``ctx_last_late_minus_early``, ``ctx_all_minus_ctx_last_late``, each
    ``[mean, lo, hi]``; ``passed``; ``provenance``; besides ``by_context``, ``mdps``, ``verify``)."""
    t0 = time.perf_counter()
    out = Path(out) if out is not None else None
    store = UnitStore(out, UNITS_FILE, config=asdict(cfg), label="distill")
    got = {}
    for key in units(cfg):

        def compute(key=key):
            record, arr = run_unit(cfg, key)
            return {"record": record, "arrays": arr}, None

        got[key] = store.unit(key, compute)[0]
    verify = got["verify"]["record"]
    mdps = [got[k]["arrays"] for k in units(cfg)[1:]]
    wins = cfg.all_windows()
    R = {
        "source": np.array([m["source"] for m in mdps]),
        "ctx_src": np.array([m["ctx_src"] for m in mdps]),
        "windows": np.array([m["windows"] for m in mdps]),  # (N, n_windows, K)
    }
    R["ctx_last"] = R["windows"][:, wins.index(1)]
    R["ctx_all"] = R["windows"][:, wins.index(cfg.K)]
    e0, e1 = cfg.early[0] - 1, cfg.early[1]
    l0, l1 = cfg.late[0] - 1, cfg.late[1]

    def early(x):
        return x[..., e0:e1].mean(axis=-1)

    def late(x):
        return x[..., l0:l1].mean(axis=-1)

    agents = {}
    for a in AGENTS:
        stats = [mean_sem_finite(R[a][:, k]) for k in range(cfg.K)]
        agents[a] = {
            "return_by_episode": [s[0] for s in stats],
            "sem_by_episode": [s[1] for s in stats],
            "n_diverged": int(np.sum(~np.isfinite(R[a]).all(axis=1))),
        }
    lv = cfg.level
    paired = {
        "ctx_all_late_minus_early": _paired(early(R["ctx_all"]), late(R["ctx_all"]), lv),
        "ctx_last_late_minus_early": _paired(early(R["ctx_last"]), late(R["ctx_last"]), lv),
        "ctx_all_minus_ctx_last_late": _paired(late(R["ctx_last"]), late(R["ctx_all"]), lv),
        "source_late_minus_early": _paired(early(R["source"]), late(R["source"]), lv),
        "ctx_src_late_minus_early": _paired(early(R["ctx_src"]), late(R["ctx_src"]), lv),
        "ctx_all_minus_source_late": _paired(late(R["source"]), late(R["ctx_all"]), lv),
        "ctx_all_minus_ctx_src_late": _paired(late(R["ctx_src"]), late(R["ctx_all"]), lv),
    }
    by_context = []
    for q, m in enumerate(wins):
        x = R["windows"][:, q]
        mean, sem, _ = mean_sem_finite(late(x))
        by_context.append(
            {
                "episodes": m,
                "all": m == cfg.K,
                "late": mean,
                "late_sem": sem,
                "late_minus_early": _paired(early(x), late(x), lv),
                "minus_ctx_last_late": _paired(late(R["ctx_last"]), late(x), lv),
            }
        )
    listed = [
        {
            "mdp": i,
            "early": {a: float(early(R[a][i])) for a in AGENTS},
            "late": {a: float(late(R[a][i])) for a in AGENTS},
        }
        for i in range(cfg.n_mdps)
    ]
    p = paired
    ad3 = [
        _above("ctx-all improves: -(lower end of late - early) < 0", p["ctx_all_late_minus_early"]),
        _row(
            "(AD3)",
            "ctx-last does not: the interval of late - early contains 0 (max(lo, -hi))",
            max(p["ctx_last_late_minus_early"][1], -p["ctx_last_late_minus_early"][2]),
            0.0,
        ),
        _above(
            "ctx-all beats ctx-last late: -(lower end of the difference) < 0",
            p["ctx_all_minus_ctx_last_late"],
        ),
    ]
    rows = verify["rows"] + ad3
    doc = {
        "mode": "in-context",
        "config": to_jsonable(asdict(cfg)),
        "agents": agents,
        "paired": paired,
        "by_context": by_context,
        "mdps": listed,
        "order_change": verify["order_change"],
        "verify": rows,
        "criteria": CRITERIA,
        "passed": all(r["passed"] for r in rows),
        "provenance": provenance(asdict(cfg), cfg.seed),
        "versions": versions(),
        "wall_time": time.perf_counter() - t0,
    }
    if out is not None:
        atomic_savez(out / "distill.npz", **{a: R[a] for a in (*AGENTS, "windows")})
        atomic_write_json(out / "distill.json", doc)
        store.remove()
    return to_jsonable(doc)
