"""Files to attach to an order message: checked up front, streamed from disk or object storage."""

from __future__ import annotations

import hashlib
import io
import mimetypes
import os
import pathlib
import stat
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

from airflow_provider_spp.exceptions import SppAttachmentUnavailableError, SppInputError

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
    #: What tells this file's content from a regenerated one's without reading it: the modification
    #: time (local files, object storage), a digest (bytes in memory), an ETag; None when unknown.
    version: str | None = None


#: The type of a compressed file, by the encoding ``mimetypes`` reads from its suffix: ``data.csv.gz``
#: holds gzip bytes, not CSV text. Brotli has no registered type, so it stays application/octet-stream.
_COMPRESSED_TYPES = {
    "gzip": "application/gzip",
    "bzip2": "application/x-bzip2",
    "xz": "application/x-xz",
    "compress": "application/x-compress",
    "zstd": "application/zstd",
}


def _content_type(filename: str) -> str:
    """Guess a MIME type from the file name; a compressed file (.gz, .bz2, .xz...) is its compression's type."""
    kind, encoding = mimetypes.guess_type(filename)
    if encoding is not None:
        return _COMPRESSED_TYPES.get(encoding, "application/octet-stream")
    return kind or "application/octet-stream"


class ConcealedBytes(bytes):
    """The bytes of an in-memory attachment, shown only as their size wherever they are printed or stored.

    Airflow stores template fields as their ``str()`` (rendered fields, the serialized DAG, the UI's
    Rendered Template view); for plain bytes that is the data itself, which may be a client's.
    """

    def __repr__(self) -> str:
        return f"<{len(self)} bytes in memory>"

    __str__ = __repr__


def conceal_in_memory_content(attachments: Any) -> Any:
    """The attachments with each ``(name, bytes)`` pair's bytes as ConcealedBytes; anything else as it is."""
    if not isinstance(attachments, list | tuple):
        return attachments

    def conceal(item: Any) -> Any:
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], bytes | bytearray | memoryview):
            return (item[0], item[1] if isinstance(item[1], ConcealedBytes) else ConcealedBytes(item[1]))
        return item

    return type(attachments)(conceal(item) for item in attachments)


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
    stat = path.stat()
    return Attachment(
        filename=path.name,
        content_type=_content_type(path.name),
        size=stat.st_size,
        opener=lambda: path.open("rb"),
        description=str(path),
        version=f"mtime:{stat.st_mtime_ns}",
    )


#: Errors that say for certain the object is not a readable file; any other error may pass on a retry.
_CERTAINLY_NOT_A_FILE = (FileNotFoundError, NotADirectoryError, IsADirectoryError)


@contextmanager
def _asking_storage(path: Any, *, doing: str, missing: str) -> Iterator[None]:
    """Turn object-storage errors into SppInputError (certainly no such file) or a retryable error."""
    try:
        yield
    except _CERTAINLY_NOT_A_FILE:
        raise SppInputError(f"Attachment {missing}: {path}") from None
    except Exception as err:
        raise SppAttachmentUnavailableError(
            f"Attachment could not be {doing}: {path} ({type(err).__name__}: {err}); a retry may succeed"
        ) from None


def _unserved_scheme(path: Any) -> str | None:
    """Why no installed filesystem serves this path's scheme, if none does: certain, a retry cannot help.

    On Airflow 3.1 an ObjectStoragePath with an unknown scheme is built fine and fails only when used.
    """
    try:
        path.fs  # noqa: B018 - resolving the filesystem is the check
    except (ValueError, ImportError) as err:
        return str(err)
    except Exception:
        return None  # the storage's own errors are classified when stat() asks
    return None


def _object_storage_file(path: Any) -> Attachment:
    """Check an ObjectStoragePath (s3://, gs://, file://...) names a file, telling missing from unreachable.

    ``stat()`` is asked rather than ``is_file()``/``exists()``: fsspec's versions of those answer False
    for any error, so a network blip would pass for a missing file and fail the task without retries.
    """
    reason = _unserved_scheme(path)
    if reason is not None:
        raise SppInputError(f"Attachment cannot be read: {path} ({reason})")
    with _asking_storage(path, doing="checked", missing="not found"):
        status = path.stat()
    if not stat.S_ISREG(status.st_mode):
        raise SppInputError(f"Attachment is not a file: {path}")

    def open_stream() -> io.IOBase:
        with _asking_storage(path, doing="opened", missing="disappeared before it was sent"):
            return _SizedStream(path.open("rb"), owned=True)

    return Attachment(
        filename=path.name,
        content_type=_content_type(path.name),
        size=int(status.st_size) if getattr(status, "st_size", None) is not None else None,
        opener=open_stream,
        description=str(path),
        version=_object_version(status),
    )


def _object_version(stat: Any) -> str | None:
    """An object's ETag or modification time, from whatever its filesystem reports."""
    if stat is None:
        return None
    info = stat if isinstance(stat, Mapping) else getattr(stat, "_info", None) or {}
    for key in ("ETag", "etag", "md5Hash", "generation", "LastModified", "last_modified", "updated", "mtime"):
        if info.get(key) is not None:
            return f"{key}:{info[key]}"
    mtime = getattr(stat, "st_mtime", None)
    return f"mtime:{mtime}" if mtime is not None else None


def _in_memory_file(filename: Any, content: Any) -> Attachment:
    """A ``(filename, bytes or binary file)`` pair; a file object must be seekable so a retry can re-send it."""
    if not isinstance(filename, str) or not filename.strip():
        raise SppInputError(f"Attachment tuple needs a file name as its first item, got {filename!r}")
    name = pathlib.PurePath(filename.replace("\\", "/")).name
    if not name:
        raise SppInputError(f"Attachment file name {filename!r} has no name part")
    if isinstance(content, bytes | bytearray | memoryview):
        data = bytes(content)
        digest = f"sha256:{hashlib.sha256(data).hexdigest()}"
        return Attachment(name, _content_type(name), len(data), lambda: io.BytesIO(data), f"{name} (in memory)", digest)
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

    def seekable(self) -> bool:
        return bool(getattr(self._raw, "seekable", lambda: False)())

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        """Move in the underlying stream (httpx measures a part's length by seeking to its end and back)."""
        return int(self._raw.seek(offset, whence))

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
