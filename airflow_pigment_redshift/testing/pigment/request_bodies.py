"""Streaming reads of HTTP/1.1 request bodies framed by Content-Length or chunked encoding.

Bodies are read in chunks of :data:`COPY_CHUNK_BYTES`, so memory use does not depend on the
body size.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from email.message import Message
from typing import BinaryIO

COPY_CHUNK_BYTES = 64 * 1024
MAX_LINE_BYTES = 8 * 1024

_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]+")


class BodyError(Exception):
    """Raised when a request body is malformed, incomplete or cannot be read."""


class BodyTooLargeError(BodyError):
    """Raised when a request body exceeds the configured maximum size."""


def iter_body(
    rfile: BinaryIO, headers: Message, max_bytes: int | None = None
) -> Iterator[bytes]:
    """Yield the request body in chunks of at most :data:`COPY_CHUNK_BYTES`.

    A request with neither ``Transfer-Encoding`` nor ``Content-Length`` has an empty body.

    :param rfile: Buffered stream of the connection, positioned after the request headers.
    :param headers: Request headers.
    :param max_bytes: Maximum body size in bytes, or ``None`` for no limit.
    :raises BodyTooLargeError: when the body exceeds ``max_bytes``. With Content-Length this is
        raised before any byte is read.
    :raises BodyError: when the framing is invalid or the connection fails or closes early.
    """
    transfer_encoding = headers.get("Transfer-Encoding")
    if transfer_encoding is not None:
        codings = [coding.strip().lower() for coding in transfer_encoding.split(",")]
        if codings != ["chunked"]:
            raise BodyError(
                f"unsupported Transfer-Encoding {transfer_encoding!r}; only chunked is supported"
            )
        yield from _iter_chunked(rfile, max_bytes)
        return

    content_length = headers.get("Content-Length")
    if content_length is None:
        return
    if not content_length.strip().isdigit():
        raise BodyError(f"invalid Content-Length {content_length!r}")
    length = int(content_length)
    if max_bytes is not None and length > max_bytes:
        raise BodyTooLargeError(
            f"Content-Length {length} exceeds the maximum body size of {max_bytes} bytes"
        )
    yield from _iter_exact(rfile, length)


def copy_body(
    rfile: BinaryIO, headers: Message, destination: BinaryIO, max_bytes: int | None = None
) -> int:
    """Copy the request body to ``destination`` and return its size in bytes.

    A body over ``max_bytes`` is still read to its end, without writing the rest, so that the
    client gets the error response instead of a reset connection and the connection stays usable.

    :param rfile: Buffered stream of the connection, positioned after the request headers.
    :param headers: Request headers.
    :param destination: Binary file the body is written to.
    :param max_bytes: Maximum body size in bytes, or ``None`` for no limit.
    :raises BodyTooLargeError: after reading a body larger than ``max_bytes``.
    :raises BodyError: when the framing is invalid or the connection fails or closes early.
    """
    size = 0
    for chunk in iter_body(rfile, headers):
        size += len(chunk)
        if max_bytes is None or size <= max_bytes:
            destination.write(chunk)
    if max_bytes is not None and size > max_bytes:
        raise BodyTooLargeError(
            f"the body of {size} bytes exceeds the maximum body size of {max_bytes} bytes"
        )
    return size


def read_body(rfile: BinaryIO, headers: Message, max_bytes: int) -> bytes:
    """Read a small request body into memory.

    :param rfile: Buffered stream of the connection, positioned after the request headers.
    :param headers: Request headers.
    :param max_bytes: Maximum body size in bytes.
    :raises BodyError: as :func:`iter_body` does.
    """
    return b"".join(iter_body(rfile, headers, max_bytes))


def discard_body(rfile: BinaryIO, headers: Message) -> None:
    """Read and drop the request body, so that the connection can serve the next request.

    :raises BodyError: as :func:`iter_body` does.
    """
    for _chunk in iter_body(rfile, headers):
        pass


def _iter_exact(rfile: BinaryIO, length: int) -> Iterator[bytes]:
    remaining = length
    while remaining:
        chunk = _read(rfile, min(COPY_CHUNK_BYTES, remaining))
        if not chunk:
            raise BodyError(
                f"connection closed after {length - remaining} of {length} body bytes"
            )
        remaining -= len(chunk)
        yield chunk


def _iter_chunked(rfile: BinaryIO, max_bytes: int | None) -> Iterator[bytes]:
    total = 0
    while True:
        size_line = _read_line(rfile)
        size_text = size_line.split(b";", 1)[0].strip()
        if _CHUNK_SIZE.fullmatch(size_text) is None:
            raise BodyError(f"invalid chunk size line {size_line[:80]!r}")
        size = int(size_text, 16)
        if size == 0:
            break
        total += size
        if max_bytes is not None and total > max_bytes:
            raise BodyTooLargeError(
                f"chunked body exceeds the maximum body size of {max_bytes} bytes"
            )
        yield from _iter_exact(rfile, size)
        if _read_line(rfile).strip():
            raise BodyError("chunk data is not followed by CRLF")

    # Trailer fields end with an empty line, and the emulator ignores them.
    while _read_line(rfile, allow_eof=True).strip():
        pass


def _read(rfile: BinaryIO, size: int) -> bytes:
    try:
        return rfile.read(size)
    except OSError as error:
        raise BodyError(f"reading the request body failed: {error}") from error


def _read_line(rfile: BinaryIO, *, allow_eof: bool = False) -> bytes:
    try:
        line = rfile.readline(MAX_LINE_BYTES + 1)
    except OSError as error:
        raise BodyError(f"reading the request body failed: {error}") from error
    if not line and allow_eof:
        return line
    if not line.endswith(b"\n"):
        if len(line) > MAX_LINE_BYTES:
            raise BodyError(f"chunked body line is longer than {MAX_LINE_BYTES} bytes")
        raise BodyError("connection closed inside a chunked body")
    return line
