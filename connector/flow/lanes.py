"""Per-key order (SPEC §2.4): records with the same Kafka key are called in offset order, a later
one only after the earlier one has its outcome; different keys proceed in parallel. Each account
hands out its ready jobs oldest first; jobs waiting for a retry sit on a timer. Pure."""

from __future__ import annotations

import heapq
import itertools
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from connector.lsq.catalog import BULK_ROWS

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Iterable, Sequence

    from connector.flow.offsets import TopicPartitionKey
    from connector.records import Payload, SourceRecord

__all__ = ["Job", "Lanes"]

LaneKey = tuple[str, int, bytes | None, int]


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
    slot: int = -1  # the rate gate's slot its call in flight holds (RateGate.acquire)
    rows: int = BULK_ROWS  # most rows of a bulk call it may go in (1: calls of its own only)
    #: later records of its key whose changes its payload carries too (coalesced): they share
    #: its outcome
    riders: list[SourceRecord] = field(default_factory=list)

    @property
    def lane(self) -> LaneKey:
        """Same topic, partition and key → same lane; a record without key has its own lane."""
        r = self.record
        return (r.topic, r.partition, r.key, -1 if r.key is not None else r.offset)

    @property
    def tp(self) -> TopicPartitionKey:
        return (self.record.topic, self.record.partition)


class Lanes:
    """Jobs not yet settled, in per-key lanes; only each lane's head can be handed out."""

    def __init__(self) -> None:
        self._lanes: dict[LaneKey, deque[Job]] = {}
        self._ready: defaultdict[str, deque[Job]] = defaultdict(deque)
        self._timers: list[tuple[float, int, Job]] = []
        self._seq = itertools.count()
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def add(self, job: Job) -> None:
        """Queue a job behind the earlier jobs of its key."""
        lane = self._lanes.setdefault(job.lane, deque())
        lane.append(job)
        self._count += 1
        if len(lane) == 1:
            self._wake(job)

    def tail(self, job: Job) -> Job | None:
        """The last job queued in ``job``'s lane, if any."""
        lane = self._lanes.get(job.lane)
        return lane[-1] if lane else None

    def take(
        self, account: str, now: float, allow: Callable[[Job], bool] | None = None
    ) -> Job | None:
        """The oldest ready job of ``account`` that ``allow`` accepts (removed from the ready
        queue), or ``None``."""
        self._promote(now)
        ready = self._ready.get(account)
        if not ready:
            return None
        if allow is None:
            return ready.popleft()
        for index, job in enumerate(ready):
            if allow(job):
                del ready[index]
                return job
        return None

    def ready_jobs(self, account: str, now: float) -> Sequence[Job]:
        """``account``'s ready jobs, oldest first (read only: :meth:`claim` takes some)."""
        self._promote(now)
        return self._ready.get(account) or ()

    def claim(self, account: str, jobs: Collection[Job]) -> None:
        """Take ``jobs``, all ready jobs of ``account``, out of the ready queue."""
        taken = {id(job) for job in jobs}
        self._ready[account] = deque(j for j in self._ready[account] if id(j) not in taken)

    def ready(self, account: str, now: float) -> bool:
        """Whether ``account`` has a job ready to send at ``now``."""
        self._promote(now)
        return bool(self._ready.get(account))

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

    def finish(self, job: Job) -> None:
        """The job has its outcome: the next job of its key becomes ready."""
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
        for account, ready in self._ready.items():
            self._ready[account] = deque(j for j in ready if j.tp not in gone)
        self._timers = [t for t in self._timers if t[2].tp not in gone]
        heapq.heapify(self._timers)
        self._count -= len(dropped)
        return dropped

    def _wake(self, job: Job) -> None:
        if job.ready_at > 0:
            heapq.heappush(self._timers, (job.ready_at, next(self._seq), job))
        else:
            self._ready[job.account].append(job)

    def _promote(self, now: float) -> None:
        while self._timers and self._timers[0][0] <= now:
            job = heapq.heappop(self._timers)[2]
            self._ready[job.account].append(job)
