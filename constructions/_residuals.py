"""Residual records shared by :mod:`lsa_theory.constructions.verify` and
:mod:`lsa_theory.constructions.algorithms`.

:data:`READOUT_TOL` and :func:`relative_residual` are documented in :mod:`lsa_theory.constructions.verify`;
they live here so that the per-algorithm modules can use them without importing ``verify``
(which imports them to build the claim table).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from lsa_theory.checks import check_real_dtype, is_torch

__all__ = ["READOUT_TOL", "Residuals", "Row", "relative_residual"]

#: Relative tolerance of a readout against the naive loop (see the module docstring).
READOUT_TOL = 1e-12


@dataclass(frozen=True)
class Residuals:
    """``readout``: relative error of the updated parameters; ``context``: largest absolute change
    of a context column or of the constant row (``nan`` where the claim says nothing of them)."""

    readout: float
    context: float


@dataclass(frozen=True)
class Row:
    """One line of the ``lsa-theory verify`` table."""

    claim: str
    check: str
    residual: float
    tol: float
    passed: bool

    @classmethod
    def against(cls, claim: str, check: str, residual: float, tol: float) -> Row:
        """The row of ``residual`` against ``tol``: passed when ``residual <= tol`` (a NaN fails)."""
        residual = float(residual)
        return cls(claim, check, residual, float(tol), bool(residual <= tol))

    def as_dict(self) -> dict:
        return asdict(self)


def _real_array(x, name: str) -> np.ndarray:
    if is_torch(x):
        check_real_dtype(x, name)
        x = x.detach().cpu().double().numpy()
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: expected a real numeric array, got {type(x).__name__}") from exc
    check_real_dtype(arr, name)
    return arr.astype(np.float64)


def relative_residual(out: np.ndarray, ref: np.ndarray) -> float:
    """``max|out - ref| / max(1, max|ref|)`` in float64; ValueError naming ``out``/``ref`` for a
    dtype that is not real (complex, bool, object, strings, None) or different shapes. NaN and inf
    are kept: a non-finite output gives a NaN or inf residual, a failing check, not an error."""
    out, ref = _real_array(out, "out"), _real_array(ref, "ref")
    if out.shape != ref.shape:
        raise ValueError(f"out, ref: shapes differ: {out.shape} vs {ref.shape}")
    return float(np.abs(out - ref).max(initial=0.0) / max(1.0, float(np.abs(ref).max(initial=0.0))))
