"""[pure] Per-key order (SPEC §2.4): records of one Kafka key (a lane) are called in offset order,
each only after the one before has its outcome; other keys proceed in parallel. Jobs waiting for a
retry sit on a timer. A record needing no call (skipped, or dead-lettered before any call) while
earlier ones of its key are unsettled joins the lane as a job with a ready-made :attr:`Job.outcome`:
it is :meth:`Lanes.due` once it heads its lane, so a key's outcomes come in offset order.

Priorities (SPEC §7): each account has two ready queues, oldest first: live changes and snapshot
reads (:attr:`~connector.records.Change.snapshot`). Live changes go first, but while both wait,
snapshot reads get at least ``snapshot_share`` of the jobs handed out: each job earns them that
share of a turn (the credit); a whole turn makes the next job a snapshot read, which spends it. Only
a lane's head is ever ready, so per-key order holds; a live change queued behind snapshot reads of
its key makes them live (they inherit its priority) rather than wait behind them."""

from __future__ import annotations

import heapq
import itertools
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from connector.lsq.catalog import BULK_ROWS

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Iterable, Iterator

    from connector.flow.offsets import TopicPartitionKey
    from connector.records import DeadLetter, Payload, Skip, SourceRecord

__all__ = ["Job", "Lanes"]

LaneKey = tuple[str, int, bytes | None, int]

#: A whole turn of the snapshot reads' credit, in parts per million (so 0.1 ten times is one).
_TURN = 1_000_000


@dataclass(slots=True, eq=False)
class Job:
    """One record's LeadSquared call, from mapping until its outcome."""

    record: SourceRecord
    route: str
    account: str
    payload: Payload
    queued_at: float
    attempts: int = 0  # calls sent
    failures: int = 0  # retriable failures so far (throttled calls are not failures)
    ready_at: float = 0.0
    first_sent_at: float | None = None
    sent_wall: float = 0.0  # wall-clock time of the latest call (the results' submitted_at)
    dropped: bool = False  # its partition was revoked: its answer is ignored
    rows: int = BULK_ROWS  # most rows of a bulk call it may go in (1: calls of its own only)
    #: later records of its key coalesced into its payload: they share its outcome
    riders: list[SourceRecord] = field(default_factory=list)
    live: bool = True  # a live change, not only a snapshot read: goes first (SPEC §7)
    entry: int = -1  # which entry of a ready queue is its current one (-1: it is not ready)
    #: a record that needs no call: this is its outcome, settled when it is its lane's head
    outcome: Skip | DeadLetter | None = None

    @property
    def lane(self) -> LaneKey:
        """Same topic, partition and key → same lane; a record without key has its own lane."""
        r = self.record
        return (r.topic, r.partition, r.key, -1 if r.key is not None else r.offset)

    @property
    def tp(self) -> TopicPartitionKey:
        return (self.record.topic, self.record.partition)


class _Queue:
    """Ready jobs of one class, oldest first, as ``(entry, job)``, current while :attr:`Job.entry`
    is ``entry``. A job leaving other than at the head (a filtered :meth:`Lanes.take`, a claim, a
    read turned live) leaves a stale entry: skipped, dropped at the head or once half are stale."""

    __slots__ = ("_entries", "_stale")

    def __init__(self) -> None:
        self._entries: deque[tuple[int, Job]] = deque()
        self._stale = 0  # entries no longer current

    def __iter__(self) -> Iterator[Job]:
        return (job for entry, job in self._entries if job.entry == entry)

    def push(self, entry: int, job: Job) -> None:
        """Queue ``job`` as its current entry ``entry``."""
        job.entry = entry
        self._entries.append((entry, job))

    def waiting(self) -> bool:
        """Whether a current entry is queued (the stale ones at the head are dropped)."""
        entries = self._entries
        while entries and entries[0][1].entry != entries[0][0]:
            entries.popleft()
            self._stale -= 1
        return bool(entries)

    def left(self) -> None:
        """An entry is no longer current: drop all such once they make up half (O(1) amortised)."""
        self._stale += 1
        if 2 * self._stale > len(self._entries):
            self.keep(lambda _: True)

    def keep(self, kept: Callable[[Job], bool]) -> None:
        """Keep only the current entries of the jobs ``kept`` accepts."""
        self._entries = deque((e, job) for e, job in self._entries if job.entry == e and kept(job))
        self._stale = 0


@dataclass(slots=True)
class _Ready:
    """An account's ready jobs: live changes, snapshot reads, and the snapshot reads' credit."""

    live: _Queue = field(default_factory=_Queue)
    snapshot: _Queue = field(default_factory=_Queue)
    credit: int = 0  # in parts of a _TURN


class Lanes:
    """Jobs not yet settled, in per-key lanes: only a lane's head is ever handed out."""

    def __init__(self, snapshot_share: float = 0.1) -> None:
        """``snapshot_share`` (0 to 0.5): the least part of the jobs handed out that go to snapshot
        reads while live changes wait too (0: only with no live change ready; 0.5: turn about)."""
        self._read_credit = round(snapshot_share * _TURN)
        self._lanes: dict[LaneKey, deque[Job]] = {}
        self._ready: defaultdict[str, _Ready] = defaultdict(_Ready)
        self._timers: list[tuple[float, int, Job]] = []
        self._due: list[Job] = []  # jobs with a ready-made outcome that are their lane's head
        self._seq = itertools.count()
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def add(self, job: Job) -> None:
        """Queue a job behind the earlier jobs of its key (a live one makes them live)."""
        lane = self._lanes.setdefault(job.lane, deque())
        lane.append(job)
        self._count += 1
        if len(lane) == 1:
            self._wake(job)
        elif job.live:
            self.quicken(lane[-2])

    def quicken(self, job: Job) -> None:
        """A live change joined queued ``job`` (coalesced into it, or queued right behind it):
        ``job`` and the snapshot reads ahead of it in its lane become live. A ready one moves to
        the live queue; one in flight or waiting for a retry is live when it is ready again."""
        lane = self._lanes[job.lane]
        for queued in itertools.dropwhile(lambda j: j is not job, reversed(lane)):
            if queued.live:
                break  # the jobs ahead of a live one are live already
            queued.live = True
            if queued.entry >= 0:
                self._enqueue(queued)
                self._ready[queued.account].snapshot.left()

    def tail(self, job: Job) -> Job | None:
        """The last job queued in ``job``'s lane, if any."""
        lane = self._lanes.get(job.lane)
        return lane[-1] if lane else None

    def take(
        self, account: str, now: float, allow: Callable[[Job], bool] | None = None
    ) -> Job | None:
        """The next ready job of ``account`` that ``allow`` accepts, handed out, or ``None``."""
        self._promote(now)
        ready = self._ready.get(account)
        if ready is None:
            return None
        job = next((j for j in self._order(ready) if allow is None or allow(j)), None)
        if job is not None:
            self._hand_out(ready, job)
        return job

    def ready_jobs(self, account: str, now: float) -> Iterator[Job]:
        """``account``'s ready jobs in the order :meth:`take` would hand them out one after the
        other, read only (:meth:`claim` takes some) and valid until the lanes change."""
        self._promote(now)
        ready = self._ready.get(account)
        return iter(()) if ready is None else self._order(ready)

    def claim(self, account: str, jobs: Collection[Job]) -> None:
        """Hand out ``jobs``, ready jobs of ``account``, in their order, as :meth:`take` would."""
        ready = self._ready[account]
        for job in jobs:
            self._hand_out(ready, job)

    def ready(self, account: str, now: float) -> bool:
        """Whether ``account`` has a job ready to send at ``now``."""
        self._promote(now)
        ready = self._ready.get(account)
        return ready is not None and (ready.live.waiting() or ready.snapshot.waiting())

    def accounts(self) -> Iterable[str]:
        """Accounts that have ever had a ready job."""
        return self._ready.keys()

    def next_timer(self) -> float | None:
        """When the earliest retry becomes ready, if any job waits for one."""
        return self._timers[0][0] if self._timers else None

    def later(self, job: Job, at: float) -> None:
        """Hand a taken job back to be ready again at ``at`` (it stays its lane's head)."""
        job.ready_at = at
        self._wake(job)

    def due(self) -> list[Job]:
        """The jobs with a ready-made :attr:`Job.outcome` that became their lane's head, in that
        order (no longer due): settle each without a call, then :meth:`finish` it."""
        due, self._due = self._due, []
        return due

    def finish(self, job: Job) -> None:
        """The job has its outcome: the next job of its key becomes ready (or due)."""
        lane = self._lanes[job.lane]
        if lane[0] is not job:
            raise RuntimeError("finish() of a job that is not its lane's head")
        lane.popleft()
        self._count -= 1
        if lane:
            self._wake(lane[0])
        else:
            del self._lanes[job.lane]

    def drop(self, tps: Iterable[TopicPartitionKey]) -> list[Job]:
        """Remove every job of these partitions (revoked or lost); returns the jobs removed."""
        gone = set(tps)
        dropped = [job for key, lane in self._lanes.items() if key[:2] in gone for job in lane]
        self._lanes = {k: lane for k, lane in self._lanes.items() if k[:2] not in gone}
        for ready in self._ready.values():
            ready.live.keep(lambda job: job.tp not in gone)
            ready.snapshot.keep(lambda job: job.tp not in gone)
        self._timers = [t for t in self._timers if t[2].tp not in gone]
        self._due = [job for job in self._due if job.tp not in gone]
        heapq.heapify(self._timers)
        self._count -= len(dropped)
        return dropped

    def _wake(self, job: Job) -> None:
        if job.outcome is not None:
            self._due.append(job)
        elif job.ready_at > 0:
            heapq.heappush(self._timers, (job.ready_at, next(self._seq), job))
        else:
            self._enqueue(job)

    def _promote(self, now: float) -> None:
        while self._timers and self._timers[0][0] <= now:
            self._enqueue(heapq.heappop(self._timers)[2])

    def _enqueue(self, job: Job) -> None:
        """Make ``job`` ready, in its account's queue of its class."""
        ready = self._ready[job.account]
        (ready.live if job.live else ready.snapshot).push(next(self._seq), job)

    def _order(self, ready: _Ready) -> Iterator[Job]:
        """``ready``'s jobs in the order they would be handed out: the credit played forward."""
        lives, reads = iter(ready.live), iter(ready.snapshot)
        live, read, credit = next(lives, None), next(reads, None), ready.credit
        while (job := self._next(credit, live, read)) is not None:
            yield job
            credit = self._charged(credit, job, both=live is not None and read is not None)
            if job is live:
                live = next(lives, None)
            else:
                read = next(reads, None)

    def _next(self, credit: int, live: Job | None, read: Job | None) -> Job | None:
        """Which goes next of the oldest ready live change and the oldest ready snapshot read."""
        if live is None or read is None:
            return live or read
        return read if credit + self._read_credit >= _TURN else live

    def _charged(self, credit: int, job: Job, *, both: bool) -> int:
        """The credit once ``job`` is handed out, ``both`` classes being ready: each job earns the
        snapshot reads a share of a turn, a snapshot read spends a turn."""
        if not both:
            return credit
        credit += self._read_credit
        return credit if job.live else max(0, credit - _TURN)

    def _hand_out(self, ready: _Ready, job: Job) -> None:
        """``job``, one of ``ready``'s, is no longer ready."""
        both = ready.live.waiting() and ready.snapshot.waiting()
        ready.credit = self._charged(ready.credit, job, both=both)
        job.entry = -1
        (ready.live if job.live else ready.snapshot).left()
