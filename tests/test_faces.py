"""Snapshot of the public faces: every name in each package's ``__all__``, with its kind and, for
callables, its signature (``tests/faces.json``). A change of a public face fails here until the
snapshot is updated on purpose (``python tests/test_faces.py --update``) and the change is named
in ``CHANGELOG.md``. ``import lsa_theory as lt`` must keep its names: ``lsa_theory``'s snapshot may
only grow."""

from __future__ import annotations

import importlib
import inspect
import json
import re
import sys
from pathlib import Path

from layout import FACES

SNAPSHOT = Path(__file__).with_name("faces.json")


def _describe(obj) -> str:
    kind = "class" if inspect.isclass(obj) else "function" if callable(obj) else type(obj).__name__
    if callable(obj):
        try:
            return re.sub(r" at 0x[0-9a-f]+", "", f"{kind} {inspect.signature(obj)}")  # no addresses
        except (TypeError, ValueError):
            return kind
    return kind


def faces() -> dict[str, dict[str, str]]:
    out = {}
    for name in FACES:
        mod = importlib.import_module(name)
        out[name] = {k: _describe(getattr(mod, k)) for k in sorted(mod.__all__)}
    return out


def test_every_name_in_all_exists():
    for name in FACES:
        mod = importlib.import_module(name)
        assert len(set(mod.__all__)) == len(mod.__all__), name
        missing = [k for k in mod.__all__ if not hasattr(mod, k)]
        assert not missing, (name, missing)


def test_public_faces_match_the_snapshot():
    saved, now = json.loads(SNAPSHOT.read_text()), faces()
    diff = []
    for face in FACES:
        a, b = saved.get(face, {}), now[face]
        diff += [f"{face}.{k}: removed" for k in sorted(set(a) - set(b))]
        diff += [f"{face}.{k}: added" for k in sorted(set(b) - set(a))]
        diff += [f"{face}.{k}: {a[k]} -> {b[k]}" for k in sorted(set(a) & set(b)) if a[k] != b[k]]
    hint = "public faces changed (update with `python tests/test_faces.py --update`):"
    assert not diff, "\n".join([hint, *diff])


def test_lsa_theory_keeps_every_name():
    saved = json.loads(SNAPSHOT.read_text())["lsa_theory"]
    import lsa_theory

    assert not sorted(set(saved) - set(lsa_theory.__all__))


if __name__ == "__main__" and sys.argv[1:] == ["--update"]:
    SNAPSHOT.write_text(json.dumps(faces(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {SNAPSHOT}")
