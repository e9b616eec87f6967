"""Rendering of a statement's result set into the pages served by GetStatementResult and GetStatementResultV2.

A result is rendered once, when its statement finishes. Each page is stored as the UTF-8
JSON text of its ``Records`` array, so serving a page only concatenates bytes.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from airflow_pigment_redshift.testing.redshift_data.column_types import (
    column_metadata,
    column_type_for,
    csv_cell_sql,
    json_cell_sql,
)
from airflow_pigment_redshift.testing.redshift_data.errors import validation_error

CSV_HEADER_MODES = ("none", "first_page", "every_page")


@dataclass(frozen=True)
class ResultSettings:
    """Page size and CSV text options for rendered results.

    :param page_size_rows: rows per result page.
    :param csv_header: ``none``, ``first_page`` or ``every_page``: which CSV pages start with a header line.
    :param csv_rows_per_record: rows per ``CSVRecords`` element, or None for all rows of a page in one element.
    :param csv_null: text written, unquoted, for a NULL cell.
    :param csv_empty_string: text written for an empty string.
    """

    # NOTE: real Redshift's page size, CSV header placement, rows per CSVRecords element and
    # CSV NULL encoding are not documented, so each of them is a setting here.
    page_size_rows: int = 1000
    csv_header: str = "first_page"
    csv_rows_per_record: int | None = None
    csv_null: str = ""
    csv_empty_string: str = '""'

    def __post_init__(self) -> None:
        if self.page_size_rows < 1:
            raise ValueError(f"page_size_rows must be at least 1, got {self.page_size_rows}")
        if self.csv_header not in CSV_HEADER_MODES:
            raise ValueError(f"csv_header must be one of {', '.join(CSV_HEADER_MODES)}, got {self.csv_header!r}")
        if self.csv_rows_per_record is not None and self.csv_rows_per_record < 1:
            raise ValueError(f"csv_rows_per_record must be at least 1 or None, got {self.csv_rows_per_record}")


@dataclass(frozen=True)
class RenderedResult:
    """A finished statement's result set, split into pages.

    :param result_format: ``JSON`` or ``CSV``.
    :param column_names: result column names in order.
    :param column_metadata_json: UTF-8 JSON text of the ``ColumnMetadata`` list.
    :param total_rows: number of data rows, header lines excluded.
    :param pages: per page, the UTF-8 JSON text of the ``Records`` array without its brackets.
    :param size_bytes: UTF-8 size of the rendered records: the JSON text of the rows, or the CSV text.
    """

    result_format: str
    column_names: tuple[str, ...]
    column_metadata_json: bytes
    total_rows: int
    pages: list[bytes]
    size_bytes: int


def render_result(
    cursor: Any,
    table: str,
    column_names: Sequence[str],
    column_types: Sequence[Any],
    result_format: str,
    settings: ResultSettings,
) -> RenderedResult:
    """Render every row of a materialized result table into pages.

    The table must hold the rows in result order. DuckDB scans a table in insertion order
    while its ``preserve_insertion_order`` setting is true, which is the default.

    :param cursor: DuckDB cursor that can read ``table``.
    :param table: SQL reference to the table holding the result rows.
    :param column_names: result column names.
    :param column_types: DuckDB types of the columns.
    :param result_format: ``JSON`` or ``CSV``.
    :param settings: page size and CSV options.
    """
    types = [column_type_for(duckdb_type) for duckdb_type in column_types]
    metadata = [column_metadata(name, column_type) for name, column_type in zip(column_names, types)]
    metadata_json = json.dumps(metadata, separators=(",", ":"), ensure_ascii=False).encode()

    # Columns are renamed by position because a result may repeat a column name.
    aliases = [f"c{index}" for index in range(len(types))]
    source = f"{table} AS q({', '.join(aliases)})" if aliases else table
    if result_format == "CSV":
        cells = [
            csv_cell_sql(
                f"q.{alias}", column_type, null_text=settings.csv_null, empty_text=settings.csv_empty_string
            )
            for alias, column_type in zip(aliases, types)
        ]
        row_sql = "concat(" + ", ',', ".join(cells) + ", chr(10))" if cells else "chr(10)"
    else:
        cells = [json_cell_sql(f"q.{alias}", column_type) for alias, column_type in zip(aliases, types)]
        row_sql = "concat('[', " + ", ',', ".join(cells) + ", ']')" if cells else "'[]'"
    cursor.execute(f"SELECT {row_sql} FROM {source}")

    if result_format == "CSV":
        pages, total_rows, size_bytes = _csv_pages(cursor, column_names, settings)
    else:
        pages, total_rows, size_bytes = _json_pages(cursor, settings.page_size_rows)
    return RenderedResult(result_format, tuple(column_names), metadata_json, total_rows, pages, size_bytes)


def _json_pages(cursor: Any, page_size_rows: int) -> tuple[list[bytes], int, int]:
    pages: list[bytes] = []
    total_rows = 0
    size_bytes = 0
    while chunk := cursor.fetchmany(page_size_rows):
        page = ",".join(row[0] for row in chunk).encode()
        pages.append(page)
        total_rows += len(chunk)
        size_bytes += len(page)
    if not pages:
        pages.append(b"")
    return pages, total_rows, size_bytes


def _csv_pages(cursor: Any, column_names: Sequence[str], settings: ResultSettings) -> tuple[list[bytes], int, int]:
    header = _csv_header_line(column_names)
    rows_per_record = settings.csv_rows_per_record or settings.page_size_rows
    pages: list[bytes] = []
    total_rows = 0
    size_bytes = 0
    while True:
        chunk = cursor.fetchmany(settings.page_size_rows)
        if not chunk and pages:
            break
        lines = [row[0] for row in chunk]
        records = ["".join(lines[start : start + rows_per_record]) for start in range(0, len(lines), rows_per_record)]
        page_has_header = settings.csv_header == "every_page" or (settings.csv_header == "first_page" and not pages)
        if page_has_header:
            records = [header + records[0], *records[1:]] if records else [header]
        encoded = [record.encode() for record in records]
        size_bytes += sum(len(record) for record in encoded)
        pages.append(
            ",".join('{"CSVRecords":' + json.dumps(record, ensure_ascii=False) + "}" for record in records).encode()
        )
        total_rows += len(chunk)
        if not chunk:
            break
    return pages, total_rows, size_bytes


def _csv_header_line(column_names: Sequence[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=",", quotechar='"', quoting=csv.QUOTE_MINIMAL, lineterminator="\n").writerow(
        column_names
    )
    return buffer.getvalue()


def encode_page_token(statement_id: str, page_index: int) -> str:
    """Build the ``NextToken`` that points at ``page_index`` of a statement's result."""
    return base64.urlsafe_b64encode(f"{statement_id}/{page_index}".encode()).decode()


def decode_page_token(token: str, statement_id: str, page_count: int) -> int:
    """Return the page index that ``token`` points at.

    :raises DataApiError: ``ValidationException`` when the token is malformed, belongs to
        another statement or points past the last page.
    """
    # NOTE: how real Redshift treats an invalid or stale NextToken is unknown; the emulator
    # rejects it with ValidationException.
    try:
        token_statement_id, page_text = base64.urlsafe_b64decode(token.encode()).decode().rsplit("/", 1)
        page_index = int(page_text)
    except (ValueError, binascii.Error, UnicodeError):
        raise validation_error(f"Invalid NextToken: {token!r}") from None
    if token_statement_id != statement_id or not 1 <= page_index < page_count:
        raise validation_error(f"Invalid NextToken for statement {statement_id}: {token!r}")
    return page_index


def page_body(result: RenderedResult, page_index: int, next_token: str | None) -> bytes:
    """Build the JSON response body of one result page.

    :param result: the rendered result.
    :param page_index: zero-based page number.
    :param next_token: token of the following page, or None on the last page.
    """
    parts = [
        b'{"ColumnMetadata":',
        result.column_metadata_json,
        b',"Records":[',
        result.pages[page_index],
        b'],"TotalNumRows":',
        str(result.total_rows).encode(),
    ]
    if result.result_format == "CSV":
        parts.append(b',"ResultFormat":"CSV"')
    if next_token is not None:
        parts.append(b',"NextToken":' + json.dumps(next_token).encode())
    parts.append(b"}")
    return b"".join(parts)
