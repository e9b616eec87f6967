"""A result sent as several Pigment imports of at most ``max_rows_per_import`` rows, with retries."""

from __future__ import annotations

import math
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import TaskDeferred

from airflow_pigment_redshift.exceptions import (
    AmbiguousPushError,
    PartImportFailedError,
    PartsMismatchError,
    PigmentRejectedError,
)
from airflow_pigment_redshift.progress import PROGRESS_KEY
from airflow_pigment_redshift.testing.faults import FaultRule
from airflow_pigment_redshift.testing.pigment_emulator import ImportConfiguration
from airflow_pigment_redshift.triggers.pigment_import import PigmentImportTrigger
from tests.conftest import LINE_ITEMS_HEADER, set_connections
from tests.test_result_paths import TRICKY_CONFIGURATION_ID, TRICKY_SETUP, TRICKY_SQL
from tests.test_unload import BUCKET, s3_server  # noqa: F401 - s3_server is a fixture
from tests.helpers import expected_rows
from tests.operators.test_faults_and_retries import (
    MemoryTaskStateStore,
    completed_imports,
    context_for,
    day_truth,
    make_operator,
    operations,
    run_try,
)

DAY_ROWS = 20
TRANSFERS = ["stream", "file"]


def assert_parts_cover(pigment: Any, summary: dict[str, Any], truth: list[list[str]], max_rows: int,
                       header: list[str] = LINE_ITEMS_HEADER) -> list[list[list[str]]]:
    """Check that the summary's imports are all Completed and together hold the truth, N rows at most each."""
    completed = completed_imports(pigment)
    assert sorted(entry["import_id"] for entry in completed) == sorted(summary["import_ids"])
    assert len(pigment.ledger()) == len(summary["import_ids"])
    parts = [pigment.received_rows(import_id) for import_id in summary["import_ids"]]
    for import_id, rows in zip(summary["import_ids"], parts):
        assert pigment.received_header(import_id) == header
        assert 1 <= len(rows) <= max_rows
    assert [row for rows in parts for row in rows] == truth
    assert summary["parts"] == len(parts) == math.ceil(len(truth) / max_rows)
    assert summary["import_id"] == summary["import_ids"][-1]
    assert summary["rows"] == summary["inserted"] == len(truth)
    assert summary["bytes"] == sum(entry["bytes"] for entry in completed)
    return parts


@pytest.mark.parametrize("push_transfer", TRANSFERS)
@pytest.mark.parametrize("max_rows", [5, 3, 1, 50])
def test_parts_hold_day_rows(connections, push_transfer, max_rows):
    redshift, pigment = connections
    truth = day_truth(redshift)
    assert len(truth) == DAY_ROWS

    summary = run_try(MemoryTaskStateStore(), push_transfer=push_transfer, max_rows_per_import=max_rows)

    assert_parts_cover(pigment, summary, truth, max_rows)
    assert {entry["chunked"] for entry in pigment.ledger()} == {push_transfer == "stream"}
    assert len(operations(redshift, "ExecuteStatement")) == 1


def test_parts_total_bytes_match_single_import(connections):
    redshift, pigment = connections

    single = run_try(MemoryTaskStateStore())
    split = run_try(MemoryTaskStateStore(), max_rows_per_import=7)

    header_line = pigment.received_file(single["import_id"]).read_bytes().split(b"\n", 1)[0] + b"\n"
    joined = b"".join(pigment.received_file(import_id).read_bytes().removeprefix(header_line)
                      for import_id in split["import_ids"])
    assert header_line + joined == pigment.received_file(single["import_id"]).read_bytes()
    assert split["bytes"] == single["bytes"] + len(header_line) * (split["parts"] - 1)


NOTES_CONFIGURATION_ID = "5b0f8c2e-1d4a-4e7b-9a63-2c8d7e1f0a94"
NOTES_SQL = "SELECT id, note FROM split_cut.notes ORDER BY id"
NOTES_SETUP = """
CREATE SCHEMA IF NOT EXISTS split_cut;
CREATE OR REPLACE TABLE split_cut.notes (id INTEGER, note VARCHAR);
INSERT INTO split_cut.notes VALUES
    (1, 'first' || chr(10) || 'line'),
    (2, 'it''s "quoted"' || chr(10) || 'and; more'),
    (3, chr(13) || chr(10)),
    (4, '''' || chr(10) || ''''),
    (5, 'plain');
"""


@pytest.mark.parametrize(("delimiter", "quote_char"), [(",", '"'), (";", "'")])
@pytest.mark.parametrize("push_transfer", TRANSFERS)
@pytest.mark.parametrize("result_format", ["CSV", "JSON"])
def test_cut_after_value_with_line_break(connections, delimiter, quote_char, push_transfer, result_format):
    redshift, pigment = connections
    redshift.execute_sql(NOTES_SETUP)
    pigment.add_configuration(
        ImportConfiguration(id=NOTES_CONFIGURATION_ID, name="Notes", block_name="Notes",
                            delimiter=delimiter, quote_char=quote_char)
    )
    _, rows = redshift.query(NOTES_SQL)

    summary = run_try(
        MemoryTaskStateStore(), sql=NOTES_SQL, parameters=None, configuration_id=NOTES_CONFIGURATION_ID,
        csv_delimiter=delimiter, csv_quote_char=quote_char, push_transfer=push_transfer,
        result_format=result_format, max_rows_per_import=2,
    )

    parts = assert_parts_cover(pigment, summary, expected_rows(rows), 2, header=["id", "note"])
    assert [len(part) for part in parts] == [2, 2, 1]
    # Row 2 ends part 1 with a quoted line break; row 4, a quote char around a line break, ends part 2.
    assert parts[0][1][1].startswith("it's")
    assert parts[1][1][1] == "'\n'"


@pytest.mark.parametrize("push_transfer", TRANSFERS)
def test_429_on_part_two_retried_alone(connections, push_transfer):
    redshift, pigment = connections
    rule = pigment.faults.add(FaultRule("push", "error", status=429, message="Maximum number of reports", calls=[2]))

    summary = run_try(MemoryTaskStateStore(), push_transfer=push_transfer, max_rows_per_import=5)

    assert rule.injected == 1
    assert_parts_cover(pigment, summary, day_truth(redshift), 5)


@pytest.mark.parametrize("push_transfer", TRANSFERS)
def test_retry_pushes_only_remaining_parts(connections, push_transfer):
    redshift, pigment = connections
    store = MemoryTaskStateStore()
    pigment.faults.add(FaultRule("push", "error", status=400, message="size limit exceeded", calls=[2]))

    with pytest.raises(PigmentRejectedError, match="No import was created"):
        run_try(store, push_transfer=push_transfer, max_rows_per_import=5)
    [first] = completed_imports(pigment)
    record = store.get(PROGRESS_KEY)
    assert record["phase"] == "statement"
    assert [part["part"] for part in record["parts"]] == [1]
    summary = run_try(store, try_number=2, push_transfer=push_transfer, max_rows_per_import=5)

    assert summary["import_ids"][0] == first["import_id"]
    assert_parts_cover(pigment, summary, day_truth(redshift), 5)
    assert len(operations(redshift, "ExecuteStatement")) == 1


def test_ambiguous_part_push_names_part(connections):
    redshift, pigment = connections
    store = MemoryTaskStateStore()
    pigment.faults.add(FaultRule("push", "drop_after", calls=[2]))

    with pytest.raises(AmbiguousPushError, match="part 2") as failure:
        run_try(store, max_rows_per_import=5)
    assert failure.value.part == 2
    with pytest.raises(AmbiguousPushError, match="earlier try"):
        run_try(store, try_number=2, max_rows_per_import=5)

    # Part 1 and the unanswered part 2 reached Pigment; nothing was pushed twice or after part 2.
    pigment.wait_for_idle()
    assert len(pigment.ledger()) == 2
    assert store.get(PROGRESS_KEY)["phase"] == "push_started"


def test_ambiguous_part_repushed_when_idempotent(connections):
    redshift, pigment = connections
    store = MemoryTaskStateStore()
    pigment.faults.add(FaultRule("push", "drop_after", calls=[2]))

    with pytest.raises(AmbiguousPushError):
        run_try(store, max_rows_per_import=5)
    summary = run_try(store, try_number=2, max_rows_per_import=5, target_is_idempotent=True)

    pigment.wait_for_idle()
    # Parts 1, 2 (unanswered), 2 again, 3 and 4: only part 2 was sent twice.
    assert len(pigment.ledger()) == 5
    parts = [pigment.received_rows(import_id) for import_id in summary["import_ids"]]
    assert [row for rows in parts for row in rows] == day_truth(redshift)


def test_changed_max_rows_rejected_on_retry(connections):
    redshift, pigment = connections
    store = MemoryTaskStateStore()
    pigment.faults.add(FaultRule("push", "error", status=400, calls=[2]))

    with pytest.raises(PigmentRejectedError):
        run_try(store, max_rows_per_import=5)
    with pytest.raises(PartsMismatchError, match="max_rows_per_import=5"):
        run_try(store, try_number=2, max_rows_per_import=4)

    pigment.wait_for_idle()
    assert len(pigment.ledger()) == 1


def test_retry_after_success_returns_summary(connections):
    redshift, pigment = connections
    store = MemoryTaskStateStore()

    first = run_try(store, max_rows_per_import=5)
    second = run_try(store, try_number=2, max_rows_per_import=5)

    assert second == first
    assert len(pigment.ledger()) == 4


async def run_deferred_parts(store: MemoryTaskStateStore, on_import_wait: Any = None, **kwargs: Any) -> tuple[dict, int]:
    """Drive a deferrable try through every trigger; return the summary and the number of import waits."""
    context = context_for(store)
    operator = make_operator(deferrable=True, **kwargs)
    call = lambda: operator.execute(context)  # noqa: E731 - rebound below to each resume method
    import_waits = 0
    while True:
        try:
            return call(), import_waits
        except TaskDeferred as deferral:
            trigger = deferral.trigger
            if isinstance(trigger, PigmentImportTrigger):
                import_waits += 1
                if on_import_wait is not None:
                    on_import_wait(trigger)
            event = await anext(trigger.run())
            method = getattr(make_operator(deferrable=True, **kwargs), deferral.method_name)
            call = lambda method=method, payload=event.payload: method(context, event=payload)  # noqa: E731


async def test_deferrable_waits_for_every_part(connections):
    redshift, pigment = connections

    summary, import_waits = await run_deferred_parts(MemoryTaskStateStore(), max_rows_per_import=6)

    assert import_waits == 4
    assert_parts_cover(pigment, summary, day_truth(redshift), 6)


async def test_failed_part_retry_pushes_only_it(connections):
    redshift, pigment = connections
    store = MemoryTaskStateStore()
    failed_ids: list[str] = []

    def fail_second_part(trigger: PigmentImportTrigger) -> None:
        if not failed_ids:
            second = trigger.task_progress["parts"][1]["import_id"]
            failed_ids.append(second)
            pigment.faults.add(FaultRule(
                "status", "override", match={"importid": second},
                fields={"importStatus": "Failed", "errorsDetails": [{"name": "Parse", "description": "bad row"}]},
            ))

    with pytest.raises(PartImportFailedError, match="part 2") as failure:
        await run_deferred_parts(store, on_import_wait=fail_second_part, max_rows_per_import=5)
    assert failure.value.failed_parts == [2]
    assert failure.value.completed_parts == [1, 3, 4]
    assert "bad row" in str(failure.value)
    summary = run_try(store, try_number=2, max_rows_per_import=5)

    pigment.wait_for_idle()
    # Four parts, then part 2 once more; the Completed parts were not pushed again.
    assert len(pigment.ledger()) == 5
    assert failed_ids[0] not in summary["import_ids"]
    parts = [pigment.received_rows(import_id) for import_id in summary["import_ids"]]
    assert [row for rows in parts for row in rows] == day_truth(redshift)
    assert pigment.received_rows(summary["import_ids"][1]) == pigment.received_rows(failed_ids[0])
    assert summary["parts"] == 4


def test_clear_before_import_keeps_last_part(connections):
    redshift, pigment = connections
    configuration_id = "9c4e2a71-6b3d-4f85-a1e0-7d2b5c8f3e16"
    pigment.add_configuration(
        ImportConfiguration(id=configuration_id, name="Cleared line items", block_name="Cleared",
                            expected_header=LINE_ITEMS_HEADER, clear_before_import=True)
    )

    summary = run_try(MemoryTaskStateStore(), configuration_id=configuration_id, max_rows_per_import=8)

    assert summary["parts"] == 3
    # Each part is its own import, so each one cleared the block: only the last part's 4 rows remain.
    assert pigment.block_items("Cleared") == 4


@pytest.mark.parametrize("value", [0, -3, 1.5, "100"])
def test_invalid_max_rows_per_import(value):
    with pytest.raises(ValueError, match=f"max_rows_per_import {value!r}"):
        make_operator(max_rows_per_import=value)


def test_unload_result_split(connections, redshift_emulator_factory, monkeypatch, s3_server):
    _, pigment = connections
    redshift = redshift_emulator_factory(unload_s3_endpoint_url=s3_server)
    set_connections(monkeypatch, redshift, pigment)
    redshift.execute_sql(TRICKY_SETUP)
    pigment.add_configuration(ImportConfiguration(id=TRICKY_CONFIGURATION_ID, name="Tricky cells", block_name="Tricky"))
    _, truth = redshift.query(TRICKY_SQL)

    summary = run_try(
        MemoryTaskStateStore(), sql=TRICKY_SQL, parameters=None, configuration_id=TRICKY_CONFIGURATION_ID,
        unload_s3_prefix=f"s3://{BUCKET}/exports", unload_above_bytes=0, s3_conn_id="s3_unload",
        max_rows_per_import=3,
    )

    assert any(statement["sql"].startswith("UNLOAD") for statement in redshift.statements)
    assert_parts_cover(pigment, summary, expected_rows(truth), 3, header=["id", "label", "amount", "day", "stamp"])
