"""pyproject.toml declares exactly the third-party packages the provider imports (and no others)."""

from __future__ import annotations

import ast
import pathlib
import re
import sys
import tomllib
from importlib.metadata import packages_distributions

ROOT = pathlib.Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "airflow_provider_spp"
#: Imported only inside ``try: ... except ImportError`` for the pre-3.2 connection form (Airflow's FAB UI).
OPTIONAL_UI = {"flask_appbuilder", "flask_babel", "wtforms"}


def _name(requirement: str) -> str:
    """The normalised distribution name of a requirement string."""
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
    assert match, requirement
    return re.sub(r"[-_.]+", "-", match.group(0)).lower()


def _imported_distributions(files: list[pathlib.Path]) -> set[str]:
    """The distributions providing the non-stdlib, non-Airflow top-level modules these files import."""
    modules: set[str] = set()
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
    modules -= {*sys.stdlib_module_names, "airflow", "airflow_provider_spp", *OPTIONAL_UI}
    providers = packages_distributions()
    return {_name(dist) for module in modules for dist in providers.get(module, [module])}


def test_dependencies_are_exactly_what_the_package_imports() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {_name(r) for r in project["dependencies"] if not _name(r).startswith("apache-airflow")}
    core_files = [p for p in PACKAGE.rglob("*.py") if "sandbox" not in p.parts]
    assert _imported_distributions(core_files) == declared


def test_the_sandbox_extra_covers_what_the_sandbox_imports() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {_name(r) for r in project["dependencies"] + project["optional-dependencies"]["sandbox"]}
    imported = _imported_distributions(list((PACKAGE / "sandbox").rglob("*.py")))
    assert imported - {"pytest"} <= declared  # pytest: only the opt-in pytest plugin, run by pytest itself
