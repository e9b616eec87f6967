"""UNLOAD export: the emulator writes CSV parts into a moto S3 server; the exporter streams them."""

from __future__ import annotations

import io
from collections.abc import Iterator

import boto3
import pytest
from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from moto.server import ThreadedMotoServer

from airflow_pigment_redshift.csv_stream import CsvDialect, ResultCsvWriter
from airflow_pigment_redshift.hooks.redshift_data import RedshiftDataApiHook
from airflow_pigment_redshift.unload import QuoteAwareSplitter, UnloadExporter, UnloadSettings, unload_sql

BUCKET = "unload-bucket"


@pytest.fixture
def s3_server(monkeypatch) -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    boto3.client("s3", endpoint_url=url, region_name="us-east-1").create_bucket(Bucket=BUCKET)
    monkeypatch.setenv(
        "AIRFLOW_CONN_S3_UNLOAD",
        '{"conn_type": "aws", "login": "test", "password": "test", '
        f'"extra": {{"region_name": "us-east-1", "endpoint_url": "{url}"}}}}',
    )
    yield url
    server.stop()


def test_unload_sql_quotes_the_query():
    settings = UnloadSettings("s3://bucket/exports", "arn:aws:iam::123456789012:role/unload", max_file_size_mb=50)
    sql = unload_sql("SELECT 'it''s' AS x;", "s3://bucket/exports/run/", settings)
    assert sql == (
        "UNLOAD ('SELECT ''it''''s'' AS x') TO 's3://bucket/exports/run/' "
        "IAM_ROLE 'arn:aws:iam::123456789012:role/unload' FORMAT CSV HEADER MAXFILESIZE 50 MB"
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"s3_prefix": "bucket/prefix"}, "s3://bucket/prefix"),
        ({"max_file_size_mb": 2}, "5 to 6200"),
        ({"iam_role": ""}, "IAM role"),
    ],
)
def test_invalid_unload_settings_rejected(kwargs, message):
    values = {"s3_prefix": "s3://bucket/p", "iam_role": "default", **kwargs}
    with pytest.raises(ValueError, match=message):
        UnloadSettings(**values)


def test_splitter_cuts_only_outside_quotes():
    splitter = QuoteAwareSplitter()
    assert splitter.feed('1,"a\nb",x\n2,"c') == '1,"a\nb",x\n'
    assert splitter.feed('""\nd"\n3,e') == '2,"c""\nd"\n'
    assert splitter.flush() == "3,e"


def test_unload_streams_every_part_and_deletes_them(connections, redshift_emulator_factory, monkeypatch, s3_server):
    from tests.conftest import set_connections

    _, pigment = connections
    redshift = redshift_emulator_factory(unload_s3_endpoint_url=s3_server)
    set_connections(monkeypatch, redshift, pigment)
    sql = "SELECT * FROM tpch.lineitem ORDER BY l_orderkey, l_linenumber"
    _, truth = redshift.query(sql)
    settings = UnloadSettings(f"s3://{BUCKET}/exports", "default", max_file_size_mb=5)
    stream = io.StringIO(newline="")
    writer = ResultCsvWriter(stream, CsvDialect())

    export = UnloadExporter(RedshiftDataApiHook(), S3Hook(aws_conn_id="s3_unload"), settings).export(
        sql, writer, run_id="run-1"
    )

    unload = [statement for statement in redshift.statements if statement["sql"].startswith("UNLOAD")]
    assert len(unload) == 1
    assert "TO 's3://unload-bucket/exports/run-1/'" in unload[0]["sql"]
    assert export.rows == len(truth) == 60175
    # 60,175 rows of about 130 bytes do not fit in one 5 MB part.
    assert export.pages >= 2
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("l_orderkey,l_partkey,l_suppkey,l_linenumber,")
    assert lines[1].split(",")[:2] == [str(truth[0][0]), str(truth[0][1])]
    assert len(lines) == len(truth) + 1
    s3 = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix="exports/").get("KeyCount") == 0


def test_csv_json_and_unload_paths_deliver_the_same_rows(
    connections, redshift_emulator_factory, monkeypatch, s3_server
):
    from airflow_pigment_redshift.operators.redshift_to_pigment import RedshiftToPigmentOperator
    from airflow_pigment_redshift.testing.pigment_emulator import ImportConfiguration
    from tests.conftest import set_connections
    from tests.helpers import expected_rows, task_context
    from tests.test_result_paths import TRICKY_CONFIGURATION_ID, TRICKY_SETUP, TRICKY_SQL

    _, pigment = connections
    redshift = redshift_emulator_factory(unload_s3_endpoint_url=s3_server)
    set_connections(monkeypatch, redshift, pigment)
    redshift.execute_sql(TRICKY_SETUP)
    pigment.add_configuration(
        ImportConfiguration(id=TRICKY_CONFIGURATION_ID, name="Tricky cells", block_name="Tricky")
    )
    _, truth = redshift.query(TRICKY_SQL)
    paths = {
        "CSV": {"result_format": "CSV"},
        "JSON": {"result_format": "JSON"},
        "UNLOAD": {
            "unload_s3_prefix": f"s3://{BUCKET}/exports",
            "unload_above_bytes": 0,
            "s3_conn_id": "s3_unload",
        },
    }
    received = {}
    for try_number, (name, settings) in enumerate(paths.items(), start=1):
        operator = RedshiftToPigmentOperator(
            task_id=f"tricky_{name.lower()}",
            sql=TRICKY_SQL,
            configuration_id=TRICKY_CONFIGURATION_ID,
            poll_interval=1,
            import_poll_interval=0.1,
            deferrable=False,
            **settings,
        )
        summary = operator.execute(task_context(task_id=f"tricky_{name.lower()}", try_number=try_number))
        received[name] = pigment.received_rows(summary["import_id"])
        assert summary["rows"] == len(truth), name

    assert received["CSV"] == received["JSON"] == received["UNLOAD"] == expected_rows(truth)
    unloads = [statement["sql"] for statement in redshift.statements if statement["sql"].startswith("UNLOAD")]
    assert len(unloads) == 1
    s3 = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix="exports/").get("KeyCount") == 0


def test_unload_rejects_parameters():
    from airflow_pigment_redshift.operators.redshift_to_pigment import RedshiftToPigmentOperator

    with pytest.raises(ValueError, match="cannot be combined with parameters"):
        RedshiftToPigmentOperator(
            task_id="unload_with_parameters",
            sql="SELECT * FROM t WHERE d = :day",
            parameters={"day": "1995-03-01"},
            configuration_id="3f6c1a52-8d2e-4b7a-9c41-5e0d2f7a9b13",
            unload_s3_prefix="s3://bucket/exports",
        )


MIXED_TYPES_SQL = (
    "SELECT * FROM (VALUES "
    "(1, TRUE, 1.5::DOUBLE PRECISION, 'NaN'::DOUBLE PRECISION, 12.50::DECIMAL(10,2), DATE '1998-12-01', "
    "TIMESTAMP '2024-03-01 12:00:00.5', 'say \"hi\", then\nleave', ''), "
    "(2, FALSE, NULL, 1e20::DOUBLE PRECISION, NULL, NULL, TIMESTAMP '2024-03-01 12:00:00', NULL, 'héllo')"
    ") AS t(id, flag, ratio, special, amount, day, moment, note, empty) ORDER BY id"
)


def _run(client, emulator, sql: str, **request) -> str:
    statement_id = client.execute_statement(
        ClusterIdentifier="unload-cluster", Database="dev", DbUser="unload_user", Sql=sql, **request
    )["Id"]
    assert emulator.wait_for_status(statement_id, "FINISHED") == "FINISHED", emulator.statement(statement_id)
    return statement_id


def test_unload_cells_match_csv_pages(redshift_emulator_factory, s3_server):
    redshift = redshift_emulator_factory(unload_s3_endpoint_url=s3_server)
    client = boto3.client(
        "redshift-data",
        endpoint_url=redshift.url,
        region_name="eu-west-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    csv_id = _run(client, redshift, MIXED_TYPES_SQL, ResultFormat="CSV")
    page_text = "".join(
        record["CSVRecords"] for record in client.get_statement_result_v2(Id=csv_id)["Records"]
    )

    inner = MIXED_TYPES_SQL.replace("'", "''")
    _run(client, redshift, f"UNLOAD ('{inner}') TO 's3://{BUCKET}/mixed/' IAM_ROLE default FORMAT CSV HEADER")
    s3 = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")
    part = s3.get_object(Bucket=BUCKET, Key="mixed/0000_part_00")["Body"].read().decode()

    assert part == page_text
    assert part.splitlines()[1] == '1,true,1.5,NaN,12.50,1998-12-01,2024-03-01 12:00:00.5,"say ""hi"", then'
    assert part.endswith('2,false,,1e+20,,,2024-03-01 12:00:00,,héllo\n')


def test_unload_parts_within_maxfilesize(redshift_emulator_factory, s3_server):
    redshift = redshift_emulator_factory(unload_s3_endpoint_url=s3_server)
    client = boto3.client(
        "redshift-data",
        endpoint_url=redshift.url,
        region_name="eu-west-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    statement_id = _run(
        client,
        redshift,
        f"UNLOAD ('SELECT * FROM tpch.lineitem ORDER BY l_orderkey, l_linenumber') TO 's3://{BUCKET}/sized/' "
        "IAM_ROLE default FORMAT CSV HEADER MAXFILESIZE 5 MB",
    )

    s3 = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")
    objects = s3.list_objects_v2(Bucket=BUCKET, Prefix="sized/")["Contents"]
    assert [item["Key"] for item in objects] == ["sized/0000_part_00", "sized/0000_part_01"]
    assert all(item["Size"] <= 5 * 1024 * 1024 for item in objects)
    # The first part is filled to within one row (lineitem rows are under 200 bytes) of the limit.
    assert objects[0]["Size"] > 5 * 1024 * 1024 - 200
    bodies = [s3.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read().decode() for item in objects]
    assert all(body.startswith("l_orderkey,l_partkey,") for body in bodies)
    data_lines = sum(len(body.splitlines()) - 1 for body in bodies)
    assert data_lines == redshift.statement(statement_id)["result_rows"] == 60175
