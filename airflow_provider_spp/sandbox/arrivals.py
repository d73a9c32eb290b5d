"""Messages that reach an order from outside the API: a client's reply (portal, email) or one the service writes.

Read from the admin API (``POST /_sandbox/orders/{order}/client_messages`` and ``.../auto_messages``) and
built by ``SandboxServer.post_as_client`` / ``post_auto_generated``: one declaration of the fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from airflow_provider_spp.sandbox.declared import checked_json
from airflow_provider_spp.sandbox.purity import instant

if TYPE_CHECKING:
    from airflow_provider_spp.sandbox.store import SandboxStore, StoredMessage

__all__ = [
    "ArrivingMessage",
    "status_changed_text",
]


@dataclass(frozen=True)
class ArrivingMessage:
    """A message arriving on an order, authored by the order's client unless ``user_id`` says otherwise."""

    message: str
    #: The author; None: the order's client (an auto-generated status message may carry the client's ID too).
    user_id: int | None = None
    #: How it arrived: "web" (the portal), "email", ...
    via: str = "web"
    #: The service wrote it (e.g. "Order status changed to Working"), not a person.
    is_auto_generated: bool = False
    staff_only: bool = False
    #: When the recipient saw it (a datetime or ISO-8601 text), or None.
    date_seen: datetime | None = None

    def __post_init__(self) -> None:
        """Validate and normalise (raises ValueError)."""
        if not isinstance(self.message, str) or not self.message.strip():
            raise ValueError(f"message must be a non-empty string, got {self.message!r}")
        if self.user_id is not None and (isinstance(self.user_id, bool) or not isinstance(self.user_id, int)):
            raise ValueError(f"user_id must be an integer or null, got {self.user_id!r}")
        if not isinstance(self.via, str) or not self.via.strip():
            raise ValueError(f"via must be a non-empty string such as web or email, got {self.via!r}")
        for name in ("is_auto_generated", "staff_only"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be true or false, got {getattr(self, name)!r}")
        object.__setattr__(self, "date_seen", _moment(self.date_seen))

    @classmethod
    def from_dict(cls, data: Any, **defaults: Any) -> ArrivingMessage:
        """Build from JSON such as ``{"message": "Thanks!", "via": "email"}``; ``defaults`` fill what it omits."""
        merged = {**defaults, **checked_json(cls, data, "a message", "message", ())}
        if "message" not in merged:
            raise ValueError("a message needs a 'message'")
        return cls(**merged)

    def store_on(self, store: SandboxStore, order_id: int) -> StoredMessage:
        """Store it on an order (which must exist), as arriving now."""
        if self.user_id is not None and not store.has_user(self.user_id):
            raise ValueError(f"no user {self.user_id}")
        return store.create_message(
            order_id=order_id,
            message=self.message,
            user_id=store.client_of(order_id) if self.user_id is None else self.user_id,
            staff_only=self.staff_only,
            via=self.via,
            is_auto_generated=self.is_auto_generated,
            date_seen=self.date_seen,
        )


def _moment(value: Any) -> datetime | None:
    """An aware UTC datetime from a datetime or ISO-8601 text (naive = UTC), or None."""
    moment = instant(value)
    if value is not None and moment is None:
        raise ValueError(f"date_seen must be an ISO-8601 timestamp or null, got {value!r}")
    return moment


def status_changed_text(label: Any) -> str:
    """The text of the service's auto-generated status message."""
    return f"Order status changed to {label}"
