"""Ledger of finished imports: a JSON Lines file with an in-memory copy."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


class ImportLedger:
    """Append-only record of the imports that reached a final state.

    Each entry is written as one line with a single ``write`` call under a lock and flushed at
    once, so concurrent writers never interleave lines. Entries already in the file are loaded
    when the ledger is created, so the in-memory copy always equals the file.

    :param path: JSON Lines file. It is created on the first append.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._entries = self._load()

    @property
    def path(self) -> Path:
        """JSON Lines file of the ledger."""
        return self._path

    def append(self, entry: Mapping[str, Any]) -> None:
        """Write one entry to the file and to the in-memory copy.

        :param entry: JSON-compatible mapping.
        """
        line = json.dumps(dict(entry), ensure_ascii=False) + "\n"
        with self._lock:
            with open(self._path, "a", encoding="utf-8") as file:
                file.write(line)
                file.flush()
            self._entries.append(dict(entry))

    def entries(self) -> list[dict[str, Any]]:
        """Return copies of all entries, oldest first."""
        with self._lock:
            return [dict(entry) for entry in self._entries]

    def _load(self) -> list[dict[str, Any]]:
        if not self._path.exists():
            return []
        entries = []
        with open(self._path, encoding="utf-8") as file:
            for number, line in enumerate(file, start=1):
                if not line.strip():
                    continue
                try:
                    entries.append(json.loads(line))
                except json.JSONDecodeError as error:
                    logger.warning(
                        "Skipped invalid line %s of import ledger %s: %s", number, self._path, error
                    )
        return entries
