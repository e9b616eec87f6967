"""Exceptions raised by the Redshift to Pigment provider.

Each exception carries the ids a user needs to find the failing object (statement id,
configuration id, import id) and the message the remote service returned.
"""

from __future__ import annotations

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


class PigmentImportTimeoutError(PigmentRedshiftError):
    """The Pigment import did not reach a final status within the allowed time."""
