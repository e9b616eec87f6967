"""Execution of statements on DuckDB, one background thread and one DuckDB cursor per statement."""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import duckdb

from airflow_pigment_redshift.testing.redshift_data.results import ResultSettings, render_result
from airflow_pigment_redshift.testing.redshift_data.statements import (
    StatementRecord,
    StatementStatus,
    StatementStore,
)
from airflow_pigment_redshift.testing.redshift_data.translation import parameter_error, translate_sql
from airflow_pigment_redshift.testing.redshift_data.unload import UnloadRequest, parse_unload, run_unload

log = logging.getLogger(__name__)

# Result sets are materialized in this in-memory catalog before rendering, so that they
# never appear in, or get written to, the database that the statements query.
RESULTS_CATALOG = "redshift_data_emulator_results"

# Time between repeated interrupts of a cancelled statement's DuckDB cursor. DuckDB drops
# an interrupt that arrives before the query starts, so one interrupt can be lost.
_INTERRUPT_RETRY_SECONDS = 0.05
_INTERRUPT_MAX_ATTEMPTS = 200


@dataclass(frozen=True)
class StatusDelays:
    """Minimum time a statement spends in each non-terminal status.

    :param submitted_seconds: time in SUBMITTED before PICKED.
    :param picked_seconds: time in PICKED before STARTED.
    :param running_seconds: minimum time in STARTED; a faster query waits until this much time has passed.
    """

    submitted_seconds: float = 0.0
    picked_seconds: float = 0.0
    running_seconds: float = 0.0


class StatementFailure(Exception):
    """A statement ended FAILED; the message is its ``Error`` text."""


class DuckDbEngine:
    """Runs statements on one DuckDB database.

    DuckDB connections are not thread-safe, so every statement and every direct call gets
    its own cursor of the single connection, and statements can run concurrently.

    :param duckdb_path: DuckDB database file, or ``":memory:"``.
    :param store: the statement store whose records this engine executes.
    :param databases: names accepted in the ``Database`` request member.
    :param delays: status delays.
    :param result_settings: page size and CSV options.
    :param s3_endpoint_url: S3 endpoint that UNLOAD writes to, e.g. a moto server; None fails UNLOAD.
    """

    def __init__(
        self,
        duckdb_path: str | os.PathLike[str],
        store: StatementStore,
        databases: Iterable[str],
        delays: StatusDelays,
        result_settings: ResultSettings,
        s3_endpoint_url: str | None = None,
    ) -> None:
        self._connection = duckdb.connect(os.fspath(duckdb_path))
        self._s3_endpoint_url = s3_endpoint_url
        self._connection.execute(f"ATTACH IF NOT EXISTS ':memory:' AS {RESULTS_CATALOG}")
        self._store = store
        self._databases = frozenset(databases)
        self._delays = delays
        self._result_settings = result_settings
        self._query_ids = itertools.count(100_000)
        self._query_ids_lock = threading.Lock()
        self._stopping = threading.Event()
        self._workers: list[threading.Thread] = []
        self._workers_lock = threading.Lock()

    def new_cursor(self) -> Any:
        """Return a new DuckDB cursor whose session time zone is UTC, the Redshift default."""
        cursor = self._connection.cursor()
        cursor.execute("SET TimeZone = 'UTC'")
        return cursor

    def submit(self, record: StatementRecord) -> None:
        """Start executing a stored statement on a daemon thread."""
        worker = threading.Thread(target=self._run, args=(record,), name=f"redshift-data-{record.id}", daemon=True)
        with self._workers_lock:
            self._workers = [thread for thread in self._workers if thread.is_alive()]
            self._workers.append(worker)
        worker.start()

    def interrupt(self, record: StatementRecord) -> None:
        """Interrupt the DuckDB query of a cancelled statement until its worker returns."""
        threading.Thread(target=self._interrupt_until_done, args=(record,), daemon=True).start()

    def execute_sql(self, sql: str) -> None:
        """Run DuckDB SQL directly, without translation; several statements separated by ``;`` are allowed."""
        cursor = self.new_cursor()
        try:
            cursor.execute(sql)
        finally:
            cursor.close()

    def query(self, sql: str, parameters: Mapping[str, str] | None) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Run Redshift SQL through the emulator's translation and return column names and rows.

        :raises ValueError: when a placeholder has no value or a parameter is not used.
        """
        translated = translate_sql(sql)
        error = parameter_error(translated.placeholder_names, parameters or {})
        if error is not None:
            raise ValueError(error)
        cursor = self.new_cursor()
        try:
            cursor.execute(translated.duckdb_sql, dict(parameters) if parameters else None)
            if cursor.description is None:
                return [], []
            names = [column[0] for column in cursor.description]
            return names, cursor.fetchall()
        finally:
            cursor.close()

    def close(self, timeout: float = 5.0) -> None:
        """Stop waiting workers, interrupt running queries and close the DuckDB connection."""
        self._stopping.set()
        self._store.notify_all()
        for record in self._store.records():
            cursor = record.cursor
            if cursor is not None:
                cursor.interrupt()
        deadline = time.monotonic() + timeout
        with self._workers_lock:
            workers = list(self._workers)
        for worker in workers:
            worker.join(max(0.0, deadline - time.monotonic()))
        self._connection.close()

    def _run(self, record: StatementRecord) -> None:
        try:
            self._advance(record)
        except Exception:
            log.exception("Statement %s: the emulator failed while executing it", record.id)
            self._store.transition(record, StatementStatus.FAILED, error="ERROR: internal emulator error")
        finally:
            record.execution_done.set()
            self._store.notify_all()

    def _advance(self, record: StatementRecord) -> None:
        if not self._hold(record, self._delays.submitted_seconds):
            return
        if not self._store.transition(record, StatementStatus.PICKED):
            return
        if not self._hold(record, self._delays.picked_seconds):
            return
        with self._query_ids_lock:
            query_id = next(self._query_ids)
        started_ns = time.perf_counter_ns()
        if not self._store.transition(
            record, StatementStatus.STARTED, started_ns=started_ns, redshift_query_id=query_id
        ):
            return

        try:
            outcome = self._execute(record)
        except StatementFailure as failure:
            self._store.transition(
                record, StatementStatus.FAILED, error=str(failure), duration_ns=time.perf_counter_ns() - started_ns
            )
            return

        remaining = self._delays.running_seconds - (time.perf_counter_ns() - started_ns) / 1e9
        if not self._hold(record, remaining):
            return
        self._store.transition(
            record, StatementStatus.FINISHED, duration_ns=time.perf_counter_ns() - started_ns, **outcome
        )

    def _hold(self, record: StatementRecord, seconds: float) -> bool:
        """Wait ``seconds`` in the current status; return False if the statement was cancelled or the engine stops."""
        if seconds > 0:
            self._store.wait_for(lambda: record.cancel_requested or self._stopping.is_set(), seconds)
        return not (record.cancel_requested or self._stopping.is_set())

    def _execute(self, record: StatementRecord) -> dict[str, Any]:
        """Run the statement's SQL and return the fields of its FINISHED record.

        :raises StatementFailure: with the ``Error`` text when the statement fails.
        """
        if record.database not in self._databases:
            # NOTE: whether real Redshift reports an unknown database as a FAILED statement or as an
            # ExecuteStatement error is unverified.
            raise StatementFailure(f'ERROR: database "{record.database}" does not exist')

        try:
            unload = parse_unload(record.sql)
        except ValueError as error:
            raise StatementFailure(str(error)) from error
        if unload is not None:
            return self._execute_unload(record, unload)

        translated = translate_sql(record.sql)
        self._store.update(record, duckdb_sql=translated.duckdb_sql)
        if translated.statement_count is not None and translated.statement_count != 1:
            raise StatementFailure(_statement_count_error(translated.statement_count))
        error = parameter_error(translated.placeholder_names, record.parameters or {})
        if error is not None:
            raise StatementFailure(error)
        parameters = dict(record.parameters) if record.parameters else None

        cursor = self.new_cursor()
        self._store.update(record, cursor=cursor)
        try:
            if record.cancel_requested:
                return {}
            statements = cursor.extract_statements(translated.duckdb_sql)
            if len(statements) != 1:
                raise StatementFailure(_statement_count_error(len(statements)))
            expected = statements[0].expected_result_type
            if duckdb.ExpectedResultType.QUERY_RESULT in expected and (
                duckdb.ExpectedResultType.CHANGED_ROWS not in expected
            ):
                return self._execute_query(record, cursor, translated.duckdb_sql, parameters)
            return self._execute_command(cursor, translated.duckdb_sql, parameters)
        except duckdb.Error as error:
            raise StatementFailure(f"ERROR: {str(error).strip()}") from error
        finally:
            self._store.update(record, cursor=None)
            cursor.close()

    def _execute_query(
        self, record: StatementRecord, cursor: Any, sql: str, parameters: dict[str, str] | None
    ) -> dict[str, Any]:
        relation = cursor.sql(sql, params=parameters)
        column_names = list(relation.columns)
        column_types = list(relation.types)
        table = f'{RESULTS_CATALOG}.main."result_{record.id.replace("-", "_")}"'
        relation.create(table)
        try:
            result = render_result(
                cursor, table, column_names, column_types, record.result_format, self._result_settings
            )
        finally:
            cursor.execute(f"DROP TABLE IF EXISTS {table}")
        return {
            "has_result_set": True,
            "result_rows": result.total_rows,
            "result_size": result.size_bytes,
            "result": result,
        }

    def _execute_unload(self, record: StatementRecord, unload: UnloadRequest) -> dict[str, Any]:
        if self._s3_endpoint_url is None:
            raise StatementFailure(
                "ERROR: UNLOAD needs an S3 endpoint; start the emulator with unload_s3_endpoint_url"
            )
        import boto3

        translated = translate_sql(unload.query)
        self._store.update(record, duckdb_sql=translated.duckdb_sql)
        s3_client = boto3.client(
            "s3",
            endpoint_url=self._s3_endpoint_url,
            region_name="us-east-1",
            aws_access_key_id="emulator",
            aws_secret_access_key="emulator",
        )
        cursor = self.new_cursor()
        self._store.update(record, cursor=cursor)
        try:
            rows = run_unload(cursor, unload, translated.duckdb_sql, s3_client)
        except (duckdb.Error, ValueError) as error:
            message = str(error).strip()
            raise StatementFailure(message if message.startswith("ERROR:") else f"ERROR: {message}") from error
        finally:
            self._store.update(record, cursor=None)
            cursor.close()
        return {"has_result_set": False, "result_rows": rows, "result_size": -1}

    @staticmethod
    def _execute_command(cursor: Any, sql: str, parameters: dict[str, str] | None) -> dict[str, Any]:
        cursor.execute(sql, parameters)
        description = cursor.description or []
        rows = cursor.fetchall() if description else []
        changed_rows = -1
        if len(description) == 1 and description[0][0] == "Count" and rows:
            changed_rows = int(rows[0][0])
        return {"has_result_set": False, "result_rows": changed_rows, "result_size": -1}

    def _interrupt_until_done(self, record: StatementRecord) -> None:
        for _ in range(_INTERRUPT_MAX_ATTEMPTS):
            cursor = record.cursor
            if cursor is not None:
                cursor.interrupt()
            if record.execution_done.wait(_INTERRUPT_RETRY_SECONDS):
                return
        log.warning("Statement %s: DuckDB query still running after cancellation", record.id)


def _statement_count_error(count: int) -> str:
    # NOTE: the text real Redshift returns for an ExecuteStatement call with several statements is unverified.
    if count == 0:
        return "ERROR: the SQL contains no statement"
    return f"ERROR: ExecuteStatement runs one SQL statement, but the SQL contains {count}"
