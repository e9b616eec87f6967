"""Daily import of TPC-H line items from Redshift into a Pigment transaction list.

Each run imports the line items of the orders placed during its data interval. The
interval bounds reach Redshift as Data API parameters, never inside the SQL text.

Set before running:

- connection ``pigment_redshift_default`` (type ``pigment_redshift``): the Redshift cluster;
- connection ``pigment_default`` (type ``pigment``): the Pigment Import API key;
- variable ``pigment_line_items_configuration_id``: the import configuration id of the
  transaction list (block Settings > Import configurations > Copy ID).
"""

from __future__ import annotations

import pendulum

from airflow.sdk import DAG
from airflow.timetables.interval import CronDataIntervalTimetable

from airflow_pigment_redshift.operators.redshift_to_pigment import RedshiftToPigmentOperator

with DAG(
    dag_id="example_redshift_to_pigment",
    description="Import each day's TPC-H line items into a Pigment transaction list.",
    # With a data-interval timetable each scheduled or backfilled run covers one whole day,
    # [day, day + 1). A manual run covers the whole day before its logical date.
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone=pendulum.UTC),
    start_date=pendulum.datetime(1995, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["pigment", "redshift", "example"],
) as dag:
    RedshiftToPigmentOperator(
        task_id="import_line_items",
        sql="sql/line_items_by_order_date.sql",
        parameters={
            "interval_start": "{{ data_interval_start | ds }}",
            "interval_end": "{{ data_interval_end | ds }}",
        },
        configuration_id="{{ var.value.pigment_line_items_configuration_id }}",
        redshift_conn_id="pigment_redshift_default",
        pigment_conn_id="pigment_default",
        poll_interval=5,
        import_poll_interval=2,
    )


if __name__ == "__main__":
    dag.test()
