"""All mutable simulator state, owned by the server's event loop: accounts (keys, rate budgets,
daily quota, store, work queue, counters), fault settings, outage windows and the request log."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter, deque
from dataclasses import dataclass
from datetime import UTC, datetime
from random import Random
from typing import TYPE_CHECKING

from aiohttp import web

from lsq_sim.faults import FaultState, Outages
from lsq_sim.limiter import RollingQuota, make_limiter
from lsq_sim.meters import WindowCounter
from lsq_sim.store import LeadStore
from lsq_sim.workqueue import RETRY_SCHEDULE_S, WorkQueue

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from lsq_sim.answers import Answer, AnswerClass
    from lsq_sim.config import Account, DailyQuota, RateLimit, SimConfig
    from lsq_sim.limiter import Limiter

__all__ = ["SIM", "AccountState", "Budget", "LogEntry", "Quota", "SimState"]

_LOGGED_HEADERS = ("content-type", "x-api-key", "x-lsq-accesskey", "x-lsq-secretkey")


@dataclass(slots=True)
class LogEntry:
    """One API call as received; the answer fields are filled in when it is answered."""

    seq: int
    time: float
    mono: float
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: str
    account: str | None
    status: int | None = None
    answer: AnswerClass | None = None
    request_id: str | None = None
    response: bytes | None = None  # the JSON sent (kept serialized: smaller than the objects)


@dataclass(slots=True)
class Budget:
    """One rate budget of an account: its limit, limiter and counters."""

    limit: RateLimit
    limiter: Limiter
    window: WindowCounter  # the busiest window over every call counted against the budget
    calls: int = 0  # calls counted (throttled, faulted and unauthorised ones included)
    throttled: int = 0

    @classmethod
    def fresh(cls, limit: RateLimit) -> Budget:
        """A budget with nothing used."""
        return cls(limit, make_limiter(limit), WindowCounter(limit.window_s))

    def count(self, now: float) -> None:
        """Record a call that the budget applies to, arriving at ``now``."""
        self.calls += 1
        self.window.add(now)


@dataclass(slots=True)
class Quota:
    """An account's daily quota: its setting, the calls it admitted in the last day, refusals."""

    limit: DailyQuota
    day: RollingQuota
    refused: int = 0  # calls a rate budget admitted and the quota refused

    @classmethod
    def fresh(cls, limit: DailyQuota) -> Quota:
        """A quota with nothing used."""
        return cls(limit, RollingQuota(limit.calls, limit.day_s))


class AccountState:
    """One account: current keys, rate budgets (main and bulk), daily quota, store, work queue,
    counters."""

    def __init__(self, account: Account, config: SimConfig, ids: Random) -> None:
        self.account = account
        self.limit = config.account_limit(account)
        self.bulk_limit = config.account_bulk_limit(account)
        self.daily_quota = config.account_quota(account)
        self.store = LeadStore(config.store, lambda: _uuid4(ids), _utc_now)
        scale = config.processing.retry_schedule_scale
        delays = [d * scale for d in RETRY_SCHEDULE_S]
        self.queue = WorkQueue(config.task_record_limit, delays, config.task_record_ttl_s)
        self.wake = asyncio.Event()  # set when a task is queued
        self.reset()

    def reset(self) -> None:
        """Empty the store and queue; restart the limiters, quota and counters."""
        self.store.clear()
        self.queue.clear()
        self.main = Budget.fresh(self.limit)
        self.bulk = Budget.fresh(self.bulk_limit)
        self.quota = None if self.daily_quota is None else Quota.fresh(self.daily_quota)
        self.calls = 0
        self.status_calls = self.metrics_calls = 0  # answered by the Status / Metrics API
        self.answers: Counter[AnswerClass] = Counter()

    def counts_against_limit(self, status_or_metrics: bool) -> bool:
        """Whether a (non-bulk) call of this kind counts against the main budget."""
        return not status_or_metrics or self.limit.limit_status_calls


class SimState:
    """The whole state of one simulator."""

    def __init__(
        self,
        config: SimConfig,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.config, self.clock, self.wall = config, clock, wall
        seed = config.seed
        self.fault_rng = _random(seed, 0)
        self.work_rng = _random(seed, 1)
        self.id_rng = _random(seed, 2)
        self.accounts = {a.name: AccountState(a, config, self.id_rng) for a in config.accounts}
        self.faults = FaultState(config.faults)
        self.outages = Outages()
        self.started = clock()
        for outage in config.outages:
            self.outages.add(self.started + outage.start_s, outage.duration_s, outage.mode)
        self.log: deque[LogEntry] = deque(maxlen=config.request_log_limit)
        self.seq = 0
        self.unidentified: Counter[AnswerClass] = Counter()

    def new_id(self) -> str:
        """A uuid4 string (deterministic under a seed)."""
        return _uuid4(self.id_rng)

    def by_api_key(self, key: str | None) -> AccountState | None:
        """The account whose x-api-key is ``key``."""
        return next((a for a in self.accounts.values() if a.account.api_key == key), None)

    def by_access_key(self, key: str | None) -> AccountState | None:
        """The account whose accessKey is ``key``."""
        return next((a for a in self.accounts.values() if a.account.access_key == key), None)

    def identify(self, query: Mapping[str, str], headers: Mapping[str, str]) -> AccountState | None:
        """The account a call is for (by x-api-key, else by accessKey), whether or not it is
        authorised."""
        found = self.by_api_key(headers.get("x-api-key"))
        access_key = query.get("accesskey") or headers.get("x-lsq-accesskey")
        return found or self.by_access_key(access_key)

    def receive(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str],
        headers: Mapping[str, str],
        body: str,
        account: AccountState | None,
    ) -> LogEntry:
        """Log an arriving call (answer to follow)."""
        self.seq += 1
        logged = {h: v for h in _LOGGED_HEADERS if (v := headers.get(h)) is not None}
        name = None if account is None else account.account.name
        entry = LogEntry(
            self.seq, self.wall(), self.clock(), method, path, dict(query), logged, body, name
        )
        self.log.append(entry)
        if account is not None:
            account.calls += 1
        return entry

    def answered(
        self, entry: LogEntry, account: AccountState | None, answer: Answer, sent: bytes | None
    ) -> None:
        """Complete a logged call with its answer (``sent``: the body, None if dropped)."""
        entry.answer, entry.request_id = answer.kind, answer.request_id
        if sent is not None:
            entry.status, entry.response = answer.status, sent
        counts = self.unidentified if account is None else account.answers
        counts[answer.kind] += 1

    def rotate(self, name: str, changes: Mapping[str, str]) -> Account:
        """Replace some of an account's keys; old keys stop working at once."""
        target = self.accounts[name]
        rotated = target.account.model_copy(update=dict(changes))
        for other in self.accounts.values():
            if other is not target and (
                other.account.access_key == rotated.access_key
                or other.account.api_key == rotated.api_key
            ):
                raise ValueError("another account already uses that key")
        target.account = rotated
        return rotated

    def reset(self) -> None:
        """Clear the log, stores, queues and statistics (faults, outages and keys stay)."""
        self.log.clear()
        self.unidentified.clear()
        for account in self.accounts.values():
            account.reset()

    def current_config(self) -> SimConfig:
        """The configuration as it stands now (current keys and fault settings)."""
        accounts = tuple(a.account for a in self.accounts.values())
        return self.config.model_copy(
            update={"accounts": accounts, "faults": self.faults.current()}
        )


def _random(seed: int | None, stream: int) -> Random:
    """One independent, seeded stream of simulated randomness (not for security)."""
    return Random(None if seed is None else seed * 16 + stream)


def _uuid4(rng: Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")


#: The simulator's state in the aiohttp application.
SIM = web.AppKey("lsq_sim", SimState)
