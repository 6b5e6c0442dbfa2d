"""Pieces shared by the TD-family modules: the (W1) prompt built numerically and from symbols,
the value readout ``-Z[-1, -1]`` against ``w^T phi(s)``, argument checks, and the exact
polynomial engine of the fixed-size proofs.

Proof engine (:class:`Ring`): every symbol of a proof generates the polynomial ring
``QQ[symbols]`` of sympy's ``polys``; the prompt and the parameters become ``DomainMatrix``es over
it, the block ``Z + (1/n) P Z M Z^T Q Z`` is multiplied out exactly there, and the naive loops
run on the same ring elements (they use only ``+``, ``*`` and ``/`` by integers). A residual
entry is the zero polynomial iff it is the zero ring element, so the check is the same as
``expand(lhs - rhs) == 0`` in :mod:`constructions.symbolic`, 14-55x faster at d = 2, n = 3, L = 2
(``tests/test_td_family.py`` checks the ring block against
:func:`constructions.symbolic.masked_lsa_symbolic`).
"""

from __future__ import annotations

import numbers
import time

import numpy as np
import sympy as sp
from sympy.polys.matrices import DomainMatrix

import lsa_theory as lt
from lsa_theory._checks import as_float_array, check_gamma, check_int, check_real
from lsa_theory.reference import _sizes

from .. import symbolic
from .._residuals import Residuals, relative_residual

gamma_s, alpha_s = symbolic.gamma_s, symbolic.alpha_s


def numeric_prompt(phi, phi_next, r, phi_query, gamma: float) -> np.ndarray:
    """(W1) prompt (2d+1, n+1) from ``phi``, ``phi_next`` (n, d), ``r`` (n,), ``phi_query`` (d,)."""
    return lt.td_prompt(lt.context_columns(phi, phi_next, r, gamma), phi_query)


def value_residuals(Z: np.ndarray, Z_out: np.ndarray, w_L, phi_query) -> Residuals:
    """``readout``: relative residual of ``-Z_out[-1, -1]`` against ``w_L^T phi(s)``;
    ``context``: the largest change of a row other than the last (the constructions write only
    the last row, which carries the TD errors and the value)."""
    value = as_float_array(phi_query, "phi_query") @ np.asarray(w_L, dtype=np.float64)
    res = relative_residual(-Z_out[..., -1, -1], value)
    return Residuals(res, float(np.abs(Z_out[..., :-1, :] - Z[..., :-1, :]).max()))


def naive_start(phi, phi_next, r, w0) -> tuple[list, int, int]:
    """Start of a TD-family naive loop: ``(w, n, d)`` with ``w = w0`` as a list (default ``d``
    zeros, ``d`` the width of ``phi[0]``) and the batch sizes checked against ``w``. ``phi``,
    ``phi_next`` must be sequences of rows and ``r`` a sequence of numbers or symbols (ValueError
    naming the argument: issue 24's fuzz)."""
    for name, x, depth in (("phi", phi, 2), ("phi_next", phi_next, 2), ("r", r, 1)):
        _check_nested(x, name, depth)
    d = len(phi[0]) if len(phi) else 0
    w = [0] * d if w0 is None else list(w0)
    return w, _sizes(phi, phi_next, r, len(w)), d


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
    real finite numbers or symbols (:func:`lsa_theory.reference._check_numeric`: complex and bool
    refused), and when numeric ``0 <= gamma < 1`` and ``0 <= lam <= 1``, as the SARSA loop
    refuses them. ``rates`` (``alpha``, ...) are step sizes: any finite real or symbol."""
    from lsa_theory.reference import _check_numeric

    for name, v in (("gamma", gamma), ("lam", lam), *rates.items()):
        if v is ABSENT:
            continue
        _check_numeric([v], name)
        if isinstance(v, numbers.Real) and name == "gamma":
            check_gamma(v)
        elif isinstance(v, numbers.Real) and name == "lam":
            check_lam(v)
    _check_numeric(list(w0), "w0")
    _check_numeric(list(r), "r")


def symbolic_prompt(d: int, n: int, gamma=gamma_s, extra_rows: int = 0):
    """A (W1) prompt whose every entry is a distinct symbol: ``(Z, phi, phi_next, r, q)``.

    ``Z`` is a sympy ``(2d+1+extra_rows, n+1)`` matrix; the extra rows (after the reward row)
    are zero; ``phi_next`` holds the undiscounted next features (``gamma`` enters ``Z``)."""
    d, n = check_int(d, "d"), check_int(n, "n")
    phi, phi_next = symbolic._symbols("phi", n, d), symbolic._symbols("psi", n, d)
    r, q = symbolic._vec("r", n), symbolic._vec("q", d)
    Z = sp.zeros(2 * d + 1 + extra_rows, n + 1)
    Z[: 2 * d + 1, :n] = symbolic._columns(phi, phi_next, r, gamma)
    Z[:d, n] = sp.Matrix(q)
    return Z, phi, phi_next, r, q


def _free_symbols(obj) -> set:
    if isinstance(obj, list | tuple):
        return set().union(set(), *(_free_symbols(o) for o in obj))
    return sp.sympify(obj).free_symbols


class Ring:
    """``QQ[gens]`` with converters for sympy matrices, scalars and nested lists, and the exact
    masked block (W2) on ``DomainMatrix``es."""

    def __init__(self, *objects) -> None:
        self.gens = tuple(sorted(_free_symbols(objects), key=str))
        self.K = sp.QQ[self.gens]

    def el(self, e):
        return self.K.convert(sp.sympify(e))

    def nested(self, obj):
        if isinstance(obj, list | tuple):
            return [self.nested(o) for o in obj]
        return self.el(obj)

    def mat(self, M) -> DomainMatrix:
        return DomainMatrix.from_Matrix(sp.Matrix(M)).convert_to(self.K)

    def masked_block(self, Z: DomainMatrix, P: DomainMatrix, Q: DomainMatrix, M: DomainMatrix, n: int):
        """``Z + (1/n) P Z M Z^T Q Z`` exactly."""
        return Z + (P * Z * M * Z.transpose() * Q * Z) * self.el(sp.Rational(1, n))


def diag_mask(n: int, n_queries: int = 1) -> sp.Matrix:
    """``diag(I_n, 0)`` as a sympy matrix."""
    return sp.diag(*([1] * n + [0] * n_queries))


def full_proof(
    claim: str, sizes: dict, ring: Ring, Z0: DomainMatrix, Z_out: DomainMatrix, last_row, w_L, q, t0
):
    """:class:`constructions.symbolic.SymbolicProof` that the whole output equals its target:
    ``Z0`` but for the last row, which holds ``last_row`` (n ring elements) on the context columns
    and ``-w_L^T q`` on the query (the value readout). Residual entries: all of ``Z_out - target``."""
    target = Z0.to_list()
    n = len(target[0]) - 1
    target[-1][:n] = list(last_row)
    target[-1][n] = -sum((w_L[j] * q[j] for j in range(len(q))), ring.K.zero)
    out = Z_out.to_list()
    residual = [out[i][j] - target[i][j] for i in range(len(out)) for j in range(len(out[0]))]
    nonzero = sum(1 for e in residual if e != ring.K.zero)
    return symbolic.SymbolicProof(claim, sizes, len(residual), nonzero, time.perf_counter() - t0)


def start() -> float:
    return time.perf_counter()
