"""Write Redshift Data API result pages as one CSV file in the dialect of a Pigment import.

Pages arrive one at a time and are written straight to a text stream, so a result of any
size is converted with memory bounded by the largest page.
"""

from __future__ import annotations

import base64
import csv
import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TextIO

import msgspec
from msgspec import UNSET, UnsetType

from airflow_pigment_redshift.validation import result_header

# The Data API's CSV result format uses a comma separator and double-quote quoting.
_REDSHIFT_DELIMITER = ","
_REDSHIFT_QUOTE_CHAR = '"'

PageHeaderMode = Literal["auto", "never"]


@dataclass(frozen=True)
class CsvDialect:
    """CSV layout expected by a Pigment import configuration.

    :param delimiter: column separator (Pigment offers ``,`` and ``;``).
    :param quote_char: text delimiter (Pigment offers ``"`` and ``'``).
    :param line_terminator: end of each record.
    :param encoding: byte encoding of the file sent to Pigment.
    """

    delimiter: str = ","
    quote_char: str = '"'
    line_terminator: str = "\n"
    encoding: str = "utf-8"

    def __post_init__(self) -> None:
        if len(self.delimiter) != 1 or self.delimiter in "\r\n":
            raise ValueError(
                f"Invalid CSV delimiter {self.delimiter!r}: use one character, as set in the "
                "Pigment import configuration (usually ',' or ';')."
            )
        if len(self.quote_char) != 1 or self.quote_char in "\r\n" or self.quote_char == self.delimiter:
            raise ValueError(
                f"Invalid CSV quote character {self.quote_char!r}: use one character other than "
                "the delimiter, as set in the Pigment import configuration (usually '\"' or \"'\")."
            )
        if self.line_terminator not in ("\n", "\r\n"):
            raise ValueError(f"Invalid line terminator {self.line_terminator!r}: use '\\n' or '\\r\\n'.")

    @property
    def matches_redshift_csv(self) -> bool:
        """Whether the Data API's CSV text can be copied through unchanged."""
        return (
            self.delimiter == _REDSHIFT_DELIMITER
            and self.quote_char == _REDSHIFT_QUOTE_CHAR
            and self.line_terminator == "\n"
        )


class JsonField(msgspec.Struct, gc=False, forbid_unknown_fields=True):
    """One ``Field`` union of a ``GetStatementResult`` page, as msgspec decodes it from the page body.

    botocore's ``redshift-data`` service model declares ``Field`` a tagged union, so exactly one
    member is set. Absent members are ``msgspec.UNSET``, and ``blobValue`` is the base64 text of
    the JSON body.
    """

    isNull: bool | None | UnsetType = UNSET
    booleanValue: bool | None | UnsetType = UNSET
    longValue: int | None | UnsetType = UNSET
    doubleValue: float | None | UnsetType = UNSET
    stringValue: str | None | UnsetType = UNSET
    blobValue: str | None | UnsetType = UNSET
    arrayValue: Any = UNSET


def json_field_to_text(field: Mapping[str, Any] | JsonField) -> str | None:
    """Convert one Data API ``Field`` union of a JSON result into CSV cell text.

    :param field: a dict with exactly one of ``isNull``, ``booleanValue``, ``longValue``,
        ``doubleValue``, ``stringValue`` or ``blobValue``, or the same as a :class:`JsonField`.
    :return: the cell text, or None for SQL NULL.
    :raises ValueError: when the field has none of these members.
    """
    if isinstance(field, JsonField):
        field = _set_members(field)
    if field.get("isNull"):
        return None
    if "stringValue" in field:
        return field["stringValue"]
    if "longValue" in field:
        return str(field["longValue"])
    if "doubleValue" in field:
        return float_text(float(field["doubleValue"]))
    if "booleanValue" in field:
        return "true" if field["booleanValue"] else "false"
    if "blobValue" in field:
        value = field["blobValue"]
        return base64.b64encode(value).decode("ascii") if isinstance(value, (bytes, bytearray)) else str(value)
    raise ValueError(f"Unsupported Data API field {sorted(field)}: expected one value key per cell.")


def _set_members(field: JsonField) -> dict[str, Any]:
    members = {}
    for name in field.__struct_fields__:
        value = getattr(field, name)
        if value is not UNSET:
            members[name] = value
    return members


class ResultCsvWriter:
    """Write a header and then result pages, in a Pigment CSV dialect, to a text stream.

    :param stream: text stream opened with ``newline=""``; the writer never closes it.
    :param dialect: the CSV layout of the target Pigment import configuration.
    :param header: column names to write instead of the result's column names, one per
        column, or a dict that renames columns by name.
    :param page_header: ``"auto"`` drops a first line that repeats the column names in each
        CSV record chunk; ``"never"`` keeps every line.
    """

    def __init__(
        self,
        stream: TextIO,
        dialect: CsvDialect,
        *,
        header: Sequence[str] | Mapping[str, str] | None = None,
        page_header: PageHeaderMode = "auto",
        expected_columns: Sequence[str] | None = None,
    ) -> None:
        self._stream = stream
        self._dialect = dialect
        self._header_override: Sequence[str] | Mapping[str, str] | None = None
        if isinstance(header, Mapping):
            self._header_override = dict(header)
        elif header is not None:
            self._header_override = list(header)
        self._expected_columns = list(expected_columns) if expected_columns is not None else None
        self._header: list[str] | None = None
        self._page_header = page_header
        self._writer = csv.writer(
            stream,
            delimiter=dialect.delimiter,
            quotechar=dialect.quote_char,
            lineterminator=dialect.line_terminator,
            quoting=csv.QUOTE_MINIMAL,
            doublequote=True,
        )
        self._column_names: list[str] | None = None
        self.rows_written = 0

    @property
    def header(self) -> list[str] | None:
        """The header row written to the stream, once :meth:`write_header` ran."""
        return self._header

    def write_header(self, column_names: Sequence[str]) -> None:
        """Write the header row, using the override when one was given.

        :param column_names: column names of the result, from ``ColumnMetadata``.
        :raises ResultColumnsError: when the columns cannot give the header Pigment expects.
        """
        names = [str(name) for name in column_names]
        header = result_header(names, csv_header=self._header_override, expected_columns=self._expected_columns)
        self._column_names = names
        self._header = header
        self._writer.writerow(header)

    def write_json_records(self, records: Iterable[Sequence[Mapping[str, Any] | JsonField]]) -> int:
        """Write the rows of one ``GetStatementResult`` page.

        :param records: the page's ``Records``, one list of ``Field`` unions per row, as dicts
            or as :class:`JsonField`.
        :return: the number of rows written.
        :raises ValueError: when a field has no value member.
        """
        dialect = self._dialect
        lines: list[str] = []
        for record in records:
            if record and record[0].__class__ is JsonField:
                # A non-empty string is its own cell text, and str() of a long is too, so most
                # cells skip the call. This order relies on one member per cell. The page decoder
                # returns JsonField for every cell of a page or for none, so the first cell's
                # type decides for the row.
                values = [
                    field.stringValue
                    or (str(field.longValue) if field.longValue.__class__ is int else json_field_to_text(field))
                    for field in record
                ]
            else:
                values = [json_field_to_text(field) for field in record]
            line = _plain_line(values, dialect)
            lines.append(line if line is not None else _quoted_line(values, dialect))
        if lines:
            terminator = dialect.line_terminator
            self._stream.write(terminator.join(lines) + terminator)
        self.rows_written += len(lines)
        return len(lines)

    def write_csv_records(self, csv_text: str) -> int:
        """Write one ``CSVRecords`` chunk of a ``GetStatementResultV2`` page.

        :param csv_text: CSV text in the Data API's dialect (comma, double quotes).
        :return: the number of rows written.
        """
        if self._column_names is None:
            raise RuntimeError("write_header() must run before result rows are written.")
        text = self._drop_repeated_header(csv_text)
        if not text:
            return 0
        if self._dialect.matches_redshift_csv:
            count = self._copy_through(text)
        else:
            count = 0
            for row in parse_redshift_csv(text):
                self._stream.write(format_csv_row(row, self._dialect))
                count += 1
        self.rows_written += count
        return count

    def _copy_through(self, text: str) -> int:
        if not text.endswith("\n"):
            text += "\n"
        count = text.count("\n")
        if _REDSHIFT_QUOTE_CHAR in text:
            # A quoted value may contain line breaks. Splitting on the quote character leaves
            # the text inside quotes at odd positions (a doubled quote adds an empty piece), so
            # the line breaks there do not end records.
            count -= "".join(text.split(_REDSHIFT_QUOTE_CHAR)[1::2]).count("\n")
        self._stream.write(text)
        return count

    def _drop_repeated_header(self, text: str) -> str:
        # NOTE: AWS does not document whether the Data API repeats the header line in each CSV
        # chunk. "auto" drops a first line equal to the column names. It would also drop a data
        # row whose values equal the column names, so "never" exists to keep every line.
        if self._page_header == "never" or not text:
            return text
        # Only the first line is copied: a partition of the whole page would copy about 1 MB.
        end = text.find("\n")
        first_line = text if end < 0 else text[:end]
        parsed = next(csv.reader([first_line.rstrip("\r")]), [])
        if parsed == self._column_names:
            return "" if end < 0 else text[end + 1 :]
        return text


# A quoted field (group 1, with doubled quotes inside) or an unquoted field (group 2) of the
# Data API's CSV dialect.
_REDSHIFT_CSV_FIELD = re.compile(r'"((?:[^"]|"")*)"|([^,"\r\n]*)')


def float_text(value: float) -> str:
    """Return the text of a REAL or DOUBLE PRECISION value, spelling the special values as Redshift does.

    Finite values use Python's shortest round-trip text (``0.1``, ``1e+300``). NaN and the
    infinities are written ``NaN``, ``Infinity`` and ``-Infinity``, as in Redshift's SQL output.
    """
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return repr(value)


def parse_redshift_csv(text: str) -> Iterator[list[str | None]]:
    """Parse CSV text of the Data API's dialect, keeping NULL apart from the empty string.

    An unquoted empty field is NULL and comes back as None. A quoted empty field (``""``) is
    the empty string. An empty line is a row with one NULL field.

    :param text: one ``CSVRecords`` chunk (comma separator, double-quote quoting).
    :raises ValueError: when the text is not valid CSV, for example an unterminated quote.
    """
    # NOTE: AWS does not document how the CSV result format writes NULL. This parser assumes an
    # unquoted empty field, which the Redshift emulator's csv_null and csv_empty_string settings
    # let tests vary. If Redshift writes both as an unquoted empty field, both become NULL here.
    position = 0
    end = len(text)
    row: list[str | None] = []
    while position < end:
        match = _REDSHIFT_CSV_FIELD.match(text, position)
        assert match is not None  # the unquoted alternative matches the empty string
        quoted, unquoted = match.groups()
        row.append(quoted.replace('""', '"') if quoted is not None else (unquoted or None))
        position = match.end()
        if position >= end:
            break
        if text[position] == ",":
            position += 1
            if position >= end:
                row.append(None)
            continue
        if text.startswith("\r\n", position) or text[position] == "\n":
            position += 2 if text[position] == "\r" else 1
            yield row
            row = []
            continue
        raise ValueError(
            f"Invalid CSV from the Data API near {text[max(0, position - 30) : position + 30]!r}: expected "
            "a separator or a line end after a field. Use result_format='JSON' if this persists."
        )
    if row:
        yield row


def format_csv_row(values: Sequence[str | None], dialect: CsvDialect) -> str:
    """Format one row in a Pigment CSV dialect, keeping NULL apart from the empty string.

    NULL (None) is written as an empty unquoted field and the empty string as two quote
    characters. A field containing the separator, the quote character, CR or LF is quoted,
    with inner quote characters doubled. A row whose only field is NULL is written as two quote
    characters, because readers skip a blank line.

    :param values: the row's cell texts, None for NULL.
    :param dialect: the CSV layout of the target Pigment import configuration.
    """
    line = _plain_line(values, dialect)
    if line is None:
        line = _quoted_line(values, dialect)
    return line + dialect.line_terminator


def _plain_line(values: Sequence[str | None], dialect: CsvDialect) -> str | None:
    """Join a row whose cells need no quoting, or return None when one does.

    A cell needs quoting when it is NULL (None, which makes the join fail), the empty string,
    or contains the quote character, CR, LF or the delimiter. A delimiter inside a cell shows
    as one more delimiter in the joined line than the row has separators.
    """
    delimiter = dialect.delimiter
    try:
        line = delimiter.join(values)
    except TypeError:
        return None
    if (
        dialect.quote_char in line
        or "\n" in line
        or "\r" in line
        or line.count(delimiter) != len(values) - 1
        or "" in values
    ):
        return None
    return line


def _quoted_line(values: Sequence[str | None], dialect: CsvDialect) -> str:
    """Format a row cell by cell, quoting the cells that need it, without the line terminator."""
    quote = dialect.quote_char
    special = (dialect.delimiter, quote, "\r", "\n")
    fields: list[str] = []
    for value in values:
        if value is None:
            fields.append("")
        elif value == "" or any(character in value for character in special):
            fields.append(quote + value.replace(quote, quote + quote) + quote)
        else:
            fields.append(value)
    if fields == [""]:
        fields = [quote + quote]
    return dialect.delimiter.join(fields)
