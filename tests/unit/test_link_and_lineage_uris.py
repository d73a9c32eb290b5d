"""The "Open order in Wayfront" link and the lineage URIs: built from the workspace and the order, nothing else."""

from __future__ import annotations

import pathlib
from types import SimpleNamespace
from typing import Any

import pytest

from airflow_provider_spp._internal.lineage import attachment_uri, order_asset_uri
from airflow_provider_spp._internal.links import (
    LINK_NAME,
    ORDER_URL_KEY,
    WayfrontOrderLink,
    order_url,
    persist_order_link,
)


@pytest.mark.parametrize(
    ("base_url", "order", "expected"),
    [
        ("https://acme.wayfront.com", "E4A269FC", "https://acme.wayfront.com/orders/E4A269FC"),
        ("https://acme.wayfront.com", 1001, "https://acme.wayfront.com/orders/1001"),
        ("https://acme.wayfront.com", " E4A269FC ", "https://acme.wayfront.com/orders/E4A269FC"),
        ("http://127.0.0.1:8321", "A/B?c#d", "http://127.0.0.1:8321/orders/A%2FB%3Fc%23d"),
        ("https://portal.example.agency:8443", "E4A269FC", "https://portal.example.agency:8443/orders/E4A269FC"),
        ("http://[::1]:8080", "7", "http://[::1]:8080/orders/7"),
    ],
)
def test_the_link_is_the_orders_page_on_the_workspace_host(base_url: str, order: Any, expected: str) -> None:
    assert order_url(base_url, order) == expected


@pytest.mark.parametrize(
    ("base_url", "order"),
    [
        (None, "E4A269FC"),
        ("", "E4A269FC"),
        ("ftp://acme.wayfront.com", "E4A269FC"),
        ("https://acme.wayfront.com", None),
        ("https://acme.wayfront.com", ""),
        ("https://acme.wayfront.com", ".."),
        ("https://acme.wayfront.com", 0),
        ("https://acme.wayfront.com", True),
        ("https://acme.wayfront.com", {"order": 1}),
    ],
)
def test_no_link_when_the_workspace_or_the_order_is_unknown(base_url: Any, order: Any) -> None:
    assert order_url(base_url, order) is None
    assert order_asset_uri(base_url, order) is None


def test_a_user_password_path_or_query_in_the_workspace_url_never_reaches_the_link() -> None:
    url = order_url("https://me:wf_secret_token@acme.wayfront.com:443/api?token=wf_secret_token#x", "E4A269FC")
    assert url == "https://acme.wayfront.com:443/orders/E4A269FC"
    uri = order_asset_uri("https://me:wf_secret_token@acme.wayfront.com/api?token=wf_secret_token", "E4A269FC")
    assert uri == "wayfront://acme.wayfront.com/orders/E4A269FC"


class RecordingTi:
    """A task instance that keeps what the task pushed to XCom (or fails to, like an unreachable API)."""

    def __init__(self, failing: bool = False) -> None:
        self.pushed: dict[str, Any] = {}
        self.failing = failing

    def xcom_push(self, key: str, value: Any) -> None:
        if self.failing:
            raise ConnectionError("execution API unreachable")
        self.pushed[key] = value


def test_the_task_keeps_the_link_in_xcom_and_a_failure_to_keep_it_never_fails_the_task() -> None:
    ti = RecordingTi()
    kept = persist_order_link({"ti": ti}, "https://acme.wayfront.com", "E4A269FC")
    assert kept == ti.pushed[ORDER_URL_KEY] == "https://acme.wayfront.com/orders/E4A269FC"
    assert persist_order_link({"ti": RecordingTi(failing=True)}, "https://acme.wayfront.com", "E4A269FC") is None
    nothing = RecordingTi()
    assert persist_order_link({"ti": nothing}, None, "E4A269FC") is None
    assert nothing.pushed == {}
    assert persist_order_link({}, "https://acme.wayfront.com", "E4A269FC") is None


def test_the_link_reads_back_only_an_http_url_the_task_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.providers.common.compat.sdk import XCom

    kept: dict[tuple[str, str], Any] = {}
    monkeypatch.setattr(XCom, "get_value", lambda *, ti_key, key: kept.get((ti_key.task_id, key)))
    link = WayfrontOrderLink()
    key = SimpleNamespace(dag_id="d", task_id="post", run_id="r", try_number=1, map_index=-1)
    assert (link.name, link.xcom_key) == (LINK_NAME, "_link_WayfrontOrderLink")
    assert link.get_link(None, ti_key=key) == ""  # type: ignore[arg-type]
    kept[("post", ORDER_URL_KEY)] = "https://acme.wayfront.com/orders/E4A269FC"
    assert link.get_link(None, ti_key=key) == "https://acme.wayfront.com/orders/E4A269FC"  # type: ignore[arg-type]
    kept[("post", ORDER_URL_KEY)] = "javascript:alert(1)"
    assert link.get_link(None, ti_key=key) == ""  # type: ignore[arg-type]


def test_operator_and_sensor_carry_the_link_and_the_provider_registers_it() -> None:
    from airflow_provider_spp import get_provider_info
    from airflow_provider_spp.operators.order_messages import CreateOrderMessageOperator
    from airflow_provider_spp.sensors.order_messages import SppOrderMessageSensor

    for task_class in (CreateOrderMessageOperator, SppOrderMessageSensor):
        assert [type(link) for link in task_class.operator_extra_links] == [WayfrontOrderLink]
    (registered,) = get_provider_info()["extra-links"]
    module, _, name = registered.rpartition(".")
    import importlib

    assert getattr(importlib.import_module(module), name) is WayfrontOrderLink


def test_attachments_are_named_by_where_they_come_from_without_credentials(tmp_path: pathlib.Path) -> None:
    local = tmp_path / "report 1.md"
    assert attachment_uri(str(local)) == local.as_uri()
    assert attachment_uri(local) == local.as_uri()
    assert attachment_uri("s3://key:secret@bucket/reports/r.csv?X-Amz-Signature=abc") == "s3://bucket/reports/r.csv"
    assert attachment_uri(("report.md", b"client data")) is None
    assert attachment_uri("") is None
    assert attachment_uri(42) is None


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("s3://[::1]:9000/bucket/r.csv", "s3://[::1]:9000/bucket/r.csv"),
        ("s3://key:secret@[::1]:9000/bucket/r.csv?sig=abc", "s3://[::1]:9000/bucket/r.csv"),
        ("gs://[2001:db8::5]/bucket/r.csv", "gs://[2001:db8::5]/bucket/r.csv"),
        ("s3://127.0.0.1:9000/bucket/r.csv", "s3://127.0.0.1:9000/bucket/r.csv"),
        ("s3://minio.local:notaport/bucket/r.csv", "s3://minio.local/bucket/r.csv"),
    ],
)
def test_an_attachment_on_a_host_and_port_keeps_them_as_a_url_writes_them(location: str, expected: str) -> None:
    assert attachment_uri(location) == expected


def test_the_order_asset_is_a_wayfront_uri_on_the_workspace_host() -> None:
    assert order_asset_uri("https://acme.wayfront.com", "E4A269FC") == "wayfront://acme.wayfront.com/orders/E4A269FC"
    assert order_asset_uri("http://127.0.0.1:8321", 1001) == "wayfront://127.0.0.1:8321/orders/1001"
