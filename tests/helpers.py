"""Helpers shared by test modules."""

from __future__ import annotations

import csv
import threading
from datetime import date, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any


def cell_text(value: Any) -> str:
    """Render a DuckDB value the way the Data API renders it in a CSV cell."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return str(value)


def expected_rows(rows: list[tuple]) -> list[list[str]]:
    return [[cell_text(value) for value in row] for row in rows]


def read_csv(path: Path, delimiter: str = ",", quote_char: str = '"') -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as stream:
        return list(csv.reader(stream, delimiter=delimiter, quotechar=quote_char))


def task_context(task_id: str = "import_line_items", try_number: int = 1) -> dict[str, Any]:
    """A minimal task context: the operator reads only the task instance's identity."""
    ti = SimpleNamespace(
        dag_id="tests",
        task_id=task_id,
        run_id="manual__1995-03-02T00:00:00+00:00",
        map_index=-1,
        try_number=try_number,
    )
    return {"ti": ti}


class RecordingServer(ThreadingHTTPServer):
    """HTTP server on 127.0.0.1 that records each request and returns one fixed response."""

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.answer = (status, headers, body)
        self.seen: list[dict[str, str]] = []
        super().__init__(("127.0.0.1", 0), _RecordingHandler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _RecordingHandler(BaseHTTPRequestHandler):
    server: RecordingServer

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self.server.seen.append({"path": self.path, "authorization": self.headers.get("Authorization", "")})
        status, headers, body = self.server.answer
        self.send_response(status)
        for name, value in {**headers, "Content-Length": str(len(body))}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    do_GET = _answer  # noqa: N815 - name fixed by BaseHTTPRequestHandler
    do_POST = _answer  # noqa: N815 - name fixed by BaseHTTPRequestHandler

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - signature fixed by the base class
        pass


def serve(status: int, headers: dict[str, str] | None = None, body: bytes = b"") -> RecordingServer:
    """Start a :class:`RecordingServer` on a daemon thread; the caller shuts it down."""
    server = RecordingServer(status, headers or {}, body)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server
