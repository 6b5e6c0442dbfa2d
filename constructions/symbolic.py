r"""The exact backend of :func:`lsa_theory.constructions.derive.prove`: the ring of the proof's symbols.

A fixed-size proof writes every instance entry, every numeric hyperparameter and the scale ``c``
as a sympy symbol. :class:`Ring` turns them into elements of the exact ring ``QQ[symbols]`` of
sympy's ``polys`` (the field ``QQ(symbols)`` when ``c`` is a symbol: the constructions divide by
``c``), and the whole identity is computed there: the prompt, the layers of the declaration's one
:meth:`~lsa_theory.constructions.registry.Algorithm.construction` (built from the sympy symbols and
converted entry by entry), the forward pass (:func:`exact_lsa_block`, :func:`exact_masked_block`
on ``dtype=object`` arrays of ring elements) and the naive loop (which uses only ``+ * /`` and so
runs on ring elements as it runs on floats). A residual entry ``lhs - rhs`` is the zero
polynomial iff it is the ring's zero, so the check is ``expand(lhs - rhs) == 0`` without any
expansion of expression trees.

:class:`SymbolicProof` is the outcome of a proof by computation (this module and the all-sizes
block algebra of :mod:`lsa_theory.constructions.symbolic_sizes` alike).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy as sp

__all__ = ["SymbolicProof", "Ring", "exact_lsa_block", "exact_masked_block", "symbol_array"]

alpha_s, beta_s, gamma_s, c_s = sp.symbols("alpha beta gamma c", real=True)


@dataclass(frozen=True)
class SymbolicProof:
    """Outcome of a proof by computation: ``claim`` label, sizes, the number of residual entries
    that are not the zero polynomial (``nonzero``; 0 means the identity holds), and the time."""

    claim: str
    sizes: dict
    n_entries: int
    nonzero: int
    seconds: float

    @property
    def holds(self) -> bool:
        return self.nonzero == 0


def symbol_array(prefix: str, shape: tuple[int, ...]) -> np.ndarray:
    """A ``dtype=object`` array of distinct real symbols ``prefix_i_j...`` of the given shape."""
    out = np.empty(shape, dtype=object)
    for idx in np.ndindex(shape):
        out[idx] = sp.Symbol("_".join([prefix, *map(str, idx)]), real=True)
    return out


def _free_symbols(obj: Any) -> set:
    if isinstance(obj, dict):
        return _free_symbols(list(obj.values()))
    if isinstance(obj, list | tuple):
        return set().union(set(), *(_free_symbols(o) for o in obj))
    if isinstance(obj, np.ndarray):
        return _free_symbols(list(obj.ravel())) if obj.dtype == object else set()
    if isinstance(obj, sp.MatrixBase):
        return obj.free_symbols
    if isinstance(obj, sp.Basic):
        return obj.free_symbols
    return set()


class Ring:
    """``QQ[gens]`` (or the field ``QQ(gens)`` with ``field=True``) over every sympy symbol found in
    ``objects`` (dicts, sequences, object arrays, sympy matrices and expressions) and the given
    ``atoms`` (non-polynomial subexpressions such as ``rho ** 0.5``, each a generator of its own),
    with converters.

    :meth:`el` converts one number or sympy expression to a ring element, :meth:`array` an array
    or a sympy matrix (every entry, zeros included, so that no Python ``int`` is left to turn into
    a float under ``/``), :meth:`tree` dicts, tuples and lists of them (other values unchanged)."""

    def __init__(self, *objects: Any, field: bool = False, atoms: tuple = ()) -> None:
        self.gens = tuple(sorted(_free_symbols(list(objects)) | set(atoms), key=str))
        if not self.gens:
            self.gens = (sp.Symbol("_unused"),)
        self.K = sp.QQ.frac_field(*self.gens) if field else sp.QQ[self.gens]
        self.zero = self.K.zero

    def el(self, e: Any):
        if self.K.of_type(e):
            return e
        if isinstance(e, float | np.floating):  # its exact binary value: a wrong constant stays wrong
            e = sp.Rational(float(e))
        return self.K.convert(sp.sympify(e))

    def array(self, a: Any) -> np.ndarray:
        if isinstance(a, sp.MatrixBase):
            a = np.array(a.tolist(), dtype=object)
        arr = np.asarray(a, dtype=object)
        out = np.empty(arr.shape, dtype=object)
        for idx in np.ndindex(arr.shape):
            out[idx] = self.el(arr[idx])
        return out

    def tree(self, obj: Any) -> Any:
        if isinstance(obj, dict):
            return {k: self.tree(v) for k, v in obj.items()}
        if isinstance(obj, tuple | list):
            return type(obj)(self.tree(v) for v in obj)
        if isinstance(obj, np.ndarray | sp.MatrixBase):
            return self.array(obj)
        if obj is None or isinstance(obj, bool | str):
            return obj
        return self.el(obj)


def exact_lsa_block(H: np.ndarray, P: np.ndarray, V: np.ndarray) -> np.ndarray:
    """(L1) on ``dtype=object`` arrays of ring elements: ``H + (1/n) V H H^T P H``, ``n = cols(H) - 1``."""
    n = H.shape[1] - 1
    return H + (V @ (H @ H.T) @ P @ H) / n


def exact_masked_block(Z: np.ndarray, P: np.ndarray, Q: np.ndarray, M: np.ndarray) -> np.ndarray:
    """(W2) on ``dtype=object`` arrays of ring elements: ``Z + (1/n) P Z M Z^T Q Z`` with the mask
    ``M`` (N, N) whose last (query) row and column are zero, ``n = N - 1``."""
    n = Z.shape[1] - 1
    return Z + (P @ (Z @ M @ Z.T) @ Q @ Z) / n
