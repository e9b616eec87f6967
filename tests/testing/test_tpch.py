"""Tests of TPC-H generation with tpchgen-cli and loading into DuckDB and the emulator."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest

from airflow_pigment_redshift.testing.redshift_data_emulator import RedshiftDataEmulator
from airflow_pigment_redshift.testing.tpch import (
    SCALE_MARKER_FILE,
    TPCH_TABLES,
    generate_tpch,
    load_tpch,
    parquet_path,
)

SCALE_FACTOR = 0.01


@pytest.fixture(scope="module")
def tpch_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """TPC-H Parquet files at scale factor 0.01, generated once for this module."""
    return generate_tpch(tmp_path_factory.mktemp("tpch"), SCALE_FACTOR)


def parquet_row_counts(tpch_dir: Path) -> dict[str, int]:
    """Count the rows of each Parquet file with a separate DuckDB connection."""
    connection = duckdb.connect()
    try:
        counts = {}
        for table in TPCH_TABLES:
            path = str(parquet_path(tpch_dir, table))
            counts[table] = connection.execute("SELECT count(*) FROM read_parquet(?)", [path]).fetchone()[0]
        return counts
    finally:
        connection.close()


def test_generate_writes_parquet(tpch_dir: Path) -> None:
    written = sorted(path.name for path in tpch_dir.glob("*.parquet"))

    assert written == sorted(f"{table}.parquet" for table in TPCH_TABLES)
    assert (tpch_dir / SCALE_MARKER_FILE).read_text().strip() == repr(SCALE_FACTOR)


def test_generate_skips_existing(tpch_dir: Path) -> None:
    before = {table: parquet_path(tpch_dir, table).stat().st_mtime_ns for table in TPCH_TABLES}

    generate_tpch(tpch_dir, SCALE_FACTOR)

    after = {table: parquet_path(tpch_dir, table).stat().st_mtime_ns for table in TPCH_TABLES}
    assert after == before


def test_generate_replaces_other_scale(tpch_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(tpch_dir, copy)
    (copy / SCALE_MARKER_FILE).write_text("0.02\n")
    before = parquet_path(copy, "region").stat().st_mtime_ns

    generate_tpch(copy, SCALE_FACTOR)

    assert parquet_path(copy, "region").stat().st_mtime_ns != before
    assert (copy / SCALE_MARKER_FILE).read_text().strip() == repr(SCALE_FACTOR)


def test_missing_cli_names_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    monkeypatch.setattr(sys, "executable", str(empty_bin / "python"))
    monkeypatch.setenv("PATH", str(empty_bin))

    with pytest.raises(FileNotFoundError, match="pip install tpchgen-cli"):
        generate_tpch(tmp_path / "out", SCALE_FACTOR)


def test_load_counts_match_parquet(tpch_dir: Path) -> None:
    expected = parquet_row_counts(tpch_dir)
    connection = duckdb.connect()
    try:
        counts = load_tpch(connection, tpch_dir)
    finally:
        connection.close()

    assert counts == expected
    assert all(count > 0 for count in counts.values())
    assert 55_000 < counts["lineitem"] < 65_000  # TPC-H lineitem has about 6 million rows per unit of scale


def test_load_column_types(tpch_dir: Path) -> None:
    connection = duckdb.connect()
    try:
        load_tpch(connection, tpch_dir, schema="bench")
        types = dict(
            connection.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = 'bench' AND table_name = 'lineitem'"
            ).fetchall()
        )
    finally:
        connection.close()

    assert types["l_orderkey"] == "BIGINT"
    assert types["l_linenumber"] == "INTEGER"
    assert types["l_extendedprice"] == "DECIMAL(15,2)"
    assert types["l_shipdate"] == "DATE"
    assert types["l_comment"] == "VARCHAR"


def test_load_into_same_named_file(tpch_dir: Path, tmp_path: Path) -> None:
    connection = duckdb.connect(str(tmp_path / "tpch.duckdb"))
    try:
        counts = load_tpch(connection, tpch_dir)
    finally:
        connection.close()

    assert counts == parquet_row_counts(tpch_dir)


def test_load_missing_files(tmp_path: Path) -> None:
    connection = duckdb.connect()
    try:
        with pytest.raises(FileNotFoundError, match="generate_tpch"):
            load_tpch(connection, tmp_path)
    finally:
        connection.close()


def test_emulator_serves_tpch_query(
    tpch_dir: Path,
    make_redshift_emulator: Callable[..., RedshiftDataEmulator],
    redshift_client_factory: Callable[[RedshiftDataEmulator | str], Any],
) -> None:
    emulator = make_redshift_emulator(page_size_rows=500)
    counts = load_tpch(emulator, tpch_dir)
    sql = (
        "SELECT l_returnflag, l_linestatus, SUM(l_quantity) AS sum_qty, COUNT(*) AS count_order "
        "FROM tpch.lineitem WHERE l_shipdate <= :ship_date "
        "GROUP BY l_returnflag, l_linestatus ORDER BY l_returnflag, l_linestatus"
    )
    _, expected_rows = emulator.query(sql, {"ship_date": "1998-09-02"})
    client = redshift_client_factory(emulator)

    statement_id = client.execute_statement(
        ClusterIdentifier="tpch-cluster",
        Database="dev",
        Sql=sql,
        Parameters=[{"name": "ship_date", "value": "1998-09-02"}],
        WaitTimeSeconds=30,
    )["Id"]
    records = client.get_statement_result(Id=statement_id)["Records"]

    assert [
        (row[0]["stringValue"], row[1]["stringValue"], row[2]["stringValue"], row[3]["longValue"]) for row in records
    ] == [(flag, status, str(quantity), count) for flag, status, quantity, count in expected_rows]
    assert sum(row[3]["longValue"] for row in records) < counts["lineitem"]


def test_tpch_cli_loads_database(tpch_dir: Path, tmp_path: Path) -> None:
    database = tmp_path / "warehouse.duckdb"

    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "airflow_pigment_redshift.testing.tpch",
            "--output-dir",
            str(tpch_dir),
            "--scale-factor",
            str(SCALE_FACTOR),
            "--duckdb",
            str(database),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    connection = duckdb.connect(str(database))
    try:
        lineitem_rows = connection.execute("SELECT count(*) FROM tpch.lineitem").fetchone()[0]
    finally:
        connection.close()

    assert completed.returncode == 0, completed.stderr
    assert f"tpch.lineitem: {lineitem_rows} rows" in completed.stdout.splitlines()
    assert lineitem_rows == parquet_row_counts(tpch_dir)["lineitem"]
