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


def _name_branches(path: pathlib.Path, names: set[str], root: pathlib.Path = ROOT) -> list[str]:
    """Comparisons of a value with a registered algorithm's name (``x == "sarsa"``,
    ``x in ("sarsa", "td")``, ...): a branch on an algorithm's name."""
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Compare):
            continue
        operands = [node.left, *node.comparators]
        consts = set()
        for op in operands:
            if isinstance(op, ast.Constant) and isinstance(op.value, str):
                consts.add(op.value)
            elif isinstance(op, ast.Tuple | ast.List | ast.Set):
                consts |= {
                    e.value for e in op.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)
                }
        hit = consts & names
        if hit:
            found.append(f"{path.relative_to(root)}:{node.lineno} compares with {sorted(hit)}")
    return found


def test_no_branch_on_an_algorithm_name_outside_its_module():
    """One algorithm, one module: only ``constructions/algorithms/`` may compare with a name."""
    import constructions

    names = set(constructions.ALGORITHMS.names())
    own = ROOT / "constructions" / "algorithms"
    bad = []
    for layer in LAYERS:
        for f in sorted((ROOT / layer).rglob("*.py")):
            if own not in f.parents:
                bad += _name_branches(f, names)
    assert not bad, "\n".join(bad)


def test_the_name_branch_check_can_fail(tmp_path):
    f = tmp_path / "_tmp_branch_probe.py"  # never inside the package, which other tests scan
    f.write_text('def g(algo):\n    return 1 if algo == "sarsa" else 2\n')
    assert _name_branches(f, {"sarsa"}, root=tmp_path)


#: The guide: split a module before it passes ~500 lines.
MAX_MODULE_LINES = 500


def test_no_module_exceeds_500_lines():
    long = {
        str(f.relative_to(ROOT)): n
        for layer in LAYERS
        for f in sorted((ROOT / layer).rglob("*.py"))
        if (n := len(f.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert not long, f"modules over {MAX_MODULE_LINES} lines (split them by concern): {long}"
