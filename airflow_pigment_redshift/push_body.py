"""Stream a result's CSV into a Pigment push while the result pages are still being read.

A producer thread runs the export (Data API pages or UNLOAD parts through ``ResultCsvWriter``)
into a :class:`CsvBodyPipe`. The pipe encodes the text in chunks of about 1 MiB and hands
them to the HTTP request body through a bounded queue. Reading, converting and sending thus
overlap, and memory stays bounded by a few chunks plus the pages in flight.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Characters buffered before one encoded chunk is handed to the request body.
CHUNK_CHARS = 1 << 20
#: Encoded chunks queued between the producer and the request body.
QUEUED_CHUNKS = 4
_PUT_WAIT_SECONDS = 0.5


class ResultStreamError(Exception):
    """The export feeding a streamed push failed, so the request body was never completed.

    :param error: the export's exception, already translated into this provider's errors.
    """

    def __init__(self, error: BaseException) -> None:
        super().__init__(f"The result export feeding the push failed: {type(error).__name__}: {error}")
        self.error = error


class _PipeClosedError(Exception):
    """Raised in the producer when the request body stopped reading."""


class _End:
    """Queue item that marks the end of the body."""


class _PartEnd:
    """Queue item that ends one part's body; the next part's chunks follow it."""


class CsvBodyPipe:
    """Text stream that a producer writes CSV into, read as encoded chunks by a request body.

    :param encoding: byte encoding of the body; an unencodable character raises
        ``UnicodeEncodeError`` in the producer's ``write`` or ``flush``.
    :param stop: event set by the reader when it stops reading.
    """

    def __init__(self, encoding: str, stop: threading.Event) -> None:
        self._encoding = encoding
        self._stop = stop
        self._buffer: list[str] = []
        self._buffered_chars = 0
        self.queue: queue.Queue[bytes | _End | _PartEnd | BaseException] = queue.Queue(maxsize=QUEUED_CHUNKS)

    def write(self, text: str) -> int:
        """Buffer ``text``, handing a chunk to the body once about :data:`CHUNK_CHARS` are buffered."""
        self._buffer.append(text)
        self._buffered_chars += len(text)
        if self._buffered_chars >= CHUNK_CHARS:
            self.flush()
        return len(text)

    def flush(self) -> None:
        """Encode the buffered text and hand it to the body, waiting while the queue is full."""
        if not self._buffer:
            return
        data = "".join(self._buffer).encode(self._encoding)
        self._buffer = []
        self._buffered_chars = 0
        self.put(data)

    def end_part(self) -> None:
        """Hand over the buffered text and end the current part's body; later writes start the next part."""
        self.flush()
        self.put(_PartEnd())

    def put(self, item: bytes | _End | _PartEnd | BaseException) -> None:
        """Queue one item, giving up with ``_PipeClosedError`` once the reader has stopped."""
        while True:
            if self._stop.is_set():
                raise _PipeClosedError
            try:
                self.queue.put(item, timeout=_PUT_WAIT_SECONDS)
                return
            except queue.Full:
                continue

    @contextmanager
    def open(self) -> Iterator[CsvBodyPipe]:
        """Context manager that flushes the remaining text when the export ends without an error."""
        yield self
        self.flush()


class StreamedExport(Generic[T]):
    """Run an export into a :class:`CsvBodyPipe` on a thread and expose it as a request body.

    :param export: writes the whole CSV into the pipe and returns the export's summary.
    :param encoding: byte encoding of the body.
    :param name: thread name, with the statement id, for logs and thread dumps.
    """

    def __init__(self, export: Callable[[CsvBodyPipe], T], encoding: str, *, name: str) -> None:
        self._stop = threading.Event()
        self._pipe = CsvBodyPipe(encoding, self._stop)
        self._finished = threading.Event()
        self._result: T | None = None
        self._first: bytes | _End | _PartEnd | BaseException | None = None
        self._error: BaseException | None = None
        self.bytes_read = 0
        self._thread = threading.Thread(target=self._run, args=(export,), name=name, daemon=True)
        self._thread.start()

    def _run(self, export: Callable[[CsvBodyPipe], T]) -> None:
        try:
            self._result = export(self._pipe)
            self._finished.set()
            self._pipe.put(_End())
        except _PipeClosedError:
            return
        except BaseException as error:  # noqa: BLE001 - every failure must reach the reading thread
            try:
                self._pipe.put(error)
            except _PipeClosedError:
                log.warning("Result export failed after the push stopped reading: %s: %s", type(error).__name__, error)

    def wait_for_data(self) -> bool:
        """Block until the first chunk is ready, and return whether the whole export has finished.

        An export that fails before its first chunk raises its error here, before any request
        is sent. While the export is still running, the first chunk contains about 1 MiB of CSV,
        more than any header line, so the result has at least one row.
        """
        if self._error is not None:
            raise self._error
        if self._first is None:
            self._first = self._pipe.queue.get()
        if isinstance(self._first, BaseException):
            self._error, self._first = self._first, None
            raise self._error
        return self._finished.is_set()

    def has_more_data(self) -> bool:
        """Block until the next chunk is ready, and return whether a body (another part) follows.

        An export failure before that chunk raises its error here.
        """
        self.wait_for_data()
        return not isinstance(self._first, _End)

    def result(self) -> T:
        """Return the export's summary; valid once the body was read to its end."""
        if not self._finished.is_set() or self._result is None:
            raise RuntimeError("The export has not finished; read the whole body first.")
        return self._result

    def body(self) -> Iterator[bytes]:
        """Yield the encoded CSV; an export failure raises :class:`ResultStreamError` mid-body.

        When the export ends parts with :meth:`CsvBodyPipe.end_part`, the body ends at the end
        of the current part, and the next call yields the next part.
        """
        self.wait_for_data()
        item, self._first = self._first, None
        while True:
            if item is None:
                item = self._pipe.queue.get()
            if isinstance(item, _End):
                # Keep the end marker, so has_more_data() returns False from now on.
                self._first = item
                return
            if isinstance(item, _PartEnd):
                return
            if isinstance(item, BaseException):
                raise ResultStreamError(item) from item
            self.bytes_read += len(item)
            yield item
            item = None

    def close(self) -> None:
        """Stop the producer if it is still running and wait for its thread to end."""
        self._stop.set()
        while True:
            try:
                self._pipe.queue.get_nowait()
            except queue.Empty:
                break
        self._thread.join()


def push_streamed(
    export: Callable[[CsvBodyPipe], T], encoding: str, push: Callable[[Iterator[bytes]], str], *, name: str
) -> tuple[str, T, int]:
    """Run ``export`` on a thread and send its CSV through ``push`` as it is written.

    :param export: writes the whole CSV into the pipe and returns the export's summary.
    :param encoding: byte encoding of the body.
    :param push: sends the body and returns the import id, e.g. ``PigmentHook.push_stream``
        with its configuration id bound.
    :param name: thread name of the export.
    :return: the import id, the export's summary and the bytes sent.
    """
    streamed = StreamedExport(export, encoding, name=name)
    try:
        import_id = push(streamed.body())
    finally:
        streamed.close()
    return import_id, streamed.result(), streamed.bytes_read
