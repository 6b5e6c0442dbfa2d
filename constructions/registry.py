r"""The algorithm declaration: one in-context algorithm, one module, every proof level derived.

An :class:`Algorithm` declares what an update rule *is* (docs/theory.md labels in brackets):

- its **prompt layout**: :meth:`Algorithm.columns` maps one instance to the context columns
  ``X`` (m, n) and the last column ``last``; the block kind :attr:`Algorithm.block` says how they
  are assembled, ``"lsa"`` for (L1) (``H = [[X, 0], [0, last]]``, ``last = wt = [1; w; ...]``,
  ``D = m + p``) or ``"masked"`` for (W2) (``Z = [X, last]``, ``last`` the query column, ``D = m``);
- the **deliberately naive loop** :meth:`Algorithm.naive`: explicit Python loops with only
  ``+ * /``, so they run on floats and on sympy symbols alike;
- the **construction** :meth:`Algorithm.construction`, one ``(P, V)`` (or ``(P, Q)``) pair per
  layer, written once for both backends: float64 arrays for float hyperparameters, ``dtype=object``
  arrays of exact entries when ``hyper`` and ``c`` are sympy symbols (the fixed-size proof calls
  it so through :meth:`Algorithm.construction_symbolic`);
- the **readout** :meth:`Algorithm.readout` the identity is about, and what the construction
  leaves unchanged (:meth:`Algorithm.invariant`);
- how random instances are drawn (:meth:`Algorithm.draw`, seeded by an explicit ``rng``) and at
  which sizes they are checked.

From that alone :mod:`lsa_theory.constructions.derive` builds the ``verify`` rows (numeric identity against
the naive loop, invariants), the fixed-size sympy identity (every instance entry and every
hyperparameter a symbol) and hypothesis strategies for the property sweeps.
Closed-loop algorithms (those with a teacher loop (S6)/(A5)) also subclass
:class:`lsa_theory.constructions.closed_loop.ClosedLoopAlgorithm`, from which teacher data, the (M2)
objective and deployment are derived.

:data:`ALGORITHMS` maps each registered name to its declaration; :func:`load_module` registers
the algorithms of a user's own file (``lsa-theory verify --module path/to/file.py``).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import inspect
import pathlib
import sys
import traceback
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

import numpy as np

import lsa_theory as lt

__all__ = ["Algorithm", "ALGORITHMS", "Registry", "register", "load_module", "BLOCKS"]

#: Block kinds: ``"lsa"`` is (L1) with a parameter column, ``"masked"`` is (W2) with a mask.
BLOCKS = ("lsa", "masked")


class Algorithm:
    """Base class of an algorithm declaration (see the module docstring).

    Class attributes a declaration sets:

    - ``name``: registry key (e.g. ``"sarsa"``);
    - ``claim``: the label of the identity its construction satisfies (e.g. ``"(S4)"``);
    - ``statement``: one line saying what the forward pass computes;
    - ``block``: ``"lsa"`` or ``"masked"``;
    - ``hyper``: default hyperparameters (floats or arrays), e.g. ``{"gamma": 0.5, "alpha": 0.2}``;
    - ``hyper_ranges``: inclusive ranges of the scalar hyperparameters the property sweeps vary;
    - ``scales``: the values of the scaling symmetry ``(c P, V/c)`` checked (``(1.0,)`` if none);
    - ``depths``: the numbers of stacked layers the identity is claimed for; a depth ``L > 1``
      carries its own claim label ``depth_claims[L]`` when it has one (e.g. (S5));
    - ``symbolic_depths``: the depths of the fixed-size sympy identity (default: the first two);
    - ``bilinear``: one layer's readout increment is ``A Sigma B last`` with a symmetric ``Sigma``
      (:meth:`effective_blocks`), so the (M2) objective of :mod:`lsa_theory.dynamics.bilinear` applies.
    """

    name: ClassVar[str] = ""
    claim: ClassVar[str] = ""
    statement: ClassVar[str] = ""
    block: ClassVar[str] = "lsa"
    hyper: ClassVar[Mapping[str, Any]] = {}
    hyper_ranges: ClassVar[Mapping[str, tuple[float, float]]] = {}
    scales: ClassVar[tuple[float, ...]] = (1.0,)
    depths: ClassVar[tuple[int, ...]] = (1,)
    depth_claims: ClassVar[Mapping[int, str]] = {}
    symbolic_depths: ClassVar[tuple[int, ...]] = ()
    bilinear: ClassVar[bool] = True

    # ----------------------------------------------------------------------------- sizes
    def sizes(self, quick: bool) -> dict[str, int]:
        """Instance sizes of the numeric ``verify`` rows (full: the [LL] sizes where they apply)."""
        raise NotImplementedError

    def symbolic_sizes(self) -> dict[str, int]:
        """Small sizes at which the sympy identity is expanded (it proves these sizes only)."""
        raise NotImplementedError

    def size_ranges(self) -> dict[str, tuple[int, int]]:
        """Inclusive ``(low, high)`` ranges of each size for the hypothesis property sweeps."""
        raise NotImplementedError

    # ------------------------------------------------------------------------------ data
    def draw(self, sizes: Mapping[str, int], rng: np.random.Generator) -> dict[str, np.ndarray]:
        """One random instance: a dict of float64 arrays (features, rewards, parameters, ...); an
        optional ``"hyper"`` dict holds per-instance hyperparameters (e.g. random preconditioners
        ``C_l``), merged over the defaults and, in the sympy identity, made symbols too."""
        raise NotImplementedError

    def columns(self, inst: Mapping[str, Any], hyper: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        """``(X, last)``: context columns (m, n) and last column; float or object (sympy) arrays.

        Written with numpy operations that work on ``dtype=object`` arrays (``concatenate``,
        ``.T``, ``*`` by a scalar), so the same code builds the numeric and the symbolic prompt."""
        raise NotImplementedError

    def naive(self, inst: Mapping[str, Any], hyper: Mapping[str, Any], depth: int) -> np.ndarray:
        """The deliberately naive reference: what ``readout`` must equal after ``depth`` layers."""
        raise NotImplementedError

    # ---------------------------------------------------------------------- construction
    def construction(
        self, sizes: Mapping[str, int], hyper: Mapping[str, Any], c: float = 1.0, depth: int = 1
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """One ``(P, V)`` pair per layer (``depth`` pairs): float64 arrays for float ``hyper`` and
        ``c``; the same code must also run when they are sympy symbols (the fixed-size proof),
        returning ``dtype=object`` arrays (or sympy matrices) of exact entries: use ``+ - * /``,
        integer powers, ``np.zeros(..., dtype=object)`` where a float zero would be inexact
        (:func:`lsa_theory.constructions.numeric.is_exact` tells the two apart)."""
        raise NotImplementedError

    def construction_symbolic(
        self, sizes: Mapping[str, int], hyper: Mapping[str, Any], c: Any, depth: int = 1
    ) -> list[tuple[Any, Any]]:
        """The construction with symbolic ``hyper`` and ``c``: by default :meth:`construction`
        itself (one construction for both backends). A declaration may still override it with a
        separate sympy construction; the proof then checks that one."""
        return self.construction(sizes, hyper, c, depth)

    def readout(self, out: Any, sizes: Mapping[str, int]) -> Any:
        """The entries of the block's output the identity is about, as a 1-D array."""
        raise NotImplementedError

    def mask(self, sizes: Mapping[str, int], hyper: Mapping[str, Any]) -> Any:
        """The (W2) mask for ``block == "masked"`` (``None``: the default ``diag(I_n, 0)``)."""
        return None

    def invariant(self, Z: Any, Z_out: Any, m: int, k: int) -> Any:
        """What the construction leaves exactly unchanged, as ``Z_out - Z`` restricted to it (1-D).

        ``m``: the number of context rows (rows of ``X``); ``k``: the length of the readout. Default:
        for (L1), every context column and every entry of the parameter column but the readout
        (its last ``k`` rows, ``TF_theta`` of (L1)): the context part, the constant row and any
        parameter the update does not produce; for (W2), every row but the last of every column.
        Override where that differs."""
        if self.block == "lsa":
            return np.concatenate([(Z_out[:, :-1] - Z[:, :-1]).ravel(), Z_out[:-k, -1] - Z[:-k, -1]])
        return (Z_out[:-1, :] - Z[:-1, :]).ravel()

    def all_sizes_forms(self) -> list[Any]:
        """The all-sizes proofs of the identity (symbolic d, n; block algebra,
        :mod:`lsa_theory.constructions.symbolic_sizes`), each as a
        :class:`lsa_theory.constructions.proof_link.ProvedForm`:
        the proof and the block form (prompt, layer blocks, update, symbol values) it is about.
        ``verify`` claims a proof's row only after the declaration's prompt, construction and
        forward pass equal that form at :data:`lsa_theory.constructions.proof_link.LINK_SIZES` (d = n = 1
        first). None by default (the fixed-size sympy identity then proves only its sizes)."""
        return []

    def proofs_all_sizes(self) -> list[tuple[Any, str]]:
        """The proofs of :meth:`all_sizes_forms` run, as ``(SymbolicProof, what it proves)`` pairs
        (not linked to the construction: ``verify`` uses
        :func:`lsa_theory.constructions.proof_link.link_rows`)."""
        return [(form.prove(), form.what) for form in self.all_sizes_forms()]

    # ---------------------------------------------------------------- effective blocks (M2)
    #: Sign of the (W2) value readout: ``readout = value_sign * Z_out[-k:, -1]`` ([W]: -1).
    value_sign: ClassVar[int] = -1

    def dims_of(self, sizes: Mapping[str, int]) -> tuple[int, int, int]:
        """``(m, p, k)``: context rows, length of the last column, length of the readout."""
        inst = self.draw(sizes, np.random.default_rng(0))
        X, last = self.columns(inst, self.hyper)
        k = np.asarray(self.naive(inst, self.hyper, 1)).size
        return np.asarray(X).shape[0], np.asarray(last).shape[0], k

    def effective_blocks(self, P: np.ndarray, V: np.ndarray, sizes: Mapping[str, int]) -> tuple:
        """``(A, B)``: the two parameter blocks of which one layer's readout increment is bilinear,
        ``readout(TF(Z)) - readout(Z) = A Sigma B last`` with ``Sigma = X X^T / n``.

        (L1) ((L2) on ``{P22 = 0, Vbar22 = 0}``): ``A = V[-k:, :m]`` (``Vbar21``), ``B = P[:m, m:]``
        (``P12``). (W2), exactly for every ``(P, Q)``: ``A = value_sign * P[-k:, :]``, ``B = Q``."""
        m, p, k = self.dims_of(sizes)
        if self.block == "lsa":
            return V[-k:, :m], P[:m, m:]
        return self.value_sign * P[-k:, :], V

    def embed(self, A: np.ndarray, B: np.ndarray, sizes: Mapping[str, int]) -> tuple[np.ndarray, np.ndarray]:
        """The full ``(P, V)`` (every other entry zero) whose :meth:`effective_blocks` are ``(A, B)``."""
        m, p, k = self.dims_of(sizes)
        D = m + p if self.block == "lsa" else m
        P, V = np.zeros((D, D)), np.zeros((D, D))
        if self.block == "lsa":
            V[-k:, :m], P[:m, m:] = A, B
        else:
            P[-k:, :], V[:, :] = self.value_sign * A, B
        return P, V

    def symbolic_instance(self, sizes: Mapping[str, int]) -> dict[str, Any]:
        """The instance of the sympy identity: by default :meth:`draw` at ``sizes`` with every
        entry replaced by its own real symbol (``phi_0_1``, ``r_2``, ...)."""
        import sympy as sp

        inst = self.draw(sizes, np.random.default_rng(0))
        out = {}
        for key, value in inst.items():
            if key == "hyper":  # per-instance hyperparameters: symbolised with the others
                continue
            arr = np.asarray(value)
            sym = np.empty(arr.shape, dtype=object)
            for idx in np.ndindex(arr.shape):
                sym[idx] = sp.Symbol("_".join([key, *map(str, idx)]), real=True)
            out[key] = sym
        return out

    # --------------------------------------------------------------------------- helpers
    def describe(self) -> str:
        return f"{self.name}: {self.claim} {self.statement}"

    def __repr__(self) -> str:
        return f"<Algorithm {self.name!r} {self.claim}>"


def check_declaration(alg: Algorithm) -> Algorithm:
    """The declared attributes a :class:`Algorithm` states as data, checked before anything runs
    (ValueError naming the declaration and the attribute): ``name``, ``claim`` non-empty strings;
    ``block`` known; ``hyper`` a mapping; ``hyper_ranges`` a mapping from names of ``hyper`` to
    ``(low, high)`` finite reals with ``low <= high``; ``scales`` non-zero finite reals; ``depths``
    integers ``>= 1``; the :data:`REQUIRED_METHODS` defined, and ``sizes(True)``, ``sizes(False)``,
    ``symbolic_sizes()`` and ``size_ranges()`` returning dicts with the same size names. Every
    message names the method and, where the source is known, its line. Returns ``alg``."""
    import math
    import numbers

    who = type(alg).__name__
    for attr in ("name", "claim"):
        if not isinstance(getattr(alg, attr), str) or not getattr(alg, attr):
            raise ValueError(f"{who}.{attr}: must be a non-empty string, got {getattr(alg, attr)!r}")
    who = f"{alg.name} ({type(alg).__name__})"
    if alg.block not in BLOCKS:
        raise ValueError(f"{who}.block: must be one of {BLOCKS}, got {alg.block!r}")
    if not isinstance(alg.hyper, Mapping):
        raise ValueError(f"{who}.hyper: must be a mapping name -> value, got {type(alg.hyper).__name__}")
    if not isinstance(alg.hyper_ranges, Mapping):
        raise ValueError(
            f"{who}.hyper_ranges: must be a mapping name -> (low, high), got {alg.hyper_ranges!r}"
        )

    def real(x) -> bool:
        return isinstance(x, numbers.Real) and not isinstance(x, bool) and math.isfinite(x)

    for key, rng in alg.hyper_ranges.items():
        if key not in alg.hyper:
            raise ValueError(
                f"{who}.hyper_ranges: {key!r} is not a hyperparameter of hyper {sorted(alg.hyper)}"
            )
        if not (isinstance(rng, tuple | list) and len(rng) == 2 and all(real(x) for x in rng)):
            raise ValueError(f"{who}.hyper_ranges[{key!r}]: expected (low, high) finite reals, got {rng!r}")
        if rng[0] > rng[1]:
            raise ValueError(f"{who}.hyper_ranges[{key!r}]: low {rng[0]} > high {rng[1]}")
    if not alg.scales or not all(real(c) and c != 0 for c in alg.scales):
        raise ValueError(f"{who}.scales: expected non-zero finite reals, got {alg.scales!r}")
    if not alg.depths or not all(
        isinstance(L, int) and not isinstance(L, bool) and L >= 1 for L in alg.depths
    ):
        raise ValueError(f"{who}.depths: expected integers >= 1, got {alg.depths!r}")
    missing = [m for m in REQUIRED_METHODS if getattr(type(alg), m) is getattr(Algorithm, m)]
    if missing:
        raise ValueError(
            f"{who}{_line(type(alg))}: does not define {', '.join(missing)} "
            f"(a declaration defines {', '.join(REQUIRED_METHODS)}; docs/extending.md)"
        )
    keys = {}
    for method, args in (
        ("sizes", (True,)),
        ("sizes", (False,)),
        ("symbolic_sizes", ()),
        ("size_ranges", ()),
    ):
        call = f"{method}({', '.join(map(str, args))})"
        try:
            got = getattr(alg, method)(*args)
        except Exception as exc:  # the user's method raised: name it
            raise ValueError(
                f"{who}.{call}{_line(getattr(type(alg), method))}: raised {type(exc).__name__}: {exc}"
            ) from None
        if not isinstance(got, Mapping):
            raise ValueError(f"{who}.{call}: must return a dict size name -> value, got {got!r}")
        keys[call] = sorted(got)
    first, *rest = keys
    for call in rest:
        if keys[call] != keys[first]:
            raise ValueError(
                f"{who}.{call}{_line(getattr(type(alg), call.split('(')[0]))}: size names {keys[call]} "
                f"differ from {first}'s {keys[first]}"
            )
    return alg


#: The methods every declaration defines (the others have defaults).
REQUIRED_METHODS = (
    "sizes",
    "symbolic_sizes",
    "size_ranges",
    "draw",
    "columns",
    "naive",
    "construction",
    "readout",
)


def _line(obj: Any) -> str:
    """`` (line N)``: where ``obj`` (a class or function) starts in its file, or ``""``."""
    try:
        return f" (line {inspect.getsourcelines(obj)[1]})"
    except (OSError, TypeError):
        return ""


# ------------------------------------------------------ a declaration's prompt and pass


def prompt(alg: Algorithm, X: np.ndarray, last: np.ndarray) -> np.ndarray:
    """The block input of ``alg`` from context columns ``X`` (m, n) and the last column ``last``:
    (L1) ``[[X, 0_{m x 1}], [0_{p x n}, last]]`` of shape (m + p, n + 1); (W2) ``[X, last]`` of
    shape (m, n + 1). Float64 for numeric input, ``dtype=object`` for symbolic input."""
    if not isinstance(alg, Algorithm):
        raise ValueError(f"alg: expected an Algorithm declaration, got {type(alg).__name__}")
    X, last = np.asarray(X), np.asarray(last)
    if X.ndim != 2 or last.ndim != 1:
        raise ValueError(f"columns: expected X (m, n) and last (len,), got {X.shape} and {last.shape}")
    m, n = X.shape
    obj = X.dtype == object or last.dtype == object
    if alg.block == "masked":
        if last.shape[0] != m:
            raise ValueError(f"columns: the query column needs {m} entries, got {last.shape[0]}")
        return np.concatenate([X, last[:, None]], axis=1)
    p = last.shape[0]
    Z = np.zeros((m + p, n + 1), dtype=object if obj else np.float64)
    if obj:
        Z[:, :] = 0
    Z[:m, :n] = X
    Z[m:, n] = last
    return Z


def forward(alg: Algorithm, Z: np.ndarray, layers: list, mask: Any = None) -> np.ndarray:
    """The stack of ``alg``'s block kind: (L1) :func:`lsa_theory.lsa_stack` or (W2)
    :func:`lsa_theory.masked_lsa_stack` (with ``mask`` when given), float64; a declaration with
    its own ``stack(Z, layers, mask)`` (e.g. two heads per layer) uses that (and
    :func:`lsa_theory.constructions.derive.prove` calls it on ``dtype=object`` arrays of ring
    elements too: one stack for both backends)."""
    own = getattr(alg, "stack", None)
    if own is not None:
        return own(Z, layers, mask)
    if alg.block == "lsa":
        return lt.lsa_stack(Z, layers)
    if mask is None:
        return lt.masked_lsa_stack(Z, layers)
    return lt.masked_lsa_stack(Z, layers, mask=mask)


def instance_hyper(alg: Algorithm, inst: Mapping[str, Any], hyper: Mapping | None = None) -> dict[str, Any]:
    """The hyperparameters of one instance: the declaration's defaults, then the instance's own
    ``inst["hyper"]`` (per-instance draws such as random preconditioners), then ``hyper`` (what a
    caller or a property sweep sets explicitly)."""
    return {**alg.hyper, **dict(inst.get("hyper", {})), **(hyper or {})}


def sizes_text(sizes: Mapping[str, Any]) -> str:
    """``"d = 2, n = 3"`` for a sizes dict (``"d = all"`` for the all-sizes proofs)."""
    return ", ".join(f"{k} = {v}" for k, v in sizes.items())


class Registry(Mapping[str, Algorithm]):
    """Name -> declaration. Registration refuses a duplicate name or a declaration that is not an
    :class:`Algorithm` with a name, a claim and a known block kind."""

    def __init__(self) -> None:
        self._algs: dict[str, Algorithm] = {}

    def __getitem__(self, name: str) -> Algorithm:
        try:
            return self._algs[name]
        except KeyError:
            raise ValueError(f"algorithm: expected one of {tuple(self._algs)}, got {name!r}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._algs)

    def __len__(self) -> int:
        return len(self._algs)

    def __contains__(self, name: object) -> bool:
        return name in self._algs

    def add(self, alg: Algorithm, *, replace: bool = False) -> Algorithm:
        if isinstance(alg, type) and issubclass(alg, Algorithm):
            alg = alg()
        if not isinstance(alg, Algorithm):
            raise ValueError(f"register: expected an Algorithm, got {type(alg).__name__}")
        try:
            check_declaration(alg)
        except ValueError as exc:
            raise ValueError(f"register: {exc}") from None
        if alg.name in self._algs and not replace:
            raise ValueError(f"register: an algorithm named {alg.name!r} is already registered")
        self._algs[alg.name] = alg
        return alg

    def names(self) -> tuple[str, ...]:
        return tuple(self._algs)

    def with_capability(self, cls: type) -> tuple[str, ...]:
        """Names of the registered declarations that are instances of ``cls``."""
        return tuple(k for k, a in self._algs.items() if isinstance(a, cls))


#: The package's registry, filled by :mod:`lsa_theory.constructions.algorithms`.
ALGORITHMS = Registry()


def register(alg: Algorithm | type, *, registry: Registry | None = None, replace: bool = False) -> Algorithm:
    """Add a declaration (an instance or an :class:`Algorithm` subclass) to ``registry``
    (default :data:`ALGORITHMS`) and return the instance."""
    return (ALGORITHMS if registry is None else registry).add(alg, replace=replace)


def load_module(path: str | pathlib.Path) -> list[Algorithm]:
    """The :class:`Algorithm` declarations a user's Python file defines, checked as data.

    Every concrete subclass of :class:`Algorithm` defined in the file (with a ``name``) is
    instantiated; module-level instances are taken as they are. Nothing is added to
    :data:`ALGORITHMS`: pass the result to :func:`register` or to :func:`lsa_theory.constructions.derive`.
    Every failure is one ValueError that starts with ``module:`` and names the file (and the line,
    where there is one): the file does not exist or is not ``.py``; it has a syntax error; it raises
    or calls ``sys.exit`` at import; it defines no algorithm; a declaration is malformed
    (:func:`check_declaration`); or a declaration takes a name the registry already has (a clash is
    refused, never shadowed)."""
    path = pathlib.Path(path)
    if path.suffix != ".py" or not path.is_file():
        raise ValueError(f"module: expected an existing .py file, got {str(path)!r}")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    unique = _declarations(path, str(path.resolve()), digest)
    for alg in unique.values():
        if alg.name in ALGORITHMS:
            raise ValueError(
                f"module: {path} declares {alg.name!r}, the name of a registered algorithm: "
                "choose another name"
            )
    return list(unique.values())


@functools.lru_cache(maxsize=16)
def _declarations(path: pathlib.Path, resolved: str, digest: str) -> dict[str, Algorithm]:
    """The checked declarations of the file ``path`` by name, imported once per (resolved path,
    sha256 of its content): a command that reads the same unchanged file several times (its
    configuration, each unit, the provenance) runs the user's code once, and an edited file is
    imported afresh."""
    mod_name = f"lsa_theory_user_{abs(hash(resolved))}_{digest[:12]}"
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        raise ValueError(f"module: cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        sys.modules.pop(mod_name, None)
        raise ValueError(f"module: {path} has a syntax error at line {exc.lineno}: {exc.msg}") from None
    except SystemExit as exc:
        sys.modules.pop(mod_name, None)
        raise ValueError(
            f"module: importing {path} called sys.exit({exc.code!r}); a module of declarations must "
            "only define Algorithm declarations"
        ) from None
    except Exception as exc:  # the user's code raised at import: name its line in the file
        sys.modules.pop(mod_name, None)
        tb = traceback.extract_tb(exc.__traceback__)
        frames = [f for f in tb if pathlib.Path(f.filename).resolve() == path.resolve()]
        where = f" at line {frames[-1].lineno}" if frames else ""
        raise ValueError(
            f"module: importing {path} raised {type(exc).__name__}{where}: {' '.join(str(exc).split())}"
        ) from None
    found: list[Algorithm] = []
    for value in vars(module).values():
        if isinstance(value, Algorithm):
            found.append(value)
        elif (
            inspect.isclass(value)
            and issubclass(value, Algorithm)
            and value.__module__ == mod_name
            and value.name
            and not inspect.isabstract(value)
        ):
            found.append(value())
    unique = {a.name: a for a in found}
    if not unique:
        raise ValueError(f"module: {path} defines no Algorithm subclass with a name")
    for alg in unique.values():
        try:
            check_declaration(alg)
        except ValueError as exc:
            raise ValueError(f"module: {path}: {exc}") from None
    return unique
