"""The CSV and JSON result paths, over raw signed HTTP and through botocore, deliver the same rows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_pigment_redshift.csv_stream import CsvDialect, ResultCsvWriter
from airflow_pigment_redshift.hooks.pigment import PigmentHook
from airflow_pigment_redshift.hooks.redshift_data import RedshiftDataApiHook
from airflow_pigment_redshift.testing.pigment_emulator import ImportConfiguration
from tests.conftest import REPO_ROOT
from tests.helpers import expected_rows

TRICKY_CONFIGURATION_ID = "0d9e6b1c-7f35-4a8e-b2c4-91e0a6f3d527"
TRICKY_SQL = "SELECT id, label, amount, day, stamp FROM tricky.cells ORDER BY id"

TRICKY_SETUP = """
CREATE SCHEMA IF NOT EXISTS tricky;
CREATE OR REPLACE TABLE tricky.cells (
    id INTEGER, label VARCHAR, amount DECIMAL(12, 2), day DATE, stamp TIMESTAMP
);
INSERT INTO tricky.cells VALUES
    (1, NULL, NULL, NULL, NULL),
    (2, '', 0.00, DATE '1995-03-01', TIMESTAMP '1995-03-01 00:00:00'),
    (3, 'say "hello"', -12.50, DATE '2024-02-29', TIMESTAMP '2024-02-29 23:59:59.123456'),
    (4, 'comma, and; semicolon', 1234567890.99, DATE '1970-01-01', TIMESTAMP '1970-01-01 12:00:00'),
    (5, 'two' || chr(10) || 'lines', 0.01, DATE '2000-12-31', TIMESTAMP '2000-12-31 08:30:00'),
    (6, 'naïve café — 日本語 ✓', 99.90, DATE '1999-01-01', TIMESTAMP '1999-01-01 01:02:03'),
    (7, '"', 5.00, DATE '2001-01-01', TIMESTAMP '2001-01-01 00:00:01'),
    (8, 'cr' || chr(13) || chr(10) || 'lf', 7.25, DATE '2002-02-02', TIMESTAMP '2002-02-02 02:02:02');
"""


def run_statement(hook: RedshiftDataApiHook, sql: str, result_format: str) -> str:
    statement_id = hook.execute_statement(sql, result_format=result_format)
    hook.wait_for_statement(statement_id, timeout=60, poll_interval=0.2)
    return statement_id


def export_and_push(hook: RedshiftDataApiHook, statement_id: str, result_format: str, path: Path) -> str:
    with path.open("w", encoding="utf-8", newline="") as stream:
        hook.stream_result(statement_id, ResultCsvWriter(stream, CsvDialect()), result_format=result_format)
    return PigmentHook().push_csv(TRICKY_CONFIGURATION_ID, path)


@pytest.fixture
def tricky(connections):
    redshift, pigment = connections
    redshift.execute_sql(TRICKY_SETUP)
    pigment.add_configuration(
        ImportConfiguration(id=TRICKY_CONFIGURATION_ID, name="Tricky cells", block_name="Tricky")
    )
    return redshift, pigment


def test_csv_and_json_paths_deliver_the_same_rows(tricky, tmp_path):
    redshift, pigment = tricky
    _, truth = redshift.query(TRICKY_SQL)
    received = {}
    files = {}
    for result_format in ("CSV", "JSON"):
        for raw in (True, False):
            hook = RedshiftDataApiHook(raw_result_pages=raw)
            statement_id = run_statement(hook, TRICKY_SQL, result_format)
            path = tmp_path / f"{result_format}-{raw}.csv"
            import_id = export_and_push(hook, statement_id, result_format, path)
            received[(result_format, raw)] = pigment.received_rows(import_id)
            files[(result_format, raw)] = pigment.received_file(import_id).read_bytes()

    expected = expected_rows(truth)
    # SQL NULL and the empty string both reach Pigment as an empty cell.
    assert expected[0] == ["1", "", "", "", ""]
    for key, rows in received.items():
        assert rows == expected, key
    # The raw reader writes exactly the bytes of the botocore reader.
    assert files[("CSV", True)] == files[("CSV", False)]
    assert files[("JSON", True)] == files[("JSON", False)]
    pigment.wait_for_idle()
    assert [entry["status"] for entry in pigment.ledger()] == ["Completed"] * 4


def test_raw_reader_reads_every_page_once(connections, redshift_emulator_factory, monkeypatch):
    from tests.conftest import set_connections

    _, pigment = connections
    small_pages = redshift_emulator_factory(page_size_rows=7)
    set_connections(monkeypatch, small_pages, pigment)
    hook = RedshiftDataApiHook()
    statement_id = run_statement(hook, "SELECT n_nationkey, n_name FROM tpch.nation ORDER BY 1", "CSV")
    stream = open(os.devnull, "w", newline="")
    with stream:
        export = hook.stream_result(statement_id, ResultCsvWriter(stream, CsvDialect()))

    pages = [
        entry["request"] for entry in small_pages.requests if entry["operation"] == "GetStatementResultV2"
    ]
    assert export.rows == 25
    assert export.pages == len(pages) == 4
    assert [page.get("NextToken") is None for page in pages] == [True, False, False, False]


def test_raw_reader_reports_service_errors(connections):
    from botocore.exceptions import ClientError

    hook = RedshiftDataApiHook()
    statement_id = run_statement(hook, "SELECT 1 AS one", "JSON")
    with pytest.raises(ClientError, match="ResultFormat JSON"):
        hook.stream_result(statement_id, ResultCsvWriter(open(os.devnull, "w"), CsvDialect()), result_format="CSV")


MEMORY_READER = """
import json, sys
from airflow_pigment_redshift.csv_stream import CsvDialect, ResultCsvWriter
from airflow_pigment_redshift.hooks.pigment import PigmentHook
from airflow_pigment_redshift.hooks.redshift_data import RedshiftDataApiHook
from airflow_pigment_redshift.push_body import push_streamed

def peak_mib():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024

def export(pipe):
    with pipe.open() as stream:
        return RedshiftDataApiHook().stream_result(sys.argv[1], ResultCsvWriter(stream, CsvDialect()))

push = lambda body: PigmentHook().push_stream(sys.argv[2], body)
import_id, result, _ = push_streamed(export, "utf-8", push, name="memory-test")
print(json.dumps({"rows": result.rows, "pages": result.pages, "import_id": import_id, "peak_mib": peak_mib()}))
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmHWM from /proc")
def test_million_rows_stream_in_bounded_memory(tricky, redshift_emulator_factory, monkeypatch, tmp_path):
    from tests.conftest import set_connections

    _, pigment = tricky
    redshift = redshift_emulator_factory(page_size_rows=10_000)
    set_connections(monkeypatch, redshift, pigment)
    sql = (
        "SELECT n AS id, 'row ' || n AS label, n * 0.01 AS amount, DATE '1995-01-01' + (n % 1000)::INTEGER AS day"
        " FROM generate_series(1, 1000000) AS t(n)"
    )
    statement_id = run_statement(RedshiftDataApiHook(), sql, "CSV")
    script = tmp_path / "reader.py"
    script.write_text(MEMORY_READER)

    completed = subprocess.run(
        [sys.executable, str(script), statement_id, TRICKY_CONFIGURATION_ID],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        check=False,
    )

    assert completed.returncode == 0, completed.stderr[-3000:]
    outcome = json.loads(completed.stdout.strip().splitlines()[-1])
    assert outcome["rows"] == 1_000_000
    assert outcome["pages"] == 100
    pigment.wait_for_idle(timeout=120)
    [entry] = pigment.ledger()
    assert entry["import_id"] == outcome["import_id"]
    assert entry["rows"] == 1_000_000
    assert entry["chunked"] is True
    # About 45 MiB of CSV are streamed to Pigment. The process, Airflow imports included (about
    # 170 MiB), must stay far below what holding the result would need.
    assert outcome["peak_mib"] < 320, outcome
