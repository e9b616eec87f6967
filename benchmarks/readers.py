"""One benchmark reader per process: read a finished statement's result and push it as CSV.

Run by :mod:`benchmarks.run`, never by hand. Prints one JSON line: ``wall_s``, ``rows``,
``bytes`` and ``peak_rss_mib`` (the process's maximum resident set size, imports included).
"""

from __future__ import annotations

import argparse
import csv
import functools
import http.client
import importlib
import json
import os
import resource
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

CONFIGURATION_ID = "6a1f3f8e-3c55-4d0e-9b7a-2f4d8c1e5a90"
PIGMENT_API_KEY = "bench-import-key"


def _push(pigment_url: str, path: Path) -> str:
    from airflow_pigment_redshift.hooks.pigment import PigmentHook

    return PigmentHook().push_csv(CONFIGURATION_ID, path)


def _csv_reader(arguments: argparse.Namespace, directory: Path, result_format: str) -> tuple[int, int]:
    """Stream the pages through ``ResultCsvWriter`` into a chunked push, as the operator does."""
    from airflow_pigment_redshift.csv_stream import CsvDialect, ResultCsvWriter
    from airflow_pigment_redshift.hooks.pigment import PigmentHook
    from airflow_pigment_redshift.hooks.redshift_data import RedshiftDataApiHook, ResultExport
    from airflow_pigment_redshift.push_body import CsvBodyPipe, push_streamed

    statement_id = arguments.csv_id if result_format == "CSV" else arguments.json_id
    hook = RedshiftDataApiHook()

    def export(pipe: CsvBodyPipe) -> ResultExport:
        with pipe.open() as stream:
            writer = ResultCsvWriter(stream, CsvDialect())
            return hook.stream_result(statement_id, writer, result_format=result_format)

    hook_push = functools.partial(PigmentHook().push_stream, CONFIGURATION_ID)
    _, result, size = push_streamed(export, "utf-8", hook_push, name="benchmark-push")
    return result.rows, size


def read_csv(arguments: argparse.Namespace, directory: Path) -> tuple[int, int]:
    """This provider's CSV path: GetStatementResultV2 pages streamed as CSV into the push to Pigment."""
    return _csv_reader(arguments, directory, "CSV")


def read_json(arguments: argparse.Namespace, directory: Path) -> tuple[int, int]:
    """This provider's JSON path: GetStatementResult pages streamed as CSV into the push to Pigment."""
    return _csv_reader(arguments, directory, "JSON")


def read_awswrangler(arguments: argparse.Namespace, directory: Path) -> tuple[int, Path]:
    """awswrangler's ``data_api.redshift.read_sql_query`` (runs the query), ``to_csv``, push."""
    import awswrangler as wr
    import boto3

    connection = wr.data_api.redshift.connect(
        cluster_id="bench-cluster",
        database="dev",
        db_user="bench_user",
        boto3_session=boto3.Session(region_name="eu-west-1"),
    )
    frame = wr.data_api.redshift.read_sql_query(arguments.sql, con=connection)
    path = directory / "out.csv"
    frame.to_csv(path, index=False)
    _push(arguments.pigment, path)
    return len(frame), path


def read_amazon_pandas(arguments: argparse.Namespace, directory: Path) -> tuple[int, Path]:
    """Read with the amazon provider's ``RedshiftDataHook`` in a NextToken loop, build a DataFrame, ``to_csv``, push."""
    import pandas as pd
    from airflow.providers.amazon.aws.hooks.redshift_data import RedshiftDataHook

    client = RedshiftDataHook(aws_conn_id="bench_aws").conn
    request: dict[str, Any] = {"Id": arguments.json_id}
    rows: list[list[Any]] = []
    columns: list[str] = []
    while True:
        page = client.get_statement_result(**request)
        if not columns:
            columns = [column["name"] for column in page["ColumnMetadata"]]
        for record in page["Records"]:
            rows.append([None if field.get("isNull") else next(iter(field.values())) for field in record])
        if not page.get("NextToken"):
            break
        request["NextToken"] = page["NextToken"]
    frame = pd.DataFrame(rows, columns=columns)
    path = directory / "out.csv"
    frame.to_csv(path, index=False)
    _push(arguments.pigment, path)
    return len(frame), path


def read_boto3_csv(arguments: argparse.Namespace, directory: Path) -> tuple[int, Path]:
    """Plain boto3: a GetStatementResultV2 loop writing each page's CSV text to a file, push."""
    import boto3

    client = boto3.client("redshift-data", region_name="eu-west-1", endpoint_url=arguments.redshift)
    path = directory / "out.csv"
    request: dict[str, Any] = {"Id": arguments.csv_id}
    rows = 0
    with path.open("w", encoding="utf-8", newline="") as stream:
        while True:
            page = client.get_statement_result_v2(**request)
            for record in page["Records"]:
                stream.write(record["CSVRecords"])
            if not page.get("NextToken"):
                rows = page["TotalNumRows"]
                break
            request["NextToken"] = page["NextToken"]
    _push(arguments.pigment, path)
    return rows, path


def read_download_only(arguments: argparse.Namespace, directory: Path) -> tuple[int, Path | None]:
    """Raw HTTP download of the same V2 pages; each body goes to a socket, nothing else."""
    redshift = urlsplit(arguments.redshift)
    connection = http.client.HTTPConnection(redshift.hostname, redshift.port)
    sink = socket.create_connection(("127.0.0.1", arguments.sink_port))
    headers = {
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": "RedshiftData.GetStatementResultV2",
    }
    request: dict[str, Any] = {"Id": arguments.csv_id}
    pages = 0
    while True:
        connection.request("POST", "/", body=json.dumps(request), headers=headers)
        body = connection.getresponse().read()
        sink.sendall(body)
        pages += 1
        # Only the token is searched for, so the page body is never decoded.
        marker = body.rfind(b'"NextToken":"')
        if marker < 0:
            break
        start = marker + len(b'"NextToken":"')
        request["NextToken"] = body[start : body.index(b'"', start)].decode()
    sink.close()
    connection.close()
    return arguments.rows, None


# Modules each reader imports before its timer starts, so wall times exclude import time.
WARM_IMPORTS: dict[str, tuple[str, ...]] = {
    "csv": (
        "airflow_pigment_redshift.hooks.redshift_data",
        "airflow_pigment_redshift.hooks.pigment",
        "airflow_pigment_redshift.push_body",
    ),
    "json": (
        "airflow_pigment_redshift.hooks.redshift_data",
        "airflow_pigment_redshift.hooks.pigment",
        "airflow_pigment_redshift.push_body",
    ),
    "awswrangler": ("awswrangler", "boto3", "airflow_pigment_redshift.hooks.pigment"),
    "amazon_pandas": (
        "pandas",
        "airflow.providers.amazon.aws.hooks.redshift_data",
        "airflow_pigment_redshift.hooks.pigment",
    ),
    "boto3_csv": ("boto3", "airflow_pigment_redshift.hooks.pigment"),
    "download_only": (),
}


def peak_rss_mib() -> float:
    """Peak resident set size of this process in MiB.

    ``VmHWM`` is used rather than ``ru_maxrss``, which Linux carries over from the parent
    process across ``execve``.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# A reader returns its row count and either the CSV file it pushed, the number of bytes it
# streamed, or None when it pushes nothing.
READERS: dict[str, Callable[[argparse.Namespace, Path], tuple[int, Path | int | None]]] = {
    "csv": read_csv,
    "json": read_json,
    "awswrangler": read_awswrangler,
    "amazon_pandas": read_amazon_pandas,
    "boto3_csv": read_boto3_csv,
    "download_only": read_download_only,
}


def main(argv: list[str] | None = None) -> int:
    """Run one reader and print its measurements as JSON."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.readers")
    parser.add_argument("reader", choices=sorted(READERS))
    parser.add_argument("--redshift", required=True)
    parser.add_argument("--pigment", required=True)
    parser.add_argument("--csv-id", required=True)
    parser.add_argument("--json-id", required=True)
    parser.add_argument("--sql", required=True)
    parser.add_argument("--rows", type=int, required=True)
    parser.add_argument("--sink-port", type=int, required=True)
    arguments = parser.parse_args(argv)

    for module in WARM_IMPORTS[arguments.reader]:
        importlib.import_module(module)
    with tempfile.TemporaryDirectory(prefix="bench-") as directory:
        started = time.perf_counter()
        rows, path = READERS[arguments.reader](arguments, Path(directory))
        wall = time.perf_counter() - started
        if isinstance(path, int):
            size, path = path, None
        else:
            size = path.stat().st_size if path else 0
        if path is not None:
            with path.open(newline="", encoding="utf-8") as stream:
                header = next(csv.reader(stream))
            if len(header) != 16:
                raise SystemExit(f"{arguments.reader} wrote a header of {len(header)} columns: {header}")
    print(json.dumps({"wall_s": wall, "rows": rows, "bytes": size, "peak_rss_mib": peak_rss_mib()}))
    return 0 if rows == arguments.rows else 1


if __name__ == "__main__":
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    sys.exit(main())
