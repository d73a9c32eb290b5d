"""The docs pages include tested code only: every include names a marked section that exists, no page types
Python inline, and the tested-versions table is what scripts/versions_table.py makes from the constraints."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import TESTS_DIR

REPO = TESTS_DIR.parent
DOCS = REPO / "docs"
PAGES = sorted(p for p in DOCS.rglob("*.md") if "_generated" not in p.parts)
FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>```+|~~~+)(?P<lang>[^\s`]*)")


def _load(path: Path, name: str) -> ModuleType:
    """Import a file that is not in a package (docs/hooks/, scripts/) by its path."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _include_hook() -> ModuleType:
    """docs/hooks/include.py: the MkDocs hook that expands the pages' includes (the same code the build runs)."""
    return _load(DOCS / "hooks" / "include.py", "spp_docs_include")


def _blocks(text: str) -> list[tuple[str, list[str]]]:
    """``(language, lines)`` of every fenced code block of a Markdown page."""
    blocks: list[tuple[str, list[str]]] = []
    current: tuple[str, str, list[str]] | None = None
    for line in text.splitlines():
        match = FENCE.match(line)
        if current is None and match:
            current = (match["fence"], match["lang"].lower(), [])
        elif current is not None and line.strip().startswith(current[0]) and not line.strip().strip("`~"):
            blocks.append((current[1], current[2]))
            current = None
        elif current is not None:
            current[2].append(line)
    assert current is None, "a code block is never closed"
    return blocks


def test_there_are_pages_and_they_include_code() -> None:
    hook = _include_hook()
    included = [ref for page in PAGES for ref in hook.includes(page.read_text())]
    assert len(PAGES) >= 15
    assert sum(1 for _, name in included if name) >= 15


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(DOCS)))
def test_every_include_names_an_existing_marked_section(page: Path) -> None:
    hook = _include_hook()
    for path, name in hook.includes(page.read_text()):
        assert hook.section(path, name).strip(), f"{page.name}: {path}:{name} is empty"


def test_a_missing_marker_fails_the_include(tmp_path: Path) -> None:
    hook = _include_hook()
    with pytest.raises(hook.IncludeError, match=r"\[START no_such_section\]"):
        hook.section("example_dags/spp_order_followup.py", "no_such_section")
    with pytest.raises(hook.IncludeError, match="no such file"):
        hook.expand('--8<-- "docs/snippets/no_such_file.py:first_dag"\n')


def test_an_include_is_dedented_and_other_markers_are_left_out() -> None:
    hook = _include_hook()
    text = hook.section("example_dags/spp_order_followup.py", "example_spp_order_followup")
    assert text.startswith("import pendulum")
    assert "[START" not in text
    assert "[END" not in text
    assert hook.section("example_dags/spp_order_followup.py", "howto_operator_spp_create_order_message").startswith(
        "post_followup = CreateOrderMessageOperator("
    )


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(DOCS)))
def test_no_page_types_python_inline(page: Path) -> None:
    hook = _include_hook()
    for lang, lines in _blocks(page.read_text()):
        if lang not in ("python", "py", "python3", "pycon"):
            continue
        typed = [line for line in lines if line.strip() and not hook.INCLUDE.match(line)]
        assert not typed, f"{page.name} types Python instead of including it: {typed[:3]}"


def test_every_snippet_file_is_included_by_a_page() -> None:
    hook = _include_hook()
    included = {path for page in PAGES for path, _ in hook.includes(page.read_text())}
    snippets = {str(p.relative_to(REPO)) for p in (DOCS / "snippets").iterdir() if p.suffix in (".py", ".sh")}
    assert snippets <= included, f"snippet files no page includes: {sorted(snippets - included)}"


def test_versions_table_is_current() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "versions_table.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _sync_readme() -> ModuleType:
    """scripts/sync_readme.py, which copies tested files into README.md's include regions."""
    return _load(REPO / "scripts" / "sync_readme.py", "spp_sync_readme")


def test_readme_regions_are_rewritten_from_their_sources() -> None:
    sync = _sync_readme()
    stale = (
        "Intro\n<!-- include: docs/snippets/first_dag.py:first_dag -->\n"
        "```python\nold text\n```\n<!-- end include -->\n"
        "<!-- include: docs/_generated/versions-table.md -->\n| old |\n<!-- end include -->\nOutro\n"
    )
    fresh = sync.synced(stale)
    assert "old text" not in fresh
    assert "| old |" not in fresh
    assert 'dag_id="spp_first_dag",' in fresh
    assert "| Airflow | role | CI |" in fresh
    assert fresh.startswith("Intro\n")
    assert fresh.endswith("<!-- end include -->\nOutro\n")
    assert sync.synced(fresh) == fresh


def test_readme_regions_are_current() -> None:
    command = [sys.executable, str(REPO / "scripts" / "sync_readme.py"), "--check"]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_readme_types_no_python_inline() -> None:
    text = _sync_readme().REGION.sub("", (REPO / "README.md").read_text())
    typed = [line for lang, lines in _blocks(text) if lang in ("python", "py") for line in lines if line.strip()]
    assert not typed, f"README.md types Python outside include regions: {typed[:3]}"


def test_readme_links_reach_files() -> None:
    text = (REPO / "README.md").read_text()
    targets = [t for t in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text) if "://" not in t]
    assert targets, "README.md links into no docs page"
    missing = [t for t in targets if not (REPO / t).exists()]
    assert not missing, f"README.md links to files that do not exist: {missing}"
