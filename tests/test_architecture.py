"""Imports only go core -> outward: lsa_theory <- constructions <- dynamics <- experiments."""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
LAYERS = ["lsa_theory", "constructions", "dynamics", "experiments"]


def _imported_packages(path: pathlib.Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("layer", LAYERS)
def test_no_import_from_an_outer_layer(layer):
    outer = set(LAYERS[LAYERS.index(layer) + 1 :])
    files = sorted((ROOT / layer).rglob("*.py"))
    assert files, f"no sources found for {layer}"
    for f in files:
        bad = _imported_packages(f) & outer
        assert not bad, f"{f.relative_to(ROOT)} imports outer layer(s) {bad}"


def test_library_code_sets_no_global_seed():
    for layer in LAYERS:
        for f in (ROOT / layer).rglob("*.py"):
            text = f.read_text()
            for banned in ("np.random.seed(", "torch.manual_seed(", "random.seed("):
                assert banned not in text, f"{f.relative_to(ROOT)} calls {banned}"
