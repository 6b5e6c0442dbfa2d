"""Griffe extension for the docs site (mkdocs.yml): the package's docstrings are reST-ish, this
turns them into the Markdown + arithmatex math that mkdocstrings renders.

- ``:math:`x``` -> ``$x$`` (inline math); a ``.. math::`` directive (one line, or an indented
  block after it) -> a ``$$ ... $$`` display block;
- the roles ``:func:``, ``:class:``, ``:meth:``, ``:mod:``, ``:data:``, ``:attr:`` -> inline code
  (``~a.b`` keeps the last part, as in Sphinx);
- a ``#:`` comment block right above a module-level or class-level assignment becomes that
  attribute's docstring (Sphinx's autodoc convention, which the package uses for its constants).

It changes only what the site shows, never the package; it runs at ``mkdocs build`` time. It also
logs a warning (which fails ``mkdocs build --strict``) for every public name of a package's
``__all__``, and every public module, that has no docstring (``tests/test_docs.py`` checks the same
without building).
"""

from __future__ import annotations

import ast
import functools
import re

import griffe

ROLE = re.compile(r":(?:func|class|meth|mod|data|attr|obj|exc):`~?([^`]+)`")
MATH_ROLE = re.compile(r":math:`([^`]+)`")
MATH_DIRECTIVE = re.compile(r"^(?P<indent>[ \t]*)\.\. math::[ \t]*(?P<inline>.*)$")


def _role(match: re.Match) -> str:
    text = match.group(0)
    target = match.group(1)
    if ":`~" in text:
        target = target.rsplit(".", 1)[-1]
    return f"`{target}`"


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _math_blocks(text: str) -> str:
    """Each ``.. math::`` directive (and its indented body) -> ``$$ ... $$`` on lines of its own."""
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        m = MATH_DIRECTIVE.match(lines[i])
        if not m:
            out.append(lines[i])
            i += 1
            continue
        indent = m.group("indent")
        body = [m.group("inline")] if m.group("inline").strip() else []
        i += 1
        while i < len(lines) and (not lines[i].strip() or _indent(lines[i]) > len(indent)):
            body.append(lines[i].strip())
            i += 1
        while body and not body[-1]:
            body.pop()
        body = [b for b in body if b]
        out += ["", f"{indent}$$", *(f"{indent}{b}" for b in body), f"{indent}$$", ""]
    return "\n".join(out)


def rest_to_markdown(text: str) -> str:
    """The Markdown + arithmatex form of a reST-ish docstring (see the module docstring)."""
    text = _math_blocks(text)
    text = MATH_ROLE.sub(lambda m: f"${m.group(1)}$", text)
    return ROLE.sub(_role, text)


@functools.cache
def _source_lines(path) -> list[str]:
    """The lines of a source file, read once per build (every undocumented attribute looks above it)."""
    return path.read_text().splitlines()


def _comment_above(lines: list[str], lineno: int) -> str | None:
    """The ``#:`` comment block ending on the line above ``lineno`` (1-based), or None."""
    block: list[str] = []
    i = lineno - 2
    while i >= 0 and lines[i].strip().startswith("#:"):
        block.insert(0, lines[i].strip()[2:].strip())
        i -= 1
    return " ".join(block) if block else None


def _public_modules(module: griffe.Module):
    """``module`` and its submodules, recursively, without those whose name starts with ``_``."""
    yield module
    for name, member in module.members.items():
        if not name.startswith("_") and not member.is_alias and member.is_module:
            yield from _public_modules(member)


class RestToMarkdown(griffe.Extension):
    """Rewrite every docstring as Markdown with math, give ``#:``-documented attributes their
    comment as docstring, and warn about public names and modules without a docstring."""

    def on_package(self, *, pkg: griffe.Module, **kwargs) -> None:
        for module in _public_modules(pkg):
            if not (module.docstring and module.docstring.value.strip()):
                griffe.logger.warning(f"{module.path}: public module without a docstring")
        for name in pkg.exports or ():
            try:
                obj = pkg[name]
                doc = obj.docstring
            except (KeyError, griffe.AliasResolutionError, griffe.CyclicAliasError):
                continue
            if not (doc and doc.value.strip()):
                griffe.logger.warning(f"{pkg.path}.{name}: public name of __all__ without a docstring")

    def on_instance(self, *, node: ast.AST | griffe.ObjectNode, obj: griffe.Object, agent, **kwargs) -> None:
        if obj.is_alias:
            return
        if obj.docstring is None and obj.is_attribute and isinstance(node, ast.AST) and obj.lineno:
            try:
                lines = _source_lines(obj.parent.filepath) if obj.parent else []
            except (OSError, AttributeError):
                lines = []
            comment = _comment_above(lines, obj.lineno)
            if comment:
                obj.docstring = griffe.Docstring(comment, lineno=obj.lineno, parent=obj)
        if obj.docstring is not None:
            obj.docstring.value = rest_to_markdown(obj.docstring.value)
