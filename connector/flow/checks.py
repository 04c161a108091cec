"""[pure] The checks completion tracking holds (SPEC §13, and §2 invariant 10: a bound and a failure
mode): at most ``limit`` of them (the tracker checks no new call while that many are held), found by
RequestID, ordered per account by when their next poll is due, and all together by when they are
given up.

A check is given up ``give_up_s`` after its call was accepted. One a backlog kept from every poll
until then gets ``grace_s`` more for one poll, then is given up all the same: polls held back never
keep a check (or its memory) for good. The heaps drop the entries of finished checks lazily, and are
rebuilt when those outnumber the live ones, so they too stay within a multiple of ``limit``.

Checks of calls accepted before an assignment are read back as :class:`Unfinished` records and
made checks again by :func:`restored`."""

from __future__ import annotations

import heapq
import zlib
from collections import defaultdict
from typing import TYPE_CHECKING

from connector.flow.follow_ups import Check
from connector.records import Accepted

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Iterable

    from connector.flow.offsets import TopicPartitionKey
    from connector.records import Unfinished
    from connector.transform.route import Route

__all__ = ["Checks", "restored", "sampled"]

#: (when, RequestID): an entry of a heap, stale once it no longer matches its check
_Entry = tuple[float, str]
_SLACK = 1024  # stale entries allowed besides a few per live check before the heaps are rebuilt


def sampled(request_id: str, fraction: float) -> bool:
    """Whether calls of ``request_id`` are checked when ``fraction`` of them are
    (``status.sample``): the same answer after a restart."""
    return fraction >= 1 or zlib.crc32(request_id.encode()) < fraction * 2**32


def restored(
    items: Iterable[Unfinished], route_of: Callable[[Unfinished], Route | None], wall: float
) -> list[Check]:
    """The checks of ``items`` read back at ``wall``: one per RequestID, with all its records
    (``route_of`` gives the route of a RequestID's first item; ``None``: it is not checked)."""
    found: dict[str, Check] = {}
    for item in items:
        check = found.get(item.request_id)
        if check is None:
            if (route := route_of(item)) is None:
                continue
            accepted = Accepted(
                route.operation,
                route.name,
                route.account,
                item.request_id,
                None,
                submitted_at_ms=int(item.accepted_at * 1000),
                attempts=item.attempts,
                http_status=200,
            )
            check = found[item.request_id] = Check(
                item.request_id, route, [], accepted, item.accepted_at, wall
            )
        check.records.append(item.record)
    return list(found.values())


class Checks:
    """The checks held, their next polls and their give-up times."""

    def __init__(self, limit: int, give_up_s: float, grace_s: float) -> None:
        self.limit = limit
        self._give_up_s, self._grace_s = give_up_s, grace_s
        self._by_id: dict[str, Check] = {}
        self._due: defaultdict[str, list[_Entry]] = defaultdict(list)  # per account
        self._ends: list[_Entry] = []
        self._entries = 0  # in all heaps

    def __len__(self) -> int:
        return len(self._by_id)

    @property
    def full(self) -> bool:
        """Whether ``limit`` checks are held."""
        return len(self._by_id) >= self.limit

    def get(self, request_id: str) -> Check | None:
        return self._by_id.get(request_id)

    def add(self, check: Check, due: float) -> None:
        """Hold ``check`` (its first poll at ``due``) until it is finished or given up."""
        self._by_id[check.request_id] = check
        check.ends = check.since + self._give_up_s
        self._push(self._ends, check.ends, check.request_id)
        self.schedule(check, due)

    def remove(self, request_id: str) -> Check:
        check = self._by_id.pop(request_id)
        if self._entries > 4 * len(self._by_id) + _SLACK:
            self._rebuild()
        return check

    def of(self, tps: Collection[TopicPartitionKey]) -> list[Check]:
        """The checks of calls of ``tps``."""
        return [check for check in self._by_id.values() if check.tp in tps]

    def schedule(self, check: Check, due: float) -> None:
        """Poll ``check`` next at ``due``."""
        check.due = due
        self._push(self._due[check.route.account], due, check.request_id)

    def expired(self, wall: float) -> list[tuple[Check, str]]:
        """The checks to give up at ``wall``: past ``give_up_s``, and polled at least once or past
        the grace too (one with a poll out is left to its answer); with why, for one never
        polled."""
        waited = self._give_up_s + self._grace_s
        unpolled = (
            f"not polled within {waited:g} s: status polls were held back (backlog or budget)"
        )
        out = []
        while self._ends and self._ends[0][0] <= wall:
            when, request_id = self._pop(self._ends)
            check = self._by_id.get(request_id)
            if check is None or when != check.ends or check.out:
                continue
            if not check.polls and when < check.since + waited:
                check.ends = check.since + waited
                self._push(self._ends, check.ends, request_id)
                continue
            out.append((check, "" if check.polls else unpolled))
        return out

    def accounts(self) -> list[str]:
        """The accounts with checks to poll."""
        return [account for account, heap in self._due.items() if heap]

    def due(self, account: str, wall: float) -> Check | None:
        """The check of ``account`` whose poll is due first, if one is due at ``wall``; it stays
        due until :meth:`take` takes it."""
        heap = self._due[account]
        while heap and heap[0][0] <= wall:
            when, request_id = heap[0]
            check = self._by_id.get(request_id)
            if check is not None and not check.out and when == check.due:
                return check
            self._pop(heap)  # finished, or polled again later
        return None

    def take(self, account: str) -> None:
        """The check :meth:`due` returned is being polled."""
        self._pop(self._due[account])

    def _push(self, heap: list[_Entry], when: float, request_id: str) -> None:
        heapq.heappush(heap, (when, request_id))
        self._entries += 1

    def _pop(self, heap: list[_Entry]) -> _Entry:
        self._entries -= 1
        return heapq.heappop(heap)

    def _rebuild(self) -> None:
        """Heaps with only the entries of checks held."""
        self._due.clear()
        self._ends, self._entries = [], 0
        for check in self._by_id.values():
            self._push(self._ends, check.ends, check.request_id)
            if not check.out:
                self._push(self._due[check.route.account], check.due, check.request_id)
