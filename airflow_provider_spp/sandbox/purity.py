"""Laravel Purity filters and sorts, as a Wayfront list endpoint applies them to orders and order messages.

``filters[field][$op]=value`` with ``$eq $ne $lt $gt $lte $gte $in $notIn $null $notNull $between $contains
$notContains $startsWith $endsWith`` (list operands as ``filters[f][$in][0]=a&filters[f][$in][1]=b``), and
``sort=field:asc|desc`` (or ``sort[]=...`` for several). Several conditions must all hold. Assumptions where
neither Wayfront's docs nor Purity say (a MySQL backend, as Laravel apps usually have):

* values are compared with the column's type: integers and booleans (``1``/``0``, also ``true``/``false``)
  as numbers, timestamps as instants (ISO-8601 with or without offset, naive = UTC), text case-insensitively
  (MySQL's default collation). A value that does not fit the column (a status *label* against integer
  status codes) matches nothing; note that MySQL itself would cast a non-numeric string to 0 and match
  code 0 instead;
* a null column matches no comparison (SQL), only ``$null``; NULLs sort first ascending, last descending;
* ties keep the primary key order of the sort's direction;
* an undeclared field, operator or relation is ignored (Purity's default ``'silent' => true``) unless the
  ``unknown_fields="error"`` switch makes it fail with Purity's exception text, answered with
  ``query_error_status`` (500 ``{"message": "Server Error"}`` is what Laravel does with an unhandled
  ``InvalidArgumentException``; 400 or 422 if the workspace maps it);
* ``ignore_filters_and_sort``: a workspace without Purity (or a stand-in server) answers the unfiltered
  listing in primary-key order (oldest first) whatever the query says.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, TypeVar

from airflow_provider_spp.sandbox.workspace import WorkspaceSettings

__all__ = [
    "MESSAGE_MODEL",
    "ORDER_MODEL",
    "QueryRejected",
    "apply_query",
    "instant",
]

T = TypeVar("T")
#: Reads a field of a listed item (an order dict or a stored message).
Reader = Callable[[Any, str], Any]

OPERATORS = (
    "$eq", "$ne", "$lt", "$gt", "$lte", "$gte", "$in", "$notIn", "$null", "$notNull",
    "$between", "$contains", "$notContains", "$startsWith", "$endsWith",
)  # fmt: skip
_FILTER = re.compile(r"^filters\[(?P<field>[^\[\]]*)\](?P<rest>(?:\[[^\[\]]*\])*)$")
_SORT = re.compile(r"^sort(?:\[\d*\])?$")
_INTEGER = re.compile(r"[+-]?\d+")


@dataclass(frozen=True)
class PurityModel:
    """A listed model: its class name (for error texts), its fields and their kinds, and its default order."""

    name: str
    #: Filterable and sortable fields: "int", "bool", "datetime", "text" or "status" (int or text by status_style).
    kinds: Mapping[str, str]
    #: The order without ``sort``: (field, descending).
    default_sort: tuple[str, bool] = ("created_at", True)

    def kind(self, name: str, settings: WorkspaceSettings) -> str | None:
        """The comparison kind of a field, or None when the field is not declared."""
        kind = self.kinds.get(name)
        if kind == "status":
            return "int" if settings.status_style == "code" else "text"
        return kind


ORDER_MODEL = PurityModel(
    "App\\Models\\Order",
    {
        "id": "int",
        "number": "text",
        "status": "status",
        "user_id": "int",
        "created_at": "datetime",
        "updated_at": "datetime",
        "last_message_at": "datetime",
    },
)
MESSAGE_MODEL = PurityModel(
    "App\\Models\\OrderMessage",
    {
        "id": "int",
        "user_id": "int",
        "order_id": "int",
        "created_at": "datetime",
        "staff_only": "bool",
        "is_auto_generated": "bool",
        "via": "text",
        "date_seen": "datetime",
    },
)


class QueryRejected(Exception):
    """A filter or sort the workspace refuses: Purity's exception, answered with ``status``."""

    def __init__(self, status: int, message: str, parameter: str) -> None:
        """Remember the answer."""
        super().__init__(message)
        self.status = status
        self.message = message
        self.parameter = parameter

    def body(self) -> dict[str, Any]:
        """The JSON the workspace answers with."""
        if self.status == 500:
            return {"message": "Server Error"}
        if self.status == 422:
            return {"message": self.message, "errors": {self.parameter: [self.message]}}
        return {"message": self.message}


@dataclass(frozen=True)
class Condition:
    """One ``filters[field][$op]`` with its operand(s)."""

    field: str
    operator: str | None
    values: tuple[str, ...]


def parse_filters(query: Iterable[tuple[str, str]]) -> list[Condition]:
    """The ``filters[...]`` of a query, grouped by field and operator (operator None: none or a relation)."""
    grouped: dict[tuple[str, str | None], list[str]] = {}
    for name, value in query:
        match = _FILTER.match(name)
        if match is None:
            continue
        parts = re.findall(r"\[([^\[\]]*)\]", match["rest"])
        field, operator = match["field"], parts[0] if parts else None
        if operator is not None and not operator.startswith("$"):
            field, operator = f"{field}.{operator}", None  # a relation filter: not modelled
        grouped.setdefault((field, operator), []).append(value)
    return [Condition(field, operator, tuple(values)) for (field, operator), values in grouped.items()]


def parse_sorts(query: Iterable[tuple[str, str]]) -> list[tuple[str, bool]]:
    """The ``sort`` entries of a query as (field, descending); ``field`` alone sorts ascending."""
    sorts = []
    for name, value in query:
        if _SORT.match(name):
            field, _, direction = value.rpartition(":") if ":" in value else (value, "", "asc")
            sorts.append((field.strip(), direction.strip().lower() == "desc"))
    return sorts


def _rejected(settings: WorkspaceSettings, message: str, parameter: str) -> QueryRejected:
    """The error a refused filter or sort raises."""
    return QueryRejected(settings.query_error_status, message, parameter)


def _not_supported(model: PurityModel, field: str, supported: Iterable[str]) -> str:
    """Purity's FieldNotSupported text."""
    return f"The field '{field}' is not supported for model {model.name}. Supported fields : {', '.join(supported)}"


def checked_filters(
    conditions: Sequence[Condition], model: PurityModel, settings: WorkspaceSettings
) -> list[Condition]:
    """The conditions the workspace applies: undeclared ones dropped, or rejected under ``unknown_fields="error"``;
    ``rejected_filters`` fail."""
    kept = []
    for condition in conditions:
        if condition.field in settings.rejected_filters:
            filterable = [name for name in model.kinds if name not in settings.rejected_filters]
            raise _rejected(settings, _not_supported(model, condition.field, filterable), f"filters.{condition.field}")
        if condition.field in model.kinds and condition.operator in OPERATORS:
            kept.append(condition)
        elif settings.unknown_fields == "error":
            parameter = f"filters.{condition.field}"
            if condition.field not in model.kinds:
                raise _rejected(settings, _not_supported(model, condition.field, model.kinds), parameter)
            message = f"No operator matches your request. Supported operators : {', '.join(OPERATORS)}"
            raise _rejected(settings, message, parameter)
    return kept


def checked_sorts(sorts: Sequence[tuple[str, bool]], model: PurityModel, settings: WorkspaceSettings) -> list[Any]:
    """The sorts the workspace applies: rejected ones fail, undeclared ones are dropped (or fail, strictly)."""
    sortable = [name for name in model.kinds if name not in settings.rejected_sorts]
    kept = []
    for field, descending in sorts:
        if field in sortable:
            kept.append((field, descending))
        elif field in settings.rejected_sorts or settings.unknown_fields == "error":
            raise _rejected(settings, _not_supported(model, field, sortable), "sort")
    return kept


def instant(value: Any) -> datetime | None:
    """A timestamp as an aware UTC datetime (ISO-8601, ``YYYY-MM-DD HH:MM:SS`` or a date), else None."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    else:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def typed(kind: str, value: Any) -> Any:
    """A column value or a filter operand in the column's type, or None (NULL, or not of that type)."""
    if value is None:
        return None
    if kind == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        return int(value) if isinstance(value, str) and _INTEGER.fullmatch(value.strip()) else None
    if kind == "bool":
        text = str(value).strip().lower()
        return {"1": True, "true": True, "0": False, "false": False}.get(text)
    if kind == "datetime":
        return instant(value)
    return str(value).casefold()


def _compare(operator: str, column: Any, operands: list[Any]) -> bool:
    """Whether a non-null column value satisfies an operator on typed operands (None operands never match)."""
    if operator in ("$in", "$notIn"):
        found = column in [o for o in operands if o is not None]
        return found if operator == "$in" else not found
    if any(o is None for o in operands) or not operands:
        return False
    if operator == "$between":
        return len(operands) == 2 and operands[0] <= column <= operands[1]
    tests: dict[str, Callable[[Any, Any], bool]] = {
        "$eq": lambda c, o: c == o,
        "$ne": lambda c, o: c != o,
        "$lt": lambda c, o: c < o,
        "$gt": lambda c, o: c > o,
        "$lte": lambda c, o: c <= o,
        "$gte": lambda c, o: c >= o,
        "$contains": lambda c, o: str(o) in str(c),
        "$notContains": lambda c, o: str(o) not in str(c),
        "$startsWith": lambda c, o: str(c).startswith(str(o)),
        "$endsWith": lambda c, o: str(c).endswith(str(o)),
    }
    return all(tests[operator](column, operand) for operand in operands)


def _matches(item: Any, condition: Condition, kind: str, read: Reader) -> bool:
    """Whether one listed item satisfies one condition."""
    raw = read(item, condition.field)
    if condition.operator in ("$null", "$notNull"):
        return (raw is None) == (condition.operator == "$null")
    column = typed(kind, raw)
    if column is None:
        return False
    if condition.operator in ("$contains", "$notContains", "$startsWith", "$endsWith"):
        column, kind = str(raw).casefold(), "text"
    operands = [typed(kind, value) for value in condition.values]
    assert condition.operator is not None
    return _compare(condition.operator, column, operands)


def _sort_key(kind: str, value: Any) -> tuple[bool, Any]:
    """A sort key putting NULLs (and values not of the column's type) first."""
    converted = typed(kind, value)
    return (converted is not None, converted if converted is not None else 0)


def apply_query(
    items: Sequence[T], query: Sequence[tuple[str, str]], model: PurityModel, settings: WorkspaceSettings, read: Reader
) -> list[T]:
    """The listing a Purity-enabled workspace answers: ``items`` filtered and sorted as ``query`` asks."""
    if settings.ignore_filters_and_sort:
        return sorted(items, key=lambda item: typed("int", read(item, "id")) or 0)
    conditions = checked_filters(parse_filters(query), model, settings)
    sorts = checked_sorts(parse_sorts(query), model, settings) or [model.default_sort]
    kept = [
        item
        for item in items
        if all(_matches(item, c, model.kind(c.field, settings) or "text", read) for c in conditions)
    ]
    kept.sort(key=lambda item: typed("int", read(item, "id")) or 0, reverse=sorts[0][1])
    for field, descending in reversed(sorts):
        kept.sort(key=_key_of(field, model.kind(field, settings) or "text", read), reverse=descending)
    return kept


def _key_of(field: str, kind: str, read: Reader) -> Callable[[Any], tuple[bool, Any]]:
    """The sort key function of one field."""
    return lambda item: _sort_key(kind, read(item, field))
