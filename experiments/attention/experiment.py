r"""The attention experiment: multi-head and nonlinear attention in SARSA teacher mimicking (THEORY
§1-§4: (L1), (L2), (S2)-(S6), (M1)-(M4)).

- ``construction``: on held-out frames, the (S3) construction evaluated through each block where it
  can be: linear one head at ``(P*, V*)`` (the teacher, to round-off); relu two heads
  ``(P*, V*), (-P*, -V*)`` (exactly linear, ``relu(x) - relu(-x) = x``); relu one head at
  ``(P*, V*)`` (the positive part of every TD error only); tanh one head at ``(c P*, V*/c)``
  (``tanh(x) = x + O(x^3)``: error O(c^2)); softmax one head at ``(c P*, V*/c)`` (the mean
  ``(alpha/c) mean_j phi_j`` term grows like 1/c: the construction cannot be evaluated); softmax two
  heads ``(c P*, s V*/c), (0, -s V*/c)`` with ``s = (n+1)/n`` (the second head cancels that mean; the
  limit ``c -> 0`` is the *centred* TD update ``(alpha/n)[sum_j phi_j delta_j - (sum_j phi_j)(sum_j
  delta_j)/(n+1)]``, not the teacher's).
- ``<attention>-h<H>-s<seed>``: one trained block (:mod:`lsa_theory.experiments.attention.model`),
  its final training loss, the held-out metrics, ``diverged``, wall time and the loss log.

Results: ``attention.json`` in ``--out`` (and ``attention.npz``, the trained heads), the figure
``attention.png`` (:func:`lsa_theory.experiments.attention.plots.plot_attention`).
"""

from __future__ import annotations

import functools
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

import lsa_theory as lt
from lsa_theory import dynamics as dy
from lsa_theory.checks import check_gamma, check_int, check_real

from ..io import atomic_write_json, provenance, to_jsonable, versions
from ..store import UnitStore
from ..training import construction_pv
from .model import heldout_metrics, init_heads, run_metrics, teacher_prompts, train_heads

__all__ = ["AttentionConfig", "UNITS_FILE", "ARRAYS_FILE", "units", "run_unit", "run_attention"]

#: Where :func:`run_attention` keeps finished units while it runs (removed once written).
UNITS_FILE = ".attention-units.json"
#: The trained heads of every run, ``"<unit>/P"``, ``"<unit>/V"`` (H, D, D).
ARRAYS_FILE = "attention.npz"


@dataclass(frozen=True)
class AttentionConfig:
    """Sizes and budgets; ``quick()`` is ``--quick``. Data (THEORY §4, the loop (S6) with the exact
    teacher (S2)): ``S``, ``A`` (``d = S A``, ``D = 3d + 2``), ``n``, ``gamma``, ``alpha``,
    ``epsilon``, ``k`` training MDPs x ``frames``, ``heldout_k`` fresh MDPs x ``frames`` with fresh
    features. Models: every pair of ``attentions`` x ``heads``, ``seeds`` runs each. Training: Adam
    (full batch, float64, eps ``1e-12``) for ``steps`` steps, the rate decayed geometrically from
    ``lr`` to ``lr_final``; initial entries ``init_scale * N(0, 1)``. ``cs``: the scales ``c`` of
    the construction probes. Every seed derives from ``seed``."""

    S: int = 2
    A: int = 2
    n: int = 10
    gamma: float = 0.5
    alpha: float = 0.2
    epsilon: float = 0.1
    k: int = 150
    frames: int = 10
    heldout_k: int = 100
    attentions: tuple[str, ...] = ("linear", "softmax", "relu")
    heads: tuple[int, ...] = (1, 2)
    seeds: tuple[int, ...] = (0, 1, 2)
    steps: int = 1500
    lr: float = 1e-2
    lr_final: float = 1e-4
    init_scale: float = 1e-2
    log_every: int = 50
    cs: tuple[float, ...] = (1.0, 0.1, 0.01, 0.001)
    seed: int = 0

    def __post_init__(self) -> None:
        """Every field checked; ValueError naming the field."""
        for name in ("S", "A", "n", "k", "frames", "heldout_k", "steps", "log_every"):
            check_int(getattr(self, name), name)
        check_gamma(self.gamma)
        check_real(self.alpha, "alpha", low=0.0, low_open=True)
        check_real(self.epsilon, "epsilon", low=0.0, high=1.0)
        for name in ("lr", "lr_final", "init_scale"):
            check_real(getattr(self, name), name, low=0.0, low_open=True)
        if not self.attentions:
            raise ValueError("attentions: expected at least one attention")
        for a in self.attentions:
            if a not in lt.ATTENTIONS:
                raise ValueError(f"attentions: expected names from {lt.ATTENTIONS}, got {a!r}")
        if not self.heads:
            raise ValueError("heads: expected at least one number of heads")
        for h in self.heads:
            check_int(h, "heads")
        if not self.seeds:
            raise ValueError("seeds: expected at least one seed")
        for sd in self.seeds:
            check_int(sd, "seeds", minimum=0)
        for c in self.cs:
            check_real(c, "cs", low=0.0, low_open=True)
        check_int(self.seed, "seed", minimum=0)
        self.spec()

    def spec(self) -> dy.TeacherSpec:
        """The training data's :class:`lsa_theory.dynamics.TeacherSpec` (SARSA, resampled features)."""
        return dy.TeacherSpec(
            algorithm="sarsa",
            S=self.S,
            A=self.A,
            n=self.n,
            gamma=self.gamma,
            alpha=self.alpha,
            epsilon=self.epsilon,
            k=self.k,
            frames=self.frames,
        )

    def models(self) -> list[tuple[str, int]]:
        """``(attention, heads)`` of every model, attentions outer."""
        return [(a, h) for a in self.attentions for h in self.heads]

    def replace(self, **changes) -> AttentionConfig:
        return replace(self, **changes)

    @classmethod
    def full(cls) -> AttentionConfig:
        """The default: S = A = 2 (d = 4, D = 14), n = 10, 150 training MDPs x 10 frames, 100 held-out
        MDPs, 1500 Adam steps, seeds 0-2, linear/softmax/relu x 1/2 heads."""
        return cls()

    @classmethod
    def quick(cls) -> AttentionConfig:
        """``--quick``: 50 training MDPs, 30 held-out MDPs, 200 Adam steps (under two minutes)."""
        return cls(k=50, heldout_k=30, steps=200, log_every=20)


def _unit_name(attention: str, heads: int, seed: int) -> str:
    return f"{attention}-h{heads}-s{seed}"


def units(cfg: AttentionConfig) -> list[str]:
    """The unit keys in run order: ``construction``, then ``<attention>-h<H>-s<seed>``."""
    return ["construction"] + [_unit_name(a, h, sd) for a, h in cfg.models() for sd in cfg.seeds]


@functools.lru_cache(maxsize=4)
def _data(cfg: AttentionConfig, seed: int) -> tuple:
    """Training ``(ds, H)`` from ``default_rng([cfg.seed, seed, 0])`` and held-out ``(ds, H)``
    (``heldout_k`` fresh MDPs, fresh features) from ``default_rng([cfg.seed, seed, 1])``."""
    spec = cfg.spec()
    train = teacher_prompts(spec, np.random.default_rng([cfg.seed, seed, 0]))
    held = teacher_prompts(spec.replace(k=cfg.heldout_k), np.random.default_rng([cfg.seed, seed, 1]))
    return train, held


def construction_unit(cfg: AttentionConfig) -> dict:
    """Rows ``{key, block, c, heldout_err, update_corr}`` of the (S3) probes (module docstring) on the
    held-out frames of the first seed; ``key`` is ``<attention>-h<H>`` or ``centred``."""
    _, held = _data(cfg, cfg.seeds[0])
    spec = cfg.spec()
    Ps, Vs = construction_pv(spec, 1.0)
    s = (cfg.n + 1) / cfg.n
    rows = []

    def row(block, c, heads, attention):
        m = heldout_metrics(heads, attention, *held)
        key = f"{attention}-h{len(heads)}"
        rows.append(
            {
                "key": key,
                "block": block,
                "c": c,
                "heldout_err": m["heldout_err"],
                "update_corr": m["update_corr"],
            }
        )

    row("linear, 1 head, (P*, V*)", 1.0, [(Ps, Vs)], "linear")
    row("relu, 2 heads, (P*, V*), (-P*, -V*)", 1.0, [(Ps, Vs), (-Ps, -Vs)], "relu")
    row("relu, 1 head, (P*, V*)", 1.0, [(Ps, Vs)], "relu")
    for c in cfg.cs:
        row("tanh, 1 head, (cP*, V*/c)", c, [(c * Ps, Vs / c)], "tanh")
    for c in cfg.cs:
        row("softmax, 1 head, (cP*, V*/c)", c, [(c * Ps, Vs / c)], "softmax")
    for c in cfg.cs:
        row(
            "softmax, 2 heads, (cP*, sV*/c), (0, -sV*/c)",
            c,
            [(c * Ps, s * Vs / c), (0 * Ps, -s * Vs / c)],
            "softmax",
        )
    # the c -> 0 limit of the two softmax heads: the centred TD update, no parameters
    ds, H = held
    d, n = spec.layout.d, cfg.n
    phi, delta = H[:, :d, :n], np.einsum("fmj,fm->fj", H[:, : 2 * d + 1, :n], _p_col(Ps, H))
    centred = (
        cfg.alpha / n * (np.einsum("fij,fj->fi", phi, delta) - phi.sum(-1) * delta.sum(-1)[:, None] / (n + 1))
    )
    e = centred - ds.y
    rows.append(
        {
            "key": "centred",
            "block": "centred TD update (softmax 2-head limit c -> 0)",
            "c": 0.0,
            "heldout_err": float(np.sqrt(np.mean(np.sum(e * e, 1)) / np.mean(np.sum(ds.y**2, 1)))),
            "update_corr": float(np.corrcoef(centred.ravel(), ds.y.ravel())[0, 1]),
        }
    )
    return {"rows": rows, "seed": cfg.seeds[0]}


def _p_col(Ps: np.ndarray, H: np.ndarray) -> np.ndarray:
    """``(P* h_{n+1})`` restricted to the context rows, (F, 2d+1): ``delta_j = x_j^T (P* h_{n+1})``."""
    m = H.shape[1] - (H.shape[1] - 2) // 3 - 1
    return (H[:, :, -1] @ Ps.T)[:, :m]


def run_unit_training(cfg: AttentionConfig, attention: str, heads: int, seed: int) -> tuple[dict, dict]:
    """One trained block: ``(record, arrays)``; record ``{attention, heads, seed, loss_final,
    diverged, steps_done, wall_time, log, **run_metrics}``, arrays the heads ``P``, ``V`` (H, D, D)."""
    (tr, Htr), held = _data(cfg, seed)
    D = Htr.shape[1]
    init_seed = int(np.random.SeedSequence([cfg.seed, seed, 2]).generate_state(1)[0])
    leaves = init_heads(D, heads, cfg.init_scale, init_seed)
    res = train_heads(
        Htr, tr.y, tr.layout.d, attention, leaves, cfg.steps, cfg.lr, cfg.lr_final, cfg.log_every
    )
    rec = {
        "attention": attention,
        "heads": heads,
        "seed": seed,
        "loss_final": res["loss_final"],
        "diverged": res["diverged"],
        "steps_done": res["steps_done"],
        "wall_time": res["wall_time"],
        **run_metrics(res["heads"], attention, tr, held),
        "log": [list(r) for r in res["log"]],
    }
    arrays = {"P": np.stack([P for P, _ in res["heads"]]), "V": np.stack([V for _, V in res["heads"]])}
    return rec, arrays


def run_unit(cfg: AttentionConfig, key: str) -> tuple[dict, dict]:
    """The unit ``key`` of :func:`units`: ``(record, arrays)``."""
    if key == "construction":
        return construction_unit(cfg), {}
    for a, h in cfg.models():
        for sd in cfg.seeds:
            if key == _unit_name(a, h, sd):
                return run_unit_training(cfg, a, h, sd)
    raise ValueError(f"key: expected one of {units(cfg)}, got {key!r}")


_TABLE = (
    "loss_final",
    "heldout_err",
    "update_corr",
    "s3_share",
    "op_cos",
    "attn_entropy",
    "cos",
    "orbit_dist_rel",
)


def _summary(runs: list[dict], cfg: AttentionConfig) -> list[dict]:
    rows = []
    for a, h in cfg.models():
        mine = [r for r in runs if r["attention"] == a and r["heads"] == h]
        row = {"attention": a, "heads": h, "runs": len(mine), "diverged": sum(r["diverged"] for r in mine)}
        for m in _TABLE:
            vals = np.array([r[m] for r in mine if r[m] is not None], dtype=float)
            row[m] = float(np.median(vals)) if vals.size else None
            row[f"{m}_min"] = float(vals.min()) if vals.size else None
            row[f"{m}_max"] = float(vals.max()) if vals.size else None
        rows.append(row)
    return rows


def run_attention(cfg: AttentionConfig, out: str | Path | None = None) -> dict:
    """Every unit of ``cfg``; with ``out``, ``attention.json`` (and ``attention.npz``) are written there
    (finished units kept in ``out/UNITS_FILE`` until then: an interrupted run resumes by unit).
    Returns the document (``config``; ``construction`` rows; ``runs``, one per (attention, heads,
    seed) with ``loss_final``, ``heldout_err``, ``update_corr``, ``s3_share``, ``op_cos``, ``cos``,
    ``orbit_dist_rel``, ``diverged``, ``wall_time``, ``log``; ``summary`` per model (median, min,
    max over seeds); ``all_listed``; ``provenance``, ``versions``, ``wall_time``)."""
    t0 = time.perf_counter()
    out = Path(out) if out is not None else None
    store = UnitStore(out, UNITS_FILE, config=asdict(cfg), arrays=ARRAYS_FILE, label="attention")
    got = {key: store.unit(key, lambda key=key: run_unit(cfg, key))[0] for key in units(cfg)}
    runs = [got[key] for key in units(cfg)[1:]]
    listed = len(runs) == len(cfg.models()) * len(cfg.seeds)
    doc = {
        "config": to_jsonable(asdict(cfg)),
        "construction": got["construction"],
        "runs": runs,
        "summary": _summary(runs, cfg),
        "all_listed": bool(listed),
        "provenance": provenance(asdict(cfg), cfg.seed),
        "versions": versions(),
        "wall_time": time.perf_counter() - t0,
    }
    if out is not None:
        atomic_write_json(out / "attention.json", to_jsonable(doc))
        store.remove()
    return to_jsonable(doc)
