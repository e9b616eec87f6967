"""Checks of a task's input and of a result's columns, run before anything is submitted or pushed.

Every check raises :class:`InvalidTaskInputError` or :class:`ResultColumnsError` with a
message that names the offending value and the fix. The SQL checks parse the
text with sqlglot's Redshift dialect.
"""

from __future__ import annotations

import logging
import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import SqlglotError
from sqlglot.tokens import TokenType

from airflow_pigment_redshift.exceptions import PigmentRedshiftError

log = logging.getLogger(__name__)

# NOTE: AWS documents the ExecuteStatement limit as "100 KB" without saying whether KB means
# 1000 or 1024 bytes, so the smaller reading is enforced, on the UTF-8 encoded text.
MAX_SQL_BYTES = 100_000

# Pigment's import wizard offers these separators and text delimiters only.
ALLOWED_DELIMITERS = (",", ";")
ALLOWED_QUOTE_CHARS = ('"', "'")

_CANONICAL_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_PARAMETER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SHOWN_SQL_CHARS = 80

# Top-level expressions that only read: a SELECT (or WITH ... SELECT) and set operations of SELECTs.
_READ_EXPRESSIONS = (exp.Select, exp.Union, exp.Intersect, exp.Except, exp.Subquery)
# Expressions that write when nested anywhere in a read, e.g. WITH x AS (DELETE ... RETURNING *).
_WRITE_EXPRESSIONS = (exp.Insert, exp.Update, exp.Delete, exp.Merge, exp.Create, exp.Drop, exp.Alter, exp.Into)
_READ_FIRST_KEYWORDS = frozenset({TokenType.SELECT, TokenType.WITH, TokenType.L_PAREN})


class InvalidTaskInputError(PigmentRedshiftError, ValueError):
    """A task argument (SQL, parameters, configuration id, CSV dialect) is invalid.

    Raised before the statement is submitted, so neither Redshift nor Pigment saw anything.
    """


class ResultColumnsError(PigmentRedshiftError, ValueError):
    """The result's columns cannot be written as the header Pigment expects.

    Raised when the first result page arrives, before any row is written or pushed.
    """


@dataclass(frozen=True)
class ValidatedInput:
    """Task input after every check passed.

    :param sql: the SQL text as given.
    :param parameters: Data API parameter values as text, or None when the SQL has no placeholder.
    :param configuration_id: the Pigment import configuration id.
    """

    sql: str
    parameters: dict[str, str] | None
    configuration_id: str


def validate_task_input(
    *,
    sql: Any,
    parameters: Mapping[str, Any] | None,
    configuration_id: Any,
    csv_delimiter: str,
    csv_quote_char: str,
    csv_header: Sequence[str] | Mapping[str, str] | None = None,
    expected_columns: Sequence[str] | None = None,
    allow_non_read_sql: bool = False,
    csv_encoding: str = "utf-8",
    waits: Mapping[str, Any] | None = None,
    max_skipped_rows: Any = 0,
) -> ValidatedInput:
    """Check every task argument that can be checked without Redshift or Pigment.

    :param sql: the rendered SQL text.
    :param parameters: the rendered ``:name`` placeholder values.
    :param configuration_id: the rendered Pigment import configuration id.
    :param csv_delimiter: column separator of the import configuration.
    :param csv_quote_char: text delimiter of the import configuration.
    :param csv_header: header names by position, or renames by column name.
    :param expected_columns: header the import configuration expects.
    :param allow_non_read_sql: accept statements other than SELECT, such as DDL or DML.
    :param csv_encoding: Python codec name of the file sent to Pigment.
    :param waits: poll intervals and timeouts in seconds, by argument name; each must be positive.
    :param max_skipped_rows: a non-negative integer, or None for no limit.
    :raises InvalidTaskInputError: on the first invalid argument.
    """
    placeholders = validate_sql(sql, allow_non_read_sql=allow_non_read_sql)
    values = validate_parameters(parameters, placeholders)
    validated_id = validate_configuration_id(configuration_id)
    validate_dialect(csv_delimiter, csv_quote_char)
    validate_header_arguments(csv_header, expected_columns)
    validate_encoding(csv_encoding)
    for argument, seconds in (waits or {}).items():
        validate_positive_seconds(argument, seconds)
    if max_skipped_rows is not None and (
        isinstance(max_skipped_rows, bool) or not isinstance(max_skipped_rows, int) or max_skipped_rows < 0
    ):
        raise InvalidTaskInputError(
            f"Invalid max_skipped_rows {max_skipped_rows!r}: pass a whole number of rows, 0 or more, or None "
            "to accept any number of skipped rows."
        )
    return ValidatedInput(sql=sql, parameters=values, configuration_id=validated_id)


def validate_sql(sql: Any, *, allow_non_read_sql: bool = False) -> tuple[str, ...]:
    """Check that ``sql`` is one read statement within the Data API's size limit.

    :param sql: the rendered SQL text.
    :param allow_non_read_sql: accept DDL, DML, COPY, UNLOAD, GRANT, CALL and other statements.
    :return: the distinct ``:name`` placeholders, in order of first use.
    :raises InvalidTaskInputError: when the SQL is empty, too large, has several statements or writes.
    """
    if not isinstance(sql, str):
        raise InvalidTaskInputError(
            f"Invalid sql {_short(sql)} of type {type(sql).__name__}: pass the SQL text or a .sql file path."
        )
    if not sql.strip():
        raise InvalidTaskInputError(
            f"Empty sql {sql!r}: pass one SELECT statement, or the path of a .sql file holding it."
        )
    size = len(sql.encode("utf-8"))
    if size > MAX_SQL_BYTES:
        raise InvalidTaskInputError(
            f"The sql {_short(sql)} is {size} bytes, more than the Data API's limit of {MAX_SQL_BYTES} bytes. "
            "Move large value lists into a table, or export with UNLOAD to S3."
        )
    if "\x00" in sql:
        raise InvalidTaskInputError(f"The sql {_short(sql)} contains a NUL character (\\x00); remove it.")

    try:
        parsed = sqlglot.parse(sql, read="redshift")
    except SqlglotError as error:
        log.warning("sqlglot cannot parse the SQL, so it is checked by its tokens only: %s", error)
        return _validate_unparsed_sql(sql, allow_non_read_sql=allow_non_read_sql)
    # sqlglot returns None for an empty statement and a Semicolon for a comment after the last ';'.
    expressions = [
        expression for expression in parsed if expression is not None and not isinstance(expression, exp.Semicolon)
    ]

    if not expressions:
        raise InvalidTaskInputError(f"The sql {_short(sql)} contains no statement: pass one SELECT statement.")
    if len(expressions) > 1:
        raise InvalidTaskInputError(
            f"The sql {_short(sql)} contains {len(expressions)} statements, but the Data API runs one statement "
            "per request. Keep one SELECT; combine queries with WITH or UNION ALL."
        )
    [expression] = expressions
    if not allow_non_read_sql:
        _reject_non_read(sql, expression)

    names: list[str] = []
    for placeholder in expression.find_all(exp.Placeholder):
        if placeholder.name and placeholder.name not in names:
            names.append(placeholder.name)
    return tuple(names)


def _reject_non_read(sql: str, expression: exp.Expression) -> None:
    if isinstance(expression, exp.Command):
        kind = str(expression.this).upper()
    elif not isinstance(expression, _READ_EXPRESSIONS):
        kind = expression.key.upper()
    else:
        writer = next(expression.find_all(*_WRITE_EXPRESSIONS), None)
        if writer is None:
            return
        kind = "SELECT INTO" if isinstance(writer, exp.Into) else writer.key.upper()
    raise InvalidTaskInputError(
        f"The sql {_short(sql)} is a {kind} statement, not a read. The operator imports the rows of a "
        "SELECT query into Pigment; run other statements with another task, or pass "
        "allow_non_read_sql=True if this statement is intended."
    )


def _validate_unparsed_sql(sql: str, *, allow_non_read_sql: bool) -> tuple[str, ...]:
    """Check SQL that sqlglot cannot parse, using its tokens."""
    try:
        tokens = Dialect.get_or_raise("redshift").tokenize(sql)
    except SqlglotError as error:
        raise InvalidTaskInputError(f"The sql {_short(sql)} cannot be read as SQL: {error}. Fix its syntax.") from None

    statements = [[]]
    for token in tokens:
        if token.token_type is TokenType.SEMICOLON:
            statements.append([])
        else:
            statements[-1].append(token)
    statements = [statement for statement in statements if statement]
    if len(statements) > 1:
        raise InvalidTaskInputError(
            f"The sql {_short(sql)} contains {len(statements)} statements, but the Data API runs one statement "
            "per request. Keep one SELECT; combine queries with WITH or UNION ALL."
        )
    if not statements:
        raise InvalidTaskInputError(f"The sql {_short(sql)} contains no statement: pass one SELECT statement.")
    first = statements[0][0]
    if not allow_non_read_sql and first.token_type not in _READ_FIRST_KEYWORDS:
        raise InvalidTaskInputError(
            f"The sql {_short(sql)} starts with {first.text!r}, not SELECT or WITH. The operator imports the "
            "rows of a SELECT query into Pigment; pass allow_non_read_sql=True if this statement is intended."
        )

    names: list[str] = []
    for colon, name in zip(statements[0], statements[0][1:]):
        is_placeholder = (
            colon.token_type is TokenType.COLON
            and name.start == colon.end + 1
            and name.token_type not in (TokenType.STRING, TokenType.IDENTIFIER)
            and _PARAMETER_NAME.fullmatch(name.text) is not None
        )
        if is_placeholder and name.text not in names:
            names.append(name.text)
    return tuple(names)


def validate_parameters(parameters: Any, placeholders: Sequence[str]) -> dict[str, str] | None:
    """Check the placeholder values against the SQL's placeholders and convert them to text.

    :param parameters: the rendered ``parameters`` argument, or None.
    :param placeholders: the ``:name`` placeholders of the SQL.
    :return: name to text value, or None when there are neither parameters nor placeholders.
    :raises InvalidTaskInputError: on a missing, unused or invalid parameter.
    """
    if parameters is None:
        parameters = {}
    if not isinstance(parameters, Mapping):
        raise InvalidTaskInputError(
            f"Invalid parameters {_short(parameters)} of type {type(parameters).__name__}: pass a dict that maps "
            "each :name placeholder of the SQL to its value."
        )
    for name in parameters:
        if not isinstance(name, str) or not _PARAMETER_NAME.fullmatch(name):
            raise InvalidTaskInputError(
                f"Invalid SQL parameter name {name!r}: use letters, digits and underscores, starting with a "
                "letter or underscore, as in the :name placeholder."
            )
    missing = [name for name in placeholders if name not in parameters]
    if missing:
        raise InvalidTaskInputError(
            f"The SQL uses the placeholder :{missing[0]} but parameters has no value {missing[0]!r} "
            f"(given: {sorted(parameters)}). Add it to parameters, or remove :{missing[0]} from the SQL."
        )
    unused = [name for name in parameters if name not in placeholders]
    if unused:
        raise InvalidTaskInputError(
            f"The SQL parameter {unused[0]!r} is not used: the SQL has no :{unused[0]} placeholder "
            f"(placeholders: {list(placeholders)}). Remove it from parameters, or add :{unused[0]} to the SQL."
        )
    if not parameters:
        return None
    return {name: parameter_text(name, value) for name, value in parameters.items()}


def parameter_text(name: str, value: Any) -> str:
    """Convert one placeholder value to the text sent to the Data API, which Redshift then casts.

    :param name: the parameter name, for the error message.
    :param value: a string, integer, finite float, Decimal, date, datetime or time.
    :raises InvalidTaskInputError: for None, booleans, containers, other objects, empty text,
        NUL characters and non-finite numbers.
    """
    if value is None:
        raise InvalidTaskInputError(
            f"The SQL parameter {name!r} is None, but the Data API cannot send NULL as a parameter. "
            f"Write NULL in the SQL instead of :{name}, or pass a value."
        )
    if isinstance(value, bool):
        raise InvalidTaskInputError(
            f"Invalid value {value!r} for SQL parameter {name!r}: pass the text 'true' or 'false', "
            "which Redshift casts to BOOLEAN."
        )
    if isinstance(value, (date, datetime, time)):
        return value.isoformat()
    if isinstance(value, (float, Decimal)) and not math.isfinite(value):
        raise InvalidTaskInputError(
            f"Invalid value {value!r} for SQL parameter {name!r}: pass a finite number, or the text "
            "'NaN'/'Infinity' cast in the SQL."
        )
    if isinstance(value, (int, float, Decimal)):
        return str(value)
    if not isinstance(value, str):
        raise InvalidTaskInputError(
            f"Invalid value {_short(value)} of type {type(value).__name__} for SQL parameter {name!r}: the Data "
            "API takes text, numbers, dates and times. Pass one scalar value per :name placeholder."
        )
    if value == "":
        raise InvalidTaskInputError(
            f"Empty value for SQL parameter {name!r}: the Data API rejects empty parameter values. "
            f"Write '' in the SQL instead of :{name}."
        )
    if "\x00" in value:
        raise InvalidTaskInputError(
            f"Invalid value {_short(value)} for SQL parameter {name!r}: it contains a NUL character (\\x00), "
            "which Redshift text cannot store."
        )
    return value


def validate_configuration_id(configuration_id: Any) -> str:
    """Check that the Pigment import configuration id is a UUID in its canonical 8-4-4-4-12 form.

    :raises InvalidTaskInputError: for anything else, including surrounding spaces.
    """
    if not isinstance(configuration_id, str) or not _CANONICAL_UUID.fullmatch(configuration_id):
        raise InvalidTaskInputError(
            f"Invalid configuration_id {configuration_id!r}: expected the UUID of a Pigment import "
            "configuration, such as 3f6c1a52-8d2e-4b7a-9c41-5e0d2f7a9b13 (block Settings > "
            "Import configurations > Copy ID)."
        )
    return configuration_id


def validate_dialect(delimiter: Any, quote_char: Any) -> None:
    """Check the CSV separator and text delimiter against the choices of Pigment's import wizard.

    :raises InvalidTaskInputError: for any other separator or text delimiter.
    """
    if delimiter not in ALLOWED_DELIMITERS:
        raise InvalidTaskInputError(
            f"Invalid csv_delimiter {delimiter!r}: Pigment import configurations use ',' or ';'. "
            "Set the separator chosen in the import configuration."
        )
    if quote_char not in ALLOWED_QUOTE_CHARS:
        raise InvalidTaskInputError(
            f"Invalid csv_quote_char {quote_char!r}: Pigment import configurations use '\"' or \"'\". "
            "Set the text delimiter chosen in the import configuration."
        )


def validate_encoding(encoding: Any) -> None:
    """Check that ``encoding`` names a Python text codec.

    :raises InvalidTaskInputError: for an unknown name or a codec that does not encode text.
    """
    try:
        # str.encode raises LookupError for unknown names and for bytes-to-bytes codecs such as base64.
        is_text_encoding = isinstance(encoding, str) and "".encode(encoding) is not None
    except LookupError:
        is_text_encoding = False
    if not is_text_encoding:
        raise InvalidTaskInputError(
            f"Invalid csv_encoding {encoding!r}: use the text encoding of the Pigment import configuration, "
            "such as 'utf-8' or 'latin-1'."
        )


def validate_positive_seconds(argument: str, seconds: Any) -> None:
    """Check that a wait argument is a positive, finite number of seconds.

    :raises InvalidTaskInputError: for zero, negative, non-finite or non-numeric values.
    """
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 < seconds < math.inf:
        raise InvalidTaskInputError(f"Invalid {argument} {seconds!r}: pass a positive number of seconds.")


def validate_header_arguments(
    csv_header: Sequence[str] | Mapping[str, str] | None, expected_columns: Sequence[str] | None
) -> None:
    """Check the shape of ``csv_header`` and ``expected_columns`` before the query runs.

    :raises InvalidTaskInputError: for non-text names, empty names or repeated names.
    """
    if csv_header is not None:
        if isinstance(csv_header, str) or not isinstance(csv_header, (Sequence, Mapping)):
            raise InvalidTaskInputError(
                f"Invalid csv_header {csv_header!r}: pass a list with one header name per selected column, "
                "or a dict that renames columns by name."
            )
        names = list(csv_header.values()) if isinstance(csv_header, Mapping) else list(csv_header)
        keys = list(csv_header.keys()) if isinstance(csv_header, Mapping) else []
        _check_names("csv_header", [*keys, *names] if keys else names, unique=not keys)
        if keys:
            _check_names("csv_header", names, unique=True)
    if expected_columns is not None:
        if isinstance(expected_columns, str) or not isinstance(expected_columns, Sequence):
            raise InvalidTaskInputError(
                f"Invalid expected_columns {expected_columns!r}: pass the list of header names of the "
                "Pigment import configuration."
            )
        _check_names("expected_columns", list(expected_columns), unique=True)


def _check_names(argument: str, names: list[Any], *, unique: bool) -> None:
    for name in names:
        if not isinstance(name, str) or not name.strip():
            raise InvalidTaskInputError(
                f"Invalid name {name!r} in {argument}: every header name must be non-empty text."
            )
    if unique:
        repeated = sorted(name for name, count in Counter(names).items() if count > 1)
        if repeated:
            raise InvalidTaskInputError(
                f"{argument} repeats the names {repeated}: Pigment matches columns by header name, "
                "so each name must appear once."
            )


def result_header(
    columns: Sequence[str],
    *,
    csv_header: Sequence[str] | Mapping[str, str] | None = None,
    expected_columns: Sequence[str] | None = None,
) -> list[str]:
    """Return the header row to write for a result, after checking the result's column names.

    :param columns: column names from the result's ``ColumnMetadata``.
    :param csv_header: header names by position, or renames by column name.
    :param expected_columns: header the Pigment import configuration expects, in order.
    :raises ResultColumnsError: when a rename names an unknown column, the positional header
        has the wrong length, the header repeats a name, or it differs from ``expected_columns``.
    """
    columns = [str(name) for name in columns]
    if isinstance(csv_header, Mapping):
        repeated = sorted(name for name, count in Counter(columns).items() if count > 1 and name in csv_header)
        unknown = [name for name in csv_header if name not in columns]
        if unknown:
            raise ResultColumnsError(
                f"csv_header renames the columns {unknown}, which the query does not return "
                f"(its columns: {columns}). Fix the names, or alias the columns in the SQL."
            )
        if repeated:
            raise ResultColumnsError(
                f"csv_header renames {repeated}, but the query returns several columns with that name "
                f"(its columns: {columns}). Alias each column to a distinct name in the SQL."
            )
        header = [csv_header.get(name, name) for name in columns]
    elif csv_header is not None:
        header = [str(name) for name in csv_header]
        if len(header) != len(columns):
            raise ResultColumnsError(
                f"The header override has {len(header)} names ({header}) but the query returns "
                f"{len(columns)} columns ({columns}). Give one header name per selected column."
            )
    else:
        header = columns

    repeated = sorted(name for name, count in Counter(header).items() if count > 1)
    if repeated:
        raise ResultColumnsError(
            f"The CSV header would repeat the column names {repeated} (header: {header}). Pigment matches "
            "columns by header name: alias each column to a distinct name in the SQL, or set csv_header."
        )
    if expected_columns is not None and header != list(expected_columns):
        expected = list(expected_columns)
        missing = [name for name in expected if name not in header]
        extra = [name for name in header if name not in expected]
        detail = f"missing {missing}, unexpected {extra}" if missing or extra else "same names in another order"
        raise ResultColumnsError(
            f"The CSV header {header} does not match expected_columns {expected} ({detail}). Nothing was "
            "pushed to Pigment. Change the SELECT list or csv_header, or update expected_columns."
        )
    return header


class ResultValueError(PigmentRedshiftError, ValueError):
    """A result value cannot be written in the CSV file sent to Pigment.

    Raised while the result is written to the local file, before anything is pushed.
    """


def unencodable_value_error(error: UnicodeEncodeError, statement_id: str) -> ResultValueError:
    """Build the error for a result character that the CSV encoding cannot represent.

    :param error: the error raised while writing the CSV file.
    :param statement_id: the Data API statement whose result was being written.
    """
    characters = error.object[error.start : error.end]
    context = error.object[max(0, error.start - 30) : error.end + 30]
    return ResultValueError(
        f"The result of Redshift statement {statement_id} contains {characters!r}, which the CSV encoding "
        f"{error.encoding!r} cannot represent (near {context!r}). Nothing was pushed to Pigment. Set "
        "csv_encoding='utf-8' if the import configuration accepts it, or replace the characters in the SQL."
    )


def _short(value: Any) -> str:
    """Return ``repr(value)``, shortened to keep error messages readable."""
    text = repr(value)
    if len(text) <= _SHOWN_SQL_CHARS:
        return text
    return f"{text[: _SHOWN_SQL_CHARS - 20]}...{text[-17:]}"
