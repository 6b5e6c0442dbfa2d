"""Where the package's sources are, for the tests that read them: each installed package and its
folder (``pyproject.toml``'s package-dir), innermost layer first (imports go outward only)."""

from __future__ import annotations

import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]

#: The layers, innermost first: package -> its folder at the repository's root.
LAYERS = {"lsa_theory": "lsa_theory", "lsa_theory.constructions": "constructions"}
LAYERS |= {"lsa_theory.dynamics": "dynamics", "lsa_theory.experiments": "experiments"}
LAYERS |= {"lsa_theory.cli": "cli"}


def layer_of(module: str) -> str | None:
    """The layer (a key of :data:`LAYERS`) a dotted module name belongs to, or ``None``."""
    return max((p for p in LAYERS if module == p or module.startswith(p + ".")), key=len, default=None)


def module_file(module: str, root: pathlib.Path = ROOT) -> pathlib.Path:
    """The source of a dotted module name (its ``__init__.py`` for a package); it may not exist."""
    layer = layer_of(module)
    if layer is None:
        return root / (module.replace(".", "/") + ".py")
    rest = module[len(layer) :].lstrip(".")
    base = root / LAYERS[layer] / rest.replace(".", "/") if rest else root / LAYERS[layer]
    return base / "__init__.py" if base.is_dir() else base.with_suffix(".py")


def modules(root: pathlib.Path = ROOT) -> dict[str, pathlib.Path]:
    """Every module of every layer under ``root``: dotted name -> file."""
    mods = {}
    for package, folder in LAYERS.items():
        for f in sorted((root / folder).rglob("*.py")):
            parts = [package, *f.relative_to(root / folder).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts = parts[:-1]
            mods[".".join(parts)] = f
    return mods


#: The packages whose public face (``__all__``) is snapshot and documented name by name.
FACES = ("lsa_theory", "lsa_theory.constructions", "lsa_theory.dynamics")
