"""The sandbox's pytest plugin is opt-in: a project gets its fixtures only by naming it in ``pytest_plugins``."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

PLUGIN_LINE = 'pytest_plugins = ["airflow_provider_spp.sandbox.pytest_plugin"]\n'
TEST_FILE = """
def test_sandbox_answers(spp_sandbox):
    assert spp_sandbox.url.startswith("http://127.0.0.1:")
"""


def _pytest_in(folder: pathlib.Path) -> subprocess.CompletedProcess[str]:
    """Run a separate pytest in ``folder`` (its own rootdir, no plugins from the environment)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_PLUGINS", "PYTEST_ADDOPTS")}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(folder), str(folder)],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("opted_in", [False, True], ids=["without-conftest-line", "with-conftest-line"])
def test_fixtures_only_when_the_conftest_names_the_plugin(tmp_path: pathlib.Path, opted_in: bool) -> None:
    (tmp_path / "test_uses_sandbox.py").write_text(TEST_FILE)
    if opted_in:
        (tmp_path / "conftest.py").write_text(PLUGIN_LINE)
    run = _pytest_in(tmp_path)
    if opted_in:
        assert run.returncode == 0, run.stdout + run.stderr
        assert "1 passed" in run.stdout
    else:
        assert run.returncode != 0
        assert "fixture 'spp_sandbox' not found" in run.stdout
