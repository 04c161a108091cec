"""[pure] An account's daily quota (SPEC §7): never more than ``calls`` (the quota less the reserve
left to the account's other integrations) in any rolling day, for the whole fleet, across restarts.

**Counting.** The day is cut into :data:`SLICES` time slices (5 minutes of a 24-hour day); each
call counts in the slice it was sent in, and a slice counts until a day after its *end*, so a call
is never forgotten before a day has passed since it was sent (at most a slice longer: the price of
a bounded count). The counts are kept per source partition, in Kafka (``output.quota_topic``, one
record per partition and slice holding its count so far), and read back when partitions are
assigned: those written since :meth:`Quota.since` (a day and a slice ago, or the start of the
calendar day).

**The fleet.** Each partition of the account's topics may spend ``calls / partitions`` a day, so
all partitions together never spend more than ``calls``, whichever replica owns them and however
often they move. A replica pools the allowances of the partitions it owns: a call is charged to its
records' partition when that one has room, else to the owned partition with the most room. A
partition's count moves with it (its new owner reads it back), so pooling never lets the fleet
spend more.

**A calendar day** (``reset``, optional): LeadSquared does not say when its day starts; the rolling
day is the strictest reading (it keeps every calendar day within the quota too). With the day
reset at midnight in a named time zone (:func:`midnights`), a slice counts until the first midnight
at or after its end instead, so up to the whole quota may go again after midnight.

**Pacing.** ``even`` (the default) also spreads the spending over the day: the calls draw on a
bucket of an hour's allowance refilled at the daily allowance per day, so a backlog cannot spend
the whole day's quota in its first hours and live changes late in the day still find calls.
``greedy`` spends as fast as the rate limit allows, up to the quota.

**Fails closed** (SPEC §2.10). A count that cannot be read back or written makes the quota
:attr:`~Quota.unknown`: it lets no call go until the quota topic works again (see
:class:`~connector.flow.quotas.Quotas`); it never starts again from zero.

Times are wall-clock seconds (the counts outlive the process); the loop's monotonic clock is
placed on it through ``offset`` (wall minus monotonic, set on every rebalance).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Literal

from connector.flow.quota_count import Report, SliceCount, Spent, Unread, day_start, midnights

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Iterable

    from connector.flow.offsets import TopicPartitionKey

__all__ = ["SLICES", "Quota", "Report", "Spent", "Unread", "midnights"]

#: Time slices of a day: a call counts until a day after the end of its slice.
SLICES = 288
#: The even pacing's bucket holds this part of a day's allowance.
_BURST = 1 / 24
_EPSILON = 1e-9  # a bucket this close to a whole call has it (float sums fall short)


class Quota:
    """One account's quota, as this replica sees and spends it."""

    def __init__(
        self,
        calls: int,
        day: float,
        pacing: Literal["even", "greedy"] = "even",
        reset: Callable[[float], float] | None = None,
    ) -> None:
        if calls < 1 or day <= 0:
            raise ValueError(f"invalid quota: {calls} calls per {day} s")
        self.calls, self.day, self.pacing, self._reset = calls, day, pacing, reset
        self.slice = day / SLICES
        self.offset = 0.0  # wall-clock time minus the loop's monotonic time
        self._spent: dict[TopicPartitionKey, SliceCount] = {}
        self._owned: tuple[TopicPartitionKey, ...] = ()
        self._each = 0.0  # calls a day per partition
        self._dirty: set[tuple[TopicPartitionKey, int]] = set()
        self._tokens, self._filled_at = 0.0, -math.inf
        #: why the calls spent are not known (:class:`Quotas` says): no call may go while set
        self.unknown: str | None = None
        self._unsaved: set[tuple[TopicPartitionKey, int]] = set()  # counts the topic lacks

    @property
    def allowance(self) -> float:
        """Calls a day this replica may spend: its partitions' part of the quota."""
        return self._each * len(self._owned)

    def apportion(self, owned: Collection[TopicPartitionKey], total: int, offset: float) -> None:
        """This replica owns ``owned`` of the account's ``total`` partitions."""
        self._owned, self.offset = tuple(sorted(owned)), offset
        self._each = self.calls / total if total else 0.0

    def load(self, counts: Iterable[Spent]) -> None:
        """Counts read back from the quota topic (the highest per partition and slice wins)."""
        for tp, number, calls in counts:
            self._count(tp).set(number, calls, self._end(number))

    def forget(self, tps: Iterable[TopicPartitionKey]) -> None:
        """Partitions no longer owned: their counts go with them (the new owner reads them)."""
        for tp in tps:
            self._spent.pop(tp, None)
        self._dirty = {entry for entry in self._dirty if entry[0] in self._spent}
        self._unsaved = {entry for entry in self._unsaved if entry[0] in self._spent}

    def since(self, wall: float) -> float:
        """The earliest count written that may still count at ``wall``: a day and a slice
        before it, or a slice before its calendar day began (a 25-hour day began earlier)."""
        rolling = wall - self.day - self.slice
        if self._reset is None:
            return rolling
        return min(rolling, day_start(self._reset, wall) - self.slice)

    @property
    def unsaved(self) -> bool:
        """Whether a count the quota topic did not take is still to be written."""
        return bool(self._unsaved)

    def undelivered(self, tp: TopicPartitionKey) -> None:
        """A count of ``tp`` did not reach the quota topic: every count of the quota is to be
        written again (by :meth:`rewrite`; a topic created anew then holds them all)."""
        if tp in self._spent:
            self._unsaved |= {(p, n) for p, count in self._spent.items() for n in count.slices}

    def delivered(self, tp: TopicPartitionKey, number: int) -> None:
        """The count of ``tp`` in slice ``number`` reached the quota topic."""
        self._unsaved.discard((tp, number))

    def rewrite(self) -> None:
        """Write the counts the quota topic lacks again with the next :meth:`changed`."""
        self._unsaved = {(tp, n) for tp, n in self._unsaved if n in self._spent[tp].slices}
        self._dirty |= self._unsaved

    def left(self, now: float) -> int:
        """Calls this replica may still spend now in its rolling day (pacing aside; none while
        :attr:`unknown`)."""
        if self.unknown is not None:
            return 0
        wall = now + self.offset
        return sum(max(0, math.floor(self._room(tp, wall))) for tp in self._owned)

    def wait(self, now: float) -> float:
        """Seconds until a call may be charged (0: now; ``inf``: no partition of the account
        is owned, or the calls spent are :attr:`unknown`)."""
        if self.unknown is not None:
            return math.inf
        wall = now + self.offset
        rooms = [(self._room(tp, wall), tp) for tp in self._owned]
        if not rooms:
            return math.inf
        if max(room for room, _ in rooms) < 1:  # until the oldest counted slice of one expires
            return min(self._next_expiry(tp) for _, tp in rooms) - wall
        if self.pacing == "even" and (tokens := self._fill(wall)) < 1 - _EPSILON:
            return (1 - tokens) * self.day / self.allowance
        return 0.0

    def exhausted_until(self, now: float) -> float | None:
        """Wall-clock time when a call may be charged again, while none may be now."""
        wait = self.wait(now)
        return None if wait == 0 or math.isinf(wait) else now + self.offset + wait

    def charge(self, tp: TopicPartitionKey | None, now: float) -> None:
        """Count a call sent at ``now`` for records of ``tp`` (only after :meth:`wait` is 0)."""
        wall = now + self.offset
        if tp not in self._owned or self._room(tp, wall) < 1:
            tp = max(self._owned, key=lambda owned: self._room(owned, wall))
        number = math.floor(wall / self.slice)
        count = self._count(tp)
        count.set(number, count.slices.get(number, 0) + 1, self._end(number))
        self._dirty.add((tp, number))
        if self.pacing == "even":
            self._fill(wall)
            self._tokens -= 1

    def changed(self) -> list[Spent]:
        """The counts changed since the last call, to write to the quota topic."""
        spent = self._spent
        out = [
            (tp, n, spent[tp].slices[n]) for tp, n in sorted(self._dirty) if n in spent[tp].slices
        ]
        self._dirty.clear()
        return out

    def _count(self, tp: TopicPartitionKey) -> SliceCount:
        return self._spent.setdefault(tp, SliceCount())

    def _end(self, number: int) -> float:
        """When slice ``number`` stops counting: a day after its end, or the day's reset."""
        end = (number + 1) * self.slice
        return end + self.day if self._reset is None else self._reset(end)

    def _room(self, tp: TopicPartitionKey, wall: float) -> float:
        count = self._spent.get(tp)
        if count is None:
            return self._each
        count.expire(wall, self._end)
        return self._each - count.total

    def _next_expiry(self, tp: TopicPartitionKey) -> float:
        """When ``tp`` gets room again (``inf``: never, its part of the quota is under a call)."""
        count = self._spent.get(tp)
        return math.inf if count is None else count.expires

    def _fill(self, wall: float) -> float:
        most = max(1.0, self.allowance * _BURST)
        if self._filled_at == -math.inf:
            self._tokens = most
        elif wall > self._filled_at:
            refill = (wall - self._filled_at) * self.allowance / self.day
            self._tokens = min(most, self._tokens + refill)
        self._filled_at = max(self._filled_at, wall)
        return self._tokens
