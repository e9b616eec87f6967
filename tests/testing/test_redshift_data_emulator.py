"""Tests of the Redshift Data API emulator through a real boto3 ``redshift-data`` client."""

from __future__ import annotations

import csv
import http.client
import io
import json
import math
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
from botocore.exceptions import ClientError

from airflow_pigment_redshift.testing.redshift_data_emulator import RedshiftDataEmulator

ClientFactory = Callable[[RedshiftDataEmulator | str], Any]
EmulatorFactory = Callable[..., RedshiftDataEmulator]

pytestmark = pytest.mark.usefixtures("aws_isolation")

ORDERS_SETUP_SQL = """
CREATE SCHEMA sales;
CREATE TABLE sales.orders (
    order_id INTEGER,
    order_date DATE,
    amount DECIMAL(12, 2),
    note VARCHAR
);
INSERT INTO sales.orders
SELECT
    i AS order_id,
    DATE '1995-01-01' + CAST(i * 3 AS INTEGER) AS order_date,
    CAST(i * 1.25 AS DECIMAL(12, 2)) AS amount,
    CASE i % 5
        WHEN 0 THEN NULL
        WHEN 1 THEN ''
        WHEN 2 THEN 'plain ' || i
        WHEN 3 THEN 'comma, quote " and ' || i
        ELSE 'line' || chr(10) || 'break ' || i
    END AS note
FROM range(1, 101) AS numbers(i);
"""
CLUSTER = "test-cluster"
DATABASE = "dev"
ORDERS_SQL = "SELECT order_id, order_date, amount, note FROM sales.orders ORDER BY order_id"
# Keeps a statement in STARTED far longer than any test runs, so tests end it with CancelStatement.
HOLD_SECONDS = 3600.0
# A DuckDB query that runs for hours unless it is interrupted.
ENDLESS_SQL = "SELECT count(*) FROM range(100000000000) AS a(x), range(10) AS b(y) WHERE (x * y) % 7 = 3"


@pytest.fixture
def make_emulator(make_redshift_emulator: EmulatorFactory) -> EmulatorFactory:
    """Return a factory of started emulators that contain ``sales.orders`` (100 rows)."""

    def start(**settings: Any) -> RedshiftDataEmulator:
        emulator = make_redshift_emulator(**settings)
        emulator.execute_sql(ORDERS_SETUP_SQL)
        return emulator

    return start


@pytest.fixture
def emulator(make_emulator: EmulatorFactory) -> RedshiftDataEmulator:
    """An emulator with ``sales.orders`` and 7 rows per result page."""
    return make_emulator(page_size_rows=7)


@pytest.fixture
def client_factory(redshift_client_factory: ClientFactory) -> ClientFactory:
    """Return a function that builds a boto3 ``redshift-data`` client for an emulator or endpoint URL."""
    return redshift_client_factory


@pytest.fixture
def client(emulator: RedshiftDataEmulator, client_factory: ClientFactory) -> Any:
    """A boto3 ``redshift-data`` client for the ``emulator`` fixture."""
    return client_factory(emulator)


def execute(client: Any, sql: str, **arguments: Any) -> str:
    """Submit ``sql`` and return the statement id."""
    return client.execute_statement(ClusterIdentifier=CLUSTER, Database=DATABASE, Sql=sql, **arguments)["Id"]


def wait_until_ended(client: Any, statement_id: str) -> dict[str, Any]:
    """Long-poll DescribeStatement until the statement ends; fail if it does not end within 30 s."""
    description = client.describe_statement(Id=statement_id, WaitTimeSeconds=30)
    assert description["Status"] in ("FINISHED", "FAILED", "ABORTED"), description
    return description


def run(client: Any, sql: str, **arguments: Any) -> dict[str, Any]:
    """Submit ``sql``, wait until it ends and return its description."""
    return wait_until_ended(client, execute(client, sql, **arguments))


def read_json_pages(client: Any, statement_id: str) -> list[dict[str, Any]]:
    """Read every GetStatementResult page by following NextToken."""
    pages = [client.get_statement_result(Id=statement_id)]
    while "NextToken" in pages[-1]:
        pages.append(client.get_statement_result(Id=statement_id, NextToken=pages[-1]["NextToken"]))
    return pages


def read_csv_pages(client: Any, statement_id: str) -> list[dict[str, Any]]:
    """Read every GetStatementResultV2 page by following NextToken."""
    pages = [client.get_statement_result_v2(Id=statement_id)]
    while "NextToken" in pages[-1]:
        pages.append(client.get_statement_result_v2(Id=statement_id, NextToken=pages[-1]["NextToken"]))
    return pages


def field_value(field: dict[str, Any]) -> Any:
    """Return the value of a ``Field`` union, None for ``isNull``."""
    assert len(field) == 1, field
    (kind, value), = field.items()
    return None if kind == "isNull" else value


def csv_text(page: dict[str, Any]) -> str:
    """Join the CSVRecords elements of one page."""
    return "".join(record["CSVRecords"] for record in page["Records"])


def as_text(value: Any) -> str | None:
    """Render a DuckDB Python value the way the emulator writes it as text; None stays None."""
    if value is None:
        return None
    return str(value)


def as_field_value(value: Any) -> Any:
    """Return what ``field_value`` yields for a DuckDB Python value: integers as int, other values as text."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return as_text(value)


def error_code(error: pytest.ExceptionInfo[ClientError]) -> str:
    return error.value.response["Error"]["Code"]


def raw_request(emulator: RedshiftDataEmulator, target: str | None, body: bytes) -> tuple[int, dict[str, Any]]:
    """POST a raw AWS JSON 1.1 request, bypassing botocore's client-side validation."""
    connection = http.client.HTTPConnection("127.0.0.1", emulator.port, timeout=60)
    headers = {"Content-Type": "application/x-amz-json-1.1"}
    if target is not None:
        headers["X-Amz-Target"] = target
    try:
        connection.request("POST", "/", body=body, headers=headers)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


# Statement lifecycle


def test_select_finishes(client: Any, emulator: RedshiftDataEmulator) -> None:
    description = run(client, ORDERS_SQL, StatementName="orders-read")

    assert description["Status"] == "FINISHED"
    assert description["HasResultSet"] is True
    assert description["ResultRows"] == 100
    assert description["ResultSize"] > 0
    assert description["Duration"] >= 0
    assert description["QueryString"] == ORDERS_SQL
    assert description["ResultFormat"] == "JSON"
    assert description["ClusterIdentifier"] == CLUSTER
    assert description["Database"] == DATABASE
    assert description["RedshiftQueryId"] > 0
    assert description["UpdatedAt"] >= description["CreatedAt"]
    assert "Error" not in description
    stored = emulator.statement(description["Id"])
    assert stored["sql"] == ORDERS_SQL
    assert stored["statement_name"] == "orders-read"
    assert stored["client_token"]  # botocore fills in ClientToken when the caller leaves it out


def test_status_transitions(client: Any, emulator: RedshiftDataEmulator) -> None:
    description = run(client, "SELECT 1 AS one")

    history = emulator.statement(description["Id"])["status_history"]
    assert history == ["SUBMITTED", "PICKED", "STARTED", "FINISHED"]


def test_submitted_delay_holds_status(make_emulator: EmulatorFactory, client_factory: ClientFactory) -> None:
    emulator = make_emulator(submitted_seconds=HOLD_SECONDS)
    client = client_factory(emulator)
    statement_id = execute(client, "SELECT 1")

    assert client.describe_statement(Id=statement_id)["Status"] == "SUBMITTED"
    assert client.cancel_statement(Id=statement_id)["Status"] is True
    assert client.describe_statement(Id=statement_id)["Status"] == "ABORTED"
    assert emulator.statement(statement_id)["status_history"] == ["SUBMITTED", "ABORTED"]


def test_running_delay_holds_started(make_emulator: EmulatorFactory, client_factory: ClientFactory) -> None:
    emulator = make_emulator(running_seconds=HOLD_SECONDS)
    client = client_factory(emulator)
    statement_id = execute(client, "SELECT 1")

    assert emulator.wait_for_status(statement_id, "STARTED") == "STARTED"
    description = client.describe_statement(Id=statement_id)
    assert description["Status"] == "STARTED"
    assert description["ResultRows"] == -1
    assert description["ResultSize"] == -1
    client.cancel_statement(Id=statement_id)


def test_sql_error_fails(client: Any, emulator: RedshiftDataEmulator) -> None:
    sql = "SELECT * FROM sales.missing_table"
    with pytest.raises(duckdb.Error) as engine_error:
        emulator.query(sql)

    description = run(client, sql)

    assert description["Status"] == "FAILED"
    assert description["Error"].startswith(f"ERROR: {str(engine_error.value).splitlines()[0]}")
    assert description["HasResultSet"] is False
    assert description["ResultRows"] == -1


def test_unknown_database_fails(client: Any) -> None:
    description = wait_until_ended(
        client, client.execute_statement(ClusterIdentifier=CLUSTER, Database="analytics", Sql="SELECT 1")["Id"]
    )

    assert description["Status"] == "FAILED"
    assert description["Error"] == 'ERROR: database "analytics" does not exist'


def test_extra_database_accepted(make_emulator: EmulatorFactory, client_factory: ClientFactory) -> None:
    client = client_factory(make_emulator(databases=("dev", "analytics")))

    statement_id = client.execute_statement(ClusterIdentifier=CLUSTER, Database="analytics", Sql="SELECT 1")["Id"]

    assert wait_until_ended(client, statement_id)["Status"] == "FINISHED"


def test_workgroup_accepted(client: Any) -> None:
    statement_id = client.execute_statement(WorkgroupName="my-workgroup", Database=DATABASE, Sql="SELECT 1")["Id"]
    description = wait_until_ended(client, statement_id)

    assert description["Status"] == "FINISHED"
    assert description["WorkgroupName"] == "my-workgroup"
    assert "ClusterIdentifier" not in description


def test_several_statements_fail(client: Any) -> None:
    description = run(client, "SELECT 1; SELECT 2")

    assert description["Status"] == "FAILED"
    assert description["Error"].startswith("ERROR: ")


def test_insert_reports_changed_rows(client: Any, emulator: RedshiftDataEmulator) -> None:
    description = run(client, "INSERT INTO sales.orders (order_id, note) VALUES (1001, 'a'), (1002, 'b')")

    assert description["Status"] == "FINISHED"
    assert description["HasResultSet"] is False
    assert description["ResultRows"] == 2
    assert description["ResultSize"] == -1
    _, rows = emulator.query("SELECT count(*) FROM sales.orders WHERE order_id > 1000")
    assert rows == [(2,)]


def test_redshift_functions_translated(client: Any, emulator: RedshiftDataEmulator) -> None:
    sql = (
        "SELECT NVL(note, 'none') AS note, DATEADD(day, 1, order_date) AS next_day "
        "FROM sales.orders WHERE order_id = 5"
    )
    expected_names, expected_rows = emulator.query(sql)

    statement_id = run(client, sql)["Id"]
    page = client.get_statement_result(Id=statement_id)

    assert [column["name"] for column in page["ColumnMetadata"]] == expected_names
    assert [[field_value(field) for field in row] for row in page["Records"]] == [
        [as_field_value(value) for value in row] for row in expected_rows
    ]


def test_concurrent_statements(client: Any, emulator: RedshiftDataEmulator) -> None:
    statement_ids = [
        execute(client, f"SELECT count(*) AS n FROM sales.orders WHERE order_id <= {limit}") for limit in range(1, 21)
    ]

    counts = []
    for statement_id in statement_ids:
        wait_until_ended(client, statement_id)
        counts.append(field_value(client.get_statement_result(Id=statement_id)["Records"][0][0]))

    assert counts == list(range(1, 21))


# Named parameters


def test_parameters_filter_rows(client: Any, emulator: RedshiftDataEmulator) -> None:
    sql = (
        "SELECT order_id, order_date FROM sales.orders "
        "WHERE order_date >= :start AND order_id < :last ORDER BY order_id"
    )
    _, all_rows = emulator.query("SELECT order_id, order_date FROM sales.orders ORDER BY order_id")
    start = all_rows[40][1]
    expected_ids = [order_id for order_id, order_date in all_rows if order_date >= start and order_id < 60]

    description = run(
        client,
        sql,
        Parameters=[{"name": "start", "value": start.isoformat()}, {"name": "last", "value": "60"}],
    )
    rows = [row for page in read_json_pages(client, description["Id"]) for row in page["Records"]]

    assert description["Status"] == "FINISHED"
    assert [field_value(row[0]) for row in rows] == expected_ids
    assert description["QueryParameters"] == [
        {"name": "start", "value": start.isoformat()},
        {"name": "last", "value": "60"},
    ]
    assert emulator.statement(description["Id"])["duckdb_sql"].count("$start") == 1


def test_missing_parameter_fails(client: Any) -> None:
    description = run(
        client,
        "SELECT order_id FROM sales.orders WHERE order_date >= :start AND order_id < :last",
        Parameters=[{"name": "start", "value": "1995-03-01"}],
    )

    assert description["Status"] == "FAILED"
    assert description["Error"].startswith("ERROR: ")
    assert '"last"' in description["Error"]


def test_unused_parameter_fails(client: Any) -> None:
    description = run(
        client,
        "SELECT order_id FROM sales.orders WHERE order_date >= :start",
        Parameters=[{"name": "start", "value": "1995-03-01"}, {"name": "extra", "value": "1"}],
    )

    assert description["Status"] == "FAILED"
    assert description["Error"].startswith("ERROR: ")
    assert '"extra"' in description["Error"]


def test_casts_and_literals_not_placeholders(client: Any) -> None:
    description = run(client, "SELECT '7'::int AS number, ':not_a_parameter' AS text")
    row = client.get_statement_result(Id=description["Id"])["Records"][0]

    assert description["Status"] == "FINISHED"
    assert field_value(row[0]) == 7
    assert field_value(row[1]) == ":not_a_parameter"


def test_query_missing_parameter_raises(emulator: RedshiftDataEmulator) -> None:
    with pytest.raises(ValueError, match="start"):
        emulator.query("SELECT 1 WHERE :start IS NOT NULL")


# Pagination and result formats


def test_json_pages_cover_all_rows(client: Any, emulator: RedshiftDataEmulator) -> None:
    _, expected_rows = emulator.query(ORDERS_SQL)

    pages = read_json_pages(client, run(client, ORDERS_SQL)["Id"])
    rows = [[field_value(field) for field in row] for page in pages for row in page["Records"]]

    assert len(pages) == math.ceil(len(expected_rows) / 7)
    assert all(len(page["Records"]) <= 7 for page in pages)
    assert rows == [[as_field_value(value) for value in row] for row in expected_rows]
    assert all("NextToken" in page for page in pages[:-1])
    assert "NextToken" not in pages[-1]
    assert all(page["TotalNumRows"] == 100 for page in pages)
    assert all(len(page["ColumnMetadata"]) == 4 for page in pages)


def test_csv_pages_cover_all_rows(client: Any, emulator: RedshiftDataEmulator) -> None:
    _, expected_rows = emulator.query(ORDERS_SQL)

    description = run(client, ORDERS_SQL, ResultFormat="CSV")
    pages = read_csv_pages(client, description["Id"])
    parsed = list(csv.reader(io.StringIO("".join(csv_text(page) for page in pages))))

    assert description["ResultFormat"] == "CSV"
    assert len(pages) == math.ceil(len(expected_rows) / 7)
    assert parsed[0] == ["order_id", "order_date", "amount", "note"]
    assert parsed[1:] == [[as_text(value) or "" for value in row] for row in expected_rows]
    assert all("NextToken" in page for page in pages[:-1])
    assert "NextToken" not in pages[-1]
    assert all(page["TotalNumRows"] == 100 for page in pages)
    assert all(page["ResultFormat"] == "CSV" for page in pages)
    assert all(len(page["ColumnMetadata"]) == 4 for page in pages)


def test_boto3_paginators(client: Any, emulator: RedshiftDataEmulator) -> None:
    _, expected_rows = emulator.query(ORDERS_SQL)
    json_id = run(client, ORDERS_SQL)["Id"]
    csv_id = run(client, ORDERS_SQL, ResultFormat="CSV")["Id"]

    json_pages = list(client.get_paginator("get_statement_result").paginate(Id=json_id))
    csv_pages = list(client.get_paginator("get_statement_result_v2").paginate(Id=csv_id))
    csv_rows = list(csv.reader(io.StringIO("".join(csv_text(page) for page in csv_pages))))

    assert sum(len(page["Records"]) for page in json_pages) == len(expected_rows)
    assert len(csv_rows) == len(expected_rows) + 1


def test_result_size_matches_csv_text(client: Any) -> None:
    description = run(client, ORDERS_SQL, ResultFormat="CSV")
    pages = read_csv_pages(client, description["Id"])

    assert description["ResultSize"] == sum(len(csv_text(page).encode()) for page in pages)


@pytest.mark.parametrize(
    ("mode", "expected_headers"),
    [("none", [False, False, False]), ("first_page", [True, False, False]), ("every_page", [True, True, True])],
)
def test_csv_header_modes(
    make_emulator: EmulatorFactory, client_factory: ClientFactory, mode: str, expected_headers: list[bool]
) -> None:
    client = client_factory(make_emulator(page_size_rows=7, csv_header=mode))

    sql = "SELECT order_id, amount FROM sales.orders ORDER BY order_id LIMIT 20"
    pages = read_csv_pages(client, run(client, sql, ResultFormat="CSV")["Id"])

    headers = [csv_text(page).startswith("order_id,amount\n") for page in pages]
    assert headers == expected_headers
    assert sum(len(csv_text(page).splitlines()) for page in pages) == 20 + sum(expected_headers)


def test_csv_rows_per_record(make_emulator: EmulatorFactory, client_factory: ClientFactory) -> None:
    client = client_factory(make_emulator(page_size_rows=7, csv_rows_per_record=3, csv_header="none"))

    sql = "SELECT order_id FROM sales.orders ORDER BY order_id"
    pages = read_csv_pages(client, run(client, sql, ResultFormat="CSV")["Id"])

    assert [len(record["CSVRecords"].splitlines()) for record in pages[0]["Records"]] == [3, 3, 1]
    assert [int(line) for page in pages for line in csv_text(page).splitlines()] == list(range(1, 101))


def test_empty_result_has_metadata(client: Any) -> None:
    description = run(client, "SELECT order_id, note FROM sales.orders WHERE order_id < 0")
    page = client.get_statement_result(Id=description["Id"])

    assert description["HasResultSet"] is True
    assert description["ResultRows"] == 0
    assert page["Records"] == []
    assert page["TotalNumRows"] == 0
    assert [column["name"] for column in page["ColumnMetadata"]] == ["order_id", "note"]
    assert "NextToken" not in page


def test_null_and_empty_string_json(client: Any) -> None:
    page = client.get_statement_result(
        Id=run(client, "SELECT CAST(NULL AS VARCHAR) AS missing, '' AS empty, 'x' AS present")["Id"]
    )

    assert page["Records"][0][0] == {"isNull": True}
    assert page["Records"][0][1] == {"stringValue": ""}
    assert page["Records"][0][2] == {"stringValue": "x"}


def test_null_and_empty_string_csv(make_emulator: EmulatorFactory, client_factory: ClientFactory) -> None:
    client = client_factory(make_emulator(csv_header="none"))

    page = client.get_statement_result_v2(
        Id=run(client, "SELECT CAST(NULL AS VARCHAR) AS missing, '' AS empty, 'x' AS present", ResultFormat="CSV")["Id"]
    )

    assert csv_text(page) == ',"",x\n'


def test_csv_null_text_setting(make_emulator: EmulatorFactory, client_factory: ClientFactory) -> None:
    client = client_factory(make_emulator(csv_header="none", csv_null="\\N"))

    page = client.get_statement_result_v2(
        Id=run(client, "SELECT CAST(NULL AS INTEGER) AS missing, 1 AS present", ResultFormat="CSV")["Id"]
    )

    assert csv_text(page) == "\\N,1\n"


def test_csv_quoting_matches_csv_module(make_emulator: EmulatorFactory, client_factory: ClientFactory) -> None:
    emulator = make_emulator(csv_header="none")
    client = client_factory(emulator)
    emulator.execute_sql(
        "CREATE TABLE sales.texts AS SELECT * FROM (VALUES (1, 'plain'), (2, 'a,b'), (3, 'say \"hi\"'), "
        "(4, 'two' || chr(10) || 'lines'), (5, ' padded '), (6, 'tab' || chr(9)), (7, 'ünïcödé')) AS t(id, text)"
    )
    sql = "SELECT id, text FROM sales.texts ORDER BY id"
    _, rows = emulator.query(sql)
    expected = io.StringIO()
    csv.writer(expected, lineterminator="\n").writerows(rows)

    page = client.get_statement_result_v2(Id=run(client, sql, ResultFormat="CSV")["Id"])

    assert csv_text(page) == expected.getvalue()


def test_csv_carriage_return_quoted(make_emulator: EmulatorFactory, client_factory: ClientFactory) -> None:
    client = client_factory(make_emulator(csv_header="none"))

    statement_id = run(client, "SELECT 'a' || chr(13) || 'b' AS text", ResultFormat="CSV")["Id"]
    page = client.get_statement_result_v2(Id=statement_id)

    assert list(csv.reader(io.StringIO(csv_text(page)))) == [["a\rb"]]


def test_decimals_keep_scale(client: Any, emulator: RedshiftDataEmulator) -> None:
    sql = "SELECT CAST(12.5 AS DECIMAL(10, 2)) AS price, CAST(3 AS NUMERIC(8, 3)) AS weight"
    _, expected_rows = emulator.query(sql)

    page = client.get_statement_result(Id=run(client, sql)["Id"])

    assert [field_value(field) for field in page["Records"][0]] == [str(value) for value in expected_rows[0]]
    assert page["Records"][0][0] == {"stringValue": "12.50"}
    assert page["Records"][0][1] == {"stringValue": "3.000"}
    assert [Decimal(field_value(field)) for field in page["Records"][0]] == list(expected_rows[0])
    assert (page["ColumnMetadata"][0]["precision"], page["ColumnMetadata"][0]["scale"]) == (10, 2)


TYPED_COLUMNS_SQL = """
SELECT
    CAST(1 AS SMALLINT) AS c_smallint,
    CAST(2 AS INTEGER) AS c_integer,
    CAST(3 AS BIGINT) AS c_bigint,
    CAST(4 AS HUGEINT) AS c_hugeint,
    CAST(1.5 AS REAL) AS c_real,
    CAST(2.25 AS DOUBLE PRECISION) AS c_double,
    CAST(7.25 AS DECIMAL(9, 3)) AS c_decimal,
    CAST('text' AS VARCHAR) AS c_varchar,
    TRUE AS c_boolean,
    CAST('2024-02-29' AS DATE) AS c_date,
    CAST('13:14:15' AS TIME) AS c_time,
    CAST('2024-02-29 13:14:15.25' AS TIMESTAMP) AS c_timestamp,
    CAST('2024-02-29 13:14:15+02:00' AS TIMESTAMPTZ) AS c_timestamptz
"""

DUCKDB_ONLY_COLUMNS_SQL = "SELECT '\\xCA\\xFE'::BLOB AS c_blob, '{\"a\": [1, 2]}'::JSON AS c_json"


def test_column_type_names(client: Any) -> None:
    page = client.get_statement_result(Id=run(client, TYPED_COLUMNS_SQL)["Id"])

    type_names = {column["name"]: column["typeName"] for column in page["ColumnMetadata"]}
    assert type_names == {
        "c_smallint": "int2",
        "c_integer": "int4",
        "c_bigint": "int8",
        "c_hugeint": "numeric",
        "c_real": "float4",
        "c_double": "float8",
        "c_decimal": "numeric",
        "c_varchar": "varchar",
        "c_boolean": "bool",
        "c_date": "date",
        "c_time": "time",
        "c_timestamp": "timestamp",
        "c_timestamptz": "timestamptz",
    }


def test_column_metadata_fields(client: Any) -> None:
    page = client.get_statement_result(Id=run(client, TYPED_COLUMNS_SQL)["Id"])
    columns = {column["name"]: column for column in page["ColumnMetadata"]}

    assert columns["c_decimal"]["precision"] == 9
    assert columns["c_decimal"]["scale"] == 3
    assert columns["c_integer"]["isSigned"] is True
    assert columns["c_varchar"]["isCaseSensitive"] is True
    assert columns["c_varchar"]["label"] == "c_varchar"
    assert all(column["nullable"] == 1 for column in columns.values())
    assert all(column["isCurrency"] is False for column in columns.values())


def test_field_values_by_type(client: Any) -> None:
    page = client.get_statement_result(Id=run(client, TYPED_COLUMNS_SQL)["Id"])
    names = [column["name"] for column in page["ColumnMetadata"]]
    fields = dict(zip(names, page["Records"][0]))

    assert fields["c_smallint"] == {"longValue": 1}
    assert fields["c_bigint"] == {"longValue": 3}
    assert fields["c_hugeint"] == {"stringValue": "4"}
    assert fields["c_real"] == {"doubleValue": 1.5}
    assert fields["c_double"] == {"doubleValue": 2.25}
    assert fields["c_boolean"] == {"booleanValue": True}
    assert fields["c_date"] == {"stringValue": "2024-02-29"}
    assert fields["c_time"] == {"stringValue": "13:14:15"}
    assert fields["c_timestamp"] == {"stringValue": "2024-02-29 13:14:15.25"}
    assert fields["c_timestamptz"] == {"stringValue": "2024-02-29 11:14:15+00"}


def test_blob_and_json_columns(client: Any, emulator: RedshiftDataEmulator) -> None:
    emulator.execute_sql(f"CREATE TABLE sales.binary AS {DUCKDB_ONLY_COLUMNS_SQL}")

    page = client.get_statement_result(Id=run(client, "SELECT c_blob, c_json FROM sales.binary")["Id"])

    assert [column["typeName"] for column in page["ColumnMetadata"]] == ["varbyte", "super"]
    assert page["Records"][0][0] == {"stringValue": "cafe"}
    assert json.loads(field_value(page["Records"][0][1])) == {"a": [1, 2]}


def test_special_characters_round_trip(client: Any, emulator: RedshiftDataEmulator) -> None:
    sql = "SELECT 'quote \" backslash \\ tab ' || chr(9) || ' newline ' || chr(10) || ' unicode ü €' AS text"
    _, expected_rows = emulator.query(sql)

    page = client.get_statement_result(Id=run(client, sql)["Id"])

    assert field_value(page["Records"][0][0]) == expected_rows[0][0]


def test_float_special_values(client: Any) -> None:
    page = client.get_statement_result(
        Id=run(client, "SELECT 'NaN'::float8 AS nan, 'Infinity'::float8 AS inf, '-Infinity'::float8 AS neg")["Id"]
    )
    values = [field_value(field) for field in page["Records"][0]]

    assert math.isnan(values[0])
    assert values[1] == math.inf
    assert values[2] == -math.inf


# Long polling


def test_execute_wait_returns_status(client: Any) -> None:
    response = client.execute_statement(
        ClusterIdentifier=CLUSTER, Database=DATABASE, Sql="SELECT 1 AS one", WaitTimeSeconds=30
    )

    assert response["Status"] == "FINISHED"
    assert response["HasResultSet"] is True
    assert response["RedshiftPid"] > 0


def test_wait_returns_when_statement_ends(make_emulator: EmulatorFactory, client_factory: ClientFactory) -> None:
    emulator = make_emulator(running_seconds=HOLD_SECONDS)
    client = client_factory(emulator)
    poll_client = client_factory(emulator)
    statement_id = execute(client, "SELECT 1")
    emulator.wait_for_status(statement_id, "STARTED")
    request_sent = threading.Event()
    poll_client.meta.events.register(
        "before-send.redshift-data.DescribeStatement", lambda **_: request_sent.set()
    )
    descriptions: list[dict[str, Any]] = []
    poller = threading.Thread(
        target=lambda: descriptions.append(poll_client.describe_statement(Id=statement_id, WaitTimeSeconds=30))
    )
    poller.start()
    assert request_sent.wait(30)

    client.cancel_statement(Id=statement_id)
    poller.join(60)

    # A poll that ended because its 30 s wait ran out would still report STARTED.
    assert not poller.is_alive()
    assert descriptions[0]["Status"] == "ABORTED"


def test_long_poll_does_not_block(make_emulator: EmulatorFactory, client_factory: ClientFactory) -> None:
    emulator = make_emulator(running_seconds=HOLD_SECONDS)
    client = client_factory(emulator)
    poll_client = client_factory(emulator)
    statement_id = execute(client, "SELECT 1", StatementName="held")
    emulator.wait_for_status(statement_id, "STARTED")
    request_sent = threading.Event()
    poll_client.meta.events.register(
        "before-send.redshift-data.DescribeStatement", lambda **_: request_sent.set()
    )
    poller = threading.Thread(target=lambda: poll_client.describe_statement(Id=statement_id, WaitTimeSeconds=30))
    poller.start()
    assert request_sent.wait(30)

    listed = client.list_statements(StatementName="held")

    assert poller.is_alive()
    assert [statement["Id"] for statement in listed["Statements"]] == [statement_id]
    client.cancel_statement(Id=statement_id)
    poller.join(60)


def test_wait_time_out_of_range(client: Any, emulator: RedshiftDataEmulator) -> None:
    statement_id = run(client, "SELECT 1")["Id"]

    with pytest.raises(ClientError) as too_long:
        client.describe_statement(Id=statement_id, WaitTimeSeconds=31)
    status, body = raw_request(
        emulator, "RedshiftData.DescribeStatement", json.dumps({"Id": statement_id, "WaitTimeSeconds": 0}).encode()
    )

    assert error_code(too_long) == "ValidationException"
    assert status == 400
    assert body["__type"] == "ValidationException"


# Idempotency, cancellation, listing


def test_client_token_reuses_statement(client: Any, emulator: RedshiftDataEmulator) -> None:
    first = execute(client, "INSERT INTO sales.orders (order_id) VALUES (5000)", ClientToken="token-1")
    wait_until_ended(client, first)
    second = execute(client, "INSERT INTO sales.orders (order_id) VALUES (5000)", ClientToken="token-1")

    assert second == first
    assert len(emulator.statements) == 1
    assert [entry["operation"] for entry in emulator.requests].count("ExecuteStatement") == 2
    _, rows = emulator.query("SELECT count(*) FROM sales.orders WHERE order_id = 5000")
    assert rows == [(1,)]


def test_client_token_conflict_rejected(make_emulator: EmulatorFactory, client_factory: ClientFactory) -> None:
    client = client_factory(make_emulator(client_token_conflict="reject"))
    execute(client, "SELECT 1", ClientToken="token-2")

    with pytest.raises(ClientError) as error:
        execute(client, "SELECT 2", ClientToken="token-2")

    assert error_code(error) == "ValidationException"


def test_client_token_expires(make_emulator: EmulatorFactory, client_factory: ClientFactory) -> None:
    clock = [1_000_000.0]
    client = client_factory(make_emulator(client_token_retention_seconds=60, now=lambda: clock[0]))
    first = execute(client, "SELECT 1", ClientToken="token-3")
    clock[0] += 61

    second = execute(client, "SELECT 1", ClientToken="token-3")

    assert second != first


def test_cancel_interrupts_query(client: Any, emulator: RedshiftDataEmulator) -> None:
    statement_id = execute(client, ENDLESS_SQL)
    emulator.wait_for_status(statement_id, "STARTED")

    response = client.cancel_statement(Id=statement_id)
    emulator.join_statement(statement_id, timeout=30)

    assert response["Status"] is True
    assert client.describe_statement(Id=statement_id)["Status"] == "ABORTED"
    assert emulator.statement(statement_id)["status_history"][-1] == "ABORTED"


def test_cancel_finished_returns_false(client: Any) -> None:
    statement_id = run(client, "SELECT 1")["Id"]

    response = client.cancel_statement(Id=statement_id)

    assert response["Status"] is False
    assert client.describe_statement(Id=statement_id)["Status"] == "FINISHED"


def test_cancel_unknown_not_found(client: Any) -> None:
    with pytest.raises(ClientError) as error:
        client.cancel_statement(Id="00000000-0000-4000-8000-000000000000")

    assert error_code(error) == "ResourceNotFoundException"


def test_list_by_name_prefix(client: Any) -> None:
    load_ids = [execute(client, "SELECT 1", StatementName=f"load-{index}") for index in range(3)]
    execute(client, "SELECT 2", StatementName="other")

    listed = client.list_statements(StatementName="load-")

    assert sorted(statement["Id"] for statement in listed["Statements"]) == sorted(load_ids)
    assert {statement["StatementName"] for statement in listed["Statements"]} == {"load-0", "load-1", "load-2"}


def test_list_by_status(client: Any) -> None:
    finished_id = run(client, "SELECT 1")["Id"]
    failed_id = run(client, "SELECT * FROM sales.missing_table")["Id"]

    failed = client.list_statements(Status="FAILED")["Statements"]

    assert [statement["Id"] for statement in failed] == [failed_id]
    assert finished_id not in [statement["Id"] for statement in failed]


def test_list_pagination(client: Any) -> None:
    statement_ids = [execute(client, "SELECT 1", StatementName=f"page-{index}") for index in range(5)]

    first = client.list_statements(StatementName="page-", MaxResults=2)
    second = client.list_statements(StatementName="page-", MaxResults=2, NextToken=first["NextToken"])
    third = client.list_statements(StatementName="page-", MaxResults=2, NextToken=second["NextToken"])
    listed = [statement["Id"] for page in (first, second, third) for statement in page["Statements"]]

    assert listed == list(reversed(statement_ids))
    assert "NextToken" not in third


def test_list_max_results_over_limit(client: Any) -> None:
    with pytest.raises(ClientError) as error:
        client.list_statements(MaxResults=101)

    assert error_code(error) == "ValidationException"


# Request validation and errors


@pytest.mark.parametrize(
    "arguments",
    [
        pytest.param({"ClusterIdentifier": "Bad_Cluster", "Database": DATABASE}, id="cluster-pattern"),
        pytest.param({"ClusterIdentifier": "a" * 64, "Database": DATABASE}, id="cluster-length"),
        pytest.param({"Database": DATABASE}, id="no-cluster-or-workgroup"),
        pytest.param({"ClusterIdentifier": CLUSTER}, id="no-database"),
        pytest.param(
            {"ClusterIdentifier": CLUSTER, "WorkgroupName": "my-workgroup", "Database": DATABASE}, id="both-targets"
        ),
        pytest.param({"ClusterIdentifier": CLUSTER, "Database": DATABASE, "StatementName": "n" * 2049}, id="name"),
        pytest.param({"ClusterIdentifier": CLUSTER, "Database": DATABASE, "ClientToken": "t" * 65}, id="token"),
    ],
)
def test_execute_validation(client: Any, arguments: dict[str, Any]) -> None:
    with pytest.raises(ClientError) as error:
        client.execute_statement(Sql="SELECT 1", **arguments)

    assert error_code(error) == "ValidationException"


def test_sql_size_limit(client: Any, emulator: RedshiftDataEmulator) -> None:
    padding = "x" * (100 * 1024)

    with pytest.raises(ClientError) as error:
        execute(client, f"SELECT '{padding}'")

    assert error_code(error) == "ValidationException"
    assert emulator.statements == []


def test_malformed_id_rejected(client: Any) -> None:
    with pytest.raises(ClientError) as error:
        client.describe_statement(Id="not-a-statement-id")

    assert error_code(error) == "ValidationException"


def test_unknown_id_not_found(client: Any) -> None:
    with pytest.raises(ClientError) as error:
        client.describe_statement(Id="00000000-0000-4000-8000-000000000000")

    assert error_code(error) == "ResourceNotFoundException"
    assert error.value.response["Error"]["Message"] == "Query does not exist."


def test_result_expires(make_emulator: EmulatorFactory, client_factory: ClientFactory) -> None:
    clock = [2_000_000.0]
    client = client_factory(make_emulator(result_retention_seconds=3600, now=lambda: clock[0]))
    statement_id = run(client, "SELECT 1")["Id"]
    clock[0] += 3601

    with pytest.raises(ClientError) as error:
        client.get_statement_result(Id=statement_id)

    assert error_code(error) == "ResourceNotFoundException"


def test_active_statement_limit(make_emulator: EmulatorFactory, client_factory: ClientFactory) -> None:
    client = client_factory(make_emulator(max_active_statements=1, submitted_seconds=HOLD_SECONDS))
    held_id = execute(client, "SELECT 1")

    with pytest.raises(ClientError) as error:
        execute(client, "SELECT 2")

    assert error_code(error) == "ActiveStatementsExceededException"
    client.cancel_statement(Id=held_id)


def test_result_format_mismatch(client: Any) -> None:
    json_id = run(client, "SELECT 1")["Id"]
    csv_id = run(client, "SELECT 1", ResultFormat="CSV")["Id"]

    with pytest.raises(ClientError) as csv_read_of_json:
        client.get_statement_result_v2(Id=json_id)
    with pytest.raises(ClientError) as json_read_of_csv:
        client.get_statement_result(Id=csv_id)

    assert error_code(csv_read_of_json) == "ValidationException"
    assert error_code(json_read_of_csv) == "ValidationException"


def test_result_without_result_set(client: Any) -> None:
    statement_id = run(client, "CREATE TABLE sales.empty_table (id INTEGER)")["Id"]

    with pytest.raises(ClientError) as error:
        client.get_statement_result(Id=statement_id)

    assert error_code(error) == "ValidationException"
    assert error.value.response["Error"]["Message"] == "Query does not have result"


def test_result_of_running_statement(make_emulator: EmulatorFactory, client_factory: ClientFactory) -> None:
    emulator = make_emulator(running_seconds=HOLD_SECONDS)
    client = client_factory(emulator)
    statement_id = execute(client, "SELECT 1")
    emulator.wait_for_status(statement_id, "STARTED")

    with pytest.raises(ClientError) as error:
        client.get_statement_result(Id=statement_id)

    assert error_code(error) == "ValidationException"
    client.cancel_statement(Id=statement_id)


def test_result_of_failed_statement(client: Any) -> None:
    statement_id = run(client, "SELECT * FROM sales.missing_table")["Id"]

    with pytest.raises(ClientError) as error:
        client.get_statement_result(Id=statement_id)

    assert error_code(error) == "ValidationException"


def test_invalid_next_token(client: Any) -> None:
    first_id = run(client, ORDERS_SQL)["Id"]
    second_id = run(client, ORDERS_SQL)["Id"]
    foreign_token = client.get_statement_result(Id=second_id)["NextToken"]

    with pytest.raises(ClientError) as garbage:
        client.get_statement_result(Id=first_id, NextToken="not-a-token")
    with pytest.raises(ClientError) as foreign:
        client.get_statement_result(Id=first_id, NextToken=foreign_token)

    assert error_code(garbage) == "ValidationException"
    assert error_code(foreign) == "ValidationException"


def test_unknown_operation(emulator: RedshiftDataEmulator) -> None:
    status, body = raw_request(emulator, "RedshiftData.DropEverything", b"{}")

    assert status == 400
    assert body["__type"] == "UnknownOperationException"


def test_missing_target(emulator: RedshiftDataEmulator) -> None:
    status, body = raw_request(emulator, None, b"{}")

    assert status == 400
    assert body["__type"] == "UnknownOperationException"


def test_malformed_body(emulator: RedshiftDataEmulator) -> None:
    status, body = raw_request(emulator, "RedshiftData.DescribeStatement", b"{not json")

    assert status == 400
    assert body["__type"] == "SerializationException"


def test_sessions_rejected(client: Any) -> None:
    with pytest.raises(ClientError) as error:
        execute(client, "SELECT 1", SessionKeepAliveSeconds=60)

    assert error_code(error) == "ValidationException"


# HTTP server


def test_keep_alive(emulator: RedshiftDataEmulator) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", emulator.port, timeout=60)
    headers = {"X-Amz-Target": "RedshiftData.ListStatements", "Content-Type": "application/x-amz-json-1.1"}
    try:
        connection.request("POST", "/", body=b"{}", headers=headers)
        first = connection.getresponse()
        first.read()
        first_socket = connection.sock
        connection.request("POST", "/", body=b"{}", headers=headers)
        second = connection.getresponse()
        second.read()

        assert first.status == 200
        assert second.status == 200
        assert first_socket is not None
        assert connection.sock is first_socket
        assert first.getheader("Content-Type") == "application/x-amz-json-1.1"
    finally:
        connection.close()


def test_non_loopback_host_rejected() -> None:
    with pytest.raises(ValueError, match="loopback"):
        RedshiftDataEmulator(host="0.0.0.0")


def test_url_before_start() -> None:
    emulator = RedshiftDataEmulator()
    try:
        with pytest.raises(RuntimeError):
            _ = emulator.url
    finally:
        emulator.stop()


def test_file_database(tmp_path: Path, client_factory: ClientFactory) -> None:
    database = tmp_path / "warehouse.duckdb"
    with RedshiftDataEmulator(database) as emulator:
        emulator.execute_sql("CREATE TABLE numbers AS SELECT * FROM range(5) AS t(n)")
        client = client_factory(emulator)
        description = run(client, "INSERT INTO numbers VALUES (5)")

    reopened = duckdb.connect(str(database))
    try:
        count = reopened.execute("SELECT count(*) FROM numbers").fetchone()
    finally:
        reopened.close()
    assert description["Status"] == "FINISHED"
    assert count == (6,)


# Command line


def test_cli_serves_until_sigterm(tmp_path: Path, client_factory: ClientFactory) -> None:
    ready_file = tmp_path / "ready.json"
    command = [
        sys.executable,
        "-m",
        "airflow_pigment_redshift.testing.redshift_data_emulator",
        "--duckdb",
        str(tmp_path / "cli.duckdb"),
        "--database",
        "dev",
        "--database",
        "analytics",
        "--ready-file",
        str(ready_file),
    ]
    with (tmp_path / "stderr.log").open("w") as stderr:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, text=True)
    # Kills the process if it never prints its banner, so that readline cannot block forever.
    watchdog = threading.Timer(60, process.kill)
    watchdog.start()
    try:
        banner = process.stdout.readline() if process.stdout is not None else ""
        watchdog.cancel()
        ready = json.loads(ready_file.read_text())
        client = client_factory(ready["url"])
        statement_id = client.execute_statement(
            ClusterIdentifier=CLUSTER, Database="analytics", Sql="SELECT 42 AS answer", WaitTimeSeconds=30
        )["Id"]
        page = client.get_statement_result(Id=statement_id)

        process.send_signal(signal.SIGTERM)
        return_code = process.wait(timeout=60)
    finally:
        watchdog.cancel()
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()

    assert banner.strip() == f"Redshift Data API emulator listening on {ready['url']}"
    assert ready["pid"] == process.pid
    assert ready["url"].startswith("http://127.0.0.1:")
    assert page["Records"] == [[{"longValue": 42}]]
    assert return_code == 0
    assert not (tmp_path / "ready.json.tmp").exists()


def test_cli_rejects_public_host(tmp_path: Path) -> None:
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "airflow_pigment_redshift.testing.redshift_data_emulator",
            "--duckdb",
            str(tmp_path / "cli.duckdb"),
            "--host",
            "0.0.0.0",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert completed.returncode == 2
    assert "loopback" in completed.stderr
