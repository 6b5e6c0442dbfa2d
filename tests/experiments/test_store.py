"""The one unit store (experiments/store.py): resume by unit key and config hash, a changed hash
recomputes (said on stderr), damaged files refused (one document) or recomputed (one file per
unit), atomic writes that leave no partial file."""

from __future__ import annotations

import json

import numpy as np
import pytest

import lsa_theory.experiments.io as eio
from lsa_theory.experiments.store import UnitFiles, UnitStore, pack, unpack


def _fill(store: UnitStore, calls: list, keys=("a", "b")) -> None:
    for key in keys:
        store.unit(
            key, lambda key=key: (calls.append(key), ({"key": key, "x": 1 / 3}, {"y": np.arange(3) / 7}))[1]
        )


def _store(out, config, **kw):
    return UnitStore(out, "units.json", config=config, arrays="units.npz", **kw)


def test_resume_by_key_and_config_hash(tmp_path):
    calls: list = []
    _fill(_store(tmp_path, {"n": 1}), calls)
    assert calls == ["a", "b"]
    calls.clear()
    again = _store(tmp_path, {"n": 1})
    _fill(again, calls, keys=("a", "b", "c"))
    assert calls == ["c"] and again.reused == ["a", "b"]  # only the new key is computed
    record, arrays = again.get("b")
    assert record == {"key": "b", "x": 1 / 3} and np.array_equal(arrays["y"], np.arange(3) / 7)
    saved = eio.load_npz(tmp_path / "units.npz")
    assert sorted(saved) == ["a/y", "b/y", "c/y"]


def test_a_changed_config_hash_recomputes_and_says_so(tmp_path, capsys):
    calls: list = []
    _fill(_store(tmp_path, {"n": 1}), calls)
    calls.clear()
    capsys.readouterr()
    _fill(_store(tmp_path, {"n": 2}), calls)
    assert calls == ["a", "b"]
    err = capsys.readouterr().err
    assert "2 unit(s) saved in" in err and "under another configuration" in err and "recomputed" in err
    assert eio.config_hash({"n": 1})[:12] in err and eio.config_hash({"n": 2})[:12] in err


def test_per_unit_configuration_recomputes_only_the_changed_units(tmp_path, capsys):
    calls: list = []
    _fill(_store(tmp_path, {"a": {"n": 1}, "b": {"n": 1}}.get), calls)
    calls.clear()
    _fill(_store(tmp_path, {"a": {"n": 1}, "b": {"n": 2}}.get), calls)
    assert calls == ["b"] and "1 unit(s) saved in" in capsys.readouterr().err


def test_units_whose_arrays_are_missing_are_recomputed(tmp_path, capsys):
    calls: list = []
    _fill(_store(tmp_path, {"n": 1}), calls)
    (tmp_path / "units.npz").unlink()
    calls.clear()
    _fill(_store(tmp_path, {"n": 1}), calls)
    assert calls == ["a", "b"] and "have no arrays" in capsys.readouterr().err


@pytest.mark.parametrize(
    "name, problem", [("units.json", "not valid JSON"), ("units.npz", "not a readable .npz")]
)
def test_a_damaged_document_or_npz_is_refused_naming_it(tmp_path, name, problem):
    _fill(_store(tmp_path, {"n": 1}), [])
    path = tmp_path / name
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    with pytest.raises(eio.DamagedFile, match=rf"{name}: {problem}"):
        _store(tmp_path, {"n": 1})


def test_native_layout_round_trips_arrays_tuples_and_nan(tmp_path):
    value = ({"M": np.eye(2) / 3, "rate": float("nan"), "n": np.int64(4)}, [np.inf, -0.0])
    store = UnitStore(tmp_path, "u.json", config={"k": 1})
    store.unit("v", lambda: (value, None))
    doc = json.loads((tmp_path / "u.json").read_text())
    assert doc["config_hash"] == eio.config_hash({"k": 1}) and set(doc["units"]) == {"v"}
    (back_dict, back_list), _ = UnitStore(tmp_path, "u.json", config={"k": 1}).get("v")
    assert np.array_equal(back_dict["M"], np.eye(2) / 3) and back_dict["M"].dtype == np.float64
    assert np.isnan(back_dict["rate"]) and back_dict["n"] == 4 and back_list == [np.inf, -0.0]
    assert unpack(pack(np.arange(6, dtype=np.int32).reshape(2, 3))).dtype == np.int32


def test_a_write_cut_midway_leaves_the_old_files_whole_and_no_partial_file(tmp_path, monkeypatch):
    """The process dies while writing the arrays of the third unit: the saved files still read
    back with the two finished units, and no temporary or partial file is left behind."""
    store = _store(tmp_path, {"n": 1})
    _fill(store, [])
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def dies_midway(fh, **arrays):
        fh.write(b"PK\x03\x04" + b"\0" * 100)  # a prefix of a zip file, then the crash
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez_compressed", dies_midway)
    with pytest.raises(KeyboardInterrupt):
        store.put("c", {"key": "c"}, {"y": np.ones(2)})
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # nothing else there
    calls: list = []
    _fill(_store(tmp_path, {"n": 1}), calls, keys=("a", "b", "c"))
    assert calls == ["c"]


def test_without_out_nothing_is_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    calls: list = []
    _fill(_store(None, {"n": 1}), calls)
    assert calls == ["a", "b"] and list(tmp_path.iterdir()) == []


def test_unit_files_skip_finished_and_recompute_damaged(tmp_path, capsys):
    files = UnitFiles(tmp_path / "jobs", label="sweep")
    files.put("h1", {"status": "done", "result": 1})
    files.put("h2", {"status": "failed"})
    (tmp_path / "jobs" / "h3.json").write_text('{"status": "do')
    done = lambda r: r.get("status") == "done"  # noqa: E731
    assert files.get("h1", done)["result"] == 1
    assert files.get("h2", done) is None and files.get("h4", done) is None
    assert files.get("h3", done) is None and "h3.json: not valid JSON" in capsys.readouterr().err


def test_save_renders_once_and_rewrites_the_arrays_only_when_they_changed(tmp_path, monkeypatch):
    """A finished run resumed in full writes its document (the current code's rendering) but not
    its unchanged ``.npz``; a new unit, or units of another run dropped, rewrite it."""
    import lsa_theory.experiments.store as st

    written, renders = [], []
    real = st.atomic_savez
    monkeypatch.setattr(st, "atomic_savez", lambda path, **a: (written.append(sorted(a)), real(path, **a)))

    def render(store):
        renders.append(1)
        return {"units": [{"key": k, **r} for k, r in store.records.items()]}

    def saved_units(doc):
        for u in doc.get("units", []):
            yield u["key"], {k: v for k, v in u.items() if k != "key"}, eio.config_hash({"n": 1})

    _fill(_store(tmp_path, {"n": 1}, render=render, saved_units=saved_units), [])
    written.clear(), renders.clear()
    again = _store(tmp_path, {"n": 1}, render=render, saved_units=saved_units)
    doc = again.save()
    assert written == [] and len(renders) == 1 and [u["key"] for u in doc["units"]] == ["a", "b"]
    _fill(again, [], keys=("a", "b", "c"))
    assert written == [["a/y", "b/y", "c/y"]]
    fewer = _store(
        tmp_path, lambda key: {"n": 1} if key == "a" else None, render=render, saved_units=saved_units
    )
    fewer.save()  # units b and c belong to no unit of this run: the arrays drop them
    assert written[-1] == ["a/y"]
