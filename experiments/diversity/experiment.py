r"""The diversity experiment: richness (M5) and the cost of missing task diversity (M7).

Rows: the (M5) table of docs/theory.md (20 MDPs with resampled / one-hot / shared features; one MDP
with ``r(s, a)`` and with ``r(s, a, s')``) at ``S = A = 2`` and at each of ``extra_sizes``; single-MDP
rows (one feature map) with ``d < |S||A|`` (table ``"d"``: there one MDP's data are scaling-only,
docs/theory.md (M7)); a row below the rank bound (table ``"rank_bound"``: 3 frames, so ``F d`` is less than
the number of parameters and the kernel exceeds every tangent); and a sweep over the number of
training MDPs ``k = 1, 2, 4, ...`` with resampled or shared features. For each row: the Hessian
kernel at the construction, **certified** by exact arithmetic (:func:`lsa_theory.dynamics.certify_kernel`;
``ker_dim`` is None with the bounds and the reason when the data do not decide), against the exact
(M4) tangent, the float64 margin at the split, ``lambda_min^+``, and ``heldout_err``: the gradient flow
is started off the scaling orbit (a random perturbation of relative size ``radius``), run to the
gradient floor, and its limit is scored against the teacher on held-out MDPs with fresh features,
as ``sqrt(mean ||TF - teacher||^2 / mean ||teacher - w||^2)``.

Data directions the training sample never shows (the invisible ``U`` of (M4)) are frozen by the
flow, so the limit keeps its initial error along them: zero only when the tangent is the
scaling direction alone.
"""

from __future__ import annotations

import itertools
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from lsa_theory import dynamics as dy

from ..io import config_hash, progress, to_jsonable, versions
from ..store import UnitStore

__all__ = [
    "DiversityConfig",
    "Unit",
    "units",
    "run_unit",
    "diversity_rows",
    "row_datasets",
    "kernel_verdict",
    "heldout_error",
    "run_diversity",
]


@dataclass(frozen=True)
class DiversityConfig:
    """``total_frames`` training frames per row (split over its k MDPs); ``k_sweep`` values of k."""

    S: int = 2
    A: int = 2
    total_frames: int = 200
    k_sweep: tuple[int, ...] = (1, 2, 4, 8, 16, 32)
    heldout_k: int = 20
    radius: float = 0.05
    seed: int = 0
    t_max: float = 1e14
    #: LSODA with the dense Hessian: the structured path of ``method="auto"`` (docs/performance-flow.md)
    #: stalls on the single-MDP, shared-feature (M5) row (Hessian kernel 19, lambda_min^+ ~ 1e-11),
    #: where its distance-relative error control follows the distance to a manifold the limit is
    #: not on (measured: no progress within 5 min against 13 s for LSODA).
    method: str = "LSODA"
    rtol: float = 1e-11
    atol: float = 1e-14
    grad_floor: float = 1e-17
    #: feature dimensions d < S A of the single-MDP shared-feature rows at (S, A)
    d_sweep: tuple[int, ...] = (2, 3)
    #: further sizes ``(S, A, d values)``: the (M5) rows there and single-MDP rows at those d
    extra_sizes: tuple[tuple[int, int, tuple[int, ...]], ...] = ((3, 3, (4, 6)),)
    #: flow horizon at the extra sizes: their single-MDP rows have lambda_min^+ ~ 1e-15 lambda_max
    #: and do not reach the gradient floor in feasible time (reported as not converged)
    extra_t_max: float = 1e12
    #: frames of the rank-bound row (one MDP, one feature map); 0 for none
    rank_bound_frames: int = 3

    def __post_init__(self) -> None:
        if self.radius < 0:
            raise ValueError(f"radius: must be non-negative, got {self.radius}")
        if any(k < 1 for k in self.k_sweep):
            raise ValueError(f"k_sweep: every k must be >= 1, got {self.k_sweep}")
        if self.total_frames < 1 or self.heldout_k < 1:
            raise ValueError("total_frames and heldout_k must be >= 1")
        for S, A, ds in [(self.S, self.A, self.d_sweep), *self.extra_sizes]:
            if any(not 1 <= d <= S * A for d in ds):
                raise ValueError(f"d_sweep: every d must be in [1, S A = {S * A}], got {ds}")

    @classmethod
    def quick(cls) -> DiversityConfig:
        return cls(k_sweep=(1, 2, 4, 8, 16), extra_sizes=())

    @classmethod
    def full(cls) -> DiversityConfig:
        """The default configuration (what ``lsa-theory diversity`` runs without ``--quick``)."""
        return cls()


def _m5_rows(S: int, A: int) -> list[dict]:
    base = {"S": S, "A": A, "d": S * A, "reward": "sa", "table": "M5"}
    return [
        {**base, "k": 20, "features": "uniform", "shared_features": False},
        {**base, "k": 20, "features": "onehot", "shared_features": False},
        {**base, "k": 20, "features": "uniform", "shared_features": True},
        {**base, "k": 1, "features": "uniform", "shared_features": True},
        {**base, "k": 1, "features": "uniform", "shared_features": True, "reward": "sas"},
    ]


def _d_rows(S: int, A: int, ds: tuple[int, ...]) -> list[dict]:
    one = {"S": S, "A": A, "k": 1, "features": "uniform", "shared_features": True, "reward": "sa"}
    return [{**one, "d": d, "table": "d"} for d in ds]


def diversity_rows(cfg: DiversityConfig) -> list[dict]:
    """The row specifications: the (M5) rows, the single-MDP rows at ``d < S A`` and the
    rank-bound row at ``(S, A)``, the k sweep (resampled, then shared), then (M5) and d rows at
    each of ``extra_sizes``. Every row has ``S, A, d, k, features, shared_features, reward,
    frames, table``."""
    F = cfg.total_frames
    S, A = cfg.S, cfg.A
    rows = _m5_rows(S, A) + _d_rows(S, A, cfg.d_sweep)
    if cfg.rank_bound_frames:
        rows.append(
            {"S": S, "A": A, "d": S * A, "k": 1, "features": "uniform", "shared_features": True}
            | {"reward": "sa", "table": "rank_bound", "frames": cfg.rank_bound_frames}
        )
    for shared in (False, True):
        for k in cfg.k_sweep:
            rows.append(
                {"S": S, "A": A, "d": S * A, "k": k, "features": "uniform", "shared_features": shared}
                | {"reward": "sa", "table": "k"}
            )
    for S2, A2, ds in cfg.extra_sizes:
        rows += [r | {"t_max": cfg.extra_t_max} for r in _m5_rows(S2, A2) + _d_rows(S2, A2, ds)]
    for r in rows:
        r.setdefault("frames", max(1, F // r["k"]))
    return rows


def heldout_error(theta: np.ndarray, heldout: dy.TeacherDataset) -> float:
    """``sqrt(mean_f ||A Sigma_f B wt_f - y_f||^2 / mean_f ||y_f||^2)`` on held-out frames
    (:func:`lsa_theory.dynamics.relative_error`)."""
    return dy.relative_error(heldout, theta)


def row_datasets(cfg: DiversityConfig, row: dict, index: int) -> tuple[dy.TeacherDataset, dy.TeacherDataset]:
    """The training sample of row ``index`` of :func:`diversity_rows` (``keep_prompts=True``, stream
    ``default_rng([seed, index])``) and its held-out frames (``heldout_k`` MDPs x 10 frames, fresh
    features, stream ``[seed, index, 1]``)."""
    S, A = row.get("S", cfg.S), row.get("A", cfg.A)
    spec = dy.TeacherSpec(
        S=S,
        A=A,
        d=row.get("d"),
        k=row["k"],
        frames=row["frames"],
        features=row["features"],
        shared_features=row["shared_features"],
        reward=row["reward"],
    )
    ds = dy.teacher_dataset(spec, np.random.default_rng([cfg.seed, index]), keep_prompts=True)
    held = dy.teacher_dataset(
        spec.replace(k=cfg.heldout_k, frames=10, shared_features=False),
        np.random.default_rng([cfg.seed, index, 1]),
    )
    return ds, held


def kernel_verdict(ds: dy.TeacherDataset) -> tuple[dy.KernelCertificate, bool]:
    """The certificate of the Hessian kernel at the construction ``theta*(c = 1)`` of sample ``ds``
    (:func:`lsa_theory.dynamics.certify_kernel`, exact arithmetic on the context columns) and the row's
    verdict
    (:func:`lsa_theory.experiments.criteria.diversity_passed`: certified and equal to ``max(tangent_dim,
    size - rank_rows)``). The verdict is all that decides the command's exit code."""
    from ..criteria import diversity_passed

    cert = dy.certify_kernel(ds)
    fields = {"kernel_certified": cert.certified, "ker_dim": cert.ker_dim, "tangent_dim": cert.tangent_dim}
    return cert, diversity_passed(fields | {"size": cert.size, "rank_rows": cert.rows})


def _row(cfg: DiversityConfig, row: dict, index: int) -> dict:
    ds, held = row_datasets(cfg, row, index)
    spec = ds.spec
    S, A = spec.S, spec.A
    theta_star = dy.construction(ds, 1.0)
    t0 = time.perf_counter()  # wall_time: certificate and flow
    cert, _ = kernel_verdict(ds)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the rank bound is reported in the row
        rich = dy.richness(ds, theta_star)
    z = np.random.default_rng([cfg.seed, index, 2]).standard_normal(theta_star.size)
    theta0 = theta_star + cfg.radius * np.linalg.norm(theta_star) * z / np.linalg.norm(z)
    t_max = row.get("t_max", cfg.t_max)
    flow = dy.gradient_flow(
        ds, theta0, t_max, method=cfg.method, rtol=cfg.rtol, atol=cfg.atol, grad_floor=cfg.grad_floor
    )
    return {
        "S": S,
        "A": A,
        "d": spec.dim,
        **{k: row[k] for k in ("k", "features", "shared_features", "reward", "frames", "table")},
        "size": cert.size,
        "ker_dim": cert.ker_dim,
        "kernel_certified": cert.certified,
        "ker_bounds": [cert.lower, cert.upper],
        "kernel_reason": cert.reason,
        "tangent_dim": cert.tangent_dim,
        "invisible_dim": cert.invisible_dim,
        "blind_dim": cert.blind_dim,
        "rank_rows": cert.rows,
        "rank_limited": cert.rank_limited,
        "rank_warning": dy.rank_bound_warning(ds),
        "morse_bott": cert.kernel_is_tangent,
        "scaling_only": cert.tangent_dim == 1,
        "ker_dim_threshold": rich.ker_dim,
        "float_kernel_max": cert.float_kernel_max,
        "float_nonzero_min": cert.float_nonzero_min,
        "lambda_min_plus": cert.float_nonzero_min * rich.lambda_max,
        "lambda_max": rich.lambda_max,
        "heldout_err": heldout_error(flow.theta_final, held),
        "heldout_err_construction": heldout_error(theta_star, held),
        "train_loss_final": flow.loss[-1],
        "dist_final": flow.dist[-1],
        "converged": flow.converged,
        "t_max": t_max,
        "message": flow.message,
        "wall_time": time.perf_counter() - t0,
    }


def run_diversity(cfg: DiversityConfig, out: str | Path | None = None) -> dict:
    """Every row of :func:`diversity_rows`; with ``out``, ``diversity.json`` is rewritten
    atomically after each row and a rerun with the same config skips finished rows."""
    out = Path(out) if out is not None else None
    config = to_jsonable(asdict(cfg))
    todo = units(cfg)

    def render(store: UnitStore) -> dict:  # the finished rows: a prefix of the rows, in order
        rows = list(itertools.takewhile(lambda r: r is not None, (store.records.get(u.key) for u in todo)))
        return {"config": config, "versions": versions(), "rows": rows}

    store = UnitStore(
        out, "diversity.json", config=config, label="diversity", saved_units=_saved_rows, render=render
    )
    for unit in progress(todo, desc="diversity"):
        if unit.key not in store:
            store.put(unit.key, *run_unit(cfg, unit))
    return render(store)


class Unit(NamedTuple):
    """One row of a diversity run: its ``index`` (seeds its draws; ``key`` = ``str(index)``) and
    ``spec`` (a row of :func:`diversity_rows`: k, features, shared_features, reward, frames, table)."""

    key: str
    index: int
    spec: dict


def units(cfg: DiversityConfig) -> list[Unit]:
    """The units of ``cfg``: one per row of :func:`diversity_rows`, in order."""
    return [Unit(str(i), i, spec) for i, spec in enumerate(diversity_rows(cfg))]


def run_unit(cfg: DiversityConfig, unit: Unit) -> tuple[dict, dict]:
    """``(row, {})`` of one :class:`Unit`: the kernel certificate, the flow and the held-out error
    of its datasets (no arrays)."""
    return _row(cfg, unit.spec, unit.index), {}


def _saved_rows(doc: dict):
    """The rows of a saved ``diversity.json`` (key: the row index) and the hash of their configuration."""
    if isinstance(doc, dict) and isinstance(doc.get("rows"), list):
        h = config_hash(doc.get("config"))
        for index, row in enumerate(doc["rows"]):
            yield str(index), row, h
