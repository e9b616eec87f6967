from __future__ import annotations

import io
import json
import random

import pytest

from airflow_pigment_redshift.csv_stream import (
    CsvDialect,
    JsonField,
    ResultCsvWriter,
    format_csv_row,
    json_field_to_text,
)
from airflow_pigment_redshift.result_pages import _decode_page

SEMICOLON = CsvDialect(delimiter=";", quote_char="'", line_terminator="\r\n")


def decoded_records(rows_json: str) -> list:
    """Decode a GetStatementResult body holding ``rows_json`` as its Records, as the page reader does."""
    body = ('{"Records":' + rows_json + ',"ColumnMetadata":[],"TotalNumRows":1}').encode()
    return _decode_page(body, "GetStatementResult")["Records"]


def written_text(records: list, dialect: CsvDialect = CsvDialect()) -> str:
    stream = io.StringIO(newline="")
    writer = ResultCsvWriter(stream, dialect)
    rows = writer.write_json_records(records)
    assert rows == len(records)
    return stream.getvalue()


# Each case: the Records JSON of one page, the text in the Redshift dialect, the text in the
# ';' / "'" / CRLF dialect.
CASES = {
    "null-and-empty-in-one-row": (
        '[[{"longValue":1},{"isNull":true},{"stringValue":""},{"stringValue":"x"}]]',
        '1,,"",x\n',
        "1;;'';x\r\n",
    ),
    "value-is-delimiter": ('[[{"stringValue":","},{"stringValue":";"}]]', '",",;\n', ",;';'\r\n"),
    "value-is-quote": ('[[{"stringValue":"\\""},{"stringValue":"\'"}]]', "\"\"\"\",'\n", "\";''''\r\n"),
    "single-null-column": ('[[{"isNull":true}],[{"longValue":2}]]', '""\n2\n', "''\r\n2\r\n"),
    "single-empty-string": ('[[{"stringValue":""}]]', '""\n', "''\r\n"),
    "all-null-row": ('[[{"isNull":true},{"isNull":true}]]', ",\n", ";\r\n"),
    "empty-string-last": ('[[{"longValue":1},{"stringValue":""}]]', '1,""\n', "1;''\r\n"),
    "non-ascii": (
        '[[{"stringValue":"Zürich"},{"stringValue":"東京, 日本"},{"stringValue":"naïve; ok"}]]',
        'Zürich,"東京, 日本",naïve; ok\n',
        "Zürich;東京, 日本;'naïve; ok'\r\n",
    ),
    "line-breaks": ('[[{"stringValue":"a\\nb"},{"stringValue":"c\\rd"}]]', '"a\nb","c\rd"\n', "'a\nb';'c\rd'\r\n"),
    "non-string-kinds": (
        '[[{"longValue":-7},{"doubleValue":1.25},{"doubleValue":3},{"booleanValue":true},'
        '{"booleanValue":false},{"blobValue":"AAE="},{"isNull":true}]]',
        "-7,1.25,3.0,true,false,AAE=,\n",
        "-7;1.25;3.0;true;false;AAE=;\r\n",
    ),
    "special-doubles": (
        '[[{"doubleValue":NaN},{"doubleValue":Infinity},{"doubleValue":-Infinity},{"doubleValue":1e300}]]',
        "NaN,Infinity,-Infinity,1e+300\n",
        "NaN;Infinity;-Infinity;1e+300\r\n",
    ),
    "empty-record": ("[[]]", "\n", "\r\n"),
}


@pytest.mark.parametrize(("rows_json", "redshift_text", "semicolon_text"), CASES.values(), ids=CASES.keys())
def test_json_page_written_in_both_dialects(rows_json, redshift_text, semicolon_text):
    records = decoded_records(rows_json)

    assert written_text(records) == redshift_text
    assert written_text(records, SEMICOLON) == semicolon_text


@pytest.mark.parametrize(("rows_json", "redshift_text", "semicolon_text"), CASES.values(), ids=CASES.keys())
def test_json_dict_records_match_decoded(rows_json, redshift_text, semicolon_text):
    # botocore's parser returns dicts with blobValue as bytes, the page reader JsonField.
    records = json.loads(rows_json)
    for record in records:
        for field in record:
            if "blobValue" in field:
                field["blobValue"] = b"\x00\x01"

    assert written_text(records) == redshift_text
    assert written_text(records, SEMICOLON) == semicolon_text


def test_decoded_cells_are_json_fields():
    records = decoded_records('[[{"longValue":1},{"stringValue":"a"}]]')

    assert records == [(JsonField(longValue=1), JsonField(stringValue="a"))]


def test_special_double_page_decoded_as_dicts():
    records = decoded_records('[[{"doubleValue":NaN}]]')

    assert records[0][0]["doubleValue"] != records[0][0]["doubleValue"]


def test_unknown_field_kind_rejected():
    records = decoded_records('[[{"longValue":1},{"fooValue":1}]]')

    with pytest.raises(ValueError, match=r"Unsupported Data API field \['fooValue'\]"):
        written_text(records)


@pytest.mark.parametrize(
    ("rows_json", "members"),
    [('[[{"arrayValue":{"longValues":[1]}}]]', "['arrayValue']"), ('[[{"isNull":false}]]', "['isNull']")],
    ids=["array", "not-null-without-value"],
)
def test_field_without_value_rejected(rows_json, members):
    records = decoded_records(rows_json)

    with pytest.raises(ValueError, match="Unsupported Data API field " + members.replace("[", r"\[")):
        written_text(records)


def test_rejected_page_writes_nothing():
    stream = io.StringIO(newline="")
    writer = ResultCsvWriter(stream, CsvDialect())

    with pytest.raises(ValueError, match="Unsupported Data API field"):
        writer.write_json_records(decoded_records('[[{"longValue":1}],[{"fooValue":1}]]'))

    assert stream.getvalue() == ""
    assert writer.rows_written == 0


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        (JsonField(isNull=True), None),
        (JsonField(stringValue=""), ""),
        (JsonField(longValue=0), "0"),
        (JsonField(doubleValue=float("-inf")), "-Infinity"),
        (JsonField(booleanValue=False), "false"),
        (JsonField(blobValue="AAE="), "AAE="),
    ],
)
def test_json_field_struct_to_text(field, expected):
    assert json_field_to_text(field) == expected


@pytest.mark.parametrize(
    ("values", "dialect", "line"),
    [
        ([","], CsvDialect(), '","\n'),
        (['"'], CsvDialect(), '""""\n'),
        (["a", None, ""], CsvDialect(), 'a,,""\n'),
        ([""], CsvDialect(), '""\n'),
        ([], CsvDialect(), "\n"),
        (["x", "y"], SEMICOLON, "x;y\r\n"),
        ([";", ","], SEMICOLON, "';';,\r\n"),
    ],
    ids=["delimiter", "quote", "null-and-empty", "empty-only", "no-fields", "plain-crlf", "semicolon"],
)
def test_format_csv_row_cases(values, dialect, line):
    assert format_csv_row(values, dialect) == line


@pytest.mark.parametrize(
    ("text", "rows"),
    [
        ('1,"a\nb\nc",x\n2,"""",y\n3,"\r\n",z\n', 3),
        ('1,"say ""hi""\n",x\n', 1),
        ('"\n"\n"\n"', 2),
    ],
    ids=["several-quoted-breaks", "doubled-quotes-and-break", "no-final-newline"],
)
def test_copy_through_counts_records(text, rows):
    stream = io.StringIO(newline="")
    writer = ResultCsvWriter(stream, CsvDialect(), page_header="never")
    writer.write_header(["a", "b", "c"])

    assert writer.write_csv_records(text) == rows
    assert stream.getvalue() == "a,b,c\n" + text + ("" if text.endswith("\n") else "\n")


def reference_line(values: list[str | None], dialect: CsvDialect) -> str:
    """Format a row cell by cell: the rules of format_csv_row without its joined-line shortcut."""
    quote = dialect.quote_char
    fields = []
    for value in values:
        if value is None:
            fields.append("")
        elif value == "" or any(character in value for character in (dialect.delimiter, quote, "\r", "\n")):
            fields.append(quote + value.replace(quote, quote + quote) + quote)
        else:
            fields.append(value)
    if fields == [""]:
        fields = [quote + quote]
    return dialect.delimiter.join(fields) + dialect.line_terminator


@pytest.mark.parametrize("dialect", [CsvDialect(), SEMICOLON], ids=["redshift", "semicolon"])
def test_random_rows_match_cell_by_cell(dialect):
    generator = random.Random(20240601)
    pieces = ["a", "b", "é", ",", ";", '"', "'", "\n", "\r", " ", "1"]
    rows = []
    for _ in range(2000):
        row = []
        for _ in range(generator.randint(1, 4)):
            kind = generator.random()
            if kind < 0.15:
                row.append(None)
            elif kind < 0.25:
                row.append("")
            elif kind < 0.35:
                row.append(generator.randint(-1000, 1000))
            else:
                row.append("".join(generator.choices(pieces, k=generator.randint(1, 3))))
        rows.append(row)
    page = [[cell_json(value) for value in row] for row in rows]
    records = decoded_records(json.dumps(page, ensure_ascii=False))
    texts = [[None if value is None else str(value) for value in row] for row in rows]

    assert written_text(records, dialect) == "".join(reference_line(row, dialect) for row in texts)


def cell_json(value: str | int | None) -> dict:
    if value is None:
        return {"isNull": True}
    if isinstance(value, int):
        return {"longValue": value}
    return {"stringValue": value}
