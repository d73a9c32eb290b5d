"""Test set-up: an isolated AIRFLOW_HOME before anything imports Airflow, and one fresh metadata DB."""

from __future__ import annotations

import os
import pathlib
import tempfile

import pytest

TESTS_DIR = pathlib.Path(__file__).parent
#: The DAGs folder of the system tests: test DAGs that run the provider under ``dag.test()``.
DAGS_DIR = TESTS_DIR / "system" / "dags"
_AIRFLOW_HOME = tempfile.mkdtemp(prefix="spp-tests-airflow-home-")
os.environ["AIRFLOW_HOME"] = _AIRFLOW_HOME
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(DAGS_DIR)
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "True"
# Every dag.test() re-parses the DAGs folder; write what it parsed now, not only once per 30 s, so a test
# never reads a DAG serialized by an earlier test under other environment variables.
os.environ["AIRFLOW__CORE__MIN_SERIALIZED_DAG_UPDATE_INTERVAL"] = "0"
os.environ.pop("AIRFLOW_CONN_SPP_DEFAULT", None)

TEST_TOKEN = "spp-sandbox-test-token"

#: The sandbox fixtures (spp_sandbox, spp_sandbox_conn, ...) are opt-in, as a user's conftest takes them.
pytest_plugins = ["airflow_provider_spp.sandbox.pytest_plugin"]
#: tests/e2e is a deployment, not a pytest suite: run by scripts/e2e.py (python -m tests.e2e), never collected.
collect_ignore = ["e2e"]


@pytest.fixture(scope="session")
def airflow_db() -> str:
    """A freshly created Airflow metadata database (SQLite in the temporary AIRFLOW_HOME)."""
    from airflow.utils import db

    db.resetdb()
    return _AIRFLOW_HOME


@pytest.fixture(autouse=True)
def _no_claims_from_an_earlier_sandbox(request: pytest.FixtureRequest) -> None:
    """Forget message claims (Airflow Variables) before a test on the metadata DB: each sandbox restarts IDs at 1."""
    if "airflow_db" not in request.fixturenames:
        return
    request.getfixturevalue("airflow_db")
    from airflow.models.variable import Variable
    from airflow.utils.session import create_session

    from airflow_provider_spp._internal.claims import CLAIMS_PREFIX

    with create_session() as session:
        session.query(Variable).filter(Variable.key.like(f"{CLAIMS_PREFIX}%")).delete(synchronize_session=False)
