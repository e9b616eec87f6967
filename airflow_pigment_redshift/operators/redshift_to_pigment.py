"""Operator that runs a Redshift query and imports its result into a Pigment block."""

from __future__ import annotations

import tempfile
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timedelta, timezone
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TextIO

from airflow.providers.common.compat.sdk import AirflowSkipException, BaseOperator, conf

from airflow_pigment_redshift.application_access import check_application_access
from airflow_pigment_redshift.csv_stream import CsvDialect, PageHeaderMode, ResultCsvWriter
from botocore.exceptions import ClientError
from tenacity import stop_after_attempt

from airflow_pigment_redshift.exceptions import (
    AmbiguousPushError,
    ChunkedPushRejectedError,
    EmptyResultError,
    PigmentImportFailedError,
    PigmentImportTimeoutError,
    PigmentRedshiftError,
    PigmentRejectedError,
    PigmentRequestError,
    PigmentSkippedRowsError,
    RedshiftAccessDeniedError,
    ResultTooLargeError,
    StatementTimeoutError,
    statement_error,
)
from airflow_pigment_redshift.hooks.pigment import ImportStatus, PigmentHook, summary_counts
from airflow_pigment_redshift.hooks.redshift_data import (
    MAX_WAIT_TIME_SECONDS,
    RedshiftDataApiHook,
    ResultExport,
    ResultFormat,
    StatementStatus,
)
from airflow_pigment_redshift.import_parts import validate_max_rows_per_import
from airflow_pigment_redshift.operators.split_imports import SplitImportsMixin
from airflow_pigment_redshift.progress import TransferProgress
from airflow_pigment_redshift.push_body import ResultStreamError, StreamedExport
from airflow_pigment_redshift.retries import (
    CallRetryPolicy,
    data_api_error_code,
    is_retryable_data_api_error,
    is_retryable_status_error,
    push_created_no_import,
    push_outcome_unknown,
)
from airflow_pigment_redshift.triggers.pigment_import import PigmentImportTrigger
from airflow_pigment_redshift.triggers.redshift_statement import RedshiftStatementTrigger
from airflow_pigment_redshift.validation import unencodable_value_error, validate_task_input
from airflow_pigment_redshift.unload import UnloadExporter, UnloadSettings

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

EmptyResultPolicy = Literal["fail", "skip", "push_header"]
PushTransfer = Literal["stream", "file"]

# Redshift ends any query after 24 hours.
_MAX_STATEMENT_SECONDS = 24 * 3600.0
# NOTE: AWS documents a 500 MB result limit (older pages give 100 MB) without stating whether it
# is measured compressed, so the threshold is a setting with margin below 500 MB.
DEFAULT_UNLOAD_ABOVE_BYTES = 400 * 1024 * 1024


class RedshiftToPigmentOperator(SplitImportsMixin, BaseOperator):
    """Run a SQL query on Amazon Redshift and load its result into a Pigment block.

    The query runs through the Redshift Data API. The result pages are converted to CSV in
    the dialect of the Pigment import configuration and pushed to Pigment's import API while
    they are read (or written to a temporary file first, with ``push_transfer="file"``), and
    the task waits until Pigment reports the import Completed or Failed. In deferrable mode
    both waits happen in the triggerer.

    The task returns a summary that is pushed to XCom: ``statement_id``, ``configuration_id``,
    ``import_id``, ``rows``, ``bytes``, ``pages``, ``import_status`` and the ``inserted``,
    ``updated``, ``deleted`` and ``skipped`` counts from Pigment's report.

    :param sql: one SQL statement, or a path to a ``.sql`` file (templated). Use ``:name``
        placeholders for values, never string formatting.
    :param configuration_id: id (UUID) of the Pigment import configuration of the target block
        (templated).
    :param parameters: values of the ``:name`` placeholders, sent as Data API parameters
        (templated). Values are sent as text and Redshift casts them.
    :param redshift_conn_id: id of a ``pigment_redshift`` connection.
    :param pigment_conn_id: id of a ``pigment`` connection.
    :param database: database to query, overriding the connection's default database (templated).
    :param result_format: Data API result format, ``CSV`` (compact pages) or ``JSON``.
    :param csv_delimiter: column separator of the import configuration (``,`` or ``;``).
    :param csv_quote_char: text delimiter of the import configuration (``"`` or ``'``).
    :param csv_header: column names to write in the header row instead of the query's column
        names, one per selected column, or a dict that renames columns by name (templated).
    :param csv_encoding: encoding of the file sent to Pigment.
    :param csv_page_header: ``auto`` drops a line repeating the column names at the start of
        each CSV result chunk; ``never`` keeps every line. Used only with ``result_format="CSV"``.
    :param max_skipped_rows: fail the task when Pigment skips more rows than this; None
        accepts any number of skipped rows.
    :param on_empty_result: what to do when the query returns no rows: ``fail`` (default,
        because Pigment may report success for an empty file), ``skip`` the task, or
        ``push_header`` to import a file with the header only.
    :param poll_interval: seconds between statement status checks (the long-polling wait).
    :param import_poll_interval: seconds between Pigment import status checks.
    :param statement_timeout: seconds to wait for the statement to finish.
    :param import_timeout: seconds to wait for Pigment to finish the import.
    :param region_name: AWS region, overriding the connection's.
    :param verify: whether to verify the TLS certificates of AWS endpoints, or a CA bundle path.
        The Pigment side reads ``verify`` from the ``pigment`` connection.
    :param botocore_config: botocore client configuration as a dict.
    :param deferrable: wait in the triggerer instead of on a worker. Defaults to
        ``[operators] default_deferrable``.
    :param cancel_on_kill: cancel the Redshift statement when the task is killed or times out.
    :param application: id or name of the Pigment application the block belongs to. When the
        Redshift connection's 'Application access' lists applications, the task is rejected
        before any query runs unless this one is listed.
    :param expected_columns: header names of the Pigment import configuration, in order. When
        set, the task fails before pushing if the CSV header would differ.
    :param allow_non_read_sql: run statements other than a SELECT (DDL, DML, COPY, UNLOAD,
        GRANT, CALL). By default they are rejected before anything is submitted.
    :param unload_s3_prefix: ``s3://bucket/prefix`` to export through ``UNLOAD`` when the result
        is larger than ``unload_above_bytes``; None never unloads. The parts go to a sub-prefix
        named after the statement id and are deleted once read. The query must not use
        ``parameters``, because UNLOAD takes the query as a text literal.
    :param unload_iam_role: IAM role ARN Redshift assumes to write to the prefix, or ``default``.
    :param unload_above_bytes: unload when ``DescribeStatement`` reports a ``ResultSize`` of at
        least this many bytes; 0 always unloads.
    :param unload_max_file_size_mb: ``MAXFILESIZE`` of each unloaded CSV part.
    :param s3_conn_id: AWS connection used to read and delete the unloaded parts.
    :param target_is_idempotent: set to True when pushing the same rows twice leaves the block
        unchanged (a list with a unique key, or a configuration that clears the block before
        each import). Then a push whose outcome is unknown (sent, no answer) is retried;
        otherwise the task fails and says what to check in Pigment.
    :param call_retries: backoff of retried Data API and Pigment calls and of the poll loops.
    :param pigment_timeout: HTTP timeout in seconds of each Pigment request, overriding the
        hook's default (300 s to send or read, 10 s to connect).
    :param push_transfer: ``stream`` (default) sends the CSV to Pigment while the result is
        read, with chunked transfer encoding; ``file`` writes it to a temporary file first and
        sends it with a ``Content-Length``. A stream that Pigment rejects with HTTP 411 is sent
        again from a file.
    :param max_rows_per_import: send the result as several Pigment imports of at most this many
        data rows each, every one with the header row, in order; None (default) sends one import.
        Each part is a separate import: a configuration that clears items before import keeps
        only the last part's rows, and every part counts toward Pigment's rate limits. The
        summary then also has ``import_ids`` and ``parts``, ``import_id`` is the last part's, and
        the counts are totals. See :mod:`airflow_pigment_redshift.operators.split_imports` for
        what a retry does.

    Progress (statement id, push, import id) is stored in Airflow's task state store, so a
    retry reuses a finished statement's result and resumes waiting on an import already
    pushed instead of pushing again. See the README section "Retries and reruns".
    """

    template_fields: Sequence[str] = ("sql", "configuration_id", "parameters", "database", "csv_header")
    template_ext: Sequence[str] = (".sql",)
    template_fields_renderers = {"sql": "sql", "parameters": "json"}
    ui_color = "#e8f1fd"

    def __init__(
        self,
        *,
        sql: str,
        configuration_id: str,
        parameters: Mapping[str, Any] | None = None,
        redshift_conn_id: str = RedshiftDataApiHook.default_conn_name,
        pigment_conn_id: str = PigmentHook.default_conn_name,
        database: str | None = None,
        result_format: ResultFormat = "CSV",
        csv_delimiter: str = ",",
        csv_quote_char: str = '"',
        csv_header: Sequence[str] | Mapping[str, str] | None = None,
        csv_encoding: str = "utf-8",
        csv_page_header: PageHeaderMode = "auto",
        max_skipped_rows: int | None = 0,
        on_empty_result: EmptyResultPolicy = "fail",
        poll_interval: float = 10.0,
        import_poll_interval: float = 5.0,
        statement_timeout: float = _MAX_STATEMENT_SECONDS,
        import_timeout: float = 3600.0,
        region_name: str | None = None,
        verify: bool | str | None = None,
        botocore_config: dict[str, Any] | None = None,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        cancel_on_kill: bool = True,
        application: str | None = None,
        expected_columns: Sequence[str] | None = None,
        allow_non_read_sql: bool = False,
        unload_s3_prefix: str | None = None,
        unload_iam_role: str = "default",
        unload_above_bytes: int = DEFAULT_UNLOAD_ABOVE_BYTES,
        unload_max_file_size_mb: int = 256,
        s3_conn_id: str = "aws_default",
        target_is_idempotent: bool = False,
        call_retries: CallRetryPolicy | None = None,
        pigment_timeout: float | None = None,
        push_transfer: PushTransfer = "stream",
        max_rows_per_import: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)

        if result_format not in ("CSV", "JSON"):
            raise ValueError(f"Invalid result_format {result_format!r}: use 'CSV' or 'JSON'.")
        if on_empty_result not in ("fail", "skip", "push_header"):
            raise ValueError(
                f"Invalid on_empty_result {on_empty_result!r}: use 'fail', 'skip' or 'push_header'."
            )
        if csv_page_header not in ("auto", "never"):
            raise ValueError(f"Invalid csv_page_header {csv_page_header!r}: use 'auto' or 'never'.")
        if push_transfer not in ("stream", "file"):
            raise ValueError(f"Invalid push_transfer {push_transfer!r}: use 'stream' or 'file'.")

        self.sql = sql
        self.configuration_id = configuration_id
        self.parameters = parameters
        self.redshift_conn_id = redshift_conn_id
        self.pigment_conn_id = pigment_conn_id
        self.database = database
        self.result_format: ResultFormat = result_format
        self.csv_delimiter = csv_delimiter
        self.csv_quote_char = csv_quote_char
        self.csv_header = csv_header
        self.csv_encoding = csv_encoding
        self.csv_page_header: PageHeaderMode = csv_page_header

        self.max_skipped_rows = max_skipped_rows
        self.on_empty_result: EmptyResultPolicy = on_empty_result
        self.poll_interval = poll_interval
        self.import_poll_interval = import_poll_interval
        self.statement_timeout = statement_timeout
        self.import_timeout = import_timeout

        self.region_name = region_name
        self.verify = verify
        self.botocore_config = botocore_config
        self.deferrable = deferrable
        self.cancel_on_kill = cancel_on_kill
        self.application = application
        self.expected_columns = expected_columns
        self.allow_non_read_sql = allow_non_read_sql
        self.target_is_idempotent = target_is_idempotent
        self.call_retries = call_retries or CallRetryPolicy()
        self.pigment_timeout = pigment_timeout
        self.push_transfer: PushTransfer = push_transfer
        self.max_rows_per_import = validate_max_rows_per_import(max_rows_per_import)
        self.statement_id: str | None = None
        self._progress: TransferProgress | None = None

        # The dialect is checked at construction so a DAG with a bad separator fails to parse.
        self.dialect = CsvDialect(delimiter=csv_delimiter, quote_char=csv_quote_char, encoding=csv_encoding)

        self.unload_above_bytes = unload_above_bytes
        self.s3_conn_id = s3_conn_id
        self.unload_settings = (
            UnloadSettings(unload_s3_prefix, unload_iam_role, max_file_size_mb=unload_max_file_size_mb)
            if unload_s3_prefix
            else None
        )
        if self.unload_settings is not None and parameters:
            raise ValueError(
                f"unload_s3_prefix={unload_s3_prefix!r} cannot be combined with parameters "
                f"{sorted(parameters)}: UNLOAD takes the query as a text literal, so Data API "
                "parameters cannot be bound. Remove unload_s3_prefix, or write the values into a "
                "view or table the query reads."
            )

    @cached_property
    def redshift_hook(self) -> RedshiftDataApiHook:
        """Data API hook built from ``redshift_conn_id``."""
        return RedshiftDataApiHook(
            redshift_conn_id=self.redshift_conn_id,
            region_name=self.region_name,
            verify=self.verify,
            botocore_config=self.botocore_config,
        )

    @cached_property
    def pigment_hook(self) -> PigmentHook:
        """Pigment hook built from ``pigment_conn_id``."""
        return PigmentHook(pigment_conn_id=self.pigment_conn_id, timeout=self.pigment_timeout)

    def execute(self, context: Context) -> dict[str, Any]:
        parameters = self._check_before_side_effects()

        progress = self._progress = TransferProgress(context, self.log)
        self._check_split_record(progress)
        if progress.phase in ("pushed", "imported", "succeeded"):
            return self._resume_after_push(progress)
        if progress.phase == "push_started" and not self.target_is_idempotent:
            raise self._ambiguous_push_error(progress.record, "an earlier try sent this push and its outcome is unknown")

        statement_id, description = self._submit_or_reuse_statement(context, parameters)
        if description.get("Status") == StatementStatus.FINISHED.value:
            return self._export_and_import(statement_id, description)

        if self.deferrable:
            description = self._call_data_api(self.redshift_hook.describe_statement, statement_id, operation="DescribeStatement")
            if not StatementStatus.is_terminal(description.get("Status")):
                self._defer_to_statement_trigger(statement_id)
            self._raise_for_statement(description)
        else:
            description = self._wait_for_statement(statement_id)
        return self._export_and_import(statement_id, description)

    def _check_before_side_effects(self) -> dict[str, str] | None:
        """Validate the task's input and both connections, and return the Data API parameters."""
        validated = validate_task_input(
            sql=self.sql,
            parameters=self.parameters,
            configuration_id=self.configuration_id,
            csv_delimiter=self.csv_delimiter,
            csv_quote_char=self.csv_quote_char,
            csv_header=self.csv_header,
            expected_columns=self.expected_columns,
            allow_non_read_sql=self.allow_non_read_sql,
            csv_encoding=self.csv_encoding,
            waits={
                "poll_interval": self.poll_interval,
                "import_poll_interval": self.import_poll_interval,
                "statement_timeout": self.statement_timeout,
                "import_timeout": self.import_timeout,
            },
            max_skipped_rows=self.max_skipped_rows,
        )
        check_application_access(self.redshift_hook.settings, self.application)
        # Reading the Pigment settings validates that connection, so a bad key fails before the query runs.
        self.pigment_hook.settings
        return validated.parameters

    def execute_after_statement(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        """Resume after the statement trigger fired: check the outcome, then export and import."""
        statement_id = event["statement_id"]
        self.statement_id = statement_id
        self._progress = TransferProgress(context, self.log)
        status = event.get("status")
        message = event.get("message", "")
        if status in ("failed", "aborted"):
            raise statement_error(statement_id, status.upper(), message, self.redshift_hook.target.db_user)
        if status == "timeout":
            self._cancel_statement(statement_id)
            raise StatementTimeoutError(statement_id, f"{message} The statement was cancelled.")
        if status != "success":
            raise PigmentRedshiftError(f"Waiting for Redshift statement {statement_id} failed: {message}")
        return self._export_and_import(statement_id, event.get("description", {}))

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        """Resume after the Pigment import trigger fired and return the task summary."""
        # The export figures travel in the event: dag.test() in Airflow 3.3 resumes a task with
        # the event alone and drops the kwargs given to defer().
        progress = event["task_progress"]
        self._progress = TransferProgress(context, self.log)
        status = event.get("status")
        if status == "timeout":
            raise PigmentImportTimeoutError(
                f"{event.get('message', '')} Check import {progress['import_id']} in Pigment before "
                "running the task again, so the data is not imported twice."
            )
        if not ImportStatus.is_terminal(status):
            raise PigmentRedshiftError(
                f"Waiting for Pigment import {progress['import_id']} (configuration "
                f"{progress['configuration_id']}) failed: {event.get('message', '')} The import was pushed "
                "once; a retry of this task resumes waiting on it and does not push again."
            )
        if "waiting_part" in progress:
            return self._resume_part_wait(progress, event["report"])
        return self._summarize(progress, event["report"])

    def on_kill(self) -> None:
        if self.cancel_on_kill and self.statement_id:
            self._cancel_statement(self.statement_id)

    def _export_and_import(self, statement_id: str, description: Mapping[str, Any]) -> dict[str, Any]:
        if description.get("HasResultSet") is False:
            raise PigmentRedshiftError(
                f"Redshift statement {statement_id} returned no result set. The SQL must be a query "
                "(SELECT or WITH ... SELECT) whose rows are imported into Pigment."
            )
        if self.max_rows_per_import is not None:
            return self._export_and_import_parts(statement_id, description)
        progress = self._transfer_progress()
        if self.push_transfer == "stream":
            try:
                import_id, export, size = self._stream_and_push(statement_id, description)
            except ChunkedPushRejectedError as error:
                self.log.warning(
                    "%s Sending the result of statement %s again from a temporary file.", error, statement_id
                )
                import_id, export, size = self._write_file_and_push(statement_id, description)
        else:
            import_id, export, size = self._write_file_and_push(statement_id, description)
        summary_progress = {
            "statement_id": statement_id,
            "configuration_id": self.configuration_id,
            "import_id": import_id,
            "rows": export.rows,
            "bytes": size,
            "pages": export.pages,
        }
        progress.save(phase="pushed", import_id=import_id, task_progress=summary_progress)
        return self._wait_for_import_result(summary_progress)

    def _write_file_and_push(self, statement_id: str, description: Mapping[str, Any]) -> tuple[str, ResultExport, int]:
        """Write the whole result to a temporary CSV file, then push the file; return the import id, export and size."""
        with tempfile.TemporaryDirectory(prefix="pigment-import-") as directory:
            csv_path = Path(directory) / f"{statement_id}.csv"

            def open_file() -> TextIO:
                return csv_path.open("w", encoding=self.dialect.encoding, newline="")

            export = self.call_retries.call(
                self._export_result,
                statement_id,
                description,
                open_file,
                is_retryable=is_retryable_data_api_error,
                description=f"Reading the result of Redshift statement {statement_id}",
                log=self.log,
            )
            size = csv_path.stat().st_size
            self.log.info(
                "Wrote %d rows (%d bytes, %d pages) of statement %s as CSV.", export.rows, size, export.pages, statement_id
            )
            if export.rows == 0:
                self._handle_empty_result(statement_id)
            self._save_push_started(statement_id, export.rows)
            import_id = self._push(
                statement_id, lambda: self.pigment_hook.push_csv(self.configuration_id, csv_path)
            )
        return import_id, export, size

    def _stream_and_push(self, statement_id: str, description: Mapping[str, Any]) -> tuple[str, ResultExport, int]:
        """Push the result to Pigment while it is read; return the import id, export and size.

        The first chunk is waited for before the request is sent, so errors in the first page
        and an empty result are handled before any side effect. A later export failure
        aborts the request before its last chunk, and the whole result is read and sent again
        when that failure is transient.
        """
        first = self.call_retries.call(
            self._start_streamed_export,
            statement_id,
            description,
            is_retryable=is_retryable_data_api_error,
            description=f"Reading the result of Redshift statement {statement_id}",
            log=self.log,
        )
        streams = [first]
        if first.wait_for_data() and first.result().rows == 0:
            try:
                self._handle_empty_result(statement_id)
            except BaseException:
                first.close()
                raise
        sent: list[StreamedExport[ResultExport]] = []

        def send() -> str:
            streamed = streams.pop() if streams else self._start_streamed_export(statement_id, description, in_push=True)
            sent.append(streamed)
            try:
                return self.pigment_hook.push_stream(self.configuration_id, streamed.body())
            finally:
                streamed.close()

        self._save_push_started(statement_id, int(description.get("ResultRows") or -1))
        import_id = self._push(statement_id, send)
        # The last stream sent is the one Pigment accepted.
        export, size = sent[-1].result(), sent[-1].bytes_read
        self.log.info(
            "Streamed %d rows (%d bytes, %d pages) of statement %s to Pigment.",
            export.rows,
            size,
            export.pages,
            statement_id,
        )
        return import_id, export, size

    def _start_streamed_export(
        self, statement_id: str, description: Mapping[str, Any], *, in_push: bool = False
    ) -> StreamedExport[ResultExport]:
        """Start reading the result on a thread and wait for its first chunk.

        :param in_push: raise export errors as :class:`ResultStreamError`, for a retried push.
        """
        streamed = StreamedExport(
            lambda pipe: self._export_result(statement_id, description, pipe.open),
            self.dialect.encoding,
            name=f"pigment-push-{statement_id}",
        )
        try:
            streamed.wait_for_data()
        except Exception as error:
            streamed.close()
            if in_push:
                raise ResultStreamError(error) from error
            raise
        return streamed

    def _save_push_started(self, statement_id: str, rows: int, part: int | None = None) -> None:
        self._transfer_progress().save(
            phase="push_started",
            statement_id=statement_id,
            push_started_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            rows=rows,
            part=part,
        )

    def _wait_for_import_result(self, progress: dict[str, Any]) -> dict[str, Any]:
        """Wait for a pushed import, in the triggerer when deferrable, and return the task summary."""
        if self.deferrable:
            self.defer(
                trigger=PigmentImportTrigger(
                    import_id=progress["import_id"],
                    configuration_id=self.configuration_id,
                    pigment_conn_id=self.pigment_conn_id,
                    poll_interval=self.import_poll_interval,
                    timeout=self.import_timeout,
                    task_progress=progress,
                ),
                method_name="execute_complete",
                timeout=self.execution_timeout,
            )
        report = self._wait_for_import(progress["import_id"])
        return self._summarize(progress, report)

    def _should_unload(self, statement_id: str, description: Mapping[str, Any]) -> bool:
        if self.unload_settings is None:
            return False
        size = int(description.get("ResultSize") or -1)
        if self.unload_above_bytes > 0 and size < self.unload_above_bytes:
            return False
        self.log.info(
            "Statement %s has a result of %s bytes (unload_above_bytes=%d); exporting it through UNLOAD to %s.",
            statement_id,
            size,
            self.unload_above_bytes,
            self.unload_settings.s3_prefix,
        )
        return True

    def _unload_exporter(self) -> UnloadExporter:
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        assert self.unload_settings is not None
        return UnloadExporter(self.redshift_hook, S3Hook(aws_conn_id=self.s3_conn_id), self.unload_settings)

    def _summarize(self, progress: dict[str, Any], report: dict[str, Any]) -> dict[str, Any]:
        status = report.get("importStatus")
        transfer = self._transfer_progress()
        if status == ImportStatus.FAILED.value:
            # A Failed import changed nothing in the block, so the next try may push again.
            failed = [*transfer.record.get("failed_import_ids", []), progress["import_id"]]
            transfer.save(phase="statement", import_id=None, task_progress=None, failed_import_ids=failed)
            raise PigmentImportFailedError(progress["import_id"], progress["configuration_id"], report)
        transfer.save(phase="imported", report=report, task_progress=progress)
        counts = summary_counts(report)
        summary = {**progress, "import_status": status, **counts}
        self.log.info("Import summary: %s", summary)
        if counts["skipped"]:
            self._log_skipped_rows(progress["import_id"], report)
        if self.max_skipped_rows is not None and counts["skipped"] > self.max_skipped_rows:
            raise PigmentSkippedRowsError(
                progress["import_id"], progress["configuration_id"], counts["skipped"], self.max_skipped_rows
            )
        transfer.save(phase="succeeded", summary=summary)
        return summary

    def _log_skipped_rows(self, import_id: str, report: dict[str, Any]) -> None:
        for block in (report.get("detailedReport") or {}).get("impactedBlocks") or []:
            for skipped in block.get("skippedData") or []:
                self.log.warning(
                    "Pigment import %s skipped %s rows (reason %s, column %s); samples: %s",
                    import_id,
                    skipped.get("count"),
                    skipped.get("reason"),
                    skipped.get("sourceColumnName"),
                    (skipped.get("samples") or [])[:5],
                )

    def _handle_empty_result(self, statement_id: str) -> None:
        if self.on_empty_result == "push_header":
            self.log.warning("Statement %s returned no rows; importing the header only.", statement_id)
            return
        message = f"Redshift statement {statement_id} returned no rows, so nothing was imported into Pigment."
        if self.on_empty_result == "skip":
            raise AirflowSkipException(message)
        raise EmptyResultError(
            statement_id,
            f"{message} Check the query and its parameters, or set on_empty_result='skip' or 'push_header'.",
        )

    def _defer_to_statement_trigger(self, statement_id: str) -> None:
        self.defer(
            trigger=RedshiftStatementTrigger(
                statement_id=statement_id,
                redshift_conn_id=self.redshift_conn_id,
                region_name=self.region_name,
                verify=self.verify,
                botocore_config=self.botocore_config,
                poll_interval=self.poll_interval,
                timeout=self._statement_wait_seconds(),
                cancel_on_kill=self.cancel_on_kill,
            ),
            method_name="execute_after_statement",
            timeout=self.execution_timeout,
        )

    def _cancel_statement(self, statement_id: str) -> None:
        try:
            self.redshift_hook.cancel_statement(statement_id)
        except Exception:
            self.log.exception("Could not cancel Redshift statement %s.", statement_id)

    def _transfer_progress(self) -> TransferProgress:
        if self._progress is None:
            raise RuntimeError("The transfer progress is read in execute() and the resume methods, before any step.")
        return self._progress

    def _resume_after_push(self, progress: TransferProgress) -> dict[str, Any]:
        """Finish a task instance whose earlier try already pushed, without pushing again."""
        record = progress.record
        task_progress = record["task_progress"]
        if progress.phase == "succeeded":
            self.log.info(
                "Pigment import %s of this task instance already succeeded; returning its summary.",
                record.get("import_id"),
            )
            return record["summary"]
        if "parts" in task_progress:
            return self._wait_for_parts(task_progress)
        if progress.phase == "imported":
            self.log.info("Pigment import %s already ended; checking its report again.", record.get("import_id"))
            return self._summarize(task_progress, record["report"])
        self.log.info(
            "The previous try pushed import %s to configuration %s; waiting for it instead of pushing again.",
            record.get("import_id"),
            self.configuration_id,
        )
        return self._wait_for_import_result(task_progress)

    def _ambiguous_push_error(self, record: Mapping[str, Any], detail: str) -> AmbiguousPushError:
        return AmbiguousPushError(
            self.configuration_id,
            str(record.get("statement_id")),
            str(record.get("push_started_at")),
            int(record.get("rows", 0)),
            detail,
            part=record.get("part"),
        )

    def _submit_or_reuse_statement(
        self, context: Context, parameters: dict[str, str] | None
    ) -> tuple[str, dict[str, Any]]:
        """Return the statement of this task instance: the earlier try's when still usable, else a new one.

        A finished statement's result stays readable for 24 hours, so a retry reads it instead of
        running the query again. A running statement is waited on. A failed, aborted or expired
        statement is submitted again with a new client token.
        """
        progress = self._transfer_progress()
        previous_id = progress.record.get("statement_id")
        if previous_id:
            description = self._describe_previous_statement(previous_id)
            status = description.get("Status") if description else None
            if status == StatementStatus.FINISHED.value or (status and not StatementStatus.is_terminal(status)):
                self.log.info("Reusing Redshift statement %s of the previous try, which is %s.", previous_id, status)
                self.statement_id = previous_id
                return previous_id, description
            if status:
                self.log.warning("Redshift statement %s of the previous try ended %s; submitting the query again.", previous_id, status)
        submission = int(progress.record.get("submissions", 0)) + 1
        if not progress.durable:
            # Without a durable record each try must get a new token, or a retry after a failed
            # statement would get the failed statement back.
            submission = int(getattr(context["ti"], "try_number", 1) or 1)
        statement_id = self._call_data_api(
            self.redshift_hook.execute_statement,
            self.sql,
            parameters=parameters,
            database=self.database,
            statement_name=self._statement_name(context),
            client_token=self._client_token(context, submission),
            result_format=self.result_format,
            operation="ExecuteStatement",
        )
        self.statement_id = statement_id
        progress.save(phase="statement", statement_id=statement_id, submissions=submission)
        return statement_id, {"Id": statement_id, "Status": StatementStatus.SUBMITTED.value}

    def _describe_previous_statement(self, statement_id: str) -> dict[str, Any] | None:
        try:
            return self._call_data_api(self.redshift_hook.describe_statement, statement_id, operation="DescribeStatement")
        except ClientError as error:
            if data_api_error_code(error) not in ("ResourceNotFoundException", "ValidationException"):
                raise
            self.log.warning(
                "Redshift statement %s of the previous try is no longer known (%s); its result expired, so the "
                "query runs again.",
                statement_id,
                error,
            )
            return None

    def _call_data_api(self, function: Any, *args: Any, operation: str, **kwargs: Any) -> Any:
        """Call the Data API with retries of transient errors, turning AccessDeniedException into a clear error."""
        subject = f"Data API {operation}" + (f" for statement {args[0]}" if operation != "ExecuteStatement" else "")
        try:
            return self.call_retries.call(
                function, *args, is_retryable=is_retryable_data_api_error, description=subject, log=self.log, **kwargs
            )
        except ClientError as error:
            if data_api_error_code(error) == "AccessDeniedException":
                message = error.response.get("Error", {}).get("Message", "")
                statement_id = args[0] if operation != "ExecuteStatement" else None
                raise RedshiftAccessDeniedError(operation, message, statement_id) from error
            raise

    def _raise_for_statement(self, description: Mapping[str, Any]) -> None:
        status = description.get("Status")
        if status in (StatementStatus.FAILED.value, StatementStatus.ABORTED.value):
            raise statement_error(
                description.get("Id", self.statement_id or ""),
                status,
                description.get("Error", ""),
                self.redshift_hook.target.db_user,
            )

    def _wait_for_statement(self, statement_id: str) -> dict[str, Any]:
        """Poll the statement until it ends, cancelling it when the wait times out or the task is stopped."""
        try:
            return self._poll_statement(statement_id)
        except StatementTimeoutError:
            self._cancel_statement(statement_id)
            raise
        except Exception:
            # A failed status read leaves the query running: the next try reconnects to it.
            raise
        except BaseException as error:
            # AirflowTaskTimeout, AirflowTaskTerminated (SIGTERM) or an interrupt: no try will come
            # back for this query, so it must not run on unattended.
            if self.cancel_on_kill:
                self.log.warning("Cancelling Redshift statement %s because the wait ended with %r.", statement_id, error)
                self._cancel_statement(statement_id)
            raise

    def _poll_statement(self, statement_id: str) -> dict[str, Any]:
        timeout = self._statement_wait_seconds()
        deadline = time.monotonic() + timeout
        polls = 0
        while True:
            remaining = deadline - time.monotonic()
            wait_seconds = int(min(MAX_WAIT_TIME_SECONDS, self.poll_interval, max(1.0, remaining)))
            description = self._call_data_api(
                self.redshift_hook.describe_statement, statement_id, wait_seconds=wait_seconds, operation="DescribeStatement"
            )
            status = description.get("Status")
            if StatementStatus.is_terminal(status):
                self._raise_for_statement(description)
                return description
            if status not in {item.value for item in StatementStatus}:
                self.log.warning("Redshift statement %s has the unknown status %r; still waiting.", statement_id, status)
            if time.monotonic() >= deadline:
                raise StatementTimeoutError(
                    statement_id,
                    f"Redshift statement {statement_id} was still {status} after {timeout:.0f} s and was cancelled. "
                    "Raise statement_timeout or execution_timeout, or check the query in the Redshift console.",
                )
            if not self.redshift_hook.supports_long_polling or status not in {item.value for item in StatementStatus}:
                interval = self.call_retries.poll_interval(self.poll_interval, polls, MAX_WAIT_TIME_SECONDS)
                time.sleep(min(interval, max(0.0, deadline - time.monotonic())))
            polls += 1
            self.log.info("Redshift statement %s is %s; waiting.", statement_id, status)

    def _export_result(
        self,
        statement_id: str,
        description: Mapping[str, Any],
        open_stream: Callable[[], AbstractContextManager[TextIO]],
    ) -> ResultExport:
        """Write the whole result to a new text stream; a retry rewrites it from the first page."""
        try:
            with open_stream() as stream:
                writer = ResultCsvWriter(
                    stream,
                    self.dialect,
                    header=self.csv_header,
                    page_header=self.csv_page_header,
                    expected_columns=self.expected_columns,
                )
                if self._should_unload(statement_id, description):
                    return self._unload_exporter().export(
                        self.sql, writer, run_id=statement_id, timeout=self._statement_wait_seconds()
                    )
                return self.redshift_hook.stream_result(statement_id, writer, result_format=self.result_format)
        except UnicodeEncodeError as error:
            raise unencodable_value_error(error, statement_id) from None
        except ClientError as error:
            message = error.response.get("Error", {}).get("Message", "")
            if any(text in message.lower() for text in ("exceeded size limit", "too large")):
                raise ResultTooLargeError(statement_id, message) from error
            raise

    def _push(self, statement_id: str, send: Callable[[], str]) -> str:
        """Push once; push again only when Pigment cannot have created an import, or the target is idempotent.

        :param send: sends the push and returns the import id; called again for each retry.
        """
        progress = self._transfer_progress()

        def is_retryable(error: BaseException) -> bool:
            if isinstance(error, ResultStreamError):
                # The body was never completed, so Pigment created no import.
                return is_retryable_data_api_error(error.error)
            return push_created_no_import(error) or (self.target_is_idempotent and push_outcome_unknown(error))

        try:
            return self.call_retries.call(
                send,
                is_retryable=is_retryable,
                description=f"Push of statement {statement_id}'s result to Pigment configuration {self.configuration_id}",
                log=self.log,
            )
        except Exception as error:
            if isinstance(error, ResultStreamError):
                # NOTE: Pigment does not document what it does with a chunked body that ends
                # without its last chunk. This assumes it creates no import, as the emulator does.
                progress.save(phase="statement", push_started_at=None)
                raise error.error from None
            if isinstance(error, ChunkedPushRejectedError):
                progress.save(phase="statement", push_started_at=None)
                raise
            if push_outcome_unknown(error):
                # The record stays at push_started, so a retry fails the same way instead of pushing.
                raise self._ambiguous_push_error(progress.record, f"{type(error).__name__}: {error}") from error
            progress.save(phase="statement", push_started_at=None)
            if isinstance(error, PigmentRequestError) and not isinstance(error, PigmentRejectedError):
                raise
            if isinstance(error, PigmentRejectedError):
                raise PigmentRejectedError(
                    f"{error} No import was created, so running the task again is safe once this is fixed.",
                    status_code=error.status_code,
                    body=error.body,
                    configuration_id=self.configuration_id,
                ) from error
            raise PigmentRedshiftError(
                f"Could not connect to Pigment to push to configuration {self.configuration_id}: {error}. No import "
                "was created; check the base URL of the Pigment connection and the network, then run the task again."
            ) from error

    def _wait_for_import(self, import_id: str) -> dict[str, Any]:
        """Poll an import until it is Completed or Failed, retrying failed status reads with backoff."""
        read_status = self.pigment_hook.get_import_status.retry_with(stop=stop_after_attempt(1))
        deadline = time.monotonic() + self.import_timeout
        polls = 0
        while True:
            report = self.call_retries.call(
                read_status,
                self.pigment_hook,
                import_id,
                is_retryable=is_retryable_status_error,
                description=f"Status request for Pigment import {import_id}",
                log=self.log,
            )
            status = report.get("importStatus")
            if ImportStatus.is_terminal(status):
                self.log.info("Pigment import %s is %s: %s.", import_id, status, summary_counts(report))
                return report
            if time.monotonic() >= deadline:
                raise PigmentImportTimeoutError(
                    f"Pigment import {import_id} (configuration {self.configuration_id}) was still {status} after "
                    f"{self.import_timeout:.0f} s. It was pushed once: a retry of this task resumes waiting on it "
                    "and does not push again. Raise import_timeout if Pigment needs longer."
                )
            interval = self.call_retries.poll_interval(self.import_poll_interval, polls, 60.0)
            polls += 1
            self.log.info("Pigment import %s is %s; checking again in %.1f s.", import_id, status, interval)
            time.sleep(min(interval, max(0.0, deadline - time.monotonic())))

    def _statement_wait_seconds(self) -> float:
        if isinstance(self.execution_timeout, timedelta):
            return min(self.statement_timeout, self.execution_timeout.total_seconds())
        return self.statement_timeout

    def _statement_name(self, context: Context) -> str:
        ti = context["ti"]
        return f"airflow:{ti.dag_id}.{ti.task_id}:{ti.run_id}"

    def _client_token(self, context: Context, submission: int = 1) -> str:
        # One token per task instance, clear of its DAG run and submission: a repeated
        # ExecuteStatement call (a retried request, or a retry after a worker died before the
        # statement id was stored) returns the statement already submitted. The progress record
        # raises ``submission`` when the previous statement failed, so the query can run again.
        ti = context["ti"]
        clear_number = int(getattr(context.get("dag_run"), "clear_number", 0) or 0)
        key = f"{ti.dag_id}|{ti.task_id}|{ti.run_id}|{ti.map_index}|{clear_number}|{submission}"
        return str(uuid.uuid5(uuid.NAMESPACE_URL, key))
