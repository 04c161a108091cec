"""In-memory stand-ins for the pipeline's ports (Kafka input, outcome writer, HTTP calls, clock), so
its invariants can be checked exactly, step by step, without a broker, a network or sleeping."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, cast

from connector.flow.accounts import BULK, MAIN, Account
from connector.flow.bulk import BulkPlanner
from connector.flow.gates import RateGate
from connector.flow.members import FoundOutcomes, KnownPayloads, QuotaCounts
from connector.flow.quotas import Quotas
from connector.flow.tracking import CompletionTracker, Tracking
from connector.pipeline import Pipeline
from connector.records import Answer, SourceRecord
from connector.settings.model import FlowSettings, RetrySettings
from connector.transform.mapping import MappingSpec, compile_mapping
from connector.transform.route import Route

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Mapping

    from connector.flow.deadline import Deadline
    from connector.flow.fingerprints import FingerprintStore
    from connector.flow.offsets import TopicPartitionKey
    from connector.flow.participant import Loop, Participant
    from connector.flow.planner import Planner
    from connector.flow.ports import Calls, QuotaTopicPort
    from connector.flow.quota import Quota
    from connector.lsq.catalog import Request
    from connector.lsq.coalesce import Coalesce
    from connector.records import Accepted, DeadLetter, Unfinished
    from connector.settings.status import StatusSettings

ACCEPTED = Answer(200, b'{"Status":"Request accepted.","RequestID":"req-1"}')
THROTTLED = Answer(429, b'{"message":"Too Many Requests"}')
UNAVAILABLE = Answer(503, b'{"message":"Service Unavailable"}')
FORBIDDEN = Answer(403, b'{"message":"Forbidden"}')
DUPLICATE = Answer(
    200,
    b'{"Status":"Error","ExceptionType":"MXDuplicateEntryException",'
    b'"ExceptionMessage":"A Lead with same Email already exists."}',
)


class Clock:
    """Manual monotonic time; with ``drift``, each reading also moves it on by that much (time
    passing inside a turn of the loop)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.drift = 0.0

    def __call__(self) -> float:
        self.now += self.drift
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class FakeInput:
    """Records waiting to be polled; commits and pauses are recorded. Rebalance events queued in
    ``rebalances`` reach the listener from inside :meth:`poll`, as librdkafka delivers them, and
    like the real :class:`connector.adapters.consume.Source` it refuses metadata requests there."""

    pending: list[SourceRecord] = field(default_factory=list)
    commits: list[dict[TopicPartitionKey, int]] = field(default_factory=list)
    paused: set[TopicPartitionKey] = field(default_factory=set)
    owned: list[TopicPartitionKey] = field(default_factory=list)
    commit_error: str | None = None
    closed: bool = False
    listener: Pipeline | None = None
    rebalances: list[tuple[str, list[TopicPartitionKey]]] = field(default_factory=list)
    cluster: dict[str, int] = field(default_factory=dict)  # partitions per topic, if not owned
    in_callback: bool = False

    def poll(self, max_records: int, timeout: float) -> list[SourceRecord]:  # noqa: ARG002
        """Rebalance events first, then records of unpaused partitions, in order; never waits."""
        for kind, tps in self.rebalances:
            assert self.listener is not None
            self.in_callback = True
            if kind == "assigned":  # assigned partitions are in the assignment in the callback
                self.owned += [tp for tp in tps if tp not in self.owned]
            getattr(self.listener, kind)(tps)
            if kind != "assigned":  # revoked or lost ones leave it after the callback
                self.owned = [tp for tp in self.owned if tp not in tps]
            self.in_callback = False
        self.rebalances.clear()
        ready = [r for r in self.pending if (r.topic, r.partition) not in self.paused]
        out = ready[:max_records]
        for record in out:
            self.pending.remove(record)
        return out

    def assignment(self) -> list[TopicPartitionKey]:
        return list(self.owned)

    def pause(self, tps: list[TopicPartitionKey]) -> None:
        self.paused.update(tps)

    def resume(self, tps: list[TopicPartitionKey]) -> None:
        self.paused.difference_update(tps)

    def commit(self, positions: Mapping[TopicPartitionKey, int]) -> str | None:
        if self.commit_error is not None:
            return self.commit_error
        self.commits.append(dict(positions))
        return None

    def committed_positions(self) -> dict[TopicPartitionKey, int]:
        """The latest committed offset of each partition."""
        out: dict[TopicPartitionKey, int] = {}
        for positions in self.commits:
            out |= positions
        return out

    def lag(self) -> dict[TopicPartitionKey, int]:
        lags: dict[TopicPartitionKey, int] = {}
        for r in self.pending:
            lags[r.topic, r.partition] = lags.get((r.topic, r.partition), 0) + 1
        return lags

    def topic_partitions(self) -> dict[str, int]:
        assert not self.in_callback, "metadata requested from inside a rebalance callback"
        if self.cluster:
            return dict(self.cluster)
        return {topic: 1 + max(p for t, p in self.owned if t == topic) for topic, _ in self.owned}

    def committed(self, tps: list[TopicPartitionKey]) -> dict[TopicPartitionKey, int]:
        latest = self.committed_positions()
        return {tp: latest.get(tp, -1001) for tp in tps}

    def close(self) -> None:
        self.closed = True


@dataclass
class Written:
    kind: str  # "result" | "dead_letter"
    record: SourceRecord
    data: Accepted | DeadLetter
    durable: Callable[[], None]


@dataclass
class FakeOutput:
    """Outcomes are acknowledged when the test says so (or at once with ``auto_ack``)."""

    auto_ack: bool = True
    delayed: bool = False
    written: list[Written] = field(default_factory=list)
    unacked: list[Written] = field(default_factory=list)
    flushes: list[float] = field(default_factory=list)  # flush() timeouts, in order

    def result(self, record: SourceRecord, accepted: Accepted, durable: Callable[[], None]) -> None:
        self._write(Written("result", record, accepted, durable))

    def dead_letter(
        self, record: SourceRecord, why: DeadLetter, durable: Callable[[], None]
    ) -> None:
        self._write(Written("dead_letter", record, why, durable))

    def poll(self) -> None:
        if self.auto_ack:
            self.ack(lambda _: True)

    def flush(self, deadline: Deadline) -> bool:
        self.flushes.append(deadline.left())
        self.poll()
        return not self.unacked

    def ack(self, which: Callable[[Written], bool]) -> None:
        """Acknowledge the unacknowledged outcomes ``which`` selects."""
        for item in [w for w in self.unacked if which(w)]:
            self.unacked.remove(item)
            item.durable()

    def kinds(self) -> dict[int, str]:
        """Outcome kind per source offset."""
        return {w.record.offset: w.kind for w in self.written}

    def _write(self, item: Written) -> None:
        self.written.append(item)
        self.unacked.append(item)


@dataclass
class Sent:
    ticket: int
    account: str
    request: Request
    at: float


@dataclass
class FakeCalls:
    """Calls wait until the test answers them."""

    clock: Clock
    sent: list[Sent] = field(default_factory=list)
    answers: list[tuple[int, Answer]] = field(default_factory=list)
    done: set[int] = field(default_factory=set)
    waits: list[float] = field(default_factory=list)  # collect() timeouts, in order
    in_flight: int = 0

    def submit(self, ticket: int, account: str, request: Request) -> None:
        self.in_flight += 1
        self.sent.append(Sent(ticket, account, request, self.clock()))

    def collect(self, timeout: float) -> list[tuple[int, Answer]]:
        self.waits.append(timeout)
        out, self.answers = self.answers, []
        self.in_flight -= len(out)
        return out

    def answer(self, answer: Answer, which: Callable[[Sent], bool] = lambda _: True) -> int:
        """Answer every open call ``which`` selects; returns how many."""
        chosen = [s for s in self.sent if s.ticket not in self.done and which(s)]
        self.answers += [(s.ticket, answer) for s in chosen]
        self.done.update(s.ticket for s in chosen)
        return len(chosen)

    @property
    def emails(self) -> list[str]:
        """The EmailAddress of every call, in the order sent."""
        return [_email(s.request) for s in self.sent]


@dataclass
class SplitCalls:
    """The one Calls port of a loop with completion tracking, as two fakes: Status and Metrics
    API calls go to ``polls``, every other call to ``records`` (tickets are the loop's, unique)."""

    records: FakeCalls
    polls: FakeCalls

    def submit(self, ticket: int, account: str, request: Request) -> None:
        status = request.endpoint.host == "status"
        (self.polls if status else self.records).submit(ticket, account, request)

    def collect(self, timeout: float) -> list[tuple[int, Answer]]:
        return self.records.collect(timeout) + self.polls.collect(0)


def _email(request: Request) -> str:
    body = request.body
    assert body is not None
    attributes = body if isinstance(body, list) else body["LeadDetails"]
    return str(next(a["Value"] for a in attributes if a["Attribute"] == "EmailAddress"))


def record(
    offset: int,
    key: str | None,
    email: str | None,
    *,
    partition: int = 0,
    op: str = "c",
    value: Any = ...,
) -> SourceRecord:
    """A JSON-encoded Debezium envelope about one lead (the fake route decodes JSON)."""
    row = {"email": email, "name": f"lead {offset}"}
    if value is ...:
        value = {
            "op": op,
            "before": row if op == "d" else None,
            "after": None if op == "d" else row,
        }
    raw = None if value is None else json.dumps(value).encode()
    return SourceRecord("leads", partition, offset, None if key is None else key.encode(), raw)


def route(
    bulk: tuple[int, int] | None = None,
    coalesce: Coalesce | None = None,
    *,
    remember: bool = False,
) -> Route:
    spec = MappingSpec.model_validate(
        {"search_by": "EmailAddress", "lead": {"EmailAddress": "email", "FirstName": "name"}}
    )
    return Route(
        name="leads",
        account="main",
        operation="capture",
        mode="async",
        on_delete="skip",
        decode=json.loads,
        render=compile_mapping("capture", spec).render,
        bulk=bulk,
        coalesce=coalesce,
        remember=remember,
    )


@dataclass
class FakeRecovery:
    """Outcomes "found" in the results topic, per partition."""

    found: dict[TopicPartitionKey, set[int]]
    asked: list[dict[TopicPartitionKey, int]] = field(default_factory=list)

    def done(self, committed: Mapping[TopicPartitionKey, int]) -> dict[TopicPartitionKey, set[int]]:
        self.asked.append(dict(committed))
        return {tp: set(offsets) for tp, offsets in self.found.items() if tp in committed}


@dataclass
class FakeOriginals:
    """Source records "read back" from ``stored`` (by position) when the test says so."""

    stored: dict[tuple[TopicPartitionKey, int], SourceRecord] = field(default_factory=dict)
    asked: list[tuple[TopicPartitionKey, int]] = field(default_factory=list)
    ready: list[tuple[TopicPartitionKey, int, SourceRecord | None]] = field(default_factory=list)

    def fetch(self, tp: TopicPartitionKey, offset: int) -> None:
        self.asked.append((tp, offset))
        self.ready.append((tp, offset, self.stored.get((tp, offset))))

    def fetched(self) -> list[tuple[TopicPartitionKey, int, SourceRecord | None]]:
        out, self.ready = self.ready, []
        return out


@dataclass
class FakeUnchecked:
    """Unfinished checks "read back" from the results topic."""

    found: list[Unfinished] = field(default_factory=list)
    asked: list[tuple[list[TopicPartitionKey], float]] = field(default_factory=list)

    def unfinished(self, tps: Collection[TopicPartitionKey], since: float) -> list[Unfinished]:
        self.asked.append((sorted(tps), since))
        return [u for u in self.found if (u.record.topic, u.record.partition) in tps]


@dataclass
class Tracked:
    """The fakes of completion tracking."""

    calls: FakeCalls
    originals: FakeOriginals
    unchecked: FakeUnchecked


@dataclass
class Harness:
    pipeline: Pipeline
    input: FakeInput
    output: FakeOutput
    calls: FakeCalls
    clock: Clock
    account: Account
    tracked: Tracked | None = None
    recovery: FakeRecovery = field(default_factory=lambda: FakeRecovery({}))

    def feed(self, *records: SourceRecord) -> None:
        self.input.pending += records
        for r in records:
            if (r.topic, r.partition) not in self.input.owned:
                self.input.owned.append((r.topic, r.partition))

    def turn(self, count: int = 1) -> None:
        """Run loop turns, one millisecond apart (the harness's commit interval)."""
        for _ in range(count):
            self.pipeline.step()
            self.clock.advance(0.001)


def harness(
    *,
    calls: int = 25,
    window: float = 5.0,
    concurrency: int = 4,
    retry: RetrySettings | None = None,
    flow: FlowSettings | None = None,
    auto_ack: bool = True,
    recovered: dict[TopicPartitionKey, set[int]] | None = None,
    planner: Planner | None = None,
    bulk: tuple[int, int, int] | None = None,  # min rows, max rows, bulk calls per window
    coalesce: Coalesce | None = None,
    memory: FingerprintStore | None = None,
    quota: tuple[Quota, QuotaTopicPort] | None = None,
    status: StatusSettings | None = None,
    recovery: FakeRecovery | None = None,
    clock: Clock | None = None,
) -> Harness:
    """The loop over fakes; with ``bulk``, the route sends bulk calls (:class:`BulkPlanner`);
    with ``quota``, the account has that daily quota, kept through that port; with ``status``,
    accepted calls are tracked (their Status API calls go to ``tracked.calls``, and the wall
    clock moves with the monotonic one)."""
    clock, retry = clock or Clock(), retry or RetrySettings()
    gates, limits = {MAIN: RateGate(calls, window, margin=0.0)}, {MAIN: (calls, window)}
    if bulk is not None:
        gates[BULK], limits[BULK] = RateGate(bulk[2], window, margin=0.0), (bulk[2], window)
    account = Account("main", gates, concurrency, cooldown=window, retry=retry, limits=limits)
    account.quota = None if quota is None else quota[0]
    the_route = route(
        bulk=None if bulk is None else bulk[:2], coalesce=coalesce, remember=memory is not None
    )
    if bulk is not None and planner is None:
        planner = BulkPlanner(lambda topic: the_route if topic == "leads" else None)
    output, fake_calls, fake_input = FakeOutput(auto_ack), FakeCalls(clock), FakeInput()
    recovery = recovery or FakeRecovery(recovered or {})
    participants: list[Callable[[Loop], Participant]] = [partial(FoundOutcomes, recovery)]
    if quota is not None:
        quotas = Quotas({"main": quota[0]}, quota[1])
        participants.append(lambda loop: QuotaCounts(quotas, loop.wall))
    if memory is not None:
        participants.append(lambda _: KnownPayloads(memory))
    tracked, calls_port = None, cast("Calls", fake_calls)
    if status is not None:
        tracked = Tracked(FakeCalls(clock), FakeOriginals(), FakeUnchecked())
        calls_port = SplitCalls(fake_calls, tracked.calls)
        tracking = Tracking(status, (the_route,), tracked.originals, tracked.unchecked)
        participants.append(partial(CompletionTracker, tracking))
    pipeline = Pipeline(
        routes=lambda topic: the_route if topic == "leads" else None,
        accounts={"main": account},
        output=output,
        calls=calls_port,
        retry=retry,
        flow=flow or FlowSettings(commit_interval_seconds=0.001),
        planner=planner,
        participants=participants,
        clock=clock,
        wall=(lambda: 1_700_000_000.0 + clock()) if status else lambda: 1_700_000_000.0,
        draw=lambda: 0.5,
    )
    pipeline.attach(fake_input)
    fake_input.listener = pipeline
    return Harness(pipeline, fake_input, output, fake_calls, clock, account, tracked, recovery)


# -- whole routes (real decode, unwrap and mapping) ---------------------------------------------


def route_harness(
    the_route: Route,
    *,
    calls: int = 10_000,
    window: float = 1.0,
    concurrency: int = 8,
    flow: FlowSettings | None = None,
) -> Harness:
    """Like :func:`harness`, with ``the_route`` for every topic (e.g. a route that decodes real
    Avro) and, by default, a budget so large that the rate limit never holds a call back."""
    clock = Clock()
    gates = {MAIN: RateGate(calls, window, margin=0.0)}
    account = Account(the_route.account, gates, concurrency, window, RetrySettings())
    output, fake_calls, fake_input = FakeOutput(), FakeCalls(clock), FakeInput()
    pipeline = Pipeline(
        routes=lambda _topic: the_route,
        accounts={the_route.account: account},
        output=output,
        calls=fake_calls,
        participants=[partial(FoundOutcomes, FakeRecovery({}))],
        retry=RetrySettings(),
        flow=flow or FlowSettings(commit_interval_seconds=0.001),
        clock=clock,
        wall=lambda: 1_700_000_000.0,
        draw=lambda: 0.5,
    )
    pipeline.attach(fake_input)
    return Harness(pipeline, fake_input, output, fake_calls, clock, account)


def run_until_done(h: Harness, answer: Answer = ACCEPTED, max_turns: int = 10_000) -> int:
    """Turn the loop, answering every call with ``answer``, until every fed record has a durable
    outcome and nothing is in flight; returns the turns taken (fails after ``max_turns``)."""
    for turn in range(1, max_turns + 1):
        h.turn()
        h.calls.answer(answer)
        tally = h.pipeline.tally
        if not h.input.pending and not h.calls.in_flight and tally.lost == 0:
            h.turn()  # one more turn: the last outcomes' commit
            return turn
    raise AssertionError(f"records still without an outcome after {max_turns} turns")
