"""docs/theory.md is the clone's own copy of the theory: it defines every label the code cites, and the
README points at it rather than at a file outside the repository."""

from __future__ import annotations

import ast
import functools
import json
import pathlib
import re

import pytest
from layout import FACES, LAYERS, ROOT, layer_of, module_file, modules

THEORY = ROOT / "docs" / "theory.md"
README = ROOT / "README.md"

# A label is "(H)", "(AR1)".."(AR10)", "(AD0)".."(AD5)", "(WP1)".."(WP9)" or one letter of S, A,
# L, M, W, R, P followed by one digit, in parentheses that do not follow a name or a closing bracket
# (so ``range(L)``, ``TF_theta(H)`` and ``sym(P22)`` are calls, not labels).
LABEL = re.compile(r"(?<![\w\])])\((H|AR(?:10|[1-9])|AD[0-5]|WP[1-9]|[SALMWRP][1-9])\)")

# Every label of the theory, by section: the page must define all of them.
ALL_LABELS = (
    ["H", "L1", "L2"]
    + [f"S{i}" for i in range(2, 7)]
    + [f"A{i}" for i in range(1, 7)]
    + [f"M{i}" for i in range(1, 8)]
    + [f"W{i}" for i in range(1, 8)]
    + [f"R{i}" for i in range(1, 6)]
    + [f"P{i}" for i in range(1, 4)]
    + [f"AR{i}" for i in range(1, 11)]
    + [f"AD{i}" for i in range(6)]
    + [f"WP{i}" for i in range(1, 7)]
)


def _cited_labels() -> dict[str, set[str]]:
    """label -> files (relative paths) of the package's .py sources that cite it."""
    cited: dict[str, set[str]] = {}
    for pkg, folder in LAYERS.items():
        files = sorted((ROOT / folder).rglob("*.py"))
        assert files, f"no sources found in {pkg}"
        for f in files:
            for label in LABEL.findall(f.read_text()):
                cited.setdefault(label, set()).add(str(f.relative_to(ROOT)))
    return cited


def _defined_labels() -> set[str]:
    """Labels that docs/theory.md defines: a bold ``**(X)**`` at the start of a statement."""
    return set(
        re.findall(r"\*\*\((H|AR(?:10|[1-9])|AD[0-5]|WP[1-9]|[SALMWRP][1-9])\)\*\*", THEORY.read_text())
    )


def test_label_regex_finds_labels_and_skips_calls():
    text = "see (S3) and (M3)-(M6); range(L), TF_theta(H), sym(P22), f(S), (P22), (AR10), (AR11)"
    assert LABEL.findall(text) == ["S3", "M3", "M6", "AR10"]
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
    for ref in ("[LL]", "[W]", "[vO]", "[Ahn]", "[ZFB]", "[Sa]", "[Zh]"):
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
    from lsa_theory.experiments import tables

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


PRINTED_TABLES = [
    # (table kind of experiments.tables, saved result, page that prints it)
    ("in-context", "context-length_context_length_in-context.json", "docs/context-length.md"),
    ("closed-loop", "context-length_context_length_closed-loop.json", "docs/context-length.md"),
    ("seeds", "training_seeds.json", "docs/experiments.md"),
    ("seeds", "training-random_small_seeds.json", "docs/experiments.md"),
    ("seeds", "training-invariant_seeds.json", "docs/experiments.md"),
    ("seeds", "training-actor_critic_seeds.json", "docs/experiments.md"),
    ("td-pretrain-runs", "td-pretrain-full.json", "docs/td-pretrain.md"),
    ("td-pretrain-stationary", "td-pretrain-full.json", "docs/td-pretrain.md"),
    ("td-pretrain-runs", "td-pretrain-L3.json", "docs/td-pretrain.md"),
    ("attention-runs", "attention-sarsa.json", "docs/attention.md"),
    ("attention-summary", "attention-sarsa.json", "docs/attention.md"),
    ("attention-construction", "attention-sarsa.json", "docs/attention.md"),
]


@pytest.mark.parametrize("kind, result, page", PRINTED_TABLES)
def test_printed_tables_are_the_saved_results(kind, result, page):
    """The context-length and training-seed tables of the pages are exactly the tables printed
    from their saved JSON (so the prose numbers checked below sit beside their own tables)."""
    from lsa_theory.experiments import tables

    text = (ROOT / page).read_text()
    assert tables.table(kind, ROOT / "docs" / "figures" / result) in text
    if kind == "closed-loop":
        doc = json.loads((ROOT / "docs" / "figures" / result).read_text())
        for alpha in (0.2, 0.4):
            assert f"alpha = {alpha}:\n\n{tables.closed_loop_diffs(doc, alpha)}" in text


def test_pretraining_seed_table_is_the_saved_runs():
    """Issue 12 with the reporting rule: the (P3) seeds table in docs/pretraining.md is exactly the
    table of its saved runs, every configuration with at least three seeds, and failed trainings
    are rows (never dropped)."""
    from lsa_theory.experiments import tables

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
    from lsa_theory.experiments import tables

    path = ROOT / "docs" / "figures" / "actor_critic_variants.json"
    page = (ROOT / "docs" / "actor-critic.md").read_text()
    for table in tables.table("actor-critic-variants", path).split("\n\n"):
        assert table in page


def test_regression_gamma_check_is_the_saved_run():
    """Issue 18: the (R4) least-squares check of Gamma in docs/regression.md is the saved full run's
    (docs/figures/regression-full.json), which passed it; the flow's own-target error stays quoted
    as convergence (its largest value over the population runs)."""
    from lsa_theory.experiments.tables import TABLES

    doc = json.loads((ROOT / "docs" / "figures" / "regression-full.json").read_text())
    page = (ROOT / "docs" / "regression.md").read_text()
    assert doc["checks"]["gamma_least_squares"] and doc["passed"]
    assert TABLES["regression-gamma-check"](doc) in page
    worst = max(r["flow_vs_target"] for r in doc["configs"])
    assert f"{worst:.1e}" in page


def test_regression_law_tables_are_the_saved_runs():
    """Issue 23: docs/regression.md's "Data laws" tables are printed from the saved law checks
    (docs/figures/regression-laws.json, every row passed) and the saved --quick runs of the five
    non-default law pairs (each passed, with its law and target named)."""
    from lsa_theory.experiments.tables import TABLES

    page = (ROOT / "docs" / "regression.md").read_text()
    laws = json.loads((ROOT / "docs" / "figures" / "regression-laws.json").read_text())
    assert laws["passed"] and len(laws["rows"]) == 12
    assert TABLES["regression-laws"](laws) in page and TABLES["regression-laws-calibration"](laws) in page
    names = [
        "isotropic-sphere",
        "isotropic-gamma",
        "sigma_inverse-gaussian",
        "sigma_inverse-sphere",
        "sigma_inverse-gamma",
    ]
    runs = [json.loads((ROOT / "docs" / "figures" / f"regression-quick-{n}.json").read_text()) for n in names]
    for name, doc in zip(names, runs, strict=True):
        assert (
            doc["passed"]
            and name == f"{doc['law']['w']}-{doc['law']['x']}"
            and name.split("-")[0] in doc["target"]
        )
    assert TABLES["regression-law-runs"](runs) in page


def test_regression_attention_tables_are_the_saved_study():
    """Issue 23, item 3: the tables of docs/regression.md's attention section are those of the saved
    study (docs/figures/regression-attention.json), which holds every run of the study, diverged
    ones included."""
    from lsa_theory.experiments.regression import attention as at
    from lsa_theory.experiments.tables import TABLES

    doc = json.loads((ROOT / "docs" / "figures" / "regression-attention.json").read_text())
    page = (ROOT / "docs" / "regression.md").read_text()
    assert len(doc["runs"]) == len(at.STUDY) * len(doc["seeds"]) and len(doc["seeds"]) >= 3
    for kind in ("summary", "runs", "constructed"):
        assert TABLES[f"regression-attention-{kind}"](doc) in page


def test_regression_softmax_quick_tables_are_the_saved_runs():
    """Issue 23, item 5: docs/regression.md's tables of ``--quick --heads 2 --attention softmax``
    (its trained stacks, exit 0) and of the sparse softmax family's lines are printed from the
    saved documents; no stack of the run diverged, and the best member of each line is above the
    zero predictor at L = 2 and 3 (the family cannot predict 0)."""
    from lsa_theory.experiments.tables import TABLES

    page = (ROOT / "docs" / "regression.md").read_text()
    run = json.loads((ROOT / "docs" / "figures" / "regression-quick-heads2-softmax.json").read_text())
    lines = json.loads((ROOT / "docs" / "figures" / "regression-softmax-lines.json").read_text())
    assert run["passed"] and (run["heads"], run["attention"]) == (2, "softmax")
    assert TABLES["regression-trained"](run) in page and TABLES["regression-softmax-lines"](lines) in page
    for r in lines["rows"]:
        if r["L"] >= 2:
            assert all(line["best_loss"] > r["loss_zero"] for line in r["lines"].values())


def test_extending_page_links_every_worked_example_and_has_pitfalls():
    """docs/extending.md has a "Pitfalls" section (sizes carried in shapes, sympy exactness) and
    links every runnable example declaration in examples/ (tests/constructions/test_registry.py
    verifies each) on docs/examples.md, which includes the file itself (so the site shows it as it
    is)."""
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
    "docs/extending.md", "docs/inputs.md", "docs/inputs.md#faults-files-and-concurrent-runs",
    "docs/performance-flow.md", "docs/performance.md", "docs/pretraining.md", "docs/proofs.md",
    "docs/regression.md", "docs/results.md", "docs/td-family.md", "docs/theory.md", "docs/tool.md",
)  # fmt: skip


def test_readme_links_the_reading_order_and_says_how_to_build_the_site():
    """The README links docs/index.md (the reading order) and CHANGELOG.md, and gives one command
    each to build and to serve the docs site, which CI builds in strict mode with the docs extra."""
    text = README.read_text()
    assert "](docs/index.md)" in text and "](CHANGELOG.md)" in text
    for command in ('pip install -e ".[docs]"', "mkdocs serve", "mkdocs build --strict"):
        assert command in text, command
    ci = (ROOT / ".ci" / "run").read_text()
    assert 'pip install -e ".[docs]"' in ci and "\nmkdocs build --strict" in ci
    assert ci.index("\npytest -n 2 ") < ci.index("mkdocs build --strict") < ci.index("pytest -m slow")


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
    assert re.search(r"about \d+ s wall on 2 cores", pytest_line) and "3 min" not in first
    ci = (ROOT / ".ci" / "run").read_text()
    (ci_line,) = [line for line in ci.splitlines() if line.startswith("pytest ") and "-m slow" not in line]
    assert pytest_line.split("#")[0].strip() == ci_line.split("#")[0].strip(), "README and CI differ"
    assert "python3 -m venv .venv" in ci and 'pip install -e ".[dev]"' in ci
    for command in README_COMMANDS:
        assert command in text, command
    for link in README_LINKS:
        assert f"]({link})" in text, link


# --- The API reference of the site (mkdocs.yml, docs/api/): every public name has a docstring ---

API = ROOT / "docs" / "api"
DIRECTIVE = re.compile(r"^::: ([\w.]+)\n((?:    .*\n|\n)*)", re.M)


@functools.cache
def _source(path: pathlib.Path) -> tuple[str, ast.Module]:
    text = path.read_text()
    return text, ast.parse(text)


def _comment_above(lines: list[str], lineno: int) -> str:
    """The ``#:`` comment block right above line ``lineno`` (1-based): a constant's documentation."""
    block = []
    i = lineno - 2
    while i >= 0 and lines[i].strip().startswith("#:"):
        block.insert(0, lines[i].strip()[2:].strip())
        i -= 1
    return " ".join(block)


def _docstring(module: str, name: str, depth: int = 0) -> str:
    """The docstring of ``module.name`` as written in the source, following re-exports: a def's or
    class's docstring, or for a constant the string right after its assignment or the ``#:``
    comment right above it (what the site shows). Raises LookupError when no definition is found."""
    path = module_file(module)
    text, tree = _source(path)
    body = tree.body
    for i, node in enumerate(body):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and node.name == name:
            return ast.get_docstring(node) or ""
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        if isinstance(node, ast.Assign | ast.AnnAssign) and any(
            isinstance(t, ast.Name) and t.id == name for t in targets
        ):
            nxt = body[i + 1] if i + 1 < len(body) else None
            if isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant):
                return str(nxt.value.value)
            return _comment_above(text.splitlines(), node.lineno)
        if isinstance(node, ast.ImportFrom) and depth < 5:
            for alias in node.names:
                if (alias.asname or alias.name) == name:
                    pkg = module if path.name == "__init__.py" else module.rpartition(".")[0]
                    for _ in range(node.level - 1):
                        pkg = pkg.rpartition(".")[0]
                    source = f"{pkg}.{node.module}" if node.level else node.module
                    if module_file(f"{source}.{alias.name}").exists() and not node.module:
                        source = f"{source}.{alias.name}"  # `from . import module`
                        return ast.get_docstring(_source(module_file(source))[1]) or ""
                    return _docstring(source, alias.name, depth + 1)
    raise LookupError(f"{module}.{name}: no definition found")


def _api_directives() -> dict[str, list[str] | None]:
    """``::: module`` directives of docs/api/*.md -> the members they list (None: all / none listed)."""
    found: dict[str, list[str] | None] = {}
    for page in sorted(API.glob("*.md")):
        for module, options in DIRECTIVE.findall(page.read_text()):
            members = re.findall(r"^        - (\w+)$", options, re.M)
            found[module] = members or None
    return found


def _public_modules(package: str) -> list[str]:
    public = [m for m in modules() if not any(p.startswith("_") for p in m.split("."))]
    return [m for m in public if layer_of(m) == package]


def _all_names(package: str) -> list[str]:
    tree = ast.parse(module_file(package).read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets):
            return list(ast.literal_eval(node.value))
    return []


def test_docstring_lookup_finds_defs_constants_and_reexports_and_misses_nothing():
    assert _docstring("lsa_theory", "lsa_block").startswith("(L1): ")
    assert "Relative tolerance" in _docstring(
        "lsa_theory.constructions", "READOUT_TOL"
    )  # via a private module
    assert _docstring("lsa_theory.dynamics", "KERNEL_RTOL")  # a #: block over three lines
    with pytest.raises(LookupError):
        _docstring("lsa_theory", "no_such_name")


def test_api_pages_cover_every_public_module_and_name_only_existing_ones():
    """docs/api/ names every public module of the core, constructions and dynamics (a new module
    appears on the site), and every ``::: module`` it names exists (mkdocs build --strict fails on
    one that does not; this says so without building)."""
    directives = _api_directives()
    for package in FACES:
        missing = sorted(set(_public_modules(package)) - set(directives))
        assert not missing, f"docs/api/{package}.md has no `::: module` for {missing}"
    assert any(m.startswith("lsa_theory.experiments.") for m in directives)
    for module in directives:
        assert module_file(module).exists(), f"docs/api: `::: {module}` names no module"


def test_every_public_name_and_module_of_the_api_has_a_docstring():
    """A missing docstring fails: every name of ``__all__`` of the core, constructions and
    dynamics, every public module of theirs, and every experiments entry point on
    docs/api/experiments.md (with its module) has a non-empty docstring in the source."""
    missing = []
    for package in FACES:
        for name in _all_names(package):
            if not _docstring(package, name).strip():
                missing.append(f"{package}.{name}")
        for module in _public_modules(package):
            if not (ast.get_docstring(_source(module_file(module))[1]) or "").strip():
                missing.append(f"module {module}")
    for module, members in _api_directives().items():
        if layer_of(module) not in FACES:
            if not (ast.get_docstring(_source(module_file(module))[1]) or "").strip():
                missing.append(f"module {module}")
            missing += [f"{module}.{m}" for m in members or () if not _docstring(module, m).strip()]
    assert not missing, f"public names without a docstring: {missing}"


# --- Pages: a reading order, no history, the tool's reference ---

DOCS = ROOT / "docs"


def _pages() -> list[pathlib.Path]:
    return sorted(p for p in DOCS.rglob("*.md") if "_ext" not in p.parts)


def test_index_gives_a_reading_order_of_every_page_and_the_site_builds_them_all():
    """docs/index.md links every page once in its reading order, theory first and performance after
    the tool; mkdocs.yml's nav lists every page (mkdocs build --strict fails on one left out)."""
    index = (DOCS / "index.md").read_text()
    nav = (ROOT / "mkdocs.yml").read_text()
    order = []
    for page in _pages():
        rel = page.relative_to(DOCS).as_posix()
        assert f": {rel}" in nav, f"mkdocs.yml nav does not list {rel}"
        if rel != "index.md":
            assert f"]({rel})" in index, f"docs/index.md does not link {rel}"
            order.append(rel)
    pos = {rel: index.index(f"]({rel})") for rel in order}
    sequence = ["theory.md", "proofs.md", "dynamics.md", "experiments.md", "extending.md", "tool.md"]
    sequence += ["performance.md"]
    assert [pos[p] for p in sequence] == sorted(pos[p] for p in sequence), "reading order"


#: "issue 13", "Issue 18, item 4", "issues 9-10": history, which belongs to CHANGELOG.md.
ISSUE = re.compile(r"\bissues? \d+", re.I)


def test_pages_carry_no_history_and_titles_say_their_topic():
    """Page titles say their topic and pages carry no issue-number history (it is in CHANGELOG.md,
    shown on the site through docs/changelog.md)."""
    assert ISSUE.search("see Issue 18, item 4") and not ISSUE.search("the issue's grid")
    for page in _pages():
        text = page.read_text()
        title = text.splitlines()[0]
        assert title.startswith("# ") and not re.search(r"\d+$|\(issue", title, re.I), (page, title)
        if page.name != "changelog.md":
            found = ISSUE.findall(text)
            assert not found, f"{page.relative_to(ROOT)} carries history {found}: move it to CHANGELOG.md"
    assert '--8<-- "CHANGELOG.md"' in (DOCS / "changelog.md").read_text()
    changelog = (ROOT / "CHANGELOG.md").read_text()
    # newest first: the unreleased sections on top; issues are not done in number order (24 before
    # 19), so the order below them is the file's own; each issue has one section
    heads = re.findall(r"^## (\[Unreleased\] - )?[Ii]ssue (\d+)", changelog, re.M)
    unreleased = [bool(u) for u, _ in heads]
    assert heads and unreleased == sorted(unreleased, reverse=True), (
        f"CHANGELOG.md: unreleased first: {heads}"
    )
    numbers = [n for _, n in heads]
    assert len(numbers) == len(set(numbers)), f"CHANGELOG.md: one section per issue: {numbers}"


def _section(text: str, heading: str) -> str:
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else None]


def test_tool_page_lists_every_command_and_option_of_the_parser():
    """docs/tool.md's "Commands and options" table names every subcommand and every option of
    ``lsa-theory`` (the parser is the contract; a new option must be documented)."""
    import argparse

    from lsa_theory.cli import build_parser

    table = _section((DOCS / "tool.md").read_text(), "Commands and options")
    (sub,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    for name, parser in sub.choices.items():
        rows = [line for line in table.splitlines() if line.startswith(f"| `lsa-theory {name}` |")]
        assert len(rows) == 1, f"docs/tool.md: no row for `lsa-theory {name}`"
        for action in parser._actions:
            for option in action.option_strings:
                if option not in ("-h", "--help"):
                    assert f"`{option}" in rows[0], f"docs/tool.md: `lsa-theory {name}` lacks {option}"


def test_tool_page_json_keys_are_those_of_the_saved_documents():
    """Each "JSON documents" row with a saved example lists exactly that document's top-level keys."""
    table = _section((DOCS / "tool.md").read_text(), "JSON documents")
    rows = re.findall(r"^\| `[^`]+` \| `(docs/figures/[^`]+)` \| (.+) \|$", table, re.M)
    assert len(rows) >= 5
    for path, keys in rows:
        listed = re.findall(r"`([^`]+)`", keys)
        assert listed == sorted(json.loads((ROOT / path).read_text())), path


# --- Headline numbers in the prose come from the saved results ---


def _flat(text: str) -> str:
    return " ".join(text.split())


def _sign(x: float) -> str:
    return f"{x:+.2f}"


def _ci(p: dict) -> str:
    return f"{_sign(p['mean'])} [{_sign(p['ci_low'])}, {_sign(p['ci_high'])}]"


def _m7_numbers(doc: dict) -> dict[str, list[str]]:
    """The (M7) answer of the README, from docs/figures/returns_by_k-full.json (docs/experiments.md's
    findings from the same file are formatted by :func:`_experiments_numbers`)."""
    g = {(x["k"], x["shared_features"]): x for x in doc["groups"]}
    top, mt = g[(256, False)], g[(256, False)]["minus_teacher"]
    assert all(x["n_diverged"] > 0 for (k, shared), x in g.items() if shared)  # "diverges at every k"
    readme = [
        f"({top['n_diverged']}/{top['n_loops']}, return {top['normalized_return_mean']:.3f} +- "
        f"{top['normalized_return_clustered_sem']:.3f} over {mt['n']} held-out MDPs, block minus teacher "
        f"{mt['mean']:+.3f} [{mt['ci_low']:+.3f}, {mt['ci_high']:+.3f}] paired by MDP; "
        f"teacher {mt['mean_b']:.3f})",
        f"k = 64 diverges in {g[(64, False)]['n_diverged']}/{g[(64, False)]['n_loops']} loops, "
        f"k = 1 in {g[(1, False)]['n_diverged']}/{g[(1, False)]['n_loops']}",
    ]
    return {"README.md": readme}


def _p3_numbers(doc: dict) -> dict[str, list[str]]:
    """The (P3) answers of the README and docs/pretraining.md, from docs/figures/pretrain-seeds.json
    (each seed's paired 95 % intervals over the 100 held-out MDPs; "above its start" = the interval
    of (P2) minus its start is above 0, "beats the teacher" = (P2) minus exact is above 0)."""
    runs = [[r for r in g["runs"] if "failed" not in r] for g in doc["groups"]]
    n = [len(g["runs"]) for g in doc["groups"]]
    sq, acq, sa, sb, sd, ace, acf = runs  # the groups' order in the document
    up = [[r for r in g if r["paired"]["rl-rl_initial"]["ci_low"] > 0] for g in runs]
    beats = [[r for r in g if r["paired"]["rl-exact"]["ci_low"] > 0] for g in runs]
    start = [r["paired"]["rl-rl_initial"]["mean"] for r in sq if r not in up[0]]
    corr = [r["rl"]["update_corr_sarsa"] for r in acq]
    corr_d = [r["rl"]["update_corr_sarsa"] for r in sd]
    ac_up = [r["paired"]["rl-rl_initial"]["mean"] for r in acq]
    gain = [r["paired"]["rl-exact"]["mean"] for r in sb]
    assert all(r["paired"]["rl-exact"]["ci_high"] < 0 for r in acq + ace)  # "below (A2) in every seed"
    readme = [
        f"in {len(up[0])} of {n[0]} seeds ({_ci(sq[0]['paired']['rl-rl_initial'])} and "
        f"{_sign(sq[1]['paired']['rl-rl_initial']['mean'])} in seeds 0 and 1; the others "
        f"{_sign(min(start))} to {_sign(max(start))}, intervals containing 0)",
        f"in {len(up[4])} of {n[4]} ({', '.join(_sign(r['paired']['rl-rl_initial']['mean']) for r in sd)}), "
        f"the third's training diverged; its update correlates with SARSA at "
        f"{min(corr_d):.2f}-{max(corr_d):.2f}",
        f"{len(up[1])} of {n[1]} seeds at S = A = 2 ({_sign(min(ac_up))} to {_sign(max(ac_up))}) and "
        f"{len(up[5])} of {n[5]} at 9 x 4 "
        f"({', '.join(_sign(r['paired']['rl-rl_initial']['mean']) for r in ace)};",
        f"update correlation with (A2) {min(corr):.2f} to {max(corr):.2f}",
        f"in {len(beats[3])} of {n[3]} seeds (SARSA, {_sign(min(gain))} to {_sign(max(gain))}) and "
        f"{len(beats[6])} of {n[6]} (actor-critic)",
        f"at [LL] ({len(up[2])} of {n[2]} seeds above start)",
    ]
    third = acf[2]["paired"]["rl-exact"]
    ac0 = acq[0]["paired"]["rl-rl_initial"]
    page = [
        f"**{len(up[0])} of {n[0]} seeds** only",
        f"above its start in {len(up[4])} of {n[4]} seeds",
        f"above its start in {len(up[1])} of {n[1]} seeds at S = A = 2 and in "
        f"{len(up[5])} of {n[5]} at 9 x 4",
        f"(P2) is above its start in {len(up[3]) + len(up[6])} of {n[3] + n[6]} runs and beats the exact "
        f"teacher in {len(beats[3])} of {n[3]} (SARSA) and {len(beats[6])} of {n[6]} "
        "(actor-critic; the third "
        f"{third['mean']:+.3f} [{third['ci_low']:+.3f}, {third['ci_high']:+.3f}])",
        f"{_sign(ac0['mean'])}, 95 % CI [{_sign(ac0['ci_low'])}, {_sign(ac0['ci_high'])}], at S = A = 2, "
        f"and {_ci(ace[0]['paired']['rl-rl_initial'])} at the [LL] size",
        f"{_ci(acq[0]['paired']['rl-exact'])} and {_ci(ace[0]['paired']['rl-exact'])}",
        f"is {acq[0]['rl']['update_corr_sarsa']:.2f} and {ace[0]['rl']['update_corr_sarsa']:.2f}; "
        "the cosine to "
        f"(A3) is {acq[0]['rl']['cos_S3_effective']:.2f} and {ace[0]['rl']['cos_S3_effective']:.2f}",
        f"beats (A2) at its horizon: {_ci(acf[0]['paired']['rl-exact'])}",
    ]
    return {"README.md": readme, "docs/pretraining.md": page}


def _parametrized_ids(module) -> list[str]:
    """The ids that the ``@pytest.mark.parametrize`` marks of ``module``'s test functions give pytest
    (what ``pytest --collect-only`` lists for it, read from the marks instead of a collection run)."""
    found = []
    for name, obj in vars(module).items():
        if not name.startswith("test_") or not callable(obj):
            continue
        for mark in getattr(obj, "pytestmark", []):
            if mark.name != "parametrize":
                continue
            params, ids = mark.args[1], mark.kwargs.get("ids")
            for i, param in enumerate(params):
                pid = getattr(param, "id", None)
                if pid is None and ids is not None:
                    pid = ids(param) if callable(ids) else ids[i]
                found.append(f"{name}[{pid}]")
    return found


def _literal_int(module, name: str) -> bool:
    """``name`` is assigned an integer literal at the top of ``module``'s source (not computed)."""
    tree = ast.parse(pathlib.Path(module.__file__).read_text())
    values = [
        n.value
        for n in tree.body
        if isinstance(n, ast.Assign) and any(getattr(t, "id", None) == name for t in n.targets)
    ]
    return len(values) == 1 and isinstance(values[0], ast.Constant) and type(values[0].value) is int


SAMPLE_PARAMETRIZED = """
import pytest

CASES = [(i, f"fuzz-{i}") for i in range(3)]


@pytest.mark.parametrize("x", [pytest.param(i, id=name) for i, name in CASES])
def test_by_param(x):
    pass


@pytest.mark.parametrize("y, z", [(1, 2), (3, 4)], ids=["good-a", "fuzz-b"])
def test_by_ids(y, z):
    pass
"""


def test_parametrized_ids_are_what_pytest_collects(tmp_path, monkeypatch):
    """The mark reader gives the ids ``pytest --collect-only`` lists, for both ways the fuzz modules
    name their cases (``pytest.param(..., id=...)`` and ``ids=[...]``); checked on a small module
    so that the collection run stays cheap."""
    import importlib
    import subprocess
    import sys

    (tmp_path / "sample_parametrized.py").write_text(SAMPLE_PARAMETRIZED)
    monkeypatch.syspath_prepend(str(tmp_path))
    ours = sorted(
        f"sample_parametrized.py::{i}"
        for i in _parametrized_ids(importlib.import_module("sample_parametrized"))
    )
    command = [
        sys.executable,
        "-m",
        "pytest",
        "--collect-only",
        "-q",
        "-p",
        "no:cacheprovider",
        "--noconftest",
    ]
    out = subprocess.run(
        [*command, "sample_parametrized.py"], capture_output=True, text=True, cwd=tmp_path, check=False
    )
    collected = sorted(line for line in out.stdout.splitlines() if "::" in line)
    assert len(ours) == 5 and ours == collected, (ours, collected, out.stderr[-2000:])


def _fuzz_numbers(_doc: None) -> dict[str, list[str]]:
    """Quoted fuzz counts of docs/inputs.md: the generated cases (ids ``fuzz-*``) and their specs.
    ``FUZZ_CASES`` is a literal in each module and must equal the number of ``fuzz-*`` ids its
    parametrisation gives pytest, so a change of the generator fails here until the literal and
    the page are updated."""
    import importlib

    counts = {}
    for name in ("test_input_fuzz", "test_input_fuzz_api"):
        module = importlib.import_module(name)
        specs = getattr(module, "API_SPECS", None) or module.SPECS
        assert _literal_int(module, "FUZZ_CASES"), f"{name}.FUZZ_CASES must be written out, not computed"
        ids = [i for i in _parametrized_ids(module) if "[fuzz-" in i]
        assert len(ids) == len(set(ids)) == module.FUZZ_CASES, (name, len(ids), module.FUZZ_CASES)
        counts[name] = (module.FUZZ_CASES, len(specs))
    (a, sa), (b, sb) = counts["test_input_fuzz"], counts["test_input_fuzz_api"]
    return {
        "docs/inputs.md": [
            f"with {a:,} generated bad-input cases over {sa} function specs (its `FUZZ_CASES`; ids `fuzz-*`",
            f"with the same generated bad values: {b:,} cases over {sb} specs, counted in its `FUZZ_CASES`",
        ]
    }


def _horizon_numbers(_doc: None) -> dict[str, list[str]]:
    """Loops diverged beyond the (P2) horizon: SARSA at [LL] (pretrain-full-k16k.json) and the
    actor-critic at both sizes (pretrain-ac-quick.json, pretrain-ac-full.json)."""
    saved = {
        name: json.loads((ROOT / "docs" / "figures" / f"{name}.json").read_text())
        for name in ("pretrain-full-k16k", "pretrain-ac-quick", "pretrain-ac-full")
    }
    k16k = saved["pretrain-full-k16k"]
    sarsa, n = k16k["rl"]["n_diverged_final"], k16k["n_heldout"]
    ac = sorted(saved[name]["rl"]["n_diverged_final"] for name in ("pretrain-ac-quick", "pretrain-ac-full"))
    return {
        "README.md": [
            f"(SARSA {sarsa}/{n}) and for the actor-critic at both sizes ({ac[0]} to {ac[1]} of {n})"
        ],
        "docs/pretraining.md": [
            f"{k16k['rl']['heldout_return_final']:.3f} at 100 updates, with {sarsa} of {n} loops diverged"
        ],
    }


def _saved(name: str) -> dict:
    """The saved result ``docs/figures/NAME``."""
    return json.loads((ROOT / "docs" / "figures" / name).read_text())


def _sci(x: float, spec: str = ".1e") -> str:
    """``x`` in the prose's scientific style: ``2.4e-4`` (no leading zero in the exponent); ``x`` may
    be a number or an already formatted string (from :func:`_up`)."""
    return re.sub(r"e([+-])0+(\d)", r"e\1\2", x if isinstance(x, str) else format(x, spec))


def _bound(x: float, spec: str, up: bool) -> str:
    """``x`` formatted with ``spec`` and rounded outward, so that the printed number is an upper
    (``up``) or lower bound of ``x``: what a page may write after "at most", "<=", "within",
    "below" or "at least"."""
    s = format(x, spec)
    if (float(s) >= x) if up else (float(s) <= x):
        return s
    mant, _, exp = s.partition("e")
    decimals = len(mant.partition(".")[2])
    step = 10.0**-decimals
    value = (float(mant) + (step if up else -step)) * 10.0 ** int(exp or 0)
    return format(value, spec)


def _up(x: float, spec: str) -> str:
    return _bound(x, spec, up=True)


def _down(x: float, spec: str) -> str:
    return _bound(x, spec, up=False)


def _pct(x: float, spec: str = ".0f") -> str:
    """A ratio's distance from 1 in per cent (1.0469 -> "5")."""
    return format(100 * (x - 1), spec)


def _dynamics_numbers(_doc: None) -> dict[str, list[str]]:
    """The gradient-flow findings of docs/dynamics.md, from the saved converge runs
    (``converge-sarsa.json``, ``converge-actor_critic.json``; the quick runs are the rows of the full
    run at ``converge-quick.json``'s configuration) and diversity runs (``diversity-quick.json``,
    ``diversity-full.json``). Pass counts use the commands' own criteria; a bound ("at most",
    "<=", "within", "below", "at least") is the measured extreme rounded outward."""
    from lsa_theory.experiments.criteria import converge_passed, diversity_passed

    sa, ac = _saved("converge-sarsa.json"), _saved("converge-actor_critic.json")
    quick = _saved("converge-quick.json")
    dq, df = _saved("diversity-quick.json")["rows"], _saved("diversity-full.json")["rows"]
    runs, cq = ac["runs"], quick["config"]
    acq = [
        r for r in runs if r["seed"] in cq["seeds"] and r["c0"] in cq["scales"] and r["radius"] in cq["radii"]
    ]
    assert len(acq) == len(quick["runs"]) == 4
    lam1, lam2 = acq[0]["rate_pred_a_priori"], acq[0]["rate_pred2_a_priori"]
    single_q = [r["rate_ratio_single"] for r in acq]
    two_q = _up(100 * (max(r["rate_ratio_two_mode"] for r in acq) - 1), ".1f")
    three_q = _up(100 * max(abs(r["rate_ratio_a_priori"] - 1) for r in acq), ".1f")
    ro_q = _sci(_up(max(r["rate_roundoff"] for r in acq), ".1e"))
    seed0 = [r for r in runs if r["seed"] == 0]
    single0 = [r["rate_ratio_single"] for r in seed0]
    two0 = _up(100 * (max(r["rate_ratio_two_mode"] for r in seed0) - 1), ".1f")
    others = " to ".join(sorted({f"{r['rate_ratio_single']:.4f}" for r in runs if r["seed"] != 0}))
    modes = [len(r["rate_modes"]) for r in runs]
    prior = [r["rate_ratio_a_priori"] for r in runs]
    roundoff = [r["rate_roundoff"] for r in runs]
    tight = max(runs, key=lambda r: abs(r["rate_ratio_a_priori"] - 1) + r["rate_roundoff"])
    margin = _up(100 * (abs(tight["rate_ratio_a_priori"] - 1) + tight["rate_roundoff"]), ".2f")
    worst = {
        key: _sci(_up(max(f(r) for r in runs), spec))
        for key, f, spec in (
            ("pl", lambda r: r["pl_roundoff"], ".1e"),
            ("drift", lambda r: r["conserved_drift"], ".1e"),
            ("dist", lambda r: r["dist_final"], ".1e"),
            ("c", lambda r: abs(r["c_final"] / r["c_pred"] - 1), ".1e"),
        )
    }
    unreal_ac = [u["rate_ratio_a_priori"] for u in ac["unrealisable"]]
    stuck = [r for r in ac["radius_sweep"] if not r["reached"]]
    page = [
        f"`lambda_1 = {_sci(lam1, '.3e')}` and `lambda_2 = {_sci(lam2, '.3e')}` (ratio {lam2 / lam1:.3f};",
        f"overestimates `lambda_1` by {_pct(min(single_q))}-{_pct(max(single_q))} % in every quick run",
        f"two-mode fit by up to {two_q} %; the three-mode fit recovers `lambda_1` to {three_q} % with a "
        f"round-off bound of at most {ro_q}.",
        f"(`lambda_2 / lambda_1 = {lam2 / lam1:.3f}`,",
        f"overestimates `lambda_1` by {_pct(min(single0))}-{_pct(max(single0))} % in every seed-0 run and "
        f"the two-mode fit by up to {two0} %",
        f"**{sum(map(converge_passed, runs))}/{len(runs)} pass**",
        f"Rate / prior {min(prior):.4f}-{max(prior):.4f} with round-off bounds {_sci(min(roundoff))} to "
        f"{_sci(max(roundoff))}; the tightest run is seed {tight['seed']}, c = {tight['c0']:g}, r = "
        f"{tight['radius']:g} ({tight['rate_ratio_a_priori']:.4f} + {_sci(tight['rate_roundoff'])} = "
        f"{margin} % against the 1 % bar",
        f"Three modes in {modes.count(3)} runs, two in {modes.count(2)}, one in {modes.count(1)}",
        f"The single window is biased only for seed 0 ({min(single0):.4f}-{max(single0):.4f}; seeds 1 and 2: "
        f"{others})",
        f"PL minimum {min(r['pl_min_ratio'] for r in runs):.4f} (over resolved steps, bound <= "
        f"{worst['pl']}); (M3) drift <= {worst['drift']}; final distance <= {worst['dist']}; "
        f"`|c_final/c_pred - 1|` <= {worst['c']}",
        f"rate(grad) / prior {', '.join(f'{x:.4f}' for x in unreal_ac)}",
        f"the radius sweep resumed (`--reuse`) at {ac['provenance']['git_commit'][:7]}",
        f"from radius 10 seeds {' and '.join(str(r['seed']) for r in stuck)} end at spurious local minima "
        f"(L = {', '.join(_sci(r['loss_final']) for r in stuck)})",
    ]
    for doc in (sa, ac):  # the summary table of the full runs (its measured columns)
        r = doc["runs"]
        ratio = [x["rate_ratio_a_priori"] for x in r]
        limit = [x["rate_ratio"] for x in r]
        page.append(
            f"| {sum(map(converge_passed, r))}/{len(r)} | {min(ratio):.4f}–{max(ratio):.4f} | "
            f"{min(x['pl_min_ratio'] for x in r):.4f} | {min(limit):.4f}–{max(limit):.4f} | "
            f"{max(x['conserved_drift'] for x in r):.1e} | {max(x['dist_final'] for x in r):.1e} | "
            f"{max(abs(x['c_final'] / x['c_pred'] - 1) for x in r):.1e} |"
        )
    local = sa["runs"] + ac["runs"]
    pl_local = _down(min(x["pl_min_ratio"] for x in local), ".4f")
    near = [u["rate_ratio_a_priori"] for u in sa["unrealisable"] if u["noise"] == 1e-3]
    far = [u for u in sa["unrealisable"] if u["noise"] == 0.1]
    away = [u["rate_ratio_a_priori"] for u in far]
    page += [
        f"PL ratio stays at or above {pl_local}:",
        f"within {_up(100 * max(abs(x - 1) for x in near), '.1f')} % of the realisable prediction for sarsa "
        f"({', '.join(f'{x:.4f}' for x in near)}) and within "
        f"{_up(100 * max(abs(x - 1) for x in unreal_ac), '.1f')} % for actor-critic; at `sigma = 0.1` "
        f"(sarsa) within {_up(100 * max(abs(u['rate_ratio_limit'] - 1) for u in far), '.1f')} % of "
        f"`lambda_min^+` at the flow's own limit but {min(away):.3f}–{max(away):.3f} of the realisable "
        "prediction",
    ]
    # The radius sweep: where the far starts end, PL along the far paths, the (M3) scale.
    sweep = sa["radius_sweep"] + ac["radius_sweep"]
    reached = [r for r in sweep if r["reached"]]
    assert sa["radius_max_reached"] == ac["radius_max_reached"]
    assert (
        min(r["radius"] for r in sweep if not r["reached"]) == 3
    )  # "spurious local minima from radius 3 on"
    sa_stuck = sorted((r for r in sa["radius_sweep"] if not r["reached"]), key=lambda r: r["radius"])
    far_pl = [r["pl_min_ratio"] for r in sa["radius_sweep"] if r["reached"] and r["radius"] >= 10]
    ac_far = [r for r in ac["radius_sweep"] if r["reached"] and r["radius"] >= 10]
    flipped = [r for r in reached if r["c_final"] * r["c_pred"] < 0]
    assert [(r["algo"], r["seed"], r["radius"]) for r in flipped] == [("sarsa", 2, 30.0)]
    assert max(abs(r["rate_ratio_a_priori"] - 1) for r in reached) < 1e-4  # "within 0.01 % of 1"
    count = ["No", "One", "Two", "Three", "Four", "Five"][len(sweep) - len(reached)]
    ends = ", ".join(
        f"sarsa seed {r['seed']} from radius {r['radius']:g} (`L = {_sci(r['loss_final'])}`"
        + (f", distance {r['dist_final']:.1f})" if i == 0 else ")")
        for i, r in enumerate(sa_stuck)
    )
    ac_ends = f"`L = {_sci(stuck[0]['loss_final'])}`, `{_sci(stuck[1]['loss_final'])}`"
    scale = _sci(_up(max(abs(abs(r["c_final"] / r["c_pred"]) - 1) for r in reached), ".0e"))
    page += [
        f"**The largest radius from which every seed reached the manifold is {sa['radius_max_reached']} "
        "for both algorithms**",
        f"{count} starts end at critical points with `L > 0`: {ends}, actor-critic (state-value critic) "
        f"seeds {' and '.join(str(r['seed']) for r in stuck)} from radius {stuck[0]['radius']:g} ({ac_ends})",
        f"(minimum ratio {', '.join(f'{x:.3g}' for x in far_pl if x < 0.99)} for sarsa; the "
        f"{['no', 'one', 'two'][len(ac_far)]} actor-critic run from radius 10 that reaches it stays at "
        f"{min(r['pl_min_ratio'] for r in ac_far):.1f})",
        "Among the runs from radius 3 or less that reached the manifold the minimum is "
        f"{min(r['pl_min_ratio'] for r in reached if r['radius'] <= 3):.4f}; in the local runs "
        f"(radius <= 0.1) it is at least {pl_local}",
        f"(M3) predicts `|c|` of the limit to {scale} (relative)",
    ]
    # The certified kernels (quick and full diversity runs).
    two = [r for r in dq if r["S"] == 2]
    rank = [r for r in dq if r["table"] == "rank_bound"]
    assert len(rank) == 1 and [r for r in dq if r["ker_dim"] != r["tangent_dim"]] == rank
    (rb,) = rank
    s3 = [r for r in df if r["S"] == 3 and r["table"] == "M5"]
    (fewer,) = [r for r in df if r["ker_dim_threshold"] != r["ker_dim"]]
    stopped = "; ".join(
        f"S = A = {r['S']}, d = {r['d']}, k = {r['k']}, {r['reward']}, {r['table']}: "
        f"distance {r['dist_final']:.1e}"
        for r in df
        if not r["converged"]
    )
    assert all(r["kernel_certified"] for r in df)
    page += [
        f"`{rb['frames']} x {rb['d']} = {rb['rank_rows']} < {rb['size']}`, certified kernel {rb['ker_dim']} "
        f"against an (M4) tangent of {rb['tangent_dim']}",
        f"({sum(map(diversity_passed, dq))}/{len(dq)} rows pass)",
        f"(kernel below {_up(max(r['float_kernel_max'] for r in two), '.0e')} `lambda_max`, the smallest "
        f"non-zero at least {_down(min(r['float_nonzero_min'] for r in two), '.0e')} `lambda_max`)",
        f"At S = A = 3 (d = 9) the certified (M5) kernels are {', '.join(str(r['ker_dim']) for r in s3)}",
        f"the 1e-13 threshold counts {fewer['ker_dim_threshold']} where the certificate proves "
        f"{fewer['ker_dim']}: the smallest non-zero eigenvalue is {fewer['float_nonzero_min']:.0e} "
        "lambda_max",
        f"Flows that stopped at t_max (reported, `flow converged = False`): {stopped}.",
        f"{sum(map(diversity_passed, df))}/{len(df)} rows pass; every kernel is certified",
    ]
    # (M7): one MDP's data at d = |S||A| (both runs' rows) against d < |S||A| (the full run).
    one = [
        r["heldout_err"]
        for r in dq + df
        if (r["k"], r["S"], r["d"]) == (1, 2, 4) and r["table"] != "rank_bound"
    ]
    small = "; ".join(
        f"{r['heldout_err']:.1e} at S = A = {r['S']}, d = {r['d']} (certified kernel {r['ker_dim']})"
        for r in df
        if r["table"] == "d"
    )
    full = " and ".join(
        f"{r['heldout_err']:.1e} at S = A = {r['S']}, d = {r['d']} = |S||A| (kernel {r['ker_dim']})"
        for r in df
        if r["table"] == "M5" and r["k"] == 1 and r["reward"] == "sa"
    )
    page += [
        f"held-out error is {100 * min(one):.0f}–{100 * max(one):.0f} % (S = A = 2, d = 4)",
        f"held-out error {small}, against {full}.",
    ]
    return {"docs/dynamics.md": page}


def _pm(mean: float, sem: float, spec: str = ".2f") -> str:
    return f"{mean:{spec}} ± {sem:{spec}}"


def _diff(d: dict, spec: str = "+.2f") -> str:
    """A paired difference of experiments.stats: ``+0.07 [+0.01, +0.12]``."""
    lo, hi = d["ci"]
    return f"{d['mean']:{spec}} [{lo:{spec}}, {hi:{spec}}]"


def _context_length_numbers(_doc: None) -> dict[str, list[str]]:
    """The findings of docs/context-length.md, from the saved in-context and closed-loop runs
    (``context-length_context_length_{in-context,closed-loop}.json``, whose tables the page prints)."""
    ic = _saved("context-length_context_length_in-context.json")
    cl = _saved("context-length_context_length_closed-loop.json")
    row = {(r["L"], r["n"]): r for r in ic["rows"]}
    td = {(r["L"], r["n"]): r for r in ic["td_rows"]}
    ns = sorted({n for _, n in row})
    first, last = ns[0], ns[-1]
    assert not any(r["n_diverged"] for r in ic["rows"] + ic["td_rows"])  # "No iterate diverged"

    def ret(L, n):
        return _pm(row[L, n]["normalized_return"], row[L, n]["sem"])

    def err(L, n, rows=row, key="value_error_sem"):
        return _pm(rows[L, n]["value_error"], rows[L, n][key])

    # L = 100: the last significant gain, and none after it; value error significant from n0 on.
    gains = [n for n in ns[1:] if row[100, n]["return_diff_prev"]["ci"][0] > 0]
    top = max(gains)
    assert all(
        row[100, n]["return_diff_prev"]["ci"][0] <= 0 <= row[100, n]["return_diff_prev"]["ci"][1]
        for n in ns
        if n > top
    )
    falls = [n for n in ns[1:] if row[100, n]["value_error_diff_prev"]["ci"][1] < 0]
    n0 = min(n for n in ns[1:] if all(m in falls for m in ns if m >= n))
    assert n0 > ns[1] and all(td[100, n]["value_error_diff_prev"]["ci"][1] < 0 for n in ns[1:])
    worst = max((n for n in ns if n < last), key=lambda n: row[1000, n]["value_error"])
    shown = ("normalized_return", "value_error")  # equal as the table prints them (3 digits)
    same = [n for n in ns if all(f"{row[100, n][k]:.3f}" == f"{row[1000, n][k]:.3f}" for k in shown)]
    assert same == ns[: len(same)] and len(same) >= 2
    ends = " / ".join(f"{row[L, last]['value_error']:.2f}" for L in (1, 10, 100, 1000))
    page = [
        f"the greedy return goes from {ret(100, first)} (n = {first}) to {ret(100, last)} (n = {last}); "
        f"the paired gains are significant up to n = {top} ({_diff(row[100, top]['return_diff_prev'])} from "
        f"{ns[ns.index(top) - 1]} to {top})",
        f"With L = 1000 it reaches {ret(1000, last)}, with L = 1 only {ret(1, last)}",
        f"L = 100 from {err(100, first)} to {err(100, last)}, every paired step from n = {n0} on significant "
        f"(last: {_diff(row[100, last]['value_error_diff_prev'], '+.3f')}); L = 1000 to {err(1000, last)}. "
        f"With L = 1 it stays near {row[1, last]['value_error']:.2f}",
        f"worse than w = 0: {err(1000, worst)} at n = {worst}, L = 1000); with n <= {max(same)} the "
        "stacks of 100 and 1000 layers have converged to the same w",
        f"at n = {last} the value error is {ends} for L = 1 / 10 / 100 / 1000",
        f"L = 100 from {err(100, first, td, 'sem')} (n = {first}) to {err(100, last, td, 'sem')} "
        f"(n = {last}), L = 1000 to {err(1000, last, td, 'sem')}, significant paired decreases at every "
        f"step from n = {first} on (L = 100); L = 1 stays at {td[1, last]['value_error']:.2f}.",
        f"this run (20 MDPs, other draws) gives {ret(100, first)} to {ret(100, last)} and "
        f"{err(100, first)} to {err(100, last)}",
    ]
    # The closed loop: cells (budget, point, alpha, n).
    cfg = cl["config"]
    cell = {(r["budget"], r["point"], r["alpha"], r["n"]): r for r in cl["rows"]}
    loops = cfg["n_mdps"] * len(cfg["ns"]) * len(cfg["alphas"])
    assert not any(r["n_diverged"] for r in cl["rows"])  # "No loop diverged"
    at300 = {n: cell["updates", 300, 0.4, n]["normalized_return"] for n in cfg["ns"]}
    best = [n for n in cfg["ns"] if at300[n] >= max(at300.values()) - 0.01]
    i, j = cfg["ns"].index(best[0]), cfg["ns"].index(best[-1])
    assert best == cfg["ns"][i : j + 1]  # "n = 10-40 is best": one stretch of n

    def best_at(alpha, budget=("env_steps", 4000)):
        n = max(cfg["ns"], key=lambda n: cell[(*budget, alpha, n)]["normalized_return"])
        return n, cell[(*budget, alpha, n)]

    (n_a, a), (n_b, b), (n_c, c), (n_d, d) = (best_at(x) for x in cfg["alphas"])
    assert n_a == n_b and round(a["normalized_return"], 2) == round(b["normalized_return"], 2)
    later = [cell["env_steps", 4000, 0.2, n]["diff_prev"] for n in cfg["ns"] if n > 10]
    assert all(x["ci"][1] < 0 for x in later)
    costs = [x["mean"] for x in later]
    rise, short = cell["updates", 300, 0.2, 5], cell["updates", 300, 0.4, 2]
    page += [
        f"Full run: {loops} loops ({cfg['n_mdps']} MDPs x {len(cfg['ns'])} n x {len(cfg['alphas'])} alpha)",
        f"the return rises from n = 2 to n = 5 ({_diff(rise['diff_prev'])} at 300 updates)",
        f"(n = 2: {_pm(short['normalized_return'], short['sem'])} after 300 updates",
        f"n = {best[0]}–{best[-1]} is best ({min(at300[n] for n in best):.2f}–{max(at300.values()):.2f})",
        f"every cell equal to two digits except n = 5 at 100 updates, "
        f"{cell['updates', 100, 0.2, 5]['normalized_return']:.3f} here",
        f"at 4000 steps the best n is {n_a} for alpha <= {cfg['alphas'][1]} ({a['normalized_return']:.2f}), "
        f"{n_c} for alpha = {cfg['alphas'][2]} ({_pm(c['normalized_return'], c['sem'])}) and {n_d} for "
        f"alpha = {cfg['alphas'][3]} ({_pm(d['normalized_return'], d['sem'])})",
        f"(alpha = 0.2: {', '.join(f'{x:+.2f}' for x in costs)}, each 95 % interval below 0)",
        f"No loop diverged in any of the {loops} (n, alpha, MDP) loops.",
    ]
    return {"docs/context-length.md": page}


def _regression_numbers(doc: dict) -> dict[str, list[str]]:
    """The findings of docs/regression.md, from the saved full run ``regression-full.json``: the
    least-squares check of Gamma, the population flows (12 configurations), the sampled slope and
    the trained stacks (losses and the per-layer structure); the reference cosines are computed
    from the run's own ``Lambda`` and N. Bounds are the extremes rounded outward."""
    import numpy as np

    g, runs = doc["gamma_check"], doc["configs"]
    err = {k: [r["flow_vs_target"] for r in runs if r["kappa"] == k] for k in (10.0, 100.0)}
    most = {
        key: _sci(_up(max(f(r) for r in runs), ".1e"))
        for key, f in (
            ("gap", lambda r: abs(r["loss_gap"])),
            ("subspace", lambda r: r["subspace_gap"]),
            ("rate", lambda r: abs(r["rate_ratio"] - 1)),
            ("drift", lambda r: r["conserved_drift"]),
            ("scale", lambda r: abs(r["c_final"] / r["c_pred"] - 1)),
        )
    }
    loss = {(t["L"], t["param"]): t["test_loss"] for t in doc["trained"]}
    as_pgd = {(t["L"], t["param"]): t["test_loss_as_pgd"] for t in doc["trained"]}
    sparse = [x for t in doc["trained"] if t["param"] == "sparse" for x in t["layers"]]
    full = [t["layers"] for t in doc["trained"] if t["param"] == "full"]
    inner = [x["norm_P_xrows"] for layers in full for x in layers[:-1]]  # "the first layers"
    cross = [x for layers in full for x in layers]
    spread = [x["spread_A_Lambda"] for x in sparse]
    asym = [x["asymmetry"] for x in sparse]
    (optimum,) = {t["one_layer_optimum"] for t in doc["trained"]}
    lam, n = np.array(doc["Lambda"]), doc["N"]
    gamma = (1 + 1 / n) * lam + np.trace(lam) / n * np.eye(len(lam))
    inv_g, inv_l, eye = np.linalg.inv(gamma), np.linalg.inv(lam), np.eye(len(lam))

    def cos(a, b):
        return f"{np.sum(a * b) / (np.linalg.norm(a) * np.linalg.norm(b)):.3f}"

    pl = [r["pl_min"] for r in runs]
    ratios = " and ".join(f"{loss[L, 'sparse'] / loss[L, 'full']:.0f}x" for L in (2, 3))
    page = [
        f"non-centrality `F delta^T V^{{-1}} delta` is {g['noncentrality_3pct']:.0f}, so the check misses "
        f"such an error with probability {_sci(g['miss_3pct'])}",
        f"(`T` = {g['wald']:.2f} <= {g['critical']:.2f}, the same as in the full run",
        f"equals `Gamma^{{-1}}` to {_sci(min(err[10.0]))} to {_sci(max(err[10.0]))} (kappa = 10) and "
        f"{_sci(min(err[100.0]))} to {_sci(max(err[100.0]))} (kappa = 100,",
        f"(|gap| <= {most['gap']} relative;",
        f"subspace gap <= {most['subspace']});",
        f"rate is the predicted `lambda_min^+` within {most['rate']} (relative); the (M3)-type quantity "
        f"drifts by at most {most['drift']} (absolute, from 0); and the limit's scale is the predicted "
        f"one to {most['scale']}.",
        f'is {min(pl):.2f} to {max(pl):.2f} (column "min PL ratio")',
        f"Least-squares slope of log RMS error against log F: **{doc['slope']:.3f}**",
        f"reference, cos(Gamma^{{-1}}, Lambda^{{-1}}) = {cos(inv_g, inv_l)}, cos(Gamma^{{-1}}, I) = "
        f"{cos(inv_g, eye)}, cos(Lambda^{{-1}}, I) = {cos(inv_l, eye)}",
        f"Both depths beat the one-layer optimum `L*` = {optimum:.4f} by a wide margin, and depth helps "
        f"(sparse: {loss[2, 'sparse']:.3f} at L = 2, {loss[3, 'sparse']:.3f} at L = 3).",
        f"spread is {min(spread):.1f} to {max(spread):.1f} (between 1 and 10), they are slightly "
        f"non-symmetric (asymmetry {min(asym):.2f} to {max(asym):.2f})",
        f"the trained stacks reach {loss[2, 'full']:.3f} (L = 2) and {loss[3, 'full']:.3f} (L = 3), "
        f"{ratios} below the sparse ones",
        f"raises the loss to {as_pgd[2, 'full']:#.2g} and {as_pgd[3, 'full']:#.2g}.",
        f"norm {min(inner):.1f} to {max(inner):.1f} in the first layers",
        f"(made at commit {doc['provenance']['git_commit'][:7]};",
        f"(`||P_l[d, :d]|| <= {_up(max(x['norm_p_x'] for x in cross), '.2f')}`, `||Q_l[d, :d]|| <= "
        f"{_up(max(x['norm_q21'] for x in cross), '.2f')}`)",
    ]
    return {"docs/regression.md": page}


def _minus(text: str) -> str:
    """The typographic minus sign of docs/experiments.md's [LL] findings."""
    return text.replace("-", "−")


def _two(x: float) -> str:
    """Two significant digits, trailing zero kept: 2.95 -> "3.0", 15.8 -> "16"."""
    return format(x, "#.2g").rstrip(".")


def _experiments_numbers(_doc: None) -> dict[str, list[str]]:
    """The training findings of docs/experiments.md, from the saved runs: the [LL] seeds
    (``training_seeds.json``), the invariant set (``training-random_small_seeds.json``, random start,
    and ``training-invariant_seeds.json``), the actor-critic (``training-actor_critic_seeds.json``)
    and task diversity by training at S = A = 3 (``training-diversity_*.json``) and at the [LL] size
    (``training-diversity-full_diversity_training.json``, ``returns_by_k-full.json``)."""
    ll, rnd = _saved("training_seeds.json")["rows"], _saved("training-random_small_seeds.json")["rows"]
    inv, ac = (
        _saved("training-invariant_seeds.json")["rows"],
        _saved("training-actor_critic_seeds.json")["rows"],
    )

    def each(rows, key, spec, sep=" / "):
        return sep.join(_sci(r[key], spec) for r in rows)

    def one_minus(rows, sep=", "):
        return sep.join(_sci(1 - r["cos"]) for r in rows)

    assert all(r["frozen_moved"] == 0.0 for r in ll + rnd + inv + ac)  # "moved: exactly 0.0"
    assert all(r["norm_P22"] == r["norm_Vbar22"] == 0.0 for r in inv)  # "stays on it exactly"
    p22 = sorted({f"{r['norm_P22']:.2f}" for r in ll})
    heldout_inv = [r["heldout_err"] for r in inv]
    (seed1,) = [r for r in ac if r["seed"] == 1]
    (on_set,) = {f"{r['cos_full']:.3f}" for r in inv}
    page = [
        f"`cos = {ll[0]['cos']:.13f}` (seed 0)",
        f"(`1 - cos` = {one_minus(ll)}),",
        f"the cosine is {each(ll, 'cos_full', '.3f')}, and over the four blocks the output reads "
        f"{each(ll, 'cos_readout', '.3f')}.",
        f"`|Vbar22|` = {each(ll, 'norm_Vbar22', '.2f')} never decays",
        f"`sym P22` decays slowly to {each(ll, 'norm_P22_sym', '.0e')}",
        f"`|P22|` stays {'–'.join(p22)})",
        f"Held-out relative error {each(ll, 'heldout_err', '.1e')}; with `P22` set to 0",
        f"it is {each(ll, 'heldout_err_no_cubic', '.1e')}, the level of the (M2) blocks' own orbit distance "
        f"({_sci(ll[0]['orbit_dist_rel'])} relative for seed 0)",
        f"the held-out error is {_sci(min(heldout_inv), '.0e')} to {_sci(max(heldout_inv), '.0e')}, "
        "float64 round-off",
        f"(`|Vbar22|` = {each(rnd, 'norm_Vbar22', '.2f')}), with held-out error "
        f"{each(rnd, 'heldout_err', '.1e')} "
        f"(the cubic term's share: {each(rnd[1:], 'heldout_err_no_cubic', '.1e')} without it for seeds 1, 2)",
        f"`cos_full` stays below 1 in both cases ({on_set} on the set)",
        f"(`1 - cos` = {one_minus(ac)}) and match the teacher on 50 held-out MDPs with fresh features "
        f"(relative error {each(ac, 'heldout_err', '.1e', ', ')};",
        f"(`|Vbar22|` = {_sci(seed1['norm_Vbar22'], '.0e')}, `|sym P22|` = {seed1['norm_P22_sym']:.2f}). "
        f"Over all entries `cos_full` = {each(ac, 'cos_full', '.3f')}.",
    ]
    # Task diversity by training at S = A = 3: every (seed, k, features) training and deployment.
    small = _saved("training-diversity_returns_by_k.json")
    trained = _saved("training-diversity_diversity_training.json")["rows"]
    group = {(g["k"], g["shared_features"]): g for g in small["groups"]}
    run = {(r["seed"], r["k"], r["shared_features"]): r for r in small["rows"]}
    teacher = small["normalized_return_teacher"]
    for k in (64, 256):
        rows = [r for r in small["rows"] if (r["k"], r["shared_features"]) == (k, False)]
        assert all(r["n_diverged"] == 0 and abs(r["normalized_return"] - teacher) < 1e-12 for r in rows)

    def err(k, shared=False, rows=trained):
        e = [r["heldout_err"] for r in rows if (r["k"], r["shared_features"]) == (k, shared)]
        return f"{_sci(min(e), '.0e')} to {_sci(max(e), '.0e')}"

    def pm(g, spec=".3f"):
        return (
            f"{g['normalized_return_converged_mean']:{spec}} ± {g['normalized_return_converged_sem']:{spec}}"
        )

    def div(g):
        return f"{g['n_diverged']}/{g['n_loops']}"

    shared = {k: g for (k, s), g in group.items() if s}
    best = max(shared.values(), key=lambda g: g["normalized_return_converged_mean"])
    top = [r for r in trained if (r["k"], r["shared_features"]) == (256, True)]
    stuck = [r for r in top if r["loss"] > 1e3 * min(x["loss"] for x in top)]
    per_seed = ", ".join(f"{run[s, 4, False]['n_diverged']}/{run[s, 4, False]['n_mdps']}" for s in (0, 1, 2))
    page += [
        f"the exact teacher on the same streams scores {teacher:.3f} ± "
        f"{small['normalized_return_teacher_sem']:.3f}",
        f"({teacher:.3f}, equal to the teacher's; held-out teacher-matching error {err(64)} at k = 64, "
        f"{err(256)} at k = 256), k = 16 is close ({pm(group[16, False])}), and k <= 4 fails: "
        f"{div(group[1, False])} (k = 1) and {div(group[4, False])} (k = 4) loops diverge and the others "
        f"score {group[1, False]['normalized_return_converged_mean']:.2f} and "
        f"{group[4, False]['normalized_return_converged_mean']:.2f}.",
        f"(best {pm(best)} at k = {best['k']}), and divergences appear at both ends: "
        + (f"{div(shared[1])} loops at k = 1 and at k = 4" if div(shared[1]) == div(shared[4]) else "")
        + f", and {div(shared[256])} at k = 256, where {['no', 'one', 'two', 'all'][len(stuck)]} of the "
        f"three seeds did not converge in training (loss {' and '.join(_sci(r['loss']) for r in stuck)}, "
        f"held-out error {' and '.join(_two(r['heldout_err']) for r in stuck)}:",
        f"(k = 4 resampled: {per_seed} diverged)",
    ]
    # The [LL]-sized sweep.
    big = _saved("returns_by_k-full.json")
    grown_doc = _saved("training-diversity-full_diversity_training.json")
    grown, trained_at = grown_doc["rows"], grown_doc["provenance"]["git_commit"]
    group = {(g["k"], g["shared_features"]): g for g in big["groups"]}
    run = {(r["seed"], r["k"], r["shared_features"]): r for r in big["rows"]}
    t, ts = big["normalized_return_teacher"], big["normalized_return_teacher_sem"]
    assert big["n_diverged_teacher"] == 0

    def scored(g):
        return f"{g['normalized_return_mean']:.3f} ± {g['normalized_return_clustered_sem']:.3f}"

    def vs(g):
        m = g["minus_teacher"]
        return f"{m['mean']:+.3f} [{m['ci_low']:+.3f}, {m['ci_high']:+.3f}]"

    def seeds(k, shared=False):
        return ", ".join(
            f"{run[s, k, shared]['n_diverged']}/{run[s, k, shared]['n_mdps']}" for s in (0, 1, 2)
        )

    free = [g for (k, s), g in group.items() if not s]
    assert [g["k"] for g in free if g["n_diverged"] == 0] == [256]  # "the only setting with no divergence"
    g64, g256, g16 = group[64, False], group[256, False], group[16, False]
    far = [r for r in grown if r["k"] in (64, 256)]
    lost = [r["loss"] for r in far if r["shared_features"]]
    kept = [r["loss"] for r in far if not r["shared_features"]]
    off = [r["heldout_err"] for r in far if r["shared_features"]]
    cos64 = [1 - r["cos"] for r in grown if (r["k"], r["shared_features"]) == (64, False)]
    err64 = [r["heldout_err"] for r in grown if (r["k"], r["shared_features"]) == (64, False)]
    page += [
        f"Run (2026-12-01, commit {trained_at[:7]},",
        f"The exact teacher on the same streams scores {t:.3f} ± {ts:.3f} (s.e.m., 20 MDPs, no loop "
        "diverged)",
        _minus(
            f"({div(g256)}, {scored(g256)} over MDPs; block - teacher {vs(g256)} paired over 20 MDPs: not "
            f"distinguishable from the teacher's {t:.3f}; per seed "
            + ", ".join(f"{run[s, 256, False]['normalized_return']:.3f}" for s in (0, 1, 2))
            + ")"
        ),
        f"(1 - cos {_sci(min(cos64), '.0e')} to {_sci(max(cos64), '.0e')}) but {div(g64)} loops diverge "
        f"({run[0, 64, False]['n_diverged']}/{run[0, 64, False]['n_mdps']} of them in seed 0)",
        _minus(f"it scores {scored(g64)}, below the teacher by {vs(g64)};"),
        f"teacher-matching error ({min(err64):.2f} to {max(err64):.2f})",
        _minus(f"k = 16: {div(g16)} diverged, {scored(g16)} ({vs(g16)})."),
        f"k <= 4 fails ({div(group[1, False])} and {div(group[4, False])} diverged; "
        f"{group[1, False]['normalized_return_mean']:.3f} and "
        f"{group[4, False]['normalized_return_mean']:.3f} counted).",
        f"(loss {_sci(min(lost), '.0e')} to {_sci(max(lost), '.0e')}, against {_sci(min(kept), '.0e')} to "
        f"{_sci(max(kept), '.0e')} with resampled features at the same k), the held-out error is "
        f"{min(off):.0f} to {max(off):.0f}, and {div(group[64, True])} (k = 64) and {div(group[256, True])} "
        "(k = 256) loops diverge",
        f"(k = 64 resampled: {seeds(64)} diverged)",
        f"(k = 1 resampled {seeds(1).split(', ')[0]}, was",
        f"k = 4 shared {seeds(4, True).split(', ')[0]}, was",
        f"k = 16 shared {seeds(16, True).split(', ')[0]}, was",
        f"k = 16 resampled {run[0, 16, False]['normalized_return']:.3f}, was",
    ]
    return {"docs/experiments.md": page}


def _results_numbers(_doc: None) -> dict[str, list[str]]:
    """The "Claims and where they are measured" summary of docs/results.md, from the saved results
    behind the pages it links (the same files as the formatters of those pages). The SARSA control
    return (0.936 +- 0.018 = teacher) is not checked: the control run is not saved in docs/figures/."""
    sa, ac = _saved("converge-sarsa.json"), _saved("converge-actor_critic.json")
    dq, df = _saved("diversity-quick.json")["rows"], _saved("diversity-full.json")["rows"]
    local = sa["runs"] + ac["runs"]
    sweep = [r for r in sa["radius_sweep"] + ac["radius_sweep"] if r["reached"]]
    near = min(r["pl_min_ratio"] for r in sweep if r["radius"] <= 3)
    stuck = min(r["radius"] for r in sa["radius_sweep"] + ac["radius_sweep"] if not r["reached"])
    kernels = {
        S: ", ".join(str(r["ker_dim"]) for r in rows if r["S"] == S and r["table"] == "M5")
        for S, rows in ((2, dq), (3, df))
    }
    (fewer,) = [r for r in df if r["ker_dim_threshold"] != r["ker_dim"]]
    small = [r["heldout_err"] for r in df if r["table"] == "d"]
    shared = [
        r["heldout_err"]
        for r in df
        if (r["S"], r["d"]) == (2, 4) and r["shared_features"] and r["table"] != "rank_bound"
    ]
    ll = _saved("training_seeds.json")["rows"]
    cos_full = " / ".join(f"{r['cos_full']:.3f}" for r in ll)
    variants = {r["algo"]: r for r in _saved("actor_critic_variants.json")["rows"]}
    small_k = {
        (g["k"], g["shared_features"]): g for g in _saved("training-diversity_returns_by_k.json")["groups"]
    }
    big = _saved("returns_by_k-full.json")
    big_k = {(g["k"], g["shared_features"]): g for g in big["groups"]}
    ic = {(r["L"], r["n"]): r for r in _saved("context-length_context_length_in-context.json")["rows"]}
    reg = _saved("regression-full.json")

    def div(g):
        return f"{g['n_diverged']}/{g['n_loops']}"

    def kept(g):
        return f"{g['n_loops'] - g['n_diverged']}/{g['n_loops']}"

    def vs(g):
        m = g["minus_teacher"]
        return f"{m['mean']:+.3f} [{m['ci_low']:+.3f}, {m['ci_high']:+.3f}]"

    def ret(r):
        return f"{r['normalized_return']:.3f} +- {r['normalized_return_sem']:.3f}"

    assert all(small_k[k, False]["n_diverged"] == 0 for k in (64, 256))  # "k >= 64 ... in 60/60 loops"
    on_shared = sorted((g for (k, s), g in big_k.items() if s), key=lambda g: g["n_diverged"])
    assert all(variants[a]["normalized_return"] == variants[a]["normalized_return_teacher"] for a in variants)
    n_ll = len(big["rows"]) * big["n_heldout"]
    g256, g64 = big_k[256, False], big_k[64, False]
    page = [
        f"PL ratio along every path >= {_down(min(r['pl_min_ratio'] for r in local), '.4f')} from radius <= "
        f"0.1 and >= {_down(near, '.4f')} from radius <= 3; spurious local minima from radius {stuck:g} on",
        f"Hessian kernels {kernels[2]} at S = A = 2, d = 4 and {kernels[3]} at S = A = 3, d = 9",
        f"where a 1e-13 threshold counts {fewer['ker_dim_threshold']} the certificate gives "
        f"{fewer['ker_dim']}",
        f"(held-out {_sci(min(small), '.0e')} to {_sci(max(small), '.0e')}); at d = \\|S\\|\\|A\\| shared "
        f"features cost {100 * min(shared):.0f}-{100 * max(shared):.0f} % (S = A = 2, d = 4)",
        f"1 - cos on (Vbar21, P12) {' / '.join(_sci(1 - r['cos']) for r in ll)}; over all entries of (P, V) "
        f"cos {cos_full}",
        f"state-value actor-critic {ret(variants['actor_critic'])} = teacher; action-value variant "
        f"{ret(variants['actor_critic_q'])}",
        f"resampled features k >= 64 equal the teacher in {kept(small_k[64, False])} loops, k = 1 / 4 "
        f"diverge in {div(small_k[1, False])} and {div(small_k[4, False])}",
        f"3 seeds, {n_ll} loops: resampled k = 256 {div(g256)} diverged, "
        f"{g256['normalized_return_mean']:.3f} +- {g256['normalized_return_clustered_sem']:.3f}, minus "
        f"teacher {vs(g256)} paired over 20 MDPs (teacher {big['normalized_return_teacher']:.3f}); k = 64 "
        f"{div(g64)} diverged, {vs(g64)}; k = 1 / 4: {div(big_k[1, False])} and {div(big_k[4, False])}; a "
        f"shared map diverges at every k ({div(on_shared[0])} to {div(on_shared[-1])};",
        f"return {ic[100, 5]['normalized_return']:.2f} -> {ic[100, 1280]['normalized_return']:.2f} from "
        f"n = 5 to 1280, value error {ic[100, 5]['value_error']:.2f} -> {ic[100, 1280]['value_error']:.2f}",
        f"flow limit = `Gamma^{{-1}}` to {_sci(max(r['flow_vs_target'] for r in reg['configs']))} "
        f"(population, {len(reg['configs'])} configurations); sampled error slope {reg['slope']:.3f} "
        "against F",
    ]
    return {"docs/results.md": page}


def _actor_critic_numbers(doc: dict) -> dict[str, list[str]]:
    """The (A6) prose of docs/actor-critic.md beside its tables, from actor_critic_variants.json: the
    action-value critic's residual TD error (largest, its MDP, the others) and step, the state-value
    step's mean angle to the policy gradient, and the round-off bounds of the saved steps."""
    import math

    rows = {r["algo"]: r for r in doc["rows"]}
    steps = [s for s in doc["expected_steps"] if s["algo"] == "actor_critic"]
    q = sorted(
        (s for s in doc["expected_steps"] if s["algo"] == "actor_critic_q"), key=lambda s: s["max_abs_delta"]
    )
    worst, rest = q[-1], q[:-1]
    v = rows["actor_critic"]
    bounds = [s[k] for s in steps for k in ("step_norm_roundoff", "cosine_roundoff")]
    angle = math.degrees(math.acos(v["cosine_mean"]))
    q_ret = rows["actor_critic_q"]
    prov = doc["provenance"]
    assert prov["blas_threads"] == 1
    page = [
        f"provenance: commit {prov['git_commit'][:7]}, seed {prov['seed']}, one BLAS thread; wall time "
        f"{doc['wall_time']:.0f} s",
        f"largest `|delta(s, a)|` is {_sci(worst['max_abs_delta'])}, on MDP {worst['mdp']},",
        f"at most {_sci(_up(max(s['max_abs_delta'] for s in rest), '.1e'))} on the other {len(rest)}; "
        "the step,",
        f"stays below {_sci(_up(max(s['step_norm'] for s in q), '.1e'))}).",
        f"the step points {angle:.0f} degrees from the policy gradient on average",
        f"{_sci(min(bounds))} to {_sci(max(bounds))} per MDP, {_sci(v['step_norm_mean_roundoff'])} and "
        f"{_sci(v['cosine_mean_roundoff'])} for the two means)",
        f"bit-identical to the actor-critic row of earlier versions ({q_ret['normalized_return']:.3f} +- "
        f"{q_ret['normalized_return_sem']:.3f})",
    ]
    return {"docs/actor-critic.md": page}


def _autoregressive_numbers(doc: dict) -> dict[str, list[str]]:
    """The (AR) answer of the README, from docs/figures/autoregressive-full.json."""
    g, dense = doc["gd_class"], doc["dense"]
    assert (doc["d"], doc["T"], doc["phase"]) == (2, 10, "random")
    assert dense["pushed"]["loss_final"] < dense["loss_final"] < g["loss_star"]  # a saddle below L*
    return {
        "README.md": [
            f"`c* = {g['c_star']:.12f}`, loss `L* = {g['loss_star']:.12f}`",
            f"the GD class goes lower ({g['loss_min_fixed_phase']:.6f})",
            f"the one-layer optimum on the invariant set is {doc['theta6']['loss_min']:.6f}",
            f"stops at a saddle ({dense['loss_final']:.6f})",
        ]
    }


_AD_AGENTS = {"source": "source", "ctx_all": "ctx-all", "ctx_last": "ctx-last", "ctx_src": "ctx-src"}


def _distill_numbers(doc: dict) -> dict[str, list[str]]:
    """The (AD3) table, paired intervals, every MDP's early and late returns and the exact rows of
    docs/distill.md, from docs/figures/distill-full.json (rounded to nearest: measured values)."""

    def iv(x):
        return f"{x[0]:+.3f} [{x[1]:+.3f}, {x[2]:+.3f}]"

    cfg, p, oc = doc["config"], doc["paired"], doc["order_change"]
    ks = [k for k in (1, 2, 5, 10, 20, 40) if k <= cfg["K"]]
    table = ["| agent / episode k | " + " | ".join(map(str, ks)) + " |"]
    for key, name in _AD_AGENTS.items():
        r = doc["agents"][key]["return_by_episode"]
        table.append(f"| {name} | " + " | ".join(f"{r[k - 1]:.3f}" for k in ks) + " |")
    paired = [
        f"ctx-all improves, {iv(p['ctx_all_late_minus_early'])}",
        f"ctx-last does not, {iv(p['ctx_last_late_minus_early'])}",
        f"ctx-all - ctx-last late {iv(p['ctx_all_minus_ctx_last_late'])}",
        f"the source improves too ({iv(p['source_late_minus_early'])})",
        f"ctx-all - source late {iv(p['ctx_all_minus_source_late'])}",
        f"ctx-all - ctx-src late {iv(p['ctx_all_minus_ctx_src_late'])}",
    ]
    ctx = [
        f"| {r['episodes']}{' (all)' if r['all'] else ''} | {r['late']:.3f} | {iv(r['late_minus_early'])} | "
        f"{iv(r['minus_ctx_last_late'])} |"
        for r in doc["by_context"]
    ]
    mdps = [
        f"| {m['mdp']} | "
        + " | ".join(f"{m['early'][a]:.3f} / {m['late'][a]:.3f}" for a in _AD_AGENTS)
        + " |"
        for m in doc["mdps"]
    ]
    rows = [f"| {r['claim']} | {r['check']} | {r['residual']:.2g} | {r['tol']:g} |" for r in doc["verify"]]
    order = [
        f"median {100 * oc['median']:.1f} %, {100 * oc['min']:.1f} % to {100 * oc['max']:.1f} %",
    ]
    masked, pooled, perm = (
        r["residual"] for r in doc["verify"][:5] if r["check"].startswith(("K ", "L ", "random"))
    )
    results = (
        f"masked stack = the source's w_(K+1) to {masked:.2g}, "
        f"unmasked stack = pooled SARSA to {pooled:.2g}, "
        f"permutation invariance of random dense stacks to {perm:.2g}; "
        f"the source moves by {order[0]} under a reordering of its episodes; "
        f"ctx-all improves {iv(p['ctx_all_late_minus_early'])}, "
        f"ctx-last does not {iv(p['ctx_last_late_minus_early'])}"
    )
    return {"docs/distill.md": table + paired + ctx + mdps + rows + order, "docs/results.md": [results]}


def _distill_train_numbers(doc: dict) -> dict[str, list[str]]:
    """(AD4)'s runs table, the constructed baselines and the held-out error by k of docs/distill.md,
    from docs/figures/distill-train-full.json (every run listed; rounded to nearest)."""

    def iv(x):
        return f"{x[0]:+.3f} [{x[1]:+.3f}, {x[2]:+.3f}]"

    runs = [
        f"| {r['k']} | {r['L']} | {'yes' if r['masked'] else 'no'} | {r['seed']} | {r['heldout_err']:.3g} | "
        f"{r['train_err']:.3g} | {r['cos_S3']:.4f} | {r['late_return']:.3f} | {iv(r['return_gain'])} | "
        f"{iv(r['source_gain'])} |"
        for r in doc["runs"]
    ]
    by_k = [
        f"| {r['k']} | {r['L']} | {'yes' if r['masked'] else 'no'} | {r['seed']} | "
        + " | ".join(f"{e:.3g}" for e in r["heldout_err_by_k"])
        + " |"
        for r in doc["runs"]
    ]
    base = [
        f"| constructed (S3), {'masked' if c['masked'] else 'unmasked'} | {c['heldout_err']:.3g} | "
        f"{c['step']} | {c['L']} |"
        for c in doc["constructed"]
    ]
    return {"docs/distill.md": runs + by_k + base}


def _distill_readme_numbers(doc: dict) -> dict[str, list[str]]:
    """The (AD) answer of the README, from docs/figures/distill-full.json."""
    cfg, p = doc["config"], doc["paired"]

    def ci(x):
        return f"{x[0]:+.3f} [{x[1]:+.3f}, {x[2]:+.3f}]"

    assert p["ctx_all_late_minus_early"][1] > 0 >= p["ctx_last_late_minus_early"][1]  # the claim
    return {
        "README.md": [
            f"{cfg['n_mdps']} held-out MDPs, {cfg['K']} episodes",
            f"spans all episodes ({ci(p['ctx_all_late_minus_early'])}",
            f"when it spans the last one ({ci(p['ctx_last_late_minus_early'])})",
        ]
    }


def _td_pretrain_numbers(doc: dict) -> dict[str, list[str]]:
    """The (WP2), (WP3) and (WP6) findings of docs/td-pretrain.md, from
    docs/figures/td-pretrain-full.json (bounds after "at most" / "at least" rounded outward)."""
    inv, st = doc["invariance"], doc["stationary"]
    small, large = st["sizes"]
    runs = doc["runs"]
    fresh = [r for r in runs if r["k"] == "fresh"]
    stuck = [r for r in fresh if r["dist_fix"] > 0.9]
    moved = [r for r in fresh if r["dist_fix"] <= 0.9]
    k64 = [r for r in runs if r["k"] == 64]
    low = [r for r in runs if r["k"] in (1, 4, 16)]
    assert (
        len(stuck) == 1
        and len(moved) == 2
        and min(b["b_star"] / b["b_star_sem"] for b in (small, large)) > 20
    )
    emerged = moved + k64
    share = [100 * (1 - r["dist_fix"] ** 2) for r in moved]
    worse = [r for r in low if r["heldout_value_err"] > 1]
    err = [r["heldout_value_err"] for r in emerged]

    def pct(rs):
        return f"{min(100 * r['dist_fix'] for r in rs):.0f} to {max(100 * r['dist_fix'] for r in rs):.0f} %"

    page = [
        f"`(a*, b*) = ({st['a_star']:.3f} ± {st['a_star_sem']:.3f}, "
        f"{st['b_star']:.3f} ± {st['b_star_sem']:.3f})`",
        f"{share[0]:.1f} and {share[1]:.1f} % of their squared norm in Fix(G) and "
        f"`(a, b) = ({moved[0]['ab'][0]:.3f}, {moved[0]['ab'][1]:.3f})` and "
        f"`({moved[1]['ab'][0]:.3f}, {moved[1]['ab'][1]:.3f})`",
        f"predicting zero in {len(worse)} of those {len(low)} runs",
        f"at most {_up(inv['outside_at_fix'], '.1e')} at the (W3) point",
        f"at least {_bound(inv['outside_off_fix'], '.3f', up=False)} at (W3) plus a perturbation",
        f"it is at least {_bound(inv['mutation_outside_at_fix'], '.2f', up=False)} at the same points",
        f"is at most {_up(inv['bound_at_fix'], '.1e')} relative at those points",
        f"(at most {_up(inv['bound_off_fix'], '.1e')})",
        f"at d = 3 our b* is `{small['b_star']:.3f} ± {small['b_star_sem']:.3f}`",
        f"sits {small['z_vs_theory'][1]:.1f} standard errors of the difference below it",
        f"Their b ends at {min(r['ab'][1] for r in emerged):.3f} to {max(r['ab'][1] for r in emerged):.3f}",
        f"Their held-out error is {min(err):.3f} to {max(err):.3f}: "
        f"about {100 * (1 - sum(err) / len(err)):.0f} % better",
        f"{pct(moved)} of the norm for fresh tasks, {pct(k64)} for k = 64",
        f"with held-out error {stuck[0]['heldout_value_err']:.3f}",
        f"held in {len(moved)} of {len(fresh)} seeds",
        f"at most {_up(max(100 * (1 - r['dist_fix'] ** 2) for r in low), '.0f')} % of the norm inside",
        f"above 1 in {len(worse)} of the {len(low)} runs: "
        f"up to {_up(max(r['heldout_value_err'] for r in low), '.3f')}",
    ]
    return {"docs/td-pretrain.md": page}


def _td_pretrain_l3_numbers(doc: dict) -> dict[str, list[str]]:
    """The L = 3 findings of docs/td-pretrain.md, from docs/figures/td-pretrain-L3.json."""
    assert doc["config"]["L"] == 3
    runs = doc["runs"]
    fresh = [r for r in runs if r["k"] == "fresh"]
    k64 = [r for r in runs if r["k"] == 64]

    def share(rs):
        v = [100 * (1 - r["dist_fix"] ** 2) for r in rs]
        return f"{min(v):.0f} to {max(v):.0f} %"

    def err(rs):
        v = [r["heldout_value_err"] for r in rs]
        return f"{min(v):.3f} to {max(v):.3f}"

    worst = max(r["heldout_value_err"] for r in runs if r["k"] == 1)
    page = [
        f"{share(fresh)} of the norm is in Fix after 10 000 Adam steps",
        f"{share(k64)} of the norm in Fix, and the best held-out error, {err(k64)}",
        f"The fresh-task runs reach {err(fresh)}.",
        f"the held-out error of one seed is {worst:.3f}",
    ]
    return {"docs/td-pretrain.md": page}


def _attention_numbers(doc: dict) -> dict[str, list[str]]:
    """The findings of docs/attention.md and the README's answer, from docs/figures/attention-sarsa.json:
    per model the median (range over the seeds) of the held-out error and of the structure metrics, and the
    held-out error of the centred TD update (the two-head softmax limit of (S3))."""
    S = {(r["attention"], r["heads"]): r for r in doc["summary"]}
    C = {r["key"]: r for r in doc["construction"]["rows"]}

    def med(a, h, m, spec=".3g"):
        r = S[(a, h)]
        return f"{r[m]:{spec}} ({r[m + '_min']:{spec}} to {r[m + '_max']:{spec}})"

    assert doc["all_listed"] and sum(r["diverged"] for r in doc["runs"]) == 0  # "none did"
    page = [
        f"one linear head reaches {med('linear', 1, 'heldout_err')}",
        f"one softmax head {med('softmax', 1, 'heldout_err')}",
        f"one relu head {med('relu', 1, 'heldout_err')}",
        f"two relu heads reach {med('relu', 2, 'heldout_err')}",
        f"operator cosine {med('relu', 2, 'op_cos', '.4f')}",
        f"two softmax heads reach {med('softmax', 2, 'heldout_err')}",
        f"update correlation {med('softmax', 2, 'update_corr', '.4f')}",
        f"centred TD update scores {C['centred']['heldout_err']:.3f}",
        f"attention entropy {med('softmax', 2, 'attn_entropy', '.3f')}",
        f"one head: {med('softmax', 1, 'attn_entropy', '.3f')}",
    ]
    readme = page[:4] + [f"two softmax heads reach {med('softmax', 2, 'heldout_err')}, not the teacher"]
    return {"docs/attention.md": page, "README.md": readme}


def _td_pretrain_readme_numbers(doc: dict) -> dict[str, list[str]]:
    """The (WP) answer of the README, from docs/figures/td-pretrain-full.json: a run "goes there"
    when it entered Fix(G), ``dist_fix <= 0.5`` (the saved runs split at 0.37 / 0.79: every run is
    on one side, far from the line), "no run enters" when none did."""
    large = doc["stationary"]["sizes"][1]
    assert (large["d"], large["n"]) == (4, 30) and large["flow"]["reaches_theta_star"]
    sem = max(large["a_star_sem"], large["b_star_sem"])  # "+- x each": a standard error at most x
    runs = doc["runs"]

    def entered(k):
        rs = [r for r in runs if r["k"] == k]
        return f"{sum(r['dist_fix'] <= 0.5 for r in rs)} of {len(rs)}"

    assert all(abs(r["dist_fix"] - 0.5) > 0.1 for r in runs)  # the split is not decided near the line
    assert all(r["dist_fix"] > 0.5 for r in runs if r["k"] in (1, 4, 16))  # "no run enters"
    return {
        "README.md": [
            f"`(a*, b*) = ({large['a_star']:.3f}, {large['b_star']:.3f})` (+- {_up(sem, '.3f')} each)",
            f"fresh tasks in {entered('fresh')} seeds and with k = 64 tasks in {entered(64)}",
        ]
    }


def _regression_attention_numbers(doc: dict) -> dict[str, list[str]]:
    """The findings of docs/regression.md's attention section, from the saved study
    ``regression-attention.json``: mean held-out losses over the seeds, their ratios to the trained
    linear stack's, the constructions, and the head structure of the two-head relu and softmax runs
    (cosines between the heads' matrices). Ranges are the extremes rounded outward."""
    import numpy as np

    runs = doc["runs"]
    Lstar = doc["one_layer_optimum"]

    def sel(L, param, att, H):
        return [r for r in runs if (r["L"], r["param"], r["attention"], r["heads"]) == (L, param, att, H)]

    def avg(L, param, att, H):
        return float(np.mean([r["test_loss"] for r in sel(L, param, att, H) if not r["diverged"]]))

    def mean(L, param, att, H):
        return f"{avg(L, param, att, H):.3f}"

    def rng(xs):
        return f"{_down(min(xs), '.2f')} to {_up(max(xs), '.2f')}"

    def cos(a, b):
        a, b = np.asarray(a), np.asarray(b)
        return float(np.sum(a * b) / np.linalg.norm(a) / np.linalg.norm(b))

    def head_cos(att, which, sign):
        pairs = [r["layers"][0]["heads"] for r in sel(1, "full", att, 2)]
        return rng([cos(h[0][which], sign * np.asarray(h[1][which])) for h in pairs])

    def ratios(L, variants):
        xs = [avg(L, "full", a, h) / avg(L, "full", "linear", 1) for a, h in variants]
        return f"{_down(min(xs), '.1f')} to {_up(max(xs), '.1f')}"

    nonlin = [("softmax", 1), ("softmax", 2), ("relu", 1), ("relu", 2)]
    lin = sel(1, "full", "linear", 1)
    two_lin = sel(1, "full", "linear", 2)
    sm2 = [r for h in (1, 2) for r in sel(2, "full", "softmax", h)]
    con = [c["test_loss"] for c in doc["constructed"]]
    return {
        "docs/regression.md": [
            f"one-head linear stack reaches {mean(1, 'full', 'linear', 1)}",
            f"L* = {Lstar:.4f}",
            f"(R3) layer of `Gamma^{{-1}}` itself scores {con[0]:.3f} on these prompts",
            f"cosine with `Gamma^{{-1}}` {rng([r['layers'][0]['cos_Gamma_inv'] for r in lin])}",
            f"one softmax head ends at {mean(1, 'full', 'softmax', 1)}",
            f"the softmax head with the construction's `(P, Q)` scores {con[4]:.3f}",
            f"two softmax heads end at {mean(1, 'full', 'softmax', 2)}",
            f"two softmax heads can reach {con[2]:.3f}",
            f"`cos(P_1, -P_2)` {head_cos('softmax', 'P', -1)}",
            f"`cos(Q_1, Q_2)` {head_cos('softmax', 'Q', 1)}",
            f"one relu head ends at {mean(1, 'full', 'relu', 1)}, two at {mean(1, 'full', 'relu', 2)}",
            f"their `cos(Q_1, Q_2)` is {head_cos('relu', 'Q', 1)}",
            f"two linear heads end at {mean(1, 'full', 'linear', 2)}",
            f"linear {mean(2, 'full', 'linear', 1)}, two linear heads {mean(2, 'full', 'linear', 2)}, "
            f"softmax {mean(2, 'full', 'softmax', 1)}, two softmax heads {mean(2, 'full', 'softmax', 2)}, "
            f"relu {mean(2, 'full', 'relu', 1)}",
            f"linear {mean(1, 'sparse', 'linear', 1)}, softmax {mean(1, 'sparse', 'softmax', 1)}, "
            f"relu {mean(1, 'sparse', 'relu', 1)}",
            f"{doc['n_diverged']} of {len(runs)} runs diverged",
            "(R3) share is at least "
            f"{_down(min(r['layers'][0]['r3_fraction'] for r in lin + sel(1, 'full', 'softmax', 1)), '.2f')}",
            f"score spread {rng([r['score_spread'] for r in sel(1, 'full', 'softmax', 1)])}",
            f"below one head in {sum(a['test_loss'] < a['linear_test_loss'] for a in two_lin)} "
            f"of {len(two_lin)} seeds",
            f"{sum(r['wall_time'] for r in runs) / 60:.0f} min of training on two shared cores",
            f"{ratios(1, nonlin)} times the trained linear block's loss at L = 1",
            f"{ratios(2, nonlin[:3])} times at L = 2",
            f"{Lstar / avg(2, 'full', 'linear', 1):.1f} times below L*",
            f"{sum(r['test_loss'] > Lstar for r in sm2)} of {len(sm2)} softmax runs above it",
            f"{sum(r['test_loss'] > Lstar for r in sel(2, 'full', 'relu', 1))} of "
            f"{len(sel(2, 'full', 'relu', 1))} relu runs above it",
        ]
    }


#: (saved result in docs/figures/ or None, the function that formats the prose from it).
def _pretrain_attention_numbers(doc: dict) -> dict[str, list[str]]:
    """docs/pretraining.md's table of the sampled (P2)/(P1) comparison with heads and attention
    functions (every run of docs/figures/pretrain-attention.json, a row each) and its counts: runs
    whose paired 95 % interval of (P2) minus its start, resp. minus (P1), lies above / below 0."""
    from lsa_theory.experiments.tables import TABLES

    runs = doc["runs"]
    n = len(runs)
    up = sum(r["rl-initial"]["ci_low"] > 0 for r in runs)
    down = sum(r["rl-initial"]["ci_high"] < 0 for r in runs)
    above = sum(r["rl-teacher"]["ci_low"] > 0 for r in runs)
    below = sum(r["rl-teacher"]["ci_high"] < 0 for r in runs)
    return {
        "docs/pretraining.md": TABLES["pretrain-sampled"](doc).splitlines()[2:]
        + [
            f"(P2) is above its start in {up} of {n} runs and below it in {down}",
            f"above (P1) in {above} of {n} and below (P1) in {below}",
        ]
    }


def _probe_rows(doc: dict) -> list[str]:
    """docs/pretraining.md's rows of the sampled (P2) budget probes
    (docs/figures/pretrain-sampled-probes.json)."""
    rows = []
    for r in doc["probes"]:
        cfg = ", ".join(f"{k} {v}" for k, v in r["cfg"].items() if k not in ("attention", "seed"))
        o, d, rd = r["obj_start"], r["obj_end"], r["ret_diff"]
        rows.append(
            f"| {r['cfg']['attention']} | {cfg} | {r['samples']} | {r['train_time']:.0f} | "
            f"{o[0]:+.3f} -> {d[0]:+.3f} | {r['obj_diff']['mean']:+.3f} ± {r['obj_diff']['sem']:.3f} "
            f"({r['eval_mdps']} x {r['eval_samples']}) | "
            f"{r['ret_start'][0]:+.3f} -> {r['ret_end'][0]:+.3f} | "
            f"{rd['mean']:+.3f} [{rd['ci_low']:+.3f}, {rd['ci_high']:+.3f}] |"
        )
    return rows


def _pretrain_heads_numbers(doc: dict) -> dict[str, list[str]]:
    """docs/pretraining.md's table of the comparison with what trains (every run of
    docs/figures/pretrain-heads.json, a row each), its counts per route, and the probe rows."""
    from lsa_theory.experiments.tables import TABLES

    counts = []
    for route in ("exact", "sampled"):
        runs = [r for r in doc["runs"] if r["route"] == route]
        up = sum(r["rl-initial"]["ci_low"] > 0 for r in runs)
        above = sum(r["rl-teacher"]["ci_low"] > 0 for r in runs)
        below = sum(r["rl-teacher"]["ci_high"] < 0 for r in runs)
        counts.append(
            f"{route} (P2): above its start in {up} of {len(runs)} runs, "
            f"above (P1) in {above}, below (P1) in {below}"
        )
    objectives = [
        f"{r['attention']} x {r['heads']} seed {r['seed']}: "
        f"{r['rl']['objective_first']:+.3f} -> {r['rl']['objective_last']:+.3f}"
        for r in doc["runs"]
    ]
    probes = json.loads((ROOT / "docs" / "figures" / "pretrain-sampled-probes.json").read_text())
    return {
        "docs/pretraining.md": TABLES["pretrain-sampled"](doc).splitlines()[2:]
        + counts
        + objectives
        + _probe_rows(probes)
    }


def _depth_full_numbers(doc: dict) -> dict[str, list[str]]:
    """The findings of docs/depth.md's full default run, from docs/figures/depth-full.json: the full
    parameterisation against the sparse stack and tuned pgd at L = 2, its divergences from L = 3 on
    (every run kept), and the Boyan task law's spread at n = 20."""
    reg = doc["regression"]
    S = {(r["study"], r["L"], r["N"], r["param"]): r for r in reg["summary"]}
    B = {(r["study"], r["L"], r["N"], r["method"]): r for r in reg["baselines"]}
    N = doc["config"]["reg_N"]
    deep = [r for r in reg["runs"] if r["param"] == "full" and r["L"] >= 3]
    kept = [r for r in deep if not r["diverged"]]
    td = doc["td"]
    boyan = [r["mean"] for r in td["summary"] if r["kind"] == "boyan" and r["diverged"] == 0]
    boyan += [
        r["heldout_err"]
        for r in td["baselines"]
        if r["kind"] == "boyan" and r["n"] == doc["config"]["td_n"] and r["heldout_err"] is not None
    ]
    assert all(r["diverged"] == 0 for r in td["summary"] if r["kind"] == "boyan")  # "no Boyan run diverged"
    assert all(S[("L", L, N, "sparse")]["diverged"] == 0 for L in doc["config"]["reg_layers"])
    page = [
        f"at L = 2 the full stack reaches {S[('L', 2, N, 'full')]['mean']:.4f} (mean of 3 seeds), against "
        f"{S[('L', 2, N, 'sparse')]['mean']:.4f} for the sparse stack and "
        f"{B[('L', 2, N, 'pgd')]['heldout_loss']:.4f} for tuned pgd",
        f"{len(deep) - len(kept)} of the {len(deep)} full stacks with L >= 3 diverged",
        "the others end at " + ", ".join(f"{r['heldout_loss']:.3f} (L = {r['L']})" for r in kept),
        f"every method's held-out error at n = {doc['config']['td_n']} lies between {min(boyan):.2f} and "
        f"{max(boyan):.2f}",
    ]
    gap = S[("L", 2, N, "sparse")]["mean"] / B[("L", 2, N, "pgd")]["heldout_loss"] - 1
    readme = page[:2] + [f"stack, {100 * gap:.0f} % above tuned pgd at L = 2"]
    return {"docs/depth.md": page, "README.md": readme}


PROSE_NUMBERS = [
    ("returns_by_k-full.json", _m7_numbers),
    ("pretrain-seeds.json", _p3_numbers),
    (None, _horizon_numbers),
    (None, _fuzz_numbers),
    (None, _dynamics_numbers),
    (None, _context_length_numbers),
    ("regression-full.json", _regression_numbers),
    (None, _experiments_numbers),
    (None, _results_numbers),
    ("actor_critic_variants.json", _actor_critic_numbers),
    ("autoregressive-full.json", _autoregressive_numbers),
    ("distill-full.json", _distill_numbers),
    ("distill-train-full.json", _distill_train_numbers),
    ("distill-full.json", _distill_readme_numbers),
    ("td-pretrain-full.json", _td_pretrain_numbers),
    ("td-pretrain-L3.json", _td_pretrain_l3_numbers),
    ("td-pretrain-full.json", _td_pretrain_readme_numbers),
    ("attention-sarsa.json", _attention_numbers),
    ("regression-attention.json", _regression_attention_numbers),
    ("pretrain-attention.json", _pretrain_attention_numbers),
    ("pretrain-heads.json", _pretrain_heads_numbers),
    ("depth-full.json", _depth_full_numbers),
]


@pytest.mark.parametrize(
    "result, numbers",
    PROSE_NUMBERS,
    ids=[
        "m7",
        "p3",
        "p3-horizon",
        "fuzzcounts",
        "dynamics",
        "context-length",
        "regression",
        "experiments",
        "results",
        "actor-critic",
        "autoregressive",
        "distill",
        "distill-train",
        "distill-readme",
        "td-pretrain",
        "td-pretrain-L3",
        "td-pretrain-readme",
        "attention",
        "regression-attention",
        "pretrain-attention",
        "pretrain-heads",
        "depth-full",
    ],
)
def test_prose_numbers_are_the_saved_results(result, numbers, monkeypatch):
    """Headline numbers quoted in prose (the README's answers, the short answers and findings of the
    pages, the fuzz counts) are formatted from the saved results and must appear as such: retyping
    one, or a saved result that changes, fails here. A number the prose states as a bound ("at
    most", "<=", "within", "below", "at least") is the measured extreme rounded outward
    (:func:`_bound`), so that the printed bound holds; every other number is rounded to nearest."""
    monkeypatch.syspath_prepend(str(ROOT / "tests"))
    doc = json.loads((ROOT / "docs" / "figures" / result).read_text()) if result else None
    missing = []
    for page, snippets in numbers(doc).items():
        text = _flat((ROOT / page).read_text())
        missing += [f"{page}: {snippet!r}" for snippet in snippets if _flat(snippet) not in text]
    assert not missing, "pages that do not quote, from the saved result:\n" + "\n".join(missing)
