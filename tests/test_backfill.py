"""Backfill of the example DAG with real Airflow components, checked against the Pigment ledger.

The test starts the api-server (the LocalExecutor's task processes report through its
execution API), the scheduler, the dag-processor and the triggerer as separate processes
on one metadata database, runs ``airflow backfill create`` over five days, then clears one
day. The tasks run deferrable, so both waits go through the triggerer.

The metadata database is the PostgreSQL named by ``PIGMENT_TEST_DATABASE_URL``, which
``.ci/run`` starts. SQLite cannot serve four components at once ("database is locked"), so
without that variable the test is skipped.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy

from airflow_pigment_redshift.testing.pigment_emulator import PigmentEmulator
from tests.conftest import (
    DAGS_FOLDER,
    LINE_ITEMS_CONFIGURATION_ID,
    LINE_ITEMS_SQL,
    PIGMENT_API_KEY,
    line_items_configuration,
    redshift_connection,
)
from tests.helpers import expected_rows

pytestmark = pytest.mark.airflow_components

DAG_ID = "example_redshift_to_pigment"
FIRST_DAY = date(1995, 3, 1)
DAYS = 5
CLEARED_DAY = date(1995, 3, 3)
AIRFLOW = str(Path(sys.executable).with_name("airflow"))
COMPONENTS = (("api-server",), ("scheduler",), ("dag-processor",), ("triggerer",))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def component_environment(home: Path, database_url: str, redshift_url: str, pigment_url: str) -> dict[str, str]:
    port = free_port()
    connection = redshift_connection(redshift_url)
    pigment_connection = {"conn_type": "pigment", "password": PIGMENT_API_KEY, "extra": {"base_url": pigment_url}}
    environment = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database_url,
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": database_url.replace("+psycopg:", "+psycopg_async:"),
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API_AUTH__JWT_SECRET": "backfill-test-jwt-secret",
        "AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE": "True",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
        "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
        "AIRFLOW_CONN_PIGMENT_REDSHIFT_DEFAULT": json.dumps(connection),
        "AIRFLOW_CONN_PIGMENT_DEFAULT": json.dumps(pigment_connection),
        "AIRFLOW_VAR_PIGMENT_LINE_ITEMS_CONFIGURATION_ID": LINE_ITEMS_CONFIGURATION_ID,
    }
    return environment


def airflow(environment: dict[str, str], *arguments: str) -> str:
    result = subprocess.run(
        [AIRFLOW, *arguments], env=environment, capture_output=True, text=True, timeout=180, check=False
    )
    assert result.returncode == 0, f"airflow {' '.join(arguments)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def log_tails(logs: Path) -> str:
    """Return the end of every component and task log, for failure messages."""
    paths = [*sorted(logs.glob("*.log")), *sorted(logs.parent.glob("airflow-home/logs/dag_id=*/**/attempt=*.log"))]
    return "\n".join(f"--- {path}\n{path.read_text(errors='replace')[-4000:]}" for path in paths)


def wait_for(condition: Callable[[], Any], timeout: float, what: str, logs: Path, engine: Any) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        runs = dag_runs(engine)
        if any(run["state"] == "failed" for run in runs):
            raise AssertionError(
                f"A backfill run failed while waiting for {what}: {runs}\n"
                f"Task instances: {task_instances(engine)}\n{log_tails(logs)}"
            )
        time.sleep(1)
    raise AssertionError(
        f"Timed out after {timeout:.0f} s waiting for {what}: {dag_runs(engine)}\n"
        f"Task instances: {task_instances(engine)}\n{log_tails(logs)}"
    )


@pytest.fixture
def metadata_database() -> str:
    """URL of a PostgreSQL database for the components, from ``PIGMENT_TEST_DATABASE_URL``."""
    url = os.environ.get("PIGMENT_TEST_DATABASE_URL")
    if not url:
        pytest.skip(
            "PIGMENT_TEST_DATABASE_URL is not set: the backfill test needs PostgreSQL, because SQLite fails with "
            "'database is locked' when the scheduler, dag-processor, triggerer and api-server share it. "
            ".ci/run starts a PostgreSQL cluster and sets the variable."
        )
    return url


@pytest.fixture
def slow_emulators(redshift_emulator_factory: Any, tmp_path: Path) -> Iterator[tuple[Any, Any]]:
    """Emulators whose statements and imports take seconds, as real ones do.

    NOTE: in Airflow 3.3.2 a trigger that fires before the scheduler has processed the
    executor event of the deferring try makes the scheduler fail the task ("finished with
    state success, but the task instance's state attribute is queued"). Instant statements
    and imports hit that race, so both emulators take several seconds: with 3 s, a scheduler
    slowed down by other processes on a 2-core machine still lost the race once.
    """
    redshift = redshift_emulator_factory(running_seconds=8)
    configuration = line_items_configuration()
    pigment = PigmentEmulator(
        tmp_path / "pigment", api_keys=[PIGMENT_API_KEY], configurations=[configuration], processing_seconds=8
    ).start()
    yield redshift, pigment
    pigment.stop()


@pytest.fixture
def airflow_components(
    metadata_database: str, tmp_path: Path, slow_emulators: tuple[Any, Any]
) -> Iterator[tuple[dict[str, str], Any, Path]]:
    """Start the four Airflow components on a fresh metadata database; stop them at teardown."""
    home = tmp_path / "airflow-home"
    logs = tmp_path / "logs"
    home.mkdir()
    logs.mkdir()
    redshift_emulator, pigment_emulator = slow_emulators
    environment = component_environment(home, metadata_database, redshift_emulator.url, pigment_emulator.url)
    airflow(environment, "db", "reset", "--yes", "--skip-init")
    airflow(environment, "db", "migrate")
    processes = []
    for command in COMPONENTS:
        log = (logs / f"{command[0]}.log").open("w")
        processes.append(
            subprocess.Popen([AIRFLOW, *command], env=environment, stdout=log, stderr=subprocess.STDOUT, cwd=home)
        )
    try:
        yield environment, sqlalchemy.create_engine(environment["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]), logs
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def dag_runs(engine: Any) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        rows = connection.execute(
            sqlalchemy.text(
                "SELECT run_id, state, clear_number, data_interval_start FROM dag_run "
                "WHERE dag_id = :dag_id AND run_type = 'backfill' ORDER BY data_interval_start"
            ),
            {"dag_id": DAG_ID},
        )
        return [dict(row._mapping) for row in rows]


def task_instances(engine: Any) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        rows = connection.execute(
            sqlalchemy.text("SELECT run_id, state, try_number FROM task_instance WHERE dag_id = :dag_id"),
            {"dag_id": DAG_ID},
        )
        return [dict(row._mapping) for row in rows]


def dag_is_parsed(engine: Any) -> bool:
    with engine.connect() as connection:
        count = connection.execute(
            sqlalchemy.text("SELECT count(*) FROM serialized_dag WHERE dag_id = :dag_id"), {"dag_id": DAG_ID}
        ).scalar()
    return bool(count)


def imports_by_day(pigment: Any, redshift: Any) -> dict[date, list[str]]:
    """Map each day to the ids of the Completed imports whose rows are exactly that day's rows."""
    truth = {}
    for offset in range(DAYS):
        day = FIRST_DAY + timedelta(days=offset)
        _, rows = redshift.query(
            LINE_ITEMS_SQL, {"interval_start": day.isoformat(), "interval_end": (day + timedelta(days=1)).isoformat()}
        )
        truth[day] = expected_rows(rows)
    found: dict[date, list[str]] = {day: [] for day in truth}
    for entry in pigment.ledger():
        assert entry["status"] == "Completed", entry
        received = pigment.received_rows(entry["import_id"])
        [day] = [day for day, rows in truth.items() if rows == received]
        found[day].append(entry["import_id"])
    return found


def test_backfill_imports_each_day_once(airflow_components, slow_emulators):
    environment, engine, logs = airflow_components
    redshift_emulator, pigment_emulator = slow_emulators
    wait_for(lambda: dag_is_parsed(engine), 180, "the dag-processor to parse the example DAG", logs, engine)

    # With a data-interval timetable the backfill dates are the interval starts (logical dates).
    airflow(
        environment,
        "backfill", "create", "--dag-id", DAG_ID,
        "--from-date", FIRST_DAY.isoformat(),
        "--to-date", (FIRST_DAY + timedelta(days=DAYS - 1)).isoformat(),
        # One run at a time keeps the load of two CI cores below the components' heartbeat limits.
        "--max-active-runs", "1",
    )  # fmt: skip

    def all_succeeded() -> bool:
        runs = dag_runs(engine)
        return len(runs) == DAYS and all(run["state"] == "success" for run in runs)

    wait_for(all_succeeded, 420, f"{DAYS} successful backfill runs", logs, engine)
    interval_days = [str(run["data_interval_start"])[:10] for run in dag_runs(engine)]
    assert interval_days == [(FIRST_DAY + timedelta(days=offset)).isoformat() for offset in range(DAYS)]
    pigment_emulator.wait_for_idle()
    imported = imports_by_day(pigment_emulator, redshift_emulator)
    assert {day: len(ids) for day, ids in imported.items()} == {day: 1 for day in imported}

    airflow(
        environment,
        "tasks", "clear", DAG_ID, "--yes",
        "--start-date", CLEARED_DAY.isoformat(), "--end-date", CLEARED_DAY.isoformat(),
    )  # fmt: skip

    def cleared_run_succeeded() -> bool:
        runs = dag_runs(engine)
        cleared = [run for run in runs if run["clear_number"] > 0]
        return len(cleared) == 1 and all(run["state"] == "success" for run in runs)

    wait_for(cleared_run_succeeded, 300, "the cleared run to succeed again", logs, engine)
    pigment_emulator.wait_for_idle()
    imported_after_clear = imports_by_day(pigment_emulator, redshift_emulator)
    expected = {day: 2 if day == CLEARED_DAY else 1 for day in imported_after_clear}
    assert {day: len(ids) for day, ids in imported_after_clear.items()} == expected
    assert imported_after_clear[CLEARED_DAY][0] == imported[CLEARED_DAY][0]
    # The scheduler also starts the DAG's latest scheduled run, a day without rows in TPC-H.
    backfill_statements = [
        statement for statement in redshift_emulator.statements if statement["parameters"]["interval_start"] < "2000"
    ]
    assert len(backfill_statements) == DAYS + 1
