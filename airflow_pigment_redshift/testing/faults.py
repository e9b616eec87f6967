"""Fault injection shared by the Redshift Data API and Pigment emulators.

A :class:`FaultRule` names the calls it applies to (an operation or endpoint, optional
request fields to match, which matching calls) and the fault to produce. A
:class:`FaultInjector` stores the rules of one emulator. The emulator requests a fault from
it at its single dispatch point, before handling each request.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

log = logging.getLogger(__name__)

#: Every fault kind. Which kinds an emulator supports is listed in its docstring.
FAULT_KINDS = (
    # Respond with an error: ``status`` (HTTP), ``code`` (AWS error code) and ``message`` (body text).
    "error",
    # Close the connection without reading the body or handling the request.
    "drop_before",
    # Handle the request (side effects included), then close the connection without a response.
    "drop_after",
    # Sleep ``delay_seconds`` before handling the request, to make a client time out.
    "delay",
    # Handle the request (side effects included), then sleep ``delay_seconds`` before responding.
    "slow_response",
    # Handle the request, then merge ``fields`` into the JSON response object.
    "override",
)


@dataclass
class FaultRule:
    """One fault to inject into the calls it matches.

    :param target: operation name (``DescribeStatement``) or endpoint name (``push``,
        ``status``), or ``*`` for every call.
    :param fault: one of :data:`FAULT_KINDS`.
    :param calls: 1-based numbers of the matching calls to fault, e.g. ``[2]`` for the
        second; empty for every matching call.
    :param every: fault every Nth matching call (N, 2N, ...); 0 to use ``calls`` only.
    :param times: stop after this many injected faults; 0 for no limit.
    :param match: request fields that must be equal for the call to match, e.g.
        ``{"Id": statement_id}`` to fault one statement. Nested keys are not supported.
    :param status: HTTP status of an ``error`` fault.
    :param code: AWS error code (``__type``) of an ``error`` fault in the Data API emulator.
    :param message: error message or body text of an ``error`` fault.
    :param delay_seconds: sleep of a ``delay`` or ``slow_response`` fault.
    :param fields: members merged into the JSON response of an ``override`` fault.
    """

    target: str
    fault: str
    calls: list[int] = field(default_factory=list)
    every: int = 0
    times: int = 0
    match: dict[str, Any] = field(default_factory=dict)
    status: int = 500
    code: str = "InternalServerException"
    message: str = ""
    delay_seconds: float = 0.0
    fields: dict[str, Any] = field(default_factory=dict)
    seen: int = 0
    injected: int = 0

    def __post_init__(self) -> None:
        if self.fault not in FAULT_KINDS:
            raise ValueError(f"Invalid fault {self.fault!r}: use one of {', '.join(FAULT_KINDS)}.")
        if self.every < 0 or self.times < 0 or any(number < 1 for number in self.calls):
            raise ValueError(
                f"Invalid call selection calls={self.calls!r}, every={self.every!r}, times={self.times!r}: "
                "call numbers start at 1, every and times must not be negative."
            )

    @classmethod
    def from_dict(cls, document: Mapping[str, Any]) -> FaultRule:
        """Build a rule from its JSON form (the admin endpoints' body).

        :raises ValueError: when a member is unknown or a value is invalid.
        """
        known = {name for name in cls.__dataclass_fields__ if name not in ("seen", "injected")}
        unknown = sorted(set(document) - known)
        if unknown:
            raise ValueError(f"Unknown fault rule members {unknown}: use {sorted(known)}.")
        if "target" not in document or "fault" not in document:
            raise ValueError("A fault rule needs 'target' and 'fault'.")
        return cls(**dict(document))

    def to_dict(self) -> dict[str, Any]:
        """Return the rule as JSON, with its ``seen`` and ``injected`` counters."""
        return asdict(self)

    def _matches(self, target: str, request: Mapping[str, Any]) -> bool:
        if self.target not in ("*", target):
            return False
        return all(request.get(name) == value for name, value in self.match.items())

    def _selects(self, number: int) -> bool:
        if self.times and self.injected >= self.times:
            return False
        if not self.calls and not self.every:
            return True
        return number in self.calls or bool(self.every and number % self.every == 0)


class FaultInjector:
    """Thread-safe set of fault rules, consulted once per request.

    :param rules: rules active from the start.
    """

    def __init__(self, rules: Iterable[FaultRule] = ()) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = list(rules)
        self._log: list[dict[str, Any]] = []

    def add(self, rule: FaultRule) -> FaultRule:
        """Activate a rule and return it."""
        with self._lock:
            self._rules.append(rule)
        log.info("Fault rule added: %s", rule)
        return rule

    def clear(self) -> None:
        """Remove every rule; the record of injected faults is kept."""
        with self._lock:
            self._rules.clear()

    def rules(self) -> list[dict[str, Any]]:
        """Return the active rules with their counters."""
        with self._lock:
            return [rule.to_dict() for rule in self._rules]

    @property
    def injected(self) -> list[dict[str, Any]]:
        """Every fault injected so far, oldest first, as ``{"target", "fault", "call"}``."""
        with self._lock:
            return [dict(entry) for entry in self._log]

    def fault_for(self, target: str, request: Mapping[str, Any]) -> FaultRule | None:
        """Count the call against every matching rule and return the first rule that fires.

        :param target: operation or endpoint name of the call.
        :param request: request fields that rules can match on.
        """
        fired: FaultRule | None = None
        with self._lock:
            for rule in self._rules:
                if not rule._matches(target, request):
                    continue
                rule.seen += 1
                if fired is None and rule._selects(rule.seen):
                    rule.injected += 1
                    fired = rule
                    self._log.append({"target": target, "fault": rule.fault, "call": rule.seen})
        if fired is not None:
            log.info("Injecting fault %s into %s (matching call %d).", fired.fault, target, fired.seen)
        return fired
