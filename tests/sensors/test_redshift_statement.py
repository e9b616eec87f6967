from __future__ import annotations

import pytest
from airflow.providers.common.compat.sdk import TaskDeferred

from airflow_pigment_redshift.exceptions import StatementFailedError
from airflow_pigment_redshift.hooks.redshift_data import RedshiftDataApiHook
from airflow_pigment_redshift.sensors.redshift_statement import RedshiftStatementSensor
from tests.conftest import set_connections
from tests.helpers import task_context


def finished_statement(sql: str) -> str:
    hook = RedshiftDataApiHook()
    statement_id = hook.execute_statement(sql)
    description = hook.describe_statement(statement_id, wait_seconds=30)
    assert description["Status"] in ("FINISHED", "FAILED")
    return statement_id


def test_poke_true_on_finished(connections):
    sensor = RedshiftStatementSensor(task_id="wait", statement_id=finished_statement("SELECT 1 AS one"))

    assert sensor.poke(task_context()) is True


def test_poke_raises_redshift_error(connections):
    statement_id = finished_statement("SELECT * FROM tpch.missing_table")
    sensor = RedshiftStatementSensor(task_id="wait", statement_id=statement_id)

    with pytest.raises(StatementFailedError, match="missing_table") as raised:
        sensor.poke(task_context())
    assert raised.value.statement_id == statement_id


def test_poke_false_while_running(connections, redshift_emulator_factory, monkeypatch):
    _, pigment = connections
    slow = redshift_emulator_factory(running_seconds=60)
    set_connections(monkeypatch, slow, pigment)
    statement_id = RedshiftDataApiHook().execute_statement("SELECT 1 AS one")

    assert RedshiftStatementSensor(task_id="wait", statement_id=statement_id).poke(task_context()) is False
    RedshiftDataApiHook().cancel_statement(statement_id)


async def test_deferred_sensor_fails_with_error_text(connections, redshift_emulator_factory, monkeypatch):
    _, pigment = connections
    slow = redshift_emulator_factory(submitted_seconds=1)
    set_connections(monkeypatch, slow, pigment)
    statement_id = RedshiftDataApiHook().execute_statement("SELECT * FROM tpch.missing_table")
    sensor = RedshiftStatementSensor(task_id="wait", statement_id=statement_id, deferrable=True, poke_interval=1)

    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(task_context())
    event = await anext(deferred.value.trigger.run())

    with pytest.raises(StatementFailedError, match="missing_table"):
        sensor.execute_complete(task_context(), event=event.payload)


async def test_deferred_sensor_succeeds(connections, redshift_emulator_factory, monkeypatch):
    _, pigment = connections
    slow = redshift_emulator_factory(submitted_seconds=1)
    set_connections(monkeypatch, slow, pigment)
    statement_id = RedshiftDataApiHook().execute_statement("SELECT 1 AS one")
    sensor = RedshiftStatementSensor(task_id="wait", statement_id=statement_id, deferrable=True, poke_interval=1)

    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(task_context())
    event = await anext(deferred.value.trigger.run())

    assert event.payload["status"] == "success"
    assert sensor.execute_complete(task_context(), event=event.payload) is None
