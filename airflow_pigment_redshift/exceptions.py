"""Exceptions raised by the Redshift to Pigment provider.

Each exception carries the ids a user needs to find the failing object (statement id,
configuration id, import id) and the message the remote service returned.
"""

from __future__ import annotations

import re
from typing import Any

from airflow.providers.common.compat.sdk import AirflowException


class PigmentRedshiftError(AirflowException):
    """Base class of every error raised by this provider."""


class StatementError(PigmentRedshiftError):
    """A Redshift Data API statement did not finish successfully.

    :param statement_id: Data API statement id.
    :param message: what happened, including the Redshift error text when there is one.
    """

    def __init__(self, statement_id: str, message: str) -> None:
        super().__init__(message)
        self.statement_id = statement_id


class StatementFailedError(StatementError):
    """The statement ended in the FAILED state; ``redshift_error`` is the engine's message."""

    def __init__(self, statement_id: str, redshift_error: str) -> None:
        super().__init__(
            statement_id,
            f"Redshift statement {statement_id} failed: {redshift_error or '(no error text returned)'}",
        )
        self.redshift_error = redshift_error


class StatementAbortedError(StatementError):
    """The statement ended in the ABORTED state (cancelled by a user or by Redshift)."""

    def __init__(self, statement_id: str, redshift_error: str = "") -> None:
        detail = f": {redshift_error}" if redshift_error else ""
        super().__init__(
            statement_id,
            f"Redshift statement {statement_id} was aborted{detail}. "
            "It was cancelled in Redshift or by Airflow; run the task again to resubmit it.",
        )
        self.redshift_error = redshift_error


class StatementTimeoutError(StatementError):
    """The statement did not reach a final state within the allowed time."""


class PigmentRequestError(PigmentRedshiftError):
    """Pigment's import API returned an error status for a request.

    :param message: what failed and what to do about it.
    :param status_code: HTTP status code of the response.
    :param body: response body, as text (Pigment's error bodies have no documented schema).
    :param configuration_id: import configuration the request was about, if any.
    :param import_id: import the request was about, if any.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        body: str = "",
        configuration_id: str | None = None,
        import_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.body = body
        self.configuration_id = configuration_id
        self.import_id = import_id


class PigmentImportFailedError(PigmentRedshiftError):
    """Pigment finished the import with the status ``Failed``.

    :param import_id: Pigment import id.
    :param configuration_id: Pigment import configuration id.
    :param report: the status report Pigment returned.
    """

    def __init__(self, import_id: str, configuration_id: str, report: dict[str, Any]) -> None:
        details = report.get("errorsDetails") or []
        reasons = "; ".join(
            f"{item.get('name', '')}: {item.get('description', '')}".strip(": ") for item in details
        )
        super().__init__(
            f"Pigment import {import_id} (configuration {configuration_id}) failed: "
            f"{reasons or 'no error details returned'}. Check that the CSV header and "
            "separators match the import configuration in Pigment."
        )
        self.import_id = import_id
        self.configuration_id = configuration_id
        self.report = report


class PartImportFailedError(PigmentImportFailedError):
    """Pigment finished the import of one or more parts of a split result with the status ``Failed``.

    :param configuration_id: Pigment import configuration id.
    :param statement_id: Redshift statement whose result was split.
    :param failed: the failed parts, each a dict with ``part``, ``import_id`` and ``errors``
        (Pigment's ``errorsDetails``).
    :param completed: the Completed parts, each a dict with ``part`` and ``import_id``.
    """

    def __init__(
        self,
        configuration_id: str,
        statement_id: str,
        failed: list[dict[str, Any]],
        completed: list[dict[str, Any]],
    ) -> None:
        descriptions = []
        for part in failed:
            reasons = "; ".join(
                f"{item.get('name', '')}: {item.get('description', '')}".strip(": ") for item in part.get("errors") or []
            )
            descriptions.append(f"part {part['part']} (import {part['import_id']}): {reasons or 'no error details returned'}")
        imported = ", ".join(f"part {part['part']} (import {part['import_id']})" for part in completed) or "none"
        PigmentRedshiftError.__init__(
            self,
            f"Pigment imports of the result of Redshift statement {statement_id} to configuration "
            f"{configuration_id} failed for {'; '.join(descriptions)}. Parts imported and kept in the block: "
            f"{imported}. A retry of this task reads the same statement's result and pushes only the failed "
            "parts and any part not pushed yet; clearing the task instance pushes every part again. Check "
            "that the CSV header and separators match the import configuration in Pigment.",
        )
        self.import_id = failed[0]["import_id"]
        self.configuration_id = configuration_id
        self.report = {"importStatus": "Failed", "errorsDetails": failed[0].get("errors")}
        self.failed_parts = [part["part"] for part in failed]
        self.completed_parts = [part["part"] for part in completed]


class PartsMismatchError(PigmentRedshiftError):
    """An earlier try pushed parts of a split result that this try cannot cut the same way."""


class PigmentImportTimeoutError(PigmentRedshiftError):
    """The Pigment import did not reach a final status within the allowed time."""


class StatementAccessDeniedError(StatementFailedError):
    """The statement failed because the database user lacks a privilege on a relation.

    :param statement_id: Data API statement id.
    :param redshift_error: the engine's message, e.g. ``permission denied for relation line_items``.
    :param relation: the relation named in the message, or ``""`` when it names none.
    :param db_user: the database user the statement ran as, if known.
    """

    def __init__(self, statement_id: str, redshift_error: str, relation: str = "", db_user: str | None = None) -> None:
        super().__init__(statement_id, redshift_error)
        grantee = db_user or "<database user of the connection>"
        if not relation:
            fix = f"Grant the database user {grantee} SELECT on the relations the query reads."
        else:
            fix = f"Run, as the owner of {relation} or a superuser: GRANT SELECT ON {relation} TO {grantee};"
            if "." in relation:
                fix += f" and, if the user lacks it, GRANT USAGE ON SCHEMA {relation.split('.')[0]} TO {grantee};"
        self.args = (f"{self.args[0]}. {fix}",)
        self.relation = relation
        self.db_user = db_user


class RedshiftAccessDeniedError(PigmentRedshiftError):
    """The Data API rejected a call for lack of IAM permissions (``AccessDeniedException``).

    :param operation: the Data API operation, e.g. ``ExecuteStatement``.
    :param remote_message: the message AWS returned.
    :param statement_id: the statement concerned, if any.
    """

    def __init__(self, operation: str, remote_message: str, statement_id: str | None = None) -> None:
        subject = f" for statement {statement_id}" if statement_id else ""
        super().__init__(
            f"The Redshift Data API denied {operation}{subject}: {remote_message}. Give the IAM identity of the "
            "connection redshift-data:ExecuteStatement, DescribeStatement, GetStatementResult and "
            "CancelStatement, and redshift:GetClusterCredentials on the cluster's database user."
        )
        self.operation = operation
        self.remote_message = remote_message
        self.statement_id = statement_id


class ResultTooLargeError(StatementError):
    """The statement's result exceeds the Data API's size limits and cannot be read through it.

    :param statement_id: Data API statement id.
    :param redshift_error: the message Redshift or the Data API returned.
    """

    def __init__(self, statement_id: str, redshift_error: str) -> None:
        super().__init__(
            statement_id,
            f"The result of Redshift statement {statement_id} is too large for the Data API: {redshift_error}. "
            # NOTE: 500 MB is the figure of the current AWS troubleshooting page; older pages give 100 MB.
            "The Data API returns at most 500 MB per result and 64 KB per row: split the import into "
            "smaller intervals, select fewer or narrower columns, or cut long text values.",
        )
        self.redshift_error = redshift_error


class PigmentRejectedError(PigmentRequestError):
    """Pigment returned a 4xx status for a request, so it created no import.

    The message names the status, the configuration or import id, Pigment's response body
    and the fix for that status.
    """


class ChunkedPushRejectedError(PigmentRejectedError):
    """Pigment returned 411 Length Required to a push sent with chunked transfer encoding."""


class AmbiguousPushError(PigmentRedshiftError):
    """A push was sent but no response came back, so Pigment may or may not have created an import.

    :param configuration_id: Pigment import configuration id.
    :param statement_id: Redshift statement whose result was pushed.
    :param sent_at: UTC time the push started, ISO 8601.
    :param rows: data rows in the pushed file.
    :param detail: the transport error or response that left the outcome unknown.
    :param part: number (1-based) of the part when the result is split into several imports.
    """

    def __init__(
        self, configuration_id: str, statement_id: str, sent_at: str, rows: int, detail: str, part: int | None = None
    ) -> None:
        if part is None:
            super().__init__(
                f"The push of {rows} rows (result of Redshift statement {statement_id}) to Pigment import "
                f"configuration {configuration_id}, sent at {sent_at} UTC, got no usable answer: {detail}. "
                "Pigment may have created an import. The task does not push again, because a second push "
                "would import the rows twice. In Pigment, open the block's import history for this "
                "configuration and look for an import started at that time: if it is there and Completed, "
                "mark this task instance success; if there is none, clear the task instance to push again. "
                "If the target list has a unique key or the configuration clears the block before each "
                "import, set target_is_idempotent=True and the task retries such pushes itself."
            )
        else:
            super().__init__(
                f"The push of part {part} (up to {rows} rows) of the result of Redshift statement "
                f"{statement_id} to Pigment import configuration {configuration_id}, sent at {sent_at} UTC, "
                f"got no usable answer: {detail}. Pigment may have created an import of this part. The task "
                f"does not push part {part} again, because a second push would import its rows twice; the "
                f"parts before it were imported and later parts were not pushed. In Pigment, open the block's "
                "import history for this configuration and look for an import started at that time. Clearing "
                "the task instance pushes every part again. If the target list has a unique key or the "
                "configuration clears the block before each import, set target_is_idempotent=True and a "
                f"retry pushes part {part} and the later parts itself."
            )
        self.configuration_id = configuration_id
        self.statement_id = statement_id
        self.sent_at = sent_at
        self.rows = rows
        self.part = part


class PigmentSkippedRowsError(PigmentRedshiftError):
    """Pigment completed the import but skipped more rows than ``max_skipped_rows`` allows.

    :param import_id: Pigment import id.
    :param configuration_id: Pigment import configuration id.
    :param skipped: rows Pigment skipped.
    :param max_skipped_rows: the operator's limit.
    """

    def __init__(self, import_id: str, configuration_id: str, skipped: int, max_skipped_rows: int) -> None:
        super().__init__(
            f"Pigment import {import_id} (configuration {configuration_id}) skipped {skipped} rows, more than "
            f"max_skipped_rows={max_skipped_rows}. The other rows were imported. See the skipped-row samples "
            "in the task log, fix the data or the import configuration, then clear the task to import again; "
            "or raise max_skipped_rows. A retry of this task does not push again."
        )
        self.import_id = import_id
        self.configuration_id = configuration_id
        self.skipped = skipped
        self.max_skipped_rows = max_skipped_rows


class EmptyResultError(StatementError):
    """The query returned no rows and ``on_empty_result`` is ``fail``."""


_PERMISSION_DENIED = re.compile(r"permission denied for (?:relation|table|schema|view) \"?([\w.\"]+?)\"?(?:\s|$)", re.I)
_TOO_LARGE_TEXTS = ("exceeded size limit", "packet for query is too large", "result is too large")


def statement_error(
    statement_id: str, status: str | None, redshift_error: str, db_user: str | None = None
) -> StatementError:
    """Return the exception for a statement that ended FAILED or ABORTED, chosen from its error text.

    :param statement_id: Data API statement id.
    :param status: ``FAILED`` or ``ABORTED``.
    :param redshift_error: the ``Error`` member of ``DescribeStatement``.
    :param db_user: the database user the statement ran as, named in a GRANT fix.
    """
    if status == "ABORTED":
        return StatementAbortedError(statement_id, redshift_error)
    denied = _PERMISSION_DENIED.search(redshift_error or "")
    if denied:
        return StatementAccessDeniedError(statement_id, redshift_error, denied.group(1), db_user)
    if any(text in (redshift_error or "").lower() for text in _TOO_LARGE_TEXTS):
        return ResultTooLargeError(statement_id, redshift_error)
    return StatementFailedError(statement_id, redshift_error)
