"""Typed Wayfront (formerly Service Provider Pro, SPP) API resources (pydantic v2), tolerant of what a workspace sends.

Only the fields the provider reads are declared; everything else SPP sends (tickets, roles, addresses,
billing details, ...) is ignored. Only ``id`` is truly required: the vendor docs call many fields required
that real workspaces send as null or leave out, so every other field is optional, and a value that
does not parse (a malformed date, say) becomes ``None`` instead of failing the task after SPP has
already created the message.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from types import UnionType
from typing import Annotated, Any, TypedDict, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, GetCoreSchemaHandler, field_validator
from pydantic_core import CoreSchema, core_schema

from airflow_provider_spp.exceptions import SppError

__all__ = [
    "Lenient",
    "MessagePage",
    "MessageResource",
    "MessageSender",
    "Order",
    "OrderMessageRequest",
    "OrderPage",
    "OrderStatus",
    "PageLinks",
    "Sent",
    "SppModel",
    "User",
]


class _DefaultOnError:
    """Annotation marker: a value that fails to validate becomes the field's fallback instead of an error.

    The fallback follows the type: None where None is allowed, else an empty list or dict, else the model
    with its own defaults (the same as the field's declared default; tests check that). It is pydantic-core's
    own ``on_error="default"``, so parsing calls no Python per field.
    """

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        schema = handler(source)
        if get_origin(source) in (Union, UnionType) and type(None) in get_args(source):
            return core_schema.with_default_schema(schema, default=None, on_error="default")
        factory = get_origin(source) or source
        if factory not in (list, dict) and not (isinstance(factory, type) and issubclass(factory, BaseModel)):
            raise TypeError(f"Lenient[{source!r}] has no fallback: allow None, or use a list, dict or model")
        return core_schema.with_default_schema(schema, default_factory=factory, on_error="default")


#: An order status as a workspace sends it: an integer code (Wayfront) or a label (older workspaces).
OrderStatus = int | str

T = TypeVar("T")
#: A field that takes its default when the server sends something unparsable (or null for a list).
Lenient = Annotated[T, _DefaultOnError()]


class SppModel(BaseModel):
    """Base of every SPP resource: unknown fields ignored, instances immutable."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True, defer_build=True)


class User(SppModel):
    """A client or staff account: who it is, and the team ids that tell a client's reply from staff's."""

    id: Lenient[int | None] = None
    name: Lenient[str | None] = None
    name_f: Lenient[str | None] = None
    name_l: Lenient[str | None] = None
    email: Lenient[str | None] = None
    company: Lenient[str | None] = None
    role_id: Lenient[int | None] = None
    created_at: Lenient[datetime | None] = None
    team_owner_ids: Lenient[list[int]] = Field(default_factory=list)
    team_member_ids: Lenient[list[int]] = Field(default_factory=list)


class Order(SppModel):
    """An order (the vendor page does not document its fields; these are the common ones).

    ``status`` is kept exactly as the workspace sends it: an integer code (Wayfront: "Status is a number,
    not a label", customisable per workspace) or a label (older workspaces).
    """

    id: Lenient[int | None] = None
    number: Lenient[str | None] = None
    status: Lenient[int | str | None] = None
    service: Lenient[str | None] = None
    user_id: Lenient[int | None] = None
    client: Lenient[User | None] = None
    created_at: Lenient[datetime | None] = None
    last_message_at: Lenient[datetime | None] = None


class MessageResource(SppModel):
    """A message on an order, as SPP returns it after creating or listing it."""

    id: int
    user_id: Lenient[int | None] = None
    created_at: Lenient[datetime | None] = None
    message: Lenient[str | None] = None
    staff_only: Lenient[bool | None] = None
    #: URLs of the uploaded attachments.
    files: Lenient[list[str]] = Field(default_factory=list)
    order: Lenient[Order | None] = None
    #: True when the service wrote it (a status change, a reminder), not a person, whatever its ``user_id``.
    is_auto_generated: Lenient[bool | None] = None
    #: How it arrived, as the workspace names it (e.g. ``"web"`` for the portal, ``"email"``); kept as sent.
    via: Lenient[str | int | None] = None
    #: When the recipient saw it (None: not yet, or not reported).
    date_seen: Lenient[datetime | None] = None

    @field_validator("id", mode="before")
    @classmethod
    def _id_is_a_whole_number(cls, value: Any) -> Any:
        """Accept ``"17"`` or ``17.0`` from a loose backend, never ``True`` or ``17.5``."""
        if isinstance(value, bool):
            raise ValueError("id must be an integer, not a boolean")
        if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
            raise ValueError("id must be a whole number")
        return value


class PageLinks(SppModel):
    """Laravel paginator links; ``next`` is None on the last page."""

    first: Lenient[str | None] = None
    last: Lenient[str | None] = None
    prev: Lenient[str | None] = None
    next: Lenient[str | None] = None


class MessagePage(SppModel):
    """One page of an order's messages, newest first."""

    data: list[MessageResource] = Field(default_factory=list)
    links: Lenient[PageLinks] = Field(default_factory=PageLinks)
    meta: Lenient[dict[str, Any]] = Field(default_factory=dict)


class OrderPage(SppModel):
    """One page of orders."""

    data: list[Order] = Field(default_factory=list)
    links: Lenient[PageLinks] = Field(default_factory=PageLinks)
    meta: Lenient[dict[str, Any]] = Field(default_factory=dict)


_TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
_FALSE_WORDS = frozenset({"0", "false", "no", "off"})


def boolean_from(value: Any) -> bool | None:
    """Read True/False, 1/0 or the words true/false, yes/no, on/off; None when it is none of them."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE_WORDS | _FALSE_WORDS:
        return value.strip().lower() in _TRUE_WORDS
    return None


def order_reference(value: Any) -> str:
    """An order ID (positive int) or order number (non-blank str) as the text that goes in the URL."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return str(value)
    if isinstance(value, str) and value.strip().strip("."):
        return value.strip()
    raise ValueError(f"order must be an order ID or order number such as 'E4A269FC', got {value!r}")


class MessageSender(TypedDict, total=False):
    """Who a message is posted as and who may read it: ``user_id`` (default: the token's user) and
    ``staff_only`` (True: an internal note the client never sees)."""

    user_id: int | str | None
    staff_only: bool | str | None


class OrderMessageRequest(BaseModel):
    """What a caller asks to post; validated before any request so mistakes cost no HTTP call."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    order: str
    message: str
    user_id: int | None = None
    staff_only: bool | None = None

    @field_validator("order", mode="before")
    @classmethod
    def _order_is_an_id_or_number(cls, value: Any) -> str:
        """An order ID (int) or order number (str), never blank."""
        return order_reference(value)

    @field_validator("message", mode="before")
    @classmethod
    def _message_is_text(cls, value: Any) -> str:
        """A non-blank string."""
        if not isinstance(value, str):
            raise ValueError(f"message must be a string, got {type(value).__name__}")
        if not value.strip():
            raise ValueError("message is empty (after rendering, if it is a template)")
        return value

    @field_validator("user_id", mode="before")
    @classmethod
    def _user_id_is_whole(cls, value: Any) -> int | None:
        """A positive integer, or a string of digits such as a rendered template gives."""
        if value is None:
            return None
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value.strip())
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
        raise ValueError(f"user_id must be a positive integer, got {value!r}")

    @field_validator("staff_only", mode="before")
    @classmethod
    def _staff_only_is_boolean(cls, value: Any) -> bool | None:
        """True/False, 1/0, or the words true/false, yes/no, on/off."""
        if value is None:
            return None
        parsed = boolean_from(value)
        if parsed is None:
            raise ValueError(f"staff_only must be a boolean, got {value!r}")
        return parsed

    def sender(self) -> MessageSender:
        """The sender and visibility as a hook's keyword arguments."""
        return {"user_id": self.user_id, "staff_only": self.staff_only}

    def json_body(self) -> dict[str, Any]:
        """The JSON body SPP expects, leaving out what the caller did not set."""
        body: dict[str, Any] = {"message": self.message}
        if self.user_id is not None:
            body["user_id"] = self.user_id
        if self.staff_only is not None:
            body["staff_only"] = self.staff_only
        return body

    def form_fields(self) -> list[tuple[str, str]]:
        """The multipart text fields, with booleans as the "1"/"0" a Laravel boolean rule accepts."""
        fields = [("message", self.message)]
        if self.user_id is not None:
            fields.append(("user_id", str(self.user_id)))
        if self.staff_only is not None:
            fields.append(("staff_only", "1" if self.staff_only else "0"))
        return fields


@dataclass(frozen=True)
class Sent:
    """One post of a bulk send (``create_order_messages``): the message SPP created, or the error that ended it."""

    request: OrderMessageRequest
    message: MessageResource | None = None
    error: SppError | None = None
    #: SPP's clock from the ``Date`` of the POST's answer, when one came.
    spp_time: datetime | None = None
    #: Whether the post was never sent because the batch stopped (a 401 or 403 before it).
    not_sent: bool = False
