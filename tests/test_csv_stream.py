from __future__ import annotations

import csv
import io

import pytest

from airflow_pigment_redshift.csv_stream import (
    CsvDialect,
    ResultCsvWriter,
    format_csv_row,
    json_field_to_text,
    parse_redshift_csv,
)

COLUMNS = ["order_key", "customer", "price"]


def write_pages(pages: list[str], dialect: CsvDialect = CsvDialect(), **kwargs) -> tuple[str, int]:
    stream = io.StringIO(newline="")
    writer = ResultCsvWriter(stream, dialect, **kwargs)
    writer.write_header(COLUMNS)
    for page in pages:
        writer.write_csv_records(page)
    return stream.getvalue(), writer.rows_written


def test_pages_copied_with_one_header():
    text, rows = write_pages(["1,Alice,1.50\n2,Bob,2.00\n", "3,Carol,3.25\n"])

    assert text == "order_key,customer,price\n1,Alice,1.50\n2,Bob,2.00\n3,Carol,3.25\n"
    assert rows == 3


def test_repeated_page_headers_dropped():
    text, rows = write_pages(["order_key,customer,price\n1,A,1\n", "order_key,customer,price\n2,B,2\n"])

    assert text.count("order_key") == 1
    assert rows == 2


def test_page_header_kept_when_never():
    text, rows = write_pages(["order_key,customer,price\n1,A,1\n"], page_header="never")

    assert rows == 2
    assert text.count("order_key") == 2


def test_page_without_final_newline():
    text, rows = write_pages(["1,A,1", "2,B,2"])

    assert text.splitlines() == ["order_key,customer,price", "1,A,1", "2,B,2"]
    assert rows == 2


def test_quoted_line_break_counts_as_one_row():
    text, rows = write_pages(['1,"two\nlines",1\n2,"a ""quote""",2\n'])

    assert rows == 2
    assert list(csv.reader(io.StringIO(text)))[1] == ["1", "two\nlines", "1"]


def test_semicolon_dialect_requotes_values():
    text, rows = write_pages(['1,"Smith; John",1.5\n2,plain,2\n'], CsvDialect(delimiter=";", quote_char="'"))

    assert rows == 2
    assert text.splitlines() == ["order_key;customer;price", "1;'Smith; John';1.5", "2;plain;2"]


def test_header_override_replaces_names():
    text, _ = write_pages(["1,A,1\n"], header=["Order", "Customer", "Price"])

    assert text.splitlines()[0] == "Order,Customer,Price"


def test_header_override_length_checked():
    writer = ResultCsvWriter(io.StringIO(), CsvDialect(), header=["only_one"])

    with pytest.raises(ValueError, match="one header name per selected column"):
        writer.write_header(COLUMNS)


def test_json_records_written_in_dialect():
    stream = io.StringIO(newline="")
    writer = ResultCsvWriter(stream, CsvDialect(delimiter=";"))
    writer.write_header(COLUMNS)

    rows = writer.write_json_records(
        [
            [{"longValue": 1}, {"stringValue": "a;b"}, {"stringValue": "12.50"}],
            [{"longValue": 2}, {"isNull": True}, {"doubleValue": 0.5}],
        ]
    )

    assert rows == 2
    assert stream.getvalue().splitlines() == ["order_key;customer;price", '1;"a;b";12.50', "2;;0.5"]


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ({"isNull": True}, None),
        ({"booleanValue": True}, "true"),
        ({"longValue": -7}, "-7"),
        ({"doubleValue": 1.25}, "1.25"),
        ({"stringValue": ""}, ""),
        ({"blobValue": b"\x00\x01"}, "AAE="),
    ],
)
def test_json_field_to_text(field, expected):
    assert json_field_to_text(field) == expected


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"delimiter": ",,"}, "Invalid CSV delimiter"),
        ({"quote_char": ","}, "Invalid CSV quote character"),
        ({"line_terminator": "\r"}, "Invalid line terminator"),
    ],
)
def test_invalid_dialect_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CsvDialect(**kwargs)


@pytest.mark.parametrize(
    ("text", "rows"),
    [
        ('1,"",,x\n', [["1", "", None, "x"]]),
        ('"a\r\nb","q""",\n', [["a\r\nb", 'q"', None]]),
        ("a,b", [["a", "b"]]),
        ("\n", [[None]]),
        ("1\r\n2\r\n", [["1"], ["2"]]),
    ],
    ids=["null-and-empty", "quoted-line-break", "no-final-newline", "blank-line", "crlf-rows"],
)
def test_parse_redshift_csv_keeps_null(text, rows):
    assert list(parse_redshift_csv(text)) == rows


@pytest.mark.parametrize("text", ['"unterminated', 'ab"c,1\n', '"a"b,1\n'])
def test_parse_redshift_csv_rejects_malformed(text):
    with pytest.raises(ValueError, match="Invalid CSV from the Data API"):
        list(parse_redshift_csv(text))


@pytest.mark.parametrize(
    ("values", "dialect", "line"),
    [
        (["1", "", None], CsvDialect(), '1,"",\n'),
        ([None], CsvDialect(), '""\n'),
        (["a;b", "it's"], CsvDialect(delimiter=";", quote_char="'"), "'a;b';'it''s'\n"),
        (["x\ry"], CsvDialect(), '"x\ry"\n'),
    ],
    ids=["null-and-empty", "single-null", "semicolon-dialect", "carriage-return"],
)
def test_format_csv_row(values, dialect, line):
    assert format_csv_row(values, dialect) == line


def test_semicolon_dialect_keeps_null_apart():
    text, rows = write_pages(['1,"",\n'], CsvDialect(delimiter=";", quote_char="'"))

    assert rows == 1
    assert text.splitlines()[1] == "1;'';"
