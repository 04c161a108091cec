"""[pure] The per-account rate limit over injected time: a strict sliding window (default), fixed
(aligned) windows, or a token bucket; and the daily quota, a sliding window over a day.
``admit(now)`` answers at once and never sleeps; a rejected call consumes no budget. Windows are
closed: calls at ``t`` and ``t + W`` share a window."""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from lsq_sim.config import RateLimit

__all__ = [
    "FixedWindow",
    "Limiter",
    "RollingQuota",
    "SlidingWindow",
    "TokenBucket",
    "Unlimited",
    "make_limiter",
]


class Limiter(Protocol):
    """Admits or rejects one call at time ``now`` (seconds, monotonic)."""

    def admit(self, now: float) -> bool:
        """True when the call is within budget (and counts against it)."""
        ...


class SlidingWindow:
    """At most ``calls`` admitted calls in any closed window of ``window_s`` seconds."""

    def __init__(self, calls: int, window_s: float) -> None:
        self._calls, self._window = calls, window_s
        self._admitted: deque[float] = deque()

    def admit(self, now: float) -> bool:
        admitted = self._admitted
        while admitted and admitted[0] < now - self._window:
            admitted.popleft()
        if len(admitted) >= self._calls:
            return False
        admitted.append(now)
        return True


class RollingQuota(SlidingWindow):
    """A daily quota: at most ``calls`` admitted calls in any closed window of ``day_s`` seconds.
    Holds one float per call admitted in the last ``day_s`` seconds. ``peak`` is the most calls
    admitted in any such window so far: the busiest window can always be slid to end at an
    admitted call, so it is the most calls the window held just after an admission."""

    def __init__(self, calls: int, day_s: float) -> None:
        super().__init__(calls, day_s)
        self.peak = 0

    def admit(self, now: float) -> bool:
        if not super().admit(now):
            return False
        self.peak = max(self.peak, len(self._admitted))
        return True


class FixedWindow:
    """At most ``calls`` per window ``[k·W, (k+1)·W)`` of the clock."""

    def __init__(self, calls: int, window_s: float) -> None:
        self._calls, self._window = calls, window_s
        self._current, self._count = -1, 0

    def admit(self, now: float) -> bool:
        window = int(now // self._window)
        if window != self._current:
            self._current, self._count = window, 0
        if self._count >= self._calls:
            return False
        self._count += 1
        return True


class TokenBucket:
    """Capacity ``calls``, refilled at ``calls / window_s`` tokens per second, starting full."""

    def __init__(self, calls: int, window_s: float) -> None:
        self._capacity, self._rate = float(calls), calls / window_s
        self._tokens = self._capacity
        self._last: float | None = None

    def admit(self, now: float) -> bool:
        if self._last is not None:
            self._tokens = min(self._capacity, self._tokens + (now - self._last) * self._rate)
        self._last = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True


class Unlimited:
    """No limit (``--rate-limit off``)."""

    def admit(self, now: float) -> bool:  # noqa: ARG002 - the protocol's signature
        return True


def make_limiter(limit: RateLimit) -> Limiter:
    """The limiter ``limit`` describes."""
    if not limit.enabled:
        return Unlimited()
    kinds: dict[str, type[SlidingWindow | FixedWindow | TokenBucket]] = {
        "sliding": SlidingWindow,
        "fixed": FixedWindow,
        "bucket": TokenBucket,
    }
    return kinds[limit.mode](limit.calls, limit.window_s)
