"""The per-account rate gate (SPEC §7): never more than N calls in any W seconds, whatever
algorithm LeadSquared uses (sliding window, fixed window or bucket), for one replica or a fleet.

**The sliding-window log.** A call occupies one of this replica's ``calls`` slots from the moment it
is sent until W seconds (plus a small safety margin) after its answer arrived; a new call may start
only while fewer are occupied. Why that holds LeadSquared's window: a call reaches LeadSquared
somewhere between being sent and its answer arriving. Take any ``calls``+1 calls and the one among
them sent last, at time s. When it was sent, at most ``calls``-1 of the others occupied a slot, so
one of them had its answer at or before s - W - margin, and therefore reached LeadSquared more than
W before the last one did. So no W-second window ever holds more than ``calls`` of them. Compared
with a token bucket of capacity C refilled at r/s, which lets C + r·W calls into one window and so
must be sized well under N, the log lets a steady backlog use N calls per W minus only the round
trip and the margin.

**Turns.** The replicas of a fleet split the N calls (seats) among themselves by the partitions
they own (:mod:`connector.flow.fleet`); a seat whose partitions belong to several replicas is
used in turns: wall-clock time is cut into turns of W + margin + :data:`TURN_SEND_S` +
:data:`TURN_GUARD_S` seconds, each turn of a seat belongs to one of its partitions, and the owner
of that partition may start one call on the seat in the first :data:`TURN_SEND_S` of the turn.
Calls of consecutive turns then reach LeadSquared more than W apart, provided LeadSquared counts a
call within :data:`TURN_GUARD_S` of its sending (and the replicas' clocks agree to well within
that), so each seat carries at most one call in any window, without the replicas talking.

**Pacing** (``pace=True``). The log alone lets a backlog send its whole budget at once. Paced, the
log's calls also draw on a bucket of :func:`_burst` calls refilled at ``calls`` per window: a
backlog still gets the whole budget (the log binds, not the bucket), but its calls are spread
over the window, so when the account's real limit is lower than the budget (another plan, keys
shared with other integrations) about one call is out when the limit is crossed, and one throttle
answer, not a burst of them, tells the budget to learn it (:mod:`connector.flow.limits`).

The gate never sleeps: it answers "wait this long", on an injected monotonic clock; turns are
placed on the wall clock through ``wall_offset`` (wall time minus monotonic time).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from connector.flow.schedule import FULL, Schedule

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["LOG", "TURN_GUARD_S", "TURN_SEND_S", "RateGate", "Share"]

#: How long into its turn a call may start.
TURN_SEND_S = 0.5
#: How long after its sending a call is assumed to have been counted by LeadSquared.
TURN_GUARD_S = 1.0
#: The slot of a call that holds a place in the sliding-window log (not a turn).
LOG = -1
_EPSILON = 1e-9  # a pacing bucket this close to a whole call has it (float sums fall short)


def _burst(calls: int) -> int:
    """Calls a paced gate of ``calls`` per window may send at once: a fifth of them, at least 1."""
    return max(1, calls // 5)


@dataclass(frozen=True, slots=True)
class Share:
    """This replica's part of an account's budget: ``calls`` in any window of its own, plus turns
    on seats shared with other replicas (seat → (partitions on the seat, the positions among them
    that are this replica's)), of which a learned budget closes some (``schedule``)."""

    calls: int = 0
    turns: Mapping[int, tuple[int, frozenset[int]]] = field(default_factory=dict)
    schedule: Schedule = FULL

    def __and__(self, other: Share) -> Share:
        """What both shares allow (no turns when they close different ones)."""
        turns = {}
        for seat, (members, mine) in self.turns.items():
            theirs = other.turns.get(seat)
            if theirs is not None and theirs[0] == members and mine & theirs[1]:
                turns[seat] = (members, mine & theirs[1])
        if self.schedule != other.schedule:
            turns = {}
        return Share(min(self.calls, other.calls), turns, self.schedule)

    def per_window(self, window: float, turn: float) -> float:
        """Calls per window on average: the log's, plus the turns' (one call an open turn)."""
        turns = sum(len(mine) / members for members, mine in self.turns.values())
        return self.calls + turns * self.schedule.density * window / turn

    def alike(self, other: Share) -> bool:
        """Whether ``other`` differs only in the log's calls (which count every call in the
        window) or only in which turns are open (at most one call a seat and turn): then one
        may follow the other at once."""
        same_turns = (self.turns, self.schedule) == (other.turns, other.schedule)
        return same_turns or (self.calls == other.calls == 0 and self.turns == other.turns)

    def takes(self, seat: int, turn: int) -> bool:
        """Whether ``turn`` of ``seat`` is this replica's and open."""
        members, mine = self.turns[seat]
        return turn % members in mine and self.schedule.opens(seat, turn)


class RateGate:
    """N calls in any W seconds for one LeadSquared account, shared by all its routes."""

    def __init__(
        self,
        calls: int,
        window: float,
        margin: float = 0.05,
        wall_offset: float = 0.0,
        *,
        pace: bool = False,
    ) -> None:
        if calls < 0 or window <= 0 or margin < 0:
            raise ValueError(f"invalid rate limit {calls} calls per {window} s (margin {margin})")
        self._share = Share(calls)
        self._span, self._margin = window + margin, margin
        self.turn = self._span + TURN_SEND_S + TURN_GUARD_S  # seconds per turn
        self._offset = wall_offset
        self._pending: tuple[Share, float] | None = None  # (share, from when)
        self._in_flight = 0  # calls holding a slot of the log
        self._turn_calls = 0  # calls sent in turns, not answered yet
        self._answered: deque[float] = deque()  # answer times of log calls, oldest first
        self._used: dict[int, int] = {}  # seat → the last turn a call was sent in
        self._ahead: tuple[int, Share, int | None] | None = None  # turn, share → turns to ours
        self._cool_until = -math.inf
        self._pace = pace
        self._tokens, self._filled_at = 0.0, -math.inf  # the pacing bucket (full at first)

    @property
    def share(self) -> Share:
        """The current budget."""
        return self._share

    @property
    def calls(self) -> int:
        """Calls allowed per window by the log."""
        return self._share.calls

    @property
    def window(self) -> float:
        """The window (without the margin)."""
        return self._span - self._margin

    @property
    def in_flight(self) -> int:
        """Calls sent and not yet answered."""
        return self._in_flight + self._turn_calls

    def resize(
        self, share: Share, now: float, wall_offset: float | None = None, *, moved: bool = True
    ) -> None:
        """Change the budget (this replica's share of the account). Less takes effect at once;
        more, when partitions ``moved``, only a turn from now: until then another replica (or
        this process before a restart) may still have calls in the window. A budget learned or
        recovered on the same partitions takes effect at once when it keeps the kind of share
        (the log's calls, which count every call of the window, or turns, at most one a seat and
        turn); one that changes the kind waits a turn for the other kind's calls to age out. It
        keeps the time of a larger share already waiting (recovering step by step, a budget is
        never held back longer than one turn)."""
        if share.calls < 0:
            raise ValueError(f"budget must be >= 0, got {share.calls}")
        if wall_offset is not None:
            self._offset = wall_offset
        if not moved and self._pending is None and self._share.alike(share):
            self._share = share
            return
        since = now + self.turn if moved or self._pending is None else self._pending[1]
        self._share = self._share & share
        self._pending = None if share == self._share else (share, since)

    def free(self, now: float) -> int:
        """Calls that may start at ``now`` (the "tokens" available)."""
        self._apply_pending(now)
        self._expire(now)
        log = max(0, self._share.calls - self._in_flight - len(self._answered))
        if self._pace:
            log = min(log, math.floor(self._fill(now) + _EPSILON))
        return log + len(self._open_turns(now))

    def wait(self, now: float) -> float:
        """Seconds until a call may start: 0 means now, ``inf`` means not until an answer."""
        if now < self._cool_until:
            return self._cool_until - now
        if self.free(now) > 0:
            return 0.0
        # Slots free up as answers age out; the one we need is the (occupied - calls)-th oldest.
        excess = self._in_flight + len(self._answered) - self._share.calls
        if excess < 0:  # a slot is free: the bucket is empty (paced)
            wait = (1.0 - self._tokens) * self.window / self._share.calls
        elif excess >= len(self._answered):
            wait = math.inf
        else:
            wait = self._answered[excess] + self._span - now
            if self._pace and self._share.calls > 0:
                wait = max(wait, (1.0 - self._tokens) * self.window / self._share.calls)
        wait = min(wait, self._next_turn(now))
        if self._pending is not None:  # a larger budget is coming
            wait = min(wait, max(self._pending[1] - now, 0.0))
        return wait

    def acquire(self, now: float) -> int:
        """Record a call sent at ``now``; only valid when ``wait(now) == 0``. Returns the slot it
        took (:data:`LOG`, or the seat of a turn), to give back to :meth:`release`."""
        if self.wait(now) > 0:
            raise RuntimeError("rate gate closed: call wait() first")
        if self._share.calls - self._in_flight - len(self._answered) > 0 and (
            not self._pace or self._tokens + _EPSILON >= 1.0
        ):
            self._in_flight += 1
            if self._pace:
                self._tokens -= 1.0
            return LOG
        seat = self._open_turns(now)[0]
        self._used[seat] = self._turn_of(now)[0]
        self._turn_calls += 1
        return seat

    def release(self, now: float, slot: int = LOG) -> None:
        """Record that the answer (or failure) of a call in ``slot`` was observed at ``now``."""
        if slot != LOG:
            if self._turn_calls == 0:
                raise RuntimeError("release() without a matching acquire()")
            self._turn_calls -= 1
            return
        if self._in_flight == 0:
            raise RuntimeError("release() without a matching acquire()")
        self._in_flight -= 1
        self._answered.append(now)

    def cool_down(self, now: float, seconds: float) -> None:
        """Send nothing for ``seconds`` (LeadSquared said we were throttled)."""
        self._cool_until = max(self._cool_until, now + seconds)

    def _turn_of(self, now: float) -> tuple[int, float]:
        """The turn at ``now`` and how far into it ``now`` is (in [0, turn length))."""
        wall = now + self._offset
        turn = math.floor(wall / self.turn)
        into = wall - turn * self.turn
        if into >= self.turn:  # the division rounded down across a boundary
            turn, into = turn + 1, 0.0
        return turn, max(0.0, into)

    def _open_turns(self, now: float) -> list[int]:
        """Seats whose current turn is ours, still open for sending, and not used yet."""
        turn, into = self._turn_of(now)
        if into >= TURN_SEND_S:
            return []
        share = self._share
        return [
            seat for seat in share.turns if share.takes(seat, turn) and self._used.get(seat) != turn
        ]

    def _next_turn(self, now: float) -> float:
        """Seconds until the next turn of ours on any seat opens (``inf`` without turns)."""
        turn, into = self._turn_of(now)
        share = self._share
        if self._ahead is None or self._ahead[:2] != (turn, share):
            horizon = max((members for members, _ in share.turns.values()), default=0)
            ahead = (
                d
                for d in range(1, horizon * share.schedule.horizon + 1)
                if any(share.takes(seat, turn + d) for seat in share.turns)
            )
            self._ahead = (turn, share, next(ahead, None))
        found = self._ahead[2]
        return math.inf if found is None else found * self.turn - into

    def _fill(self, now: float) -> float:
        """The pacing bucket's calls at ``now``: at most :func:`_burst`, refilled at the share's
        calls per window."""
        calls, most = self._share.calls, float(_burst(self._share.calls))
        if self._filled_at == -math.inf:
            self._tokens = most
        elif now > self._filled_at:
            self._tokens = min(most, self._tokens + (now - self._filled_at) * calls / self.window)
        self._filled_at = max(self._filled_at, now)
        return self._tokens

    def _apply_pending(self, now: float) -> None:
        if self._pending is not None and now >= self._pending[1]:
            self._share, self._pending = self._pending[0], None

    def _expire(self, now: float) -> None:
        # the same sum as in wait(), so that both agree to the last bit
        while self._answered and self._answered[0] + self._span <= now:
            self._answered.popleft()
