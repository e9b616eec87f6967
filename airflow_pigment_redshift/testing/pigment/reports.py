"""Import records and the JSON documents built from them: status reports and ledger entries."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from airflow_pigment_redshift.testing.pigment.configurations import ImportConfiguration
from airflow_pigment_redshift.testing.pigment.processing import ImportOutcome, ImportStatus


@dataclass
class ImportRecord:
    """State of one pushed import.

    Times are seconds from the emulator's clock. ``processed_at`` is set when the worker has
    applied the file, and ``completed_at`` when the import reaches its final state.
    """

    import_id: str
    configuration: ImportConfiguration
    file: Path
    relative_file: str
    size_bytes: int
    created_at: float
    chunked: bool = False
    polls: int = 0
    outcome: ImportOutcome | None = None
    processed_at: float | None = None
    completed_at: float | None = None


def format_timestamp(seconds: float) -> str:
    """Format clock seconds as an ISO 8601 UTC date-time with a ``Z`` suffix."""
    moment = datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def build_status_report(record: ImportRecord, *, final: bool, detailed: bool) -> dict[str, Any]:
    """Build Pigment's ``ApiImportReportDto`` for an import.

    :param record: Import to report on.
    :param final: Whether the client may see the final state. When false the report has
        ``importStatus`` ``InProgress`` and no ``completedAt``.
    :param detailed: Whether to include ``detailedReport``. It is ``null`` while the import is in
        progress.
    """
    outcome = record.outcome if final else None
    report: dict[str, Any] = {
        "importId": record.import_id,
        "createdAt": format_timestamp(record.created_at),
        "completedAt": None,
        "importStatus": ImportStatus.IN_PROGRESS.value,
        "errorsDetails": None,
        "detailedReport": None,
    }
    if outcome is None or record.completed_at is None:
        return report

    report["completedAt"] = format_timestamp(record.completed_at)
    report["importStatus"] = outcome.status.value
    if outcome.errors:
        report["errorsDetails"] = [
            {"name": error.name, "description": error.description} for error in outcome.errors
        ]
    if detailed:
        report["detailedReport"] = _build_detailed_report(record.configuration, outcome)
    return report


def build_ledger_entry(record: ImportRecord) -> dict[str, Any]:
    """Build the ledger line of an import that reached its final state."""
    outcome = record.outcome
    if outcome is None or record.completed_at is None:
        raise ValueError(f"import {record.import_id} has not reached a final state")
    return {
        "import_id": record.import_id,
        "configuration_id": record.configuration.id,
        "block_name": record.configuration.block_name,
        "status": outcome.status.value,
        "bytes": record.size_bytes,
        "chunked": record.chunked,
        "rows": outcome.rows,
        "inserted": outcome.change.inserted,
        "updated": outcome.change.updated,
        "deleted": outcome.change.deleted,
        "skipped": outcome.skipped,
        "created_at": format_timestamp(record.created_at),
        "completed_at": format_timestamp(record.completed_at),
        "file": record.relative_file,
    }


def _build_detailed_report(
    configuration: ImportConfiguration, outcome: ImportOutcome
) -> dict[str, Any]:
    change = outcome.change
    skipped_data = [
        {
            "count": entry.count,
            "reason": entry.reason,
            "sourceColumnName": entry.source_column_name,
            "samples": list(entry.samples),
        }
        for entry in outcome.skipped_data
    ]
    return {
        "blockType": configuration.block_type,
        "summary": {
            "insertedCount": change.inserted,
            "updatedCount": change.updated,
            "deletedCount": change.deleted,
            "skippedCount": outcome.skipped,
        },
        "impactedBlocks": [
            {
                "blockId": configuration.block_id,
                "scenarioId": None,
                "insertedCount": change.inserted,
                "updatedCount": change.updated,
                "deletedCount": change.deleted,
                "skippedData": skipped_data,
            }
        ],
        "autoCreatedDimensionModalities": [],
    }
