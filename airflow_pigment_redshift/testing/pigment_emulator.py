"""Local emulator of Pigment's CSV import API, for tests and demos.

Start it from Python with :class:`PigmentEmulator`, or from a shell::

    python -m airflow_pigment_redshift.testing.pigment_emulator --data-dir /tmp/pigment \
        --port 8080 --api-key test-import-key --configurations configurations.json

The configurations file is a JSON list of objects with the field names of
:class:`ImportConfiguration`. The server runs until it receives SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from airflow_pigment_redshift.testing.pigment.configurations import (
    ImportConfiguration,
    load_configurations,
)
from airflow_pigment_redshift.testing.pigment.emulator import PigmentEmulator
from airflow_pigment_redshift.testing.pigment.errors import ErrorKind

__all__ = ["ErrorKind", "ImportConfiguration", "PigmentEmulator", "load_configurations", "main"]

DEFAULT_API_KEY = "test-import-key"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the emulator until SIGTERM or SIGINT and return the exit status.

    :param argv: Command-line arguments without the program name, or ``None`` for
        ``sys.argv[1:]``.
    """
    parser = _build_parser()
    arguments = parser.parse_args(argv)
    logging.basicConfig(
        level=arguments.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )

    configurations: list[ImportConfiguration] = []
    if arguments.configurations is not None:
        try:
            configurations = load_configurations(arguments.configurations)
        except (OSError, ValueError) as error:
            parser.error(f"cannot load --configurations: {error}")

    try:
        emulator = PigmentEmulator(
            arguments.data_dir,
            api_keys=arguments.api_keys or [DEFAULT_API_KEY],
            configurations=configurations,
            host=arguments.host,
            port=arguments.port,
            processing_seconds=arguments.processing_seconds,
            in_progress_polls=arguments.in_progress_polls,
        )
    except ValueError as error:
        parser.error(str(error))

    stop_requested = threading.Event()

    def request_stop(signal_number: int, frame: FrameType | None) -> None:
        logging.getLogger(__name__).info(
            "Received %s, stopping", signal.Signals(signal_number).name
        )
        stop_requested.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)

    try:
        emulator.start()
    except OSError as error:
        parser.error(f"cannot listen on {arguments.host}:{arguments.port}: {error}")
    try:
        print(f"Pigment import API emulator listening on {emulator.url}", flush=True)
        if arguments.ready_file is not None:
            _write_ready_file(arguments.ready_file, emulator.url)
        while not stop_requested.wait(timeout=1.0):
            pass
    finally:
        emulator.stop()
    return 0


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m airflow_pigment_redshift.testing.pigment_emulator",
        description="Serve a local emulator of Pigment's CSV import API on 127.0.0.1.",
    )
    parser.add_argument(
        "--data-dir",
        required=True,
        type=Path,
        help="directory for received files and the imports.jsonl ledger; created if missing",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind; only 127.0.0.1 is accepted"
    )
    parser.add_argument(
        "--port", type=int, default=0, help="port to bind; 0 picks a free port (default: 0)"
    )
    parser.add_argument(
        "--api-key",
        dest="api_keys",
        action="append",
        metavar="KEY",
        help=f"API key accepted as a Bearer token; repeat for several (default: {DEFAULT_API_KEY})",
    )
    parser.add_argument(
        "--configurations",
        type=Path,
        metavar="FILE.json",
        help="JSON list of import configurations, with the field names of ImportConfiguration",
    )
    parser.add_argument(
        "--ready-file",
        type=Path,
        metavar="PATH",
        help='file that receives {"url": ..., "pid": ...} once the server listens',
    )
    parser.add_argument(
        "--processing-seconds",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="minimum time in seconds from push to final import state (default: 0)",
    )
    parser.add_argument(
        "--in-progress-polls",
        type=int,
        default=1,
        metavar="COUNT",
        help="status polls of each import that report InProgress first (default: 1)",
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="logging level (default: INFO)",
    )
    return parser


def _write_ready_file(path: Path, url: str) -> None:
    """Write the URL and process id to ``path`` atomically, through a rename in its directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    content = json.dumps({"url": url, "pid": os.getpid()})
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(content)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


if __name__ == "__main__":
    sys.exit(main())
