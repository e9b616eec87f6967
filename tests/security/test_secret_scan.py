"""Runs of the example DAG, scanned for the credentials they used.

The scan covers every log record of the runs (botocore and httpx at DEBUG level included),
stdout and stderr, the task log files, XCom values, rendered template fields and trigger
rows. It searches them for the AWS secret access key, the AWS session token and the Pigment
Import API key.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from airflow_pigment_redshift.testing.pigment_emulator import PigmentEmulator
from airflow_pigment_redshift.testing.redshift_data_emulator import RedshiftDataEmulator
from tests.conftest import (
    DAGS_FOLDER,
    LINE_ITEMS_CONFIGURATION_ID,
    line_items_configuration,
    redshift_connection,
)

DAG_ID = "example_redshift_to_pigment"
AWS_SECRET_KEY = "wJalrXUtnFEMI-secret-4b2e8d71"
AWS_SESSION_TOKEN = "FwoGZXIvYXdzE-token-91c0ee5a"
PIGMENT_KEY = "M2pwLXBpZ21lbnQ-key-7f3a9c02"
# A key that the Pigment emulator rejects, so the run fails with a 401 error.
REJECTED_PIGMENT_KEY = "M2pwLXJldm9rZWQ-key-0d4e6b19"
SECRETS = (AWS_SECRET_KEY, AWS_SESSION_TOKEN, PIGMENT_KEY, REJECTED_PIGMENT_KEY)


@pytest.fixture
def secret_pigment(tmp_path: Path) -> Iterator[PigmentEmulator]:
    configuration = line_items_configuration()
    emulator = PigmentEmulator(tmp_path / "pigment", api_keys=[PIGMENT_KEY], configurations=[configuration]).start()
    yield emulator
    emulator.stop()


def set_secret_connections(
    monkeypatch: pytest.MonkeyPatch,
    redshift_emulator: RedshiftDataEmulator,
    secret_pigment: PigmentEmulator,
    pigment_key: str,
) -> None:
    connection = redshift_connection(
        redshift_emulator.url, secret_key=AWS_SECRET_KEY, aws_session_token=AWS_SESSION_TOKEN
    )
    pigment_connection = {"conn_type": "pigment", "password": pigment_key, "extra": {"base_url": secret_pigment.url}}
    monkeypatch.setenv("AIRFLOW_CONN_PIGMENT_REDSHIFT_DEFAULT", json.dumps(connection))
    monkeypatch.setenv("AIRFLOW_CONN_PIGMENT_DEFAULT", json.dumps(pigment_connection))
    monkeypatch.setenv("AIRFLOW_VAR_PIGMENT_LINE_ITEMS_CONFIGURATION_ID", LINE_ITEMS_CONFIGURATION_ID)


@pytest.fixture
def example_dag(airflow_db: Path) -> Any:
    from airflow.dag_processing.dagbag import DagBag

    dagbag = DagBag(dag_folder=str(DAGS_FOLDER))
    return dagbag.get_dag(DAG_ID)


def stored_texts(run_id: str) -> dict[str, str]:
    """Return the XCom values, rendered template fields and trigger rows of a run as text."""
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.models.trigger import Trigger
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    texts: dict[str, str] = {}
    with create_session() as session:
        for xcom in session.query(XComModel).filter(XComModel.dag_id == DAG_ID, XComModel.run_id == run_id):
            texts[f"xcom {xcom.task_id}.{xcom.key}"] = json.dumps(xcom.value, default=str)
        for rendered in session.query(RenderedTaskInstanceFields).filter(
            RenderedTaskInstanceFields.dag_id == DAG_ID, RenderedTaskInstanceFields.run_id == run_id
        ):
            texts[f"rendered {rendered.task_id}"] = json.dumps(rendered.rendered_fields, default=str)
        for trigger in session.query(Trigger):
            texts[f"trigger {trigger.id}"] = f"{trigger.classpath} {json.dumps(trigger.kwargs, default=str)}"
    return texts


def log_file_texts() -> dict[str, str]:
    logs = Path(os.environ["AIRFLOW_HOME"]) / "logs"
    return {f"log file {path}": path.read_text(errors="replace") for path in logs.rglob("*") if path.is_file()}


def leaks(texts: dict[str, str]) -> list[str]:
    return [f"{secret!r} in {where}" for where, text in texts.items() for secret in SECRETS if secret in text]


@pytest.mark.parametrize(
    ("deferrable", "pigment_key"),
    [(False, PIGMENT_KEY), (True, PIGMENT_KEY), (False, REJECTED_PIGMENT_KEY)],
    ids=["direct", "deferrable", "rejected-key"],
)
def test_dag_runs_leak_no_secret(
    example_dag, monkeypatch, redshift_emulator, secret_pigment, deferrable, pigment_key, capfd, caplog
):
    from airflow.providers.common.compat.sdk import redact
    from airflow.utils.state import DagRunState

    set_secret_connections(monkeypatch, redshift_emulator, secret_pigment, pigment_key)
    caplog.set_level(logging.DEBUG)
    example_dag.get_task("import_line_items").deferrable = deferrable

    dag_run = example_dag.test(logical_date=datetime(1995, 3, 2, tzinfo=timezone.utc))
    out, err = capfd.readouterr()

    if pigment_key == PIGMENT_KEY:
        assert dag_run.state == DagRunState.SUCCESS
        [entry] = secret_pigment.ledger()
        assert entry["status"] == "Completed"
    else:
        assert dag_run.state == DagRunState.FAILED
        assert secret_pigment.ledger() == []
        assert "HTTP 401" in out + err + "\n".join(record.getMessage() for record in caplog.records)
    # botocore logs the session token in its DEBUG request dump. Finding it in the raw records
    # proves that the scan reads the records before Airflow's masker redacts them.
    raw = "\n".join(record.getMessage() for record in caplog.records)
    assert AWS_SESSION_TOKEN in raw
    texts = {
        "stdout": out,
        "stderr": err,
        "log records as masked": "\n".join(str(redact(record.getMessage())) for record in caplog.records),
        **log_file_texts(),
        **stored_texts(dag_run.run_id),
    }
    if pigment_key == PIGMENT_KEY:
        assert any(where.startswith("xcom") for where in texts)
    assert any(where.startswith("rendered") for where in texts)
    assert leaks(texts) == []
