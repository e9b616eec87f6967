"""``UNLOAD ('select ...') TO 's3://bucket/prefix' ... FORMAT CSV`` for the emulator.

The inner query runs on DuckDB, which also renders each row as a CSV line. The lines are
collected into parts of at most ``MAXFILESIZE`` and each part is uploaded to an S3 endpoint
(a moto server on loopback in tests).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from airflow_pigment_redshift.testing.redshift_data.column_types import column_type_for, csv_cell_sql
from airflow_pigment_redshift.testing.redshift_data.results import _csv_header_line

_UNLOAD = re.compile(
    r"^\s*UNLOAD\s*\(\s*'(?P<query>(?:[^']|'')*)'\s*\)\s*TO\s*'(?P<target>s3://[^']+)'(?P<options>.*?);?\s*$",
    re.IGNORECASE | re.DOTALL,
)
_MAX_FILE_SIZE = re.compile(r"MAXFILESIZE\s+(?:AS\s+)?(?P<size>\d+(?:\.\d+)?)\s*(?P<unit>MB|GB)", re.IGNORECASE)
_SIZE_UNITS = {"MB": 1024 * 1024, "GB": 1024 * 1024 * 1024}
# Redshift's default and maximum part size is 6.2 GB.
_DEFAULT_MAX_FILE_BYTES = int(6.2 * 1024**3)
# Rows fetched from DuckDB at a time: about 1.3 MB of TPC-H lineitem CSV.
_FETCH_ROWS = 10_000


@dataclass(frozen=True)
class UnloadRequest:
    """A parsed UNLOAD statement.

    :param query: the inner SELECT, with doubled quotes undone.
    :param bucket: target bucket.
    :param prefix: key prefix of the parts.
    :param header: whether each part starts with a header line.
    :param max_file_bytes: maximum size of one part.
    :param allow_overwrite: whether existing objects under the prefix may be replaced.
    """

    query: str
    bucket: str
    prefix: str
    header: bool
    max_file_bytes: int
    allow_overwrite: bool


def parse_unload(sql: str) -> UnloadRequest | None:
    """Return the parsed statement when ``sql`` is an UNLOAD, else None.

    :raises ValueError: an UNLOAD whose options the emulator does not support.
    """
    match = _UNLOAD.match(sql)
    if match is None:
        return None
    options = " ".join(match.group("options").split()).upper()
    if "FORMAT CSV" not in options and "FORMAT AS CSV" not in options and " CSV" not in f" {options}":
        raise ValueError("ERROR: the emulator supports UNLOAD only with FORMAT CSV")
    bucket, _, prefix = match.group("target")[len("s3://") :].partition("/")
    size = _MAX_FILE_SIZE.search(match.group("options"))
    max_file_bytes = (
        int(float(size.group("size")) * _SIZE_UNITS[size.group("unit").upper()]) if size else _DEFAULT_MAX_FILE_BYTES
    )
    return UnloadRequest(
        query=match.group("query").replace("''", "'"),
        bucket=bucket,
        prefix=prefix,
        header="HEADER" in options.split(),
        max_file_bytes=max_file_bytes,
        allow_overwrite="ALLOWOVERWRITE" in options.split(),
    )


def run_unload(cursor: Any, request: UnloadRequest, duckdb_sql: str, s3_client: Any) -> int:
    """Run the inner query and upload its rows as CSV parts; return the number of rows.

    Parts are named ``<prefix>0000_part_00``, ``<prefix>0000_part_01``, ... like a Redshift
    UNLOAD from one slice. Each part holds at most ``MAXFILESIZE`` bytes (header included)
    unless a single row is larger. Cells have the same text as the emulator's CSV result
    pages (see :func:`csv_cell_sql`): NULL is an empty unquoted field and an empty string is
    ``""``. DuckDB renders the cells, because formatting them in Python took about 10 s per
    million TPC-H lineitem rows on a 2-core Xeon.

    :raises ValueError: objects exist under the prefix and ALLOWOVERWRITE is not set, or the
        query is not one that returns a result set.
    """
    # NOTE: real UNLOAD writes one or more parts per slice, in parallel. Part naming across
    # slices, NULL AS '' and the text of boolean, float and timestamp cells follow this
    # emulator's Data API CSV format and are unverified against a live cluster.
    if not request.allow_overwrite:
        existing = s3_client.list_objects_v2(Bucket=request.bucket, Prefix=request.prefix, MaxKeys=1)
        if existing.get("KeyCount"):
            raise ValueError(
                f"ERROR: Specified unload destination on S3 is not empty. Consider using a different "
                f"bucket / prefix, manually removing the target files in S3, or using the ALLOWOVERWRITE "
                f"option. (s3://{request.bucket}/{request.prefix})"
            )
    query = duckdb_sql.strip().rstrip(";")
    relation = cursor.sql(query)
    if relation is None:
        raise ValueError(f"ERROR: UNLOAD needs a SELECT query that returns a result set, got {query!r}")
    columns = list(relation.columns)
    types = [column_type_for(duckdb_type) for duckdb_type in relation.types]
    # Columns are renamed by position because a query may repeat a column name.
    aliases = [f"c{index}" for index in range(len(types))]
    cells = [
        csv_cell_sql(f"q.{alias}", column_type, null_text="", empty_text='""')
        for alias, column_type in zip(aliases, types)
    ]
    row_sql = "concat(" + ", ',', ".join(cells) + ", chr(10))" if cells else "chr(10)"
    cursor.execute(f"SELECT {row_sql} FROM ({query}) AS q({', '.join(aliases)})")

    parts = _PartWriter(s3_client, request, _csv_header_line(columns).encode() if request.header else b"")
    while chunk := cursor.fetchmany(_FETCH_ROWS):
        parts.add("".join(row[0] for row in chunk).encode(), chunk)
    parts.finish()
    return parts.rows


class _PartWriter:
    """Collect encoded CSV rows into parts of at most ``max_file_bytes`` and upload each full part."""

    def __init__(self, s3_client: Any, request: UnloadRequest, header: bytes) -> None:
        self._s3_client = s3_client
        self._request = request
        self._header = header
        self._pieces: list[bytes] = [header]
        self._size = len(header)
        self._part_rows = 0
        self._part = 0
        self.rows = 0

    def add(self, data: bytes, lines: list[tuple[str]]) -> None:
        """Add ``data``, the encoded text of ``lines``, cutting a part between two rows when it is full."""
        if self._size + len(data) <= self._request.max_file_bytes:
            self._append(data, len(lines))
            return
        # Only the chunk that crosses a part boundary is encoded row by row.
        for (line,) in lines:
            encoded = line.encode()
            if self._part_rows and self._size + len(encoded) > self._request.max_file_bytes:
                self._upload()
            self._append(encoded, 1)

    def finish(self) -> None:
        """Upload the last part; a result without rows still gets one part (the header, if any)."""
        if self._part_rows or self._part == 0:
            self._upload()

    def _append(self, data: bytes, rows: int) -> None:
        self._pieces.append(data)
        self._size += len(data)
        self._part_rows += rows
        self.rows += rows

    def _upload(self) -> None:
        key = f"{self._request.prefix}0000_part_{self._part:02d}"
        self._s3_client.put_object(Bucket=self._request.bucket, Key=key, Body=b"".join(self._pieces))
        self._part += 1
        self._pieces = [self._header]
        self._size = len(self._header)
        self._part_rows = 0


__all__ = ["UnloadRequest", "parse_unload", "run_unload"]
