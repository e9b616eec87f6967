"""Hook for Pigment's import API, configured by a ``pigment`` connection."""

from __future__ import annotations

import functools
import re
import ssl
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date
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

from airflow.providers.common.compat.sdk import AirflowException, BaseHook, mask_secret, redact

from airflow_pigment_redshift import __version__
from airflow_pigment_redshift.connection_check import describe_key_expiry
from airflow_pigment_redshift.connection_fields import PIGMENT_BEHAVIOUR, PIGMENT_FIELDS, legacy_form_widgets
from airflow_pigment_redshift.connection_settings import InvalidConnectionError, PigmentConnectionSettings
from airflow_pigment_redshift.exceptions import (
    ChunkedPushRejectedError,
    PigmentImportTimeoutError,
    PigmentRejectedError,
    PigmentRequestError,
)

DEFAULT_BASE_URL = "https://pigment.app"
PUSH_CSV_PATH = "/api/v1/import/push/csv"
STATUS_PATH = "/api/v1/import/{import_id}/status"

# NOTE: Pigment publishes no server-side timeout for its import API; these are client choices.
DEFAULT_TIMEOUT = httpx.Timeout(connect=10.0, read=300.0, write=300.0, pool=10.0)

_UUID_TEXT = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
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
    :param request_timeout: seconds per request from the connection, or None for the hook's timeout.
    :param key_expires_on: expiration date of the key (it works until the day before), if known.
    :param verify: True, or the path of a CA bundle, or False when TLS verification is off.
    """

    base_url: str
    api_key: str
    request_timeout: float | None = None
    key_expires_on: date | None = None
    verify: bool | str = True

    def __repr__(self) -> str:
        return f"PigmentSettings(base_url={self.base_url!r}, api_key='***', verify={self.verify!r})"


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
    :param verify: TLS certificate verification: True (default), the path of a CA bundle file
        or directory, or False to turn verification off, which is logged as a warning on each
        client. When None, the connection's extra ``verify`` applies, then True.
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
        verify: bool | str | None = None,
    ) -> None:
        super().__init__()
        self.pigment_conn_id = pigment_conn_id
        self._explicit_timeout = timeout is not None
        self.verify = verify
        self.timeout = httpx.Timeout(timeout) if isinstance(timeout, (int, float)) else timeout or DEFAULT_TIMEOUT

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """Return the custom form fields for Airflow versions that read hook methods (2.x, 3.0, 3.1)."""
        return legacy_form_widgets(PIGMENT_FIELDS)

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Return the standard-field behaviour for Airflow versions that read hook methods."""
        return PIGMENT_BEHAVIOUR.legacy()

    def _client_timeout(self, settings: PigmentSettings) -> httpx.Timeout:
        """Return the hook's explicit timeout, else the connection's request timeout, else the default."""
        if self._explicit_timeout or settings.request_timeout is None:
            return self.timeout
        return httpx.Timeout(settings.request_timeout)

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
        validated = PigmentConnectionSettings.from_connection(
            connection.conn_id or self.pigment_conn_id,
            connection.password,
            connection.extra_dejson,
            default_base_url=DEFAULT_BASE_URL,
        )
        mask_secret(validated.api_key)
        verify = self.verify if self.verify is not None else connection.extra_dejson.get("verify")
        if verify is None or verify == "":
            verify = True
        return PigmentSettings(
            base_url=validated.base_url,
            api_key=validated.api_key,
            request_timeout=validated.request_timeout,
            key_expires_on=validated.key_expires_on,
            verify=tls_verify_setting(verify),
        )

    def _headers(self, settings: PigmentSettings) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {settings.api_key}",
            "Accept": "application/json",
            "User-Agent": f"airflow-pigment-redshift/{__version__}",
        }

    def get_client(self) -> httpx.Client:
        """Return an HTTP client bound to the connection's base URL and key."""
        settings = self.settings
        self._warn_if_unverified(settings)
        # Redirects are not followed, so the Bearer key is only ever sent to base_url.
        return httpx.Client(
            base_url=settings.base_url,
            headers=self._headers(settings),
            timeout=self._client_timeout(settings),
            verify=_ssl_verify(settings.verify, settings.base_url),
            follow_redirects=False,
        )

    def _warn_if_unverified(self, settings: PigmentSettings) -> None:
        if settings.verify is False:
            self.log.warning(
                "TLS certificate verification is off for Pigment connection %r (%s): the Import API key "
                "is sent to a server whose identity is not checked. Set verify to a CA bundle path instead.",
                self.pigment_conn_id,
                settings.base_url,
            )

    def test_connection(self) -> tuple[bool, str]:
        """Check that Pigment accepts the key, without importing anything, and report its expiry.

        Called by the Test button of the Airflow UI. It never raises.

        :return: whether the key works, and the message for the user.
        """
        # NOTE: Pigment documents no endpoint that only checks a key. The probe requests the status
        # of a random import id: 404 ("import not found") means the key was accepted, 401 that it
        # was rejected. It starts no import and changes nothing.
        try:
            settings = self.settings
        except InvalidConnectionError as error:
            return False, str(error)
        except Exception as error:
            self.log.warning("Connection test of %s failed unexpectedly: %s", self.pigment_conn_id, error)
            return False, f"Connection test failed: {type(error).__name__}: {error}"

        valid, expiry = describe_key_expiry(settings.key_expires_on, date.today())
        probe_id = str(uuid.uuid4())
        try:
            with self.get_client() as client:
                response = client.get(STATUS_PATH.format(import_id=probe_id))
        except httpx.HTTPError as error:
            self.log.warning("Connection test of %s: %s unreachable: %s", self.pigment_conn_id, settings.base_url, error)
            return False, (
                f"Could not reach {settings.base_url}: {type(error).__name__}: {error}. Fix: check 'Base URL', "
                "and that the Airflow API server can reach it (proxy, firewall)."
            )

        status = response.status_code
        if status == 404:
            return valid, f"Pigment at {settings.base_url} accepted the Import API key. {expiry}"
        if status == 401:
            return False, (
                f"Pigment at {settings.base_url} rejected the Import API key (HTTP 401). Fix: paste an active "
                "Import key (Workspace Settings > API Keys); check its expiry date and Pigment's IP allow list. "
                f"{expiry}"
            )
        if status == 429:
            return False, "Pigment's rate limit was reached (HTTP 429); press Test again in a few minutes."
        return False, (
            f"Pigment at {settings.base_url} answered HTTP {status} to a status request for a random import id, "
            f"where 404 was expected. Check 'Base URL'. Response: {response.text[:300] or '(empty)'}"
        )

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
        return self._import_started(response, configuration_id, size)

    def push_stream(self, configuration_id: str, chunks: Iterable[bytes]) -> str:
        """Start an import by sending CSV chunks as they are produced, and return the import id.

        The body is sent with chunked transfer encoding, so its size need not be known in
        advance. An exception raised by ``chunks`` aborts the request before its last chunk,
        and propagates unchanged. Like :meth:`push_csv`, the request is sent once.

        :param configuration_id: Pigment import configuration id (a UUID).
        :param chunks: the CSV in the configuration's dialect, header included, as bytes.
        :raises ChunkedPushRejectedError: when Pigment returns 411 Length Required.
        """
        counted = _CountedChunks(chunks)
        with self.get_client() as client:
            response = client.post(
                PUSH_CSV_PATH,
                params={"configurationId": configuration_id},
                content=iter(counted),
                headers={"Content-Type": "text/csv"},
            )
        if response.status_code == 411:
            raise ChunkedPushRejectedError(
                f"Pigment returned HTTP 411 Length Required for configuration {configuration_id}: it does not "
                "accept a push with chunked transfer encoding, so no import was created. Set "
                "push_transfer='file' on the operator to send a file with a Content-Length.",
                status_code=411,
                body=str(redact(response.text[:500])),
                configuration_id=configuration_id,
            )
        return self._import_started(response, configuration_id, counted.size)

    def _import_started(self, response: httpx.Response, configuration_id: str, size: int) -> str:
        _raise_for_response(response, configuration_id=configuration_id)
        import_id = _import_id_from(response, configuration_id)
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
        self._warn_if_unverified(settings)
        return httpx.AsyncClient(
            base_url=settings.base_url,
            headers=self._headers(settings),
            timeout=self._client_timeout(settings),
            verify=_ssl_verify(settings.verify, settings.base_url),
            follow_redirects=False,
        )

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


def tls_verify_setting(verify: Any) -> bool | str:
    """Return the TLS verification setting: True, False, or the path of an existing CA bundle.

    :param verify: a bool, the text ``true``/``false``, or a CA bundle file or directory path.
    :raises AirflowException: when the value matches none of these or the path does not exist.
    """
    if isinstance(verify, bool):
        return verify
    if isinstance(verify, str) and verify.strip().lower() in ("true", "false"):
        return verify.strip().lower() == "true"
    if isinstance(verify, str) and verify.strip() and Path(verify).exists():
        return verify
    raise AirflowException(
        f"Invalid TLS verify setting {verify!r} for Pigment: use true, false, or the path of an existing "
        "CA bundle file or directory."
    )


def _ssl_verify(verify: bool | str, base_url: str) -> ssl.SSLContext:
    """Return httpx's ``verify`` argument for a client of ``base_url``.

    Creating an SSL context takes 10 to 100 ms, and loading a CA bundle more, so each context
    is built once per process. A plain ``http://`` base URL (allowed only for loopback hosts)
    uses no TLS, and redirects are not followed, so its client never verifies a certificate.
    """
    if base_url.lower().startswith("http://"):
        return _ssl_context(False)
    return _ssl_context(verify)


@functools.lru_cache(maxsize=8)
def _ssl_context(verify: bool | str) -> ssl.SSLContext:
    """Return an SSL context: httpx's default (True: ``SSL_CERT_FILE``, ``SSL_CERT_DIR`` or certifi's
    bundle), one that verifies nothing (False), or one trusting the CA bundle at a path."""
    if isinstance(verify, bool):
        return httpx.create_ssl_context(verify=verify)
    try:
        if Path(verify).is_dir():
            return ssl.create_default_context(capath=verify)
        return ssl.create_default_context(cafile=verify)
    except (ssl.SSLError, OSError) as error:
        raise AirflowException(
            f"Cannot load the CA bundle {verify!r} for Pigment: {error}. Point verify at a PEM file or a "
            "directory of hashed certificates."
        ) from None


class _CountedChunks:
    """Iterable of body chunks that adds up the bytes it yields."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = chunks
        self.size = 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._chunks:
            self.size += len(chunk)
            yield chunk


def _import_id_from(response: httpx.Response, configuration_id: str) -> str:
    try:
        import_id = response.json().get("importId")
    except (ValueError, AttributeError):
        import_id = None
    if isinstance(import_id, str) and _UUID_TEXT.fullmatch(import_id):
        return import_id
    body = str(redact(response.text[:500]))
    raise PigmentRequestError(
        f"Pigment accepted the CSV for configuration {configuration_id} (HTTP {response.status_code}) but its "
        f"answer has no valid importId (a UUID): {body or '(empty)'}. Check in Pigment whether the import "
        "started before running the task again, so the data is not imported twice.",
        status_code=response.status_code,
        body=body,
        configuration_id=configuration_id,
    )


def _raise_for_response(
    response: httpx.Response, *, configuration_id: str | None = None, import_id: str | None = None
) -> None:
    if response.is_success:
        return
    status = response.status_code
    # The masker replaces the registered Import API key, in case the server echoes the request headers.
    body = str(redact(response.text[:2000]))
    subject = f"configuration {configuration_id}" if configuration_id else f"import {import_id}"
    hints = {
        400: "Pigment rejected the request (malformed request or size limit exceeded).",
        401: "The Import API key was rejected: check the key in the Pigment connection, its expiry "
        "date and the IP allow list in Pigment.",
        404: "Not found: check the id, and that the key's owner can access the application.",
        429: "Pigment's rate limit was reached (500 requests per 5 minutes per IP, 300 imports per "
        "configuration per hour); wait and retry later.",
    }
    if response.is_redirect:
        hint = (
            f"Pigment redirected the request to {response.headers.get('location', '(no Location header)')!r}; "
            "redirects are not followed, so the API key is not sent elsewhere. Set the connection's base_url "
            "to the final address if it is a Pigment host."
        )
    else:
        hint = hints.get(status, "Pigment returned a server error; retry later.")
    error_class = PigmentRejectedError if 400 <= status < 500 else PigmentRequestError
    raise error_class(
        f"Pigment returned HTTP {status} for {subject}. {hint} Response body: {body or '(empty)'}",
        status_code=status,
        body=body,
        configuration_id=configuration_id,
        import_id=import_id,
    )
