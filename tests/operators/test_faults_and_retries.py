"""Faults of Redshift and Pigment through the operator, with Airflow-style retries.

Each test injects faults into the emulators, runs the task one or more tries the way
Airflow would (a fresh operator per try, the same task state store), and checks the
Pigment ledger afterwards: the interval is imported exactly once, or not at all when the
task failed with an error that says so.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowSkipException, TaskDeferred

from airflow_pigment_redshift.exceptions import (
    AmbiguousPushError,
    EmptyResultError,
    PigmentImportFailedError,
    PigmentRedshiftError,
    PigmentRejectedError,
    PigmentSkippedRowsError,
    RedshiftAccessDeniedError,
    ResultTooLargeError,
    StatementAbortedError,
    StatementAccessDeniedError,
    StatementFailedError,
    StatementTimeoutError,
)
from airflow_pigment_redshift.operators.redshift_to_pigment import RedshiftToPigmentOperator
from airflow_pigment_redshift.progress import PROGRESS_KEY
from airflow_pigment_redshift.retries import CallRetryPolicy
from airflow_pigment_redshift.testing.faults import FaultRule
from airflow_pigment_redshift.triggers.pigment_import import PigmentImportTrigger
from airflow_pigment_redshift.triggers.redshift_statement import RedshiftStatementTrigger
from tests.conftest import LINE_ITEMS_CONFIGURATION_ID, LINE_ITEMS_SQL, set_connections
from tests.helpers import expected_rows

DAY = {"interval_start": "1995-03-01", "interval_end": "1995-03-02"}
EMPTY_DAY = {"interval_start": "2030-01-01", "interval_end": "2030-01-02"}
FAST_RETRIES = CallRetryPolicy(attempts=4, initial_wait=0.01, max_wait=0.05, max_delay=30)
# botocore makes one attempt per call, so the operator's own retries are what is tested.
NO_BOTOCORE_RETRIES = {"retries": {"max_attempts": 1, "mode": "standard"}}


class MemoryTaskStateStore:
    """In-memory stand-in for ``context["task_state_store"]`` that keeps JSON values, as Airflow does."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def get(self, key: str, default: Any = None) -> Any:
        return json.loads(self.values[key]) if key in self.values else default

    def set(self, key: str, value: Any, *, retention: Any = None) -> None:
        self.values[key] = json.dumps(value)

    def delete(self, key: str) -> None:
        self.values.pop(key, None)

    def clear(self) -> None:
        self.values.clear()


def context_for(store: MemoryTaskStateStore, try_number: int = 1, clear_number: int = 0) -> dict[str, Any]:
    ti = SimpleNamespace(
        dag_id="tests",
        task_id="import_line_items",
        run_id="scheduled__1995-03-01T00:00:00+00:00",
        map_index=-1,
        try_number=try_number,
    )
    return {"ti": ti, "task_state_store": store, "dag_run": SimpleNamespace(clear_number=clear_number)}


def make_operator(**kwargs: Any) -> RedshiftToPigmentOperator:
    settings: dict[str, Any] = {
        "task_id": "import_line_items",
        "sql": LINE_ITEMS_SQL,
        "parameters": DAY,
        "configuration_id": LINE_ITEMS_CONFIGURATION_ID,
        "poll_interval": 1,
        "import_poll_interval": 0.05,
        "call_retries": FAST_RETRIES,
        "botocore_config": NO_BOTOCORE_RETRIES,
        "deferrable": False,
        **kwargs,
    }
    return RedshiftToPigmentOperator(**settings)


def run_try(store: MemoryTaskStateStore, try_number: int = 1, clear_number: int = 0, **kwargs: Any) -> dict:
    """Run one try of the task on a fresh operator, as a worker does."""
    return make_operator(**kwargs).execute(context_for(store, try_number, clear_number))


def day_truth(redshift: Any, day: dict[str, str] = DAY) -> list[list[str]]:
    _, rows = redshift.query(LINE_ITEMS_SQL, day)
    return expected_rows(rows)


def completed_imports(pigment: Any) -> list[dict[str, Any]]:
    pigment.wait_for_idle()
    return [entry for entry in pigment.ledger() if entry["status"] == "Completed"]


def assert_imported_once(pigment: Any, truth: list[list[str]]) -> dict[str, Any]:
    """Check that the ledger contains one Completed import, with exactly the day's rows."""
    completed = completed_imports(pigment)
    assert len(completed) == 1, completed
    assert pigment.received_rows(completed[0]["import_id"]) == truth
    assert completed[0]["rows"] == len(truth) > 0
    return completed[0]


def assert_nothing_imported(pigment: Any) -> None:
    assert completed_imports(pigment) == []


def operations(redshift: Any, name: str) -> list[dict[str, Any]]:
    return [entry["request"] for entry in redshift.requests if entry["operation"] == name]


async def first_event(trigger: Any) -> Any:
    """Return a trigger's first event and close its generator inside the event loop."""
    events = trigger.run()
    try:
        return await anext(events)
    finally:
        await events.aclose()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# Redshift Data API faults.


@pytest.mark.parametrize(
    ("operation", "code", "status"),
    [
        ("ExecuteStatement", "ThrottlingException", 400),
        ("ExecuteStatement", "ActiveStatementsExceededException", 400),
        ("DescribeStatement", "InternalServerException", 500),
        ("DescribeStatement", "ThrottlingException", 400),
        ("GetStatementResultV2", "InternalServerException", 500),
    ],
)
def test_transient_data_api_error_retried(connections, operation, code, status):
    redshift, pigment = connections
    redshift.faults.add(FaultRule(operation, "error", code=code, status=status, times=2))

    summary = run_try(MemoryTaskStateStore())

    entry = assert_imported_once(pigment, day_truth(redshift))
    assert summary["import_id"] == entry["import_id"]
    assert len(redshift.statements) == 1
    assert [item["fault"] for item in redshift.faults.injected] == ["error", "error"]


def test_reset_mid_pagination_restarts_export(redshift_emulator_factory, pigment_emulator, monkeypatch):
    redshift = redshift_emulator_factory(page_size_rows=5)
    set_connections(monkeypatch, redshift, pigment_emulator)
    redshift.faults.add(FaultRule("GetStatementResultV2", "drop_before", calls=[2]))

    summary = run_try(MemoryTaskStateStore())

    truth = day_truth(redshift)
    assert_imported_once(pigment_emulator, truth)
    assert summary["pages"] == (len(truth) + 4) // 5
    assert [item["call"] for item in redshift.faults.injected] == [2]


def test_persistent_reset_then_retry_reuses_statement(redshift_emulator_factory, pigment_emulator, monkeypatch):
    redshift = redshift_emulator_factory(page_size_rows=5)
    set_connections(monkeypatch, redshift, pigment_emulator)
    rule = redshift.faults.add(FaultRule("GetStatementResultV2", "drop_before", calls=list(range(2, 100))))
    store = MemoryTaskStateStore()

    with pytest.raises(Exception, match="(?i)connection"):
        run_try(store)
    assert_nothing_imported(pigment_emulator)
    redshift.faults.clear()
    run_try(store, try_number=2)

    assert rule.injected >= FAST_RETRIES.attempts
    assert_imported_once(pigment_emulator, day_truth(redshift))
    assert len(operations(redshift, "ExecuteStatement")) == 1


def test_expired_statement_resubmitted_on_retry(connections):
    redshift, pigment = connections
    store = MemoryTaskStateStore()
    pigment.faults.add(FaultRule("push", "error", status=401, times=1))

    with pytest.raises(PigmentRejectedError, match="HTTP 401"):
        run_try(store)
    first_id = redshift.statements[0]["id"]
    redshift.faults.add(
        FaultRule("DescribeStatement", "error", code="ResourceNotFoundException", message="Query does not exist.",
                  status=400, match={"Id": first_id})
    )
    summary = run_try(store, try_number=2)

    assert_imported_once(pigment, day_truth(redshift))
    assert len(redshift.statements) == 2
    assert summary["statement_id"] == redshift.statements[1]["id"] != first_id


def test_unknown_statement_id_fails_then_retry_reuses(connections):
    redshift, pigment = connections
    store = MemoryTaskStateStore()
    redshift.faults.add(
        FaultRule("DescribeStatement", "error", code="ResourceNotFoundException", message="Query does not exist.",
                  status=400, calls=[1])
    )

    with pytest.raises(Exception, match="Query does not exist"):
        run_try(store)
    assert_nothing_imported(pigment)
    run_try(store, try_number=2)

    assert_imported_once(pigment, day_truth(redshift))
    assert len(redshift.statements) == 1


def test_failed_statement_resubmitted_with_new_token(connections):
    redshift, pigment = connections
    store = MemoryTaskStateStore()
    sql = "SELECT l_orderkey AS order_key FROM tpch.no_such_table WHERE :interval_start < :interval_end"

    for try_number in (1, 2):
        with pytest.raises(StatementFailedError) as failure:
            run_try(store, try_number=try_number, sql=sql)
        assert redshift.statements[-1]["id"] in str(failure.value)
        assert "no_such_table" in str(failure.value)

    tokens = [request["ClientToken"] for request in operations(redshift, "ExecuteStatement")]
    assert len(set(tokens)) == 2
    assert_nothing_imported(pigment)


def test_permission_denied_names_grant(connections):
    redshift, pigment = connections
    redshift.faults.add(
        FaultRule("DescribeStatement", "override",
                  fields={"Status": "FAILED", "Error": "ERROR: permission denied for relation tpch.lineitem"})
    )

    with pytest.raises(StatementAccessDeniedError) as failure:
        run_try(MemoryTaskStateStore())

    message = str(failure.value)
    assert "GRANT SELECT ON tpch.lineitem TO pigment_db_user" in message
    assert "GRANT USAGE ON SCHEMA tpch TO pigment_db_user" in message
    assert redshift.statements[0]["id"] in message
    assert_nothing_imported(pigment)


def test_aborted_statement_then_retry_imports(connections):
    redshift, pigment = connections
    store = MemoryTaskStateStore()
    redshift.faults.add(FaultRule("DescribeStatement", "override", fields={"Status": "ABORTED"}, times=1))

    with pytest.raises(StatementAbortedError, match="was aborted"):
        run_try(store)
    assert_nothing_imported(pigment)
    run_try(store, try_number=2)

    assert_imported_once(pigment, day_truth(redshift))


def test_unknown_status_times_out_and_cancels(connections):
    redshift, pigment = connections
    redshift.faults.add(FaultRule("DescribeStatement", "override", fields={"Status": "PAUSED"}))

    with pytest.raises(StatementTimeoutError, match="was cancelled"):
        run_try(MemoryTaskStateStore(), statement_timeout=1.5)

    [cancel] = operations(redshift, "CancelStatement")
    assert cancel["Id"] == redshift.statements[0]["id"]
    assert_nothing_imported(pigment)


def test_statement_timeout_cancels_query(redshift_emulator_factory, pigment_emulator, monkeypatch):
    redshift = redshift_emulator_factory(running_seconds=30)
    set_connections(monkeypatch, redshift, pigment_emulator)

    with pytest.raises(StatementTimeoutError):
        run_try(MemoryTaskStateStore(), statement_timeout=1)

    statement_id = redshift.statements[0]["id"]
    assert redshift.wait_for_status(statement_id, "ABORTED") == "ABORTED"
    assert_nothing_imported(pigment_emulator)


def test_access_denied_exception_explains_iam(connections):
    redshift, pigment = connections
    redshift.faults.add(
        FaultRule("ExecuteStatement", "error", code="AccessDeniedException", status=400,
                  message="User: arn:aws:iam::123456789012:user/etl is not authorized")
    )

    with pytest.raises(RedshiftAccessDeniedError, match="redshift-data:ExecuteStatement") as failure:
        run_try(MemoryTaskStateStore())

    assert "is not authorized" in str(failure.value)
    assert redshift.statements == []
    assert_nothing_imported(pigment)


def test_result_too_large_fails_before_push(connections):
    redshift, pigment = connections
    redshift.faults.add(
        FaultRule("GetStatementResultV2", "error", code="ValidationException", status=400,
                  message="Database response exceeded size limit")
    )

    with pytest.raises(ResultTooLargeError, match="500 MB") as failure:
        run_try(MemoryTaskStateStore())

    assert redshift.statements[0]["id"] in str(failure.value)
    assert operations(redshift, "GetStatementResultV2")
    assert_nothing_imported(pigment)


# Pigment faults.


@pytest.mark.parametrize(("status", "hint"), [(400, "rejected the request"), (401, "API key"), (404, "Not found")])
def test_push_rejected_then_retry_imports(connections, status, hint):
    redshift, pigment = connections
    store = MemoryTaskStateStore()
    pigment.faults.add(FaultRule("push", "error", status=status, message="remote text", times=1))

    with pytest.raises(PigmentRejectedError, match=hint) as failure:
        run_try(store)
    assert "remote text" in str(failure.value)
    assert "No import was created" in str(failure.value)
    assert LINE_ITEMS_CONFIGURATION_ID in str(failure.value)
    assert_nothing_imported(pigment)
    run_try(store, try_number=2)

    assert_imported_once(pigment, day_truth(redshift))
    assert len(redshift.statements) == 1


@pytest.mark.parametrize(
    "body",
    [
        "Maximum number of reports per configuration per hour exceeded, maximum: 300.",
        "",  # The per-IP limit of 500 requests per 5 minutes returns an empty body.
    ],
)
def test_push_429_retried(connections, body):
    redshift, pigment = connections
    pigment.faults.add(FaultRule("push", "error", status=429, message=body, times=2))

    run_try(MemoryTaskStateStore())

    assert_imported_once(pigment, day_truth(redshift))
    assert pigment.faults.rules()[0]["injected"] == 2


def test_push_429_persistent_fails_safe(connections):
    redshift, pigment = connections
    store = MemoryTaskStateStore()
    pigment.faults.add(FaultRule("push", "error", status=429, message="Maximum number of reports"))

    with pytest.raises(PigmentRejectedError, match="No import was created"):
        run_try(store)
    assert_nothing_imported(pigment)
    pigment.faults.clear()
    run_try(store, try_number=2)

    assert_imported_once(pigment, day_truth(redshift))


@pytest.mark.parametrize("status", [500, 502, 503])
def test_push_5xx_is_ambiguous(connections, status):
    redshift, pigment = connections
    store = MemoryTaskStateStore()
    rule = pigment.faults.add(FaultRule("push", "error", status=status))

    for try_number in (1, 2):
        with pytest.raises(AmbiguousPushError) as failure:
            run_try(store, try_number=try_number)
        assert LINE_ITEMS_CONFIGURATION_ID in str(failure.value)
        assert "import history" in str(failure.value)

    assert rule.injected == 1
    assert_nothing_imported(pigment)


@pytest.mark.parametrize("status", [500, 502, 503])
def test_push_5xx_retried_when_idempotent(connections, status):
    redshift, pigment = connections
    pigment.faults.add(FaultRule("push", "error", status=status, times=2))

    run_try(MemoryTaskStateStore(), target_is_idempotent=True)

    assert_imported_once(pigment, day_truth(redshift))


@pytest.mark.parametrize("status", [429, 500, 502, 503])
def test_status_poll_errors_retried(connections, status):
    redshift, pigment = connections
    rule = pigment.faults.add(FaultRule("status", "error", status=status, times=3))

    summary = run_try(MemoryTaskStateStore())

    assert_imported_once(pigment, day_truth(redshift))
    assert summary["import_status"] == "Completed"
    assert rule.injected == 3


def test_connect_failure_before_body_sent(connections, monkeypatch):
    redshift, pigment = connections
    store = MemoryTaskStateStore()
    broken = {"conn_type": "pigment", "password": "test-import-key", "extra": {"base_url": f"http://127.0.0.1:{closed_port()}"}}
    monkeypatch.setenv("AIRFLOW_CONN_PIGMENT_BROKEN", json.dumps(broken))

    with pytest.raises(PigmentRedshiftError, match="No import was created"):
        run_try(store, pigment_conn_id="pigment_broken")
    assert_nothing_imported(pigment)
    run_try(store, try_number=2)

    assert_imported_once(pigment, day_truth(redshift))
    assert len(redshift.statements) == 1


def test_read_timeout_after_body_sent(connections):
    redshift, pigment = connections
    store = MemoryTaskStateStore()
    pigment.faults.add(FaultRule("push", "slow_response", delay_seconds=1.5))

    for try_number in (1, 2):
        with pytest.raises(AmbiguousPushError, match="ReadTimeout|earlier try"):
            run_try(store, try_number=try_number, pigment_timeout=0.5)

    # Pigment created the import although the client gave up, and the retry did not push again.
    assert_imported_once(pigment, day_truth(redshift))
    assert pigment.faults.rules()[0]["injected"] == 1


def test_dropped_answer_after_push_not_repeated(connections):
    redshift, pigment = connections
    store = MemoryTaskStateStore()
    pigment.faults.add(FaultRule("push", "drop_after"))

    with pytest.raises(AmbiguousPushError):
        run_try(store)
    with pytest.raises(AmbiguousPushError, match="earlier try"):
        run_try(store, try_number=2)

    assert_imported_once(pigment, day_truth(redshift))
    assert store.get(PROGRESS_KEY)["phase"] == "push_started"


def test_import_failed_reports_ids_and_retry_pushes(connections):
    redshift, pigment = connections
    store = MemoryTaskStateStore()
    wrong_header = ["key", "line", "date", "customer", "nation", "part", "qty", "price", "discount", "net"]

    with pytest.raises(PigmentImportFailedError) as failure:
        run_try(store, csv_header=wrong_header)
    import_id = failure.value.import_id
    assert import_id in str(failure.value)
    assert LINE_ITEMS_CONFIGURATION_ID in str(failure.value)
    run_try(store, try_number=2)

    assert_imported_once(pigment, day_truth(redshift))
    assert [entry["status"] for entry in pigment.ledger()] == ["Failed", "Completed"]
    assert len(redshift.statements) == 1


SKIPPED_REPORT = {
    "summary": {"insertedCount": 17, "updatedCount": 0, "deletedCount": 0, "skippedCount": 3},
    "impactedBlocks": [
        {"skippedData": [{"count": 3, "reason": "InvalidValue", "sourceColumnName": "quantity", "samples": ["x"]}]}
    ],
}


def test_skipped_rows_gate_fails_without_repush(connections, caplog, capsys):
    redshift, pigment = connections
    store = MemoryTaskStateStore()
    pigment.faults.add(FaultRule("status", "override", fields={"detailedReport": SKIPPED_REPORT}))

    for try_number in (1, 2):
        with pytest.raises(PigmentSkippedRowsError, match="skipped 3 rows, more than max_skipped_rows=0"):
            run_try(store, try_number=try_number)

    # The task logger writes through structlog to stdout, or to logging when pytest captures it.
    assert "reason InvalidValue, column quantity" in caplog.text + capsys.readouterr().out
    assert_imported_once(pigment, day_truth(redshift))
    assert len(operations(redshift, "ExecuteStatement")) == 1


def test_skipped_rows_within_limit_succeed(connections):
    redshift, pigment = connections
    pigment.faults.add(FaultRule("status", "override", fields={"detailedReport": SKIPPED_REPORT}))

    summary = run_try(MemoryTaskStateStore(), max_skipped_rows=3)

    assert summary["skipped"] == 3
    assert_imported_once(pigment, day_truth(redshift))


def test_empty_result_fail_pushes_nothing(connections):
    redshift, pigment = connections

    with pytest.raises(EmptyResultError, match="returned no rows"):
        run_try(MemoryTaskStateStore(), parameters=EMPTY_DAY)

    assert_nothing_imported(pigment)


def test_empty_result_skip_pushes_nothing(connections):
    redshift, pigment = connections

    with pytest.raises(AirflowSkipException):
        run_try(MemoryTaskStateStore(), parameters=EMPTY_DAY, on_empty_result="skip")

    assert_nothing_imported(pigment)


def test_empty_result_push_header_imports_zero_rows(connections):
    redshift, pigment = connections

    summary = run_try(MemoryTaskStateStore(), parameters=EMPTY_DAY, on_empty_result="push_header")

    [entry] = completed_imports(pigment)
    assert entry["rows"] == 0 == summary["rows"]
    assert pigment.received_rows(entry["import_id"]) == []


# Retries, restarts and kills.


def test_retry_after_success_does_not_push(connections):
    redshift, pigment = connections
    store = MemoryTaskStateStore()

    first = run_try(store)
    second = run_try(store, try_number=2)

    assert second == first
    assert_imported_once(pigment, day_truth(redshift))
    assert len(operations(redshift, "ExecuteStatement")) == 1


def test_cleared_task_imports_again_once(connections):
    redshift, pigment = connections
    store = MemoryTaskStateStore()

    first = run_try(store)
    cleared = run_try(store, try_number=2, clear_number=1)
    repeated = run_try(store, try_number=3, clear_number=1)

    pigment.wait_for_idle()
    assert [entry["import_id"] for entry in completed_imports(pigment)] == [first["import_id"], cleared["import_id"]]
    assert repeated == cleared
    assert len(redshift.statements) == 2


def test_worker_lost_after_push_resumes_wait(connections):
    redshift, pigment = connections
    store = MemoryTaskStateStore()

    with pytest.raises(TaskDeferred) as deferral:
        run_try(store, deferrable=True, poll_interval=0.2)
    if isinstance(deferral.value.trigger, RedshiftStatementTrigger):
        event = asyncio.run(first_event(deferral.value.trigger))
        with pytest.raises(TaskDeferred) as deferral:
            make_operator(deferrable=True).execute_after_statement(context_for(store), event.payload)
    assert isinstance(deferral.value.trigger, PigmentImportTrigger)
    # The worker and the trigger are lost here; Airflow retries the task.
    summary = run_try(store, try_number=2)

    entry = assert_imported_once(pigment, day_truth(redshift))
    assert summary["import_id"] == entry["import_id"]
    assert len(redshift.statements) == 1


async def test_trigger_recreated_from_serialized_kwargs(redshift_emulator_factory, pigment_emulator, monkeypatch):
    # The statement runs long enough for the first status check to see it running, so the task defers.
    redshift = redshift_emulator_factory(running_seconds=0.5)
    pigment = pigment_emulator
    set_connections(monkeypatch, redshift, pigment)
    store = MemoryTaskStateStore()
    context = context_for(store)

    def restarted(trigger: Any) -> Any:
        classpath, kwargs = trigger.serialize()
        module, name = classpath.rsplit(".", 1)
        return getattr(__import__(module, fromlist=[name]), name)(**json.loads(json.dumps(kwargs)))

    operator = make_operator(deferrable=True)
    with pytest.raises(TaskDeferred) as statement_wait:
        operator.execute(context)
    statement_event = await anext(restarted(statement_wait.value.trigger).run())
    with pytest.raises(TaskDeferred) as import_wait:
        make_operator(deferrable=True).execute_after_statement(context, statement_event.payload)
    import_event = await anext(restarted(import_wait.value.trigger).run())
    summary = make_operator(deferrable=True).execute_complete(context, import_event.payload)

    assert_imported_once(pigment, day_truth(redshift))
    assert summary["import_status"] == "Completed"


async def test_trigger_on_kill_cancels_statement(redshift_emulator_factory, pigment_emulator, monkeypatch):
    redshift = redshift_emulator_factory(running_seconds=30)
    set_connections(monkeypatch, redshift, pigment_emulator)

    with pytest.raises(TaskDeferred) as deferral:
        run_try(MemoryTaskStateStore(), deferrable=True)
    trigger = deferral.value.trigger
    assert isinstance(trigger, RedshiftStatementTrigger)
    await trigger.on_kill()

    [cancel] = operations(redshift, "CancelStatement")
    assert cancel["Id"] == trigger.statement_id
    assert redshift.wait_for_status(trigger.statement_id, "ABORTED") == "ABORTED"
    assert_nothing_imported(pigment_emulator)


def test_on_kill_cancels_running_statement(redshift_emulator_factory, pigment_emulator, monkeypatch):
    redshift = redshift_emulator_factory(running_seconds=30)
    set_connections(monkeypatch, redshift, pigment_emulator)
    operator = make_operator()
    outcome: dict[str, BaseException] = {}

    def run() -> None:
        try:
            operator.execute(context_for(MemoryTaskStateStore()))
        except BaseException as error:
            outcome["error"] = error

    worker = threading.Thread(target=run)
    worker.start()
    wait_until(lambda: redshift.statements and operator.statement_id)
    redshift.wait_for_status(operator.statement_id, "STARTED")
    operator.on_kill()
    worker.join(timeout=30)

    assert isinstance(outcome.get("error"), StatementAbortedError)
    [cancel] = operations(redshift, "CancelStatement")
    assert cancel["Id"] == operator.statement_id
    assert_nothing_imported(pigment_emulator)


def wait_until(condition: Callable[[], Any], timeout: float = 10.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met within the timeout")
        time.sleep(0.05)
