"""Hook for Pigment's import API, configured by a ``pigment`` connection."""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import Enum
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from asgiref.sync import sync_to_async
from tenacity import (
    RetryCallState,
    retry,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from airflow.providers.common.compat.sdk import AirflowException, BaseHook

from airflow_pigment_redshift import __version__
from airflow_pigment_redshift.exceptions import (
    PigmentImportTimeoutError,
    PigmentRejectedError,
    PigmentRequestError,
)

DEFAULT_BASE_URL = "https://pigment.app"
PUSH_CSV_PATH = "/api/v1/import/push/csv"
STATUS_PATH = "/api/v1/import/{import_id}/status"

# NOTE: Pigment publishes no server-side timeout for its import API; these are client choices.
DEFAULT_TIMEOUT = httpx.Timeout(connect=10.0, read=300.0, write=300.0, pool=10.0)

_RETRIED_STATUS_CODES = frozenset({429, 500, 502, 503, 504})
_STATUS_POLL_ATTEMPTS = 5


class ImportStatus(str, Enum):
    """``importStatus`` values of Pigment's import status report."""

    IN_PROGRESS = "InProgress"
    COMPLETED = "Completed"
    FAILED = "Failed"

    @classmethod
    def is_terminal(cls, status: str | None) -> bool:
        """Return True when a status string is final."""
        return status in (cls.COMPLETED.value, cls.FAILED.value)


@dataclass(frozen=True)
class PigmentSettings:
    """Connection settings for Pigment's API.

    :param base_url: root URL, e.g. ``https://pigment.app``.
    :param api_key: Import API key, sent as a Bearer token.
    """

    base_url: str
    api_key: str

    def __repr__(self) -> str:
        return f"PigmentSettings(base_url={self.base_url!r}, api_key='***')"


def summary_counts(report: dict[str, Any]) -> dict[str, int]:
    """Return inserted, updated, deleted and skipped counts from a detailed status report."""
    summary = (report.get("detailedReport") or {}).get("summary") or {}
    return {
        "inserted": int(summary.get("insertedCount") or 0),
        "updated": int(summary.get("updatedCount") or 0),
        "deleted": int(summary.get("deletedCount") or 0),
        "skipped": int(summary.get("skippedCount") or 0),
    }


def _is_retryable(error: BaseException) -> bool:
    if isinstance(error, PigmentRequestError):
        return error.status_code in _RETRIED_STATUS_CODES
    return isinstance(error, httpx.TransportError)


def _log_retry(retry_state: RetryCallState) -> None:
    hook = retry_state.args[0]
    error = retry_state.outcome.exception() if retry_state.outcome else None
    hook.log.warning(
        "Pigment status request failed (attempt %d of %d): %s; retrying.",
        retry_state.attempt_number,
        _STATUS_POLL_ATTEMPTS,
        error,
    )


class PigmentHook(BaseHook):
    """Push CSV files to Pigment import configurations and follow the imports.

    The connection (type ``pigment``) stores the Import API key in its password and
    optionally ``base_url`` in its extra (default ``https://pigment.app``).

    :param pigment_conn_id: id of a ``pigment`` connection.
    :param timeout: HTTP timeout in seconds for each request, or an ``httpx.Timeout``.
    """

    conn_name_attr = "pigment_conn_id"
    default_conn_name = "pigment_default"
    conn_type = "pigment"
    hook_name = "Pigment"

    def __init__(
        self,
        pigment_conn_id: str = default_conn_name,
        *,
        timeout: float | httpx.Timeout | None = None,
    ) -> None:
        super().__init__()
        self.pigment_conn_id = pigment_conn_id
        self.timeout = httpx.Timeout(timeout) if isinstance(timeout, (int, float)) else timeout or DEFAULT_TIMEOUT

    @cached_property
    def settings(self) -> PigmentSettings:
        """Base URL and API key read from the connection."""
        connection = self.get_connection(self.pigment_conn_id)
        return self._settings_from_connection(connection)

    async def aget_settings(self) -> PigmentSettings:
        """Read the settings without blocking the event loop (for triggers)."""
        if hasattr(BaseHook, "aget_connection"):
            connection = await self.aget_connection(self.pigment_conn_id)
        else:
            connection = await sync_to_async(self.get_connection)(self.pigment_conn_id)
        return self._settings_from_connection(connection)

    def _settings_from_connection(self, connection: Any) -> PigmentSettings:
        api_key = (connection.password or "").strip()
        if not api_key:
            raise AirflowException(
                f"Connection {self.pigment_conn_id!r} has no Import API key. Create an Import key in "
                "Pigment (Workspace Settings > API Keys) and put it in the connection's password."
            )
        base_url = (connection.extra_dejson.get("base_url") or DEFAULT_BASE_URL).rstrip("/")
        return PigmentSettings(base_url=base_url, api_key=api_key)

    def _headers(self, settings: PigmentSettings) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {settings.api_key}",
            "Accept": "application/json",
            "User-Agent": f"airflow-pigment-redshift/{__version__}",
        }

    def get_client(self) -> httpx.Client:
        """Return an HTTP client bound to the connection's base URL and key."""
        settings = self.settings
        return httpx.Client(base_url=settings.base_url, headers=self._headers(settings), timeout=self.timeout)

    def push_csv(self, configuration_id: str, csv_path: str | Path) -> str:
        """Start an import by sending a CSV file, streamed from disk, and return the import id.

        The request is sent once: Pigment imports are not idempotent, so a push whose outcome
        is unknown must not be repeated blindly.

        :param configuration_id: Pigment import configuration id (a UUID).
        :param csv_path: CSV file in the configuration's dialect, header included.
        """
        path = Path(csv_path)
        size = path.stat().st_size
        with self.get_client() as client, path.open("rb") as body:
            response = client.post(
                PUSH_CSV_PATH,
                params={"configurationId": configuration_id},
                content=body,
                headers={"Content-Type": "text/csv", "Content-Length": str(size)},
            )
        _raise_for_response(response, configuration_id=configuration_id)
        import_id = response.json()["importId"]
        self.log.info(
            "Pushed %d bytes to Pigment configuration %s: import %s started.", size, configuration_id, import_id
        )
        return import_id

    @retry(
        retry=retry_if_exception(_is_retryable),
        stop=stop_after_attempt(_STATUS_POLL_ATTEMPTS),
        wait=wait_exponential_jitter(initial=1, max=30),
        before_sleep=_log_retry,
        reraise=True,
    )
    def get_import_status(self, import_id: str) -> dict[str, Any]:
        """Return the import's status report, with the detailed report.

        Retries transport errors and 429 or 5xx responses with exponential backoff, because
        reading a status has no side effect.

        :param import_id: id returned by :meth:`push_csv`.
        """
        with self.get_client() as client:
            response = client.get(
                STATUS_PATH.format(import_id=quote(import_id, safe="")),
                params={"includedDetailedReport": "true"},
            )
        _raise_for_response(response, import_id=import_id)
        return response.json()

    async def aget_import_status(self, import_id: str, client: httpx.AsyncClient) -> dict[str, Any]:
        """Return the import's status report, using an async client from :meth:`get_async_client`."""
        response = await client.get(
            STATUS_PATH.format(import_id=quote(import_id, safe="")),
            params={"includedDetailedReport": "true"},
        )
        _raise_for_response(response, import_id=import_id)
        return response.json()

    async def get_async_client(self) -> httpx.AsyncClient:
        """Return an async HTTP client bound to the connection's base URL and key."""
        settings = await self.aget_settings()
        return httpx.AsyncClient(base_url=settings.base_url, headers=self._headers(settings), timeout=self.timeout)

    def wait_for_import(self, import_id: str, *, timeout: float, poll_interval: float = 5.0) -> dict[str, Any]:
        """Poll an import until it is Completed or Failed and return the final report.

        :param import_id: id returned by :meth:`push_csv`.
        :param timeout: seconds to wait before raising :class:`PigmentImportTimeoutError`.
        :param poll_interval: seconds between two status requests.
        """
        deadline = time.monotonic() + timeout
        while True:
            report = self.get_import_status(import_id)
            status = report.get("importStatus")
            if ImportStatus.is_terminal(status):
                self.log.info("Pigment import %s is %s: %s.", import_id, status, summary_counts(report))
                return report
            if time.monotonic() >= deadline:
                raise PigmentImportTimeoutError(
                    f"Pigment import {import_id} was still {status} after {timeout:.0f} s. "
                    "Check the import in Pigment before running the task again, so it is not imported twice."
                )
            self.log.info("Pigment import %s is %s; checking again in %.0f s.", import_id, status, poll_interval)
            time.sleep(poll_interval)


def _raise_for_response(
    response: httpx.Response, *, configuration_id: str | None = None, import_id: str | None = None
) -> None:
    if response.is_success:
        return
    status = response.status_code
    body = response.text[:2000]
    subject = f"configuration {configuration_id}" if configuration_id else f"import {import_id}"
    hints = {
        400: "Pigment rejected the request (malformed request or size limit exceeded).",
        401: "The Import API key was rejected: check the key in the Pigment connection, its expiry "
        "date and the IP allow list in Pigment.",
        404: "Not found: check the id, and that the key's owner can access the application.",
        429: "Pigment's rate limit was reached (500 requests per 5 minutes per IP, 300 imports per "
        "configuration per hour); wait and retry later.",
    }
    hint = hints.get(status, "Pigment returned a server error; retry later.")
    error_class = PigmentRejectedError if 400 <= status < 500 else PigmentRequestError
    raise error_class(
        f"Pigment returned HTTP {status} for {subject}. {hint} Response body: {body or '(empty)'}",
        status_code=status,
        body=body,
        configuration_id=configuration_id,
        import_id=import_id,
    )
