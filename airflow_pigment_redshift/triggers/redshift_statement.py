"""Trigger that waits for a Redshift Data API statement to reach a final state."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_pigment_redshift.hooks.redshift_data import (
    MAX_WAIT_TIME_SECONDS,
    RedshiftDataApiHook,
    StatementStatus,
    describe_summary,
)


class RedshiftStatementTrigger(BaseTrigger):
    """Wait in the triggerer until a statement is FINISHED, FAILED or ABORTED.

    With a botocore that supports long polling, each ``DescribeStatement`` call waits on
    the service side until the statement ends or ``poll_interval`` passes, so a finished
    statement is seen at once. Without long polling the trigger sleeps ``poll_interval``
    between calls.

    The event payload is ``{"status": "success" | "failed" | "aborted" | "timeout" | "error",
    "statement_id": ..., "message": ..., "description": {...}}``.

    :param statement_id: Data API statement id.
    :param redshift_conn_id: id of a ``pigment_redshift`` connection.
    :param region_name: AWS region, overriding the connection's.
    :param verify: whether to verify TLS certificates, or a CA bundle path.
    :param botocore_config: botocore client configuration as a dict.
    :param poll_interval: seconds between status checks (the long-polling wait per call).
    :param timeout: seconds after which the trigger gives up with a ``timeout`` event.
    :param cancel_on_kill: cancel the statement when a user kills the deferred task.
    """

    def __init__(
        self,
        statement_id: str,
        redshift_conn_id: str | None,
        *,
        region_name: str | None = None,
        verify: bool | str | None = None,
        botocore_config: dict[str, Any] | None = None,
        poll_interval: float = 10.0,
        timeout: float = 24 * 3600.0,
        cancel_on_kill: bool = True,
    ) -> None:
        super().__init__()
        self.statement_id = statement_id
        self.redshift_conn_id = redshift_conn_id
        self.region_name = region_name
        self.verify = verify
        self.botocore_config = botocore_config
        self.poll_interval = poll_interval
        self.timeout = timeout
        self.cancel_on_kill = cancel_on_kill

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "statement_id": self.statement_id,
                "redshift_conn_id": self.redshift_conn_id,
                "region_name": self.region_name,
                "verify": self.verify,
                "botocore_config": self.botocore_config,
                "poll_interval": self.poll_interval,
                "timeout": self.timeout,
                "cancel_on_kill": self.cancel_on_kill,
            },
        )

    def _hook(self) -> RedshiftDataApiHook:
        return RedshiftDataApiHook(
            redshift_conn_id=self.redshift_conn_id,
            region_name=self.region_name,
            verify=self.verify,
            botocore_config=self.botocore_config,
        )

    def _event(self, status: str, message: str, description: dict[str, Any] | None = None) -> TriggerEvent:
        return TriggerEvent(
            {
                "status": status,
                "statement_id": self.statement_id,
                "message": message,
                "description": describe_summary(description or {}),
            }
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        deadline = time.monotonic() + self.timeout
        wait_seconds = int(min(MAX_WAIT_TIME_SECONDS, max(1.0, self.poll_interval)))
        try:
            async with await self._hook().get_async_conn() as client:
                operation = client.meta.service_model.operation_model("DescribeStatement")
                long_polling = "WaitTimeSeconds" in operation.input_shape.members
                while True:
                    request: dict[str, Any] = {"Id": self.statement_id}
                    if long_polling:
                        request["WaitTimeSeconds"] = wait_seconds
                    description = await client.describe_statement(**request)
                    status = description.get("Status")
                    if StatementStatus.is_terminal(status):
                        yield self._terminal_event(description)
                        return
                    if time.monotonic() >= deadline:
                        yield self._event(
                            "timeout",
                            f"Redshift statement {self.statement_id} was still {status} after "
                            f"{self.timeout:.0f} s.",
                            description,
                        )
                        return
                    self.log.info("Redshift statement %s is %s.", self.statement_id, status)
                    if not long_polling:
                        await asyncio.sleep(self.poll_interval)
        except Exception as error:
            self.log.exception("Waiting for Redshift statement %s failed.", self.statement_id)
            yield self._event("error", f"Waiting for Redshift statement {self.statement_id} failed: {error}")

    def _terminal_event(self, description: dict[str, Any]) -> TriggerEvent:
        status = description.get("Status")
        if status == StatementStatus.FINISHED.value:
            return self._event("success", f"Redshift statement {self.statement_id} finished.", description)
        error = description.get("Error", "")
        if status == StatementStatus.FAILED.value:
            return self._event("failed", error, description)
        return self._event("aborted", error, description)

    async def on_kill(self) -> None:
        """Cancel the statement when a user marks the deferred task failed or clears it."""
        if not self.cancel_on_kill:
            return
        try:
            async with await self._hook().get_async_conn() as client:
                response = await client.cancel_statement(Id=self.statement_id)
            self.log.info(
                "Cancel request for Redshift statement %s returned Status=%s.",
                self.statement_id,
                response.get("Status"),
            )
        except Exception:
            self.log.exception("Could not cancel Redshift statement %s.", self.statement_id)
