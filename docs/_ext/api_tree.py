"""mkdocs hook: the package tree as installed, for the API reference.

``pyproject.toml`` installs the folders at the repository's root (``lsa_theory/``,
``constructions/``, ``dynamics/``, ``experiments/``, ``cli/``) as ``lsa_theory`` and its
subpackages (setuptools' package-dir). griffe, which reads the sources behind the API pages,
finds a subpackage only inside its parent's folder, so before the build this hook copies the
``.py`` sources into ``build/api-src/`` laid out as installed (``lsa_theory/constructions/...``);
``mkdocs.yml`` points mkdocstrings there. Nothing is imported."""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

from mkdocs.plugins import event_priority

ROOT = Path(__file__).resolve().parents[2]
TREE = ROOT / "build" / "api-src"


def installed_tree(root: Path = ROOT, tree: Path = TREE) -> Path:
    """Copy every package of ``pyproject.toml`` to ``tree`` at its installed path; returns ``tree``."""
    conf = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]
    mapping = conf.get("package-dir", {})
    shutil.rmtree(tree, ignore_errors=True)
    for package in conf["packages"]:
        parent = max(
            (p for p in mapping if package == p or package.startswith(p + ".")), key=len, default=None
        )
        if parent is None:
            source = root / package.replace(".", "/")
        else:
            rest = package[len(parent) :].lstrip(".")
            source = root / mapping[parent] / rest.replace(".", "/")
        target = tree / package.replace(".", "/")
        target.mkdir(parents=True, exist_ok=True)
        for f in source.glob("*.py"):
            shutil.copy2(f, target / f.name)
    return tree


@event_priority(100)  # before mkdocstrings reads its search paths
def on_config(config, **kwargs):
    installed_tree()
    return config
