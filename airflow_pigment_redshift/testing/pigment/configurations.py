"""Import configurations known to the Pigment import API emulator.

In Pigment an import configuration is built by hand in the UI and fixes the target block and the
CSV format of every push. The emulator takes them from its constructor, from a JSON file or from
its admin endpoint instead.
"""

from __future__ import annotations

import codecs
import json
import os
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

BLOCK_TYPES = ("List", "Metric")
LIST_KINDS = ("transaction", "dimension")
DELIMITERS = (",", ";")
QUOTE_CHARS = ('"', "'")
HEADER_MISMATCH_MODES = ("fail", "reject")
COLUMN_TYPES = ("number", "date", "text")

# Namespace of the block ids that the emulator derives from block names.
_BLOCK_ID_NAMESPACE = uuid.UUID("5b0c3c1e-2a57-4c36-9a8e-8d3f1f6f3b21")


@dataclass
class ImportConfiguration:
    """Pigment import configuration: the target block and the CSV format that pushes must use.

    Values are validated when the object is created, and ``ValueError`` names the invalid field.

    :param id: Configuration id, a UUID string. It is stored in its canonical lower-case form.
    :param name: Display name of the configuration.
    :param block_name: Name of the target block. Configurations that share a block name load the
        same block, so they must agree on ``block_type``, ``list_kind`` and ``unique_key``.
    :param block_type: ``"List"`` or ``"Metric"``.
    :param list_kind: ``"transaction"`` or ``"dimension"`` for a List block, ``None`` for a Metric.
        ``None`` on a List means ``"transaction"``.
    :param delimiter: Column separator, ``","`` or ``";"``.
    :param quote_char: Text delimiter, ``'"'`` or ``"'"``. A quote inside a quoted field is doubled.
    :param encoding: Python codec name used to decode the pushed file, for example ``"utf-8"``.
        Use ``"utf-8-sig"`` to accept a byte order mark.
    :param expected_header: Column names that the header row must contain, in order, or ``None``
        to accept any header.
    :param unique_key: Column holding the unique item id. With a key, a push updates existing items
        and inserts new ones. Without one, a push appends every row. Dimension lists require a key.
    :param clear_before_import: Whether each push clears the block first. On a block without a
        key all items are deleted. On a keyed block the items missing from the file are deleted.
    :param header_mismatch: Handling of a push whose header is wrong. ``"fail"`` accepts the push
        and ends the import ``Failed`` with ``errorsDetails``. ``"reject"`` rejects the push
        with 400, and no import is created.
    :param column_types: Column name to ``"number"``, ``"date"`` or ``"text"``. A non-empty value
        that does not parse skips its row with reason ``ParsingError``. Numbers are plain decimals
        with ``.`` (``-12``, ``3.5``) and dates are ``YYYY-MM-DD``.
    """

    id: str
    name: str
    block_name: str
    block_type: str = "List"
    list_kind: str | None = None
    delimiter: str = ","
    quote_char: str = '"'
    encoding: str = "utf-8"
    expected_header: list[str] | None = None
    unique_key: str | None = None
    clear_before_import: bool = False
    # NOTE: Pigment does not document what a push whose header differs from the configuration
    # gets. Both plausible outcomes are modelled, and "fail" is only the emulator's default.
    header_mismatch: str = "fail"
    column_types: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.id = _canonical_uuid(self.id)
        _require_text("name", self.name)
        _require_text("block_name", self.block_name)
        _require_choice("block_type", self.block_type, BLOCK_TYPES)
        self._validate_list_kind()
        _require_choice("delimiter", self.delimiter, DELIMITERS)
        _require_choice("quote_char", self.quote_char, QUOTE_CHARS)
        self._validate_encoding()
        self._validate_expected_header()
        self._validate_unique_key()
        if not isinstance(self.clear_before_import, bool):
            raise ValueError(
                f"clear_before_import must be a bool, got {self.clear_before_import!r}"
            )
        _require_choice("header_mismatch", self.header_mismatch, HEADER_MISMATCH_MODES)
        self._validate_column_types()

    @property
    def block_id(self) -> str:
        """Block id reported in ``impactedBlocks``, a UUID derived from the block name."""
        return str(uuid.uuid5(_BLOCK_ID_NAMESPACE, self.block_name))

    @property
    def keyed(self) -> bool:
        """Whether the target block identifies items by ``unique_key``."""
        return self.unique_key is not None

    def reader_options(self) -> dict[str, Any]:
        """Return the keyword arguments for :func:`csv.reader` that match this configuration."""
        return {"delimiter": self.delimiter, "quotechar": self.quote_char, "doublequote": True}

    def to_dict(self) -> dict[str, Any]:
        """Return the configuration as a JSON-compatible dict keyed by field name."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ImportConfiguration:
        """Build a configuration from a dict keyed by field name.

        :param data: Field values. Unknown keys raise ``ValueError``, so that a misspelt field
            is not silently ignored.
        """
        if not isinstance(data, Mapping):
            raise ValueError(f"an import configuration must be a JSON object, got {data!r}")
        known = {item.name for item in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(
                f"unknown import configuration fields {unknown}; valid fields are {sorted(known)}"
            )
        missing = sorted(name for name in ("id", "name", "block_name") if name not in data)
        if missing:
            raise ValueError(f"import configuration is missing the required fields {missing}")
        return cls(**data)

    def _validate_list_kind(self) -> None:
        if self.block_type == "Metric":
            if self.list_kind is not None:
                raise ValueError(
                    f"list_kind must be None for a Metric block, got {self.list_kind!r}"
                )
            return
        if self.list_kind is None:
            self.list_kind = "transaction"
        _require_choice("list_kind", self.list_kind, LIST_KINDS)

    def _validate_encoding(self) -> None:
        _require_text("encoding", self.encoding)
        try:
            codecs.lookup(self.encoding)
        except LookupError:
            raise ValueError(f"encoding {self.encoding!r} is not a known Python codec") from None

    def _validate_expected_header(self) -> None:
        if self.expected_header is None:
            return
        if isinstance(self.expected_header, str) or not all(
            isinstance(name, str) for name in self.expected_header
        ):
            raise ValueError(
                f"expected_header must be a list of column names, got {self.expected_header!r}"
            )
        self.expected_header = list(self.expected_header)
        if not self.expected_header:
            raise ValueError("expected_header must name at least one column, or be None")
        duplicates = find_duplicates(self.expected_header)
        if duplicates:
            raise ValueError(f"expected_header contains duplicate columns {duplicates}")

    def _validate_unique_key(self) -> None:
        if self.unique_key is None:
            if self.list_kind == "dimension":
                raise ValueError(
                    f"configuration {self.id}: a dimension list requires unique_key, "
                    "the column that holds each item's id"
                )
            return
        _require_text("unique_key", self.unique_key)
        if self.expected_header is not None and self.unique_key not in self.expected_header:
            raise ValueError(
                f"unique_key {self.unique_key!r} is not in expected_header {self.expected_header}"
            )

    def _validate_column_types(self) -> None:
        if not isinstance(self.column_types, Mapping):
            raise ValueError(f"column_types must be a dict, got {self.column_types!r}")
        self.column_types = dict(self.column_types)
        for column, column_type in self.column_types.items():
            _require_choice(f"column_types[{column!r}]", column_type, COLUMN_TYPES)
            if self.expected_header is not None and column not in self.expected_header:
                raise ValueError(
                    f"column_types names {column!r}, which is not in expected_header "
                    f"{self.expected_header}"
                )


def load_configurations(path: str | os.PathLike[str]) -> list[ImportConfiguration]:
    """Read import configurations from a JSON file that contains a list of objects.

    :param path: JSON file. Each object has the field names of :class:`ImportConfiguration`.
    :raises ValueError: when the file is not valid JSON or an entry is invalid. The message names
        the file and the index of the entry.
    """
    file_path = Path(path)
    try:
        data = json.loads(file_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{file_path} is not valid JSON: {error}") from error
    if not isinstance(data, list):
        raise ValueError(f"{file_path} must contain a JSON list of import configurations")
    configurations = []
    for index, entry in enumerate(data):
        try:
            configurations.append(ImportConfiguration.from_dict(entry))
        except (TypeError, ValueError) as error:
            raise ValueError(f"{file_path}, entry {index}: {error}") from error
    return configurations


def _canonical_uuid(value: object) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise ValueError(f"configuration id must be a UUID, got {value!r}") from None


def _require_text(name: str, value: object) -> None:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")


def _require_choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")


def find_duplicates(names: list[str]) -> list[str]:
    """Return the names that occur more than once, in order of their second occurrence."""
    seen: set[str] = set()
    duplicates: list[str] = []
    for name in names:
        if name in seen and name not in duplicates:
            duplicates.append(name)
        seen.add(name)
    return duplicates
