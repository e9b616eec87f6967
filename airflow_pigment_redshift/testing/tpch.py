"""TPC-H data for tests and benchmarks: generation with ``tpchgen-cli`` and loading into DuckDB.

Run ``python -m airflow_pigment_redshift.testing.tpch --output-dir DIR --scale-factor SF``
to generate Parquet files, and add ``--duckdb PATH`` to load them into a DuckDB database.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb

log = logging.getLogger(__name__)

TPCH_TABLES = ("lineitem", "orders", "customer", "nation", "region", "part", "supplier", "partsupp")
SCALE_MARKER_FILE = ".tpch-scale-factor"

_KEY = "BIGINT"
_SMALL_KEY = "INTEGER"
_INTEGER = "INTEGER"
_MONEY = "DECIMAL(15,2)"
_DATE = "DATE"
_TEXT = "VARCHAR"

# Column types as a Redshift TPC-H schema declares them; the loader casts every column to them.
TPCH_COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "region": (("r_regionkey", _SMALL_KEY), ("r_name", _TEXT), ("r_comment", _TEXT)),
    "nation": (("n_nationkey", _SMALL_KEY), ("n_name", _TEXT), ("n_regionkey", _SMALL_KEY), ("n_comment", _TEXT)),
    "supplier": (
        ("s_suppkey", _KEY),
        ("s_name", _TEXT),
        ("s_address", _TEXT),
        ("s_nationkey", _SMALL_KEY),
        ("s_phone", _TEXT),
        ("s_acctbal", _MONEY),
        ("s_comment", _TEXT),
    ),
    "customer": (
        ("c_custkey", _KEY),
        ("c_name", _TEXT),
        ("c_address", _TEXT),
        ("c_nationkey", _SMALL_KEY),
        ("c_phone", _TEXT),
        ("c_acctbal", _MONEY),
        ("c_mktsegment", _TEXT),
        ("c_comment", _TEXT),
    ),
    "part": (
        ("p_partkey", _KEY),
        ("p_name", _TEXT),
        ("p_mfgr", _TEXT),
        ("p_brand", _TEXT),
        ("p_type", _TEXT),
        ("p_size", _INTEGER),
        ("p_container", _TEXT),
        ("p_retailprice", _MONEY),
        ("p_comment", _TEXT),
    ),
    "partsupp": (
        ("ps_partkey", _KEY),
        ("ps_suppkey", _KEY),
        ("ps_availqty", _INTEGER),
        ("ps_supplycost", _MONEY),
        ("ps_comment", _TEXT),
    ),
    "orders": (
        ("o_orderkey", _KEY),
        ("o_custkey", _KEY),
        ("o_orderstatus", _TEXT),
        ("o_totalprice", _MONEY),
        ("o_orderdate", _DATE),
        ("o_orderpriority", _TEXT),
        ("o_clerk", _TEXT),
        ("o_shippriority", _INTEGER),
        ("o_comment", _TEXT),
    ),
    "lineitem": (
        ("l_orderkey", _KEY),
        ("l_partkey", _KEY),
        ("l_suppkey", _KEY),
        ("l_linenumber", _INTEGER),
        ("l_quantity", _MONEY),
        ("l_extendedprice", _MONEY),
        ("l_discount", _MONEY),
        ("l_tax", _MONEY),
        ("l_returnflag", _TEXT),
        ("l_linestatus", _TEXT),
        ("l_shipdate", _DATE),
        ("l_commitdate", _DATE),
        ("l_receiptdate", _DATE),
        ("l_shipinstruct", _TEXT),
        ("l_shipmode", _TEXT),
        ("l_comment", _TEXT),
    ),
}


def find_tpchgen_cli() -> Path:
    """Return the ``tpchgen-cli`` executable, looking next to the running Python first and then on PATH.

    :raises FileNotFoundError: when neither place has it.
    """
    executable_name = "tpchgen-cli.exe" if os.name == "nt" else "tpchgen-cli"
    beside_python = Path(sys.executable).parent / executable_name
    if beside_python.is_file():
        return beside_python
    on_path = shutil.which("tpchgen-cli")
    if on_path is not None:
        return Path(on_path)
    raise FileNotFoundError(
        f"tpchgen-cli not found next to {sys.executable} or on PATH; install it with `pip install tpchgen-cli`"
    )


def parquet_path(tpch_dir: Path, table: str) -> Path:
    """Return the Parquet file that ``tpchgen-cli parquet`` writes for ``table``."""
    return Path(tpch_dir) / f"{table}.parquet"


def generate_tpch(output_dir: Path, scale_factor: float = 0.01) -> Path:
    """Generate the eight TPC-H tables as Parquet files with ``tpchgen-cli``.

    Generation is skipped when ``output_dir`` already contains all files for the same scale
    factor, as recorded in the marker file ``.tpch-scale-factor``.

    :param output_dir: directory for ``<table>.parquet``; created if missing.
    :param scale_factor: TPC-H scale factor; 1 is about 1 GB and 6 million lineitem rows.
    :return: ``output_dir``.
    :raises FileNotFoundError: when ``tpchgen-cli`` is not installed.
    :raises RuntimeError: when ``tpchgen-cli`` fails.
    """
    if scale_factor <= 0:
        raise ValueError(f"scale_factor must be positive, got {scale_factor}")
    output_dir = Path(output_dir)
    marker = output_dir / SCALE_MARKER_FILE
    scale_text = repr(float(scale_factor))
    complete = all(parquet_path(output_dir, table).is_file() for table in TPCH_TABLES)
    if complete and marker.is_file() and marker.read_text().strip() == scale_text:
        log.info("TPC-H scale factor %s already in %s, skipping generation", scale_text, output_dir)
        return output_dir

    output_dir.mkdir(parents=True, exist_ok=True)
    marker.unlink(missing_ok=True)
    command = [
        str(find_tpchgen_cli()),
        "parquet",
        "--scale-factor",
        scale_text,
        "--output-dir",
        str(output_dir),
        "--overwrite",
        "--quiet",
    ]
    log.info("Generating TPC-H scale factor %s into %s", scale_text, output_dir)
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise RuntimeError(
            f"tpchgen-cli failed with exit code {completed.returncode}: {completed.stderr.strip() or completed.stdout}"
        )
    missing = [table for table in TPCH_TABLES if not parquet_path(output_dir, table).is_file()]
    if missing:
        raise RuntimeError(f"tpchgen-cli did not write Parquet files for {', '.join(missing)} in {output_dir}")
    marker.write_text(scale_text + "\n")
    return output_dir


def load_tpch(connection_or_emulator: Any, tpch_dir: Path, schema: str = "tpch") -> dict[str, int]:
    """Create ``<schema>.<table>`` for the eight TPC-H tables from their Parquet files.

    Existing tables of the same name are replaced. Columns are cast to the types a Redshift
    TPC-H schema uses: BIGINT or INTEGER keys, DECIMAL(15,2) amounts, DATE dates, VARCHAR text.

    :param connection_or_emulator: a ``duckdb.DuckDBPyConnection``, or a ``RedshiftDataEmulator``
        whose ``execute_sql`` and ``query`` methods are used.
    :param tpch_dir: directory with ``<table>.parquet`` files from :func:`generate_tpch`.
    :param schema: target schema name.
    :return: row count per table name.
    """
    tpch_dir = Path(tpch_dir)
    missing = [table for table in TPCH_TABLES if not parquet_path(tpch_dir, table).is_file()]
    if missing:
        raise FileNotFoundError(f"no Parquet files for {', '.join(missing)} in {tpch_dir}; run generate_tpch first")

    if isinstance(connection_or_emulator, duckdb.DuckDBPyConnection):
        catalog = connection_or_emulator.execute("SELECT current_database()").fetchone()[0]
    else:
        catalog = connection_or_emulator.query("SELECT current_database()")[1][0][0]
    # The catalog is named explicitly because a database file named after the schema, such as
    # tpch.duckdb, makes a bare "tpch.lineitem" ambiguous in DuckDB.
    quoted_schema = f"{_quote_identifier(catalog)}.{_quote_identifier(schema)}"
    statements = [f"CREATE SCHEMA IF NOT EXISTS {quoted_schema}"]
    for table in TPCH_TABLES:
        columns = ", ".join(
            f"CAST({_quote_identifier(name)} AS {sql_type}) AS {_quote_identifier(name)}"
            for name, sql_type in TPCH_COLUMNS[table]
        )
        source = _quote_literal(str(parquet_path(tpch_dir, table).resolve()))
        statements.append(
            f"CREATE OR REPLACE TABLE {quoted_schema}.{_quote_identifier(table)} AS "
            f"SELECT {columns} FROM read_parquet({source})"
        )
    count_sql = " UNION ALL ".join(
        f"SELECT {_quote_literal(table)} AS table_name, COUNT(*) AS row_count "
        f"FROM {quoted_schema}.{_quote_identifier(table)}"
        for table in TPCH_TABLES
    )

    if isinstance(connection_or_emulator, duckdb.DuckDBPyConnection):
        for statement in statements:
            connection_or_emulator.execute(statement)
        rows = connection_or_emulator.execute(count_sql).fetchall()
    else:
        connection_or_emulator.execute_sql(";\n".join(statements))
        _, rows = connection_or_emulator.query(count_sql)
    counts = {str(table): int(count) for table, count in rows}
    log.info("Loaded TPC-H tables into schema %s: %s", schema, counts)
    return counts


def _quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _quote_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def main(argv: Sequence[str] | None = None) -> int:
    """Generate TPC-H Parquet files and optionally load them into a DuckDB database; return the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m airflow_pigment_redshift.testing.tpch",
        description="Generate TPC-H data as Parquet with tpchgen-cli and optionally load it into DuckDB.",
    )
    parser.add_argument("--output-dir", type=Path, required=True, help="directory for the Parquet files")
    parser.add_argument("--scale-factor", type=float, default=0.01, help="TPC-H scale factor (default: 0.01)")
    parser.add_argument(
        "--duckdb",
        type=Path,
        help="DuckDB database file to load the tables into; a file named after the schema "
        "(tpch.duckdb) makes tpch.<table> ambiguous in DuckDB queries",
    )
    parser.add_argument("--schema", default="tpch", help="schema for the loaded tables (default: tpch)")
    arguments = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    try:
        tpch_dir = generate_tpch(arguments.output_dir, arguments.scale_factor)
    except (FileNotFoundError, RuntimeError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if arguments.duckdb is not None:
        connection = duckdb.connect(str(arguments.duckdb))
        try:
            counts = load_tpch(connection, tpch_dir, arguments.schema)
        finally:
            connection.close()
        for table, count in counts.items():
            print(f"{arguments.schema}.{table}: {count} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
