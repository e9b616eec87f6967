from __future__ import annotations


from airflow_pigment_redshift.hooks.redshift_data import RedshiftDataApiHook
from airflow_pigment_redshift.triggers.redshift_statement import RedshiftStatementTrigger
from tests.conftest import set_connections


def make_trigger(statement_id: str, **kwargs) -> RedshiftStatementTrigger:
    return RedshiftStatementTrigger(statement_id, "pigment_redshift_default", poll_interval=1, **kwargs)


def test_serialize_round_trip():
    trigger = make_trigger("abc", region_name="eu-west-1", timeout=60)

    classpath, kwargs = trigger.serialize()
    rebuilt = RedshiftStatementTrigger(**kwargs)

    assert classpath == "airflow_pigment_redshift.triggers.redshift_statement.RedshiftStatementTrigger"
    assert rebuilt.serialize() == (classpath, kwargs)


async def first_event(trigger: RedshiftStatementTrigger) -> dict:
    events = [event async for event in trigger.run()]
    assert len(events) == 1
    return events[0].payload


async def test_finished_statement_yields_success(connections):
    statement_id = RedshiftDataApiHook().execute_statement("SELECT 42 AS answer")

    payload = await first_event(make_trigger(statement_id))

    assert payload["status"] == "success"
    assert payload["statement_id"] == statement_id
    assert payload["description"]["Status"] == "FINISHED"
    assert payload["description"]["HasResultSet"] is True


async def test_failed_statement_yields_error_text(connections):
    statement_id = RedshiftDataApiHook().execute_statement("SELECT * FROM tpch.missing_table")

    payload = await first_event(make_trigger(statement_id))

    assert payload["status"] == "failed"
    assert "missing_table" in payload["message"]


async def test_timeout_yields_timeout_event(connections, redshift_emulator_factory, monkeypatch):
    _, pigment = connections
    slow = redshift_emulator_factory(running_seconds=60)
    set_connections(monkeypatch, slow, pigment)
    statement_id = RedshiftDataApiHook().execute_statement("SELECT 1 AS one")

    payload = await first_event(make_trigger(statement_id, timeout=0))

    assert payload["status"] == "timeout"
    RedshiftDataApiHook().cancel_statement(statement_id)


async def test_on_kill_cancels_statement(connections, redshift_emulator_factory, monkeypatch):
    _, pigment = connections
    slow = redshift_emulator_factory(running_seconds=60)
    set_connections(monkeypatch, slow, pigment)
    statement_id = RedshiftDataApiHook().execute_statement("SELECT 1 AS one")

    await make_trigger(statement_id).on_kill()

    assert slow.statement(statement_id)["status"] == "ABORTED"


async def test_unknown_statement_yields_error(connections):
    payload = await first_event(make_trigger("5a0a7b1c-1111-4222-8333-944455566677"))

    assert payload["status"] == "error"
    assert "ResourceNotFoundException" in payload["message"]
