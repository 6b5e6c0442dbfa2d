"""Residual records shared by :mod:`constructions.verify` and :mod:`constructions.algorithms`.

:data:`READOUT_TOL` and :func:`relative_residual` are documented in :mod:`constructions.verify`;
they live here so that the per-algorithm modules can use them without importing ``verify``
(which imports them to build the claim table).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

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

    def as_dict(self) -> dict:
        return asdict(self)


def relative_residual(out: np.ndarray, ref: np.ndarray) -> float:
    """``max|out - ref| / max(1, max|ref|)`` in float64."""
    out = np.asarray(out, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    if out.shape != ref.shape:
        raise ValueError(f"shapes differ: {out.shape} vs {ref.shape}")
    return float(np.abs(out - ref).max(initial=0.0) / max(1.0, float(np.abs(ref).max(initial=0.0))))
