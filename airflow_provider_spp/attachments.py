"""Files to attach to an order message: checked up front, streamed from disk or object storage."""

from __future__ import annotations

import io
import mimetypes
import os
import pathlib
import sys
from collections.abc import Callable, Iterable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

from airflow_provider_spp.exceptions import SppInputError

if TYPE_CHECKING:
    from requests_toolbelt import MultipartEncoder

#: What ``attachments=[...]`` accepts: a local path, an ObjectStoragePath (or ``s3://...`` string),
#: or a ``(filename, bytes or binary file)`` tuple.
AttachmentLike = str | os.PathLike[str] | tuple[str, bytes | IO[bytes]] | Any

FORM_FIELD = "attachments[]"


@dataclass(frozen=True)
class Attachment:
    """One file ready to upload: its name, type, size, and a way to open a fresh stream of its bytes."""

    filename: str
    content_type: str
    size: int | None
    opener: Callable[[], io.IOBase]
    description: str


def _content_type(filename: str) -> str:
    """Guess a MIME type from the file name, as a browser upload would."""
    return mimetypes.guess_type(filename)[0] or "application/octet-stream"


def _local_file(path: pathlib.Path) -> Attachment:
    """Check a local file exists and can be read, without reading it."""
    if not path.exists():
        raise SppInputError(f"Attachment not found: {path}")
    if not path.is_file():
        raise SppInputError(f"Attachment is not a regular file: {path}")
    try:
        with path.open("rb"):
            pass
    except OSError as err:
        raise SppInputError(f"Attachment cannot be read: {path} ({err.strerror or err})") from None
    return Attachment(
        filename=path.name,
        content_type=_content_type(path.name),
        size=path.stat().st_size,
        opener=lambda: path.open("rb"),
        description=str(path),
    )


def _object_storage_file(path: Any) -> Attachment:
    """Check an ObjectStoragePath (s3://, gs://, file://...) names a readable file."""
    try:
        is_file = path.is_file()
    except Exception as err:
        raise SppInputError(f"Attachment cannot be checked: {path} ({type(err).__name__}: {err})") from None
    if not is_file:
        what = "is not a file" if path.exists() else "not found"
        raise SppInputError(f"Attachment {what}: {path}")
    try:
        size: int | None = int(path.stat().st_size)
    except Exception:
        size = None
    return Attachment(
        filename=path.name,
        content_type=_content_type(path.name),
        size=size,
        opener=lambda: _SizedStream(path.open("rb"), owned=True),
        description=str(path),
    )


def _in_memory_file(filename: Any, content: Any) -> Attachment:
    """A ``(filename, bytes or binary file)`` pair; a file object must be seekable so a retry can re-send it."""
    if not isinstance(filename, str) or not filename.strip():
        raise SppInputError(f"Attachment tuple needs a file name as its first item, got {filename!r}")
    name = pathlib.PurePath(filename.replace("\\", "/")).name
    if not name:
        raise SppInputError(f"Attachment file name {filename!r} has no name part")
    if isinstance(content, bytes | bytearray | memoryview):
        data = bytes(content)
        return Attachment(name, _content_type(name), len(data), lambda: io.BytesIO(data), f"{name} (in memory)")
    if hasattr(content, "read") and hasattr(content, "seek"):
        if hasattr(content, "seekable") and not content.seekable():
            raise SppInputError(f"Attachment {name!r}: the file object must be seekable")
        start = content.tell()
        if isinstance(content.read(0), str):
            raise SppInputError(f"Attachment {name!r}: open the file in binary mode ('rb'), not text mode")

        def rewind() -> io.IOBase:
            content.seek(start)
            return _SizedStream(content, owned=False)

        return Attachment(name, _content_type(name), None, rewind, f"{name} (file object)")
    raise SppInputError(
        f"Attachment {name!r}: content must be bytes or a binary file object, got {type(content).__name__}"
    )


class _SizedStream(io.RawIOBase):
    """A readable stream that tells its remaining length (the multipart encoder needs it up front).

    Object-storage files and callers' file objects often cannot tell it; a caller's file is also left
    open afterwards, since it is theirs.
    """

    def __init__(self, raw: Any, *, owned: bool) -> None:
        super().__init__()
        self._raw = raw
        self._owned = owned

    @property
    def len(self) -> int:
        """Offset of the stream's end (the encoder subtracts ``tell()`` itself to get what is left)."""
        here = self._raw.tell()
        end = self._raw.seek(0, io.SEEK_END)
        self._raw.seek(here)
        return int(end)

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        return bytes(self._raw.read(-1 if size is None else size))

    def readinto(self, buffer: Any) -> int:
        data = self._raw.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def tell(self) -> int:
        return int(self._raw.tell())

    def close(self) -> None:
        if self._owned and not self.closed:
            self._raw.close()
        super().close()


def is_object_storage_path(value: Any) -> bool:
    """Whether ``value`` is an ObjectStoragePath (any universal-pathlib path), without importing Airflow.

    Ask this before treating a value as a local path: universal-pathlib 0.2 (Airflow 3.1) makes these
    ``pathlib.Path`` subclasses too. If ``upath`` was never imported, no such path can exist.
    """
    upath = sys.modules.get("upath")
    return upath is not None and isinstance(value, upath.UPath)


def _object_storage_path(url: str) -> Any:
    """Build an ObjectStoragePath for a ``scheme://`` string (imported only when one is used)."""
    from airflow.providers.common.compat.sdk import ObjectStoragePath

    try:
        return ObjectStoragePath(url)
    except (ValueError, TypeError, ImportError) as err:
        raise SppInputError(f"Attachment {url!r} is not a usable object-storage URL ({err})") from None


def prepare_attachments(attachments: Iterable[AttachmentLike] | None) -> list[Attachment]:
    """Check every attachment before any request, so a missing file never leaves a half-posted message."""
    if attachments is None:
        return []
    if (
        isinstance(attachments, str | bytes | os.PathLike | Mapping)
        or hasattr(attachments, "read")
        or not isinstance(attachments, Iterable)
    ):
        raise SppInputError(
            f"attachments must be a list of files, got {type(attachments).__name__}; "
            "wrap a single file in a list: attachments=[path]"
        )
    prepared = []
    for item in attachments:
        if isinstance(item, Attachment):
            prepared.append(item)
        elif isinstance(item, tuple):
            if len(item) != 2:
                raise SppInputError(f"Attachment tuple must be (filename, content), got {len(item)} items")
            prepared.append(_in_memory_file(*item))
        elif isinstance(item, str) and "://" in item:
            prepared.append(_object_storage_file(_object_storage_path(item)))
        elif is_object_storage_path(item):
            prepared.append(_object_storage_file(item))
        elif isinstance(item, str | os.PathLike):
            if not str(item).strip():
                raise SppInputError("Attachment path is empty")
            prepared.append(_local_file(pathlib.Path(os.fspath(item)).expanduser()))
        else:
            raise SppInputError(
                f"Attachment must be a path, an ObjectStoragePath or a (filename, bytes) tuple, "
                f"got {type(item).__name__}"
            )
    return prepared


def multipart_encoder(
    fields: list[tuple[str, str]], attachments: list[Attachment], stack: ExitStack
) -> MultipartEncoder:
    """A streaming multipart body: files are read chunk by chunk as the request is sent, never whole."""
    from requests_toolbelt import MultipartEncoder

    parts: list[tuple[str, Any]] = list(fields)
    for attachment in attachments:
        stream = stack.enter_context(attachment.opener())
        parts.append((FORM_FIELD, (attachment.filename, stream, attachment.content_type)))
    return MultipartEncoder(fields=parts)
