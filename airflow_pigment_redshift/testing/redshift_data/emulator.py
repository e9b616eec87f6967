"""The local Redshift Data API emulator: configuration, lifecycle and the Python API for tests."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import Any

from airflow_pigment_redshift.testing.redshift_data.access import AccessSettings
from airflow_pigment_redshift.testing.faults import FaultInjector
from airflow_pigment_redshift.testing.redshift_data.engine import DuckDbEngine, StatusDelays
from airflow_pigment_redshift.testing.redshift_data.results import ResultSettings
from airflow_pigment_redshift.testing.redshift_data.server import create_http_server, validate_loopback_host
from airflow_pigment_redshift.testing.redshift_data.service import RedshiftDataService
from airflow_pigment_redshift.testing.redshift_data.statements import (
    StatementRecord,
    StatementStatus,
    StatementStore,
)

log = logging.getLogger(__name__)

DAY_SECONDS = 24 * 60 * 60


class RedshiftDataEmulator:
    """Local Redshift Data API endpoint that runs the submitted SQL on DuckDB.

    Point a boto3 ``redshift-data`` client at :attr:`url` with any credentials; request
    signatures are not checked. Statements go SUBMITTED, PICKED, STARTED and end FINISHED,
    FAILED or ABORTED on a background thread per statement. Redshift SQL is translated to
    DuckDB with sqlglot, and ``:name`` placeholders are bound as DuckDB named parameters
    from the string values, which DuckDB casts from context (``WHERE d >= :start`` on a DATE
    column works). Where DuckDB cannot infer a type, for example ``:n + 1``, the statement
    fails, whereas Redshift would cast the value. Unnamed expression columns keep DuckDB's
    names, for example ``(1 + 1)``, where Redshift reports ``?column?``.

    :param duckdb_path: DuckDB database file, or ``":memory:"``.
    :param databases: names accepted in the ``Database`` request member; other names end the statement FAILED.
    :param host: IPv4 loopback address to bind.
    :param port: TCP port, or 0 to let the operating system pick a free one.
    :param page_size_rows: rows per result page.
    :param csv_header: ``none``, ``first_page`` or ``every_page``: which CSV result pages start with a header line.
    :param csv_rows_per_record: rows per ``CSVRecords`` element, or None for one element per page.
    :param csv_null: text written, unquoted, for a NULL CSV cell.
    :param csv_empty_string: text written for an empty string in a CSV cell.
    :param submitted_seconds: time a statement stays SUBMITTED.
    :param picked_seconds: time a statement stays PICKED.
    :param running_seconds: minimum time a statement stays STARTED.
    :param max_active_statements: limit of statements not yet ended.
    :param result_retention_seconds: time after a statement ends until its id is no longer found.
    :param client_token_retention_seconds: time during which a repeated ``ClientToken`` returns the first statement.
    :param client_token_conflict: ``return_existing`` or ``reject`` for a repeated token with a different request.
    :param now: clock returning epoch seconds, used for timestamps and expiry.
    :param access: simulated IAM denials, existing clusters and workgroups, and database grants,
        checked by ``ExecuteStatement``; None allows everything.
    :param unload_s3_endpoint_url: S3 endpoint (e.g. a moto server on loopback) that
        ``UNLOAD ... TO 's3://...' FORMAT CSV`` writes its parts to; None makes UNLOAD fail.
    """

    def __init__(
        self,
        duckdb_path: str | os.PathLike[str] = ":memory:",
        *,
        databases: Iterable[str] = ("dev",),
        host: str = "127.0.0.1",
        port: int = 0,
        page_size_rows: int = 1000,
        csv_header: str = "first_page",
        csv_rows_per_record: int | None = None,
        csv_null: str = "",
        csv_empty_string: str = '""',
        submitted_seconds: float = 0.0,
        picked_seconds: float = 0.0,
        running_seconds: float = 0.0,
        max_active_statements: int = 200,
        result_retention_seconds: float = DAY_SECONDS,
        client_token_retention_seconds: float = DAY_SECONDS,
        client_token_conflict: str = "return_existing",
        now: Callable[[], float] = time.time,
        access: AccessSettings | None = None,
        unload_s3_endpoint_url: str | None = None,
    ) -> None:
        validate_loopback_host(host)
        self._host = host
        self._requested_port = port
        self._store = StatementStore(now, result_retention_seconds, client_token_retention_seconds)
        self._engine = DuckDbEngine(
            duckdb_path,
            self._store,
            databases,
            StatusDelays(submitted_seconds, picked_seconds, running_seconds),
            ResultSettings(page_size_rows, csv_header, csv_rows_per_record, csv_null, csv_empty_string),
            s3_endpoint_url=unload_s3_endpoint_url,
        )
        self._service = RedshiftDataService(
            self._store,
            self._engine,
            max_active_statements=max_active_statements,
            client_token_conflict=client_token_conflict,
            access=access,
        )
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._stopped = False

    def start(self) -> RedshiftDataEmulator:
        """Bind the port and serve requests on a daemon thread.

        :return: the emulator itself.
        """
        if self._stopped:
            raise RuntimeError("the emulator was stopped and cannot be started again")
        if self._server is not None:
            return self
        self._server = create_http_server(self._host, self._requested_port, self._service)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="redshift-data-emulator",
            daemon=True,
        )
        self._thread.start()
        log.info("Redshift Data API emulator listening on %s", self.url)
        return self

    def stop(self) -> None:
        """Stop serving, end long polls, interrupt running queries and close the DuckDB database."""
        if self._stopped:
            return
        self._stopped = True
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        self._engine.close()
        log.info("Redshift Data API emulator stopped")

    def __enter__(self) -> RedshiftDataEmulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """TCP port the emulator listens on."""
        if self._server is None:
            raise RuntimeError("the emulator is not started; call start() first")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """Endpoint URL for boto3's ``endpoint_url``, for example ``http://127.0.0.1:49152``."""
        return f"http://{self._host}:{self.port}"

    def execute_sql(self, sql: str) -> None:
        """Run setup SQL directly on DuckDB, without Redshift translation.

        :param sql: DuckDB SQL; several statements separated by ``;`` are allowed.
        """
        self._engine.execute_sql(sql)

    def query(self, sql: str, parameters: Mapping[str, str] | None = None) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Run Redshift SQL through the same translation as ``ExecuteStatement`` and return Python rows.

        :param sql: SQL in the Redshift dialect, with ``:name`` placeholders.
        :param parameters: placeholder values as strings.
        :return: column names and rows as DuckDB's Python values.
        :raises ValueError: when a placeholder has no value or a parameter is not used.
        """
        return self._engine.query(sql, parameters)

    def statement(self, statement_id: str) -> dict[str, Any]:
        """Return a snapshot of one stored statement: status, SQL, parameters, client token, name and result size.

        :raises KeyError: when no statement has this id.
        """
        record = self._record(statement_id)
        with self._store.changed:
            return record.snapshot()

    @property
    def statements(self) -> list[dict[str, Any]]:
        """Snapshots of all stored statements, in submission order."""
        with self._store.changed:
            return [record.snapshot() for record in self._store.records()]

    @property
    def faults(self) -> FaultInjector:
        """Fault rules applied to every request: ``emulator.faults.add(FaultRule(...))``.

        Supported kinds: ``error`` (``code``, ``status``, ``message``), ``drop_before``,
        ``drop_after``, ``delay``, ``slow_response`` and ``override`` (merged into the JSON response). Processes
        started from the command line take the same rules as JSON at ``POST /_emulator/faults``.
        """
        return self._service.faults

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Every request received, in arrival order, as ``{"operation": name, "request": body}``."""
        return self._service.requests

    def wait_for_status(self, statement_id: str, *statuses: str, timeout: float = 10.0) -> str:
        """Block until a statement reaches one of ``statuses`` or any terminal status.

        :param statement_id: id returned by ``ExecuteStatement``.
        :param statuses: status names to wait for, for example ``"STARTED"``.
        :param timeout: maximum wait in seconds.
        :return: the status reached.
        :raises TimeoutError: when no such status is reached within ``timeout``.
        """
        requested_statuses = {StatementStatus(status) for status in statuses}
        record = self._record(statement_id)

        def is_reached() -> bool:
            return record.status in requested_statuses or record.status.is_terminal

        if not self._store.wait_for(is_reached, timeout):
            raise TimeoutError(f"statement {statement_id} is still {record.status.value} after {timeout} s")
        return record.status.value

    def join_statement(self, statement_id: str, timeout: float = 10.0) -> None:
        """Block until the statement's worker thread has returned, so its DuckDB query no longer runs.

        :param statement_id: id returned by ``ExecuteStatement``.
        :param timeout: maximum wait in seconds.
        :raises TimeoutError: when the worker is still running after ``timeout``.
        """
        record = self._record(statement_id)
        if not record.execution_done.wait(timeout):
            raise TimeoutError(f"statement {statement_id} is still executing after {timeout} s")

    def _record(self, statement_id: str) -> StatementRecord:
        for record in self._store.records():
            if record.id == statement_id:
                return record
        raise KeyError(statement_id)
