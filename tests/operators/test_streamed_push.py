"""Pushes streamed to Pigment while the result is read, against both emulators."""

from __future__ import annotations

import logging

import pytest

from airflow_pigment_redshift import push_body
from airflow_pigment_redshift.exceptions import ResultTooLargeError
from airflow_pigment_redshift.progress import PROGRESS_KEY
from airflow_pigment_redshift.testing.faults import FaultRule
from tests.conftest import set_connections
from tests.operators.test_faults_and_retries import (
    MemoryTaskStateStore,
    assert_imported_once,
    assert_nothing_imported,
    day_truth,
    make_operator,
    operations,
    run_try,
)
from tests.helpers import task_context


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    # Chunks of 200 characters make a day's result span many chunks, so a page fault hits mid-body.
    monkeypatch.setattr(push_body, "CHUNK_CHARS", 200)


def test_stream_and_file_send_same_bytes(connections):
    redshift, pigment = connections

    streamed = make_operator(push_transfer="stream").execute(task_context())
    from_file = make_operator(push_transfer="file").execute(task_context(try_number=2))

    pigment.wait_for_idle()
    by_id = {entry["import_id"]: entry for entry in pigment.ledger()}
    assert by_id[streamed["import_id"]]["chunked"] is True
    assert by_id[from_file["import_id"]]["chunked"] is False
    streamed_bytes = pigment.received_file(streamed["import_id"]).read_bytes()
    assert streamed_bytes == pigment.received_file(from_file["import_id"]).read_bytes()
    assert streamed["bytes"] == len(streamed_bytes) == from_file["bytes"]
    assert streamed["rows"] == from_file["rows"] == len(day_truth(redshift))


def test_transient_error_mid_body_sends_again(redshift_emulator_factory, pigment_emulator, monkeypatch, small_chunks):
    redshift = redshift_emulator_factory(page_size_rows=1)
    set_connections(monkeypatch, redshift, pigment_emulator)
    # The page reader does not retry this error itself, so the operator reads and sends again.
    redshift.faults.add(
        FaultRule("GetStatementResultV2", "error", code="ActiveSessionsExceededException", status=400, calls=[10])
    )

    summary = run_try(MemoryTaskStateStore())

    truth = day_truth(redshift)
    entry = assert_imported_once(pigment_emulator, truth)
    assert entry["chunked"] is True
    assert summary["import_id"] == entry["import_id"]
    # The first read stopped at page 10, the second fetched every page.
    assert len(operations(redshift, "GetStatementResultV2")) == 10 + len(truth)
    assert len(operations(redshift, "ExecuteStatement")) == 1


def test_permanent_error_mid_body_imports_nothing(redshift_emulator_factory, pigment_emulator, monkeypatch, small_chunks):
    redshift = redshift_emulator_factory(page_size_rows=1)
    set_connections(monkeypatch, redshift, pigment_emulator)
    redshift.faults.add(
        FaultRule("GetStatementResultV2", "error", code="ValidationException", status=400,
                  message="Database response exceeded size limit", calls=[10])
    )
    store = MemoryTaskStateStore()

    with pytest.raises(ResultTooLargeError):
        run_try(store)

    assert_nothing_imported(pigment_emulator)
    assert store.get(PROGRESS_KEY)["phase"] == "statement"
    run_try(store, try_number=2)
    assert_imported_once(pigment_emulator, day_truth(redshift))


def test_length_required_falls_back_to_file(connections, caplog, capsys):
    redshift, pigment = connections
    pigment.accept_chunked_push = False

    with caplog.at_level(logging.WARNING):
        summary = run_try(MemoryTaskStateStore())

    entry = assert_imported_once(pigment, day_truth(redshift))
    assert entry["chunked"] is False
    assert summary["import_id"] == entry["import_id"]
    # The task logger writes through structlog to stdout, or to logging when pytest captures it.
    assert "HTTP 411 Length Required" in caplog.text + capsys.readouterr().out


def test_empty_result_push_header_streams_header(connections):
    from tests.operators.test_faults_and_retries import EMPTY_DAY

    _, pigment = connections

    summary = run_try(MemoryTaskStateStore(), parameters=EMPTY_DAY, on_empty_result="push_header")

    pigment.wait_for_idle()
    [entry] = pigment.ledger()
    assert entry["chunked"] is True
    assert entry["rows"] == summary["rows"] == 0
    assert pigment.received_rows(summary["import_id"]) == []


def test_invalid_push_transfer_rejected():
    with pytest.raises(ValueError, match="push_transfer 'socket'"):
        make_operator(push_transfer="socket")
