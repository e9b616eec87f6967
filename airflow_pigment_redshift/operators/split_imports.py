"""Send one Redshift result to Pigment as several imports of at most ``max_rows_per_import`` rows.

:class:`SplitImportsMixin` adds the split transfer to ``RedshiftToPigmentOperator``. The
result is cut by :class:`~airflow_pigment_redshift.import_parts.CsvPartSplitter` and each part
is pushed as its own import, one after the other, then every import is waited for.

What a retry of the same task instance does, from the progress record:

* Each pushed part is stored (number, rows, bytes, import id) as soon as Pigment returns its
  import id. A retry reads the same statement's result again (its order does not change),
  cuts it at the same rows, skips the stored parts without sending their bytes and pushes
  the rest.
* A push whose outcome is unknown stops the task with :class:`AmbiguousPushError` naming the
  part, and later tries stop the same way, unless ``target_is_idempotent`` is set: then the
  retry pushes that part and the later ones.
* After all parts are pushed, every import is waited for. When some end Failed, the task
  fails after the last wait and names the Completed and the Failed parts. A Failed import
  changes nothing in the block, so the retry pushes only the Failed parts (and any part not
  pushed yet) and does not push the Completed ones again.
* A retry with another ``max_rows_per_import``, or whose statement had to run again because
  the earlier result expired, fails with :class:`PartsMismatchError` instead of guessing
  which rows were imported.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_pigment_redshift.exceptions import (
    ChunkedPushRejectedError,
    PartImportFailedError,
    PartsMismatchError,
    PigmentSkippedRowsError,
)
from airflow_pigment_redshift.hooks.pigment import ImportStatus, summary_counts
from airflow_pigment_redshift.hooks.redshift_data import ResultExport
from airflow_pigment_redshift.import_parts import (
    CsvPartSplitter,
    FilePartSink,
    PipePartSink,
    unpushed_part_numbers,
)
from airflow_pigment_redshift.progress import TransferProgress
from airflow_pigment_redshift.push_body import CsvBodyPipe, ResultStreamError, StreamedExport
from airflow_pigment_redshift.retries import is_retryable_data_api_error
from airflow_pigment_redshift.triggers.pigment_import import PigmentImportTrigger

if TYPE_CHECKING:
    from airflow_pigment_redshift.operators.redshift_to_pigment import RedshiftToPigmentOperator

    _Base = RedshiftToPigmentOperator
else:
    _Base = object

_COUNT_KEYS = ("inserted", "updated", "deleted", "skipped")


class SplitImportsMixin(_Base):
    """Split transfer of ``RedshiftToPigmentOperator``, used when ``max_rows_per_import`` is set."""

    def _check_split_record(self, progress: TransferProgress) -> None:
        """Fail before any side effect when stored parts were cut with another ``max_rows_per_import``."""
        record = progress.record
        if record.get("parts") and record.get("split_max_rows") != self.max_rows_per_import:
            raise PartsMismatchError(
                f"An earlier try of this task instance pushed parts {_part_list(record['parts'])} of "
                f"{record.get('split_max_rows')} rows at most to Pigment configuration {self.configuration_id}, "
                f"but max_rows_per_import is now {self.max_rows_per_import!r}, which cuts the result at other rows. "
                f"Set max_rows_per_import={record.get('split_max_rows')!r} again to push only the remaining parts, "
                "or clear the task instance to push every part again."
            )

    def _export_and_import_parts(self, statement_id: str, description: Mapping[str, Any]) -> dict[str, Any]:
        """Push the result as several imports, skipping the parts an earlier try pushed, then wait for all."""
        progress = self._transfer_progress()
        parts: list[dict[str, Any]] = [dict(part) for part in progress.record.get("parts") or []]
        if parts and progress.record.get("parts_statement_id") != statement_id:
            raise PartsMismatchError(
                f"An earlier try of this task instance pushed parts {_part_list(parts)} of the result of Redshift "
                f"statement {progress.record.get('parts_statement_id')} to Pigment configuration "
                f"{self.configuration_id}, but that result can no longer be read, and the result of statement "
                f"{statement_id} may be cut at other rows. The task stops so no row is imported twice or left out. "
                "Check the block in Pigment, then clear the task instance to push every part again."
            )
        progress.save(split_max_rows=self.max_rows_per_import, parts_statement_id=statement_id, parts=parts)

        if self.push_transfer == "stream":
            try:
                export = self._stream_parts_and_push(statement_id, description, parts)
            except ChunkedPushRejectedError as error:
                self.log.warning(
                    "%s Sending the remaining parts of statement %s from temporary files.", error, statement_id
                )
                export = self._write_parts_and_push(statement_id, description, parts)
        else:
            export = self._write_parts_and_push(statement_id, description, parts)

        task_progress = {
            "statement_id": statement_id,
            "configuration_id": self.configuration_id,
            "import_id": parts[-1]["import_id"],
            "rows": export.rows,
            "bytes": sum(part["bytes"] for part in parts),
            "pages": export.pages,
            "parts": parts,
        }
        progress.save(phase="pushed", import_id=parts[-1]["import_id"], task_progress=task_progress)
        return self._wait_for_parts(task_progress)

    def _write_parts_and_push(
        self, statement_id: str, description: Mapping[str, Any], parts: list[dict[str, Any]]
    ) -> ResultExport:
        """Write the parts not pushed yet to temporary files, then push them in order."""
        assert self.max_rows_per_import is not None
        max_rows = self.max_rows_per_import
        pushed = {part["part"] for part in parts}
        with tempfile.TemporaryDirectory(prefix="pigment-import-") as directory:
            opened: dict[str, Any] = {}

            @contextmanager
            def open_parts() -> Iterator[CsvPartSplitter]:
                sink = FilePartSink(Path(directory), self.dialect.encoding)
                splitter = CsvPartSplitter(sink, max_rows, self.dialect.quote_char, pushed)
                opened.update(sink=sink, splitter=splitter)
                try:
                    yield splitter
                finally:
                    sink.close()

            export = self.call_retries.call(
                self._export_result,
                statement_id,
                description,
                open_parts,
                is_retryable=is_retryable_data_api_error,
                description=f"Reading the result of Redshift statement {statement_id}",
                log=self.log,
            )
            splitter: CsvPartSplitter = opened["splitter"]
            paths: dict[int, Path] = opened["sink"].paths
            self.log.info(
                "Wrote %d rows (%d pages) of statement %s as %d CSV parts of at most %d rows; %d to push.",
                export.rows,
                export.pages,
                statement_id,
                len(splitter.part_rows),
                max_rows,
                len(paths),
            )
            if export.rows == 0 and not parts:
                self._handle_empty_result(statement_id)
            for number, path in sorted(paths.items()):
                rows = splitter.part_rows[number]
                self._save_push_started(statement_id, rows, part=number)
                import_id = self._push(
                    statement_id, lambda path=path: self.pigment_hook.push_csv(self.configuration_id, path)
                )
                self._record_pushed_part(parts, number, rows, path.stat().st_size, import_id)
        return export

    def _stream_parts_and_push(
        self, statement_id: str, description: Mapping[str, Any], parts: list[dict[str, Any]]
    ) -> ResultExport:
        """Push the parts not pushed yet while the result is read, one request body per part.

        One export feeds all parts. When it fails, or a push is retried, the export restarts
        from the first page and skips the parts already pushed, so the next body is the part
        that was being sent.
        """
        pushed = {part["part"] for part in parts}
        current: dict[str, Any] = {"stream": None, "splitter": None}

        def start() -> StreamedExport[ResultExport]:
            streamed = self._start_part_stream(statement_id, description, frozenset(pushed), current)
            current["stream"] = streamed
            return streamed

        def close_stream() -> None:
            if current["stream"] is not None:
                current["stream"].close()
                current["stream"] = None

        def next_part_ready() -> bool:
            streamed = current["stream"] or start()
            try:
                return streamed.has_more_data()
            except BaseException:
                close_stream()
                raise

        try:
            while self.call_retries.call(
                next_part_ready,
                is_retryable=is_retryable_data_api_error,
                description=f"Reading the result of Redshift statement {statement_id}",
                log=self.log,
            ):
                number = next(unpushed_part_numbers(pushed))
                streamed = current["stream"]
                if number == 1 and streamed.wait_for_data() and streamed.result().rows == 0:
                    self._handle_empty_result(statement_id)
                sizes: dict[int, int] = {}

                def send(number: int = number, sizes: dict[int, int] = sizes) -> str:
                    streamed = current["stream"]
                    if streamed is None:
                        try:
                            streamed = start()
                        except Exception as error:
                            raise ResultStreamError(error) from error
                    before = streamed.bytes_read
                    try:
                        import_id = self.pigment_hook.push_stream(self.configuration_id, streamed.body())
                    except BaseException:
                        close_stream()
                        raise
                    sizes[number] = streamed.bytes_read - before
                    return import_id

                self._save_push_started(statement_id, self._part_rows_bound(number, description), part=number)
                import_id = self._push(statement_id, send)
                rows = current["splitter"].part_rows[number]
                self._record_pushed_part(parts, number, rows, sizes[number], import_id)
                pushed.add(number)
            export: ResultExport = current["stream"].result()
        finally:
            close_stream()
        self.log.info(
            "Streamed %d rows (%d pages) of statement %s to Pigment as %d parts.",
            export.rows,
            export.pages,
            statement_id,
            len(parts),
        )
        return export

    def _start_part_stream(
        self,
        statement_id: str,
        description: Mapping[str, Any],
        skip_parts: frozenset[int],
        current: dict[str, Any],
    ) -> StreamedExport[ResultExport]:
        """Start reading the result on a thread into a part splitter, and wait for its first chunk."""
        assert self.max_rows_per_import is not None
        max_rows = self.max_rows_per_import

        def export(pipe: CsvBodyPipe) -> ResultExport:
            @contextmanager
            def open_parts() -> Iterator[CsvPartSplitter]:
                with pipe.open():
                    splitter = CsvPartSplitter(PipePartSink(pipe), max_rows, self.dialect.quote_char, skip_parts)
                    current["splitter"] = splitter
                    yield splitter

            return self._export_result(statement_id, description, open_parts)

        streamed = StreamedExport(export, self.dialect.encoding, name=f"pigment-push-{statement_id}")
        try:
            streamed.wait_for_data()
        except BaseException:
            streamed.close()
            raise
        return streamed

    def _part_rows_bound(self, number: int, description: Mapping[str, Any]) -> int:
        """Return the maximum rows of part ``number``, from the statement's ``ResultRows`` when known."""
        assert self.max_rows_per_import is not None
        total = int(description.get("ResultRows") or -1)
        if total < 0:
            return self.max_rows_per_import
        return max(0, min(self.max_rows_per_import, total - self.max_rows_per_import * (number - 1)))

    def _record_pushed_part(
        self, parts: list[dict[str, Any]], number: int, rows: int, size: int, import_id: str
    ) -> None:
        parts.append({"part": number, "rows": rows, "bytes": size, "import_id": import_id})
        parts.sort(key=lambda part: part["part"])
        self._transfer_progress().save(phase="statement", push_started_at=None, part=None, parts=parts)
        self.log.info(
            "Pushed part %d (%d rows, %d bytes) of statement %s to Pigment configuration %s as import %s.",
            number,
            rows,
            size,
            self.statement_id,
            self.configuration_id,
            import_id,
        )

    def _wait_for_parts(self, task_progress: dict[str, Any]) -> dict[str, Any]:
        """Wait for each part's import that has no final status yet, then return the task summary.

        When deferrable, the task defers once per import, and :meth:`_resume_part_wait` continues.
        """
        for part in task_progress["parts"]:
            if part.get("status"):
                continue
            if self.deferrable:
                self.defer(
                    trigger=PigmentImportTrigger(
                        import_id=part["import_id"],
                        configuration_id=self.configuration_id,
                        pigment_conn_id=self.pigment_conn_id,
                        poll_interval=self.import_poll_interval,
                        timeout=self.import_timeout,
                        task_progress={**task_progress, "import_id": part["import_id"], "waiting_part": part["part"]},
                    ),
                    method_name="execute_complete",
                    timeout=self.execution_timeout,
                )
            report = self._wait_for_import(part["import_id"])
            self._record_part_report(task_progress, part, report)
        return self._summarize_parts(task_progress)

    def _resume_part_wait(self, task_progress: dict[str, Any], report: dict[str, Any]) -> dict[str, Any]:
        """Store the report of the part the trigger waited for, then wait for the next part or summarize."""
        number = task_progress.pop("waiting_part")
        task_progress["import_id"] = task_progress["parts"][-1]["import_id"]
        [part] = [part for part in task_progress["parts"] if part["part"] == number]
        self._record_part_report(task_progress, part, report)
        return self._wait_for_parts(task_progress)

    def _record_part_report(self, task_progress: dict[str, Any], part: dict[str, Any], report: dict[str, Any]) -> None:
        part["status"] = report.get("importStatus")
        part["counts"] = summary_counts(report)
        if part["status"] == ImportStatus.FAILED.value:
            part["errors"] = report.get("errorsDetails") or []
        self.log.info(
            "Pigment import %s of part %d of statement %s is %s: %s.",
            part["import_id"],
            part["part"],
            task_progress["statement_id"],
            part["status"],
            part["counts"],
        )
        if part["counts"]["skipped"]:
            self._log_skipped_rows(part["import_id"], report)
        self._transfer_progress().save(phase="pushed", task_progress=task_progress)

    def _summarize_parts(self, task_progress: dict[str, Any]) -> dict[str, Any]:
        """Return the task summary over all parts, or fail when a part's import Failed."""
        transfer = self._transfer_progress()
        parts = task_progress["parts"]
        failed = [part for part in parts if part["status"] == ImportStatus.FAILED.value]
        if failed:
            completed = [part for part in parts if part["status"] != ImportStatus.FAILED.value]
            # A Failed import changed nothing in the block, so the retry pushes those parts again.
            failed_ids = [*transfer.record.get("failed_import_ids", []), *(part["import_id"] for part in failed)]
            transfer.save(
                phase="statement", import_id=None, task_progress=None, parts=completed, failed_import_ids=failed_ids
            )
            raise PartImportFailedError(self.configuration_id, task_progress["statement_id"], failed, completed)

        transfer.save(phase="imported", task_progress=task_progress)
        totals = {key: sum(part["counts"][key] for part in parts) for key in _COUNT_KEYS}
        summary = {
            **{key: value for key, value in task_progress.items() if key != "parts"},
            "import_id": parts[-1]["import_id"],
            "import_ids": [part["import_id"] for part in parts],
            "parts": len(parts),
            "import_status": ImportStatus.COMPLETED.value,
            **totals,
        }
        self.log.info("Import summary: %s", summary)
        if self.max_skipped_rows is not None and totals["skipped"] > self.max_skipped_rows:
            skipping = ", ".join(part["import_id"] for part in parts if part["counts"]["skipped"])
            raise PigmentSkippedRowsError(skipping, self.configuration_id, totals["skipped"], self.max_skipped_rows)
        transfer.save(phase="succeeded", summary=summary)
        return summary


def _part_list(parts: list[Mapping[str, Any]]) -> str:
    return ", ".join(str(part["part"]) for part in parts)

