from __future__ import annotations

import pytest
from airflow.providers.common.compat.sdk import TaskDeferred

from airflow_pigment_redshift.exceptions import PigmentImportFailedError, PigmentRedshiftError, StatementFailedError
from airflow_pigment_redshift.operators.redshift_to_pigment import RedshiftToPigmentOperator
from airflow_pigment_redshift.triggers.pigment_import import PigmentImportTrigger
from airflow_pigment_redshift.triggers.redshift_statement import RedshiftStatementTrigger
from tests.conftest import LINE_ITEMS_CONFIGURATION_ID, LINE_ITEMS_HEADER, LINE_ITEMS_SQL
from tests.helpers import expected_rows, task_context

DAY = {"interval_start": "1995-03-01", "interval_end": "1995-03-02"}


def make_operator(**kwargs) -> RedshiftToPigmentOperator:
    settings = {
        "task_id": "import_line_items",
        "sql": LINE_ITEMS_SQL,
        "parameters": DAY,
        "configuration_id": LINE_ITEMS_CONFIGURATION_ID,
        "poll_interval": 1,
        "import_poll_interval": 0.05,
        **kwargs,
    }
    return RedshiftToPigmentOperator(**settings)


async def run_deferred(context: dict, operator: RedshiftToPigmentOperator) -> dict:
    """Drive a deferrable run the way the triggerer would: trigger events into resume methods."""
    with pytest.raises(TaskDeferred) as statement_wait:
        operator.execute(context)
    assert isinstance(statement_wait.value.trigger, RedshiftStatementTrigger)
    statement_event = await anext(statement_wait.value.trigger.run())

    with pytest.raises(TaskDeferred) as import_wait:
        getattr(operator, statement_wait.value.method_name)(context, event=statement_event.payload)
    assert isinstance(import_wait.value.trigger, PigmentImportTrigger)
    import_event = await anext(import_wait.value.trigger.run())

    return getattr(operator, import_wait.value.method_name)(context, event=import_event.payload)


def test_imports_day_rows_into_pigment(connections):
    redshift, pigment = connections
    _, truth = redshift.query(LINE_ITEMS_SQL, DAY)

    summary = make_operator(deferrable=False).execute(task_context())

    [entry] = pigment.ledger()
    assert pigment.received_header(summary["import_id"]) == LINE_ITEMS_HEADER
    assert pigment.received_rows(summary["import_id"]) == expected_rows(truth)
    assert entry["rows"] == len(truth) == summary["rows"]
    assert entry["status"] == "Completed"
    assert summary["inserted"] == len(truth)
    assert summary["bytes"] == entry["bytes"]
    assert summary["statement_id"] == redshift.statements[-1]["id"]


async def test_deferred_and_direct_runs_import_same_rows(connections, redshift_emulator_factory, monkeypatch):
    from tests.conftest import set_connections

    redshift, pigment = connections

    direct = make_operator(deferrable=False).execute(task_context())
    # A statement that stays SUBMITTED for a moment makes the deferrable run defer every time.
    set_connections(monkeypatch, redshift_emulator_factory(submitted_seconds=1), pigment)
    deferred = await run_deferred(task_context(try_number=2), make_operator(deferrable=True))

    first, second = pigment.ledger()
    assert pigment.received_rows(direct["import_id"]) == pigment.received_rows(deferred["import_id"])
    assert first["rows"] == second["rows"] == deferred["rows"]
    assert first["bytes"] == second["bytes"]
    assert {key: deferred[key] for key in ("rows", "inserted", "skipped")} == {
        key: direct[key] for key in ("rows", "inserted", "skipped")
    }


def test_multi_page_result_complete(connections, redshift_emulator_factory, monkeypatch):
    from tests.conftest import set_connections

    _, pigment = connections
    small_pages = redshift_emulator_factory(page_size_rows=5, csv_header="every_page")
    set_connections(monkeypatch, small_pages, pigment)
    _, truth = small_pages.query(LINE_ITEMS_SQL, DAY)

    summary = make_operator(deferrable=False).execute(task_context())

    assert summary["pages"] > 3
    assert pigment.received_rows(summary["import_id"]) == expected_rows(truth)


def test_semicolon_dialect_with_header_override(connections):
    redshift, pigment = connections
    header = [name.upper() for name in LINE_ITEMS_HEADER]
    from airflow_pigment_redshift.testing.pigment_emulator import ImportConfiguration

    configuration_id = "7d3e4b1a-2c5f-4e6a-8b9c-0d1e2f3a4b5c"
    pigment.add_configuration(
        ImportConfiguration(
            id=configuration_id,
            name="Semicolon line items",
            block_name="Line Items (semicolon)",
            block_type="List",
            list_kind="transaction",
            delimiter=";",
            quote_char="'",
            expected_header=header,
        )
    )
    _, truth = redshift.query(LINE_ITEMS_SQL, DAY)

    summary = make_operator(
        deferrable=False, configuration_id=configuration_id, csv_delimiter=";", csv_quote_char="'", csv_header=header
    ).execute(task_context())

    assert pigment.received_header(summary["import_id"]) == header
    assert pigment.received_rows(summary["import_id"]) == expected_rows(truth)
    assert b";" in pigment.received_file(summary["import_id"]).read_bytes().splitlines()[0]


def test_failed_query_pushes_nothing(connections):
    _, pigment = connections

    with pytest.raises(StatementFailedError, match="no_such_table"):
        make_operator(deferrable=False, sql="SELECT * FROM tpch.no_such_table", parameters=None).execute(task_context())

    assert pigment.ledger() == []


def test_empty_result_fails_by_default(connections):
    redshift, pigment = connections
    empty_day = {"interval_start": "2030-01-01", "interval_end": "2030-01-02"}

    with pytest.raises(PigmentRedshiftError, match="returned no rows"):
        make_operator(deferrable=False, parameters=empty_day).execute(task_context())

    assert pigment.ledger() == []
    assert redshift.statements[-1]["status"] == "FINISHED"


def test_header_mismatch_fails_with_ids(connections):
    _, pigment = connections

    with pytest.raises(PigmentImportFailedError, match=LINE_ITEMS_CONFIGURATION_ID) as raised:
        make_operator(deferrable=False, csv_header=[f"c{i}" for i in range(10)]).execute(task_context())

    [entry] = pigment.ledger()
    assert entry["status"] == "Failed"
    assert raised.value.import_id == entry["import_id"]


def test_invalid_configuration_id_before_query(connections):
    redshift, _ = connections

    with pytest.raises(ValueError, match="not-a-uuid"):
        make_operator(deferrable=False, configuration_id="not-a-uuid").execute(task_context())

    assert redshift.statements == []


@pytest.mark.parametrize("value", [None, ["a"], {"a": 1}, True])
def test_invalid_parameter_value_before_query(connections, value):
    redshift, _ = connections

    with pytest.raises(ValueError, match="interval_start"):
        make_operator(deferrable=False, parameters={"interval_start": value}).execute(task_context())

    assert redshift.statements == []


def test_sql_file_is_template(connections):
    operator = RedshiftToPigmentOperator(
        task_id="from_file", sql="sql/line_items_by_order_date.sql", configuration_id=LINE_ITEMS_CONFIGURATION_ID
    )

    assert ".sql" in operator.template_ext
    assert "sql" in operator.template_fields
    assert "parameters" in operator.template_fields
