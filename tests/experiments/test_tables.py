"""The one formatter of the docs' generated tables, :mod:`lsa_theory.experiments.tables`: its kinds,
its paths, and no table formatter left in an experiment (review item)."""

from __future__ import annotations

import ast
import json
import pathlib

import pytest

from lsa_theory.experiments import tables

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIGURES = ROOT / "docs" / "figures"

#: Experiment files that still carry their own table code, exactly (the list only shrinks): none.
OWN_TABLE_CODE: set = set()

_FORMATTER = ("_f", "_fmt", "_g", "_pm", "_ci", "_pci", "_mean_sd", "_mean_se")


def _table_code(path: pathlib.Path) -> list[str]:
    """Top-level functions of ``path`` that format tables: a cell formatter name of
    :mod:`tables` or a name ending in ``_table``/``_tables``."""
    tree = ast.parse(path.read_text())
    return [
        n.name
        for n in tree.body
        if isinstance(n, ast.FunctionDef) and (n.name in _FORMATTER or n.name.endswith(("_table", "_tables")))
    ]


def test_no_table_formatter_outside_the_tables_module():
    found = {}
    for f in sorted((ROOT / "experiments").rglob("*.py")):
        rel = str(f.relative_to(ROOT))
        if rel != "experiments/tables.py" and (names := _table_code(f)):
            found[rel] = names
    assert set(found) == OWN_TABLE_CODE, found


def test_the_formatter_check_can_fail(tmp_path):
    f = tmp_path / "probe.py"
    f.write_text("def _pm(m, s):\n    return ''\n\n\ndef law_table(doc):\n    return ''\n")
    assert _table_code(f) == ["_pm", "law_table"]


def test_every_kind_is_documented_and_takes_its_paths(tmp_path):
    """Each kind of :data:`TABLES` is named in the module docstring (the list of kinds); a kind of
    :data:`MULTI` takes several documents, a row each, any other kind exactly one path."""
    for kind in tables.TABLES:
        assert f"``{kind}``" in tables.__doc__, kind
    runs = [FIGURES / f"regression-quick-{n}.json" for n in ("isotropic-sphere", "sigma_inverse-gamma")]
    text = tables.table("regression-law-runs", *runs)
    assert text.count("\n") == 1 + len(runs)
    assert text.splitlines()[2].startswith("| isotropic | sphere |")
    assert tables.table("regression-law-runs", runs[1]).count("\n") == 2
    with pytest.raises(ValueError, match="paths: 'regression-laws' takes one path, got 2"):
        tables.table("regression-laws", FIGURES / "regression-laws.json", FIGURES / "regression-laws.json")
    with pytest.raises(ValueError, match="paths"):
        tables.table("depth")
    with pytest.raises(ValueError, match="kind: expected one of"):
        tables.table("depth-tables", FIGURES / "depth.json")


def test_regression_trained_lists_every_stack_with_its_references():
    """``regression-trained``: one row per trained stack; a nonlinear row shows its start and null
    member, a linear row or an older document's a dash there."""
    doc = json.loads((FIGURES / "regression-quick-heads2-softmax.json").read_text())
    rows = tables.TABLES["regression-trained"](doc).splitlines()[2:]
    assert len(rows) == len(doc["trained"])
    for row, r in zip(rows, doc["trained"], strict=True):
        assert row.startswith(f"| {r['L']} | {r['param']} | 2 | softmax | {r['test_loss']:.4f} +- ")
        assert f"| {r['loss_start']:.4f} | {r['loss_null']:.4f} | {r['loss_zero']:.4f} |" in row
    linear = json.loads((FIGURES / "regression-full.json").read_text())
    first = tables.TABLES["regression-trained"](linear).splitlines()[2]
    assert "| 1 | linear |" in first and "| - | - | - |" in first
