"""Whether a listed message is the one a caller posted: same text (by digest), sender and visibility."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow_provider_spp.models import MessageResource


def normalized_text(text: str) -> str:
    """Message text as a server stores it, for comparison: line endings and outer blanks aside."""
    return text.replace("\r\n", "\n").strip()


def text_digest(text: str) -> str:
    """A digest of a message's text, so the ledger never has to keep the text itself."""
    return hashlib.sha256(normalized_text(text).encode()).hexdigest()


def is_same_post(candidate: MessageResource, digest: str, user_id: int | None, staff_only: bool | None) -> bool:
    """Whether a listed message is the one described: same text, and same sender/visibility where asked."""
    return is_one_of(candidate, (digest,), user_id, staff_only)


def is_one_of(candidate: MessageResource, digests: Sequence[str], user_id: int | None, staff_only: bool | None) -> bool:
    """Whether a listed message has one of these texts, and the sender/visibility where asked."""
    return (
        candidate.message is not None
        and text_digest(candidate.message) in digests
        and (user_id is None or candidate.user_id in (None, user_id))
        and (staff_only is None or candidate.staff_only in (None, staff_only))
    )
