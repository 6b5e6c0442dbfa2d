r"""The one-layer optimum of every data law, checked against data as (R4) is checked.

For each setting ``(d, N, kappa)`` (a Haar-rotated, non-diagonal ``Lambda``,
:func:`lsa_theory.dynamics.regression.random_covariance`) and each pair (weight law, covariate law)
of :data:`lsa_theory.dynamics.regression.WEIGHT_LAWS` x
:data:`lsa_theory.dynamics.regression.COVARIATE_LAWS`, the least-squares minimiser of the one-layer
objective on ``F`` independent prompts of that law
(:func:`lsa_theory.dynamics.regression.sample_minimiser_test`) is compared with the closed form
:func:`lsa_theory.dynamics.regression.one_layer_optimum` by the sandwich Wald statistic, against
the chi^2 (``d^2`` dof) quantile at level ``alpha``. Negative controls on the same sample: [ZFB]'s
``Gamma^{-1}`` and the Gaussian-covariate optimum of the same weight law, each rejected where it
differs. :func:`run_law_checks` writes ``regression-laws.json``; its markdown tables (docs/regression.md)
are the kinds ``regression-laws`` and ``regression-laws-calibration`` of
:mod:`lsa_theory.experiments.tables`.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from lsa_theory.checks import check_int, check_real
from lsa_theory.dynamics import regression as rg

from ..io import atomic_write_json, provenance, to_jsonable, versions

__all__ = [
    "LAW_SETTINGS",
    "CALIBRATION",
    "law_checks",
    "wald_calibration",
    "run_law_checks",
]

#: ``(d, N, kappa)`` of the law checks: condition number >= 10, as the tests' settings.
LAW_SETTINGS = ((3, 10, 10.0), (4, 20, 20.0))


#: ``(covariates, F, reps)`` of the Wald calibration saved with the law checks (setting ``(3, 10,
#: 10)``, ``law="isotropic"``): the gamma law at [Ahn]'s shape ``k = 0.1`` at the default suite's
#: size, ten and fifty times it, the sphere at the default suite's size.
CALIBRATION = (
    ("gamma", 20_000, 30),
    ("gamma", 200_000, 30),
    ("gamma", 1_000_000, 10),
    ("sphere", 20_000, 30),
)


def wald_calibration(
    covariates: str,
    F: int,
    reps: int,
    seed: int = 0,
    alpha: float = 1e-3,
    gamma_shape: float = rg.GAMMA_SHAPE,
) -> dict:
    """How close the sandwich Wald statistic of the law's own optimum is to chi^2 (``d^2`` dof) at
    ``F`` prompts: ``reps`` independent samples (``default_rng([seed, 99, r])``) at ``(d, N, kappa) =
    (3, 10, 10)``, ``law="isotropic"``. Returns ``{covariates, F, reps, dof, mean, median, max,
    critical, exceed}`` (``exceed``: how many exceed the ``1 - alpha`` quantile; chi^2 has mean ``d^2``
    and median about ``d^2 - 2/3``)."""
    from scipy import stats

    d, N, kappa = LAW_SETTINGS[0]
    Lambda = rg.random_covariance(d, kappa, np.random.default_rng(11))
    M = rg.one_layer_optimum(Lambda, N, "isotropic", covariates, gamma_shape)
    walds = np.array(
        [
            rg.sample_minimiser_test(
                Lambda,
                N,
                M,
                F,
                np.random.default_rng([seed, 99, r]),
                covariates=covariates,
                gamma_shape=gamma_shape,
            )["wald"]
            for r in range(check_int(reps, "reps"))
        ]
    )
    crit = float(stats.chi2.isf(alpha, d * d))
    return {
        "covariates": covariates,
        "F": F,
        "reps": reps,
        "dof": d * d,
        "mean": float(walds.mean()),
        "median": float(np.median(walds)),
        "max": float(walds.max()),
        "critical": crit,
        "exceed": int((walds > crit).sum()),
    }


def _wald(test: dict, M: np.ndarray) -> float:
    dm = (test["M_sample"] - M).ravel()
    return float(test["F"] * dm @ np.linalg.solve(test["V"], dm))


def law_checks(
    F: int = 1_000_000,
    seed: int = 0,
    alpha: float = 1e-3,
    settings: tuple[tuple[int, int, float], ...] = LAW_SETTINGS,
    gamma_shape: float = rg.GAMMA_SHAPE,
) -> dict:
    """Rows ``{d, N, kappa, w, x, c2, F, wald, critical, passed, rel_err, scale, scale_se, wald_gamma,
    rel_gamma, wald_gaussian, rel_gaussian}`` for every setting and law pair, ``F`` prompts each,
    ``default_rng([seed, d, N, i_w, i_x])`` (``Lambda`` first, then the prompts); ``wald_gamma`` /
    ``wald_gaussian``: the Wald statistics of ``Gamma^{-1}`` and of the Gaussian-covariate optimum
    of the same weight law on the same sample, ``rel_*`` their relative distance to the law's
    optimum (``wald_gaussian`` None for Gaussian covariates). ``passed``: the law's optimum is
    accepted at level ``alpha`` and every control that differs by more than 1 % is rejected."""
    from scipy import stats

    F, seed = check_int(F, "F"), check_int(seed, "seed", minimum=0)
    alpha = check_real(alpha, "alpha", low=0.0, low_open=True)
    rows = []
    t0 = time.perf_counter()
    for d, N, kappa in settings:
        for i_w, law in enumerate(rg.WEIGHT_LAWS):
            for i_x, cov in enumerate(rg.COVARIATE_LAWS):
                rng = np.random.default_rng([seed, d, N, i_w, i_x])
                Lambda = rg.random_covariance(d, kappa, rng)
                M = rg.one_layer_optimum(Lambda, N, law, cov, gamma_shape)
                test = rg.sample_minimiser_test(
                    Lambda, N, M, F, rng, law=law, covariates=cov, gamma_shape=gamma_shape
                )
                crit = float(stats.chi2.isf(alpha, d * d))
                Gi = np.linalg.inv(rg.gamma_matrix(Lambda, N))
                Mg = rg.one_layer_optimum(Lambda, N, law, "gaussian")
                rel_gamma = float(np.linalg.norm(Gi - M) / np.linalg.norm(M))
                rel_gauss = float(np.linalg.norm(Mg - M) / np.linalg.norm(M))
                row = {
                    "d": d,
                    "N": N,
                    "kappa": kappa,
                    "w": law,
                    "x": cov,
                    "c2": rg.radial_moments(d, cov, gamma_shape)[1],
                    "F": F,
                    "wald": test["wald"],
                    "critical": crit,
                    "rel_err": test["rel_err"],
                    "scale": test["scale"],
                    "scale_se": test["scale_se"],
                    "wald_gamma": _wald(test, Gi),
                    "rel_gamma": rel_gamma,
                    "wald_gaussian": None if cov == "gaussian" else _wald(test, Mg),
                    "rel_gaussian": rel_gauss,
                }
                controls = [(row["wald_gamma"], rel_gamma)]
                if cov != "gaussian":
                    controls.append((row["wald_gaussian"], rel_gauss))
                row["passed"] = bool(test["wald"] <= crit and all(w > crit for w, r in controls if r > 0.01))
                rows.append(row)
    return {
        "rows": rows,
        "F": F,
        "seed": seed,
        "alpha": alpha,
        "gamma_shape": gamma_shape,
        "passed": all(r["passed"] for r in rows),
        "wall_time": time.perf_counter() - t0,
    }


def run_law_checks(out: str | Path, F: int = 1_000_000, seed: int = 0) -> dict:
    """:func:`law_checks`, with :func:`wald_calibration` of each :data:`CALIBRATION` entry, written
    to ``out/regression-laws.json`` with provenance; returns the document."""
    doc = law_checks(F, seed)
    doc["calibration"] = [wald_calibration(cov, n, reps, seed) for cov, n, reps in CALIBRATION]
    doc["provenance"] = provenance({"F": F, "seed": seed}, seed)
    doc["versions"] = versions()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "regression-laws.json", doc)
    return to_jsonable(doc)
