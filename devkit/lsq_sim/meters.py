"""[pure] Counters over injected time, O(1) amortised per event: the most calls seen in any
window (how tests check that a client never exceeds its budget) and a 10-minute rate."""

from __future__ import annotations

from collections import deque

__all__ = ["RateMeter", "WindowCounter"]


class WindowCounter:
    """Tracks ``peak``: the maximum number of events inside any closed window of ``window_s``.

    The busiest window can always be slid to end at an event, so it is enough to count, at each
    event, the events of the window ending there."""

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self.peak = 0
        self._times: deque[float] = deque()

    def add(self, now: float) -> None:
        """Record one event at ``now`` (non-decreasing)."""
        times = self._times
        while times and times[0] < now - self.window_s:
            times.popleft()
        times.append(now)
        self.peak = max(self.peak, len(times))


class RateMeter:
    """Events per minute, averaged over the previous ``minutes`` (one-second buckets)."""

    def __init__(self, minutes: int = 10) -> None:
        self._seconds = minutes * 60
        self._counts = [0] * self._seconds
        self._stamps = [-1] * self._seconds

    def add(self, now: float) -> None:
        """Record one event at ``now``."""
        second = int(now)
        slot = second % self._seconds
        if self._stamps[slot] != second:
            self._stamps[slot], self._counts[slot] = second, 0
        self._counts[slot] += 1

    def per_minute(self, now: float) -> float:
        """Average events per minute over the previous window."""
        oldest = int(now) - self._seconds
        total = sum(c for c, s in zip(self._counts, self._stamps, strict=True) if s > oldest)
        return total * 60 / self._seconds
