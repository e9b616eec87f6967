"""Bad and hostile task input: each case fails with a clear error and nothing reaches Pigment.

Cases of the first table fail before the statement is submitted, so the Redshift emulator
records no statement. Cases of the second table fail on the result (its columns or values)
after the read-only query ran but before the push. Cases of the third table are hostile or
broken Pigment responses. In every case Pigment's ledger stays empty.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from airflow_pigment_redshift.exceptions import PigmentRequestError
from airflow_pigment_redshift.operators.redshift_to_pigment import RedshiftToPigmentOperator
from airflow_pigment_redshift.validation import (
    MAX_SQL_BYTES,
    InvalidTaskInputError,
    ResultColumnsError,
    ResultValueError,
)
from tests.conftest import LINE_ITEMS_CONFIGURATION_ID, LINE_ITEMS_HEADER, LINE_ITEMS_SQL, PIGMENT_API_KEY
from tests.helpers import serve, task_context

DAY = {"interval_start": "1995-03-01", "interval_end": "1995-03-02"}
UUID = LINE_ITEMS_CONFIGURATION_ID
UNKNOWN_CONFIGURATION_ID = "00000000-0000-4000-8000-000000000000"


@dataclass(frozen=True)
class BadInput:
    """One corpus case.

    :param case_id: pytest id.
    :param arguments: operator arguments that replace the defaults (a working import).
    :param error: expected exception type.
    :param named: text the error message must contain, usually the offending value.
    """

    case_id: str
    arguments: dict[str, Any] = field(default_factory=dict)
    error: type[Exception] = InvalidTaskInputError
    named: str = ""


def run_operator(**arguments: Any) -> dict[str, Any]:
    settings = {
        "task_id": "import_line_items",
        "sql": LINE_ITEMS_SQL,
        "parameters": DAY,
        "configuration_id": UUID,
        "deferrable": False,
        "poll_interval": 1,
        "import_poll_interval": 0.05,
        **arguments,
    }
    return RedshiftToPigmentOperator(**settings).execute(task_context())


def sql_case(case_id: str, sql: str, named: str, **arguments: Any) -> BadInput:
    return BadInput(case_id, {"sql": sql, "parameters": None, **arguments}, named=named)


def parameter_case(case_id: str, value: Any, named: str = "interval_start") -> BadInput:
    return BadInput(case_id, {"parameters": {**DAY, "interval_start": value}}, named=named)


BEFORE_SUBMISSION = [
    # SQL text
    sql_case("sql-empty", "", "''"),
    sql_case("sql-whitespace", "  \n\t ", "'  \\n\\t '"),
    sql_case("sql-only-semicolon", ";", "';'"),
    sql_case("sql-only-comment", "-- nothing here", "nothing here"),
    sql_case("sql-two-selects", "SELECT 1; SELECT 2", "2 statements"),
    sql_case("sql-select-then-drop", "SELECT 1 AS a; DROP TABLE tpch.lineitem", "DROP TABLE"),
    sql_case("sql-insert", "INSERT INTO tpch.nation VALUES (99, 'X', 0, '')", "INSERT"),
    sql_case("sql-update", "UPDATE tpch.nation SET n_name = 'X'", "UPDATE"),
    sql_case("sql-delete", "DELETE FROM tpch.nation", "DELETE"),
    sql_case("sql-merge", "MERGE INTO tpch.nation USING tpch.region r ON 1 = 1 WHEN MATCHED THEN DELETE", "MERGE"),
    sql_case("sql-create-table", "CREATE TABLE copy_of_nation AS SELECT * FROM tpch.nation", "CREATE"),
    sql_case("sql-drop", "DROP TABLE tpch.lineitem", "DROP"),
    sql_case("sql-alter", "ALTER TABLE tpch.nation ADD COLUMN n_extra INT", "ALTER"),
    sql_case("sql-truncate", "TRUNCATE tpch.nation", "TRUNCATE"),
    sql_case("sql-copy", "COPY tpch.nation FROM 's3://bucket/nation' IAM_ROLE 'arn:aws:iam::1:role/r'", "COPY"),
    sql_case("sql-unload", "UNLOAD ('SELECT 1') TO 's3://bucket/out' IAM_ROLE 'arn:aws:iam::1:role/r'", "UNLOAD"),
    sql_case("sql-grant", "GRANT SELECT ON tpch.nation TO public", "GRANT"),
    sql_case("sql-call", "CALL refresh_sales()", "CALL"),
    sql_case("sql-select-into", "SELECT * INTO new_nation FROM tpch.nation", "SELECT INTO"),
    sql_case("sql-cte-delete", "WITH gone AS (DELETE FROM tpch.nation RETURNING *) SELECT * FROM gone", "DELETE"),
    sql_case("sql-vacuum", "VACUUM tpch.nation", "VACUUM"),
    sql_case("sql-set", "SET search_path TO tpch", "SET"),
    sql_case("sql-begin", "BEGIN", "BEGIN"),
    sql_case("sql-lock", "LOCK tpch.nation", "LOCK"),
    sql_case("sql-analyze", "ANALYZE tpch.nation", "ANALYZE"),
    sql_case("sql-too-large", "SELECT 1 AS a -- " + "x" * MAX_SQL_BYTES, f"{MAX_SQL_BYTES + 17} bytes"),
    sql_case("sql-too-large-multibyte", "SELECT '" + "é" * (MAX_SQL_BYTES // 2) + "' AS a", "bytes"),
    sql_case("sql-nul-character", "SELECT 1 AS a\x00", "NUL"),
    BadInput("sql-not-text", {"sql": 42, "parameters": None}, named="42"),
    # Placeholders and parameters
    BadInput("placeholder-without-parameter", {"parameters": {"interval_start": "1995-03-01"}}, named=":interval_end"),
    BadInput("placeholders-without-parameters", {"parameters": None}, named=":interval_start"),
    BadInput("parameter-without-placeholder", {"parameters": {**DAY, "region": "EUROPE"}}, named="'region'"),
    BadInput("parameters-for-sql-without-placeholder", {"sql": "SELECT 1 AS a", "parameters": {"a": "1"}}, named="'a'"),
    BadInput("placeholder-only-in-string", {"sql": "SELECT ':day' AS a", "parameters": {"day": "1"}}, named="'day'"),
    BadInput("parameter-name-with-dash", {"parameters": {**DAY, "interval-start": "1"}}, named="'interval-start'"),
    BadInput("parameter-name-not-text", {"parameters": {**DAY, 1: "1"}}, named="1"),
    BadInput("parameters-as-list", {"parameters": [("interval_start", "1995-03-01")]}, named="interval_start"),
    BadInput("parameters-as-text", {"parameters": "interval_start=1995-03-01"}, named="interval_start=1995-03-01"),
    parameter_case("parameter-none", None),
    parameter_case("parameter-list", ["1995-03-01"], named="['1995-03-01']"),
    parameter_case("parameter-dict", {"day": "1995-03-01"}, named="{'day': '1995-03-01'}"),
    parameter_case("parameter-set", {"1995-03-01"}, named="{'1995-03-01'}"),
    parameter_case("parameter-tuple", ("1995", "03"), named="('1995', '03')"),
    parameter_case("parameter-bytes", b"1995-03-01", named="b'1995-03-01'"),
    parameter_case("parameter-object", object(), named="object"),
    parameter_case("parameter-true", True, named="True"),
    parameter_case("parameter-empty-text", ""),
    parameter_case("parameter-nul-character", "1995-03-01\x00", named="'1995-03-01\\x00'"),
    parameter_case("parameter-nan", float("nan"), named="nan"),
    parameter_case("parameter-infinite-decimal", Decimal("Infinity"), named="Decimal('Infinity')"),
    # Pigment import configuration id
    BadInput("configuration-id-not-uuid", {"configuration_id": "not-a-uuid"}, named="'not-a-uuid'"),
    BadInput("configuration-id-empty", {"configuration_id": ""}, named="''"),
    BadInput("configuration-id-leading-space", {"configuration_id": f" {UUID}"}, named=f"' {UUID}'"),
    BadInput("configuration-id-trailing-newline", {"configuration_id": f"{UUID}\n"}, named=f"'{UUID}\\n'"),
    BadInput("configuration-id-no-hyphens", {"configuration_id": UUID.replace("-", "")}, named=UUID.replace("-", "")),
    BadInput("configuration-id-braces", {"configuration_id": f"{{{UUID}}}"}, named=f"{{{UUID}}}"),
    BadInput("configuration-id-urn", {"configuration_id": f"urn:uuid:{UUID}"}, named=f"urn:uuid:{UUID}"),
    BadInput("configuration-id-truncated", {"configuration_id": UUID[:-1]}, named=UUID[:-1]),
    BadInput("configuration-id-path", {"configuration_id": f"{UUID}/../other"}, named="/../other"),
    BadInput("configuration-id-query", {"configuration_id": f"{UUID}&dryRun=true"}, named="&dryRun=true"),
    BadInput("configuration-id-none", {"configuration_id": None}, named="None"),
    # CSV dialect and header arguments
    BadInput("delimiter-pipe", {"csv_delimiter": "|"}, named="'|'"),
    BadInput("delimiter-tab", {"csv_delimiter": "\t"}, named="'\\t'"),
    BadInput("delimiter-two-characters", {"csv_delimiter": ",,"}, error=ValueError, named="',,'"),
    BadInput("quote-backtick", {"csv_quote_char": "`"}, named="'`'"),
    BadInput("quote-empty", {"csv_quote_char": ""}, error=ValueError, named="''"),
    BadInput("quote-same-as-delimiter", {"csv_quote_char": ","}, error=ValueError, named="','"),
    BadInput("header-as-text", {"csv_header": "order_key"}, named="'order_key'"),
    BadInput("header-empty-name", {"csv_header": [*LINE_ITEMS_HEADER[:-1], " "]}, named="' '"),
    BadInput("header-repeated-name", {"csv_header": [*LINE_ITEMS_HEADER[:-1], "price"]}, named="['price']"),
    BadInput("header-rename-to-none", {"csv_header": {"price": None}}, named="None"),
    BadInput("expected-columns-as-text", {"expected_columns": "order_key,price"}, named="'order_key,price'"),
    BadInput("expected-columns-repeated", {"expected_columns": ["a", "a"]}, named="['a']"),
    # Encoding, waits and limits
    BadInput("encoding-unknown", {"csv_encoding": "utf-9"}, named="'utf-9'"),
    BadInput("encoding-not-text", {"csv_encoding": "base64"}, named="'base64'"),
    BadInput("poll-interval-zero", {"poll_interval": 0}, named="poll_interval 0"),
    BadInput("import-poll-interval-negative", {"import_poll_interval": -1}, named="import_poll_interval -1"),
    BadInput("statement-timeout-nan", {"statement_timeout": float("nan")}, named="statement_timeout nan"),
    BadInput("import-timeout-text", {"import_timeout": "3600"}, named="import_timeout '3600'"),
    BadInput("max-skipped-rows-negative", {"max_skipped_rows": -1}, named="max_skipped_rows -1"),
    BadInput("max-skipped-rows-fraction", {"max_skipped_rows": 0.5}, named="max_skipped_rows 0.5"),
]


@pytest.mark.parametrize("case", BEFORE_SUBMISSION, ids=[case.case_id for case in BEFORE_SUBMISSION])
def test_rejected_before_submission(connections, case: BadInput):
    redshift, pigment = connections

    with pytest.raises(case.error) as raised:
        run_operator(**case.arguments)

    assert case.named in str(raised.value)
    assert redshift.statements == []
    assert pigment.ledger() == []


ON_RESULT = [
    BadInput(
        "result-repeated-column",
        {"sql": "SELECT 1 AS a, 2 AS a", "parameters": None},
        ResultColumnsError,
        "['a']",
    ),
    BadInput(
        "result-rename-unknown-column",
        {"csv_header": {"no_such_column": "x"}},
        ResultColumnsError,
        "no_such_column",
    ),
    BadInput(
        "result-rename-repeated-column",
        {"sql": "SELECT 1 AS a, 2 AS a", "parameters": None, "csv_header": {"a": "b"}},
        ResultColumnsError,
        "['a']",
    ),
    BadInput(
        "result-rename-creates-repeat",
        {"csv_header": {"price": "quantity"}},
        ResultColumnsError,
        "['quantity']",
    ),
    BadInput(
        "result-header-too-short",
        {"csv_header": LINE_ITEMS_HEADER[:3]},
        ResultColumnsError,
        str(LINE_ITEMS_HEADER[:3]),
    ),
    BadInput(
        "result-missing-expected-column",
        {"expected_columns": [*LINE_ITEMS_HEADER, "tax"]},
        ResultColumnsError,
        "missing ['tax']",
    ),
    BadInput(
        "result-unexpected-column",
        {"expected_columns": LINE_ITEMS_HEADER[:-1]},
        ResultColumnsError,
        "unexpected ['net_revenue']",
    ),
    BadInput(
        "result-columns-other-order",
        {"expected_columns": list(reversed(LINE_ITEMS_HEADER))},
        ResultColumnsError,
        "another order",
    ),
    BadInput(
        "result-value-not-latin-1",
        {"sql": "SELECT 'price in €' AS label", "parameters": None, "csv_encoding": "latin-1"},
        ResultValueError,
        "'€'",
    ),
    BadInput(
        "result-emoji-not-cp1252",
        {"sql": "SELECT 'ok 😀' AS label", "parameters": None, "csv_encoding": "cp1252"},
        ResultValueError,
        "'😀'",
    ),
]


@pytest.mark.parametrize("case", ON_RESULT, ids=[case.case_id for case in ON_RESULT])
def test_rejected_before_push(connections, case: BadInput):
    redshift, pigment = connections

    with pytest.raises(case.error) as raised:
        run_operator(**case.arguments)

    assert case.named in str(raised.value)
    [statement] = redshift.statements
    assert statement["sql"] == case.arguments.get("sql", LINE_ITEMS_SQL)
    assert pigment.ledger() == []


def test_unknown_configuration_rejected_by_pigment(connections):
    redshift, pigment = connections

    with pytest.raises(PigmentRequestError) as raised:
        run_operator(configuration_id=UNKNOWN_CONFIGURATION_ID)

    assert UNKNOWN_CONFIGURATION_ID in str(raised.value)
    assert raised.value.status_code == 404
    assert len(redshift.statements) == 1
    assert pigment.ledger() == []


HOSTILE_PIGMENT_RESPONSES = [
    pytest.param(200, {}, b"<html>maintenance</html>", "<html>maintenance</html>", id="html-page"),
    pytest.param(200, {}, b'{"importId": "../../api/v1/keys"}', "../../api/v1/keys", id="import-id-path"),
    pytest.param(200, {}, b'{"importId": 42}', '{"importId": 42}', id="import-id-number"),
    pytest.param(307, {"Location": "https://attacker.example/collect"}, b"", "attacker.example", id="redirect"),
    pytest.param(401, {}, b"Unauthorized", "401", id="unauthorized"),
]


@pytest.mark.parametrize(("status", "headers", "body", "named"), HOSTILE_PIGMENT_RESPONSES)
def test_hostile_pigment_response(connections, monkeypatch, status, headers, body, named):
    redshift, pigment = connections
    server = serve(status, headers, body)
    connection = {"conn_type": "pigment", "password": PIGMENT_API_KEY, "extra": {"base_url": server.url}}
    monkeypatch.setenv("AIRFLOW_CONN_PIGMENT_DEFAULT", json.dumps(connection))
    try:
        with pytest.raises(PigmentRequestError) as raised:
            run_operator()
    finally:
        server.shutdown()
        server.server_close()

    assert named in str(raised.value)
    assert UUID in str(raised.value)
    assert PIGMENT_API_KEY not in str(raised.value)
    assert len(server.seen) == 1
    assert len(redshift.statements) == 1
    assert pigment.ledger() == []


def test_corpus_size():
    hostile = len(HOSTILE_PIGMENT_RESPONSES) + 1
    assert len(BEFORE_SUBMISSION) + len(ON_RESULT) + hostile >= 60


def test_valid_parameter_types_accepted(connections):
    redshift, pigment = connections

    summary = run_operator(parameters={"interval_start": date(1995, 3, 1), "interval_end": "1995-03-02"})

    assert redshift.statements[0]["parameters"] == DAY
    assert pigment.ledger()[0]["import_id"] == summary["import_id"]
