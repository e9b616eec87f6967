"""The pipe between a result export running on a thread and a streamed push body."""

from __future__ import annotations

import threading

import pytest

from airflow_pigment_redshift import push_body
from airflow_pigment_redshift.push_body import CsvBodyPipe, ResultStreamError, StreamedExport


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(push_body, "CHUNK_CHARS", 10)
    return 10


def write_lines(lines: list[str]):
    def export(pipe: CsvBodyPipe) -> int:
        with pipe.open() as stream:
            for line in lines:
                stream.write(line)
        return len(lines)

    return export


def test_body_yields_all_text_in_chunks(small_chunks):
    lines = [f"row {index},ä\n" for index in range(50)]
    streamed = StreamedExport(write_lines(lines), "utf-8", name="test")

    chunks = list(streamed.body())
    streamed.close()

    assert b"".join(chunks) == "".join(lines).encode("utf-8")
    assert len(chunks) > 10
    assert streamed.result() == 50
    assert streamed.bytes_read == len("".join(lines).encode("utf-8"))


def test_small_export_finishes_before_body():
    streamed = StreamedExport(write_lines(["a,b\n", "1,2\n"]), "utf-8", name="test")

    assert streamed.wait_for_data() is True
    assert streamed.result() == 2
    assert list(streamed.body()) == [b"a,b\n1,2\n"]
    streamed.close()


def test_error_before_first_chunk_raised_by_wait():
    def export(pipe: CsvBodyPipe) -> int:
        raise ValueError("first page failed")

    streamed = StreamedExport(export, "utf-8", name="test")

    with pytest.raises(ValueError, match="first page failed"):
        streamed.wait_for_data()
    with pytest.raises(ValueError, match="first page failed"):
        streamed.wait_for_data()
    streamed.close()


def test_error_mid_body_raises_stream_error(small_chunks):
    def export(pipe: CsvBodyPipe) -> int:
        pipe.write("x" * 25)
        raise ConnectionResetError("page 3 reset")

    streamed = StreamedExport(export, "utf-8", name="test")
    received: list[bytes] = []

    with pytest.raises(ResultStreamError) as failure:
        for chunk in streamed.body():
            received.append(chunk)
    streamed.close()

    assert isinstance(failure.value.error, ConnectionResetError)
    assert b"".join(received) == b"x" * 25
    with pytest.raises(RuntimeError, match="has not finished"):
        streamed.result()


def test_unencodable_text_fails_in_export():
    streamed = StreamedExport(write_lines(["name\n", "Łódź\n"]), "latin-1", name="test")

    with pytest.raises(UnicodeEncodeError):
        streamed.wait_for_data()
    streamed.close()


def test_close_stops_blocked_producer(small_chunks):
    stopped = threading.Event()

    def export(pipe: CsvBodyPipe) -> int:
        try:
            while True:
                pipe.write("y" * 10)
        finally:
            stopped.set()

    streamed = StreamedExport(export, "utf-8", name="test")
    first = next(iter(streamed.body()))
    streamed.close()

    assert first == b"y" * 10
    assert stopped.is_set()


def test_part_ends_split_body(small_chunks):
    def export(pipe: CsvBodyPipe) -> int:
        with pipe.open() as stream:
            stream.write("h\n1\n")
            pipe.end_part()
            stream.write("h\n2\n" * 10)
            pipe.end_part()
            stream.write("h\n3\n")
        return 3

    streamed = StreamedExport(export, "utf-8", name="test")

    bodies = []
    while streamed.has_more_data():
        bodies.append(b"".join(streamed.body()))
    streamed.close()

    assert bodies == [b"h\n1\n", b"h\n2\n" * 10, b"h\n3\n"]
    assert streamed.result() == 3
    assert streamed.bytes_read == sum(len(body) for body in bodies)
