"""SppOrderActivityTrigger's arguments: a bad one fails when the DAG is parsed, with a message saying which."""

from __future__ import annotations

import math
from typing import Any

import pytest

from airflow_provider_spp.exceptions import SppInputError
from airflow_provider_spp.triggers.order_activity import SppOrderActivityTrigger


def test_a_single_order_or_status_string_is_one_order_or_status_not_its_characters() -> None:
    trigger = SppOrderActivityTrigger(orders="E4A269FC", statuses="Working")
    kwargs = trigger.serialize()[1]
    assert kwargs["orders"] == ["E4A269FC"]
    assert kwargs["statuses"] == ["Working"]
    assert SppOrderActivityTrigger(orders=1001).serialize()[1]["orders"] == ["1001"]


def test_statuses_keep_integers_and_labels_as_given() -> None:
    kwargs = SppOrderActivityTrigger(statuses=[2, "Working", 2]).serialize()[1]
    assert kwargs["statuses"] == [2, "Working"]
    assert SppOrderActivityTrigger(statuses=3).serialize()[1]["statuses"] == [3]


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"poll_interval": 0}, "poll_interval must be a positive number of seconds"),
        ({"poll_interval": -5}, "poll_interval must be a positive number of seconds"),
        ({"poll_interval": math.nan}, "poll_interval must be a positive number of seconds"),
        ({"poll_interval": math.inf}, "poll_interval must be a positive number of seconds"),
        ({"poll_interval": "60"}, "poll_interval must be a positive number of seconds"),
        ({"lookback": -1}, "lookback must be a number of seconds >= 0"),
        ({"lookback": math.nan}, "lookback must be a number of seconds >= 0"),
        ({"orders": []}, "orders must name at least one order"),
        ({"orders": [""]}, "order must be an order ID or order number"),
        ({"orders": [1.5]}, "order must be an order ID or order number"),
        ({"statuses": []}, "statuses must name at least one status"),
        ({"statuses": [True]}, "a status is an integer code or a label"),
        ({"statuses": [" "]}, "a status is an integer code or a label"),
        ({"max_catch_up": 0}, "max_catch_up must be a positive whole number"),
        ({"max_catch_up": 2.5}, "max_catch_up must be a positive whole number"),
        ({"max_catch_up_age": -1}, "max_catch_up_age must be a positive number of seconds"),
    ],
)
def test_bad_arguments_raise_spp_input_error_naming_the_argument(kwargs: dict[str, Any], fragment: str) -> None:
    with pytest.raises(SppInputError, match=fragment):
        SppOrderActivityTrigger(**kwargs)
