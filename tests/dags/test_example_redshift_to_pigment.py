from __future__ import annotations

from datetime import datetime, timezone

import pytest

from tests.conftest import DAGS_FOLDER, LINE_ITEMS_HEADER, LINE_ITEMS_SQL
from tests.helpers import expected_rows

DAG_ID = "example_redshift_to_pigment"


@pytest.fixture
def example_dag(airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    dagbag = DagBag(dag_folder=str(DAGS_FOLDER))
    assert dagbag.import_errors == {}
    return dagbag.get_dag(DAG_ID)


@pytest.mark.parametrize("deferrable", [False, True])
def test_dag_imports_one_day(example_dag, connections, deferrable):
    from airflow.utils.state import DagRunState

    redshift, pigment = connections
    example_dag.get_task("import_line_items").deferrable = deferrable
    _, truth = redshift.query(LINE_ITEMS_SQL, {"interval_start": "1995-03-01", "interval_end": "1995-03-02"})

    # A manual run of a daily data-interval DAG covers the day before its logical date.
    dag_run = example_dag.test(logical_date=datetime(1995, 3, 2, tzinfo=timezone.utc))

    assert dag_run.state == DagRunState.SUCCESS
    [entry] = pigment.ledger()
    assert entry["status"] == "Completed"
    assert entry["rows"] == len(truth) > 0
    assert pigment.received_header(entry["import_id"]) == LINE_ITEMS_HEADER
    assert pigment.received_rows(entry["import_id"]) == expected_rows(truth)
    [statement] = redshift.statements
    assert statement["parameters"] == {"interval_start": "1995-03-01", "interval_end": "1995-03-02"}
    assert ":interval_start" in statement["sql"]
