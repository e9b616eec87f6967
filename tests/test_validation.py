"""Unit checks of the SQL and header validation, including the reads that must stay accepted."""

from __future__ import annotations

import pytest

from airflow_pigment_redshift.validation import (
    InvalidTaskInputError,
    ResultColumnsError,
    result_header,
    validate_sql,
)


@pytest.mark.parametrize(
    ("sql", "placeholders"),
    [
        ("SELECT TOP 10 * FROM t", ()),
        ("SELECT APPROXIMATE COUNT(DISTINCT a) FROM t", ()),
        ("SELECT a::date, b::numeric(10,2) FROM t WHERE c = :c", ("c",)),
        ("SELECT LISTAGG(a, ',') WITHIN GROUP (ORDER BY a) FROM t", ()),
        ("SELECT * FROM t QUALIFY ROW_NUMBER() OVER (PARTITION BY a ORDER BY b) = 1", ()),
        ("SELECT ':not_a_placeholder', a FROM t WHERE b = :p", ("p",)),
        ("SELECT * FROM t WHERE d >= :start::date AND d < :end::date", ("start", "end")),
        ("SELECT 1;", ()),
        ("SELECT 1; -- trailing comment", ()),
        ("/* a; b */ SELECT 1", ()),
        ("(SELECT 1) UNION ALL (SELECT 2)", ()),
        ("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5) SELECT n FROM r", ()),
        ("SELECT * FROM t LIMIT :n", ("n",)),
        ("SELECT :a, :b, :a", ("a", "b")),
    ],
    ids=[
        "top",
        "approximate",
        "casts",
        "listagg",
        "qualify",
        "placeholder-text-in-string",
        "placeholder-cast",
        "trailing-semicolon",
        "trailing-comment",
        "leading-comment",
        "union",
        "recursive-cte",
        "limit-placeholder",
        "repeated-placeholder",
    ],
)
def test_read_sql_accepted(sql, placeholders):
    assert validate_sql(sql) == placeholders


def test_unparsable_read_checked_by_tokens():
    # sqlglot cannot parse the dangling AND, so the token check applies and Redshift reports the syntax.
    assert validate_sql("SELECT * FROM t WHERE a = :x AND") == ("x",)


def test_unparsable_statements_counted_by_tokens():
    with pytest.raises(InvalidTaskInputError, match="2 statements"):
        validate_sql("SELECT * FROM t WHERE a = :x AND; SELECT 1")


def test_unparsable_write_rejected_by_tokens():
    with pytest.raises(InvalidTaskInputError, match="starts with 'DELETE'"):
        validate_sql("DELETE FROM t WHERE a = :x AND")


@pytest.mark.parametrize(
    "sql",
    ["CREATE TABLE t (a INT)", "INSERT INTO t SELECT 1", "UNLOAD ('SELECT 1') TO 's3://b/p' IAM_ROLE 'r'"],
    ids=["create", "insert", "unload"],
)
def test_non_read_allowed_on_request(sql):
    assert validate_sql(sql, allow_non_read_sql=True) == ()


def test_header_renames_by_name():
    header = result_header(["a", "b", "c"], csv_header={"b": "Beta"}, expected_columns=["a", "Beta", "c"])

    assert header == ["a", "Beta", "c"]


def test_header_positional_renames_repeated_columns():
    assert result_header(["a", "a"], csv_header=["first", "second"]) == ["first", "second"]


def test_expected_columns_mismatch_named():
    with pytest.raises(ResultColumnsError) as raised:
        result_header(["a", "b"], expected_columns=["a", "c"])

    assert "missing ['c']" in str(raised.value)
    assert "unexpected ['b']" in str(raised.value)
