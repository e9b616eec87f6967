"""Cutting CSV text into parts of at most N data rows, each with the header."""

from __future__ import annotations

import csv
import io
import random

import pytest

from airflow_pigment_redshift.import_parts import (
    CsvPartSplitter,
    unpushed_part_numbers,
    validate_max_rows_per_import,
)


class ListSink:
    """Collect the text of each part, by part number."""

    def __init__(self) -> None:
        self.parts: dict[int, list[str]] = {}
        self.current = 0

    def begin_part(self, number: int) -> None:
        self.current = number
        self.parts[number] = []

    def write(self, text: str) -> int:
        self.parts[self.current].append(text)
        return len(text)

    def text(self, number: int) -> str:
        return "".join(self.parts[number])


TRICKY_VALUES = ["plain", "", "line\nbreak", "crlf\r\nbreak", 'say "hi"', "it's", "a,b;c", "\n", "'\n'", '"\n"', "é ü 中"]


def csv_text(rows: list[list[str]], delimiter: str, quote_char: str, terminator: str) -> list[str]:
    """Format each row as one CSV record, the way ResultCsvWriter writes them."""
    records = []
    for row in rows:
        buffer = io.StringIO()
        csv.writer(buffer, delimiter=delimiter, quotechar=quote_char, lineterminator=terminator).writerow(row)
        records.append(buffer.getvalue())
    return records


def parse(text: str, delimiter: str, quote_char: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quotechar=quote_char))


def split_records(records: list[str], max_rows: int, quote_char: str, chunk_sizes: random.Random | None = None,
                  skip: frozenset[int] = frozenset()) -> tuple[ListSink, CsvPartSplitter]:
    sink = ListSink()
    splitter = CsvPartSplitter(sink, max_rows, quote_char, skip)
    text = "".join(records)
    if chunk_sizes is None:
        for record in records:
            splitter.write(record)
    else:
        position = 0
        while position < len(text):
            size = chunk_sizes.randint(1, 40)
            splitter.write(text[position : position + size])
            position += size
    return sink, splitter


@pytest.mark.parametrize(("delimiter", "quote_char", "terminator"), [(",", '"', "\n"), (";", "'", "\r\n"), (",", "'", "\n")])
@pytest.mark.parametrize("max_rows", [1, 2, 3, 7, 50, 1000])
@pytest.mark.parametrize("whole_records", [True, False])
def test_parts_have_header_and_all_rows(delimiter, quote_char, terminator, max_rows, whole_records):
    generator = random.Random(max_rows)
    header = ["id", "text", "other"]
    rows = [[str(number), generator.choice(TRICKY_VALUES), generator.choice(TRICKY_VALUES)] for number in range(50)]
    records = csv_text([header, *rows], delimiter, quote_char, terminator)

    sink, splitter = split_records(records, max_rows, quote_char, None if whole_records else random.Random(7))

    expected_parts = max(1, -(-len(rows) // max_rows))
    assert sorted(sink.parts) == list(range(1, expected_parts + 1))
    received: list[list[str]] = []
    for number in sink.parts:
        parsed = parse(sink.text(number), delimiter, quote_char)
        assert parsed[0] == header
        assert 1 <= len(parsed) - 1 <= max_rows
        assert splitter.part_rows[number] == len(parsed) - 1
        received.extend(parsed[1:])
    assert received == rows
    assert splitter.rows == len(rows)


def test_cut_lands_after_value_with_line_break():
    records = csv_text([["id", "note"], ["1", "a\nb"], ["2", "say 'x'\r\nnext"], ["3", "c"]], ";", "'", "\r\n")

    sink, _ = split_records(records, 1, "'")

    assert sink.text(1) == records[0] + records[1]
    assert sink.text(2) == records[0] + records[2]
    assert sink.text(3) == records[0] + records[3]


def test_copied_page_cut_inside_one_write():
    header = "id,note\n"
    page = '1,"multi\nline ""quoted"""\n2,plain\n3,"x\n"\n'

    sink = ListSink()
    splitter = CsvPartSplitter(sink, 2, '"')
    splitter.write(header)
    splitter.write(page)

    assert sink.text(1) == header + '1,"multi\nline ""quoted"""\n2,plain\n'
    assert sink.text(2) == header + '3,"x\n"\n'
    assert splitter.part_rows == {1: 2, 2: 1}


def test_exact_multiple_has_no_empty_part():
    records = csv_text([["id"], ["1"], ["2"], ["3"], ["4"]], ",", '"', "\n")

    sink, splitter = split_records(records, 2, '"')

    assert sorted(sink.parts) == [1, 2]
    assert splitter.part_rows == {1: 2, 2: 2}


def test_header_only_is_one_part():
    sink, splitter = split_records(["id,name\n"], 5, '"')

    assert sink.text(1) == "id,name\n"
    assert splitter.part_rows == {1: 0}


def test_skipped_parts_not_written():
    records = csv_text([["id"], *[[str(number)] for number in range(5)]], ",", '"', "\n")

    sink, splitter = split_records(records, 2, '"', skip=frozenset({1, 2}))

    assert sorted(sink.parts) == [3]
    assert sink.text(3) == "id\n4\n"
    assert splitter.part_rows == {1: 2, 2: 2, 3: 1}


def test_unpushed_part_numbers_skip_pushed():
    numbers = unpushed_part_numbers({1, 2, 4})

    assert [next(numbers) for _ in range(3)] == [3, 5, 6]


@pytest.mark.parametrize("value", [0, -1, 2.5, "10", True])
def test_invalid_max_rows_per_import(value):
    with pytest.raises(ValueError, match=f"max_rows_per_import {value!r}"):
        validate_max_rows_per_import(value)


def test_valid_max_rows_per_import():
    assert validate_max_rows_per_import(None) is None
    assert validate_max_rows_per_import(1) == 1
