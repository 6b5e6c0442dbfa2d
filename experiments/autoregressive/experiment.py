r"""The autoregressive experiment: in-context autoregressive learning [Sa], (AR1)-(AR10), measured.

On the rotation law (AR1) with the random start phase, at ``(d, T)`` (default 2, 10):

- ``verify``: the construction (AR5) (the registry's rows of ``gd_autoregressive`` and the causal
  all-positions pass against the loops), the closed form (AR6) against the exact quadrature, the
  quadrature's exactness by two grids, Monte Carlo against the quadrature, and (AR10)'s zero cross
  term, each a row ``{claim, check, residual, tol, passed}`` (passed when ``residual <= tol``; a
  check that a value must exceed a bound is written ``bound - value <= 0``);
- ``gd_class`` (AR7)/(AR9a): ``c*``, ``L*``, L-BFGS over all ``2 d^2`` entries of (A, B) (random and
  fixed phase), and the flow over all entries from ``A = a0 I``, ``B = b0 I``
  (:class:`lsa_theory.dynamics.autoregressive.GDClassObjective`): ``c_flow = ab`` at its limit, the
  predicted ``a_inf``, the drift of ``a^2 - b^2`` and the fitted late rate over the a-priori one
  (with the 1/d factor); the same flow run 5 % fast must fail the 1 % rate check;
- ``theta6`` (AR8): the ``k12`` gradient at the balanced GD point and the minimum on ``Theta_6``;
- ``dense`` (AR9b): the dense (V, K) flow from the GD-class start (it stays on the fixed set of the
  reflection symmetry ``L(V, K) = L(-V D, D K D)`` and stops at a saddle), and from the same start
  pushed by ``push`` along ``v2``;
- ``curve``: ``L*`` of the GD class, the loss of the plain step ``c = d`` and the ``Theta_6`` minimum
  against T (the figure's first panel).

Results: ``autoregressive.json`` and ``autoregressive.npz`` (the flows' trajectories) in ``--out``;
:func:`plot_autoregressive` draws ``autoregressive.png`` from them.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

import lsa_theory as lt
from lsa_theory import autoregressive as ar
from lsa_theory import dynamics as dy
from lsa_theory.checks import check_int, check_real
from lsa_theory.constructions import ALGORITHMS, Row, derive
from lsa_theory.constructions.algorithms import autoregressive as arc
from lsa_theory.dynamics import autoregressive as da

from ..io import atomic_savez, atomic_write_json, provenance, to_jsonable, versions
from ..store import UnitStore

__all__ = ["ARConfig", "CRITERIA", "UNITS_FILE", "units", "run_unit", "run_autoregressive"]

#: Tolerances of the rows (THEORY §9's list of checks; each fails on a 1 % error).
CRITERIA = {
    "construction": derive.READOUT_TOL,  # relative, per position and causal pass
    "closed_form": 1e-12,  # relative, closed form against exact quadrature
    "two_grids": 1e-13,  # relative, two exact grids
    "monte_carlo_z": 4.0,  # |z| of Monte Carlo against the quadrature
    "l_star": 1e-12,  # absolute, L-BFGS minimum over all of (A, B) against L*
    "k12_gradient": 0.1,  # lower bound of the k12 gradient at the GD point
    "off_scalar": 1e-12,  # off-scalar entries of the flow's limit
    "drift": 1e-9,  # drift of a^2 - b^2
    "a_inf": 1e-9,  # |a_flow - a_inf|
    "rate": 0.01,  # |fitted / a-priori rate - 1|
    "cross_term": 1e-14,  # (AR10) |cross| / rms(shat)
}


@dataclass(frozen=True)
class ARConfig:
    """Sizes, starts and solver settings; ``quick()`` is ``--quick``. ``d``, ``T``: the primary size;
    ``a0``, ``b0``: the scalar start of the flows; ``starts``: random starts of each L-BFGS;
    ``mc_draws``: Monte Carlo sequences; ``push``: the dense flow's push along ``v2``; ``curve_T``:
    the T of the figure's first panel; ``extra``: further ``(d, T)`` sizes whose closed form,
    quadrature and L-BFGS minimum are checked too (the rate law's d = 4 row of THEORY)."""

    d: int = 2
    T: int = 10
    phase: str = "random"
    a0: float = 0.5
    b0: float = 0.1
    starts: int = 3
    mc_draws: int = 100_000
    push: float = 1e-6
    curve_T: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 25, 30)
    extra: tuple[tuple[int, int], ...] = ((4, 6),)
    seed: int = 0
    t_max: float = 80.0
    rtol: float = 1e-11
    atol: float = 1e-14
    grad_floor: float = 1e-15
    dense_t_max: float = 2000.0
    dense_rtol: float = 1e-10
    dense_atol: float = 1e-13
    dense_grad_floor: float = 1e-12
    window: tuple[float, float] = (1e-12, 1e-6)
    verify_quick: bool = False

    def __post_init__(self) -> None:
        """Every field checked; ValueError naming the field."""
        check_int(self.d, "d", minimum=2)
        if self.d % 2:
            raise ValueError(f"d: the rotation law needs an even d, got {self.d}")
        check_int(self.T, "T")
        if self.phase != "random":
            raise ValueError(f"phase: (AR7)'s optimum is stated for the random phase, got {self.phase!r}")
        check_real(self.a0, "a0", low=0.0, low_open=True)
        check_real(self.b0, "b0", low=0.0, low_open=True)
        check_int(self.starts, "starts")
        check_int(self.mc_draws, "mc_draws", minimum=100)
        check_real(self.push, "push", low=0.0, low_open=True)
        for t in self.curve_T:
            check_int(t, "curve_T")
        for size in self.extra:
            if not isinstance(size, tuple | list) or len(size) != 2:
                raise ValueError(f"extra: expected (d, T) pairs, got {size!r}")
            if check_int(size[0], "extra: d", minimum=2) % 2:
                raise ValueError(f"extra: d must be even, got {size[0]}")
            check_int(size[1], "extra: T")
        check_int(self.seed, "seed", minimum=0)
        for name in ("t_max", "rtol", "atol", "grad_floor", "dense_t_max", "dense_rtol", "dense_atol"):
            check_real(getattr(self, name), name, low=0.0, low_open=True)
        check_real(self.dense_grad_floor, "dense_grad_floor", low=0.0, low_open=True)
        lo = check_real(self.window[0], "window", low=0.0, low_open=True)
        if len(self.window) != 2 or check_real(self.window[1], "window") <= lo:
            raise ValueError(f"window: expected (low, high) with 0 < low < high, got {self.window!r}")

    @classmethod
    def full(cls) -> ARConfig:
        """The default configuration (``lsa-theory autoregressive`` without ``--quick``)."""
        return cls()

    @classmethod
    def quick(cls) -> ARConfig:
        """``--quick``: 2e4 Monte Carlo draws, eight T in the curve, no extra sizes, quick verify rows."""
        return cls(mc_draws=20_000, curve_T=(1, 2, 3, 5, 8, 10, 15, 20), extra=(), verify_quick=True)


def _row(claim: str, check: str, residual: float, tol: float) -> dict:
    """A JSON row ``{claim, check, residual, tol, passed}``: :meth:`lsa_theory.constructions.Row.against`."""
    return Row.against(claim, check, residual, tol).as_dict()


def _rng(cfg: ARConfig, *key: int) -> np.random.Generator:
    return np.random.default_rng([cfg.seed, *key])


def verify_unit(cfg: ARConfig) -> list[dict]:
    """The rows of (AR5), (AR6), (AR10) (module docstring)."""
    d, T = cfg.d, cfg.T
    rows = [
        {"claim": r.claim, "check": r.check, "residual": r.residual, "tol": r.tol, "passed": r.passed}
        for r in derive.verify_rows(ALGORITHMS["gd_autoregressive"], _rng(cfg, 1), quick=cfg.verify_quick)
    ]
    rng = _rng(cfg, 2)
    err, inv = 0.0, 0.0
    for dd, TT in ((1, 12), (2, 5), (3, 12), (6, 12)):
        inst = arc.ar_instance(dd, TT, rng)
        s, A, B = inst["s"], inst["hyper"]["A"], inst["hyper"]["B"]
        E = ar.augmented_tokens(s)
        out = lt.causal_lsa(E, *arc.gd_class(A, B))
        ref = [arc.naive_gd_step(s.tolist(), A.tolist(), B.tolist(), t) for t in range(1, TT + 1)]
        err = max(err, derive.relative_residual(out[:dd].T.ravel(), np.ravel(ref)))
        inv = max(inv, float(np.abs(out[dd:] - E[dd:]).max()))
    rows.append(
        _row(
            "(AR5)",
            "causal all-positions pass (AR3) = the GD step at every t (d = 1, 2, 3, 6)",
            err,
            CRITERIA["construction"],
        )
    )
    rows.append(_row("(AR5)", "causal pass: middle and last blocks unchanged", inv, 0.0))
    for dd, TT in ((d, T), *cfg.extra):
        m = dd // 2
        errs = []
        for phase in ("random", "fixed"):
            r2 = rng.dirichlet(np.ones(m)) if m > 1 else np.ones(1)
            q = da.quadrature(dd, TT, phase, energies=r2)
            a, b = 1 + 0.5 * rng.standard_normal(m), 1 + 0.5 * rng.standard_normal(m)
            L = da.population_loss(*da.gd_blocks(np.diag(np.repeat(a, 2)), np.diag(np.repeat(b, 2))), q)
            errs.append(abs(L - da.blockscalar_loss(a, b, r2, TT)) / L)
        rows.append(
            _row(
                "(AR6)",
                f"closed form = exact quadrature, block-scalar (A, B), random energies, "
                f"both phases, d = {dd}, T = {TT}",
                max(errs),
                CRITERIA["closed_form"],
            )
        )
    V, K = 0.5 * rng.standard_normal((d, 2 * d)), 0.5 * rng.standard_normal((2 * d, 2 * d))
    worst, z = 0.0, 0.0
    for phase in ("random", "fixed"):
        L1 = da.population_loss(V, K, da.quadrature(d, T, phase))
        L2 = da.population_loss(V, K, da.quadrature(d, T, phase, n_theta=6 * T + 4, n_psi=9, offset=0.37))
        worst = max(worst, abs(L2 - L1) / L1)
        mean, se = da.monte_carlo_loss(V, K, d, T, cfg.mc_draws, rng, phase=phase)
        z = max(z, abs(mean - L1) / se)
    rows.append(
        _row(
            "(AR6)",
            f"exact quadrature: two grids agree at a random dense (V, K), d = {d}, T = {T}",
            worst,
            CRITERIA["two_grids"],
        )
    )
    rows.append(
        _row(
            "(AR6)",
            f"Monte Carlo ({cfg.mc_draws} sequences) against the quadrature: |z|",
            z,
            CRITERIA["monte_carlo_z"],
        )
    )
    q = da.quadrature(d, T)
    ratio = 0.0
    for _ in range(3):
        cross, rms = da.plain_cross_term(*rng.standard_normal((2, d, d)), q)
        ratio = max(ratio, abs(cross) / rms)
    rows.append(
        _row(
            "(AR10)",
            "non-augmented tokens: |E[s_{t+1}^T shat]| / rms(shat) at random (V, K)",
            ratio,
            CRITERIA["cross_term"],
        )
    )
    return rows


def _gd_fun(q: da.Quadrature, d: int):
    def fun(th):
        A, B = th[: d * d].reshape(d, d), th[d * d :].reshape(d, d)
        L, gV, gK = da.loss_and_grad(*da.gd_blocks(A, B), q)
        return L, np.concatenate([gV[:, :d].ravel(), gK[d:, :d].ravel()])

    return fun


def gd_class_unit(cfg: ARConfig) -> tuple[dict, dict]:
    """(AR7) and (AR9a): ``(record, arrays)``, the record with its rows under ``"rows"``."""
    rows, out = [], {}
    rng = _rng(cfg, 3)
    for dd, TT in ((cfg.d, cfg.T), *cfg.extra):
        I2 = np.concatenate([np.eye(dd).ravel(), np.eye(dd).ravel()])
        q, qf = da.quadrature(dd, TT), da.quadrature(dd, TT, "fixed")
        mins, fixed = [], []
        for _ in range(cfg.starts):
            th0 = I2 + 0.5 * rng.standard_normal(2 * dd * dd)
            mins.append(da.minimise(_gd_fun(q, dd), th0)[1])
            fixed.append(da.minimise(_gd_fun(qf, dd), th0)[1])
        Ls = da.loss_star(dd, TT)
        rows.append(
            _row(
                "(AR7)",
                f"L-BFGS over all 2d^2 entries of (A, B), {cfg.starts} starts, reaches L* "
                f"(d = {dd}, T = {TT})",
                max(abs(m - Ls) for m in mins),
                CRITERIA["l_star"],
            )
        )
        rows.append(
            _row(
                "(AR7)",
                f"fixed phase: the minimum over (A, B) is below L* (min - L*; d = {dd}, T = {TT})",
                min(fixed) - Ls,
                0.0,
            )
        )
        if (dd, TT) == (cfg.d, cfg.T):
            out.update({"loss_min_random_phase": min(mins), "loss_min_fixed_phase": min(fixed)})
    d, T = cfg.d, cfg.T
    th0 = np.concatenate([cfg.a0 * np.eye(d).ravel(), cfg.b0 * np.eye(d).ravel()])
    flows, arrays = {}, {}
    for scale in (1.0, 1.05):
        obj = da.GDClassObjective.build(d, T, time_scale=scale)
        flows[scale] = (
            obj,
            dy.gradient_flow(
                obj, th0, cfg.t_max, method="LSODA", rtol=cfg.rtol, atol=cfg.atol, grad_floor=cfg.grad_floor
            ),
        )
    obj, flow = flows[1.0]
    A, B = obj.split(flow.theta_final)
    a, b = np.trace(A) / d, np.trace(B) / d
    off = max(np.abs(A - a * np.eye(d)).max(), np.abs(B - b * np.eye(d)).max())
    a_inf = da.predict_a_inf(cfg.a0, cfg.b0, d, T)
    pred = da.predicted_rate(cfg.a0, cfg.b0, d, T, all_entries=True)
    ratios = {}
    for scale, (_, f) in flows.items():
        mu, n = dy.fit_rate(f.t, f.loss, window=cfg.window)
        ratios[scale] = mu / pred
    arrays = {"gd_flow/t": flow.t, "gd_flow/excess": flow.loss, "gd_flow/conserved": flow.conserved}
    rows += [
        _row(
            "(AR9)",
            "GD-class flow over all entries: off-scalar entries at the limit",
            off,
            CRITERIA["off_scalar"],
        ),
        _row("(AR9)", "GD-class flow: drift of a^2 - b^2", flow.conserved_drift, CRITERIA["drift"]),
        _row("(AR9)", "GD-class flow: |a - a_inf| at the limit", abs(a - a_inf), CRITERIA["a_inf"]),
        _row(
            "(AR9)",
            "GD-class flow: |fitted / a-priori rate - 1| (a-priori with the factor 1/d)",
            abs(ratios[1.0] - 1),
            CRITERIA["rate"],
        ),
        _row(
            "(AR9)",
            "mutation: the flow run 5 % fast fails the rate check (0.01 - |ratio - 1|)",
            CRITERIA["rate"] - abs(ratios[1.05] - 1),
            0.0,
        ),
    ]
    record = {
        "c_star": da.c_star(d, T),
        "loss_star": da.loss_star(d, T),
        "c_flow": float(a * b),
        "a_inf": a_inf,
        "a_flow": float(a),
        "rate_a_priori": pred,
        "rate_ratio_a_priori": ratios[1.0],
        "rate_ratio_time_5pct_fast": ratios[1.05],
        "conserved_drift": flow.conserved_drift,
        "off_scalar": float(off),
        "converged": flow.converged,
        **out,
        "rows": rows,
    }
    return record, arrays


def _f6(q: da.Quadrature, d: int):
    def fun(x):
        L, gV, gK = da.loss_and_grad(*da.theta6_blocks(x, d), q)
        return L, da.theta6_grad(gV, gK)

    return fun


def theta6_unit(cfg: ARConfig) -> dict:
    """(AR8): the ``k12`` gradient at the balanced GD point and the ``Theta_6`` minimum."""
    d, T = cfg.d, cfg.T
    q = da.quadrature(d, T)
    x0 = da.gd_point_theta6(d, T)
    L0, g = _f6(q, d)(x0)
    rng = _rng(cfg, 4)
    found = [da.minimise(_f6(q, d), x0 + 0.3 * rng.standard_normal(6)) for _ in range(cfg.starts)]
    x, L = min(found, key=lambda r: r[1])
    rows = [
        _row(
            "(AR8)",
            "gradient along k12 at the GD point exceeds 0.1 (0.1 - g)",
            CRITERIA["k12_gradient"] - g[3],
            0.0,
        ),
        _row(
            "(AR8)",
            "every other Theta_6 component of the gradient at the GD point",
            np.abs(np.delete(g, 3)).max(),
            CRITERIA["l_star"],
        ),
        _row("(AR8)", "the Theta_6 minimum is below the GD value (min - L*)", L - L0, 0.0),
    ]
    return {
        "loss_min": L,
        "grad_k12_at_gd": float(g[3]),
        "loss_gd": L0,
        "x_min": x,
        "x_names": ["v1", "v2", "k11", "k12", "k21", "k22"],
        "spread_over_starts": float(max(r[1] for r in found) - L),
        "rows": rows,
    }


def dense_unit(cfg: ARConfig) -> tuple[dict, dict]:
    """(AR9b): the dense (V, K) flow from the GD-class start, and pushed along ``v2``."""
    d, T = cfg.d, cfg.T
    obj = da.DenseObjective(da.quadrature(d, T))
    V, K = da.gd_blocks(cfg.a0 * np.eye(d), cfg.b0 * np.eye(d))
    th0 = np.concatenate([V.ravel(), K.ravel()])
    push = th0.copy()
    push[d : 2 * d] = 0.0
    for i in range(d):
        push[i * 2 * d + d + i] = cfg.push  # V[i, d + i]: v2 I
    res, arrays = {}, {}
    for name, start in (("diagonal", th0), ("pushed", push)):
        flow = dy.gradient_flow(
            obj,
            start,
            cfg.dense_t_max,
            method="LSODA",
            rtol=cfg.dense_rtol,
            atol=cfg.dense_atol,
            grad_floor=cfg.dense_grad_floor,
        )
        x, dist = da.theta6_projection(*obj.split(flow.theta_final))
        res[name] = {
            "loss_final": float(flow.loss[-1]),
            "x_final": x,
            "dist_theta6_max": float(flow.dist.max()),
            "fixed_set": float(np.abs(x[[1, 2, 5]]).max()),
            "converged": flow.converged,
            "t_final": float(flow.t[-1]),
        }
        arrays.update({f"dense_{name}/t": flow.t, f"dense_{name}/loss": flow.loss})
    return {"loss_final": res["diagonal"]["loss_final"], "gd_value": da.loss_star(d, T), **res}, arrays


def curve_unit(cfg: ARConfig) -> dict:
    """Against T: ``L*`` of the GD class, the loss of the plain step ``c = d`` (one GD step of size d,
    unbiased on the signal) and the ``Theta_6`` minimum (L-BFGS from the GD point pushed by 0.1)."""
    d = cfg.d
    rng = _rng(cfg, 5)
    rows = []
    for T in cfg.curve_T:
        q = da.quadrature(d, T)
        x0 = da.gd_point_theta6(d, T)
        found = [da.minimise(_f6(q, d), x0 + 0.3 * rng.standard_normal(6))[1] for _ in range(2)]
        rows.append(
            {
                "T": T,
                "loss_star": da.loss_star(d, T),
                "loss_step_d": da.scalar_loss(float(d), d, T),
                "c_star": da.c_star(d, T),
                "theta6_min": min(found),
            }
        )
    return {"rows": rows}


#: Where :func:`run_autoregressive` keeps finished units while it runs (removed once written).
UNITS_FILE = ".autoregressive-units.json"

_UNITS = ("verify", "gd_class", "theta6", "dense", "curve")


def units(cfg: ARConfig) -> list[str]:
    """The unit keys in run order."""
    return list(_UNITS)


def run_unit(cfg: ARConfig, key: str):
    """The unit ``key`` of :func:`units`: ``(record, arrays)``."""
    if key not in _UNITS:
        raise ValueError(f"key: expected one of {list(_UNITS)}, got {key!r}")
    out = {
        "verify": verify_unit,
        "gd_class": gd_class_unit,
        "theta6": theta6_unit,
        "dense": dense_unit,
        "curve": curve_unit,
    }[key](cfg)
    return out if isinstance(out, tuple) else (out, {})


def run_autoregressive(cfg: ARConfig, out: str | Path | None = None) -> dict:
    """Every unit of ``cfg``; with ``out``, ``autoregressive.json`` and ``.npz`` are written there (each
    finished unit kept in ``out/UNITS_FILE`` until then, so an interrupted run resumes). Returns the
    JSON document (public contract: ``d``, ``T``, ``phase``, ``gd_class`` with ``c_star``,
    ``loss_star``, ``c_flow``, ``rate_ratio_a_priori``; ``theta6`` with ``loss_min``,
    ``grad_k12_at_gd``; ``dense`` with ``loss_final``; ``verify``; ``passed``; ``provenance``)."""
    t0 = time.perf_counter()
    out = Path(out) if out is not None else None
    store = UnitStore(out, UNITS_FILE, config=asdict(cfg), label="autoregressive")
    got, arrays = {}, {}
    for key in units(cfg):

        def compute(key=key):
            record, arr = run_unit(cfg, key)
            return {"record": record, "arrays": arr}, None  # arrays packed with the record (exact)

        kept = store.unit(key, compute)[0]
        got[key] = kept["record"]
        arrays.update(kept["arrays"])
    verify = got["verify"] + got["gd_class"].pop("rows") + got["theta6"].pop("rows")
    doc = {
        "d": cfg.d,
        "T": cfg.T,
        "phase": cfg.phase,
        "gd_class": got["gd_class"],
        "theta6": got["theta6"],
        "dense": got["dense"],
        "curve": got["curve"]["rows"],
        "verify": verify,
        "criteria": CRITERIA,
        "passed": all(r["passed"] for r in verify),
        "config": to_jsonable(asdict(cfg)),
        "provenance": provenance(asdict(cfg), cfg.seed),
        "versions": versions(),
        "wall_time": time.perf_counter() - t0,
    }
    if out is not None:
        atomic_savez(out / "autoregressive.npz", **arrays)
        atomic_write_json(out / "autoregressive.json", doc)
        store.remove()
    return to_jsonable(doc)
