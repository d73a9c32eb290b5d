"""The provider's metadata for Airflow: hook, operator, notifier, extra link and the ``spp`` connection form."""

from __future__ import annotations

from typing import Any

from airflow_provider_spp._internal.connection_form import CONN_FIELDS, DISPLAY_NAME, UI_FIELD_BEHAVIOUR

__all__ = ["CONN_FIELDS", "DISPLAY_NAME", "UI_FIELD_BEHAVIOUR", "provider_info"]


def provider_info() -> dict[str, Any]:
    """The dict Airflow reads through the ``apache_airflow_provider`` entry point."""
    from airflow_provider_spp import __version__

    return {
        "package-name": "airflow-provider-spp",
        "name": DISPLAY_NAME,
        "description": "Post order messages (with attachments) to Wayfront (formerly Service Provider Pro, SPP) "
        "from Airflow DAGs, wait for replies and start DAGs when clients write.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": DISPLAY_NAME,
                "external-doc-url": "https://wayfront.com",
                "tags": ["service"],
            }
        ],
        "hooks": [
            {
                "integration-name": DISPLAY_NAME,
                "python-modules": ["airflow_provider_spp.hooks.spp", "airflow_provider_spp.hooks.spp_async"],
            }
        ],
        "operators": [
            {
                "integration-name": DISPLAY_NAME,
                "python-modules": [
                    "airflow_provider_spp.operators.order_messages",
                    "airflow_provider_spp.operators.bulk_order_messages",
                ],
            }
        ],
        "sensors": [
            {
                "integration-name": DISPLAY_NAME,
                "python-modules": ["airflow_provider_spp.sensors.order_messages"],
            }
        ],
        "triggers": [
            {
                "integration-name": DISPLAY_NAME,
                "python-modules": ["airflow_provider_spp.triggers.order_messages"],
            }
        ],
        "notifications": ["airflow_provider_spp.notifications.spp.SppOrderMessageNotifier"],
        "extra-links": ["airflow_provider_spp._internal.links.WayfrontOrderLink"],
        "connection-types": [
            {
                "hook-class-name": "airflow_provider_spp.hooks.spp.SppHook",
                "hook-name": DISPLAY_NAME,
                "connection-type": "spp",
                "ui-field-behaviour": {key.replace("_", "-"): value for key, value in UI_FIELD_BEHAVIOUR.items()},
                "conn-fields": CONN_FIELDS,
            }
        ],
    }
