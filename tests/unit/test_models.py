"""Response models: tolerant of real-world bodies, strict only about the message ID."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError

from airflow_provider_spp import models
from airflow_provider_spp.models import Lenient, MessagePage, MessageResource, Order, SppModel

CLIENT = {
    "id": 2,
    "email": "user@example.org",
    "balance": "10.00",
    "address": {"line_1": "123 Main St", "city": "New York", "country": "US"},
    "role": {"id": 1, "name": "Administrator", "settings": 1, "team": True, "messaging": 3},
    "managers": [{"id": 25, "name": "John Doe", "email": "user@example.org", "role_id": 5}],
    "team_owner_ids": [1],
}

SPEC_EXAMPLE = {
    "id": 1,
    "user_id": 1,
    "created_at": "2021-09-01T00:00:00+00:00",
    "message": "Message",
    "staff_only": False,
    "files": ["https://example.spp.co/files/report.pdf"],
    "order": {"id": 1001, "number": "E4A269FC", "status": "In progress", "user_id": 2, "client": CLIENT},
    "ticket": {
        "id": 1,
        "subject": "Ticket subject",
        "form_data": {"field_1": "value_1"},
        "tags": ["a"],
        "employees": [{"id": 1, "name_f": "John", "name_l": "Doe", "group_id": 1, "role_id": 1}],
        "client": CLIENT,
    },
}


def test_spec_example_parses_into_nested_models() -> None:
    message = MessageResource.model_validate(SPEC_EXAMPLE)
    assert message.id == 1
    assert message.user_id == 1
    assert message.message == "Message"
    assert message.staff_only is False
    assert message.created_at == datetime(2021, 9, 1, tzinfo=UTC)
    assert message.files == ["https://example.spp.co/files/report.pdf"]
    assert message.order is not None
    assert message.order.number == "E4A269FC"
    assert message.order.user_id == 2
    client = message.order.client
    assert client is not None
    assert (client.id, client.email, client.team_owner_ids, client.team_member_ids) == (
        2,
        "user@example.org",
        [1],
        [],
    )


def test_what_the_provider_does_not_read_is_ignored() -> None:
    message = MessageResource.model_validate(SPEC_EXAMPLE)
    assert "ticket" not in MessageResource.model_fields
    assert not hasattr(message, "ticket")
    assert message.order is not None
    client = message.order.client
    assert client is not None
    assert not {"address", "role", "managers", "balance"} & set(client.model_dump())


def test_models_declare_their_public_names() -> None:
    assert set(models.__all__) >= {"MessagePage", "MessageResource", "Order", "OrderPage", "User"}
    assert all(hasattr(models, name) for name in models.__all__)


def test_unknown_fields_and_nulls_in_documented_required_fields_are_tolerated() -> None:
    message = MessageResource.model_validate(
        {
            "id": 7,
            "user_id": None,
            "created_at": None,
            "message": None,
            "staff_only": None,
            "files": None,
            "order": None,
            "ticket": None,
            "brand_new_field": {"x": 1},
        }
    )
    assert message.id == 7
    assert message.files == []
    assert message.order is None


@pytest.mark.parametrize("mode", ["python", "json"])
def test_unparsable_values_fall_back_instead_of_failing_after_the_message_exists(mode: str) -> None:
    payload = {
        "id": "12",
        "created_at": "yesterday",
        "staff_only": "sometimes",
        "order": "E4A269FC",
        "ticket": {"client": {"team_owner_ids": None, "address": []}},
    }
    order_payload = {"id": 1, "client": {"team_owner_ids": None, "address": []}}
    if mode == "json":
        message = MessageResource.model_validate_json(json.dumps(payload))
    else:
        message = MessageResource.model_validate(payload)
    assert message.id == 12
    assert message.created_at is None
    assert message.staff_only is None
    assert message.order is None
    order = (
        Order.model_validate_json(json.dumps(order_payload)) if mode == "json" else Order.model_validate(order_payload)
    )
    assert order.client is not None
    assert order.client.team_owner_ids == []


@pytest.mark.parametrize("bad", [{}, {"id": None}, {"id": True}, {"id": 1.5}, {"id": "abc"}, {"message": "x"}])
def test_a_message_without_an_integer_id_is_rejected(bad: dict) -> None:
    with pytest.raises(ValidationError):
        MessageResource.model_validate(bad)


def test_models_are_immutable() -> None:
    message = MessageResource.model_validate({"id": 1})
    with pytest.raises(ValidationError):
        message.id = 2  # type: ignore[misc]


def test_page_keeps_links_and_rejects_a_message_without_id() -> None:
    page = MessagePage.model_validate(
        {"data": [{"id": 3}, {"id": 2}], "links": {"next": "https://x/api?page=2", "prev": None}, "meta": {}}
    )
    assert [m.id for m in page.data] == [3, 2]
    assert page.links.next == "https://x/api?page=2"
    with pytest.raises(ValidationError):
        MessagePage.model_validate({"data": [{"id": 3}, {"message": "no id"}]})


def _lenient_fields() -> Iterator[tuple[type[BaseModel], str]]:
    marker = type(Lenient.__metadata__[0])  # type: ignore[attr-defined]
    for model in vars(models).values():
        if isinstance(model, type) and issubclass(model, SppModel) and model is not SppModel:
            for name, info in model.model_fields.items():
                if any(isinstance(m, marker) for m in info.metadata):
                    yield model, name


#: Values of which at least one fails any field type (checked per field below).
_CANDIDATES: list[Any] = [{"not": "valid"}, "not valid", 1.5, [{"not": "valid"}]]


@pytest.mark.parametrize(("model", "name"), list(_lenient_fields()), ids=lambda v: getattr(v, "__name__", v))
def test_every_lenient_field_falls_back_to_its_declared_default(model: type[BaseModel], name: str) -> None:
    info = model.model_fields[name]
    strict = TypeAdapter(info.annotation)  # the field's type without the fallback

    def rejected(value: Any) -> bool:
        try:
            strict.validate_python(value)
        except ValidationError:
            return True
        return False

    bad = next(value for value in _CANDIDATES if rejected(value))
    base = {"id": 1} if "id" in model.model_fields and name != "id" else {}
    parsed = model.model_validate({**base, name: bad})
    assert getattr(parsed, name) == info.get_default(call_default_factory=True)
    assert getattr(model.model_validate_json(json.dumps({**base, name: bad})), name) == getattr(parsed, name)


@pytest.mark.parametrize(
    ("sent", "kept"),
    [(2, 2), (0, 0), ("Working", "Working"), ("2", "2"), (None, None), ({"id": 2}, None), ([2], None)],
)
def test_an_order_status_is_kept_as_sent_code_or_label(sent: Any, kept: Any) -> None:
    """Wayfront sends an integer code ("Status is a number, not a label"); older workspaces a label."""
    order = Order.model_validate({"id": 1001, "status": sent})
    assert order.status == kept
    assert type(order.status) is type(kept)


WAYFRONT_MESSAGE = {
    "id": 7,
    "user_id": 2,
    "created_at": "2026-11-30T09:00:00+00:00",
    "message": "Order status changed to Working",
    "staff_only": False,
    "is_auto_generated": True,
    "via": "email",
    "date_seen": "2026-11-30T09:05:00Z",
}


def test_a_message_carries_who_wrote_it_how_it_arrived_and_when_it_was_seen() -> None:
    message = MessageResource.model_validate(WAYFRONT_MESSAGE)
    assert message.is_auto_generated is True
    assert message.via == "email"
    assert message.date_seen == datetime(2026, 11, 30, 9, 5, tzinfo=UTC)
    plain = MessageResource.model_validate({"id": 8})
    assert (plain.is_auto_generated, plain.via, plain.date_seen) == (None, None, None)


@pytest.mark.parametrize(
    ("field", "sent", "kept"),
    [
        ("is_auto_generated", 1, True),
        ("is_auto_generated", "0", False),
        ("is_auto_generated", "sometimes", None),
        ("via", "web", "web"),
        ("via", 3, 3),
        ("via", {"name": "web"}, None),
        ("date_seen", None, None),
        ("date_seen", "not a date", None),
    ],
)
def test_message_fields_are_tolerant(field: str, sent: Any, kept: Any) -> None:
    """A value that does not parse becomes None: never fail a task over a field it only reports."""
    message = MessageResource.model_validate({**WAYFRONT_MESSAGE, field: sent})
    assert getattr(message, field) == kept
    assert message.id == 7
