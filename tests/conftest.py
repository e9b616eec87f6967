"""Shared fixtures: an isolated Airflow home, TPC-H data and the two local emulators."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
DAGS_FOLDER = REPO_ROOT / "dags"

# Airflow reads its configuration when first imported, so the environment is set here,
# before any test module imports it.
_AIRFLOW_HOME = tempfile.mkdtemp(prefix="airflow-pigment-redshift-tests-")
os.environ.update(
    {
        "AIRFLOW_HOME": _AIRFLOW_HOME,
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_ACCESS_KEY_ID": "test-access-key",
        "AWS_SECRET_ACCESS_KEY": "test-secret-key",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }
)
os.environ.pop("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", None)

from airflow_pigment_redshift.testing.pigment_emulator import ImportConfiguration, PigmentEmulator  # noqa: E402
from airflow_pigment_redshift.testing.redshift_data_emulator import RedshiftDataEmulator  # noqa: E402
from airflow_pigment_redshift.testing.tpch import generate_tpch, load_tpch  # noqa: E402

LINE_ITEMS_CONFIGURATION_ID = "3f6c1a52-8d2e-4b7a-9c41-5e0d2f7a9b13"
PIGMENT_API_KEY = "test-import-key"
LINE_ITEMS_HEADER = [
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
LINE_ITEMS_SQL = (DAGS_FOLDER / "sql" / "line_items_by_order_date.sql").read_text()


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """Migrate the metadata database of the test Airflow home once per session."""
    airflow = Path(sys.executable).with_name("airflow")
    subprocess.run([str(airflow), "db", "migrate"], check=True, capture_output=True, env=os.environ.copy())
    return Path(_AIRFLOW_HOME)


@pytest.fixture(scope="session")
def tpch_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DuckDB file holding TPC-H at scale factor 0.01 in schema ``tpch``."""
    import duckdb

    directory = tmp_path_factory.mktemp("tpch")
    generate_tpch(directory / "parquet", scale_factor=0.01)
    database = directory / "redshift.duckdb"
    with duckdb.connect(str(database)) as connection:
        load_tpch(connection, directory / "parquet")
    return database


@pytest.fixture
def redshift_emulator_factory(tpch_database: Path) -> Iterator[Callable[..., RedshiftDataEmulator]]:
    """Start Redshift Data API emulators over the TPC-H database, with custom settings."""
    started: list[RedshiftDataEmulator] = []

    def start(**settings: Any) -> RedshiftDataEmulator:
        emulator = RedshiftDataEmulator(tpch_database, **settings).start()
        started.append(emulator)
        return emulator

    yield start
    for emulator in started:
        emulator.stop()


@pytest.fixture
def redshift_emulator(redshift_emulator_factory: Callable[..., RedshiftDataEmulator]) -> RedshiftDataEmulator:
    return redshift_emulator_factory()


def line_items_configuration() -> ImportConfiguration:
    """The transaction-list import configuration the example DAG pushes to."""
    return ImportConfiguration(
        id=LINE_ITEMS_CONFIGURATION_ID,
        name="Line items from Redshift",
        block_name="Line Items",
        block_type="List",
        list_kind="transaction",
        expected_header=LINE_ITEMS_HEADER,
    )


def redshift_connection(
    endpoint_url: str | None, *, secret_key: str = "test-secret-access-key", **extra: Any
) -> dict[str, Any]:
    """A ``pigment_redshift`` connection for the test cluster; ``extra`` adds or replaces extra keys."""
    return {
        "conn_type": "pigment_redshift",
        "login": "AKIATESTACCESSKEY",
        "password": secret_key,
        "extra": {
            "region_name": "eu-west-1",
            "cluster_identifier": "test-cluster",
            "db_user": "pigment_db_user",
            "database": "dev",
            **({"endpoint_url": endpoint_url} if endpoint_url else {}),
            **extra,
        },
    }


@pytest.fixture
def pigment_emulator(tmp_path: Path) -> Iterator[PigmentEmulator]:
    emulator = PigmentEmulator(
        tmp_path / "pigment", api_keys=[PIGMENT_API_KEY], configurations=[line_items_configuration()]
    ).start()
    yield emulator
    emulator.stop()


def set_connections(
    monkeypatch: pytest.MonkeyPatch, redshift: RedshiftDataEmulator, pigment: PigmentEmulator
) -> None:
    """Point the default connections at the emulators through ``AIRFLOW_CONN_*`` variables."""
    pigment_connection = {"conn_type": "pigment", "password": PIGMENT_API_KEY, "extra": {"base_url": pigment.url}}
    monkeypatch.setenv("AIRFLOW_CONN_PIGMENT_REDSHIFT_DEFAULT", json.dumps(redshift_connection(redshift.url)))
    monkeypatch.setenv("AIRFLOW_CONN_PIGMENT_DEFAULT", json.dumps(pigment_connection))
    monkeypatch.setenv("AIRFLOW_VAR_PIGMENT_LINE_ITEMS_CONFIGURATION_ID", LINE_ITEMS_CONFIGURATION_ID)


@pytest.fixture
def connections(
    monkeypatch: pytest.MonkeyPatch, redshift_emulator: RedshiftDataEmulator, pigment_emulator: PigmentEmulator
) -> tuple[RedshiftDataEmulator, PigmentEmulator]:
    """Both emulators, with the default connections pointing at them."""
    set_connections(monkeypatch, redshift_emulator, pigment_emulator)
    return redshift_emulator, pigment_emulator
