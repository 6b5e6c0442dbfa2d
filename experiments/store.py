"""One unit store for every experiment: the finished units of a run, resumed by unit key and config
hash, written atomically (:mod:`lsa_theory.experiments.io`), with provenance.

An experiment is a list of *units* (one flow, one row, one deployed loop), each named by a key
(a ``str``) and depending on a configuration (its *unit configuration*: the run's whole config, or
the part a unit depends on). A finished unit is a JSON-able ``record`` plus, optionally, arrays.

:class:`UnitStore` keeps them in ``out/<document>`` (JSON) and ``out/<arrays>`` (``.npz``, the
unit's arrays under ``"{key}/{name}"``), both rewritten atomically after every new unit (arrays
first, then the document, so that a document never names a unit whose arrays are not on disk).
On opening a directory with saved units:

- a unit saved under the same key and the same unit-configuration hash
(:func:`lsa_theory.experiments.io.config_hash`)
  is reused as it is, never recomputed;
- a unit saved under another configuration hash, or whose arrays are missing, is recomputed, and
  the store says so on stderr (one line naming the file and both hashes);
- a document or ``.npz`` that cannot be read back raises :class:`lsa_theory.experiments.io.DamagedFile`
  naming the file (refused, never silently overwritten).

The store's own layout is ``{"config_hash": h, "units": {key: pack(record)}}`` (:func:`pack`: arrays,
tuples, NaN and inf round-trip exactly; with a per-unit configuration, also ``"unit_hashes":
{key: h}``); an experiment whose
saved results already hold its units in another layout (a public contract:
``converge.json``'s ``runs``, ``control.json``'s ``units``) passes ``saved_units`` (how to find
the units and their configuration hash in a saved document) and ``render`` (the document to
write), and keeps its files as they are.

:class:`UnitFiles` is the same store with one file per unit (``DIR/<key>.json``), for runs whose
units finish in other processes (``lsa-theory sweep``); there the key is content-addressed (it
hashes the unit's parameters and the code version), so the key *is* the configuration hash, and a
damaged file is recomputed (said on stderr), since nothing else depends on it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from .io import DamagedFile, atomic_savez, atomic_write, atomic_write_json, config_hash, load_npz, read_json

__all__ = ["UnitStore", "UnitFiles", "pack", "unpack"]


def pack(x: Any) -> Any:
    """``x`` as JSON that :func:`unpack` turns back into equal values: arrays with their dtype
    (float64 entries as exact reprs), tuples as lists, NaN and inf kept."""
    if isinstance(x, np.ndarray):
        return {"__ndarray__": pack(x.tolist()), "dtype": str(x.dtype), "shape": list(x.shape)}
    if isinstance(x, dict):
        return {str(k): pack(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [pack(v) for v in x]
    if isinstance(x, np.generic):
        return x.item()
    return x


def unpack(x: Any) -> Any:
    """The value :func:`pack` made ``x`` from (arrays restored with dtype and shape)."""
    if isinstance(x, dict):
        if "__ndarray__" in x:
            return np.array(x["__ndarray__"], dtype=x["dtype"]).reshape(x["shape"])
        return {k: unpack(v) for k, v in x.items()}
    if isinstance(x, list):
        return [unpack(v) for v in x]
    return x


def _native_units(doc: Any) -> Iterable[tuple[str, Any, str | None]]:
    """The units of a document in the store's own layout ``{"config_hash", "units"}``."""
    if isinstance(doc, dict) and isinstance(doc.get("units"), dict):
        hashes = doc.get("unit_hashes") or {}
        for key, record in doc["units"].items():
            yield key, record, hashes.get(key, doc.get("config_hash"))


def _native_document(store: UnitStore) -> dict:
    """The store's own layout: the run's config hash (``None`` with a per-unit configuration), the
    packed records and, with a per-unit configuration, each unit's config hash."""
    doc = {"config_hash": store.config_hash(), "units": pack(store.records)}
    if callable(store._config):
        doc["unit_hashes"] = {key: store.config_hash(key) for key in store.records}
    return doc


def _short(h: str | None) -> str:
    return "none" if h is None else str(h)[:12]


class UnitStore:
    """The finished units of one experiment run in ``out`` (module docstring).

    ``out``: the output directory, or ``None`` (units kept in memory only). ``document``: the
    JSON file name in ``out``; ``arrays``: the ``.npz`` file name, or ``None`` (records only).
    ``config``: the unit configuration, either one value for every unit or a callable
    ``key -> value`` (``None`` for a key that is not part of this run: such saved units are
    dropped). ``saved_units(doc)`` yields ``(key, record, config_hash)`` for each unit of a saved
    document (default: the store's own layout); ``render(store)`` gives the document to write
    (default: the store's own layout). ``label`` names the experiment in stderr lines."""

    def __init__(
        self,
        out: str | Path | None,
        document: str,
        *,
        config: Any,
        arrays: str | None = None,
        saved_units: Callable[[Any], Iterable[tuple[str, Any, str | None]]] = _native_units,
        render: Callable[[UnitStore], Any] | None = None,
        label: str = "",
    ):
        if not isinstance(document, str) or not document:
            raise ValueError(f"document: expected a file name, got {document!r}")
        self.out = None if out is None else Path(out)
        self.document, self.arrays_name = document, arrays
        self._config = config
        self._hashes: dict[str, str | None] = {}
        self._native = render is None  # the store's own layout: records packed (pack), NaN kept
        self.render = render or _native_document
        self.label = label or Path(document).stem
        self.records: dict[str, Any] = {}  # key -> record: reused and new units
        self.arrays: dict[str, np.ndarray] = {}  # "{key}/{name}" -> array, of those units only
        self.reused: list[str] = []  # keys taken from the saved files
        self._arrays_dirty = False  # the arrays differ from the saved .npz
        if self.out is not None:
            self._open(saved_units)

    def config_hash(self, key: str | None = None) -> str | None:
        """The configuration hash of unit ``key`` in this run (``None``: not part of it; with a
        per-unit configuration and no key, ``None``)."""
        if key not in self._hashes:
            if callable(self._config):
                cfg = None if key is None else self._config(key)
            else:
                cfg = self._config
            self._hashes[key] = None if cfg is None else config_hash(cfg)
        return self._hashes[key]

    def _open(self, saved_units) -> None:
        path = self.out / self.document
        if not path.exists():
            return
        doc = read_json(path)  # DamagedFile naming it when truncated
        saved: dict[str, np.ndarray] = {}
        if self.arrays_name is not None and (self.out / self.arrays_name).exists():
            saved = load_npz(self.out / self.arrays_name)  # DamagedFile naming it when truncated
        other, lacking = [], []
        for key, record, h in saved_units(doc):
            now = self.config_hash(key)
            if now is None:
                continue  # not a unit of this run
            if h != now:
                other.append((key, h, now))
                continue
            mine = {k: v for k, v in saved.items() if k.startswith(f"{key}/")}
            if self.arrays_name is not None and not mine:
                lacking.append(key)
                continue
            self.records[key] = unpack(record) if self._native else record
            self.arrays.update(mine)
            self.reused.append(key)
        self._arrays_dirty = saved.keys() != self.arrays.keys()  # units of another run are dropped
        if other:
            key, old, now = other[0]
            print(
                f"{self.label}: {len(other)} unit(s) saved in {path} under another configuration "
                f"(config hash {_short(old)}, this run {_short(now)}; first {key!r}) are recomputed",
                file=sys.stderr,
                flush=True,
            )
        if lacking:
            print(
                f"{self.label}: {len(lacking)} unit(s) of {path} have no arrays in "
                f"{self.out / self.arrays_name} (first {lacking[0]!r}) and are recomputed",
                file=sys.stderr,
                flush=True,
            )

    def __contains__(self, key: str) -> bool:
        return key in self.records

    def get(self, key: str) -> tuple[Any, dict[str, np.ndarray]] | None:
        """``(record, arrays)`` of the finished unit ``key`` (arrays without the key prefix), or
        ``None`` when it has to be computed."""
        if key not in self.records:
            return None
        n = len(prefix := f"{key}/")
        return self.records[key], {k[n:]: v for k, v in self.arrays.items() if k.startswith(prefix)}

    def put(self, key: str, record: Any, arrays: dict[str, np.ndarray] | None = None) -> None:
        """Keep the finished unit ``key`` and write the store (with ``out``)."""
        prefix = f"{key}/"
        self.arrays = {k: v for k, v in self.arrays.items() if not k.startswith(prefix)}
        self.records[key] = record
        self.arrays.update({f"{prefix}{name}": v for name, v in (arrays or {}).items()})
        self._arrays_dirty = True
        self.save()

    def unit(self, key: str, compute: Callable[[], tuple[Any, dict[str, np.ndarray]]]):
        """``(record, arrays)`` of unit ``key``: saved, else ``compute()`` (then kept)."""
        got = self.get(key)
        if got is None:
            record, arrays = compute()
            self.put(key, record, arrays)
            got = (record, arrays)
        return got

    def save(self) -> Any:
        """The document, rendered once from the current records; with ``out`` written atomically,
        after the arrays (written only when they changed since the ``.npz`` was last read or
        written)."""
        doc = self.render(self)
        if self.out is None:
            return doc
        if self.arrays_name is not None and self._arrays_dirty:
            atomic_savez(self.out / self.arrays_name, **self.arrays)
            self._arrays_dirty = False
        if self._native:  # plain json: NaN and inf stay (to_jsonable would make them null)
            data = json.dumps(doc).encode()
            atomic_write(self.out / self.document, lambda fh: fh.write(data))
        else:
            atomic_write_json(self.out / self.document, doc)
        return doc

    def remove(self) -> None:
        """Delete the store's document (a store kept only while a run is under way)."""
        if self.out is not None and (self.out / self.document).exists():
            (self.out / self.document).unlink()


class UnitFiles:
    """One JSON file per unit, ``directory/<key>.json`` (module docstring): ``key`` hashes what the
    unit depends on, so a file of the same key is a unit of the same configuration."""

    def __init__(self, directory: str | Path, label: str = ""):
        self.directory = Path(directory)
        self.label = label or self.directory.name

    def path(self, key: str) -> Path:
        return self.directory / f"{key}.json"

    def get(self, key: str, finished: Callable[[dict], bool] = lambda rec: True) -> dict | None:
        """The record of unit ``key`` if it is saved and ``finished(record)``, else ``None``. A
        file that cannot be read back is recomputed, said on stderr."""
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            rec = read_json(path)
        except DamagedFile as exc:
            print(f"{self.label}: {exc.path}: {exc.problem}; recomputed", file=sys.stderr, flush=True)
            return None
        except OSError:
            return None
        return rec if isinstance(rec, dict) and finished(rec) else None

    def put(self, key: str, record: dict) -> None:
        """Write unit ``key`` atomically."""
        atomic_write_json(self.path(key), record)
