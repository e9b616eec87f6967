"""``UNLOAD ('select ...') TO 's3://bucket/prefix' ... FORMAT CSV`` for the emulator.

The inner query runs on DuckDB, its rows are written as CSV parts of at most ``MAXFILESIZE``
and each part is uploaded to an S3 endpoint (a moto server on loopback in tests).
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

_UNLOAD = re.compile(
    r"^\s*UNLOAD\s*\(\s*'(?P<query>(?:[^']|'')*)'\s*\)\s*TO\s*'(?P<target>s3://[^']+)'(?P<options>.*?);?\s*$",
    re.IGNORECASE | re.DOTALL,
)
_MAX_FILE_SIZE = re.compile(r"MAXFILESIZE\s+(?:AS\s+)?(?P<size>\d+(?:\.\d+)?)\s*(?P<unit>MB|GB)", re.IGNORECASE)
_SIZE_UNITS = {"MB": 1024 * 1024, "GB": 1024 * 1024 * 1024}
# Redshift's default and maximum part size is 6.2 GB.
_DEFAULT_MAX_FILE_BYTES = int(6.2 * 1024**3)


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
    UNLOAD from one slice. NULL is an empty unquoted field; an empty string is ``""``.

    :raises ValueError: objects exist under the prefix and ALLOWOVERWRITE is not set.
    """
    # NOTE: real UNLOAD writes one or more parts per slice, in parallel; part naming across
    # slices and the NULL encoding (NULL AS '') follow Redshift's documentation, unverified live.
    if not request.allow_overwrite:
        existing = s3_client.list_objects_v2(Bucket=request.bucket, Prefix=request.prefix, MaxKeys=1)
        if existing.get("KeyCount"):
            raise ValueError(
                f"ERROR: Specified unload destination on S3 is not empty. Consider using a different "
                f"bucket / prefix, manually removing the target files in S3, or using the ALLOWOVERWRITE "
                f"option. (s3://{request.bucket}/{request.prefix})"
            )
    cursor.execute(duckdb_sql)
    columns = [description[0] for description in cursor.description]
    header = _csv_line(columns) if request.header else ""
    part = 0
    rows = 0
    buffer = io.StringIO()
    buffer.write(header)
    part_rows = 0
    while chunk := cursor.fetchmany(10_000):
        for row in chunk:
            buffer.write(_csv_line(row))
            part_rows += 1
            if buffer.tell() >= request.max_file_bytes:
                _upload(s3_client, request, part, buffer.getvalue())
                rows += part_rows
                part += 1
                part_rows = 0
                buffer = io.StringIO()
                buffer.write(header)
    if part_rows or part == 0:
        _upload(s3_client, request, part, buffer.getvalue())
        rows += part_rows
    return rows


def _upload(s3_client: Any, request: UnloadRequest, part: int, text: str) -> None:
    s3_client.put_object(Bucket=request.bucket, Key=f"{request.prefix}0000_part_{part:02d}", Body=text.encode())


def _csv_line(values: Any) -> str:
    cells = []
    for value in values:
        if value is None:
            cells.append("")
        elif isinstance(value, str):
            needs_quotes = value == "" or any(character in value for character in ',"\r\n')
            cells.append('"' + value.replace('"', '""') + '"' if needs_quotes else value)
        elif isinstance(value, datetime):
            cells.append(value.isoformat(sep=" "))
        elif isinstance(value, (date, time)):
            cells.append(value.isoformat())
        else:
            cells.append(str(value))
    return ",".join(cells) + "\n"


__all__ = ["UnloadRequest", "parse_unload", "run_unload"]
