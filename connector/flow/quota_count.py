"""[pure] How long a call counts against a daily quota (:mod:`connector.flow.quota`): one
partition's calls per time slice and when each slice stops counting (a day after its end, or the
next midnight of a named time zone), and where a calendar day began (a local day may last 23 or 25
hours)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from collections.abc import Callable

    from connector.flow.offsets import TopicPartitionKey

__all__ = ["Report", "SliceCount", "Spent", "Unread", "day_start", "midnights"]

#: A count read back or to write: (partition, slice number, calls spent in it so far)
Spent = tuple["TopicPartitionKey", int, int]
#: The broker's word on a count written: (account, partition, slice number, error or ``None``)
Report = tuple[str, "TopicPartitionKey", int, str | None]


@dataclass(frozen=True, slots=True)
class Unread:
    """The quota topic could not be read back (wholly): why."""

    why: str


#: Longer than any calendar day, so that a midnight this long before a time is before its day.
_LONGEST_DAY_S = 2 * 86_400.0


def midnights(zone: str) -> Callable[[float], float]:
    """The first midnight at or after a wall-clock time, in the time zone named ``zone``."""
    tz = ZoneInfo(zone)

    def midnight(wall: float) -> float:
        moment = datetime.fromtimestamp(wall, tz)
        start = datetime.combine(moment.date(), time.min, tz)
        if start.timestamp() >= wall:
            return start.timestamp()
        return datetime.combine(moment.date() + timedelta(days=1), time.min, tz).timestamp()

    return midnight


def day_start(reset: Callable[[float], float], wall: float) -> float:
    """The last midnight at or before ``wall``, given ``reset`` (the first midnight at or after a
    time, as :func:`midnights` gives): where the calendar day of ``wall`` began."""
    start = reset(wall - _LONGEST_DAY_S)
    while (following := reset(start + 1.0)) <= wall:
        start = following
    return start


@dataclass(slots=True)
class SliceCount:
    """One partition's calls per slice, their total, and when the oldest slice stops counting
    (so the total is recounted once a slice, not on every question)."""

    slices: dict[int, int] = field(default_factory=dict)
    total: int = 0
    expires: float = math.inf

    def set(self, number: int, calls: int, end: float) -> None:
        """Slice ``number`` (counting until ``end``) now holds ``calls``; never fewer than it
        already held."""
        held = self.slices.get(number, 0)
        if calls > held:
            self.slices[number], self.total = calls, self.total + calls - held
            self.expires = min(self.expires, end)

    def expire(self, wall: float, end: Callable[[int], float]) -> None:
        """Drop the slices a day has passed since the end of."""
        if wall < self.expires:
            return
        for number in [n for n in self.slices if end(n) <= wall]:
            self.total -= self.slices.pop(number)
        self.expires = min((end(n) for n in self.slices), default=math.inf)
