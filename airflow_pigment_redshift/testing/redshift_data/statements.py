"""Statement records, their status, and the thread-safe store that contains them."""

from __future__ import annotations

import enum
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from airflow_pigment_redshift.testing.redshift_data.errors import statement_not_found
from airflow_pigment_redshift.testing.redshift_data.results import RenderedResult

log = logging.getLogger(__name__)


class StatementStatus(str, enum.Enum):
    """Status of a Data API statement, as returned by ``DescribeStatement``."""

    SUBMITTED = "SUBMITTED"
    PICKED = "PICKED"
    STARTED = "STARTED"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    ABORTED = "ABORTED"

    @property
    def is_terminal(self) -> bool:
        """Whether the statement can no longer change status."""
        return self in _TERMINAL_STATUSES


_TERMINAL_STATUSES = frozenset({StatementStatus.FINISHED, StatementStatus.FAILED, StatementStatus.ABORTED})


@dataclass
class StatementRecord:
    """One statement submitted with ``ExecuteStatement``; mutated only under the store's lock."""

    id: str
    sql: str
    parameters: dict[str, str] | None
    database: str
    cluster_identifier: str | None
    workgroup_name: str | None
    db_user: str | None
    secret_arn: str | None
    statement_name: str | None
    client_token: str | None
    with_event: bool
    result_format: str
    created_at: float
    updated_at: float
    redshift_pid: int
    status: StatementStatus = StatementStatus.SUBMITTED
    redshift_query_id: int = 0
    duckdb_sql: str | None = None
    error: str | None = None
    has_result_set: bool = False
    result_rows: int = -1
    result_size: int = -1
    duration_ns: int = 0
    started_ns: int | None = None
    ended_at: float | None = None
    result: RenderedResult | None = None
    cancel_requested: bool = False
    cursor: Any = None  # the DuckDB cursor while the SQL runs, so CancelStatement can interrupt it
    execution_done: threading.Event = field(default_factory=threading.Event)
    status_history: list[str] = field(default_factory=lambda: [StatementStatus.SUBMITTED.value])

    @property
    def query_parameters(self) -> list[dict[str, str]] | None:
        """The request ``Parameters`` in their wire form."""
        if self.parameters is None:
            return None
        return [{"name": name, "value": value} for name, value in self.parameters.items()]

    def snapshot(self) -> dict[str, Any]:
        """Return a copy of the fields that tests assert on."""
        return {
            "id": self.id,
            "status": self.status.value,
            "status_history": list(self.status_history),
            "sql": self.sql,
            "duckdb_sql": self.duckdb_sql,
            "parameters": dict(self.parameters) if self.parameters is not None else None,
            "database": self.database,
            "cluster_identifier": self.cluster_identifier,
            "workgroup_name": self.workgroup_name,
            "db_user": self.db_user,
            "secret_arn": self.secret_arn,
            "statement_name": self.statement_name,
            "client_token": self.client_token,
            "with_event": self.with_event,
            "result_format": self.result_format,
            "error": self.error,
            "has_result_set": self.has_result_set,
            "result_rows": self.result_rows,
            "result_size": self.result_size,
            "page_count": len(self.result.pages) if self.result is not None else 0,
            "column_names": list(self.result.column_names) if self.result is not None else [],
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "redshift_pid": self.redshift_pid,
            "redshift_query_id": self.redshift_query_id,
            "cancel_requested": self.cancel_requested,
        }


class StatementStore:
    """Thread-safe store of statement records with result retention and ``ClientToken`` lookup.

    A single condition variable is notified on every change, so long-polling requests wait
    without sleeping.

    :param now: clock returning epoch seconds; it decides ``CreatedAt``/``UpdatedAt`` and expiry.
    :param result_retention_seconds: how long a statement stays readable after it ends.
    :param client_token_retention_seconds: how long a ``ClientToken`` maps to its statement.
    """

    def __init__(
        self,
        now: Callable[[], float],
        result_retention_seconds: float,
        client_token_retention_seconds: float,
    ) -> None:
        self._now = now
        self._result_retention_seconds = result_retention_seconds
        self._client_token_retention_seconds = client_token_retention_seconds
        self._statements: dict[str, StatementRecord] = {}
        self._client_tokens: dict[str, tuple[str, float]] = {}
        self.changed = threading.Condition(threading.RLock())

    def now(self) -> float:
        """Return the current time of the store's clock, in epoch seconds."""
        return self._now()

    def add(self, record: StatementRecord) -> None:
        """Store a new statement and remember its ``ClientToken``."""
        with self.changed:
            self._statements[record.id] = record
            if record.client_token is not None:
                self._client_tokens[record.client_token] = (record.id, record.created_at)
            self.changed.notify_all()

    def get(self, statement_id: str) -> StatementRecord:
        """Return the statement, raising ``ResourceNotFoundException`` if it is unknown or expired."""
        with self.changed:
            self._purge_expired()
            record = self._statements.get(statement_id)
        if record is None:
            raise statement_not_found()
        return record

    def find_by_client_token(self, client_token: str) -> StatementRecord | None:
        """Return the statement submitted with ``client_token`` within the token retention, if any."""
        with self.changed:
            self._purge_expired()
            entry = self._client_tokens.get(client_token)
            if entry is None:
                return None
            return self._statements.get(entry[0])

    def records(self) -> list[StatementRecord]:
        """Return the unexpired statements in submission order."""
        with self.changed:
            self._purge_expired()
            return list(self._statements.values())

    def active_count(self) -> int:
        """Return the number of statements that have not reached a terminal status."""
        with self.changed:
            return sum(1 for record in self._statements.values() if not record.status.is_terminal)

    def transition(self, record: StatementRecord, status: StatementStatus, **fields: Any) -> bool:
        """Move a statement to ``status`` and set ``fields``, unless it already ended.

        :return: whether the change was applied.
        """
        with self.changed:
            if record.status.is_terminal:
                return False
            for name, value in fields.items():
                setattr(record, name, value)
            record.status = status
            record.status_history.append(status.value)
            record.updated_at = self._now()
            if status.is_terminal:
                record.ended_at = record.updated_at
            self.changed.notify_all()
        if status is StatementStatus.FAILED:
            log.info("Statement %s ended FAILED: %s", record.id, record.error)
        elif status.is_terminal:
            log.info("Statement %s ended %s", record.id, status.value)
        return True

    def update(self, record: StatementRecord, **fields: Any) -> None:
        """Set fields of a statement without changing its status."""
        with self.changed:
            for name, value in fields.items():
                setattr(record, name, value)
            self.changed.notify_all()

    def wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Block until ``predicate`` returns true or ``timeout`` seconds pass; return the predicate's last value."""
        with self.changed:
            return self.changed.wait_for(predicate, timeout)

    def notify_all(self) -> None:
        """Wake every waiter so that it re-checks its predicate."""
        with self.changed:
            self.changed.notify_all()

    def _purge_expired(self) -> None:
        now = self._now()
        expired = [
            statement_id
            for statement_id, record in self._statements.items()
            if record.ended_at is not None and now >= record.ended_at + self._result_retention_seconds
        ]
        for statement_id in expired:
            del self._statements[statement_id]
        stale_tokens = [
            token
            for token, (_, created_at) in self._client_tokens.items()
            if now >= created_at + self._client_token_retention_seconds
        ]
        for token in stale_tokens:
            del self._client_tokens[token]


def filter_records(
    records: Iterable[StatementRecord],
    *,
    name_prefix: str | None,
    status: str | None,
    database: str | None,
    cluster_identifier: str | None,
    workgroup_name: str | None,
) -> list[StatementRecord]:
    """Select the statements that ``ListStatements`` returns for the given filters."""
    selected = []
    for record in records:
        if name_prefix and not (record.statement_name or "").startswith(name_prefix):
            continue
        if status not in (None, "ALL") and record.status.value != status:
            continue
        if database is not None and record.database != database:
            continue
        if cluster_identifier is not None and record.cluster_identifier != cluster_identifier:
            continue
        if workgroup_name is not None and record.workgroup_name != workgroup_name:
            continue
        selected.append(record)
    return selected
