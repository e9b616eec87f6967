from __future__ import annotations

import io

import pytest
from airflow.providers.amazon.aws.utils.connection_wrapper import AwsConnectionWrapper

from airflow_pigment_redshift.csv_stream import CsvDialect, ResultCsvWriter
from airflow_pigment_redshift.exceptions import StatementFailedError
from airflow_pigment_redshift.hooks.redshift_data import RedshiftDataApiHook, RedshiftTarget
from tests.conftest import LINE_ITEMS_SQL
from tests.helpers import expected_rows

DAY = {"interval_start": "1995-03-01", "interval_end": "1995-03-02"}


def export(hook: RedshiftDataApiHook, statement_id: str, result_format: str = "CSV") -> tuple[list[str], int, int]:
    stream = io.StringIO(newline="")
    result = hook.stream_result(statement_id, ResultCsvWriter(stream, CsvDialect()), result_format=result_format)
    return stream.getvalue().splitlines(), result.rows, result.pages


def test_connection_feeds_amazon_credentials(connections):
    redshift, _ = connections
    hook = RedshiftDataApiHook()

    config = hook.conn_config

    # Guards the amazon provider API this hook builds on: it must keep accepting these calls.
    assert isinstance(config, AwsConnectionWrapper)
    assert config.conn_type == "aws"
    assert config.aws_access_key_id == "AKIATESTACCESSKEY"
    assert config.aws_secret_access_key == "test-secret-access-key"
    assert config.region_name == "eu-west-1"
    assert config.get_service_endpoint_url("redshift-data") == redshift.url
    assert "cluster_identifier" not in config.extra_config


def test_target_from_connection_and_overrides(connections):
    assert RedshiftDataApiHook().target == RedshiftTarget("test-cluster", "pigment_db_user", "dev")
    assert RedshiftDataApiHook(database="analytics").target.database == "analytics"


def test_target_missing_cluster_named(monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_BARE", '{"conn_type": "pigment_redshift", "extra": {"region_name": "eu-west-1"}}'
    )

    with pytest.raises(Exception, match="neither 'Redshift cluster name'.*nor 'Redshift Serverless workgroup'"):
        RedshiftDataApiHook("bare").target


@pytest.mark.parametrize("result_format", ["CSV", "JSON"])
def test_query_rows_match_duckdb(connections, result_format):
    redshift, _ = connections
    hook = RedshiftDataApiHook()
    _, truth = redshift.query(LINE_ITEMS_SQL, DAY)

    statement_id = hook.execute_statement(LINE_ITEMS_SQL, parameters=DAY, result_format=result_format)
    description = hook.wait_for_statement(statement_id, timeout=60)
    lines, rows, _ = export(hook, statement_id, result_format)

    assert description["Status"] == "FINISHED"
    assert rows == len(truth) > 0
    assert lines[0].split(",")[:3] == ["order_key", "line_number", "order_date"]
    assert [line.split(",")[:2] for line in lines[1:]] == [row[:2] for row in expected_rows(truth)]


def test_parameters_reach_emulator(connections):
    redshift, _ = connections
    hook = RedshiftDataApiHook()

    statement_id = hook.execute_statement(
        LINE_ITEMS_SQL, parameters=DAY, statement_name="daily", client_token="token-1"
    )

    stored = redshift.statement(statement_id)
    assert stored["parameters"] == DAY
    assert stored["statement_name"] == "daily"
    assert stored["client_token"] == "token-1"
    assert stored["cluster_identifier"] == "test-cluster"
    assert stored["db_user"] == "pigment_db_user"


def test_every_page_read_once(connections, redshift_emulator_factory, monkeypatch):
    from tests.conftest import set_connections

    _, pigment = connections
    small_pages = redshift_emulator_factory(page_size_rows=7, csv_header="every_page")
    set_connections(monkeypatch, small_pages, pigment)
    hook = RedshiftDataApiHook()
    week = {"interval_start": "1995-03-01", "interval_end": "1995-03-08"}
    _, truth = small_pages.query(LINE_ITEMS_SQL, week)

    statement_id = hook.execute_statement(LINE_ITEMS_SQL, parameters=week)
    hook.wait_for_statement(statement_id, timeout=60)
    lines, rows, pages = export(hook, statement_id)

    assert pages == -(-len(truth) // 7)
    assert pages > 3
    assert rows == len(truth)
    assert lines.count(lines[0]) == 1
    assert [line.split(",")[:2] for line in lines[1:]] == [row[:2] for row in expected_rows(truth)]


def test_failed_statement_raises_redshift_error(connections):
    hook = RedshiftDataApiHook()

    statement_id = hook.execute_statement("SELECT * FROM tpch.no_such_table")

    with pytest.raises(StatementFailedError, match="no_such_table") as raised:
        hook.wait_for_statement(statement_id, timeout=60)
    assert raised.value.statement_id == statement_id


def test_cancel_finished_statement_declined(connections):
    hook = RedshiftDataApiHook()
    statement_id = hook.execute_statement("SELECT 1 AS one")
    hook.wait_for_statement(statement_id, timeout=60)

    assert hook.cancel_statement(statement_id) is False


def test_cancel_running_statement(connections, redshift_emulator_factory, monkeypatch):
    from tests.conftest import set_connections

    _, pigment = connections
    slow = redshift_emulator_factory(running_seconds=30)
    set_connections(monkeypatch, slow, pigment)
    hook = RedshiftDataApiHook()
    statement_id = hook.execute_statement("SELECT 1 AS one")

    assert hook.cancel_statement(statement_id) is True
    assert slow.statement(statement_id)["status"] == "ABORTED"


def test_long_polling_detected(connections):
    assert RedshiftDataApiHook().supports_long_polling is True
