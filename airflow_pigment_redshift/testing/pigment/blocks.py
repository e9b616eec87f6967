"""In-memory state of the blocks that the Pigment import API emulator loads.

A keyed block stores its items as a dict from unique key to row. A block without a key stores
only its item count and the files that were loaded into it, so that memory does not grow with
the data. The rows stay readable in those files.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airflow_pigment_redshift.testing.pigment.configurations import ImportConfiguration


@dataclass(frozen=True)
class BlockChange:
    """Item counts that one import changed in a block."""

    inserted: int = 0
    updated: int = 0
    deleted: int = 0


@dataclass
class _Block:
    name: str
    block_id: str
    block_type: str
    list_kind: str | None
    unique_key: str | None
    items: dict[str, dict[str, str]] = field(default_factory=dict)
    appended_count: int = 0
    files: list[Path] = field(default_factory=list)

    @property
    def count(self) -> int:
        if self.unique_key is None:
            return self.appended_count
        return len(self.items)


class BlockStore:
    """Thread-safe store of block items, updated when an import completes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._blocks: dict[str, _Block] = {}

    def register(self, configuration: ImportConfiguration) -> None:
        """Create the configuration's target block unless it exists.

        :param configuration: Configuration whose block is created.
        :raises ValueError: when the block exists with another block type, list kind or unique
            key, because in Pigment those belong to the block and not to the configuration.
        """
        with self._lock:
            block = self._blocks.get(configuration.block_name)
            if block is None:
                self._blocks[configuration.block_name] = _Block(
                    name=configuration.block_name,
                    block_id=configuration.block_id,
                    block_type=configuration.block_type,
                    list_kind=configuration.list_kind,
                    unique_key=configuration.unique_key,
                )
                return
            existing = (block.block_type, block.list_kind, block.unique_key)
            requested = (
                configuration.block_type,
                configuration.list_kind,
                configuration.unique_key,
            )
            if existing != requested:
                raise ValueError(
                    f"configuration {configuration.id} targets block {block.name!r} as "
                    f"(block_type, list_kind, unique_key) {requested}, but another configuration "
                    f"already defines that block as {existing}"
                )

    def append(
        self, configuration: ImportConfiguration, row_count: int, file: Path
    ) -> BlockChange:
        """Append ``row_count`` rows read from ``file`` to a block without a unique key.

        :param configuration: Configuration of the import. With ``clear_before_import`` every
            existing item is deleted first.
        :param row_count: Number of rows that were accepted.
        :param file: Received file that contains the rows.
        """
        with self._lock:
            block = self._blocks[configuration.block_name]
            deleted = 0
            if configuration.clear_before_import:
                deleted = block.appended_count
                block.appended_count = 0
                block.files.clear()
            block.appended_count += row_count
            block.files.append(file)
            return BlockChange(inserted=row_count, deleted=deleted)

    def upsert(
        self,
        configuration: ImportConfiguration,
        rows: Mapping[str, dict[str, str]],
        occurrences: Mapping[str, int],
        file: Path,
    ) -> BlockChange:
        """Insert or update the rows of a keyed block.

        A key that occurs several times in one file counts as one insert or update for its
        first occurrence and as an update for every later one, and the last row wins.

        :param configuration: Configuration of the import. With ``clear_before_import`` the
            items whose keys are missing from ``rows`` are deleted.
        :param rows: Unique key to the last row with that key.
        :param occurrences: Unique key to the number of accepted rows with that key.
        :param file: Received file that contains the rows.
        """
        with self._lock:
            block = self._blocks[configuration.block_name]
            deleted = 0
            if configuration.clear_before_import:
                missing = [key for key in block.items if key not in rows]
                for key in missing:
                    del block.items[key]
                deleted = len(missing)
                block.files.clear()

            inserted = 0
            updated = 0
            for key, count in occurrences.items():
                if key in block.items:
                    updated += count
                else:
                    inserted += 1
                    updated += count - 1
            block.items.update(rows)
            block.files.append(file)
            return BlockChange(inserted=inserted, updated=updated, deleted=deleted)

    def items(self, block_name: str) -> dict[str, dict[str, str]] | int:
        """Return a copy of a keyed block's items, or the item count of a block without a key.

        :param block_name: Name of the block.
        :raises KeyError: when no configuration targets that block.
        """
        with self._lock:
            block = self._require(block_name)
            if block.unique_key is None:
                return block.appended_count
            return {key: dict(row) for key, row in block.items.items()}

    def count(self, block_name: str) -> int:
        """Return the number of items in a block.

        :param block_name: Name of the block.
        :raises KeyError: when no configuration targets that block.
        """
        with self._lock:
            return self._require(block_name).count

    def files(self, block_name: str) -> list[Path]:
        """Return the received files loaded into the block since it was last cleared.

        :param block_name: Name of the block.
        :raises KeyError: when no configuration targets that block.
        """
        with self._lock:
            return list(self._require(block_name).files)

    def summaries(self) -> list[dict[str, Any]]:
        """Return one JSON-compatible summary per block, without the items."""
        with self._lock:
            return [
                {
                    "block_name": block.name,
                    "block_id": block.block_id,
                    "block_type": block.block_type,
                    "list_kind": block.list_kind,
                    "unique_key": block.unique_key,
                    "count": block.count,
                }
                for block in self._blocks.values()
            ]

    def _require(self, block_name: str) -> _Block:
        block = self._blocks.get(block_name)
        if block is None:
            raise KeyError(
                f"no import configuration targets block {block_name!r}; "
                f"known blocks: {sorted(self._blocks)}"
            )
        return block
