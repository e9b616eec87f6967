"""Fixed-window rate limiting for the Pigment import API emulator."""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable


class FixedWindowLimiter:
    """Count events per key and reject those over the limit within one window.

    Windows are aligned to multiples of ``window_seconds`` since the epoch of ``now``, so all
    keys reset at the same instants.

    :param limit: Maximum number of events per key and window, or ``None`` for no limit.
    :param window_seconds: Length of a window in seconds.
    :param now: Clock that returns the current time in seconds.
    """

    def __init__(
        self, limit: int | None, window_seconds: float, now: Callable[[], float]
    ) -> None:
        if limit is not None and limit < 1:
            raise ValueError(f"rate limit must be at least 1 or None, got {limit!r}")
        if window_seconds <= 0:
            raise ValueError(f"rate limit window must be positive, got {window_seconds!r} s")
        self.limit = limit
        self.window_seconds = window_seconds
        self._now = now
        self._lock = threading.Lock()
        # Key to (window index, events counted in that window).
        self._counts: dict[Hashable, tuple[int, int]] = {}

    def acquire(self, key: Hashable) -> int | None:
        """Count one event for ``key``.

        :param key: Key whose events are counted, such as a client IP address.
        :return: Index of the window the event was counted in, for :meth:`release`, or ``None``
            when the key is over the limit and the event was not counted.
        """
        window = int(self._now() // self.window_seconds)
        with self._lock:
            counted_window, count = self._counts.get(key, (window, 0))
            if counted_window != window:
                count = 0
            if self.limit is not None and count >= self.limit:
                return None
            self._counts[key] = (window, count + 1)
            return window

    def release(self, key: Hashable, window: int) -> None:
        """Take back an event counted by :meth:`acquire`, unless its window has ended.

        :param key: Key passed to :meth:`acquire`.
        :param window: Window index that :meth:`acquire` returned.
        """
        with self._lock:
            counted_window, count = self._counts.get(key, (window, 0))
            if counted_window == window and count > 0:
                self._counts[key] = (window, count - 1)
