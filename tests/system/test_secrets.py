"""Canary token: run posts that succeed and fail in every way, then look for the token everywhere. Zero hits."""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_provider_spp.exceptions import SppError
from airflow_provider_spp.hooks.spp import SppHook
from airflow_provider_spp.operators.order_messages import CreateOrderMessageOperator
from tests.conftest import DAGS_DIR

pytestmark = [pytest.mark.dag, pytest.mark.integration]

CANARY = "canary-spp-token-0001"
CANARY_REJECTED = "canary-spp-token-0002"


@pytest.fixture(scope="module")
def canary_sandbox() -> Any:
    from airflow_provider_spp.sandbox import SandboxServer

    with SandboxServer(token=CANARY) as server:
        yield server


@pytest.fixture
def canary_conns(canary_sandbox: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    canary_sandbox.reset()
    extra = {"timeout": 0.5, "retry_backoff": 0.01, "max_retries": 1}
    monkeypatch.setenv("AIRFLOW_CONN_SPP_CANARY", canary_sandbox.connection_json(**extra))
    rejected = json.loads(canary_sandbox.connection_json(**extra)) | {"password": CANARY_REJECTED}
    monkeypatch.setenv("AIRFLOW_CONN_SPP_CANARY_REJECTED", json.dumps(rejected))
    insecure = {"conn_type": "spp", "host": "http://spp.example.invalid", "password": CANARY}
    monkeypatch.setenv("AIRFLOW_CONN_SPP_CANARY_INSECURE", json.dumps(insecure))
    for kind, order in [
        ("rate_limit", "B7C3D2A1"),
        ("server_error", "9F8E7D6C"),
        ("drop_before", "1004"),
        ("missing_id", "1003"),
    ]:
        canary_sandbox.add_fault(
            kind, times=None, method="POST", path_prefix=f"/api/order_messages/{order}", retry_after=0
        )
    return canary_sandbox


def _rendered_fields_and_xcoms(dag_run: Any) -> str:
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rendered = [
            RenderedTaskInstanceFields.get_templated_fields(ti, session=session)
            for ti in dag_run.get_task_instances(session=session)
        ]
        assert any(rendered), "no rendered fields were stored, so nothing was checked"
        xcoms = session.scalars(select(XComModel.value).where(XComModel.run_id == dag_run.run_id)).all()
    return json.dumps([rendered, xcoms], default=str)


def test_the_token_appears_nowhere_after_successes_and_every_error(
    airflow_db: str, canary_conns: Any, capfd: Any
) -> None:
    from airflow_provider_spp._internal.version_compat import DagBag

    bag = DagBag(str(DAGS_DIR))
    dag_run = bag.get_dag("spp_test_canary").test()
    states = {ti.task_id: ti.state for ti in dag_run.get_task_instances()}
    assert states.pop("ok") == "success"
    assert set(states.values()) == {"failed"}, states
    out, err = capfd.readouterr()
    logs = out + err
    for expected in (
        "failed with 404",
        "failed with 422",
        "failed with 401",
        "failed with 429",
        "failed with 500",
        "connection broke",
        "not a MessageResource",
        "Refusing plain http",
    ):
        assert expected in logs, expected
    # Positive control: the canary really was the token on the wire.
    assert any(r["headers"].get("authorization") == f"Bearer {CANARY}" for r in canary_conns.requests())
    stored = _rendered_fields_and_xcoms(dag_run)
    assert "Canary run: all good" in stored
    for haystack, where in [(logs, "task logs"), (stored, "rendered fields and XCom")]:
        assert CANARY not in haystack, where
        assert CANARY_REJECTED not in haystack, where


def test_the_token_is_not_in_reprs_or_exception_text(canary_conns: Any) -> None:
    hook = SppHook("spp_canary")
    operator = CreateOrderMessageOperator(task_id="t", order="E4A269FC", message="m", spp_conn_id="spp_canary")
    session = hook.get_conn()
    texts = [
        repr(hook),
        str(hook.__dict__),
        repr(hook.settings),
        repr(operator),
        repr(session.auth),
        repr(session.__dict__.get("auth")),
    ]
    for call in (
        lambda: hook.create_order_message("NOPE0000", "x"),
        lambda: hook.create_order_message("9F8E7D6C", "x"),
        lambda: hook.create_order_message("1004", "x"),
        lambda: SppHook("spp_canary_rejected").create_order_message("E4A269FC", "x"),
        lambda: SppHook("spp_canary_insecure").create_order_message("E4A269FC", "x"),
    ):
        with pytest.raises(SppError) as caught:
            call()
        texts += [str(caught.value), repr(caught.value), repr(caught.value.__dict__)]
    hook.close()
    joined = "\n".join(texts)
    assert CANARY not in joined
    assert CANARY_REJECTED not in joined


def test_the_token_is_registered_with_airflows_secrets_masker(canary_conns: Any) -> None:
    from airflow.providers.common.compat.sdk import redact

    assert SppHook("spp_canary").settings.token == CANARY
    assert redact(f"Authorization: Bearer {CANARY}") == "Authorization: Bearer ***"
