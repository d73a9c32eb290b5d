"""Include tested code into the docs: ``--8<-- "path:name"`` takes a file's ``# [START name]``/``# [END name]``.

The official Airflow providers mark the parts of their example DAGs that the docs show with
``# [START name]`` / ``# [END name]`` comments; pymdownx.snippets reads only its own ``[start:name]``
markers, so this MkDocs hook does the include instead, and ``tests/docs/test_snippets.py`` uses the same
functions, so what a test checks is what the build does. A line ``--8<-- "path"`` includes a whole file
(the changelog, the generated versions table); ``--8<-- "path:name"`` includes one marked section,
dedented, with any other section's markers left out. Paths are relative to the repository root. A
missing file or marker raises, which fails ``mkdocs build``.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
INCLUDE = re.compile(r'^(?P<indent>[ \t]*)--8<-- "(?P<path>[^":]+)(?::(?P<name>[A-Za-z0-9_.-]+))?"[ \t]*$')
MARKER = re.compile(r"^\s*(?:#|//|<!--)\s*\[(?P<kind>START|END) (?P<name>[A-Za-z0-9_.-]+)\]")


class IncludeError(Exception):
    """A page names a file or a marked section that does not exist."""


def includes(markdown: str) -> list[tuple[str, str | None]]:
    """Every ``(path, section name or None)`` a page includes, in order."""
    found = []
    for line in markdown.splitlines():
        match = INCLUDE.match(line)
        if match:
            found.append((match["path"], match["name"]))
    return found


def section(path: str, name: str | None) -> str:
    """The text a page includes: the whole file, or the lines between ``[START name]`` and ``[END name]``."""
    file = REPO / path
    if not file.is_file():
        raise IncludeError(f"{path}: no such file")
    lines = file.read_text().splitlines()
    if name is None:
        return "\n".join(lines)
    starts = [i for i, line in enumerate(lines) if _marker(line) == ("START", name)]
    ends = [i for i, line in enumerate(lines) if _marker(line) == ("END", name)]
    if len(starts) != 1 or len(ends) != 1 or ends[0] <= starts[0]:
        raise IncludeError(f"{path}: needs exactly one '[START {name}]' followed by one '[END {name}]'")
    body = [line for line in lines[starts[0] + 1 : ends[0]] if _marker(line) is None]
    if not any(line.strip() for line in body):
        raise IncludeError(f"{path}: section {name!r} is empty")
    return textwrap.dedent("\n".join(body)).strip("\n")


def _marker(line: str) -> tuple[str, str] | None:
    """``("START"|"END", name)`` when the line is a section marker."""
    match = MARKER.match(line)
    return (match["kind"], match["name"]) if match else None


def expand(markdown: str) -> str:
    """The page with every include line replaced by what it names, indented as the include line is."""
    out = []
    for line in markdown.splitlines():
        match = INCLUDE.match(line)
        if not match:
            out.append(line)
            continue
        text = section(match["path"], match["name"])
        out.extend(f"{match['indent']}{piece}" if piece else "" for piece in text.splitlines())
    return "\n".join(out) + "\n"


def on_page_markdown(markdown: str, **_: Any) -> str:
    """MkDocs hook: expand the includes of each page before it is rendered."""
    return expand(markdown)
