"""Application access: a task is rejected before any query when its application is not listed."""

from __future__ import annotations

import json
import os

import pytest

from airflow_pigment_redshift.application_access import ApplicationNotAllowedError
from airflow_pigment_redshift.operators.redshift_to_pigment import RedshiftToPigmentOperator
from tests.conftest import LINE_ITEMS_CONFIGURATION_ID, LINE_ITEMS_SQL
from tests.helpers import task_context

DAY = {"interval_start": "1995-03-01", "interval_end": "1995-03-02"}


def limit_applications(monkeypatch: pytest.MonkeyPatch, allowed: str) -> None:
    connection = json.loads(os.environ["AIRFLOW_CONN_PIGMENT_REDSHIFT_DEFAULT"])
    connection["extra"]["allowed_applications"] = allowed
    monkeypatch.setenv("AIRFLOW_CONN_PIGMENT_REDSHIFT_DEFAULT", json.dumps(connection))


def make_operator(application: str | None) -> RedshiftToPigmentOperator:
    return RedshiftToPigmentOperator(
        task_id="import_line_items",
        sql=LINE_ITEMS_SQL,
        parameters=DAY,
        configuration_id=LINE_ITEMS_CONFIGURATION_ID,
        application=application,
        deferrable=False,
        poll_interval=1,
        import_poll_interval=0.05,
    )


def submitted(redshift) -> list:
    return [entry for entry in redshift.requests if entry["operation"] == "ExecuteStatement"]


@pytest.mark.parametrize("application", ["Sales Forecast", None])
def test_unlisted_application_rejected_before_query(connections, monkeypatch, application):
    redshift, pigment = connections
    limit_applications(monkeypatch, "Finance Planning, 6f0d2c1e-app")

    with pytest.raises(ApplicationNotAllowedError, match="'Application access' .*Finance Planning, 6f0d2c1e-app"):
        make_operator(application).execute(task_context())

    assert submitted(redshift) == []
    assert pigment.ledger() == []


def test_listed_application_imports(connections, monkeypatch):
    redshift, pigment = connections
    limit_applications(monkeypatch, "Finance Planning\n6f0d2c1e-app")

    summary = make_operator("finance planning").execute(task_context())

    assert len(submitted(redshift)) == 1
    assert [entry["import_id"] for entry in pigment.ledger()] == [summary["import_id"]]


def test_empty_list_allows_any_application(connections):
    redshift, _ = connections

    make_operator("Sales Forecast").execute(task_context())

    assert len(submitted(redshift)) == 1
