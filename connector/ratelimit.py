"""The per-account rate gate (SPEC §7): never more than N calls in any W seconds, whatever
algorithm LeadSquared uses (sliding window, fixed window or bucket).

An exact sliding-window log over an injected clock. A call occupies one of the N slots from the
moment it is sent until W seconds (plus a small safety margin) after its answer arrived; a new
call may start only while fewer than N slots are occupied. Why that holds LeadSquared's window:
a call reaches LeadSquared somewhere between being sent and its answer arriving. Take any N+1
calls and the one among them sent last, at time s. When it was sent, at most N-1 of the other N
occupied a slot, so one of them had its answer at or before s - W - margin, and therefore reached
LeadSquared more than W before the last one did. So no W-second window ever holds N+1 arrivals.

Compared with a token bucket of capacity C refilled at r/s, which lets C + r·W calls into one
window and so must be sized well under N, the log lets a steady backlog use N calls per W minus
only the round-trip time and the margin. The gate never sleeps: it answers "wait this long".
"""

from __future__ import annotations

import math
from collections import deque

__all__ = ["RateGate", "fleet_share"]


def fleet_share(calls: int, window: float, assigned: int, total: int) -> tuple[int, float]:
    """This replica's part of an account's budget of ``calls`` per ``window``: in proportion to
    the partitions it owns (``assigned`` of ``total``), rounded down so that the replicas of a
    group never exceed the budget together. Less than one call per window becomes one call per
    a longer window."""
    if assigned <= 0 or total <= 0:
        return 0, window
    share = calls * min(assigned, total) / total
    if share >= 1:
        return math.floor(share), window
    return 1, window / share


class RateGate:
    """N calls in any W seconds for one LeadSquared account, shared by all its routes."""

    def __init__(self, calls: int, window: float, margin: float = 0.05) -> None:
        if calls < 0 or window <= 0 or margin < 0:
            raise ValueError(f"invalid rate limit {calls} calls per {window} s (margin {margin})")
        self._calls, self._span, self._margin = calls, window + margin, margin
        self._pending: tuple[int, float, float] | None = None  # (calls, span, from when)
        self._in_flight = 0
        self._answered: deque[float] = deque()  # answer times, oldest first
        self._cool_until = 0.0

    @property
    def calls(self) -> int:
        """The current budget: calls allowed per window."""
        return self._calls

    @property
    def window(self) -> float:
        """The current window (without the margin)."""
        return self._span - self._margin

    @property
    def in_flight(self) -> int:
        """Calls sent and not yet answered."""
        return self._in_flight

    def resize(self, calls: int, now: float, window: float | None = None) -> None:
        """Change the budget (this replica's share of the account). Less takes effect at once;
        more only a full window from now: until then another replica (or this process before a
        restart) may still have calls in the window."""
        if calls < 0:
            raise ValueError(f"budget must be >= 0, got {calls}")
        span = self._span if window is None else window + self._margin
        if calls <= self._calls and span >= self._span:  # no more calls, no shorter window
            self._calls, self._span, self._pending = calls, span, None
        else:
            self._pending = (calls, span, now + max(span, self._span))

    def free(self, now: float) -> int:
        """Slots free at ``now`` (the "tokens" available)."""
        if self._pending is not None and now >= self._pending[2]:
            self._calls, self._span, _ = self._pending
            self._pending = None
        self._expire(now)
        return max(0, self._calls - self._in_flight - len(self._answered))

    def wait(self, now: float) -> float:
        """Seconds until a call may start: 0 means now, ``inf`` means not until an answer."""
        if now < self._cool_until:
            return self._cool_until - now
        if self.free(now) > 0:
            return 0.0
        # Slots free up as answers age out; the one we need is the (occupied - calls)-th oldest.
        excess = self._in_flight + len(self._answered) - self._calls
        wait = (
            math.inf if excess >= len(self._answered) else self._answered[excess] + self._span - now
        )
        if self._pending is not None and self._pending[0] > 0:  # a larger budget is coming
            wait = min(wait, max(self._pending[2] - now, 0.0))
        return wait

    def acquire(self, now: float) -> None:
        """Record a call sent at ``now``; only valid when ``wait(now) == 0``."""
        if self.wait(now) > 0:
            raise RuntimeError("rate gate closed: call wait() first")
        self._in_flight += 1

    def release(self, now: float) -> None:
        """Record that a call's answer (or its failure) was observed at ``now``."""
        if self._in_flight == 0:
            raise RuntimeError("release() without a matching acquire()")
        self._in_flight -= 1
        self._answered.append(now)

    def cool_down(self, now: float, seconds: float) -> None:
        """Send nothing for ``seconds`` (LeadSquared said we were throttled)."""
        self._cool_until = max(self._cool_until, now + seconds)

    def _expire(self, now: float) -> None:
        horizon = now - self._span
        while self._answered and self._answered[0] <= horizon:
            self._answered.popleft()
