"""The provider's metadata for Airflow: hook, operator, notifier and the ``spp`` connection form."""

from __future__ import annotations

from typing import Any

UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden_fields": ["login", "port", "schema"],
    "relabeling": {"host": "Workspace URL", "password": "API token"},
    "placeholders": {
        "host": "https://example.spp.co",
        "password": "An API token of your SPP workspace",
        "api_version": "2024-03-05",
        "timeout": "30",
        "connect_timeout": "10",
        "max_retries": "3",
    },
}

CONN_FIELDS: dict[str, Any] = {
    "api_version": {
        "label": "API version",
        "description": "Sent as the X-Api-Version header, e.g. 2024-03-05. Leave empty for the workspace default.",
        "schema": {"type": ["string", "null"], "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"},
    },
    "timeout": {
        "label": "Read timeout (seconds)",
        "description": (
            "Longest silence while waiting for SPP's answer: before its first byte and between reads. "
            "Not a limit on a whole call; use the task's execution_timeout for that."
        ),
        "schema": {"type": ["number", "null"], "default": 30, "exclusiveMinimum": 0},
    },
    "connect_timeout": {
        "label": "Connect timeout (seconds)",
        "description": (
            "Longest wait to open a connection to SPP (TCP and TLS handshake). Default 10, or timeout if smaller."
        ),
        "schema": {"type": ["number", "null"], "default": 10, "exclusiveMinimum": 0},
    },
    "max_retries": {
        "label": "Max retries",
        "description": "Retries of rate-limited (429) or unavailable (503) calls. A POST is never re-sent blindly.",
        "schema": {"type": ["integer", "null"], "default": 3, "minimum": 0},
    },
    "retry_max_time": {
        "label": "Retry time cap (seconds)",
        "description": "Give up retrying a call after this long in total.",
        "schema": {"type": ["number", "null"], "default": 120, "minimum": 0},
    },
    "retry_backoff": {
        "label": "Retry backoff base (seconds)",
        "description": "First wait between retries; it doubles each time (with jitter) unless SPP sends Retry-After.",
        "schema": {"type": ["number", "null"], "default": 1, "minimum": 0},
    },
    "verify": {
        "label": "Verify TLS certificates",
        "description": (
            "Leave on unless you know why it must be off; on, REQUESTS_CA_BUNDLE is honoured. "
            "A CA bundle path (which wins over REQUESTS_CA_BUNDLE) can go in the extra JSON as verify."
        ),
        "schema": {"type": ["boolean", "null"], "default": True},
    },
    "allow_insecure_http": {
        "label": "Allow plain http to a remote host",
        "description": "Plain http is accepted for 127.0.0.1/localhost only, unless this is on.",
        "schema": {"type": ["boolean", "null"], "default": False},
    },
}


def provider_info() -> dict[str, Any]:
    """The dict Airflow reads through the ``apache_airflow_provider`` entry point."""
    from airflow_provider_spp import __version__

    return {
        "package-name": "airflow-provider-spp",
        "name": "Service Provider Pro (SPP)",
        "description": "Post order messages (with attachments) to Service Provider Pro from Airflow DAGs, "
        "wait for replies and start DAGs when clients write.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "Service Provider Pro (SPP)",
                "external-doc-url": "https://spp.co",
                "tags": ["service"],
            }
        ],
        "hooks": [
            {
                "integration-name": "Service Provider Pro (SPP)",
                "python-modules": ["airflow_provider_spp.hooks.spp"],
            }
        ],
        "operators": [
            {
                "integration-name": "Service Provider Pro (SPP)",
                "python-modules": ["airflow_provider_spp.operators.order_messages"],
            }
        ],
        "sensors": [
            {
                "integration-name": "Service Provider Pro (SPP)",
                "python-modules": ["airflow_provider_spp.sensors.order_messages"],
            }
        ],
        "triggers": [
            {
                "integration-name": "Service Provider Pro (SPP)",
                "python-modules": ["airflow_provider_spp.triggers.order_messages"],
            }
        ],
        "notifications": ["airflow_provider_spp.notifications.spp.SppOrderMessageNotifier"],
        "connection-types": [
            {
                "hook-class-name": "airflow_provider_spp.hooks.spp.SppHook",
                "hook-name": "Service Provider Pro (SPP)",
                "connection-type": "spp",
                "ui-field-behaviour": {key.replace("_", "-"): value for key, value in UI_FIELD_BEHAVIOUR.items()},
                "conn-fields": CONN_FIELDS,
            }
        ],
    }
