"""Attachments in object storage: a file that is certainly missing fails at once, a flaky store is retryable."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest

from airflow_provider_spp._internal.attachments import multipart_encoder, prepare_attachments
from airflow_provider_spp.exceptions import SppAttachmentUnavailableError, SppInputError
from tests.support.flaky_storage import PROTOCOL, FlakyFileSystem, install

pytestmark = pytest.mark.filterwarnings("ignore:UPath 'flakyfs' filesystem not explicitly implemented")

REPORT = f"{PROTOCOL}://bucket/reports/report.csv"


@pytest.fixture
def flaky() -> Iterator[type[FlakyFileSystem]]:
    fs = install()
    fs.files["bucket/reports/report.csv"] = b"id,total\n1,20\n"
    yield fs
    fs.reset()


def _as_path(url: str) -> Any:
    from airflow.sdk import ObjectStoragePath

    return ObjectStoragePath(url)


@pytest.mark.parametrize("as_path", [False, True], ids=["url", "ObjectStoragePath"])
def test_a_reachable_object_is_checked_and_streamed(flaky: type[FlakyFileSystem], as_path: bool) -> None:
    (attachment,) = prepare_attachments([_as_path(REPORT) if as_path else REPORT])
    assert (attachment.filename, attachment.content_type, attachment.size) == ("report.csv", "text/csv", 14)
    with ExitStack() as stack:
        body = multipart_encoder([("message", "m")], [attachment], stack).to_string()
    assert b"id,total\n1,20\n" in body


@pytest.mark.parametrize(
    "error",
    [
        ConnectionError("connection reset by peer"),
        TimeoutError("read timed out"),
        OSError(5, "SlowDown"),
        PermissionError("403"),
    ],
)
def test_an_error_while_checking_is_retryable_not_a_missing_file(
    flaky: type[FlakyFileSystem], error: BaseException
) -> None:
    flaky.fail("info", error)
    with pytest.raises(SppAttachmentUnavailableError, match=r"could not be checked.*a retry may succeed") as caught:
        prepare_attachments([REPORT])
    assert not isinstance(caught.value, SppInputError)  # the operator fails SppInputError without retries
    assert caught.value.retryable is True
    assert type(error).__name__ in str(caught.value)


@pytest.mark.parametrize(
    ("url", "problem"),
    [(f"{PROTOCOL}://bucket/reports/missing.csv", "not found"), (f"{PROTOCOL}://bucket/reports", "is not a file")],
)
def test_a_missing_object_or_a_folder_is_an_input_error(flaky: type[FlakyFileSystem], url: str, problem: str) -> None:
    with pytest.raises(SppInputError, match=f"Attachment {problem}: "):
        prepare_attachments([url])
    with pytest.raises(SppInputError, match=f"Attachment {problem}: "):
        prepare_attachments([_as_path(url)])


def test_an_error_while_opening_for_the_upload_is_retryable(flaky: type[FlakyFileSystem]) -> None:
    (attachment,) = prepare_attachments([REPORT])
    flaky.fail("open", TimeoutError("read timed out"))
    with ExitStack() as stack, pytest.raises(SppAttachmentUnavailableError, match="could not be opened"):
        multipart_encoder([("message", "m")], [attachment], stack)
    del flaky.files["bucket/reports/report.csv"]
    flaky.failures.clear()
    with ExitStack() as stack, pytest.raises(SppInputError, match="disappeared before it was sent"):
        multipart_encoder([("message", "m")], [attachment], stack)


def test_in_memory_bytes_show_only_their_size_but_are_sent_whole() -> None:
    import copy
    import io
    import pickle

    from airflow_provider_spp._internal.attachments import ConcealedBytes, conceal_in_memory_content

    data = b"Client: Dana Kim, IBAN DE89"
    handle = io.BytesIO(b"file object")
    items = [("client.txt", data), ("buf.bin", bytearray(b"ab")), ("f.txt", handle), "a.csv"]
    concealed = conceal_in_memory_content(items)

    assert concealed[0] == ("client.txt", data)
    assert [type(item[1]) for item in concealed[:2]] == [ConcealedBytes, ConcealedBytes]
    assert concealed[2:] == [("f.txt", handle), "a.csv"]
    for shown in (str(concealed), repr(concealed[0][1]), f"{concealed[0][1]}"):
        assert "Dana" not in shown
    assert str(concealed[0][1]) == "<27 bytes in memory>"
    assert pickle.loads(pickle.dumps(concealed[0][1])) == data  # noqa: S301 - our own bytes
    assert type(copy.deepcopy(concealed[0][1])) is ConcealedBytes
    assert conceal_in_memory_content(("a.csv",)) == ("a.csv",)
    for untouched in (None, "{{ ti.xcom_pull('files') }}", "a.csv"):
        assert conceal_in_memory_content(untouched) == untouched
    (attachment,) = prepare_attachments([concealed[0]])
    with attachment.opener() as stream:
        assert stream.read() == data


def test_the_operator_keeps_in_memory_bytes_out_of_its_template_fields() -> None:
    from airflow_provider_spp._internal.attachments import ConcealedBytes
    from airflow_provider_spp.operators.order_messages import CreateOrderMessageOperator

    operator = CreateOrderMessageOperator(
        task_id="post", order="E4A269FC", message="m", attachments=[("client.txt", b"secret client data")]
    )
    assert isinstance(operator.attachments[0][1], ConcealedBytes)
    assert "secret" not in str(operator.attachments)
