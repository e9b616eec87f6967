"""Redshift Data API operations: request validation, statement lifecycle calls and response bodies.

``RedshiftDataService.handle`` is the single entry point for every request, so behaviour
that applies to all operations (request recording, logging, later fault injection) goes there.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import random
import re
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from airflow_pigment_redshift.testing.redshift_data.access import AccessSettings
from airflow_pigment_redshift.testing.faults import FaultInjector, FaultRule
from airflow_pigment_redshift.testing.redshift_data.engine import DuckDbEngine
from airflow_pigment_redshift.testing.redshift_data.errors import (
    DataApiError,
    constraint_error,
    validation_error,
)
from airflow_pigment_redshift.testing.redshift_data.results import decode_page_token, encode_page_token, page_body
from airflow_pigment_redshift.testing.redshift_data.statements import (
    StatementRecord,
    StatementStatus,
    StatementStore,
    filter_records,
)

log = logging.getLogger(__name__)

TARGET_PREFIX = "RedshiftData."

# Constraints from the botocore service model redshift-data 2019-12-20 (botocore 1.43.117).
CLUSTER_IDENTIFIER_PATTERN = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")
WORKGROUP_NAME_PATTERN = re.compile(
    r"([a-z0-9-]{3,63}|arn:(aws(-[a-z]+)*):redshift-serverless:([a-z]{2}(-gov|(-iso[a-z]?))?|eusc-[a-z]+)-[a-z]+-\d{1}"
    r":\d{12}:workgroup/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[a-z0-9-]{1,63}/[a-z0-9-]{1,63}))"
)
STATEMENT_ID_PATTERN = re.compile(r"[a-z0-9]{8}(-[a-z0-9]{4}){3}-[a-z0-9]{12}(:\d{0,2})?")
STATEMENT_NAME_MAX_LENGTH = 2048
CLIENT_TOKEN_MAX_LENGTH = 64
LIST_MAX_RESULTS = 100
WAIT_TIME_RANGE = (1, 30)
# The SQL text limit of 100 KB comes from the archived Amazon Redshift Management Guide.
MAX_SQL_BYTES = 100 * 1024

RESULT_FORMATS = ("JSON", "CSV")
#: Status returned by ``handle`` when the server must close the connection without a response.
DROP_CONNECTION = -1
CLIENT_TOKEN_CONFLICT_MODES = ("return_existing", "reject")

_UNIMPLEMENTED_OPERATIONS = frozenset(
    {"BatchExecuteStatement", "DescribeTable", "ListDatabases", "ListSchemas", "ListTables", "ListSessions"}
)


class RedshiftDataService:
    """Implementation of the Redshift Data API operations on top of a statement store and a DuckDB engine.

    :param store: statement store.
    :param engine: DuckDB engine that executes submitted statements.
    :param max_active_statements: limit of statements not yet ended; more raise ``ActiveStatementsExceededException``.
    :param client_token_conflict: ``return_existing`` to return the first statement for a repeated
        ``ClientToken`` even when the request differs, or ``reject`` to raise ``ValidationException`` then.
    :param access: simulated IAM permissions, targets and database grants; None allows everything.
    """

    def __init__(
        self,
        store: StatementStore,
        engine: DuckDbEngine,
        *,
        max_active_statements: int = 200,
        client_token_conflict: str = "return_existing",
        access: AccessSettings | None = None,
    ) -> None:
        if client_token_conflict not in CLIENT_TOKEN_CONFLICT_MODES:
            raise ValueError(
                f"client_token_conflict must be one of {', '.join(CLIENT_TOKEN_CONFLICT_MODES)}, "
                f"got {client_token_conflict!r}"
            )
        self._store = store
        self._engine = engine
        self._max_active_statements = max_active_statements
        self._client_token_conflict = client_token_conflict
        self.access = access or AccessSettings()
        self.faults = FaultInjector()
        self._requests: list[dict[str, Any]] = []
        self._requests_lock = threading.Lock()
        self._operations: dict[str, Callable[[dict[str, Any]], dict[str, Any] | bytes]] = {
            "ExecuteStatement": self.execute_statement,
            "DescribeStatement": self.describe_statement,
            "GetStatementResult": self.get_statement_result,
            "GetStatementResultV2": self.get_statement_result_v2,
            "CancelStatement": self.cancel_statement,
            "ListStatements": self.list_statements,
        }

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Every request received, in arrival order, as ``{"operation": name, "request": body}``."""
        with self._requests_lock:
            return [dict(entry) for entry in self._requests]

    def handle(self, target: str | None, body: bytes) -> tuple[int, bytes]:
        """Run one AWS JSON 1.1 request and return the HTTP status and response body.

        :param target: the ``X-Amz-Target`` header, ``RedshiftData.<Operation>``.
        :param body: the raw request body.
        """
        operation = target[len(TARGET_PREFIX) :] if target and target.startswith(TARGET_PREFIX) else None
        try:
            request = _parse_body(body)
            with self._requests_lock:
                self._requests.append({"operation": operation or target, "request": request})
            log.debug("Operation %s: %s", operation or target, request)
            handler = self._operations.get(operation or "")
            if handler is None:
                raise _unknown_operation(target, operation)
            fault = self.faults.fault_for(operation or "", request)
            if fault is not None and fault.fault in ("error", "drop_before"):
                return _fault_response(fault)
            if fault is not None and fault.fault == "delay":
                time.sleep(fault.delay_seconds)
            response = handler(request)
            if fault is not None and fault.fault == "drop_after":
                return DROP_CONNECTION, b""
            if fault is not None and fault.fault == "slow_response":
                time.sleep(fault.delay_seconds)
            if fault is not None and fault.fault == "override":
                response = {**(json.loads(response) if isinstance(response, bytes) else response), **fault.fields}
        except DataApiError as error:
            log.debug("Operation %s raised %s: %s", operation or target, error.code, error.message)
            return error.http_status, _error_body(error)
        except Exception:
            log.exception("Operation %s failed inside the emulator", operation or target)
            return 500, _error_body(DataApiError("InternalServerException", "The emulator failed", 500))
        if isinstance(response, bytes):
            return 200, response
        return 200, json.dumps(response, ensure_ascii=False).encode()

    def execute_statement(self, request: dict[str, Any]) -> dict[str, Any]:
        """Submit one statement for execution (``ExecuteStatement``)."""
        sql = _required_string(request, "Sql")
        if not sql.strip():
            raise validation_error("Sql must contain a SQL statement")
        sql_bytes = len(sql.encode())
        if sql_bytes > MAX_SQL_BYTES:
            # NOTE: the error type and text real Redshift returns for SQL over 100 KB are unverified.
            raise validation_error(f"Sql is {sql_bytes} bytes, over the limit of {MAX_SQL_BYTES} bytes")
        cluster_identifier = _optional_string(
            request, "ClusterIdentifier", min_length=1, max_length=63, pattern=CLUSTER_IDENTIFIER_PATTERN
        )
        workgroup_name = _optional_string(
            request, "WorkgroupName", min_length=3, max_length=128, pattern=WORKGROUP_NAME_PATTERN
        )
        if request.get("SessionId") is not None or request.get("SessionKeepAliveSeconds") is not None:
            raise validation_error("The emulator does not support sessions (SessionId, SessionKeepAliveSeconds)")
        if cluster_identifier is None and workgroup_name is None:
            raise validation_error("Either ClusterIdentifier or WorkgroupName must be provided")
        if cluster_identifier is not None and workgroup_name is not None:
            raise validation_error("ClusterIdentifier and WorkgroupName are mutually exclusive")
        database = _optional_string(request, "Database")
        if not database:
            raise validation_error("Database must be provided with ClusterIdentifier or WorkgroupName")
        statement_name = _optional_string(request, "StatementName", max_length=STATEMENT_NAME_MAX_LENGTH)
        client_token = _optional_string(request, "ClientToken", min_length=1, max_length=CLIENT_TOKEN_MAX_LENGTH)
        result_format = _optional_string(request, "ResultFormat") or "JSON"
        if result_format not in RESULT_FORMATS:
            raise constraint_error(
                result_format, "resultFormat", f"Member must satisfy enum value set: [{', '.join(RESULT_FORMATS)}]"
            )
        wait_seconds = _wait_time_seconds(request)
        parameters = _parameters(request)
        with_event = request.get("WithEvent", False)
        if not isinstance(with_event, bool):
            raise validation_error("WithEvent must be a boolean")
        self.access.check_execute_statement(request)
        access_error = self.access.statement_error(request, sql)

        now = self._store.now()
        candidate = StatementRecord(
            id=str(uuid.uuid4()),
            sql=sql,
            parameters=parameters,
            database=database,
            cluster_identifier=cluster_identifier,
            workgroup_name=workgroup_name,
            db_user=_optional_string(request, "DbUser"),
            secret_arn=_optional_string(request, "SecretArn"),
            statement_name=statement_name,
            client_token=client_token,
            with_event=with_event,
            result_format=result_format,
            created_at=now,
            updated_at=now,
            redshift_pid=random.randint(1_073_741_824, 1_073_999_999),
        )
        record, is_new = self._store_new_statement(candidate)
        if is_new and access_error is not None:
            self._store.transition(record, StatementStatus.FAILED, error=access_error)
            record.execution_done.set()
        elif is_new:
            self._engine.submit(record)
        if wait_seconds is not None:
            self._store.wait_for(lambda: record.status.is_terminal, wait_seconds)

        response = _connection_fields(record)
        response["Id"] = record.id
        response["CreatedAt"] = record.created_at
        if wait_seconds is not None:
            response["Status"] = record.status.value
            response["HasResultSet"] = record.has_result_set
            response["RedshiftPid"] = record.redshift_pid
        return response

    def describe_statement(self, request: dict[str, Any]) -> dict[str, Any]:
        """Return a statement's status and metadata (``DescribeStatement``)."""
        record = self._store.get(_statement_id(request))
        wait_seconds = _wait_time_seconds(request)
        if wait_seconds is not None:
            self._store.wait_for(lambda: record.status.is_terminal, wait_seconds)
        return _describe(record)

    def get_statement_result(self, request: dict[str, Any]) -> bytes:
        """Return one page of a JSON result (``GetStatementResult``)."""
        return self._result_page(request, "JSON")

    def get_statement_result_v2(self, request: dict[str, Any]) -> bytes:
        """Return one page of a CSV result (``GetStatementResultV2``)."""
        return self._result_page(request, "CSV")

    def cancel_statement(self, request: dict[str, Any]) -> dict[str, Any]:
        """Abort a running statement (``CancelStatement``); ``Status`` is false when it had already ended."""
        record = self._store.get(_statement_id(request))
        was_started = record.status is StatementStatus.STARTED
        started_ns = record.started_ns
        duration_ns = time.perf_counter_ns() - started_ns if started_ns is not None else 0
        cancelled = self._store.transition(
            record, StatementStatus.ABORTED, cancel_requested=True, duration_ns=duration_ns
        )
        if cancelled and was_started:
            self._engine.interrupt(record)
        return {"Status": cancelled}

    def list_statements(self, request: dict[str, Any]) -> dict[str, Any]:
        """List statements, newest first, filtered by name prefix and status (``ListStatements``)."""
        max_results = request.get("MaxResults")
        if max_results is None or max_results == 0:
            max_results = LIST_MAX_RESULTS
        if not isinstance(max_results, int) or not 0 <= max_results <= LIST_MAX_RESULTS:
            raise constraint_error(
                max_results, "maxResults", f"Member must have value between 0 and {LIST_MAX_RESULTS}, inclusive"
            )

        status = _optional_string(request, "Status")
        allowed_statuses = [status.value for status in StatementStatus] + ["ALL"]
        if status is not None and status not in allowed_statuses:
            raise constraint_error(
                status, "status", f"Member must satisfy enum value set: [{', '.join(allowed_statuses)}]"
            )
        records = filter_records(
            self._store.records(),
            name_prefix=_optional_string(request, "StatementName", max_length=STATEMENT_NAME_MAX_LENGTH),
            status=status,
            database=_optional_string(request, "Database"),
            cluster_identifier=_optional_string(request, "ClusterIdentifier"),
            workgroup_name=_optional_string(request, "WorkgroupName"),
        )
        # NOTE: the order of real ListStatements results is not documented; newest first is assumed.
        records.reverse()

        offset = _decode_list_token(_optional_string(request, "NextToken"))
        page = records[offset : offset + max_results]
        response: dict[str, Any] = {"Statements": [_list_entry(record) for record in page]}
        if offset + max_results < len(records):
            response["NextToken"] = _encode_list_token(offset + max_results)
        return response

    def _store_new_statement(self, candidate: StatementRecord) -> tuple[StatementRecord, bool]:
        """Store ``candidate``, or return the statement that already has its ``ClientToken``.

        :return: the stored statement and whether it is ``candidate``.
        """
        with self._store.changed:
            if candidate.client_token is not None:
                existing = self._store.find_by_client_token(candidate.client_token)
                if existing is not None:
                    # NOTE: how long real Redshift remembers a ClientToken, and how it treats a
                    # repeated token with a different request, are unknown; both are settings here.
                    if self._client_token_conflict == "reject" and not _same_request(existing, candidate):
                        raise validation_error(
                            f"ClientToken {candidate.client_token!r} was already used for a different request"
                        )
                    return existing, False
            if self._store.active_count() >= self._max_active_statements:
                raise DataApiError(
                    "ActiveStatementsExceededException",
                    f"The number of active statements exceeds the limit of {self._max_active_statements}",
                )
            self._store.add(candidate)
            return candidate, True

    def _result_page(self, request: dict[str, Any], result_format: str) -> bytes:
        record = self._store.get(_statement_id(request))
        wait_seconds = _wait_time_seconds(request)
        next_token = _optional_string(request, "NextToken")
        # NOTE: the errors real Redshift returns for a result call that does not match ResultFormat,
        # and for the result of a running, failed or aborted statement, are unverified.
        if record.result_format != result_format:
            operation = "GetStatementResultV2" if record.result_format == "CSV" else "GetStatementResult"
            raise validation_error(
                f"Statement {record.id} was run with ResultFormat {record.result_format}; "
                f"read its result with {operation}"
            )
        if wait_seconds is not None:
            self._store.wait_for(lambda: record.status.is_terminal, wait_seconds)
        status = record.status
        if not status.is_terminal:
            raise validation_error(f"Query has not finished. Status: {status.value}")
        if status is not StatementStatus.FINISHED:
            raise validation_error(f"Query does not have result because its status is {status.value}")
        result = record.result
        if result is None:
            raise validation_error("Query does not have result")

        page_index = 0 if next_token is None else decode_page_token(next_token, record.id, len(result.pages))
        is_last_page = page_index + 1 >= len(result.pages)
        following_token = None if is_last_page else encode_page_token(record.id, page_index + 1)
        return page_body(result, page_index, following_token)


def _fault_response(fault: FaultRule) -> tuple[int, bytes]:
    if fault.fault == "drop_before":
        return DROP_CONNECTION, b""
    return fault.status, _error_body(DataApiError(fault.code, fault.message or fault.code, fault.status))


def _error_body(error: DataApiError) -> bytes:
    return json.dumps({"__type": error.code, "message": error.message}).encode()


def _parse_body(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        request = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DataApiError("SerializationException", f"The request body is not valid JSON: {error}") from None
    if not isinstance(request, dict):
        raise DataApiError("SerializationException", "The request body must be a JSON object")
    return request


def _unknown_operation(target: str | None, operation: str | None) -> DataApiError:
    if operation in _UNIMPLEMENTED_OPERATIONS:
        return DataApiError("UnknownOperationException", f"The emulator does not implement {operation}")
    return DataApiError("UnknownOperationException", f"Unknown operation in X-Amz-Target: {target!r}")


def _required_string(request: dict[str, Any], member: str) -> str:
    value = request.get(member)
    if value is None:
        raise validation_error(f"{member} is required")
    if not isinstance(value, str):
        raise validation_error(f"{member} must be a string")
    return value


def _optional_string(
    request: dict[str, Any],
    member: str,
    *,
    min_length: int = 0,
    max_length: int | None = None,
    pattern: re.Pattern[str] | None = None,
) -> str | None:
    value = request.get(member)
    if value is None:
        return None
    if not isinstance(value, str):
        raise validation_error(f"{member} must be a string")
    field = member[0].lower() + member[1:]
    if len(value) < min_length:
        raise constraint_error(value, field, f"Member must have length greater than or equal to {min_length}")
    if max_length is not None and len(value) > max_length:
        raise constraint_error(value, field, f"Member must have length less than or equal to {max_length}")
    if pattern is not None and pattern.fullmatch(value) is None:
        raise constraint_error(value, field, f"Member must satisfy regular expression pattern: {pattern.pattern}")
    return value


def _statement_id(request: dict[str, Any]) -> str:
    statement_id = _optional_string(request, "Id", pattern=STATEMENT_ID_PATTERN)
    if statement_id is None:
        raise validation_error("Id is required")
    return statement_id


def _wait_time_seconds(request: dict[str, Any]) -> int | None:
    value = request.get("WaitTimeSeconds")
    if value is None:
        return None
    low, high = WAIT_TIME_RANGE
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise constraint_error(
            value, "waitTimeSeconds", f"Member must have value between {low} and {high}, inclusive"
        )
    return value


def _parameters(request: dict[str, Any]) -> dict[str, str] | None:
    entries = request.get("Parameters")
    if entries is None:
        return None
    if not isinstance(entries, list) or not entries:
        raise constraint_error(entries, "parameters", "Member must have length greater than or equal to 1")
    parameters: dict[str, str] = {}
    for entry in entries:
        name = entry.get("name") if isinstance(entry, dict) else None
        value = entry.get("value") if isinstance(entry, dict) else None
        if not isinstance(name, str) or not name:
            raise validation_error(f"Parameter name must be a non-empty string, got {entry!r}")
        if not isinstance(value, str) or not value:
            raise constraint_error(
                value, f"parameters.{name}.value", "Member must have length greater than or equal to 1"
            )
        if name in parameters:
            raise validation_error(f"Parameter {name!r} is given more than once")
        parameters[name] = value
    return parameters


def _same_request(existing: StatementRecord, candidate: StatementRecord) -> bool:
    fields = (
        "sql",
        "parameters",
        "database",
        "cluster_identifier",
        "workgroup_name",
        "statement_name",
        "result_format",
    )
    return all(getattr(existing, field) == getattr(candidate, field) for field in fields)


def _connection_fields(record: StatementRecord) -> dict[str, Any]:
    fields: dict[str, Any] = {"Database": record.database}
    optional = {
        "ClusterIdentifier": record.cluster_identifier,
        "WorkgroupName": record.workgroup_name,
        "DbUser": record.db_user,
        "SecretArn": record.secret_arn,
    }
    fields.update({name: value for name, value in optional.items() if value is not None})
    return fields


def _describe(record: StatementRecord) -> dict[str, Any]:
    status = record.status
    if status.is_terminal:
        duration_ns = record.duration_ns
    elif status is StatementStatus.STARTED and record.started_ns is not None:
        duration_ns = time.perf_counter_ns() - record.started_ns
    else:
        duration_ns = 0
    response = _connection_fields(record)
    response.update(
        {
            "Id": record.id,
            "Status": status.value,
            "CreatedAt": record.created_at,
            "UpdatedAt": record.updated_at,
            "Duration": duration_ns,
            "HasResultSet": record.has_result_set,
            "QueryString": record.sql,
            "RedshiftPid": record.redshift_pid,
            "RedshiftQueryId": record.redshift_query_id,
            "ResultRows": record.result_rows,
            "ResultSize": record.result_size,
            "ResultFormat": record.result_format,
        }
    )
    if record.query_parameters is not None:
        response["QueryParameters"] = record.query_parameters
    if record.error is not None:
        response["Error"] = record.error
    return response


def _list_entry(record: StatementRecord) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "Id": record.id,
        "QueryString": record.sql,
        "Status": record.status.value,
        "CreatedAt": record.created_at,
        "UpdatedAt": record.updated_at,
        "IsBatchStatement": False,
        "ResultFormat": record.result_format,
    }
    if record.statement_name is not None:
        entry["StatementName"] = record.statement_name
    if record.secret_arn is not None:
        entry["SecretArn"] = record.secret_arn
    if record.query_parameters is not None:
        entry["QueryParameters"] = record.query_parameters
    return entry


def _encode_list_token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"list/{offset}".encode()).decode()


def _decode_list_token(token: str | None) -> int:
    if token is None:
        return 0
    try:
        prefix, offset_text = base64.urlsafe_b64decode(token.encode()).decode().split("/", 1)
        offset = int(offset_text)
    except (ValueError, binascii.Error, UnicodeError):
        raise validation_error(f"Invalid NextToken: {token!r}") from None
    if prefix != "list" or offset < 0:
        raise validation_error(f"Invalid NextToken: {token!r}")
    return offset
