"""How many calls a hook keeps in flight at once: a bulk send's POSTs, a batch of look-ups.

Kept apart from :mod:`~airflow_provider_spp._internal.bulk_sending` so the hooks can name the default
without importing the bulk send (a single post's task never needs it).
"""

from __future__ import annotations

from typing import Any

from airflow_provider_spp.exceptions import SppInputError

#: The most calls kept in flight at once (the transports pool 8 connections).
MAX_CONCURRENCY = 8
DEFAULT_CONCURRENCY = 4


def checked_concurrency(value: Any) -> int:
    """A whole number of calls in flight, 1 to MAX_CONCURRENCY."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_CONCURRENCY:
        raise SppInputError(f"concurrency must be a whole number from 1 to {MAX_CONCURRENCY}, got {value!r}")
    return value
