"""Run the example DAG for three consecutive days against both local emulators.

Steps: generate TPC-H data, load it into the Redshift Data API emulator's DuckDB, start the
Redshift and Pigment emulators on loopback, then run ``airflow dags test`` once per day and
print what Pigment received. Everything is kept under ``.demo/``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import duckdb

from airflow_pigment_redshift.testing.tpch import generate_tpch, load_tpch

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / ".demo"
DAG_ID = "example_redshift_to_pigment"
CONFIGURATION_ID = "3f6c1a52-8d2e-4b7a-9c41-5e0d2f7a9b13"
API_KEY = "demo-import-key"
HEADER = [
    "order_key",
    "line_number",
    "order_date",
    "customer",
    "nation",
    "part",
    "quantity",
    "price",
    "discount",
    "net_revenue",
]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--first-day", type=date.fromisoformat, default=date(1995, 3, 1), help="first day imported")
    parser.add_argument("--days", type=int, default=3, help="number of consecutive days")
    parser.add_argument("--scale-factor", type=float, default=0.1, help="TPC-H scale factor")
    return parser.parse_args()


def start_emulator(module: str, ready_file: Path, log_file: Path, *args: str) -> tuple[subprocess.Popen, str]:
    ready_file.unlink(missing_ok=True)
    with log_file.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", module, "--host", "127.0.0.1", "--port", "0", "--ready-file", str(ready_file), *args],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    while not ready_file.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"{module} did not start; see {log_file}")
        time.sleep(0.1)
    return process, json.loads(ready_file.read_text())["url"]


def expected_line_items(tpch_dir: Path, day: date) -> int:
    query = (
        "SELECT count(*) FROM read_parquet(?) AS l JOIN read_parquet(?) AS o ON o.o_orderkey = l.l_orderkey "
        "WHERE o.o_orderdate = CAST(? AS DATE)"
    )
    lineitem = str(next(tpch_dir.glob("lineitem*.parquet")))
    orders = str(next(tpch_dir.glob("orders*.parquet")))
    return duckdb.connect().execute(query, [lineitem, orders, day.isoformat()]).fetchone()[0]


def airflow_environment(redshift_url: str, pigment_url: str) -> dict[str, str]:
    redshift_connection = {
        "conn_type": "pigment_redshift",
        "login": "AKIADEMOACCESSKEY",
        "password": "demo-secret-access-key",
        "extra": {
            "region_name": "eu-west-1",
            "cluster_identifier": "demo-cluster",
            "db_user": "pigment_db_user",
            "database": "dev",
            "endpoint_url": redshift_url,
        },
    }
    pigment_connection = {"conn_type": "pigment", "password": API_KEY, "extra": {"base_url": pigment_url}}
    return {
        **os.environ,
        "AIRFLOW_HOME": str(DEMO / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE": "True",
        "AIRFLOW_CONN_PIGMENT_REDSHIFT_DEFAULT": json.dumps(redshift_connection),
        "AIRFLOW_CONN_PIGMENT_DEFAULT": json.dumps(pigment_connection),
        "AIRFLOW_VAR_PIGMENT_LINE_ITEMS_CONFIGURATION_ID": CONFIGURATION_ID,
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def read_ledger(ledger: Path) -> list[dict]:
    if not ledger.exists():
        return []
    return [json.loads(line) for line in ledger.read_text().splitlines() if line.strip()]


def main() -> int:
    args = parse_args()
    airflow = Path(sys.executable).with_name("airflow")
    tpch_dir = DEMO / "tpch"
    pigment_dir = DEMO / "pigment"
    logs = DEMO / "logs"
    # Each demo starts from an empty Pigment and Airflow state; the TPC-H files are reused.
    for directory in (pigment_dir, logs, DEMO / "airflow"):
        shutil.rmtree(directory, ignore_errors=True)
    for directory in (tpch_dir, pigment_dir, logs, DEMO / "airflow"):
        directory.mkdir(parents=True, exist_ok=True)

    print(f"Generating TPC-H at scale factor {args.scale_factor} in {tpch_dir} ...", flush=True)
    generate_tpch(tpch_dir, scale_factor=args.scale_factor)
    database = DEMO / "redshift.duckdb"
    database.unlink(missing_ok=True)
    with duckdb.connect(str(database)) as connection:
        counts = load_tpch(connection, tpch_dir)
    print(f"Loaded TPC-H into {database}: {counts}", flush=True)

    configurations = DEMO / "pigment-configurations.json"
    configurations.write_text(
        json.dumps(
            [
                {
                    "id": CONFIGURATION_ID,
                    "name": "Line items from Redshift",
                    "block_name": "Line Items",
                    "block_type": "List",
                    "list_kind": "transaction",
                    "expected_header": HEADER,
                }
            ],
            indent=2,
        )
    )

    processes = []
    try:
        redshift, redshift_url = start_emulator(
            "airflow_pigment_redshift.testing.redshift_data_emulator",
            DEMO / "redshift-ready.json",
            logs / "redshift-emulator.log",
            "--duckdb",
            str(database),
        )
        processes.append(redshift)
        pigment, pigment_url = start_emulator(
            "airflow_pigment_redshift.testing.pigment_emulator",
            DEMO / "pigment-ready.json",
            logs / "pigment-emulator.log",
            "--data-dir",
            str(pigment_dir),
            "--api-key",
            API_KEY,
            "--configurations",
            str(configurations),
        )
        processes.append(pigment)
        print(f"Redshift Data API emulator: {redshift_url}\nPigment import API emulator: {pigment_url}", flush=True)

        env = airflow_environment(redshift_url, pigment_url)
        subprocess.run([str(airflow), "db", "migrate"], env=env, check=True, stdout=subprocess.DEVNULL)
        return run_days(args, airflow, env, tpch_dir, pigment_dir / "imports.jsonl", logs)
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


def run_days(
    args: argparse.Namespace, airflow: Path, env: dict[str, str], tpch_dir: Path, ledger: Path, logs: Path
) -> int:
    failures = 0
    for offset in range(args.days):
        day = args.first_day + timedelta(days=offset)
        expected = expected_line_items(tpch_dir, day)
        before = len(read_ledger(ledger))
        # A manual run of a daily data-interval DAG covers the day before its logical date.
        logical_date = (day + timedelta(days=1)).isoformat()
        log_file = logs / f"dags-test-{day.isoformat()}.log"
        with log_file.open("w") as log:
            result = subprocess.run(
                [str(airflow), "dags", "test", DAG_ID, logical_date], env=env, stdout=log, stderr=subprocess.STDOUT
            )
        new_imports = read_ledger(ledger)[before:]
        if result.returncode != 0 or len(new_imports) != 1:
            print(f"{day}: run failed (exit {result.returncode}, {len(new_imports)} imports); see {log_file}")
            failures += 1
            continue
        entry = new_imports[0]
        matches = entry["rows"] == expected and entry["status"] == "Completed"
        failures += not matches
        print(
            f"{day} (dags test logical date {logical_date}): import {entry['import_id']} {entry['status']}: {entry['rows']} rows, {entry['bytes']} bytes, "
            f"{entry['inserted']} inserted, {entry['skipped']} skipped; TPC-H has {expected} line items "
            f"that day -> {'OK' if matches else 'MISMATCH'}",
            flush=True,
        )
    print(f"Pigment received files and ledger in {ledger.parent}; Airflow logs in {logs}.")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
