"""Cut one CSV result into several Pigment imports of at most N data rows, each with the header.

:class:`CsvPartSplitter` is a text stream placed between ``ResultCsvWriter`` and the place
the CSV goes (the body pipe of a streamed push, or one temporary file per part). It treats
the first record as the header, counts records in the output dialect and starts a new part,
beginning with the header, before the record that would exceed the limit.

Records are counted on the written text, not on rows: a quoted value may contain line
breaks, so only a line feed outside quotes ends a record. This works for both line
terminators (``\\n`` and ``\\r\\n``) and either quote character. ``ResultCsvWriter`` writes
whole records in each ``write`` call. The splitter does not depend on that, because it carries
the quote state from one call to the next and cuts only after a record's end.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Protocol, TextIO

from airflow_pigment_redshift.push_body import CsvBodyPipe


class PartSink(Protocol):
    """Destination of the parts a :class:`CsvPartSplitter` emits."""

    def begin_part(self, number: int) -> None:
        """Start part ``number`` (1-based); later writes belong to it."""

    def write(self, text: str) -> int:
        """Write text of the current part."""


class CsvPartSplitter:
    """Text stream that splits CSV records into parts of at most ``max_rows`` data rows.

    :param sink: receives the parts that are not skipped.
    :param max_rows: maximum data rows per part, at least 1.
    :param quote_char: quote character of the CSV dialect.
    :param skip_parts: numbers of parts to cut and count but not write, because an earlier
        try already pushed them.
    """

    def __init__(self, sink: PartSink, max_rows: int, quote_char: str, skip_parts: Collection[int] = ()) -> None:
        if max_rows < 1:
            raise ValueError(f"Invalid max_rows {max_rows!r}: use an integer of at least 1.")
        self._sink = sink
        self._max_rows = max_rows
        self._quote = quote_char
        self._skip = frozenset(skip_parts)
        self._header_pieces: list[str] = []
        self._header: str | None = None
        self._in_quotes = False
        self._part = 0
        self._part_rows = 0
        #: Data rows of each part cut so far, by part number, skipped parts included.
        self.part_rows: dict[int, int] = {}
        #: Data rows written so far over all parts, skipped parts included.
        self.rows = 0

    def write(self, text: str) -> int:
        """Count the records of ``text`` and pass it on to the current part, starting parts as needed."""
        position = 0
        length = len(text)
        while position < length:
            if self._header is None:
                found, end = self._scan(text, position, 1)
                self._header_pieces.append(text[position:end])
                position = end
                if found:
                    self._header = "".join(self._header_pieces)
                    self._start_part()
                continue
            if self._part_rows == self._max_rows:
                self._start_part()
            found, end = self._scan(text, position, self._max_rows - self._part_rows)
            if self._part not in self._skip:
                self._sink.write(text[position:end])
            self._part_rows += found
            self.rows += found
            self.part_rows[self._part] = self._part_rows
            position = end
        return length

    def flush(self) -> None:
        """Do nothing: the sink hands text on by itself."""

    def _start_part(self) -> None:
        self._part += 1
        self._part_rows = 0
        self.part_rows[self._part] = 0
        if self._part not in self._skip:
            self._sink.begin_part(self._part)
            self._sink.write(self._header or "")

    def _scan(self, text: str, start: int, limit: int) -> tuple[int, int]:
        """Find up to ``limit`` record ends from ``start``; return how many and the index after the last.

        When fewer are found, the index is ``len(text)`` and the quote state is carried to the
        next call.
        """
        if not self._in_quotes and self._quote not in text[start:]:
            total = text.count("\n", start)
            if total < limit:
                return total, len(text)
            return limit, _after_line_feeds(text, start, limit)

        # Splitting on the quote character leaves the text outside quotes at every other piece
        # (a doubled quote adds an empty piece), so only line feeds in those pieces end records.
        pieces = text[start:].split(self._quote)
        outside = 1 if self._in_quotes else 0
        total = sum(piece.count("\n") for piece in pieces[outside::2])
        if total < limit:
            if len(pieces) % 2 == 0:
                self._in_quotes = not self._in_quotes
            return total, len(text)

        found = 0
        offset = start
        for index, piece in enumerate(pieces):
            if index % 2 == outside:
                count = piece.count("\n")
                if found + count >= limit:
                    self._in_quotes = False
                    return limit, _after_line_feeds(text, offset, limit - found)
                found += count
            offset += len(piece) + len(self._quote)
        raise AssertionError("record ends were counted but not found")


def _after_line_feeds(text: str, start: int, count: int) -> int:
    """Return the index just after the ``count``-th line feed at or after ``start``."""
    position = start
    for _ in range(count):
        position = text.index("\n", position) + 1
    return position


class FilePartSink:
    """Write each part to its own file in a directory, named ``part-00001.csv`` and so on.

    :param directory: existing directory for the part files.
    :param encoding: byte encoding of the files.
    """

    def __init__(self, directory: Path, encoding: str) -> None:
        self._directory = directory
        self._encoding = encoding
        self._file: TextIO | None = None
        #: Path of each part written, by part number.
        self.paths: dict[int, Path] = {}

    def begin_part(self, number: int) -> None:
        self.close()
        path = self._directory / f"part-{number:05d}.csv"
        self._file = path.open("w", encoding=self._encoding, newline="")
        self.paths[number] = path

    def write(self, text: str) -> int:
        if self._file is None:
            raise RuntimeError("begin_part() must run before text is written.")
        return self._file.write(text)

    def close(self) -> None:
        """Close the current part's file."""
        if self._file is not None:
            self._file.close()
            self._file = None


class PipePartSink:
    """Write parts into one body pipe, ending each part's body before the next part begins.

    :param pipe: a ``CsvBodyPipe``; its ``end_part`` ends the body of the part being sent.
    """

    def __init__(self, pipe: CsvBodyPipe) -> None:
        self._pipe = pipe
        self._begun = False

    def begin_part(self, number: int) -> None:
        if self._begun:
            self._pipe.end_part()
        self._begun = True

    def write(self, text: str) -> int:
        return self._pipe.write(text)


def unpushed_part_numbers(pushed: Collection[int]) -> Iterator[int]:
    """Yield part numbers from 1 up, leaving out those in ``pushed``, in the order the splitter emits them."""
    number = 0
    while True:
        number += 1
        if number not in pushed:
            yield number


def validate_max_rows_per_import(value: object) -> int | None:
    """Check the operator's ``max_rows_per_import`` and return it.

    :raises ValueError: when the value is not None or an integer of at least 1.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(
            f"Invalid max_rows_per_import {value!r}: use an integer of at least 1 (data rows per Pigment "
            "import, header excluded), or None to send the whole result as one import."
        )
    return value

