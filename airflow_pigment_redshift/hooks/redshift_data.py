"""Hook for the Amazon Redshift Data API, configured by a ``pigment_redshift`` connection."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import Enum
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

from botocore.exceptions import ClientError

from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
from airflow.providers.amazon.aws.utils.connection_wrapper import AwsConnectionWrapper
from airflow.providers.common.compat.sdk import AirflowException, mask_secret

from airflow_pigment_redshift.connection_check import explain_aws_error, explain_statement_error
from airflow_pigment_redshift.connection_fields import REDSHIFT_BEHAVIOUR, REDSHIFT_FIELDS, legacy_form_widgets
from airflow_pigment_redshift.connection_settings import (
    NON_AWS_EXTRA_KEYS,
    InvalidConnectionError,
    RedshiftConnectionSettings,
)
from airflow_pigment_redshift.csv_stream import ResultCsvWriter
from airflow_pigment_redshift.result_pages import RawResultPageReader
from airflow_pigment_redshift.exceptions import (
    StatementFailedError,
    StatementTimeoutError,
    statement_error,
)

if TYPE_CHECKING:
    from botocore.config import Config

ResultFormat = Literal["CSV", "JSON"]

# Statement the Test button runs: it needs credentials for the database but reads no table.
PROBE_SQL = "SELECT 1 AS connection_probe"

# The Data API accepts WaitTimeSeconds from 1 to 30.
MAX_WAIT_TIME_SECONDS = 30
#: Seconds between progress lines while result pages are read.
PROGRESS_LOG_SECONDS = 10.0


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
    """Statement target: the cluster or workgroup, how to authenticate, and the database.

    :param cluster_identifier: provisioned cluster identifier, or None with a workgroup.
    :param db_user: database user the statement runs as, with temporary credentials.
    :param database: database name.
    :param workgroup_name: Redshift Serverless workgroup, or None with a cluster.
    :param secret_arn: Secrets Manager secret holding the database credentials.
    """

    cluster_identifier: str | None
    db_user: str | None
    database: str
    workgroup_name: str | None = None
    secret_arn: str | None = None

    @property
    def description(self) -> str:
        """Return the cluster or workgroup as text, e.g. ``cluster analytics``."""
        if self.workgroup_name:
            return f"workgroup {self.workgroup_name}"
        return f"cluster {self.cluster_identifier}"

    def as_request(self) -> dict[str, str]:
        """Return the target as ``ExecuteStatement`` keyword arguments."""
        request = {"Database": self.database}
        if self.workgroup_name:
            request["WorkgroupName"] = self.workgroup_name
        else:
            request["ClusterIdentifier"] = self.cluster_identifier or ""
        if self.secret_arn:
            request["SecretArn"] = self.secret_arn
        elif self.db_user:
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


# Extra keys whose values are AWS credentials, registered with the secrets masker on every read.
_SECRET_EXTRA_KEYS = ("aws_secret_access_key", "aws_session_token")


def mask_connection_secrets(password: str | None, extra: Mapping[str, Any]) -> None:
    """Register the secret access key and session token of a connection with Airflow's secrets masker.

    :param password: the connection's password, which contains the secret access key.
    :param extra: the connection's extra, which may contain ``aws_session_token`` and ``aws_secret_access_key``.
    """
    for value in (password, *(extra.get(key) for key in _SECRET_EXTRA_KEYS)):
        if isinstance(value, str) and value:
            mask_secret(value)


class _MaskedAwsConnectionWrapper(AwsConnectionWrapper):
    """AWS connection settings whose ``repr()`` hides the secret access key and session token.

    The amazon provider's dataclass ``repr()`` shows both, and a repr can end up in a log line
    or an exception message.
    """

    def __repr__(self) -> str:
        return (
            f"AwsConnectionWrapper(conn_id={self.conn_id!r}, region_name={self.region_name!r}, "
            f"aws_access_key_id={self.aws_access_key_id!r}, aws_secret_access_key='***', "
            f"aws_session_token={'***' if self.aws_session_token else None!r}, endpoint_url={self.endpoint_url!r})"
        )

    __str__ = __repr__


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
    :param raw_result_pages: read result pages with SigV4-signed HTTP requests decoded by
        msgspec, one page ahead of the writer, instead of through botocore's response parser.
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
        raw_result_pages: bool = True,
    ) -> None:
        super().__init__(
            aws_conn_id=redshift_conn_id,
            region_name=region_name,
            verify=verify,
            config=botocore_config,
            client_type="redshift-data",
        )
        self.redshift_conn_id = redshift_conn_id
        self.raw_result_pages = raw_result_pages
        self._target_overrides = {
            "cluster_identifier": cluster_identifier,
            "db_user": db_user,
            "database": database,
        }

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """Return the custom form fields for Airflow versions that read hook methods (2.x, 3.0, 3.1)."""
        return legacy_form_widgets(REDSHIFT_FIELDS)

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Return the standard-field behaviour for Airflow versions that read hook methods."""
        return REDSHIFT_BEHAVIOUR.legacy()

    @cached_property
    def settings(self) -> RedshiftConnectionSettings:
        """The connection's validated settings.

        :raises InvalidConnectionError: when the connection's fields contradict each other.
        """
        connection = self.get_connection(self.redshift_conn_id)
        return RedshiftConnectionSettings.from_connection(
            connection.conn_id, connection.login, connection.password, connection.extra_dejson
        )

    @cached_property
    def conn_config(self) -> AwsConnectionWrapper:
        """AWS connection settings built from the ``pigment_redshift`` connection."""
        if not self.redshift_conn_id:
            return super().conn_config
        connection = self.get_connection(self.redshift_conn_id)
        mask_connection_secrets(connection.password, connection.extra_dejson)
        aws_extra = {
            key: value
            for key, value in connection.extra_dejson.items()
            if key not in NON_AWS_EXTRA_KEYS and value not in (None, "")
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
        return _MaskedAwsConnectionWrapper(
            conn=base, region_name=self._region_name, botocore_config=self._config, verify=self._verify
        )

    @cached_property
    def target(self) -> RedshiftTarget:
        """The cluster, database user and database, from the connection and the overrides."""
        settings = self.settings if self.redshift_conn_id else None
        overrides = self._target_overrides
        workgroup_name = settings.workgroup_name if settings and not overrides["cluster_identifier"] else None
        cluster_identifier = overrides["cluster_identifier"] or (settings.cluster_identifier if settings else None)
        database = overrides["database"] or (settings.database if settings else None)
        missing = []
        if not (cluster_identifier or workgroup_name):
            missing.append("cluster_identifier or workgroup_name")
        if not database:
            missing.append("database")
        if missing:
            raise AirflowException(
                f"Connection {self.redshift_conn_id!r} does not set {', '.join(missing)}. "
                "Fill in 'Redshift cluster name' (or 'Redshift Serverless workgroup') and 'Default database "
                "name' on the connection, or pass cluster_identifier/database to the task."
            )
        return RedshiftTarget(
            cluster_identifier=None if workgroup_name else cluster_identifier,
            db_user=overrides["db_user"] or (settings.db_user if settings else None),
            database=database or "",
            workgroup_name=workgroup_name,
            secret_arn=settings.secret_arn if settings else None,
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
            "Submitted Redshift statement %s to %s, database %s, as user %s.",
            statement_id,
            self.target.description,
            request["Database"],
            request.get("DbUser") or ("(from the secret)" if "SecretArn" in request else "(IAM identity)"),
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

    def test_connection(self, probe_sql: str = PROBE_SQL, timeout: float = 60.0) -> tuple[bool, str]:
        """Run a probe statement as the configured database user and explain any failure.

        Called by the Test button of the Airflow UI. It never raises: every failure comes back as
        ``(False, message)`` naming the cause and the fix.

        :param probe_sql: statement to run; the default reads no table.
        :param timeout: seconds to wait for the probe statement.
        :return: whether the probe succeeded, and the message for the user.
        """
        try:
            return self._probe(probe_sql, timeout)
        except Exception as error:
            self.log.warning("Connection test of %s failed unexpectedly: %s", self.redshift_conn_id, error)
            return False, f"Connection test failed: {type(error).__name__}: {error}"

    def _probe(self, probe_sql: str, timeout: float) -> tuple[bool, str]:
        try:
            settings = self.settings
            target = self.target
        except (InvalidConnectionError, AirflowException) as error:
            return False, str(error)

        region = self.conn_config.region_name or self.conn.meta.region_name
        try:
            identity = self._caller_identity(settings, region)
        except ClientError as error:
            details = error.response.get("Error", {})
            return False, "AWS credentials check failed. " + explain_aws_error(
                details.get("Code", ""), details.get("Message", ""), settings, target.database
            )
        if target.secret_arn:
            database_user = "<user stored in the secret>"
        elif target.db_user:
            database_user = target.db_user
        elif identity.startswith("arn:"):
            name = identity.rsplit("/", 1)[-1]
            database_user = f"IAMR:{name}" if ":assumed-role/" in identity or ":role/" in identity else f"IAM:{name}"
        else:
            database_user = "<database user mapped from the IAM identity>"
        summary = (
            f"identity {identity}, region {region}, {target.description}, database {target.database}, "
            f"database user {database_user}"
        )

        try:
            statement_id = self.execute_statement(probe_sql, statement_name="airflow-connection-test")
            self.wait_for_statement(statement_id, timeout=timeout, poll_interval=1.0)
        except ClientError as error:
            details = error.response.get("Error", {})
            explanation = explain_aws_error(
                details.get("Code", ""), details.get("Message", ""), settings, target.database
            )
            return False, f"Connection test failed ({summary}). {explanation}"
        except StatementFailedError as error:
            explanation = explain_statement_error(
                error.redshift_error, settings, target.database, database_user, probe_sql
            )
            return False, f"Connection test failed ({summary}). {explanation}"
        return True, f"Connection works: probe statement {statement_id} finished ({summary})."

    def _caller_identity(self, settings: RedshiftConnectionSettings, region: str | None) -> str:
        """Return the caller's ARN from STS, or a description of the credentials when an endpoint override is set."""
        if settings.endpoint_url:
            # An endpoint override also redirects STS, which a VPC endpoint or an emulator of the
            # Data API does not serve, so the identity is described instead of checked.
            return f"{settings.aws_credentials} (not checked with STS because 'Endpoint override' is set)"
        # NOTE: this branch calls AWS STS and is not covered by the test suite, which has no STS emulator.
        sts = self.get_session(region_name=region).client("sts", region_name=region)
        return sts.get_caller_identity()["Arn"]

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

        The next page is fetched while the current one is written, so at most three pages
        are held in memory. The loop follows ``NextToken`` by hand, because the boto3
        paginator does not return a resumable token when ``MaxItems`` is set.

        :param statement_id: id of a FINISHED statement with a result set.
        :param writer: CSV writer of the target file; the header is written from the first page.
        :param result_format: the format the statement was submitted with.
        """
        pages = 0
        columns: list[str] = []
        total_rows: Any = "unknown"
        logged_at = 0.0
        for page in self._result_pages(statement_id, result_format):
            pages += 1
            if pages == 1:
                columns = [column.get("label") or column.get("name", "") for column in page["ColumnMetadata"]]
                writer.write_header(columns)
            if result_format == "CSV":
                for record in page["Records"]:
                    writer.write_csv_records(record["CSVRecords"])
            else:
                writer.write_json_records(page["Records"])
            total_rows = page.get("TotalNumRows", total_rows)
            # One line per page would flood the task log of a large result, and each line costs
            # about 1 ms, so progress is logged for the first page and then every 10 seconds.
            if pages == 1 or time.monotonic() - logged_at >= PROGRESS_LOG_SECONDS:
                logged_at = time.monotonic()
                self.log.info(
                    "Statement %s: read %d pages, %d rows so far of %s.",
                    statement_id,
                    pages,
                    writer.rows_written,
                    total_rows,
                )
        self.log.info("Statement %s: read all %d pages, %d rows.", statement_id, pages, writer.rows_written)
        return ResultExport(rows=writer.rows_written, pages=pages, columns=columns, header=writer.header or [])

    def _result_pages(self, statement_id: str, result_format: ResultFormat) -> Iterator[dict[str, Any]]:
        """Yield the decoded result pages, over raw signed HTTP when possible, else through botocore."""
        session = self.get_session(region_name=self.region_name) if self.raw_result_pages else None
        credentials = session.get_credentials() if session is not None else None
        if session is not None and credentials is not None:
            # The reader needs only the client's endpoint, region and configuration. A client
            # built from the session skips the amazon provider's user-agent stack inspection,
            # which costs about 0.3 s, unless the hook already has its client.
            client = self.__dict__.get("conn") or session.client(
                "redshift-data",
                endpoint_url=self.conn_config.get_service_endpoint_url("redshift-data"),
                config=self.config,
                verify=self.conn_config.verify,
            )
            reader = RawResultPageReader(client, credentials, verify=self.conn_config.verify)
            try:
                yield from reader.pages(statement_id, result_format)
            finally:
                reader.close()
            return
        read_page = (
            self.conn.get_statement_result_v2 if result_format == "CSV" else self.conn.get_statement_result
        )
        request: dict[str, Any] = {"Id": statement_id}
        while True:
            page = read_page(**request)
            yield page
            next_token = page.get("NextToken")
            if not next_token:
                return
            request["NextToken"] = next_token
