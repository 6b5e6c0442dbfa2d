"""docs/theory.md is the clone's own copy of the theory: it defines every label the code cites, and the
README points at it rather than at a file outside the repository."""

from __future__ import annotations

import json
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
THEORY = ROOT / "docs" / "theory.md"
README = ROOT / "README.md"
PACKAGES = ["lsa_theory", "constructions", "dynamics", "experiments"]

# A label is "(H)" or one letter of S, A, L, M, W, R, P followed by one digit, in parentheses that do
# not follow a name or a closing bracket (so ``range(L)``, ``TF_theta(H)`` and ``sym(P22)`` are calls,
# not labels).
LABEL = re.compile(r"(?<![\w\])])\((H|[SALMWRP][1-9])\)")

# Every label of the theory, by section: the page must define all of them.
ALL_LABELS = (
    ["H", "L1", "L2"]
    + [f"S{i}" for i in range(2, 7)]
    + [f"A{i}" for i in range(1, 7)]
    + [f"M{i}" for i in range(1, 8)]
    + [f"W{i}" for i in range(1, 8)]
    + [f"R{i}" for i in range(1, 6)]
    + [f"P{i}" for i in range(1, 4)]
)


def _cited_labels() -> dict[str, set[str]]:
    """label -> files (relative paths) of the package's .py sources that cite it."""
    cited: dict[str, set[str]] = {}
    for pkg in PACKAGES:
        files = sorted((ROOT / pkg).rglob("*.py"))
        assert files, f"no sources found in {pkg}"
        for f in files:
            for label in LABEL.findall(f.read_text()):
                cited.setdefault(label, set()).add(str(f.relative_to(ROOT)))
    return cited


def _defined_labels() -> set[str]:
    """Labels that docs/theory.md defines: a bold ``**(X)**`` at the start of a statement."""
    return set(re.findall(r"\*\*\((H|[SALMWRP][1-9])\)\*\*", THEORY.read_text()))


def test_label_regex_finds_labels_and_skips_calls():
    text = "see (S3) and (M3)-(M6); range(L), TF_theta(H), sym(P22), f(S), (P22)"
    assert LABEL.findall(text) == ["S3", "M3", "M6"]
    cited = _cited_labels()
    assert {"H", "L1", "L2", "S3", "M5"} <= set(cited), sorted(cited)


def test_theory_page_defines_every_label_cited_in_the_package():
    defined = _defined_labels()
    missing = {label: sorted(files) for label, files in _cited_labels().items() if label not in defined}
    assert not missing, f"labels cited in the package but not defined in docs/theory.md: {missing}"


def test_theory_page_defines_every_label_of_the_theory_once():
    text = THEORY.read_text()
    for label in ALL_LABELS:
        n = text.count(f"**({label})**")
        assert n == 1, f"docs/theory.md defines ({label}) {n} times (expected once)"


def test_readme_labels_are_defined():
    defined = _defined_labels()
    missing = sorted(set(LABEL.findall(README.read_text())) - defined)
    assert not missing, f"README cites labels not defined in docs/theory.md: {missing}"


def test_readme_links_the_theory_page_and_nothing_outside_the_repository():
    text = README.read_text()
    assert "](docs/theory.md)" in text, "README.md does not link docs/theory.md"
    assert "../shared" not in text, "README.md still points outside the repository (../shared)"


def test_theory_page_cites_its_references():
    text = THEORY.read_text()
    for ref in ("[LL]", "[W]", "[vO]", "[Ahn]", "[ZFB]"):
        assert f"**{ref}**" in text, f"docs/theory.md has no reference entry {ref}"


RESULT_TABLES = [
    # (table kind, saved result, page that prints it, expected rows: seeds x ks x feature settings)
    ("returns-by-k", "docs/figures/returns_by_k-full.json", "docs/experiments.md", 30),
    ("diversity", "docs/figures/training-diversity-full_diversity_training.json", "docs/experiments.md", 30),
    ("returns-by-k", "docs/figures/training-diversity_returns_by_k.json", "docs/experiments.md", 30),
    ("diversity", "docs/figures/training-diversity_diversity_training.json", "docs/experiments.md", 30),
]


@pytest.mark.parametrize("kind, result, page, n_rows", RESULT_TABLES)
def test_documented_tables_are_the_saved_results_with_every_run(kind, result, page, n_rows):
    """Issue 10 item 5: a results table in the docs is exactly the table printed from its saved
    JSON (no row dropped, no number edited by hand), and the JSON holds every (seed, k, features)
    run of the three-seed sweep; pooled groups count every loop of their rows."""
    from experiments import tables

    doc = json.loads((ROOT / result).read_text())
    rows = doc["rows"]
    keys = {(r["seed"], r["k"], r["shared_features"]) for r in rows}
    assert len(rows) == len(keys) == n_rows
    assert {r["seed"] for r in rows} == {0, 1, 2}
    for g in doc.get("groups", []):
        sel = [r for r in rows if (r["k"], r["shared_features"]) == (g["k"], g["shared_features"])]
        assert g["n_seeds"] == len(sel) and g["n_loops"] == sum(r["n_mdps"] for r in sel)
        assert g["n_diverged"] == sum(r["n_diverged"] for r in sel)
    assert tables.table(kind, ROOT / result) in (ROOT / page).read_text()


def test_pretraining_seed_table_is_the_saved_runs():
    """Issue 12 with the reporting rule: the (P3) seeds table in docs/pretraining.md is exactly the
    table of its saved runs, every configuration with at least three seeds, and failed trainings
    are rows (never dropped)."""
    from experiments import tables

    path = ROOT / "docs" / "figures" / "pretrain-seeds.json"
    doc = json.loads(path.read_text())
    for g in doc["groups"]:
        seeds = [r["seed"] for r in g["runs"]]
        assert len(seeds) >= 3 and len(set(seeds)) == len(seeds) and 0 in seeds, g["name"]
    assert any("failed" in r for g in doc["groups"] for r in g["runs"])
    assert tables.table("pretrain-seeds", path) in (ROOT / "docs" / "pretraining.md").read_text()


def test_actor_critic_tables_are_the_saved_run():
    """Issue 18: the (A6) tables of docs/actor-critic.md (0.233 and 0.935) are printed from the saved
    run docs/figures/actor_critic_variants.json, not retyped."""
    from experiments.actor_critic_variants import markdown_tables

    doc = json.loads((ROOT / "docs" / "figures" / "actor_critic_variants.json").read_text())
    page = (ROOT / "docs" / "actor-critic.md").read_text()
    for table in markdown_tables(doc).split("\n\n"):
        assert table in page


def test_regression_gamma_check_is_the_saved_run():
    """Issue 18: the (R4) least-squares check of Gamma in docs/regression.md is the saved full run's
    (docs/figures/regression-full.json), which passed it; the flow's own-target error stays quoted
    as convergence (its largest value over the population runs)."""
    from experiments.regression import gamma_check_table

    doc = json.loads((ROOT / "docs" / "figures" / "regression-full.json").read_text())
    page = (ROOT / "docs" / "regression.md").read_text()
    assert doc["checks"]["gamma_least_squares"] and doc["passed"]
    assert gamma_check_table(doc) in page
    worst = max(r["flow_vs_target"] for r in doc["configs"])
    assert f"{worst:.1e}" in page


def test_extending_page_links_every_worked_example_and_has_pitfalls():
    """docs/extending.md has a "Pitfalls" section (sizes carried in shapes, sympy exactness) and
    links every runnable example declaration in examples/ (tests/test_registry.py verifies each) on
    docs/examples.md, which includes the file itself (so the site shows it as it is)."""
    text = (ROOT / "docs" / "extending.md").read_text()
    assert "## Pitfalls" in text
    pitfalls = text[text.index("## Pitfalls") :]
    assert "never receive the sizes" in pitfalls and "** 0.5" in pitfalls
    declared = {
        p.name for p in (ROOT / "examples").glob("*.py") if "constructions.Algorithm" in p.read_text()
    }
    assert {"expected_sarsa.py", "nstep_td.py", "offpolicy_td0.py"} <= declared
    shown = (ROOT / "docs" / "examples.md").read_text()
    for name in declared:
        anchor = name.replace(".", "")
        assert f"](examples.md#{anchor})" in text, f"docs/extending.md does not link examples/{name}"
        assert f"## {name}\n" in shown and f'--8<-- "examples/{name}"' in shown, f"docs/examples.md: {name}"


#: Every command and link of the README before issue 24's rewrite of its first screen (item 29).
README_COMMANDS = (
    'pip install -e ".[dev]"',
    "lsa-theory verify",
    "pytest",
    "lsa-theory verify --quick",
    "pytest -m slow -n 2 --dist worksteal",
    "lsa-theory converge --algo sarsa --quick --out results/converge",
    "lsa-theory converge --algo actor_critic --quick --json",
    "lsa-theory diversity --quick --out results/diversity",
    "lsa-theory control --quick --json",
    "lsa-theory control --weights trained --out results",
    "lsa-theory context-length --regime in-context --quick --json",
    "lsa-theory regression --quick --json",
    "lsa-theory pretrain --mode both --quick --json",
    "lsa-theory reproduce --quick --out results",
    "lsa-theory sweep examples/sweep.toml --workers 2 --out results/sweep",
    "python benchmarks/run.py --quick",
)
README_LINKS = (
    "docs/actor-critic.md", "docs/context-length.md", "docs/dynamics.md", "docs/experiments.md",
    "docs/extending.md", "docs/inputs.md", "docs/inputs.md#faults-files-and-concurrent-runs-issue-24",
    "docs/performance-flow.md", "docs/performance.md", "docs/pretraining.md", "docs/proofs.md",
    "docs/regression.md", "docs/results.md", "docs/td-family.md", "docs/theory.md", "docs/tool.md",
)  # fmt: skip


def test_readme_first_screen_installs_from_a_clone_and_states_costs():
    """Issue 24, item 29: the README's first screen (before the first section heading) says what
    the package is, installs from a clone into a virtual environment (as .ci/run does), names the
    torch pin, gives the first commands and the test command with its measured cost, and links
    the cost table of the --quick runs; every command and link the README had is kept."""
    text = README.read_text()
    first = text[: text.index("\n## ")]
    needed = ("git clone", "python3 -m venv .venv", ". .venv/bin/activate", 'pip install -e ".[dev]"')
    needed += ("torch==2.13.0", "lsa-theory verify --quick", "](docs/tool.md#what-each-command-costs)")
    for item in needed:
        assert item in first, item
    (pytest_line,) = [line for line in first.splitlines() if line.startswith("pytest ")]
    assert "300 s" in pytest_line and "2 cores" in pytest_line and "3 min" not in first
    ci = (ROOT / ".ci" / "run").read_text()
    assert "python3 -m venv .venv" in ci and 'pip install -e ".[dev]"' in ci
    for command in README_COMMANDS:
        assert command in text, command
    for link in README_LINKS:
        assert f"]({link})" in text, link
