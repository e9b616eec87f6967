"""Mapping of DuckDB result types to Redshift column metadata and to cell text.

Cells are rendered by DuckDB SQL expressions, not in Python, because a result of a
million rows must render in seconds. Each column type supplies the expression for its
JSON ``Field`` union and for its CSV cell.

Text formats, shared by JSON ``stringValue`` cells and CSV cells:

- DECIMAL/NUMERIC: the exact decimal text with the column's scale, for example ``12.50``.
- DATE: ``YYYY-MM-DD``. TIME: ``HH:MM:SS[.ffffff]``.
- TIMESTAMP: ``YYYY-MM-DD HH:MM:SS[.ffffff]``, trailing zeros of the fraction dropped.
- TIMESTAMP WITH TIME ZONE: the same in UTC followed by ``+00``. The emulator's DuckDB
  sessions use the time zone UTC, which is also the Redshift default.
- BLOB: lowercase hexadecimal digits.
- JSON, LIST, STRUCT and MAP: JSON text, reported as ``super``.
- REAL/DOUBLE: DuckDB's shortest round-trip text, with ``NaN``, ``Infinity`` and
  ``-Infinity`` for the special values. In JSON they are bare ``NaN``/``Infinity`` tokens,
  which Python's ``json`` module (and so botocore) accepts.
- BOOLEAN: ``true``/``false`` in CSV, ``booleanValue`` in JSON.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

# NOTE: the exact text of numeric, timestamp, timestamptz and varbyte cells returned by a
# real Redshift cluster is unverified. Hexadecimal for varbyte and "+00" for timestamptz
# follow Redshift's SQL output formats.


class FieldKind(enum.Enum):
    """Member of the Data API ``Field`` union that carries a non-NULL cell."""

    LONG = "longValue"
    DOUBLE = "doubleValue"
    BOOLEAN = "booleanValue"
    STRING = "stringValue"


class TextForm(enum.Enum):
    """Method DuckDB uses to turn a non-NULL cell into text."""

    CAST = "cast"  # CAST(value AS VARCHAR); the text never needs JSON escaping or CSV quoting
    FREE_TEXT = "free_text"  # CAST(value AS VARCHAR); arbitrary characters, so escape and quote
    JSON_VALUE = "json_value"  # to_json(value), for nested types reported as super
    FLOAT = "float"  # CAST with Postgres spelling of NaN and the infinities
    HEX = "hex"  # lowercase hexadecimal of a BLOB
    BOOLEAN = "boolean"  # true / false


@dataclass(frozen=True)
class ColumnType:
    """Redshift view of one DuckDB result column type.

    :param type_name: Redshift type name reported in ``ColumnMetadata.typeName``.
    :param field_kind: ``Field`` union member used for non-NULL JSON cells.
    :param text_form: how the cell text is produced.
    :param precision: ``ColumnMetadata.precision``.
    :param scale: ``ColumnMetadata.scale``.
    :param is_signed: ``ColumnMetadata.isSigned``.
    :param is_case_sensitive: ``ColumnMetadata.isCaseSensitive``.
    """

    type_name: str
    field_kind: FieldKind
    text_form: TextForm
    precision: int = 0
    scale: int = 0
    is_signed: bool = False
    is_case_sensitive: bool = False


def _integer(type_name: str, precision: int) -> ColumnType:
    return ColumnType(type_name, FieldKind.LONG, TextForm.CAST, precision=precision, is_signed=True)


def _numeric(precision: int, scale: int = 0) -> ColumnType:
    return ColumnType("numeric", FieldKind.STRING, TextForm.CAST, precision=precision, scale=scale, is_signed=True)


def _text(type_name: str, text_form: TextForm = TextForm.CAST, *, case_sensitive: bool = False) -> ColumnType:
    return ColumnType(type_name, FieldKind.STRING, text_form, is_case_sensitive=case_sensitive)


# Keyed by DuckDBPyType.id. Unsigned types map to the smallest Redshift type that can store their values.
_SIMPLE_TYPES: dict[str, ColumnType] = {
    "boolean": ColumnType("bool", FieldKind.BOOLEAN, TextForm.BOOLEAN, precision=1),
    "tinyint": _integer("int2", 5),
    "utinyint": _integer("int2", 5),
    "smallint": _integer("int2", 5),
    "usmallint": _integer("int4", 10),
    "integer": _integer("int4", 10),
    "uinteger": _integer("int8", 19),
    "bigint": _integer("int8", 19),
    "ubigint": _numeric(20),
    "hugeint": _numeric(38),
    "uhugeint": _numeric(38),
    "float": ColumnType("float4", FieldKind.DOUBLE, TextForm.FLOAT, precision=8, is_signed=True),
    "double": ColumnType("float8", FieldKind.DOUBLE, TextForm.FLOAT, precision=17, is_signed=True),
    "varchar": _text("varchar", TextForm.FREE_TEXT, case_sensitive=True),
    "date": _text("date"),
    "time": _text("time"),
    "time with time zone": _text("timetz"),
    "time_ns": _text("time"),
    "timestamp": _text("timestamp"),
    "timestamp_s": _text("timestamp"),
    "timestamp_ms": _text("timestamp"),
    "timestamp_ns": _text("timestamp"),
    "timestamp with time zone": _text("timestamptz"),
    "interval": _text("interval"),
    "blob": _text("varbyte", TextForm.HEX),
    "uuid": _text("varchar"),
    "enum": _text("varchar", TextForm.FREE_TEXT, case_sensitive=True),
    "bit": _text("varchar"),
    "null": _text("varchar", TextForm.FREE_TEXT, case_sensitive=True),
}

_NESTED_TYPE_IDS = frozenset({"list", "array", "struct", "map", "union"})

_SUPER = _text("super", TextForm.FREE_TEXT, case_sensitive=True)
_NESTED_SUPER = _text("super", TextForm.JSON_VALUE, case_sensitive=True)


def column_type_for(duckdb_type: Any) -> ColumnType:
    """Map a DuckDB result type (``DuckDBPyType``) to its Redshift column type.

    Types without a Redshift counterpart (UUID, ENUM, BIT, a bare NULL) are reported as
    ``varchar`` with their DuckDB text.

    :param duckdb_type: the type from ``DuckDBPyRelation.types`` or a cursor description.
    """
    type_id = str(getattr(duckdb_type, "id", duckdb_type)).lower()
    if type_id == "decimal":
        width_and_scale = dict(duckdb_type.children)
        return _numeric(int(width_and_scale["precision"]), int(width_and_scale["scale"]))
    if type_id == "varchar" and str(duckdb_type).upper() == "JSON":
        return _SUPER
    if type_id in _NESTED_TYPE_IDS:
        return _NESTED_SUPER
    return _SIMPLE_TYPES.get(type_id, _text("varchar", TextForm.FREE_TEXT, case_sensitive=True))


def column_metadata(name: str, column_type: ColumnType) -> dict[str, Any]:
    """Build the ``ColumnMetadata`` entry of one result column.

    DuckDB does not report nullability, source schema or source table for a result
    column, so ``nullable`` is always 1 and ``schemaName``/``tableName`` are empty.
    """
    return {
        "isCaseSensitive": column_type.is_case_sensitive,
        "isCurrency": False,
        "isSigned": column_type.is_signed,
        "label": name,
        "length": 0,
        "name": name,
        "nullable": 1,
        "precision": column_type.precision,
        "scale": column_type.scale,
        "schemaName": "",
        "tableName": "",
        "typeName": column_type.type_name,
    }


def sql_string_literal(text: str) -> str:
    """Quote ``text`` as a SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def _text_sql(column: str, column_type: ColumnType) -> str:
    """Return the SQL expression for the text of a non-NULL cell."""
    form = column_type.text_form
    if form is TextForm.JSON_VALUE:
        return f"CAST(to_json({column}) AS VARCHAR)"
    if form is TextForm.HEX:
        return f"lower(hex({column}))"
    if form is TextForm.BOOLEAN:
        return f"CASE WHEN {column} THEN 'true' ELSE 'false' END"
    if form is TextForm.FLOAT:
        return (
            f"CASE WHEN isnan({column}) THEN 'NaN' "
            f"WHEN isinf({column}) THEN CASE WHEN {column} > 0 THEN 'Infinity' ELSE '-Infinity' END "
            f"ELSE CAST({column} AS VARCHAR) END"
        )
    return f"CAST({column} AS VARCHAR)"


def json_cell_sql(column: str, column_type: ColumnType) -> str:
    """Return a SQL expression that renders one cell as the JSON text of a ``Field`` union.

    :param column: SQL reference to the column.
    :param column_type: the column's type.
    """
    kind = column_type.field_kind
    if kind is FieldKind.BOOLEAN:
        value = f"CASE WHEN {column} THEN '{{\"booleanValue\":true}}' ELSE '{{\"booleanValue\":false}}' END"
    elif kind is FieldKind.STRING and column_type.text_form in (TextForm.FREE_TEXT, TextForm.JSON_VALUE):
        # to_json escapes quotes, backslashes and control characters of arbitrary text.
        value = f"concat('{{\"stringValue\":', CAST(to_json({_text_sql(column, column_type)}) AS VARCHAR), '}}')"
    elif kind is FieldKind.STRING:
        value = f"concat('{{\"stringValue\":\"', {_text_sql(column, column_type)}, '\"}}')"
    else:
        value = f"concat('{{\"{kind.value}\":', {_text_sql(column, column_type)}, '}}')"
    return f"CASE WHEN {column} IS NULL THEN '{{\"isNull\":true}}' ELSE {value} END"


def csv_cell_sql(column: str, column_type: ColumnType, *, null_text: str, empty_text: str) -> str:
    """Return a SQL expression that renders one cell as a CSV field.

    Quoting follows Python's ``csv`` module with ``QUOTE_MINIMAL``, ``,`` as delimiter and
    ``"`` as quote character: a field that contains a comma, a quote or a line feed is
    enclosed in quotes, with inner quotes doubled. A field that contains a carriage return
    is quoted as well, so that ``csv.reader`` reads it back unchanged.

    :param column: SQL reference to the column.
    :param column_type: the column's type.
    :param null_text: text written, unquoted, for NULL.
    :param empty_text: text written for an empty string.
    """
    text = _text_sql(column, column_type)
    if column_type.text_form in (TextForm.FREE_TEXT, TextForm.JSON_VALUE):
        if column_type.text_form is TextForm.JSON_VALUE:
            text = f"({text})"
        value = (
            f"CASE WHEN {text} = '' THEN {sql_string_literal(empty_text)} "
            f"WHEN regexp_matches({text}, '[\",\\r\\n]') THEN concat('\"', replace({text}, '\"', '\"\"'), '\"') "
            f"ELSE {text} END"
        )
    else:
        value = text
    return f"CASE WHEN {column} IS NULL THEN {sql_string_literal(null_text)} ELSE {value} END"
