"""Translation of Redshift SQL with ``:name`` placeholders into DuckDB SQL with ``$name`` parameters."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import SqlglotError
from sqlglot.tokens import TokenType

log = logging.getLogger(__name__)

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class TranslatedSql:
    """Result of translating one ``Sql`` request member.

    :param duckdb_sql: SQL to run on DuckDB, with ``$name`` named parameters.
    :param placeholder_names: distinct ``:name`` placeholders in order of first use.
    :param statement_count: number of SQL statements, or None when sqlglot could not parse the text.
    """

    duckdb_sql: str
    placeholder_names: tuple[str, ...]
    statement_count: int | None


def translate_sql(sql: str) -> TranslatedSql:
    """Translate Redshift SQL to DuckDB SQL.

    The text is parsed with sqlglot's Redshift dialect and generated in the DuckDB dialect,
    which is what ``sqlglot.transpile(sql, read="redshift", write="duckdb")`` does. sqlglot
    turns ``:name`` placeholders into ``$name``, while ``::`` casts and text inside string
    literals stay untouched. When sqlglot cannot parse the text, the raw text is used, and
    placeholders are found with sqlglot's tokenizer so that string literals are still skipped.

    :param sql: SQL text in the Redshift dialect.
    """
    try:
        # A comment after the last ";" comes back as a Semicolon expression, which is no statement.
        expressions = [
            expression
            for expression in sqlglot.parse(sql, read="redshift")
            if expression is not None and not isinstance(expression, exp.Semicolon)
        ]
    except SqlglotError as error:
        log.debug("sqlglot cannot parse the SQL, running the raw text on DuckDB: %s", error)
        duckdb_sql, names = _rewrite_placeholders_with_tokens(sql)
        return TranslatedSql(duckdb_sql, names, None)

    names: list[str] = []
    for expression in expressions:
        for placeholder in expression.find_all(exp.Placeholder):
            if placeholder.name and placeholder.name not in names:
                names.append(placeholder.name)
    duckdb_sql = ";\n".join(expression.sql(dialect="duckdb") for expression in expressions)
    return TranslatedSql(duckdb_sql, tuple(names), len(expressions))


def _rewrite_placeholders_with_tokens(sql: str) -> tuple[str, tuple[str, ...]]:
    """Replace each ``:name`` token pair in the raw text by ``$name``."""
    try:
        tokens = Dialect.get_or_raise("redshift").tokenize(sql)
    except SqlglotError:
        return sql, ()

    names: list[str] = []
    pieces: list[str] = []
    copied_up_to = 0
    for colon, name in zip(tokens, tokens[1:]):
        is_placeholder = (
            colon.token_type is TokenType.COLON
            and name.start == colon.end + 1
            and name.token_type not in (TokenType.STRING, TokenType.IDENTIFIER)
            and _NAME.fullmatch(name.text) is not None
        )
        if not is_placeholder:
            continue
        pieces.append(sql[copied_up_to : colon.start])
        pieces.append("$" + name.text)
        copied_up_to = name.end + 1
        if name.text not in names:
            names.append(name.text)
    pieces.append(sql[copied_up_to:])
    return "".join(pieces), tuple(names)


def parameter_error(placeholder_names: tuple[str, ...], parameters: Mapping[str, str]) -> str | None:
    """Return the statement error for placeholders without a value or values without a placeholder.

    :param placeholder_names: placeholders found in the SQL.
    :param parameters: request ``Parameters`` as a name-to-value mapping.
    :return: the ``Error`` text of the failed statement, or None when every name matches.
    """
    # NOTE: the wording of Redshift's errors for a missing or unused parameter is unverified.
    missing = [name for name in placeholder_names if name not in parameters]
    if missing:
        return f'ERROR: no value provided for parameter "{missing[0]}" used in the SQL as :{missing[0]}'
    unused = [name for name in parameters if name not in placeholder_names]
    if unused:
        return f'ERROR: parameter "{unused[0]}" is not used in the SQL'
    return None
