"""Pieces shared by the TD-family modules: the start of their naive loops and the checks of
their inputs (the loops use only ``+ * /``, so they run on floats, sympy symbols and the ring
elements of the exact proofs, :mod:`lsa_theory.constructions.symbolic`, alike)."""

from __future__ import annotations

import numbers

import numpy as np

from lsa_theory.checks import check_gamma, check_real
from lsa_theory.reference import batch_size


def naive_start(phi, phi_next, r, w0) -> tuple[list, int, int]:
    """Start of a TD-family naive loop: ``(w, n, d)`` with ``w = w0`` as a list (default ``d``
    zeros, ``d`` the width of ``phi[0]``) and the batch sizes checked against ``w``. ``phi``,
    ``phi_next`` must be sequences of rows and ``r`` a sequence of numbers or symbols (ValueError
    naming the argument: issue 24's fuzz)."""
    for name, x, depth in (("phi", phi, 2), ("phi_next", phi_next, 2), ("r", r, 1)):
        _check_nested(x, name, depth)
    d = len(phi[0]) if len(phi) else 0
    w = [0] * d if w0 is None else list(w0)
    return w, batch_size(phi, phi_next, r, len(w)), d


def _is_sequence(x) -> bool:
    return not isinstance(x, str | bytes) and hasattr(x, "__len__") and np.ndim(x) >= 1


def _check_nested(x, name: str, depth: int) -> None:
    """ValueError naming ``name`` unless ``x`` is a sequence of ``depth`` levels (rows of numbers for
    2, numbers for 1; the entries themselves are checked by :func:`check_loop_inputs`)."""
    what = "a sequence of rows" if depth == 2 else "a sequence of numbers"
    if not _is_sequence(x):
        raise ValueError(f"{name}: expected {what}, got {type(x).__name__}")
    for row in x:
        if (depth == 2) != _is_sequence(row):
            raise ValueError(f"{name}: expected {what}, got an entry {row!r}")


def check_lam(lam) -> float:
    """Trace decay ``0 <= lam <= 1``."""
    return check_real(lam, "lam", low=0.0, high=1.0)


#: Default of :func:`check_loop_inputs`' ``gamma`` and ``lam``: the loop has no such argument
#: (``None`` passed by a caller is refused, naming the argument).
ABSENT = object()


def check_loop_inputs(w0: list, r, gamma=ABSENT, lam=ABSENT, **rates) -> None:
    """Inputs of a TD-family naive loop, each checked under its own name (ValueError naming it):
    real finite numbers or symbols (:func:`lsa_theory.reference.check_numeric`: complex and bool
    refused), and when numeric ``0 <= gamma < 1`` and ``0 <= lam <= 1``, as the SARSA loop
    refuses them. ``rates`` (``alpha``, ...) are step sizes: any finite real or symbol."""
    from lsa_theory.reference import check_numeric

    for name, v in (("gamma", gamma), ("lam", lam), *rates.items()):
        if v is ABSENT:
            continue
        check_numeric([v], name)
        if isinstance(v, numbers.Real) and name == "gamma":
            check_gamma(v)
        elif isinstance(v, numbers.Real) and name == "lam":
            check_lam(v)
    check_numeric(list(w0), "w0")
    check_numeric(list(r), "r")
