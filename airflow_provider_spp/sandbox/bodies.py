"""Request bodies the way a Laravel app sees them: parsing, input merging and message validation.

Faithful to Laravel where it matters to a client:

* JSON is recognised by a content type containing ``/json`` or ``+json``; invalid JSON is empty input;
* multipart and urlencoded fields use PHP naming (``attachments[]`` and ``attachments[0]`` are lists;
  otherwise the last value wins); query parameters fill in what the body does not set;
* the ``TrimStrings`` and ``ConvertEmptyStringsToNull`` middlewares: strings are trimmed and ``""``
  becomes null, so a blank message is "required", and the stored message is the trimmed text;
* rules ``message: required|string``, ``user_id: nullable|integer|exists:users,id``,
  ``staff_only: nullable|boolean`` (only ``true/false/0/1/"0"/"1"`` — **not** ``"true"``/``"false"``),
  ``attachments: nullable|array``, ``attachments.*: file``; messages in Laravel's English wording.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import parse_qsl

from starlette.datastructures import Headers, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from airflow_provider_spp.sandbox.store import NewFile

__all__ = [
    "ParsedBody",
    "ValidationFailed",
    "laravel_input",
    "parse_body",
    "validate_message",
]

V = TypeVar("V")

_MAX_PART_SIZE = 16 * 1024 * 1024
_INDEXED = re.compile(r"^(?P<name>[^\[\]]+)\[(?P<index>\d*)\]$")


@dataclass(frozen=True)
class ParsedBody:
    """A request body, parsed once: JSON value, or form fields and file parts."""

    #: "empty", "json", "form" (urlencoded), "multipart" or "other".
    kind: str
    size: int = 0
    json: Any = None
    fields: tuple[tuple[str, str], ...] = ()
    files: tuple[NewFile, ...] = ()
    #: Why the body could not be parsed (it then counts as empty input, as in PHP).
    error: str | None = None
    #: The first bytes of a body that is neither JSON nor a form, for the request log.
    preview: str | None = None

    def form_dict(self) -> dict[str, str | list[str]]:
        """Text fields for the request log: a string, or a list when a name repeats."""
        result: dict[str, str | list[str]] = {}
        for name, value in self.fields:
            previous = result.get(name)
            if previous is None:
                result[name] = value
            elif isinstance(previous, list):
                previous.append(value)
            else:
                result[name] = [previous, value]
        return result


def is_json_content_type(content_type: str) -> bool:
    """Laravel's ``isJson()``: the content type mentions ``/json`` or ``+json``."""
    lowered = content_type.lower()
    return "/json" in lowered or "+json" in lowered


async def _one_chunk(body: bytes) -> AsyncGenerator[bytes, None]:
    """The body as the async stream Starlette's parsers read."""
    yield body


async def parse_body(headers: Headers, body: bytes) -> ParsedBody:
    """Parse a complete body according to its content type; never raises."""
    content_type = headers.get("content-type", "")
    media_type = content_type.split(";", 1)[0].strip().lower()
    if not body and not media_type.startswith("multipart/"):
        return ParsedBody("empty")
    if is_json_content_type(content_type):
        try:
            return ParsedBody("json", len(body), json=json.loads(body))
        except (ValueError, UnicodeDecodeError) as err:
            return ParsedBody("json", len(body), error=f"invalid JSON: {err}")
    if media_type == "multipart/form-data":
        try:
            form = await MultiPartParser(headers, _one_chunk(body), max_part_size=_MAX_PART_SIZE).parse()
        except (MultiPartException, ValueError, KeyError) as err:
            return ParsedBody("multipart", len(body), error=f"invalid multipart body: {getattr(err, 'message', err)}")
        fields: list[tuple[str, str]] = []
        files: list[NewFile] = []
        for name, value in form.multi_items():
            if isinstance(value, UploadFile):
                data = await value.read()
                await value.close()
                files.append(NewFile(name, value.filename, value.content_type, data))
            else:
                fields.append((name, value))
        return ParsedBody("multipart", len(body), fields=tuple(fields), files=tuple(files))
    if media_type == "application/x-www-form-urlencoded":
        pairs = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True, errors="replace")
        return ParsedBody("form", len(body), fields=tuple(pairs))
    return ParsedBody("other", len(body), preview=body[:1000].decode("utf-8", "replace"))


def _php_params(items: list[tuple[str, Any]]) -> dict[str, Any]:
    """Fold ``name[]`` / ``name[3]`` into lists; other repeated names keep the last value."""
    params: dict[str, Any] = {}
    for name, value in items:
        match = _INDEXED.match(name)
        if match:
            existing = params.get(match["name"])
            if not isinstance(existing, list):
                existing = params[match["name"]] = []
            existing.append(value)
        else:
            params[name] = value
    return params


def _clean(value: Any) -> Any:
    """Laravel's TrimStrings + ConvertEmptyStringsToNull, applied recursively."""
    if isinstance(value, str):
        trimmed = value.strip()
        return trimmed or None
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    return value


def laravel_input(body: ParsedBody, query: list[tuple[str, str]]) -> dict[str, Any]:
    """``$request->all()``: body input over query parameters, cleaned, with uploaded files merged in."""
    values = _php_params(list(query))
    if body.kind == "json" and isinstance(body.json, dict):
        values.update(body.json)
    elif body.kind in ("form", "multipart"):
        values.update(_php_params(list(body.fields)))
    cleaned: dict[str, Any] = _clean(values)
    cleaned.update(_php_params([(part.field, part) for part in body.files]))
    return cleaned


class ValidationFailed(Exception):
    """Laravel's ValidationException: a 422 with ``message`` and ``errors``."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        """Keep the per-field messages."""
        self.errors = errors
        first = next(iter(errors.values()))[0]
        more = sum(len(v) for v in errors.values()) - 1
        self.message = f"{first} (and {more} more error{'s' if more > 1 else ''})" if more else first
        super().__init__(self.message)

    def body(self) -> dict[str, Any]:
        """The JSON a Laravel app answers with."""
        return {"message": self.message, "errors": self.errors}


@dataclass(frozen=True)
class MessageInput:
    """A valid create-message request."""

    message: str
    user_id: int | None = None
    staff_only: bool | None = None
    attachments: tuple[NewFile, ...] = ()


def _as_integer(value: Any) -> int | None:
    """PHP ``FILTER_VALIDATE_INT``-ish: an int, an integral float or a string of digits; else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"[+-]?\d+", value):
        return int(value)
    return None


def _as_boolean(value: Any) -> bool | None:
    """Laravel's ``boolean`` rule: exactly true, false, 0, 1, "0" or "1"; else None."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value in ("0", "1"):
        return value == "1"
    return None


def _optional(
    data: dict[str, Any], name: str, parse: Callable[[Any], V | None], rule: str, errors: dict[str, list[str]]
) -> V | None:
    """An optional field, parsed; a value that does not parse adds Laravel's "The <name> field <rule>." error."""
    if data.get(name) is None:
        return None
    value = parse(data[name])
    if value is None:
        errors[name] = [f"The {name.replace('_', ' ')} field {rule}."]
    return value


def validate_message(data: dict[str, Any], user_exists: Callable[[int], bool]) -> MessageInput:
    """Apply the create-message rules; raises :class:`ValidationFailed` with every failing field."""
    errors: dict[str, list[str]] = {}
    message = data.get("message")
    if message is None or message == [] or message == {}:
        errors["message"] = ["The message field is required."]
    elif not isinstance(message, str):
        errors["message"] = ["The message field must be a string."]

    user_id = _optional(data, "user_id", _as_integer, "must be an integer", errors)
    if user_id is not None and not user_exists(user_id):
        errors["user_id"] = ["The selected user id is invalid."]
    staff_only = _optional(data, "staff_only", _as_boolean, "must be true or false", errors)

    attachments: list[NewFile] = []
    raw = data.get("attachments")
    if raw is not None:
        if not isinstance(raw, list):
            errors["attachments"] = ["The attachments field must be an array."]
        else:
            for index, item in enumerate(raw):
                if isinstance(item, NewFile):
                    attachments.append(item)
                else:
                    errors[f"attachments.{index}"] = [f"The attachments.{index} field must be a file."]

    if errors:
        raise ValidationFailed(errors)
    assert isinstance(message, str)
    return MessageInput(message, user_id, staff_only, tuple(attachments))
