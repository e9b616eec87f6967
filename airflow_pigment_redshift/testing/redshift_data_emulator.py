"""Local Redshift Data API emulator and its command line.

Run ``python -m airflow_pigment_redshift.testing.redshift_data_emulator --duckdb PATH`` to
serve the Data API on 127.0.0.1 until SIGTERM or SIGINT. The implementation lives in the
``airflow_pigment_redshift.testing.redshift_data`` package.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from airflow_pigment_redshift.testing.redshift_data import RedshiftDataEmulator, StatementStatus
from airflow_pigment_redshift.testing.redshift_data.results import CSV_HEADER_MODES
from airflow_pigment_redshift.testing.redshift_data.server import validate_loopback_host

__all__ = ["RedshiftDataEmulator", "StatementStatus", "main"]

log = logging.getLogger(__name__)


def _parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m airflow_pigment_redshift.testing.redshift_data_emulator",
        description="Serve a local Redshift Data API that runs SQL on a DuckDB database.",
    )

    parser.add_argument("--duckdb", required=True, help="DuckDB database file, or :memory:")
    parser.add_argument("--host", default="127.0.0.1", help="IPv4 loopback address to bind (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="TCP port; 0 picks a free port (default: 0)")
    parser.add_argument(
        "--database",
        action="append",
        dest="databases",
        metavar="NAME",
        help="database name accepted in requests; repeat for several (default: dev)",
    )

    parser.add_argument("--page-size-rows", type=int, default=1000, help="rows per result page (default: 1000)")
    parser.add_argument(
        "--csv-header",
        choices=CSV_HEADER_MODES,
        default="first_page",
        help="which CSV result pages start with a header line (default: first_page)",
    )

    parser.add_argument("--submitted-seconds", type=float, default=0.0, help="time in SUBMITTED, in seconds")
    parser.add_argument("--picked-seconds", type=float, default=0.0, help="time in PICKED, in seconds")
    parser.add_argument("--running-seconds", type=float, default=0.0, help="minimum time in STARTED, in seconds")

    parser.add_argument(
        "--ready-file",
        type=Path,
        help='file to write {"url": ..., "pid": ...} to, atomically, once the emulator listens',
    )
    parser.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="log level (default: INFO)"
    )
    return parser.parse_args(argv)


def _write_ready_file(path: Path, url: str) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps({"url": url, "pid": os.getpid()}))
    os.replace(temporary, path)


def main(argv: Sequence[str] | None = None) -> int:
    """Serve the emulator until SIGTERM or SIGINT and return the process exit code."""
    arguments = _parse_arguments(argv)
    logging.basicConfig(level=arguments.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        validate_loopback_host(arguments.host)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    stop_requested = threading.Event()

    def request_stop(signal_number: int, frame: FrameType | None) -> None:
        log.info("Received signal %s, stopping", signal.Signals(signal_number).name)
        stop_requested.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)

    emulator = RedshiftDataEmulator(
        arguments.duckdb,
        databases=arguments.databases or ("dev",),
        host=arguments.host,
        port=arguments.port,
        page_size_rows=arguments.page_size_rows,
        csv_header=arguments.csv_header,
        submitted_seconds=arguments.submitted_seconds,
        picked_seconds=arguments.picked_seconds,
        running_seconds=arguments.running_seconds,
    )
    with emulator:
        if arguments.ready_file is not None:
            _write_ready_file(arguments.ready_file, emulator.url)
        print(f"Redshift Data API emulator listening on {emulator.url}", flush=True)
        while not stop_requested.wait(1.0):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
