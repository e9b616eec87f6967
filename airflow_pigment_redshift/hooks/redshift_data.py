"""Hook for the Amazon Redshift Data API, configured by a ``pigment_redshift`` connection."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
from airflow.providers.amazon.aws.utils.connection_wrapper import AwsConnectionWrapper
from airflow.providers.common.compat.sdk import AirflowException

from airflow_pigment_redshift.csv_stream import ResultCsvWriter
from airflow_pigment_redshift.exceptions import (
    StatementAbortedError,
    StatementFailedError,
    StatementTimeoutError,
    statement_error,
)

if TYPE_CHECKING:
    from botocore.config import Config

ResultFormat = Literal["CSV", "JSON"]

# Extra keys that describe the Redshift target; every other extra key is AWS connection
# configuration (region_name, endpoint_url, role_arn, service_config, ...) for the amazon provider.
_TARGET_EXTRA_KEYS = ("cluster_identifier", "db_user", "database")

# The Data API accepts WaitTimeSeconds from 1 to 30.
MAX_WAIT_TIME_SECONDS = 30


class StatementStatus(str, Enum):
    """Status of a Data API statement, as returned by ``DescribeStatement``."""

    SUBMITTED = "SUBMITTED"
    PICKED = "PICKED"
    STARTED = "STARTED"
    FINISHED = "FINISHED"
    ABORTED = "ABORTED"
    FAILED = "FAILED"

    @classmethod
    def is_terminal(cls, status: str | None) -> bool:
        """Return True when a status string is final. Unknown statuses count as still running."""
        return status in (cls.FINISHED.value, cls.ABORTED.value, cls.FAILED.value)


@dataclass(frozen=True)
class RedshiftTarget:
    """Statement target: the cluster, the database user and the database.

    :param cluster_identifier: provisioned cluster identifier.
    :param db_user: database user the statement runs as.
    :param database: database name.
    """

    cluster_identifier: str
    db_user: str | None
    database: str

    def as_request(self) -> dict[str, str]:
        """Return the target as ``ExecuteStatement`` keyword arguments."""
        request = {"ClusterIdentifier": self.cluster_identifier, "Database": self.database}
        if self.db_user:
            request["DbUser"] = self.db_user
        return request


@dataclass(frozen=True)
class ResultExport:
    """Outcome of streaming a statement's result to CSV.

    :param rows: data rows written, header excluded.
    :param pages: result pages read.
    :param columns: column names returned by Redshift.
    :param header: header row written to the CSV.
    """

    rows: int
    pages: int
    columns: list[str]
    header: list[str]


def describe_summary(description: Mapping[str, Any]) -> dict[str, Any]:
    """Keep the JSON-serialisable fields of a ``DescribeStatement`` response that callers use."""
    keys = ("Id", "Status", "Error", "HasResultSet", "ResultRows", "ResultSize", "ResultFormat", "Duration")
    return {key: description[key] for key in keys if key in description}


def raise_for_statement_status(description: Mapping[str, Any]) -> None:
    """Raise the matching exception when a described statement failed or was aborted."""
    status = description.get("Status")
    statement_id = description.get("Id", "")
    if status in (StatementStatus.FAILED.value, StatementStatus.ABORTED.value):
        raise statement_error(statement_id, status, description.get("Error", ""))


class RedshiftDataApiHook(AwsBaseHook):
    """Run one SQL statement through the Redshift Data API and stream its result.

    The connection (type ``pigment_redshift``) mirrors Pigment's Redshift form: the access
    key pair in login and password, and ``region_name``, ``cluster_identifier``, ``db_user``,
    ``database`` and optionally ``endpoint_url`` in the extra. Credentials go through the
    amazon provider's AWS connection machinery, so every AWS extra it supports
    (``role_arn``, ``aws_session_token``, ``service_config``, ...) works here too.

    :param redshift_conn_id: id of a ``pigment_redshift`` connection.
    :param region_name: AWS region, overriding the connection's ``region_name``.
    :param verify: whether to verify TLS certificates, or a CA bundle path.
    :param botocore_config: botocore client configuration (retries, timeouts).
    :param cluster_identifier: cluster, overriding the connection's value.
    :param db_user: database user, overriding the connection's value.
    :param database: database, overriding the connection's default database.
    """

    conn_name_attr = "redshift_conn_id"
    default_conn_name = "pigment_redshift_default"
    conn_type = "pigment_redshift"
    hook_name = "Amazon Redshift for Pigment"

    def __init__(
        self,
        redshift_conn_id: str | None = default_conn_name,
        *,
        region_name: str | None = None,
        verify: bool | str | None = None,
        botocore_config: Config | dict[str, Any] | None = None,
        cluster_identifier: str | None = None,
        db_user: str | None = None,
        database: str | None = None,
    ) -> None:
        super().__init__(
            aws_conn_id=redshift_conn_id,
            region_name=region_name,
            verify=verify,
            config=botocore_config,
            client_type="redshift-data",
        )
        self.redshift_conn_id = redshift_conn_id
        self._target_overrides = {
            "cluster_identifier": cluster_identifier,
            "db_user": db_user,
            "database": database,
        }

    @cached_property
    def _connection_extra(self) -> dict[str, Any]:
        if not self.redshift_conn_id:
            return {}
        return dict(self.get_connection(self.redshift_conn_id).extra_dejson)

    @cached_property
    def conn_config(self) -> AwsConnectionWrapper:
        """AWS connection settings built from the ``pigment_redshift`` connection."""
        if not self.redshift_conn_id:
            return super().conn_config
        connection = self.get_connection(self.redshift_conn_id)
        aws_extra = {
            key: value
            for key, value in connection.extra_dejson.items()
            if key not in _TARGET_EXTRA_KEYS and value not in (None, "")
        }
        # from_connection_metadata stamps conn_type "aws" so the wrapper accepts this
        # connection type; the second wrapper applies the hook's own region and client settings.
        # NOTE: the amazon provider documents from_connection_metadata as internal API, so
        # the supported amazon versions are pinned in pyproject.toml and a test covers it.
        base = AwsConnectionWrapper.from_connection_metadata(
            conn_id=connection.conn_id,
            login=connection.login,
            password=connection.password,
            extra=aws_extra,
        )
        return AwsConnectionWrapper(
            conn=base, region_name=self._region_name, botocore_config=self._config, verify=self._verify
        )

    @cached_property
    def target(self) -> RedshiftTarget:
        """The cluster, database user and database, from the connection and the overrides."""
        values = {
            key: self._target_overrides[key] or self._connection_extra.get(key) for key in _TARGET_EXTRA_KEYS
        }
        missing = [key for key in ("cluster_identifier", "database") if not values[key]]
        if missing:
            raise AirflowException(
                f"Connection {self.redshift_conn_id!r} does not set {', '.join(missing)}. "
                "Fill in 'Redshift cluster name' and 'Default database name' on the connection, "
                "or pass cluster_identifier/database to the task."
            )
        return RedshiftTarget(
            cluster_identifier=values["cluster_identifier"],
            db_user=values["db_user"],
            database=values["database"],
        )

    @cached_property
    def supports_long_polling(self) -> bool:
        """True when the installed botocore supports ``WaitTimeSeconds`` on ``DescribeStatement``."""
        operation = self.conn.meta.service_model.operation_model("DescribeStatement")
        return "WaitTimeSeconds" in operation.input_shape.members

    def execute_statement(
        self,
        sql: str,
        *,
        parameters: Mapping[str, str] | None = None,
        database: str | None = None,
        statement_name: str | None = None,
        client_token: str | None = None,
        result_format: ResultFormat = "CSV",
    ) -> str:
        """Submit one SQL statement and return its statement id without waiting.

        :param sql: a single SQL statement; ``:name`` placeholders refer to ``parameters``.
        :param parameters: Data API named parameters, as name to string value.
        :param database: database for this statement, overriding the hook's target.
        :param statement_name: name shown in ``ListStatements`` and the Redshift console.
        :param client_token: idempotency token, so a resubmission returns the same statement.
        :param result_format: ``CSV`` (read with ``GetStatementResultV2``) or ``JSON``.
        """
        request: dict[str, Any] = {**self.target.as_request(), "Sql": sql, "ResultFormat": result_format}
        if database:
            request["Database"] = database
        if parameters:
            request["Parameters"] = [{"name": name, "value": value} for name, value in parameters.items()]
        if statement_name:
            request["StatementName"] = statement_name
        if client_token:
            request["ClientToken"] = client_token
        response = self.conn.execute_statement(**request)
        statement_id = response["Id"]
        self.log.info(
            "Submitted Redshift statement %s to cluster %s, database %s, as user %s.",
            statement_id,
            request["ClusterIdentifier"],
            request["Database"],
            request.get("DbUser", "(IAM identity)"),
        )
        return statement_id

    def describe_statement(self, statement_id: str, *, wait_seconds: int | None = None) -> dict[str, Any]:
        """Describe a statement, long polling for up to ``wait_seconds`` when botocore supports it.

        :param statement_id: Data API statement id.
        :param wait_seconds: seconds (1 to 30) the service may hold the call open until the
            statement reaches a final state. Ignored when botocore lacks long polling.
        """
        request: dict[str, Any] = {"Id": statement_id}
        if wait_seconds and self.supports_long_polling:
            request["WaitTimeSeconds"] = max(1, min(MAX_WAIT_TIME_SECONDS, int(wait_seconds)))
        return self.conn.describe_statement(**request)

    def wait_for_statement(
        self, statement_id: str, *, timeout: float, poll_interval: float = 5.0
    ) -> dict[str, Any]:
        """Wait until a statement finishes and return its description.

        Uses long polling when available, otherwise describes every ``poll_interval`` seconds.

        :param statement_id: Data API statement id.
        :param timeout: seconds to wait before raising :class:`StatementTimeoutError`.
        :param poll_interval: seconds between two describe calls without long polling, and
            the long-polling wait per call.
        :raises StatementFailedError: the statement failed; the message has Redshift's error.
        :raises StatementAbortedError: the statement was cancelled.
        """
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            wait_seconds = int(min(MAX_WAIT_TIME_SECONDS, max(1.0, remaining)))
            description = self.describe_statement(statement_id, wait_seconds=wait_seconds)
            status = description.get("Status")
            if StatementStatus.is_terminal(status):
                raise_for_statement_status(description)
                self.log.info(
                    "Redshift statement %s finished: %s rows, %s bytes.",
                    statement_id,
                    description.get("ResultRows"),
                    description.get("ResultSize"),
                )
                return description
            if time.monotonic() >= deadline:
                raise StatementTimeoutError(
                    statement_id,
                    f"Redshift statement {statement_id} was still {status} after {timeout:.0f} s. "
                    "Raise the task's timeout, or check the query in the Redshift console.",
                )
            self.log.info("Redshift statement %s is %s; waiting.", statement_id, status)
            if not self.supports_long_polling:
                time.sleep(min(poll_interval, max(0.0, deadline - time.monotonic())))

    def cancel_statement(self, statement_id: str) -> bool:
        """Cancel a running statement; return False when Redshift declined (e.g. it had finished)."""
        cancelled = bool(self.conn.cancel_statement(Id=statement_id).get("Status"))
        if cancelled:
            self.log.info("Cancelled Redshift statement %s.", statement_id)
        else:
            self.log.warning("Redshift declined to cancel statement %s; it had probably ended.", statement_id)
        return cancelled

    def stream_result(
        self, statement_id: str, writer: ResultCsvWriter, *, result_format: ResultFormat = "CSV"
    ) -> ResultExport:
        """Read every result page of a finished statement and write it through ``writer``.

        Only one page is held in memory at a time. The loop follows ``NextToken`` by hand,
        because the boto3 paginator does not return a resumable token when ``MaxItems`` is set.

        :param statement_id: id of a FINISHED statement with a result set.
        :param writer: CSV writer of the target file; the header is written from the first page.
        :param result_format: the format the statement was submitted with.
        """
        read_page = (
            self.conn.get_statement_result_v2 if result_format == "CSV" else self.conn.get_statement_result
        )
        request: dict[str, Any] = {"Id": statement_id}
        pages = 0
        columns: list[str] = []
        while True:
            page = read_page(**request)
            pages += 1
            if pages == 1:
                columns = [column.get("label") or column.get("name", "") for column in page["ColumnMetadata"]]
                writer.write_header(columns)
            if result_format == "CSV":
                rows = sum(writer.write_csv_records(record["CSVRecords"]) for record in page["Records"])
            else:
                rows = writer.write_json_records(page["Records"])
            self.log.info(
                "Statement %s: page %d with %d rows (%d rows so far, %s in total).",
                statement_id,
                pages,
                rows,
                writer.rows_written,
                page.get("TotalNumRows", "unknown"),
            )
            next_token = page.get("NextToken")
            if not next_token:
                break
            request["NextToken"] = next_token
        return ResultExport(rows=writer.rows_written, pages=pages, columns=columns, header=writer.header or [])
