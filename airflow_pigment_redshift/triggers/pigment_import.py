"""Trigger that waits for a Pigment import to be Completed or Failed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_pigment_redshift.exceptions import PigmentRequestError
from airflow_pigment_redshift.hooks.pigment import ImportStatus, PigmentHook

# Status polls tolerate this many transient failures (transport errors, 429, 5xx) in a row.
_MAX_CONSECUTIVE_POLL_ERRORS = 5


class PigmentImportTrigger(BaseTrigger):
    """Poll Pigment's import status in the triggerer until the import ends.

    The event payload is ``{"status": "Completed" | "Failed" | "timeout" | "error",
    "import_id": ..., "configuration_id": ..., "message": ..., "report": {...},
    "task_progress": {...}}``.

    :param import_id: Pigment import id.
    :param configuration_id: Pigment import configuration id (for messages).
    :param pigment_conn_id: id of a ``pigment`` connection.
    :param poll_interval: seconds between status requests.
    :param timeout: seconds after which the trigger gives up with a ``timeout`` event.
    :param task_progress: JSON-serialisable values returned unchanged in the event under
        ``task_progress``, so the task can resume from the event alone.
    """

    def __init__(
        self,
        import_id: str,
        configuration_id: str,
        pigment_conn_id: str,
        *,
        poll_interval: float = 5.0,
        timeout: float = 3600.0,
        task_progress: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.import_id = import_id
        self.configuration_id = configuration_id
        self.pigment_conn_id = pigment_conn_id
        self.poll_interval = poll_interval
        self.timeout = timeout
        self.task_progress = task_progress or {}

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "import_id": self.import_id,
                "configuration_id": self.configuration_id,
                "pigment_conn_id": self.pigment_conn_id,
                "poll_interval": self.poll_interval,
                "timeout": self.timeout,
                "task_progress": self.task_progress,
            },
        )

    def _event(self, status: str, message: str, report: dict[str, Any] | None = None) -> TriggerEvent:
        return TriggerEvent(
            {
                "status": status,
                "import_id": self.import_id,
                "configuration_id": self.configuration_id,
                "message": message,
                "report": report or {},
                "task_progress": self.task_progress,
            }
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        hook = PigmentHook(pigment_conn_id=self.pigment_conn_id)
        deadline = time.monotonic() + self.timeout
        consecutive_errors = 0
        try:
            async with await hook.get_async_client() as client:
                while True:
                    try:
                        report = await hook.aget_import_status(self.import_id, client)
                        consecutive_errors = 0
                    except (PigmentRequestError, httpx.TransportError) as error:
                        retryable = not isinstance(error, PigmentRequestError) or error.status_code >= 429
                        consecutive_errors += 1
                        if not retryable or consecutive_errors >= _MAX_CONSECUTIVE_POLL_ERRORS:
                            raise
                        self.log.warning(
                            "Status request for Pigment import %s failed (%d in a row): %s; retrying.",
                            self.import_id,
                            consecutive_errors,
                            error,
                        )
                        await asyncio.sleep(self.poll_interval * 2**consecutive_errors)
                        continue
                    status = report.get("importStatus")
                    if ImportStatus.is_terminal(status):
                        yield self._event(status, f"Pigment import {self.import_id} is {status}.", report)
                        return
                    if time.monotonic() >= deadline:
                        yield self._event(
                            "timeout",
                            f"Pigment import {self.import_id} was still {status} after {self.timeout:.0f} s.",
                            report,
                        )
                        return
                    self.log.info("Pigment import %s is %s.", self.import_id, status)
                    await asyncio.sleep(self.poll_interval)
        except Exception as error:
            self.log.exception("Waiting for Pigment import %s failed.", self.import_id)
            yield self._event("error", f"Waiting for Pigment import {self.import_id} failed: {error}")
