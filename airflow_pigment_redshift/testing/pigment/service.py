"""State and import processing of the Pigment import API emulator, independent of HTTP."""

from __future__ import annotations

import copy
import hmac
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from airflow_pigment_redshift.testing.faults import FaultInjector
from airflow_pigment_redshift.testing.pigment.blocks import BlockStore
from airflow_pigment_redshift.testing.pigment.configurations import ImportConfiguration
from airflow_pigment_redshift.testing.pigment.ledger import ImportLedger
from airflow_pigment_redshift.testing.pigment.processing import (
    ErrorDetail,
    ImportOutcome,
    ImportStatus,
    process_import,
)
from airflow_pigment_redshift.testing.pigment.rate_limits import FixedWindowLimiter
from airflow_pigment_redshift.testing.pigment.reports import (
    ImportRecord,
    build_ledger_entry,
    build_status_report,
)

logger = logging.getLogger(__name__)

# Interval at which the idle worker checks for imports whose processing time has passed.
_WORKER_POLL_SECONDS = 0.05


class ImportService:
    """Configurations, blocks, imports, rate limits and the ledger of one emulator.

    A single worker thread processes imports one at a time in the order they were pushed. An
    import reaches its final state when the worker has processed it and ``processing_seconds``
    have passed on the clock since its creation. The status endpoint additionally reports
    ``InProgress`` for the first ``in_progress_polls`` polls of every import.

    :param data_dir: Directory of the received files and the ledger.
    :param api_keys: Keys accepted in ``Authorization: Bearer <key>``.
    :param processing_seconds: Minimum clock time between creation and final state.
    :param in_progress_polls: Number of status polls that report ``InProgress`` before the
        final state becomes visible.
    :param now: Clock that returns the current time in seconds.
    :param import_limiter: Per-configuration import quota.
    :param request_limiter: Per-client-IP request limit.
    :param max_body_bytes: Maximum push body size in bytes, or ``None`` for no limit.
    :param accept_chunked_push: Whether a push with chunked transfer encoding is accepted;
        when False it gets 411 Length Required.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        api_keys: Iterable[str],
        processing_seconds: float,
        in_progress_polls: int,
        now: Callable[[], float],
        import_limiter: FixedWindowLimiter,
        request_limiter: FixedWindowLimiter,
        max_body_bytes: int | None,
        accept_chunked_push: bool = True,
    ) -> None:
        self.data_dir = data_dir
        self.files_dir = data_dir / "files"
        self.files_dir.mkdir(parents=True, exist_ok=True)
        self._api_keys = [key.encode("utf-8") for key in api_keys]
        self.processing_seconds = processing_seconds
        self.in_progress_polls = in_progress_polls
        self.now = now
        self.import_limiter = import_limiter
        self.request_limiter = request_limiter
        self.max_body_bytes = max_body_bytes
        self.accept_chunked_push = accept_chunked_push

        self.blocks = BlockStore()
        self.ledger = ImportLedger(data_dir / "imports.jsonl")
        self.faults = FaultInjector()
        self._lock = threading.Lock()
        self._configurations: dict[str, ImportConfiguration] = {}
        self._imports: dict[str, ImportRecord] = {}
        # Processed imports that wait for processing_seconds to pass.
        self._processed: list[ImportRecord] = []
        # None in the queue wakes the worker, so that a stop request takes effect at once.
        self._queue: queue.Queue[ImportRecord | None] = queue.Queue()
        self._stopping = threading.Event()
        self._worker: threading.Thread | None = None

    # Configurations and authentication.

    def add_configuration(self, configuration: ImportConfiguration) -> None:
        """Register a configuration and create its target block.

        :param configuration: Configuration to register. The service keeps a copy.
        :raises ValueError: when a configuration with the same id exists, or when the target
            block exists with another block type, list kind or unique key.
        """
        stored = copy.deepcopy(configuration)
        with self._lock:
            if stored.id in self._configurations:
                raise ValueError(f"import configuration {stored.id} is already registered")
            self.blocks.register(stored)
            self._configurations[stored.id] = stored

    def configuration(self, configuration_id: str) -> ImportConfiguration | None:
        """Return the configuration with that canonical id, or ``None``."""
        with self._lock:
            return self._configurations.get(configuration_id)

    def configurations(self) -> list[ImportConfiguration]:
        """Return all configurations in registration order."""
        with self._lock:
            return list(self._configurations.values())

    def is_valid_api_key(self, key: str) -> bool:
        """Return whether ``key`` is one of the configured API keys, compared in constant time."""
        candidate = key.encode("utf-8")
        return any(hmac.compare_digest(candidate, known) for known in self._api_keys)

    # Imports.

    def new_import_file(self) -> tuple[str, Path]:
        """Return a new import id and the path its received file is stored at."""
        import_id = str(uuid.uuid4())
        return import_id, self.files_dir / f"{import_id}.csv"

    def submit_import(
        self,
        import_id: str,
        configuration: ImportConfiguration,
        file: Path,
        size_bytes: int,
        *,
        chunked: bool = False,
    ) -> ImportRecord:
        """Create an import for a stored file and queue it for processing.

        :param import_id: Id returned by :meth:`new_import_file`.
        :param configuration: Configuration the file was pushed to.
        :param file: Stored file.
        :param size_bytes: Size of the received body in bytes.
        :param chunked: Whether the body came with chunked transfer encoding.
        """
        record = ImportRecord(
            import_id=import_id,
            configuration=configuration,
            file=file,
            relative_file=file.relative_to(self.data_dir).as_posix(),
            size_bytes=size_bytes,
            created_at=self.now(),
            chunked=chunked,
        )
        with self._lock:
            self._imports[import_id] = record
        self._queue.put(record)
        logger.info(
            "Accepted import %s for configuration %s: %s bytes",
            import_id,
            configuration.id,
            size_bytes,
        )
        return record

    def status_report(self, import_id: str, *, detailed: bool) -> dict[str, Any] | None:
        """Count a status poll and return the import's ``ApiImportReportDto``.

        :param import_id: Canonical import id.
        :param detailed: Whether to include ``detailedReport``.
        :return: The report, or ``None`` when the import is unknown.
        """
        with self._lock:
            self._finalize_due_locked()
            record = self._imports.get(import_id)
            if record is None:
                return None
            record.polls += 1
            visible = record.completed_at is not None and record.polls > self.in_progress_polls
            return build_status_report(record, final=visible, detailed=detailed)

    def import_configuration(self, import_id: str) -> ImportConfiguration | None:
        """Return the configuration an import was pushed to, or ``None`` when it is unknown.

        Imports from an earlier run on the same data directory are found through the ledger.
        """
        with self._lock:
            record = self._imports.get(import_id)
            if record is not None:
                return record.configuration
            configurations = dict(self._configurations)
        for entry in self.ledger.entries():
            if entry.get("import_id") == import_id:
                return configurations.get(entry.get("configuration_id", ""))
        return None

    def wait_for_idle(self, timeout: float) -> None:
        """Block until every import has reached its final state.

        :param timeout: Maximum wait in real seconds, independent of the injected clock.
        :raises TimeoutError: when imports are still in progress after ``timeout``.
        """
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                self._finalize_due_locked()
                pending = [
                    record.import_id
                    for record in self._imports.values()
                    if record.completed_at is None
                ]
            if not pending:
                return
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"{len(pending)} imports still in progress after {timeout} s: {pending}. "
                    "With processing_seconds > 0 and a fake clock, advance the clock first."
                )
            time.sleep(0.01)

    # Worker.

    def start(self) -> None:
        """Start the worker thread that processes queued imports."""
        if self._worker is not None:
            raise RuntimeError("the import worker is already running")
        self._stopping.clear()
        self._worker = threading.Thread(
            target=self._run_worker, name="pigment-emulator-imports", daemon=True
        )
        self._worker.start()

    def stop(self) -> None:
        """Stop the worker thread after the import it is processing.

        Queued imports that were not processed stay ``InProgress``.
        """
        worker = self._worker
        if worker is None:
            return
        self._stopping.set()
        self._queue.put(None)
        worker.join()
        self._worker = None

    def _run_worker(self) -> None:
        while not self._stopping.is_set():
            try:
                record = self._queue.get(timeout=_WORKER_POLL_SECONDS)
            except queue.Empty:
                with self._lock:
                    self._finalize_due_locked()
                continue
            if record is None:
                continue
            outcome = self._process(record)
            with self._lock:
                record.outcome = outcome
                record.processed_at = self.now()
                self._processed.append(record)
                self._finalize_due_locked()

    def _process(self, record: ImportRecord) -> ImportOutcome:
        try:
            return process_import(record.file, record.configuration, self.blocks)
        except Exception as error:  # A bug must fail the import, not stop the worker.
            logger.exception("Processing import %s failed unexpectedly", record.import_id)
            return ImportOutcome(
                ImportStatus.FAILED,
                errors=[ErrorDetail("InternalError", f"The emulator failed: {error!r}")],
            )

    def _finalize_due_locked(self) -> None:
        """Move processed imports whose processing time has passed to their final state."""
        if not self._processed:
            return
        current_time = self.now()
        still_waiting = []
        for record in self._processed:
            ready_at = record.created_at + self.processing_seconds
            if current_time < ready_at:
                still_waiting.append(record)
                continue
            assert record.processed_at is not None
            record.completed_at = max(record.processed_at, ready_at)
            self.ledger.append(build_ledger_entry(record))
            self._log_final_state(record)
        self._processed = still_waiting

    def _log_final_state(self, record: ImportRecord) -> None:
        outcome = record.outcome
        assert outcome is not None
        change = outcome.change
        logger.info(
            "Import %s for configuration %s %s: rows=%s inserted=%s updated=%s deleted=%s "
            "skipped=%s",
            record.import_id,
            record.configuration.id,
            outcome.status.value,
            outcome.rows,
            change.inserted,
            change.updated,
            change.deleted,
            outcome.skipped,
        )
        for error in outcome.errors:
            logger.info("Import %s error %s: %s", record.import_id, error.name, error.description)
