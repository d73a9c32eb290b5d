"""How the activity trigger reads a listing it asked for newest first: where it may stop, and the time filter.

Pure: the trigger feeds each listed item's time. The server may ignore the sort (a stand-in, a workspace
without Laravel Purity, answering in primary-key order). A prefix cannot prove a listing sorted (a new item
then old ones looks sorted in any order), so the orders listing is trusted only once a whole listing was
read and found newest first (the baseline reads it whole); a step up at any time withdraws the trust, and
ties prove nothing (a listing of equal times is read to its end). One order's messages are read until a
step down proved them newest first, then to the first old one.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from airflow_provider_spp._internal.listing_order import ListingOrder


class ListingReader:
    """Feed each item's time with :meth:`is_old`; :attr:`done` says when the rest can only be older."""

    def __init__(self, *, trusted: bool, on_unsorted: Callable[[], None] | None = None) -> None:
        #: Whether the listing is known to come newest first (then it stops at the first old item).
        self.trusted = trusted
        self._order = ListingOrder()
        self._on_unsorted = on_unsorted

    def is_old(self, moment: datetime, horizon: datetime) -> bool:
        """Take the next item's time; whether it is older than the horizon."""
        was_sorted = self._order.newest_first is not False
        self._order.feed(moment)
        if was_sorted and self._order.newest_first is False and self._on_unsorted is not None:
            self._on_unsorted()
        return moment < horizon

    @property
    def done(self) -> bool:
        """Whether the items still to come can only be older (trusted and not contradicted, or proven here)."""
        if self._order.newest_first is None:
            return self.trusted
        return self._order.newest_first

    @property
    def sorted(self) -> bool:
        """Whether the listing may be trusted next time: proven newest first here, or trusted and not contradicted."""
        return self.done


def purity_time(moment: datetime) -> str:
    """A Purity filter value for a timestamp column: UTC, whole seconds rounded down, as Laravel stores it.

    Assumption (Wayfront's docs are silent): the column is compared as MySQL compares a ``DATETIME`` in
    UTC with ``'YYYY-MM-DD HH:MM:SS'``; rounding down never leaves out an item at the boundary.
    """
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
