"""Whether a listing comes newest first, as seen from its items: the one place that tells."""

from __future__ import annotations

from typing import Any


class ListingOrder:
    """Feed each listed item's key (an ID or a time) in the order received; says whether it is newest first.

    ``newest_first`` is None until two different keys were seen, True while every step went down, and
    False for good once a step went up: a server that ignored the sort, or a listing that is not sorted.
    Readers stop early only on True (or, by their own choice, on None); a False listing is read to its end.
    """

    def __init__(self) -> None:
        self.newest_first: bool | None = None
        self._previous: Any = None

    def feed(self, key: Any) -> None:
        """Take the next item's key."""
        previous, self._previous = self._previous, key
        if previous is None or key == previous:
            return
        if key > previous:
            self.newest_first = False
        elif self.newest_first is None:
            self.newest_first = True
