"""The docs' own snippet files (docs/snippets/) run here, so every example a page includes is tested code.

Example DAGs are run by tests/system; the snippets that are not DAGs of the examples folder (the first
DAG, the operator's every-argument DAG, the hook tours, a user's sandbox test, the connection's environment
forms) run here, against the sandbox over real HTTP. scripts/release_check.py runs this file against the
installed wheel too.
"""

from __future__ import annotations

import asyncio
import importlib.util
import re
import shlex
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.conftest import TESTS_DIR

SNIPPETS = TESTS_DIR.parent / "docs" / "snippets"


def _load(name: str) -> ModuleType:
    """Import ``docs/snippets/<name>.py`` by path (docs/ is not a package)."""
    spec = importlib.util.spec_from_file_location(f"spp_docs_snippet_{name}", SNIPPETS / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


#: A user's own test from the sandbox page, collected and run here with the real fixtures.
test_sandbox_page_example = _load("sandbox_usage").test_the_follow_up_reaches_the_order


@pytest.mark.dag
@pytest.mark.integration
def test_first_dag_posts_its_message(airflow_db: str, spp_sandbox: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_provider_spp.testing import run_dag

    monkeypatch.setenv("AIRFLOW_CONN_SPP_DEFAULT", spp_sandbox.connection_json(timeout=2, retry_backoff=0.01))
    dag_run = run_dag(_load("first_dag").dag, logical_date=datetime(2026, 3, 2, tzinfo=UTC))
    assert dag_run.state == "success"
    (stored,) = spp_sandbox.messages()
    assert stored.message == "Hello from Airflow! The run for 2026-03-02 finished."
    assert stored.order_id == 1001
    assert dag_run.get_task_instance("say_hello").xcom_pull(task_ids="say_hello") == stored.id


@pytest.mark.dag
@pytest.mark.integration
def test_every_operator_argument_example_posts_once(
    airflow_db: str, spp_sandbox: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import tempfile

    from airflow_provider_spp.testing import run_dag

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the DAG's files land in this test's folder
    monkeypatch.setenv("AIRFLOW_CONN_SPP_DEFAULT", spp_sandbox.connection_json(timeout=2, retry_backoff=0.01))
    dag_run = run_dag(_load("operator_arguments").dag, logical_date=datetime(2026, 3, 2, tzinfo=UTC))
    assert dag_run.state == "success"
    (stored,) = spp_sandbox.messages()
    assert (stored.order_id, stored.staff_only) == (1001, False)
    assert stored.message == "Your report for 2026-03-02 is attached."
    assert [(f.filename, f.data) for f in stored.files] == [
        ("report.csv", b"metric,value\nsessions,18234\n"),
        ("chart.png", b"\x89PNG\r\n\x1a\n"),
        ("notes.txt", b"Numbers are preliminary."),
    ]
    assert [r["method"] for r in spp_sandbox.requests() if r["path"].startswith("/api/")] == ["POST"]
    assert dag_run.get_task_instance("post_followup").xcom_pull(task_ids="post_followup") == stored.id
    assert dag_run.get_task_instance("downstream").xcom_pull(task_ids="downstream") == stored.id


@pytest.mark.integration
def test_sync_hook_tour_makes_every_call(spp_sandbox: Any, spp_sandbox_conn: str, tmp_path: Path) -> None:
    report = tmp_path / "report.csv"
    report.write_text("metric,value\nsessions,18234\n")
    since = datetime.now(UTC) - timedelta(minutes=1)
    spp_sandbox.store.add_order("WORK0001", "Working")
    done = _load("hooks").sync_tour("E4A269FC", str(report), since)
    created = done["created"]
    assert [str(url).rsplit("/", 1)[1] for url in created.files] == ["report.csv"]
    assert done["texts"] == ["Report attached"]
    assert done["found"].id == created.id
    assert done["staff_note"] is None  # the one message is not staff-only
    assert done["order"].number == "E4A269FC"
    assert "WORK0001" in done["working"]
    assert done["test"][0] is True
    assert spp_sandbox.messages() == []  # deleted at the end of the tour
    methods = [(r["method"], r["path"]) for r in spp_sandbox.requests()]
    assert ("DELETE", f"/api/order_messages/{created.id}") in methods


@pytest.mark.integration
def test_async_hook_tour_makes_every_call(spp_sandbox: Any, spp_sandbox_conn: str, tmp_path: Path) -> None:
    spp_sandbox.post_as_client("E4A269FC", "Here are the logins")
    late = tmp_path / "late.csv"
    late.write_text("metric,value\nlate,1\n")
    since = datetime.now(UTC) - timedelta(minutes=1)
    done = asyncio.run(_load("hooks").async_tour("E4A269FC", str(late), since))
    assert done["order"].number == "E4A269FC"
    assert done["texts"] == ["Here are the logins"]
    assert done["numbers"][0] == "E4A269FC"  # the order with the newest message comes first
    assert done["found"] is not None
    assert done["found"].staff_only is True
    assert [str(url).rsplit("/", 1)[1] for url in done["uploaded"]] == ["late.csv"]
    posted = [r for r in spp_sandbox.requests() if r["method"] == "POST" and r["path"].startswith("/api/")]
    assert len(posted) == 1  # the staff-only note with its file, sent once
    assert [m.message for m in spp_sandbox.messages()] == ["Here are the logins"]  # the note was deleted


def _exports() -> dict[str, str]:
    """Every ``export AIRFLOW_CONN_…='…'`` of docs/snippets/connection.sh, by its section name."""
    found: dict[str, str] = {}
    section = None
    for line in (SNIPPETS / "connection.sh").read_text().splitlines():
        marker = re.match(r"# \[START (\S+)\]", line)
        if marker:
            section = marker[1]
        elif line.startswith("export "):
            name, _, value = shlex.split(line[len("export ") :])[0].partition("=")
            assert name == "AIRFLOW_CONN_SPP_DEFAULT"
            assert section is not None
            found[section] = value
    return found


@pytest.mark.parametrize(
    ("section", "base_url", "api_version", "timeout"),
    [
        ("connection_env_json", "https://acme.wayfront.com", "2024-03-05", 20),
        ("connection_env_uri", "https://acme.wayfront.com", "2024-03-05", 20),
        ("connection_env_sandbox", "http://127.0.0.1:8765", None, 30),
    ],
)
def test_connection_page_forms_resolve(
    section: str, base_url: str, api_version: str | None, timeout: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider_spp.hooks.spp import SppHook

    value = _exports()[section].replace("<token>", "a-real-looking-token").replace("<sandbox-token>", "sandbox-token")
    monkeypatch.setenv("AIRFLOW_CONN_SPP_DEFAULT", value)
    settings = SppHook("spp_default").settings
    assert (settings.base_url, settings.api_version, settings.timeout) == (base_url, api_version, timeout)
    assert settings.token in ("a-real-looking-token", "sandbox-token")
