"""SppHook uploading files over HTTP: multipart bodies, streamed with a length, byte for byte."""

from __future__ import annotations

import io
import os
from typing import Any
from urllib.parse import quote

import pytest

from airflow_provider_spp.models import MessageResource
from airflow_provider_spp.sandbox import SandboxServer
from tests.integration.hook.wire import (
    ORDER,
    HookFactory,
    download,
    logged,
    sha256,
)

pytestmark = pytest.mark.integration


# -- multipart ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("staff_only", "user_id", "expected_form"),
    [
        (True, 2, {"message": "Here are the files", "user_id": "2", "staff_only": "1"}),
        (False, None, {"message": "Here are the files", "staff_only": "0"}),
    ],
)
def test_multipart_create_uploads_every_kind_of_attachment_byte_for_byte(
    spp_sandbox: SandboxServer,
    make_hook: HookFactory,
    tmp_path: Any,
    staff_only: bool,
    user_id: int | None,
    expected_form: dict[str, str],
) -> None:
    from airflow.sdk import ObjectStoragePath

    report_bytes = os.urandom(300 * 1024)
    chart_bytes = b"\x89PNG\r\n\x1a\n" + os.urandom(2048)
    csv_bytes = b"a,b\r\n1,2\r\n\x00\xff"
    notes_bytes = "caf\u00e9 \u2713\n".encode()
    blob_bytes = os.urandom(4096)
    report = tmp_path / "report.pdf"
    report.write_bytes(report_bytes)
    (tmp_path / "notes.txt").write_bytes(notes_bytes)
    (tmp_path / "blob.zzz").write_bytes(blob_bytes)
    csv_stream = io.BytesIO(csv_bytes)

    expected = [
        ("report.pdf", "application/pdf", report_bytes),
        ("chart.png", "image/png", chart_bytes),
        ("data.csv", "text/csv", csv_bytes),
        ("notes.txt", "text/plain", notes_bytes),
        ("blob.zzz", "application/octet-stream", blob_bytes),
    ]
    hook = make_hook()
    created = hook.create_order_message(
        ORDER,
        "Here are the files",
        user_id=user_id,
        staff_only=staff_only,
        attachments=[
            report,
            ("chart.png", chart_bytes),
            ("data.csv", csv_stream),
            ObjectStoragePath(f"file://{tmp_path}/notes.txt"),
            f"file://{tmp_path}/blob.zzz",
        ],
    )

    (request,) = logged(spp_sandbox)
    assert request["method"] == "POST"
    assert request["path"] == f"/api/order_messages/{ORDER}"
    assert request["status"] == 201
    assert request["body_kind"] == "multipart"
    assert request["body_error"] is None
    assert request["form"] == expected_form
    assert [(f["field"], f["filename"], f["content_type"], f["size"], f["sha256"]) for f in request["files"]] == [
        ("attachments[]", name, ctype, len(data), sha256(data)) for name, ctype, data in expected
    ]
    assert request["headers"]["authorization"] == f"Bearer {spp_sandbox.token}"
    assert request["headers"]["accept"] == "application/json"
    assert not csv_stream.closed  # the caller's file object stays theirs

    assert isinstance(created, MessageResource)
    assert type(created.id) is int
    assert created.staff_only is staff_only
    assert created.user_id == (user_id or 1)
    assert created.files == [
        f"{spp_sandbox.url}/_sandbox/files/{created.id}/{quote(n, safe='')}" for n, _, _ in expected
    ]
    for url, (_, _, data) in zip(created.files, expected, strict=True):
        assert download(url) == data

    (stored,) = spp_sandbox.messages()
    assert stored.id == created.id
    assert [(f.filename, f.content_type, f.data) for f in stored.files] == expected


def test_compressed_attachments_are_sent_as_the_compressed_type(
    spp_sandbox: SandboxServer, make_hook: HookFactory, tmp_path: Any
) -> None:
    """``data.csv.gz`` holds gzip bytes, not CSV text: its part says application/gzip, as the file is."""
    import gzip

    (tmp_path / "data.csv.gz").write_bytes(gzip.compress(b"id,total\n1,20\n"))
    names = {
        "backup.tar.gz": "application/gzip",
        "backup.tgz": "application/gzip",
        "rows.json.xz": "application/x-xz",
        "dump.sql.bz2": "application/x-bzip2",
        "legacy.Z": "application/x-compress",
        "page.html.br": "application/octet-stream",
        "plain.csv": "text/csv",
    }
    files = [str(tmp_path / "data.csv.gz"), *((name, b"\x1f\x8b compressed") for name in names)]

    make_hook().create_order_message(ORDER, "Compressed files", attachments=files)

    (request,) = logged(spp_sandbox, "POST")
    sent = {part["filename"]: part["content_type"] for part in request["files"]}
    assert sent == {"data.csv.gz": "application/gzip", **names}
    (stored,) = spp_sandbox.messages()
    assert {f.filename: f.content_type for f in stored.files} == sent


def test_multipart_body_is_streamed_with_a_content_length_not_chunked(
    spp_sandbox: SandboxServer, make_hook: HookFactory, tmp_path: Any
) -> None:
    from airflow.sdk import ObjectStoragePath

    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(300 * 1024))
    (tmp_path / "o.txt").write_bytes(b"object storage")
    make_hook().create_order_message(
        ORDER,
        "streamed",
        attachments=[big, ("mem.bin", io.BytesIO(b"x" * 1000)), ObjectStoragePath(f"file://{tmp_path}/o.txt")],
    )

    (request,) = logged(spp_sandbox)
    headers = request["headers"]
    content_type = headers["content-type"]
    assert content_type.startswith("multipart/form-data; boundary=")
    boundary = content_type.split("boundary=", 1)[1]
    assert len(boundary) >= 16
    assert "transfer-encoding" not in headers
    assert int(headers["content-length"]) == request["body_size"]
    assert request["body_size"] > 300 * 1024
    assert [f["size"] for f in request["files"]] == [300 * 1024, 1000, len(b"object storage")]


@pytest.mark.parametrize("kind", ["bytesio", "object-storage-path", "file-url-string"])
def test_large_streamed_attachments_are_sent_whole(
    spp_sandbox: SandboxServer, make_hook: HookFactory, tmp_path: Any, kind: str
) -> None:
    from airflow.sdk import ObjectStoragePath

    data = os.urandom(100 * 1024)
    (tmp_path / "big.bin").write_bytes(data)
    attachment: Any = {
        "bytesio": ("big.bin", io.BytesIO(data)),
        "object-storage-path": ObjectStoragePath(f"file://{tmp_path}/big.bin"),
        "file-url-string": f"file://{tmp_path}/big.bin",
    }[kind]

    created = make_hook(extra={"timeout": 0.5}).create_order_message(ORDER, "big", attachments=[attachment])

    (request,) = logged(spp_sandbox)
    assert [(f["filename"], f["size"], f["sha256"]) for f in request["files"]] == [("big.bin", len(data), sha256(data))]
    assert download(created.files[0]) == data
