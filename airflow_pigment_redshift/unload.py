"""Export a query result larger than the Data API's result limit through ``UNLOAD`` to S3.

The Data API returns at most 500 MB of result per statement (older AWS pages give 100 MB).
Beyond that, the query runs again as ``UNLOAD ('...') TO 's3://...' FORMAT CSV HEADER``, the
CSV parts are streamed from S3 into the Pigment CSV file, and the prefix is deleted.
"""

from __future__ import annotations

import codecs
import csv
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_pigment_redshift.csv_stream import ResultCsvWriter
from airflow_pigment_redshift.hooks.redshift_data import ResultExport

if TYPE_CHECKING:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    from airflow_pigment_redshift.hooks.redshift_data import RedshiftDataApiHook

log = logging.getLogger(__name__)

_CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class UnloadSettings:
    """Target prefix, IAM role and part size of an UNLOAD export.

    :param s3_prefix: ``s3://bucket/prefix``; each export writes under a new sub-prefix of it.
    :param iam_role: ARN of the IAM role Redshift assumes to write to S3, or ``default``.
    :param max_file_size_mb: ``MAXFILESIZE`` of each CSV part, 5 to 6200 MB.
    :param delete_after: delete the unloaded parts once they are read.
    """

    s3_prefix: str
    iam_role: str
    max_file_size_mb: int = 256
    delete_after: bool = True

    def __post_init__(self) -> None:
        if not self.s3_prefix.startswith("s3://") or not self.s3_prefix[len("s3://") :].split("/", 1)[0]:
            raise ValueError(
                f"Invalid unload S3 prefix {self.s3_prefix!r}: use s3://bucket/prefix, a location the "
                "cluster's IAM role can write to."
            )
        if not 5 <= self.max_file_size_mb <= 6200:
            raise ValueError(
                f"Invalid unload max_file_size_mb {self.max_file_size_mb}: Redshift accepts 5 to 6200 (MB)."
            )
        if not self.iam_role:
            raise ValueError(
                "Unloading needs an IAM role that Redshift can assume to write to S3: pass its ARN "
                "(arn:aws:iam::<account>:role/<name>) or 'default'."
            )

    @property
    def bucket(self) -> str:
        """Bucket part of :attr:`s3_prefix`."""
        return self.s3_prefix[len("s3://") :].split("/", 1)[0]

    @property
    def key_prefix(self) -> str:
        """Key part of :attr:`s3_prefix`, ending with ``/`` unless empty."""
        key = self.s3_prefix[len("s3://") :].partition("/")[2].strip("/")
        return f"{key}/" if key else ""


def unload_sql(query: str, target: str, settings: UnloadSettings) -> str:
    """Build the UNLOAD statement for ``query``.

    :param query: a single SELECT statement, without a trailing semicolon.
    :param target: ``s3://bucket/key-prefix`` the parts are written under.
    :param settings: IAM role and part size.
    """
    inner = query.strip().rstrip(";").replace("'", "''")
    role = "default" if settings.iam_role == "default" else "'" + settings.iam_role.replace("'", "''") + "'"
    return (
        f"UNLOAD ('{inner}') TO '{target}' IAM_ROLE {role} FORMAT CSV HEADER "
        f"MAXFILESIZE {settings.max_file_size_mb} MB"
    )


class QuoteAwareSplitter:
    """Cut CSV text at the last record end, tracking whether the text so far ends inside quotes."""

    def __init__(self) -> None:
        self._pending = ""

    def feed(self, text: str) -> str:
        """Add text and return the longest prefix of the pending text made of whole records."""
        self._pending += text
        pieces = self._pending.split('"')
        # Pieces at even positions lie outside quotes (a doubled quote adds an empty piece).
        for index in range(len(pieces) - 1 - (len(pieces) - 1) % 2, -1, -2):
            position = pieces[index].rfind("\n")
            if position >= 0:
                cut = sum(len(piece) + 1 for piece in pieces[:index]) + position + 1
                complete, self._pending = self._pending[:cut], self._pending[cut:]
                return complete
        return ""

    def flush(self) -> str:
        """Return what is left."""
        rest, self._pending = self._pending, ""
        return rest


class UnloadExporter:
    """Run a query as UNLOAD and stream the CSV parts from S3 through a :class:`ResultCsvWriter`.

    :param redshift_hook: hook that submits the UNLOAD statement.
    :param s3_hook: the amazon provider's S3 hook, for the bucket holding the parts.
    :param settings: target prefix, IAM role and part size.
    """

    def __init__(self, redshift_hook: RedshiftDataApiHook, s3_hook: S3Hook, settings: UnloadSettings) -> None:
        self.redshift_hook = redshift_hook
        self.s3_hook = s3_hook
        self.settings = settings

    def export(
        self, query: str, writer: ResultCsvWriter, *, run_id: str | None = None, timeout: float = 24 * 3600.0
    ) -> ResultExport:
        """Unload ``query``, write every part through ``writer`` and delete the parts.

        :param query: the SELECT statement.
        :param writer: writer of the Pigment CSV file; the header comes from the first part.
        :param run_id: name of the sub-prefix the parts go to; a new UUID by default.
        :param timeout: seconds to wait for the UNLOAD statement.
        """
        key_prefix = f"{self.settings.key_prefix}{run_id or uuid.uuid4()}/"
        target = f"s3://{self.settings.bucket}/{key_prefix}"
        statement_id = self.redshift_hook.execute_statement(unload_sql(query, target, self.settings))
        log.info("Unloading the query to %s with Redshift statement %s.", target, statement_id)
        try:
            description = self.redshift_hook.wait_for_statement(statement_id, timeout=timeout)
            keys = sorted(self.s3_hook.list_keys(bucket_name=self.settings.bucket, prefix=key_prefix) or [])
            log.info(
                "Statement %s unloaded %s rows into %d parts under %s.",
                statement_id,
                description.get("ResultRows"),
                len(keys),
                target,
            )
            columns: list[str] = []
            for index, key in enumerate(keys):
                columns = self._write_part(key, writer, first=index == 0) or columns
            return ResultExport(rows=writer.rows_written, pages=len(keys), columns=columns, header=writer.header or [])
        finally:
            if self.settings.delete_after:
                self._delete(key_prefix, statement_id)

    def _write_part(self, key: str, writer: ResultCsvWriter, *, first: bool) -> list[str]:
        splitter = QuoteAwareSplitter()
        header_pending = True
        columns: list[str] = []
        for text in self._read_text(key):
            complete = splitter.feed(text)
            if header_pending and complete:
                header_line, _, complete = complete.partition("\n")
                header_pending = False
                if first:
                    columns = next(csv.reader([header_line.rstrip("\r")]))
                    writer.write_header(columns)
            if complete:
                writer.write_csv_records(complete)
        rest = splitter.flush()
        if header_pending and rest:
            header_line, _, rest = rest.partition("\n")
            if first:
                columns = next(csv.reader([header_line.rstrip("\r")]))
                writer.write_header(columns)
        if rest:
            writer.write_csv_records(rest)
        return columns

    def _read_text(self, key: str) -> Iterator[str]:
        body = self.s3_hook.get_conn().get_object(Bucket=self.settings.bucket, Key=key)["Body"]
        decoder = codecs.getincrementaldecoder("utf-8")()
        try:
            for chunk in body.iter_chunks(_CHUNK_BYTES):
                text = decoder.decode(chunk)
                if text:
                    yield text
            tail = decoder.decode(b"", final=True)
            if tail:
                yield tail
        finally:
            body.close()

    def _delete(self, key_prefix: str, statement_id: str) -> None:
        try:
            keys: Any = self.s3_hook.list_keys(bucket_name=self.settings.bucket, prefix=key_prefix) or []
            if keys:
                self.s3_hook.delete_objects(bucket=self.settings.bucket, keys=keys)
            log.info(
                "Deleted %d unloaded parts of statement %s under s3://%s/%s.",
                len(keys),
                statement_id,
                self.settings.bucket,
                key_prefix,
            )
        except Exception:
            log.exception(
                "Could not delete the unloaded parts of statement %s under s3://%s/%s; delete them by hand "
                "or with an S3 lifecycle rule.",
                statement_id,
                self.settings.bucket,
                key_prefix,
            )
