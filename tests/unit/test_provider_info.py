"""Provider registration: metadata valid against Airflow's schema, connection form in sync, import stays light."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from airflow_provider_spp import get_provider_info
from airflow_provider_spp._internal.provider_info import CONN_FIELDS
from airflow_provider_spp.hooks.spp import SppHook


def test_provider_info_is_valid_for_airflow() -> None:
    import importlib.resources

    import jsonschema

    schema = json.loads(importlib.resources.files("airflow").joinpath("provider_info.schema.json").read_text())
    jsonschema.validate(get_provider_info(), schema)


def test_sensor_triggers_and_notifier_are_registered() -> None:
    import importlib

    info = get_provider_info()
    assert info["sensors"][0]["python-modules"] == ["airflow_provider_spp.sensors.order_messages"]
    assert info["triggers"][0]["python-modules"] == ["airflow_provider_spp.triggers.order_messages"]
    assert info["notifications"] == ["airflow_provider_spp.notifications.spp.SppOrderMessageNotifier"]
    triggers = importlib.import_module("airflow_provider_spp.triggers.order_messages")
    assert {"SppOrderMessageTrigger", "SppOrderActivityTrigger"} <= set(vars(triggers))
    sensors = importlib.import_module("airflow_provider_spp.sensors.order_messages")
    assert "SppOrderMessageSensor" in vars(sensors)


DISPLAY_NAME = "Wayfront (formerly Service Provider Pro, SPP)"


def test_the_connection_type_is_named_wayfront_and_keeps_its_type_and_classes() -> None:
    """A user looking for Wayfront finds us; what a user wrote (conn_type ``spp``, SppHook) keeps working."""
    info = get_provider_info()
    (conn_type,) = info["connection-types"]
    assert (conn_type["hook-name"], conn_type["connection-type"]) == (DISPLAY_NAME, "spp")
    assert (SppHook.hook_name, SppHook.conn_type) == (DISPLAY_NAME, "spp")
    assert info["name"] == DISPLAY_NAME
    assert "Wayfront" in info["description"]
    assert {i["integration-name"] for i in info["integrations"]} == {DISPLAY_NAME}
    placeholders = conn_type["ui-field-behaviour"]["placeholders"]
    assert placeholders["host"] == "https://acme.wayfront.com"
    assert "Wayfront" in placeholders["password"]
    assert "Wayfront (formerly Service Provider Pro, SPP)" in (SppHook.__doc__ or "")


def test_the_package_is_described_and_found_as_wayfront() -> None:
    import pathlib
    import tomllib

    project = tomllib.loads((pathlib.Path(__file__).parents[2] / "pyproject.toml").read_text())["project"]
    assert "Wayfront (formerly Service Provider Pro, SPP)" in project["description"]
    assert {"wayfront", "spp", "service-provider-pro", "airflow"} <= {k.lower() for k in project.get("keywords", [])}
    assert {"Homepage", "Documentation", "Changelog", "Source", "Issues"} <= set(project["urls"])
    assert all(url.startswith("https://") for url in project["urls"].values())


def test_connection_type_declares_the_form() -> None:
    (conn_type,) = get_provider_info()["connection-types"]
    assert conn_type["connection-type"] == "spp"
    assert conn_type["hook-class-name"] == "airflow_provider_spp.hooks.spp.SppHook"
    behaviour = conn_type["ui-field-behaviour"]
    assert {"login", "port", "schema"} <= set(behaviour["hidden-fields"])
    assert behaviour["relabeling"] == {"host": "Workspace URL", "password": "API token"}
    assert set(conn_type["conn-fields"]) == {
        "api_version",
        "timeout",
        "connect_timeout",
        "max_retries",
        "retry_max_time",
        "retry_backoff",
        "verify",
        "allow_insecure_http",
    }
    assert conn_type["conn-fields"] == CONN_FIELDS


def test_hook_classmethods_match_the_declared_form() -> None:
    (conn_type,) = get_provider_info()["connection-types"]
    legacy = SppHook.get_ui_field_behaviour()
    assert legacy["hidden_fields"] == conn_type["ui-field-behaviour"]["hidden-fields"]
    assert legacy["relabeling"] == conn_type["ui-field-behaviour"]["relabeling"]
    widgets = SppHook.get_connection_form_widgets()
    assert widgets == {} or set(widgets) == set(CONN_FIELDS)


def test_airflow_discovers_the_provider(airflow_db: str) -> None:
    from airflow.providers_manager import ProvidersManager

    from airflow_provider_spp._internal.version_compat import ProvidersManagerTaskRuntime

    assert "airflow-provider-spp" in ProvidersManager().providers
    hook_info = ProvidersManagerTaskRuntime().hooks["spp"]
    assert hook_info is not None
    assert hook_info.hook_class_name == "airflow_provider_spp.hooks.spp.SppHook"
    assert hook_info.connection_id_attribute_name == "spp_conn_id"


@pytest.mark.parametrize(
    "statement",
    [
        "import airflow_provider_spp",
        "from airflow_provider_spp.operators.order_messages import CreateOrderMessageOperator",
        "from airflow_provider_spp.notifications.spp import SppOrderMessageNotifier",
        "from airflow_provider_spp.sensors.order_messages import SppOrderMessageSensor",
        "from airflow_provider_spp.triggers.order_messages import SppOrderActivityTrigger",
    ],
)
def test_parsing_a_dag_file_does_not_import_http_or_server_libraries(statement: str, tmp_path) -> None:
    code = f"{statement}\nimport json, sys\nprint(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))"
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert "airflow_provider_spp" in loaded
    for heavy in ("requests", "requests_toolbelt", "fastapi", "uvicorn", "aiohttp", "slack_sdk"):
        assert heavy not in loaded, heavy


_UI_FORM_CHILD = """
import json
from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService
(meta,) = [m for m in HookMetaService.hook_meta_data() if m.connection_type == "spp"]
print(json.dumps(meta.model_dump(mode="json")))
"""


def test_airflow_ui_builds_the_connection_form_from_provider_info(tmp_path) -> None:
    # In a fresh process, as the API server answers the UI: on Airflow 3.1 the form comes from the hook's
    # classmethods, which Airflow reads only if its providers manager was first loaded by the UI service.
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    result = subprocess.run(
        [sys.executable, "-c", _UI_FORM_CHILD], env=env, capture_output=True, text=True, check=True, timeout=120
    )
    meta = json.loads(result.stdout.strip().splitlines()[-1])
    fields = meta["standard_fields"]
    assert fields is not None
    assert (fields["host"]["title"], fields["host"]["placeholder"]) == ("Workspace URL", "https://acme.wayfront.com")
    assert fields["password"]["title"] == "API token"
    assert fields["login"]["hidden"]
    assert fields["port"]["hidden"]
    assert set(meta["extra_fields"]) == set(CONN_FIELDS)
    assert meta["extra_fields"]["timeout"]["value"] == 30
