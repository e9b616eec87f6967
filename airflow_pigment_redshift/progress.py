"""Durable progress of one task instance of the transfer, kept across its retries.

The record lives in Airflow's task state store (``context["task_state_store"]``, Airflow
3.3 and later). Unlike XCom, which Airflow clears when a task instance starts a new try, the
task state store keeps its keys across retries, so a retry finds which statement already ran
and whether the push already happened. The store also keeps keys when a user clears the task
instance, so the record carries the DAG run's ``clear_number``: a record written before the
last clear is ignored, and a cleared task imports again.

Without a task state store (Airflow before 3.3, or a context built by hand) the record lives
only in memory for the current try, and each try starts over as the operator did before it
kept progress.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

#: Key of the record in the task state store. Renaming it makes running retries start over.
PROGRESS_KEY = "redshift_to_pigment_progress"

#: Phases of the record, in order.
#: ``statement``: a statement was submitted (``statement_id``); no push has been sent.
#: ``push_started``: a push is being sent; if the record is still here, its outcome is unknown.
#: ``pushed``: Pigment returned ``import_id``; the import may still be running.
#: ``imported``: the import ended Completed and its ``report`` is stored.
#: ``succeeded``: the task returned ``summary``.
PHASES = ("statement", "push_started", "pushed", "imported", "succeeded")


class TransferProgress:
    """Read and write the progress record of the current task instance.

    :param context: the task context.
    :param log: logger of the operator, for the decisions taken from the record.
    """

    def __init__(self, context: Mapping[str, Any], log: logging.Logger | Any) -> None:
        self._store = context.get("task_state_store")
        self._log = log
        dag_run = context.get("dag_run")
        self.clear_number = int(getattr(dag_run, "clear_number", 0) or 0)
        self.record: dict[str, Any] = {}
        if self._store is None:
            log.warning(
                "No task state store in the task context (it needs Airflow 3.3 or later): a retry of this task "
                "cannot see the previous try's statement or push, so it runs the query and pushes again."
            )
            return
        stored = self._store.get(PROGRESS_KEY)
        if not isinstance(stored, dict):
            return
        if stored.get("clear_number") != self.clear_number:
            log.info(
                "Ignoring the progress of an earlier run of this task instance (clear number %s, now %s): "
                "the task instance was cleared, so it imports again.",
                stored.get("clear_number"),
                self.clear_number,
            )
            return
        self.record = stored
        log.info(
            "Stored progress of this task instance: phase %s, statement %s, import %s.",
            stored.get("phase"),
            stored.get("statement_id"),
            stored.get("import_id"),
        )

    @property
    def durable(self) -> bool:
        """True when the record survives the end of this try."""
        return self._store is not None

    @property
    def phase(self) -> str | None:
        """Phase reached so far (see :data:`PHASES`), or None before the first statement."""
        return self.record.get("phase")

    def save(self, **changes: Any) -> None:
        """Update the record and write it to the task state store before returning.

        :param changes: JSON-serialisable members to set; ``None`` removes a member.
        """
        for name, value in changes.items():
            if value is None:
                self.record.pop(name, None)
            else:
                self.record[name] = value
        self.record["clear_number"] = self.clear_number
        if self._store is not None:
            self._store.set(PROGRESS_KEY, dict(self.record))
