"""The wall between public and internal: what users may import, and that examples and docs import only that."""

from __future__ import annotations

import ast
import functools
import importlib
import pathlib
import re

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
PACKAGE = REPO / "airflow_provider_spp"

#: The public modules: each declares ``__all__``; everything else lives in ``_internal`` or is one of the sandbox's own
#: modules (each declares ``__all__`` too: what the other modules may import from it).
PUBLIC_MODULES = [
    "airflow_provider_spp",
    "airflow_provider_spp.exceptions",
    "airflow_provider_spp.models",
    "airflow_provider_spp.testing",
    "airflow_provider_spp.sandbox",
    *sorted(
        ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
        for kind in ("hooks", "operators", "sensors", "triggers", "notifications")
        for path in (PACKAGE / kind).glob("*.py")
    ),
]


def _declared(name: str) -> list[str]:
    """A module's ``__all__``, asserted present and naming only what the module has."""
    module = importlib.import_module(name)
    declared = getattr(module, "__all__", None)
    assert declared, f"{name} declares no __all__"
    missing = [n for n in declared if not hasattr(module, n)]
    assert missing == [], f"{name}.__all__ names what it does not have: {missing}"
    return list(declared)


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_each_public_module_declares_what_it_offers(name: str) -> None:
    _declared(name)


def _provider_imports(path: pathlib.Path) -> list[tuple[str, str]]:
    """(module, name) for every ``from airflow_provider_spp... import name`` in a Python file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("airflow_provider_spp"):
            found += [(node.module or "", alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(a.name, "") for a in node.names if a.name.startswith("airflow_provider_spp")]
    return found


@pytest.mark.parametrize("example", sorted((REPO / "example_dags").glob("*.py")), ids=lambda p: p.name)
def test_example_dags_import_only_public_names(example: pathlib.Path) -> None:
    imports = _provider_imports(example)
    assert imports, f"{example.name} does not use the provider"
    for module, name in imports:
        assert module in PUBLIC_MODULES, f"{example.name} imports {module}, which is not public"
        assert not name or name in importlib.import_module(module).__all__, f"{module}.{name} is not public"


def _readme_imports() -> list[str]:
    """Every ``from airflow_provider_spp... import ...`` line in the README's Python code blocks."""
    text = (REPO / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    return [
        line.strip()
        for block in blocks
        for line in block.splitlines()
        if re.match(r"\s*from airflow_provider_spp[\w.]* import ", line)
    ]


def test_the_readme_shows_imports() -> None:
    assert _readme_imports(), "README.md's first DAG shows no import from the provider"


@pytest.mark.parametrize("statement", _readme_imports())
def test_every_import_the_readme_shows_works_and_is_public(statement: str) -> None:
    exec(compile(statement, "README.md", "exec"), {})  # noqa: S102 - the README's own import line
    module = statement.split()[1]
    assert module in PUBLIC_MODULES, f"README imports from {module}, which is not public"


def test_serialized_trigger_classpaths_of_earlier_releases_still_resolve() -> None:
    module = importlib.import_module("airflow_provider_spp.triggers.order_messages")
    for name in ("SppOrderMessageTrigger", "SppOrderActivityTrigger"):
        assert getattr(module, name).__name__ == name


@pytest.mark.parametrize(
    "module", sorted(p.name for p in (PACKAGE / "_internal").glob("*.py") if p.name != "__init__.py")
)
def test_contributing_says_where_each_internal_module_lives(module: str) -> None:
    where = (REPO / "CONTRIBUTING.md").read_text().split("## Where things live", 1)[1].split("\n## ", 1)[0]
    assert f"`_internal/{module}`" in where, f"CONTRIBUTING.md's 'Where things live' does not name _internal/{module}"


SANDBOX_MODULES = sorted(
    f"airflow_provider_spp.sandbox.{path.stem}"
    for path in (PACKAGE / "sandbox").glob("*.py")
    if path.stem != "__init__"
)


@functools.cache
def _imports_from_sandbox_modules() -> dict[str, set[str]]:
    """Each sandbox module and the names other files of the repository import from it."""
    found: dict[str, set[str]] = {}
    folders = ("airflow_provider_spp", "tests", "example_dags", "benchmarks", "scripts", "docs")
    for path in (path for folder in folders for path in (REPO / folder).glob("**/*.py")):
        for module, name in _provider_imports(path):
            if module in SANDBOX_MODULES and name and path != REPO / (module.replace(".", "/") + ".py"):
                found.setdefault(module, set()).add(name)
    return found


@pytest.mark.parametrize("name", SANDBOX_MODULES)
def test_each_sandbox_module_declares_what_the_rest_may_import(name: str) -> None:
    declared = _declared(name)
    imported = _imports_from_sandbox_modules().get(name, set())
    assert sorted(imported - set(declared)) == [], f"other files import from {name} what its __all__ leaves out"
