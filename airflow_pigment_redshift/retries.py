"""Retry policy of the transfer: which remote errors are transient and how long to back off.

Read calls (describe, result pages, import status) are retried on any transient error.
``ExecuteStatement`` is retried too, because its ``ClientToken`` makes a resubmission
return the statement already created. A Pigment push is retried only when Pigment cannot
have created an import (a 429, or a connection that never opened), unless the caller says
the target is idempotent.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotocoreConnectionError
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, stop_after_delay
from tenacity.wait import wait_exponential_jitter

from airflow_pigment_redshift.exceptions import PigmentRequestError

T = TypeVar("T")

#: Data API error codes that mean "try again later". botocore retries ThrottlingException
#: and InternalServerException itself but not ActiveStatementsExceededException.
RETRYABLE_DATA_API_CODES = frozenset(
    {
        "ThrottlingException",
        "ActiveStatementsExceededException",
        "ActiveSessionsExceededException",
        "InternalServerException",
        "ServiceUnavailableException",
    }
)


@dataclass(frozen=True)
class CallRetryPolicy:
    """Backoff of retried calls and poll loops: exponential and capped, plus a random jitter of up to ``initial_wait``.

    :param attempts: maximum calls per operation, the first included.
    :param initial_wait: seconds before the first retry, before jitter.
    :param max_wait: cap of one wait in seconds.
    :param max_delay: seconds after which an operation stops being retried.
    """

    attempts: int = 8
    initial_wait: float = 1.0
    max_wait: float = 60.0
    max_delay: float = 900.0

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.initial_wait < 0 or self.max_wait < self.initial_wait or self.max_delay <= 0:
            raise ValueError(
                f"Invalid retry policy {self!r}: attempts must be at least 1, waits must not be negative "
                "and max_wait must not be below initial_wait."
            )

    def call(
        self,
        function: Callable[..., T],
        *args: Any,
        is_retryable: Callable[[BaseException], bool],
        description: str,
        log: logging.Logger | Any,
        **kwargs: Any,
    ) -> T:
        """Call ``function`` and retry it on errors for which ``is_retryable`` is true.

        :param description: what the call does and on which ids, for the retry log lines.
        :param log: logger that records each retry with its error.
        """

        def log_retry(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            wait = state.next_action.sleep if state.next_action else 0.0
            log.warning(
                "%s failed (attempt %d of %d): %s; retrying in %.1f s.",
                description,
                state.attempt_number,
                self.attempts,
                error,
                wait,
            )

        retrying = Retrying(
            retry=retry_if_exception(is_retryable),
            stop=stop_after_attempt(self.attempts) | stop_after_delay(self.max_delay),
            wait=wait_exponential_jitter(initial=self.initial_wait, max=self.max_wait, jitter=self.initial_wait),
            before_sleep=log_retry,
            reraise=True,
        )
        return retrying(function, *args, **kwargs)

    def poll_interval(self, base: float, polls: int, cap: float) -> float:
        """Return the wait before poll number ``polls + 1``: ``base`` growing 1.5 times per poll up to ``cap``, +-20 %.

        :param base: the configured interval, in seconds.
        :param polls: polls done so far.
        :param cap: largest interval before jitter, in seconds.
        """
        interval = min(cap, base * 1.5 ** min(polls, 30))
        return max(0.0, interval * random.uniform(0.8, 1.2))


def data_api_error_code(error: BaseException) -> str | None:
    """Return the AWS error code of a botocore ``ClientError``, or None for other errors."""
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code", ""))
    return None


def is_retryable_data_api_error(error: BaseException) -> bool:
    """Return True for throttling, active-statement limits, server faults and dropped connections."""
    if isinstance(error, (BotocoreConnectionError, HTTPClientError)):
        # Connection refused, reset or closed, and read timeouts.
        return True
    return data_api_error_code(error) in RETRYABLE_DATA_API_CODES


def is_retryable_status_error(error: BaseException) -> bool:
    """Return True for Pigment status-read errors worth retrying: transport errors, 429 and 5xx."""
    if isinstance(error, PigmentRequestError):
        return error.status_code == 429 or error.status_code >= 500
    return isinstance(error, httpx.TransportError)


def push_created_no_import(error: BaseException) -> bool:
    """Return True when a failed push certainly created no import, so pushing again is safe.

    A 429 is Pigment's rate limit rejecting the request before any import exists. A connect
    error or timeout means the request never reached Pigment. Every other failure after the
    request was sent (a 5xx, a read or write timeout, a dropped connection) leaves the outcome
    unknown.
    """
    if isinstance(error, PigmentRequestError):
        return error.status_code == 429
    return isinstance(error, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout))


def push_outcome_unknown(error: BaseException) -> bool:
    """Return True when Pigment may have created an import although the push failed."""
    if push_created_no_import(error):
        return False
    if isinstance(error, PigmentRequestError):
        return error.status_code >= 500
    return isinstance(error, httpx.TransportError)
