"""A griffe extension for the API reference: Sphinx roles in docstrings become cross-references.

The provider's docstrings use Sphinx roles (``:class:`SppHook```, ``:meth:`~SppHook.close```), as the
official Airflow providers' do, so they read the same in an IDE and in Airflow's own Sphinx docs.
mkdocstrings would show them raw; this extension rewrites each role, once the package is loaded, into
an mkdocs-autorefs reference: a link to the object's entry when the reference shows it, else the name
as code. Like Sphinx: ``~`` shows only the last part, ``title <target>`` shows the title, a function or
method gets ``()``. A target is looked up from the docstring's object outwards (class, module, package),
so a relative name links like Sphinx's Python domain resolves it.
"""

from __future__ import annotations

import html
import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:py:)?(?P<role>class|meth|func|attr|mod|data|exc|obj|const|ref):`(?P<body>[^`]+)`")
CALLABLE_ROLES = ("meth", "func")


def _resolve(obj: Any, target: str) -> str:
    """The documented path of ``target`` as seen from ``obj``; the target itself when it is not in the package."""
    name = target.lstrip(".")
    root = obj.package
    if name == root.name or name.startswith(root.name + "."):
        name = name[len(root.name) + 1 :]
        scope = root
    else:
        scope = obj
    while scope is not None:
        try:
            found = scope[name] if name else scope
        except (KeyError, ValueError, griffe.AliasResolutionError, griffe.CyclicAliasError):
            scope = scope.parent
            continue
        try:
            return str(found.final_target.path if found.is_alias else found.path)
        except (griffe.AliasResolutionError, griffe.CyclicAliasError):
            return str(found.target_path if found.is_alias else found.path)
    return target.lstrip("~.")


def _reference(obj: Any, match: re.Match[str]) -> str:
    """One role as an optional autoref: a link when the target has an entry, plain code otherwise."""
    body = match["body"].strip()
    titled = re.fullmatch(r"(?P<title>.+?)\s*<(?P<target>[^>]+)>", body)
    if titled:
        title, target = titled["title"], titled["target"]
    else:
        target = body
        title = body.lstrip("~.").rsplit(".", 1)[-1] if body.startswith("~") else body.lstrip(".")
        if match["role"] in CALLABLE_ROLES:
            title += "()"
    identifier = _resolve(obj, target.lstrip("~"))
    return f'<autoref identifier="{html.escape(identifier)}" optional><code>{html.escape(title)}</code></autoref>'


class SphinxRoles(griffe.Extension):
    """Rewrite Sphinx roles in every docstring of a loaded package into mkdocs-autorefs references."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        """Walk the package once it is complete (every name can then be looked up)."""
        self._rewrite(pkg, set())

    def _rewrite(self, obj: Any, seen: set[str]) -> None:
        if obj.is_alias or obj.path in seen:
            return
        seen.add(obj.path)
        if obj.docstring is not None and ":" in obj.docstring.value:
            obj.docstring.value = ROLE.sub(lambda match: _reference(obj, match), obj.docstring.value)
        for member in list(obj.members.values()):
            self._rewrite(member, seen)
