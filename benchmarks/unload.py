"""Benchmark of the UNLOAD path at 6 million rows: the readers and the part of the run that drives them.

:func:`benchmark_unload`, called by :mod:`benchmarks.run`, needs TPC-H at scale factor 1,
which :func:`prepare_unload_database` generates once into ``benchmarks/.data/``. It has a
DuckDB file of its own, so the smaller runs keep their data. The run starts a moto S3 server
in its own process, a Redshift Data API emulator whose UNLOAD writes into it, and a Pigment
emulator, all on 127.0.0.1. Each reader then runs in its own process
(``python -m benchmarks.unload READER ...``) and prints one JSON line like the readers of
:mod:`benchmarks.readers`:

- ``unload``: :class:`~airflow_pigment_redshift.unload.UnloadExporter` as the operator uses it.
  Its wall time includes the UNLOAD statement in the emulator, listing and reading the parts,
  writing the Pigment CSV and the push.
- ``unload_download_only``: ``http.client`` GETs of the parts of one UNLOAD run before the
  readers, each body written to a discarding socket, with no decoding and no push.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.client
import importlib
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

BUCKET = "bench-unload"
# Parts of the run before the readers, read by unload_download_only.
BASELINE_PREFIX = "baseline/"
# Parts of the unload reader's runs. Each run writes below its own sub-prefix and deletes it.
EXPORT_PREFIX = "exports"
# TPC-H scale factor 1 contains 6,001,215 line items.
SCALE_FACTOR = 1.0
# The operator's default unload_max_file_size_mb, which gives three parts for 6M rows.
MAX_FILE_SIZE_MB = 256
S3_CONNECTION_ID = "bench_s3"
ACCESS_KEY_ID = "AKIAUNLOADBENCHMARK"
SECRET_ACCESS_KEY = "benchmark-secret"
_CHUNK_BYTES = 1 << 20


# ---------------------------------------------------------------------------------------------
# Readers (run in their own process)
# ---------------------------------------------------------------------------------------------


def read_unload(arguments: argparse.Namespace, directory: Path) -> tuple[int, int]:
    """This provider's UNLOAD path: UNLOAD, parts read from S3 and streamed as CSV into the push."""
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    from airflow_pigment_redshift.csv_stream import CsvDialect, ResultCsvWriter
    from airflow_pigment_redshift.hooks.pigment import PigmentHook
    from airflow_pigment_redshift.hooks.redshift_data import RedshiftDataApiHook, ResultExport
    from airflow_pigment_redshift.unload import UnloadExporter, UnloadSettings
    from airflow_pigment_redshift.push_body import CsvBodyPipe, push_streamed
    from benchmarks.readers import CONFIGURATION_ID

    settings = UnloadSettings(
        f"s3://{arguments.bucket}/{EXPORT_PREFIX}", "default", max_file_size_mb=arguments.max_file_size_mb
    )
    exporter = UnloadExporter(RedshiftDataApiHook(), S3Hook(aws_conn_id=S3_CONNECTION_ID), settings)

    def export(pipe: CsvBodyPipe) -> ResultExport:
        with pipe.open() as stream:
            return exporter.export(arguments.sql, ResultCsvWriter(stream, CsvDialect()))

    hook_push = functools.partial(PigmentHook().push_stream, CONFIGURATION_ID)
    _, result, size = push_streamed(export, "utf-8", hook_push, name="benchmark-unload-push")
    return result.rows, size


def read_unload_download_only(arguments: argparse.Namespace, directory: Path) -> tuple[int, int]:
    """List and GET the baseline parts over raw HTTP; each body goes to a socket, nothing else.

    Requests are signed with botocore's SigV4 signer, because moto rejects anonymous reads of
    a private object. Only the XML of the listing is parsed.
    """
    s3 = urlsplit(arguments.s3)
    connection = http.client.HTTPConnection(s3.hostname, s3.port)
    sink = socket.create_connection(("127.0.0.1", arguments.sink_port))
    keys = _list_keys(connection, arguments.s3, arguments.bucket, arguments.prefix)
    if not keys:
        raise SystemExit(f"No objects under s3://{arguments.bucket}/{arguments.prefix} to download.")
    for key in keys:
        path = f"/{arguments.bucket}/{quote(key)}"
        connection.request("GET", path, headers=_signed_headers(arguments.s3 + path))
        response = connection.getresponse()
        if response.status != 200:
            raise SystemExit(f"GET s3://{arguments.bucket}/{key} failed with HTTP {response.status}.")
        while chunk := response.read(_CHUNK_BYTES):
            sink.sendall(chunk)
    sink.close()
    connection.close()
    return arguments.rows, 0


def _signed_headers(url: str) -> dict[str, str]:
    """Sign a GET of ``url`` with SigV4 and the benchmark's fake credentials, and return its headers."""
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(method="GET", url=url)
    S3SigV4Auth(Credentials(ACCESS_KEY_ID, SECRET_ACCESS_KEY), "s3", "us-east-1").add_auth(request)
    return dict(request.headers.items())


def _list_keys(connection: http.client.HTTPConnection, url: str, bucket: str, prefix: str) -> list[str]:
    """Return the keys under ``prefix`` with ListObjectsV2, following continuation tokens."""
    keys: list[str] = []
    token = ""
    while True:
        query = f"list-type=2&prefix={quote(prefix, safe='')}" + (
            f"&continuation-token={quote(token, safe='')}" if token else ""
        )
        path = f"/{bucket}?{query}"
        connection.request("GET", path, headers=_signed_headers(url + path))
        response = connection.getresponse()
        body = response.read().decode()
        if response.status != 200:
            raise SystemExit(f"ListObjectsV2 of s3://{bucket}/{prefix} failed with HTTP {response.status}: {body}")
        keys += re.findall(r"<Key>([^<]*)</Key>", body)
        match = re.search(r"<NextContinuationToken>([^<]*)</NextContinuationToken>", body)
        if match is None:
            return keys
        token = match.group(1)


# A reader returns its row count and the number of bytes it pushed (0 when it pushes nothing).
UNLOAD_READERS: dict[str, Callable[[argparse.Namespace, Path], tuple[int, int]]] = {
    "unload": read_unload,
    "unload_download_only": read_unload_download_only,
}

# Modules each reader imports before its timer starts, so wall times exclude import time.
WARM_IMPORTS: dict[str, tuple[str, ...]] = {
    "unload": (
        "airflow.providers.amazon.aws.hooks.s3",
        "airflow_pigment_redshift.hooks.redshift_data",
        "airflow_pigment_redshift.hooks.pigment",
        "airflow_pigment_redshift.unload",
    ),
    "unload_download_only": ("botocore.auth", "botocore.awsrequest", "botocore.credentials"),
}


def main(argv: list[str] | None = None) -> int:
    """Run one UNLOAD reader and print its measurements as JSON."""
    from benchmarks.readers import peak_rss_mib

    parser = argparse.ArgumentParser(prog="python -m benchmarks.unload")
    parser.add_argument("reader", choices=sorted(UNLOAD_READERS))
    parser.add_argument("--s3", required=True, help="URL of the S3 server")
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--prefix", required=True, help="key prefix of the parts unload_download_only reads")
    parser.add_argument("--sql", required=True, help="query the unload reader unloads")
    parser.add_argument("--rows", type=int, required=True, help="expected number of rows")
    parser.add_argument("--max-file-size-mb", type=int, required=True, help="MAXFILESIZE of the UNLOAD, in MB")
    parser.add_argument("--sink-port", type=int, required=True, help="port of the discarding TCP server")
    arguments = parser.parse_args(argv)

    for module in WARM_IMPORTS[arguments.reader]:
        importlib.import_module(module)
    with tempfile.TemporaryDirectory(prefix="bench-unload-") as directory:
        started = time.perf_counter()
        rows, size = UNLOAD_READERS[arguments.reader](arguments, Path(directory))
        wall = time.perf_counter() - started
    print(json.dumps({"wall_s": wall, "rows": rows, "bytes": size, "peak_rss_mib": peak_rss_mib()}))
    return 0 if rows == arguments.rows else 1


# ---------------------------------------------------------------------------------------------
# Orchestration (runs in the benchmarks.run process)
# ---------------------------------------------------------------------------------------------


def prepare_unload_database(data_dir: Path) -> Path:
    """Generate TPC-H at scale factor 1 and load it into its own DuckDB file, once."""
    import duckdb

    from airflow_pigment_redshift.testing.tpch import generate_tpch, load_tpch

    database = data_dir / "redshift-sf1.duckdb"
    if database.is_file():
        return database
    parquet = generate_tpch(data_dir / "parquet-sf1", scale_factor=SCALE_FACTOR)
    partial = database.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    with duckdb.connect(str(partial)) as connection:
        load_tpch(connection, parquet)
    partial.rename(database)
    return database


@contextlib.contextmanager
def moto_s3_server(bucket: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Run a moto S3 server in its own process on 127.0.0.1 with ``bucket`` created.

    moto 5.2 keeps objects of up to about 5 MB in memory and larger ones in temporary files,
    which are freed when the process is stopped on exit.

    :return: the server's URL and process.
    """
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"moto S3 server on 127.0.0.1:{port} did not start (exit code {process.poll()})."
                    ) from None
                time.sleep(0.1)
        url = f"http://127.0.0.1:{port}"
        s3_client(url).create_bucket(Bucket=bucket)
        yield url, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def s3_client(url: str) -> Any:
    """Create a boto3 S3 client for the moto server, with the benchmark's fake credentials."""
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
    )


def process_peak_rss_mib(pid: int) -> float:
    """Return the peak resident set size (``VmHWM``) of another process in MiB, or 0 when unavailable."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def benchmark_unload(
    rows: int, repeat: int, readers: list[str], database: Path
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run the UNLOAD readers ``repeat`` times, interleaved, on ``SELECT * FROM tpch.lineitem LIMIT rows``.

    :param rows: number of rows; scale factor 1 has 6,001,215.
    :param repeat: runs per reader.
    :param readers: names from :data:`UNLOAD_READERS`.
    :param database: DuckDB file with TPC-H in schema ``tpch``, from :func:`prepare_unload_database`.
    :return: the medians per reader, and details of the run: the up-front UNLOAD's seconds,
        parts and bytes, the rows of each import the Pigment emulator received, and the moto
        server's peak RSS.
    :raises RuntimeError: a reader failed, or an import did not complete with ``rows`` rows.
    """
    import boto3

    from airflow_pigment_redshift.testing.pigment_emulator import ImportConfiguration, PigmentEmulator
    from airflow_pigment_redshift.testing.redshift_data_emulator import RedshiftDataEmulator
    from benchmarks.readers import CONFIGURATION_ID, PIGMENT_API_KEY
    from benchmarks.run import PAGE_SIZE_ROWS, DiscardServer, child_environment, run_statement, summarize

    sql = f"SELECT * FROM tpch.lineitem LIMIT {rows}"
    with tempfile.TemporaryDirectory(prefix="bench-pigment-") as pigment_dir, tempfile.TemporaryDirectory(
        prefix="bench-airflow-"
    ) as airflow_home, moto_s3_server(BUCKET) as (s3_url, s3_process):
        configuration = ImportConfiguration(
            id=CONFIGURATION_ID, name="Benchmark", block_name="Line items", clear_before_import=True
        )
        pigment = PigmentEmulator(
            pigment_dir, api_keys=[PIGMENT_API_KEY], configurations=[configuration], requests_per_ip_limit=None
        )
        redshift = RedshiftDataEmulator(
            database, page_size_rows=PAGE_SIZE_ROWS, max_active_statements=1000, unload_s3_endpoint_url=s3_url
        )
        sink = DiscardServer()
        with pigment, redshift:
            environment = child_environment(redshift.url, pigment.url, airflow_home)
            # The hook validates the access key id (16 to 128 characters) before it submits a
            # statement. The key of child_environment is shorter, but the page readers submit none.
            redshift_connection = json.loads(environment["AIRFLOW_CONN_PIGMENT_REDSHIFT_DEFAULT"])
            redshift_connection["login"] = ACCESS_KEY_ID
            environment["AIRFLOW_CONN_PIGMENT_REDSHIFT_DEFAULT"] = json.dumps(redshift_connection)
            s3_connection = {
                "conn_type": "aws",
                "login": ACCESS_KEY_ID,
                "password": SECRET_ACCESS_KEY,
                "extra": {"region_name": "us-east-1", "endpoint_url": s3_url},
            }
            environment[f"AIRFLOW_CONN_{S3_CONNECTION_ID.upper()}"] = json.dumps(s3_connection)
            client = boto3.client(
                "redshift-data",
                region_name="eu-west-1",
                endpoint_url=redshift.url,
                aws_access_key_id=ACCESS_KEY_ID,
                aws_secret_access_key=SECRET_ACCESS_KEY,
            )
            inner = sql.replace("'", "''")
            _, unload_seconds = run_statement(
                client,
                redshift,
                f"UNLOAD ('{inner}') TO 's3://{BUCKET}/{BASELINE_PREFIX}' IAM_ROLE default FORMAT CSV HEADER "
                f"MAXFILESIZE {MAX_FILE_SIZE_MB} MB",
                "CSV",
            )
            parts = s3_client(s3_url).list_objects_v2(Bucket=BUCKET, Prefix=BASELINE_PREFIX).get("Contents", [])
            part_bytes = sum(item["Size"] for item in parts)
            print(
                f"{rows} rows through UNLOAD: {len(parts)} part(s), {part_bytes:,} bytes, "
                f"written in {unload_seconds:.1f} s",
                flush=True,
            )
            arguments = [
                f"--s3={s3_url}",
                f"--bucket={BUCKET}",
                f"--prefix={BASELINE_PREFIX}",
                f"--sql={sql}",
                f"--rows={rows}",
                f"--max-file-size-mb={MAX_FILE_SIZE_MB}",
                f"--sink-port={sink.port}",
            ]
            samples: dict[str, list[dict[str, Any]]] = {name: [] for name in readers}
            pigment_seconds: list[float] = []
            statement_seconds: list[float] = []
            export_seconds: list[float] = []
            for attempt in range(repeat):
                for name in readers:
                    sample = run_unload_reader(name, arguments, environment)
                    waited = time.perf_counter()
                    pigment.wait_for_idle(timeout=1800)
                    if name == "unload":
                        pigment_seconds.append(time.perf_counter() - waited)
                        statement_seconds.append(last_export_unload_seconds(redshift.statements))
                        export_seconds.append(sample["wall_s"] - statement_seconds[-1])
                    samples[name].append(sample)
                    print(
                        f"  {rows} rows through UNLOAD, run {attempt + 1}/{repeat}, {name}: "
                        f"{sample['wall_s']:.2f} s, {sample['peak_rss_mib']:.0f} MiB",
                        flush=True,
                    )
            imports = pigment.ledger()
            failed = [entry for entry in imports if entry["status"] != "Completed" or entry["rows"] != rows]
            if failed:
                raise RuntimeError(f"Pigment imports did not complete with {rows} rows: {failed}")
            details = {
                "pigment_import_rows": [entry["rows"] for entry in imports],
                "reader_unload_statement_s": _median(statement_seconds),
                "reader_export_and_push_s": _median(export_seconds),
                "unload_statement_s": round(unload_seconds, 2),
                "parts": len(parts),
                "part_bytes": part_bytes,
                "max_file_size_mb": MAX_FILE_SIZE_MB,
                "pigment_processing_s": _median(pigment_seconds),
                "s3_server_peak_rss_mib": round(process_peak_rss_mib(s3_process.pid), 1),
            }
    return {name: summarize(rows, values) for name, values in samples.items()}, details


def last_export_unload_seconds(statements: list[dict[str, Any]]) -> float:
    """Return the seconds from submission to FINISHED of the unload reader's last UNLOAD.

    :param statements: the emulator's statement snapshots, in submission order.
    """
    exports = [
        statement
        for statement in statements
        if statement["sql"].startswith("UNLOAD") and f"s3://{BUCKET}/{EXPORT_PREFIX}/" in statement["sql"]
    ]
    if not exports:
        raise RuntimeError(f"The emulator has no UNLOAD to s3://{BUCKET}/{EXPORT_PREFIX}/ from the unload reader.")
    return exports[-1]["updated_at"] - exports[-1]["created_at"]


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 2) if values else 0.0


def run_unload_reader(name: str, arguments: list[str], environment: dict[str, str]) -> dict[str, Any]:
    """Run one UNLOAD reader process and return its measurements."""
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.unload", name, *arguments],
        capture_output=True,
        text=True,
        env=environment,
        cwd=Path(__file__).resolve().parent.parent,
        check=False,
    )
    lines = [line for line in completed.stdout.splitlines() if line.startswith("{")]
    if completed.returncode != 0 or not lines:
        raise RuntimeError(f"Reader {name} failed (exit {completed.returncode}):\n{completed.stderr[-4000:]}")
    return json.loads(lines[-1])


def render_unload_section(rows: str, readers: dict[str, Any], details: dict[str, Any]) -> list[str]:
    """Render the UNLOAD table and the notes below it as Markdown lines."""
    download = readers.get("unload_download_only", {}).get("wall_s", 0)
    statement = details.get("reader_unload_statement_s", 0)
    export = details.get("reader_export_and_push_s", 0)
    lines = [
        f"### {int(rows):,} rows through UNLOAD",
        "",
        "| reader | wall (s) | rows/s | peak RSS (MiB) | this wall ÷ unload_download_only |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, value in readers.items():
        ratio = f"{value['wall_s'] / download:.1f}×" if download else "n/a"
        lines.append(
            f"| {name} | {value['wall_s']:.2f} | {value['rows_per_s']:,} | {value['peak_rss_mib']:.0f} | {ratio} |"
        )
    lines += [
        "",
        f"`unload`'s wall time includes the UNLOAD statement, which took a median of {statement:.1f} s in "
        f"the emulator from submission to FINISHED. Listing and reading the parts, writing the Pigment CSV "
        f"and the push (wall time minus the statement's time, per run) took a median of {export:.1f} s"
        + (f" ({export / download:.1f}× unload_download_only)." if download else ".")
        + f" The UNLOAD run before the readers took {details.get('unload_statement_s', 0):.1f} s and wrote "
        f"{details.get('parts', 0)} part(s) (MAXFILESIZE {details.get('max_file_size_mb', 0)} MB) of "
        f"{details.get('part_bytes', 0):,} bytes. After each `unload` run the orchestrator waited "
        f"{details.get('pigment_processing_s', 0):.1f} s for the Pigment emulator to process the import (not in "
        f"the wall time). Peak RSS of the moto S3 server process: {details.get('s3_server_peak_rss_mib', 0):.0f} MiB.",
        "",
    ]
    return lines


if __name__ == "__main__":
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    sys.exit(main())
