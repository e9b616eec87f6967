"""Helpers shared by test modules."""

from __future__ import annotations

import csv
from datetime import date, datetime
from decimal import Decimal
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
