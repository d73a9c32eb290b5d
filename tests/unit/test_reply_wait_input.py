"""Bad input to the reply wait fails when the DAG is parsed (a sensor or trigger is built), with a clear message."""

from __future__ import annotations

import math
from typing import Any

import pytest
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

from airflow_provider_spp.sensors.order_messages import SppOrderMessageSensor
from airflow_provider_spp.triggers.order_message import SppOrderMessageTrigger


def sensor(**kwargs: Any) -> SppOrderMessageSensor:
    return SppOrderMessageSensor(task_id="wait", **{"order": "E4A269FC", **kwargs})


@pytest.mark.parametrize("interval", [0, 0.0, -1, math.nan, math.inf, 0.01])
def test_a_poke_interval_that_would_hammer_spp_or_never_poll_is_refused(interval: float) -> None:
    with pytest.raises(ValueError, match="poke_interval"):
        sensor(poke_interval=interval)
    with pytest.raises(ValueError, match="poke_interval"):
        SppOrderMessageTrigger(order="E4A269FC", after_message_id=1, poke_interval=interval)


@pytest.mark.parametrize("timeout", [math.nan, math.inf])
def test_a_timeout_that_is_not_a_finite_number_is_refused(timeout: float) -> None:
    with pytest.raises(ValueError, match="timeout"):
        sensor(timeout=timeout)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"order": ["E4A269FC"]}, "order must be an order ID or order number"),
        ({"order": " "}, "order must be an order ID or order number"),
        ({"after_message_id": "latest"}, "after_message_id must be a positive message ID"),
        ({"after_message_id": 0}, "after_message_id must be a positive message ID"),
        ({"since": "yesterday"}, "since must be a datetime or an ISO-8601 string"),
        ({"pattern": "(unclosed"}, "pattern is not a valid regular expression"),
    ],
)
def test_bad_values_that_are_not_templates_fail_at_parse(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        sensor(**kwargs)


def test_templated_values_are_checked_only_once_rendered() -> None:
    waiting = sensor(
        order="{{ params.order }}",
        after_message_id="{{ ti.xcom_pull('post') }}",
        since="{{ data_interval_end }}",
        pattern="{{ params.pattern }}",
        poke_interval=0.2,
    )
    assert waiting.poke_interval == 0.2
    with DAG(dag_id="reply_wait_input", schedule=None):
        post = EmptyOperator(task_id="post")
        assert sensor(after_message_id=post.output).after_message_id == post.output  # an XComArg: resolved later
    assert sensor(pattern=r"^approved:\s+yes$", since="2026-12-01T12:00:00Z", after_message_id="42").pattern
