"""Processing of a received CSV file into a block, as Pigment does after a push.

The file is parsed row by row with :mod:`csv`, so the parse itself runs in constant memory. Only a
keyed block keeps its rows in memory, because its items must be found by key.

The ``errorsDetails`` names used here (``MissingHeader``, ``HeaderMismatch`` and so on) are the
emulator's own. Pigment does not document the names it uses.
"""

from __future__ import annotations

import csv
import datetime
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from airflow_pigment_redshift.testing.pigment.blocks import BlockChange, BlockStore
from airflow_pigment_redshift.testing.pigment.configurations import (
    ImportConfiguration,
    find_duplicates,
)

PARSING_ERROR = "ParsingError"
MAX_SAMPLES = 5
MAX_SAMPLE_CHARS = 200

_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class ImportStatus(StrEnum):
    """Values of ``importStatus`` in Pigment's import report."""

    IN_PROGRESS = "InProgress"
    COMPLETED = "Completed"
    FAILED = "Failed"


@dataclass(frozen=True)
class ErrorDetail:
    """One ``errorsDetails`` entry of a failed import."""

    name: str
    description: str


@dataclass
class SkippedData:
    """Rows skipped for one reason and source column, as in the report's ``skippedData``."""

    reason: str
    source_column_name: str | None
    count: int = 0
    samples: list[str] = field(default_factory=list)


@dataclass
class ImportOutcome:
    """Result of processing one received file.

    ``rows`` counts the non-blank data records read, header excluded. A failed import changes
    no items, and its ``rows`` counts the records read before processing stopped.
    """

    status: ImportStatus
    rows: int = 0
    change: BlockChange = BlockChange()
    skipped_data: list[SkippedData] = field(default_factory=list)
    errors: list[ErrorDetail] = field(default_factory=list)

    @property
    def skipped(self) -> int:
        """Number of skipped rows."""
        return sum(entry.count for entry in self.skipped_data)


class _ImportFailedError(Exception):
    def __init__(self, detail: ErrorDetail) -> None:
        super().__init__(detail.description)
        self.detail = detail


def read_header(path: Path, configuration: ImportConfiguration) -> list[str] | None:
    """Return the first record of a received file, or ``None`` when the file has no header.

    :param path: Received file.
    :param configuration: Configuration whose encoding and CSV format apply.
    :raises UnicodeDecodeError: when the first line is not valid in the configured encoding.
    :raises csv.Error: when the first record is malformed.
    """
    with open(path, encoding=configuration.encoding, newline="") as file:
        header = next(csv.reader(file, **configuration.reader_options()), None)
    return header or None


def check_header(
    header: list[str] | None, configuration: ImportConfiguration
) -> ErrorDetail | None:
    """Return the error that a header row causes, or ``None`` when the header is valid.

    :param header: First record of the file, or ``None`` when the file has none.
    :param configuration: Configuration the header must match.
    """
    if header is None:
        return ErrorDetail(
            "MissingHeader",
            "The file is empty or its first line is blank, but a header row is required.",
        )

    expected = configuration.expected_header
    if expected is not None and header != expected:
        return ErrorDetail(
            "HeaderMismatch",
            f"The header row {header} does not match the columns of import configuration "
            f"{configuration.id}: {expected}.",
        )

    duplicates = find_duplicates(header)
    if duplicates:
        return ErrorDetail("DuplicateColumn", f"The header row repeats the columns {duplicates}.")

    required = list(configuration.column_types)
    if configuration.unique_key is not None:
        required.insert(0, configuration.unique_key)
    missing = [column for column in required if column not in header]
    if missing:
        return ErrorDetail(
            "MissingColumn",
            f"The header row {header} lacks the columns {missing} that import configuration "
            f"{configuration.id} maps.",
        )
    return None


def process_import(
    path: Path, configuration: ImportConfiguration, blocks: BlockStore
) -> ImportOutcome:
    """Parse a received file and apply its rows to the configuration's block.

    Items change only when the whole file was read, so a failed import leaves the block as it was.

    :param path: Received file.
    :param configuration: Configuration of the import.
    :param blocks: Store of the target block.
    """
    parser = _RowParser(configuration)
    try:
        with open(path, encoding=configuration.encoding, newline="") as file:
            reader = csv.reader(file, **configuration.reader_options())
            try:
                parser.parse(reader)
            except UnicodeDecodeError as error:
                raise _ImportFailedError(
                    ErrorDetail(
                        "InvalidEncoding",
                        f"The file is not valid {configuration.encoding} near line "
                        f"{reader.line_num + 1}: {error.reason}.",
                    )
                ) from error
            except csv.Error as error:
                raise _ImportFailedError(
                    ErrorDetail("InvalidCsv", f"Line {reader.line_num}: {error}.")
                ) from error
    except _ImportFailedError as failure:
        return ImportOutcome(ImportStatus.FAILED, rows=parser.rows, errors=[failure.detail])

    if configuration.keyed:
        change = blocks.upsert(configuration, parser.keyed_rows, parser.occurrences, path)
    else:
        change = blocks.append(configuration, parser.accepted, path)
    return ImportOutcome(
        ImportStatus.COMPLETED,
        rows=parser.rows,
        change=change,
        skipped_data=list(parser.skipped.values()),
    )


class _RowParser:
    """Validate the data records of one file and collect the accepted rows or their count."""

    def __init__(self, configuration: ImportConfiguration) -> None:
        self.configuration = configuration
        self.rows = 0
        self.accepted = 0
        self.keyed_rows: dict[str, dict[str, str]] = {}
        self.occurrences: dict[str, int] = {}
        self.skipped: dict[tuple[str, str | None], SkippedData] = {}

    def parse(self, reader: Iterator[list[str]]) -> None:
        header = next(reader, None) or None
        error = check_header(header, self.configuration)
        if error is not None:
            raise _ImportFailedError(error)
        assert header is not None

        typed_columns = [
            (column, header.index(column), column_type)
            for column, column_type in self.configuration.column_types.items()
        ]
        key_column = self.configuration.unique_key
        key_index = header.index(key_column) if key_column is not None else None

        for record in reader:
            if not record:
                continue
            self.rows += 1

            if len(record) != len(header):
                self._skip(None, self.configuration.delimiter.join(record))
                continue
            invalid = _find_invalid_value(record, typed_columns)
            if invalid is not None:
                self._skip(*invalid)
                continue

            if key_index is None:
                self.accepted += 1
                continue
            key = record[key_index]
            if not key:
                self._skip(key_column, self.configuration.delimiter.join(record))
                continue
            self.keyed_rows[key] = dict(zip(header, record))
            self.occurrences[key] = self.occurrences.get(key, 0) + 1

    def _skip(self, column: str | None, sample: str) -> None:
        entry = self.skipped.get((PARSING_ERROR, column))
        if entry is None:
            entry = SkippedData(PARSING_ERROR, column)
            self.skipped[(PARSING_ERROR, column)] = entry
        entry.count += 1
        if len(entry.samples) < MAX_SAMPLES:
            entry.samples.append(sample[:MAX_SAMPLE_CHARS])


def _find_invalid_value(
    record: list[str], typed_columns: list[tuple[str, int, str]]
) -> tuple[str, str] | None:
    """Return the first column and value that do not parse as their type, or ``None``."""
    for column, index, column_type in typed_columns:
        value = record[index]
        if value and not _is_valid(value, column_type):
            return column, value
    return None


def _is_valid(value: str, column_type: str) -> bool:
    if column_type == "number":
        return _NUMBER.fullmatch(value) is not None
    if column_type == "date":
        if _DATE.fullmatch(value) is None:
            return False
        try:
            datetime.date.fromisoformat(value)
        except ValueError:
            return False
        return True
    return True
