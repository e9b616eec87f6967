"""Public entry point of the Pigment import API emulator: :class:`PigmentEmulator`."""

from __future__ import annotations

import csv
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from airflow_pigment_redshift.testing.faults import FaultInjector
from airflow_pigment_redshift.testing.pigment.configurations import ImportConfiguration
from airflow_pigment_redshift.testing.pigment.errors import resolve_error_bodies
from airflow_pigment_redshift.testing.pigment.handler import EmulatorHTTPServer
from airflow_pigment_redshift.testing.pigment.rate_limits import FixedWindowLimiter
from airflow_pigment_redshift.testing.pigment.service import ImportService

logger = logging.getLogger(__name__)

LOOPBACK_HOST = "127.0.0.1"

# Pigment's documented limits: 300 imports per configuration per hour, and 500 requests per
# 5 minutes per client IP address across all public API endpoints.
DEFAULT_IMPORTS_PER_CONFIGURATION = 300
DEFAULT_IMPORTS_WINDOW_SECONDS = 3600.0
DEFAULT_REQUESTS_PER_IP = 500
DEFAULT_REQUESTS_WINDOW_SECONDS = 300.0


class PigmentEmulator:
    """Local HTTP server that behaves like Pigment's CSV import API.

    It serves the push, status and trigger endpoints under ``/api/v1/import`` and their legacy
    unversioned paths, checks ``Authorization: Bearer <key>``, stores each pushed body under
    ``<data_dir>/files/<import_id>.csv`` and processes it asynchronously into an in-memory block.
    Each import that reaches its final state is appended to ``<data_dir>/imports.jsonl``. The
    admin endpoints ``/_emulator/configurations``, ``/_emulator/imports`` and
    ``/_emulator/blocks`` need no key.

    :param data_dir: Directory for received files and the ledger. It is created if missing.
    :param api_keys: Keys accepted as Bearer tokens.
    :param configurations: Import configurations registered at creation.
    :param host: Address to bind. Only ``127.0.0.1`` is accepted, so the emulator is never
        reachable from another machine.
    :param port: Port to bind. ``0`` picks a free port, which :attr:`url` reports.
    :param processing_seconds: Minimum clock time in seconds from push to final state.
    :param in_progress_polls: Number of status polls of each import that report ``InProgress``
        before the final state is shown.
    :param now: Clock in seconds. It drives rate-limit windows, processing time and the
        ``createdAt`` and ``completedAt`` times. Tests can pass a fake clock.
    :param imports_per_configuration_limit: Maximum pushes per configuration and window, or
        ``None`` for no limit. Over the limit a push gets 429.
    :param imports_window_seconds: Window of the per-configuration import limit, in seconds.
    :param requests_per_ip_limit: Maximum requests to Pigment endpoints per client IP and
        window, or ``None`` for no limit. Admin endpoints are not counted.
    :param requests_window_seconds: Window of the per-IP request limit, in seconds.
    :param max_body_bytes: Maximum push body size in bytes, or ``None`` for no limit. A larger
        body gets 400.
    :param error_bodies: Error kind name (see
        :class:`~airflow_pigment_redshift.testing.pigment.errors.ErrorKind`) to the text sent
        as the ``text/plain`` body of that error. ``{limit}`` is replaced by the exceeded limit.
    :param connection_timeout: Socket timeout in seconds for reading requests and for idle
        keep-alive connections.
    :param accept_chunked_push: Whether a push with chunked transfer encoding is accepted.
        When False, such a push gets 411 Length Required and creates no import.
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        *,
        api_keys: Iterable[str] = ("test-import-key",),
        configurations: Iterable[ImportConfiguration] = (),
        host: str = LOOPBACK_HOST,
        port: int = 0,
        processing_seconds: float = 0.0,
        in_progress_polls: int = 1,
        now: Callable[[], float] = time.time,
        imports_per_configuration_limit: int | None = DEFAULT_IMPORTS_PER_CONFIGURATION,
        imports_window_seconds: float = DEFAULT_IMPORTS_WINDOW_SECONDS,
        requests_per_ip_limit: int | None = DEFAULT_REQUESTS_PER_IP,
        requests_window_seconds: float = DEFAULT_REQUESTS_WINDOW_SECONDS,
        max_body_bytes: int | None = None,
        error_bodies: Mapping[str, str] | None = None,
        connection_timeout: float = 60.0,
        accept_chunked_push: bool = True,
    ) -> None:
        if host != LOOPBACK_HOST:
            raise ValueError(
                f"host must be {LOOPBACK_HOST}, got {host!r}; the emulator accepts no "
                "connections from other machines"
            )
        if not 0 <= port <= 65535:
            raise ValueError(f"port must be between 0 and 65535, got {port}")
        if processing_seconds < 0:
            raise ValueError(f"processing_seconds must not be negative, got {processing_seconds}")
        if in_progress_polls < 0:
            raise ValueError(f"in_progress_polls must not be negative, got {in_progress_polls}")
        if max_body_bytes is not None and max_body_bytes < 0:
            raise ValueError(f"max_body_bytes must not be negative, got {max_body_bytes}")
        if connection_timeout <= 0:
            raise ValueError(f"connection_timeout must be positive, got {connection_timeout}")
        keys = list(api_keys)
        if any(not isinstance(key, str) or not key for key in keys):
            raise ValueError("every API key must be a non-empty string")

        self._host = host
        self._port = port
        self._connection_timeout = connection_timeout
        self._error_bodies = resolve_error_bodies(error_bodies)
        # NOTE: Pigment does not say whether its rate-limit windows are fixed or rolling. The
        # emulator uses fixed windows aligned to multiples of the window length on the clock.
        import_limiter = FixedWindowLimiter(
            imports_per_configuration_limit, imports_window_seconds, now
        )
        request_limiter = FixedWindowLimiter(requests_per_ip_limit, requests_window_seconds, now)
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._service = ImportService(
            self.data_dir,
            api_keys=keys,
            processing_seconds=processing_seconds,
            in_progress_polls=in_progress_polls,
            now=now,
            import_limiter=import_limiter,
            request_limiter=request_limiter,
            max_body_bytes=max_body_bytes,
            accept_chunked_push=accept_chunked_push,
        )
        for configuration in configurations:
            self.add_configuration(configuration)

        self._server: EmulatorHTTPServer | None = None
        self._server_thread: threading.Thread | None = None

    # Lifecycle.

    def start(self) -> PigmentEmulator:
        """Bind the port, start serving in background threads and return the emulator.

        :raises RuntimeError: when the emulator is already running.
        :raises OSError: when the port cannot be bound.
        """
        if self._server is not None:
            raise RuntimeError(f"the emulator is already running at {self.url}")
        server = EmulatorHTTPServer(
            (self._host, self._port),
            self._service,
            self._error_bodies,
            self._connection_timeout,
        )
        self._service.start()
        self._server = server
        self._server_thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="pigment-emulator-http",
            daemon=True,
        )
        self._server_thread.start()
        logger.info(
            "Pigment import API emulator listening on %s with data directory %s",
            self.url,
            self.data_dir,
        )
        return self

    def stop(self) -> None:
        """Stop serving, close open connections and stop the import worker.

        Calling it on a stopped emulator does nothing.
        """
        server = self._server
        if server is None:
            return
        server.shutdown()
        server.close_connections()
        server.server_close()
        if self._server_thread is not None:
            self._server_thread.join()
        self._service.stop()
        self._server = None
        self._server_thread = None
        logger.info("Pigment import API emulator stopped")

    def __enter__(self) -> PigmentEmulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL of the running emulator, such as ``http://127.0.0.1:8123``.

        :raises RuntimeError: when the emulator is not running.
        """
        if self._server is None:
            raise RuntimeError("the emulator is not running; call start() first")
        return f"http://{self._host}:{self._server.server_port}"

    # Configurations.

    def add_configuration(self, configuration: ImportConfiguration) -> None:
        """Register an import configuration, also while the emulator is running.

        :param configuration: Configuration to register. The emulator keeps a copy.
        :raises ValueError: when its id is already registered, or when another configuration
            defines its block with another block type, list kind or unique key.
        """
        self._service.add_configuration(configuration)

    def configurations(self) -> list[ImportConfiguration]:
        """Return the registered configurations in registration order."""
        return self._service.configurations()

    @property
    def accept_chunked_push(self) -> bool:
        """Whether a push with chunked transfer encoding is accepted; settable while running."""
        return self._service.accept_chunked_push

    @accept_chunked_push.setter
    def accept_chunked_push(self, value: bool) -> None:
        self._service.accept_chunked_push = value

    @property
    def faults(self) -> FaultInjector:
        """Fault rules applied to the ``push`` and ``status`` endpoints: ``faults.add(FaultRule(...))``.

        Supported kinds: ``error`` (``status`` and ``message`` as the body), ``drop_before``
        (close without reading the body, so no import is created), ``drop_after`` (the import
        is created, then the connection closes without a response), ``delay``, ``slow_response``
        (the import is created, then the answer is late) and ``override``
        (merged into the JSON status report). Rules can match ``configurationid`` or
        ``importid``. A process takes the same rules as JSON at ``POST /_emulator/faults``.
        """
        return self._service.faults

    # Results.

    def ledger(self) -> list[dict[str, Any]]:
        """Return the entries of ``imports.jsonl``, oldest first.

        Entries written by an earlier run on the same data directory are included.
        """
        return self._service.ledger.entries()

    def received_file(self, import_id: str) -> Path:
        """Return the path of the body received by a push.

        :param import_id: Import id returned by the push.
        :raises KeyError: when no file was stored for that id.
        """
        canonical_id = _canonical_import_id(import_id)
        path = self._service.files_dir / f"{canonical_id}.csv"
        if not path.is_file():
            raise KeyError(f"no received file for import {import_id}")
        return path

    def received_header(self, import_id: str) -> list[str]:
        """Return the header row of a received file, parsed with its configuration's format.

        :param import_id: Import id returned by the push.
        :raises KeyError: when the import or its configuration is unknown.
        """
        header, _rows = self._read_received(import_id, with_rows=False)
        return header

    def received_rows(self, import_id: str) -> list[list[str]]:
        """Return the data rows of a received file, without the header and blank lines.

        The file is parsed with its configuration's encoding, separator and quote character.

        :param import_id: Import id returned by the push.
        :raises KeyError: when the import or its configuration is unknown.
        :raises UnicodeDecodeError: when the file is not valid in the configured encoding.
        """
        _header, rows = self._read_received(import_id, with_rows=True)
        return rows

    def block_items(self, block_name: str) -> dict[str, dict[str, str]] | int:
        """Return the current items of a block.

        :param block_name: Name of the block, as in :attr:`ImportConfiguration.block_name`.
        :return: For a block with a unique key, a copy of its items as unique key to a dict of
            column name to value. For a block without a key, its item count, because such a
            block keeps only the count and the received files in memory.
        :raises KeyError: when no configuration targets that block.
        """
        return self._service.blocks.items(block_name)

    def block_count(self, block_name: str) -> int:
        """Return the number of items in a block, whether or not it has a unique key.

        :param block_name: Name of the block.
        :raises KeyError: when no configuration targets that block.
        """
        return self._service.blocks.count(block_name)

    def block_files(self, block_name: str) -> list[Path]:
        """Return the received files loaded into a block since it was last cleared.

        :param block_name: Name of the block.
        :raises KeyError: when no configuration targets that block.
        """
        return self._service.blocks.files(block_name)

    def wait_for_idle(self, timeout: float = 10.0) -> None:
        """Block until every pushed import has reached its final state and is in the ledger.

        The final state may still be hidden from the first ``in_progress_polls`` status polls.

        :param timeout: Maximum wait in real seconds.
        :raises TimeoutError: when imports are still in progress after ``timeout``.
        """
        self._service.wait_for_idle(timeout)

    def _read_received(
        self, import_id: str, *, with_rows: bool
    ) -> tuple[list[str], list[list[str]]]:
        path = self.received_file(import_id)
        configuration = self._service.import_configuration(_canonical_import_id(import_id))
        if configuration is None:
            raise KeyError(f"the configuration of import {import_id} is not registered")
        with open(path, encoding=configuration.encoding, newline="") as file:
            reader = csv.reader(file, **configuration.reader_options())
            header = next(reader, [])
            rows = [record for record in reader if record] if with_rows else []
        return header, rows


def _canonical_import_id(import_id: str) -> str:
    try:
        return str(uuid.UUID(import_id))
    except ValueError:
        raise KeyError(f"import id {import_id!r} is not a UUID") from None
