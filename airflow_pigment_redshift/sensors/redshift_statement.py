"""Sensor that waits for a Redshift Data API statement to finish."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import BaseSensorOperator, conf

from airflow_pigment_redshift.exceptions import (
    PigmentRedshiftError,
    StatementAbortedError,
    StatementFailedError,
    StatementTimeoutError,
)
from airflow_pigment_redshift.hooks.redshift_data import (
    RedshiftDataApiHook,
    StatementStatus,
    raise_for_statement_status,
)
from airflow_pigment_redshift.triggers.redshift_statement import RedshiftStatementTrigger

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context


class RedshiftStatementSensor(BaseSensorOperator):
    """Wait until a Redshift Data API statement is FINISHED.

    The sensor fails with the Redshift error text when the statement FAILED, and with
    :class:`~airflow_pigment_redshift.exceptions.StatementAbortedError` when it was ABORTED.

    :param statement_id: Data API statement id, e.g. pulled from XCom (templated).
    :param redshift_conn_id: id of a ``pigment_redshift`` connection.
    :param region_name: AWS region, overriding the connection's.
    :param verify: whether to verify TLS certificates, or a CA bundle path.
    :param botocore_config: botocore client configuration as a dict.
    :param deferrable: wait in the triggerer. Defaults to ``[operators] default_deferrable``.
    """

    template_fields: Sequence[str] = ("statement_id",)
    ui_color = "#e8f1fd"

    def __init__(
        self,
        *,
        statement_id: str,
        redshift_conn_id: str = RedshiftDataApiHook.default_conn_name,
        region_name: str | None = None,
        verify: bool | str | None = None,
        botocore_config: dict[str, Any] | None = None,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.statement_id = statement_id
        self.redshift_conn_id = redshift_conn_id
        self.region_name = region_name
        self.verify = verify
        self.botocore_config = botocore_config
        self.deferrable = deferrable

    @cached_property
    def hook(self) -> RedshiftDataApiHook:
        """Data API hook built from ``redshift_conn_id``."""
        return RedshiftDataApiHook(
            redshift_conn_id=self.redshift_conn_id,
            region_name=self.region_name,
            verify=self.verify,
            botocore_config=self.botocore_config,
        )

    def poke(self, context: Context) -> bool:
        description = self.hook.describe_statement(self.statement_id)
        status = description.get("Status")
        self.log.info("Redshift statement %s is %s.", self.statement_id, status)
        raise_for_statement_status(description)
        return status == StatementStatus.FINISHED.value

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        if self.poke(context):
            return None
        self.defer(
            trigger=RedshiftStatementTrigger(
                statement_id=self.statement_id,
                redshift_conn_id=self.redshift_conn_id,
                region_name=self.region_name,
                verify=self.verify,
                botocore_config=self.botocore_config,
                poll_interval=self.poke_interval,
                timeout=float(self.timeout),
                cancel_on_kill=False,
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=float(self.timeout)),
        )

    def execute_complete(self, context: Context, event: dict[str, Any]) -> None:
        """Resume after the trigger fired: succeed on FINISHED, raise otherwise."""
        status = event.get("status")
        message = event.get("message", "")
        if status == "success":
            self.log.info("Redshift statement %s finished.", self.statement_id)
            return
        if status == "failed":
            raise StatementFailedError(self.statement_id, message)
        if status == "aborted":
            raise StatementAbortedError(self.statement_id, message)
        if status == "timeout":
            raise StatementTimeoutError(self.statement_id, message)
        raise PigmentRedshiftError(f"Waiting for Redshift statement {self.statement_id} failed: {message}")
