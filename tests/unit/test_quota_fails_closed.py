"""The daily quota fails closed (SPEC §2.10): while the quota topic cannot be read back or does not
take the counts written, the account's quota is unknown and nothing is sent for it; a not-ready
reason and one error line say so; it is tried again on its own, and the account goes on from the
count the topic holds, never from zero."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from structlog.testing import capture_logs

from connector.adapters.metrics import families
from connector.flow.observe import Snapshot, account_view
from connector.flow.quota import Quota, Unread
from connector.flow.quotas import RETRY_MAX_S, RETRY_S, Quotas
from tests.unit.pipeline_fakes import ACCEPTED, Harness, harness, record
from tests.unit.test_quota import TopicLog

if TYPE_CHECKING:
    from collections.abc import Collection

    from connector.flow.deadline import Deadline
    from connector.flow.offsets import TopicPartitionKey
    from connector.flow.quota import Report, Spent

LEADS = ("leads", 0)
DAY = 3600.0  # longer than any test waits, so no count expires


class TroubledLog:
    """The quota topic, in memory (a :class:`TopicLog`), that can refuse reads (``unreadable``)
    or writes (``unwritable``): the reason the broker would give."""

    def __init__(self) -> None:
        self.topic = TopicLog()
        self.unreadable: str | None = None
        self.unwritable: str | None = None
        self.reads = 0
        self._reports: list[Report] = []

    @property
    def counts(self) -> dict[tuple[str, TopicPartitionKey, int], int]:
        return self.topic.counts

    def read(
        self, tps: Collection[TopicPartitionKey], since: float
    ) -> dict[str, list[Spent]] | Unread:
        self.reads += 1
        return Unread(self.unreadable) if self.unreadable else self.topic.read(tps, since)

    def write(self, account: str, counts: Collection[Spent]) -> None:
        if self.unwritable is None:
            self.topic.write(account, counts)
        self._reports += [(account, tp, n, self.unwritable) for tp, n, _ in counts]

    def reports(self) -> list[Report]:
        out, self._reports = self._reports, []
        return out

    def flush(self, deadline: Deadline) -> bool:
        return self.topic.flush(deadline)


def _spend(log: TroubledLog, calls: int, quota: int = 8) -> None:
    """A first process spends ``calls`` of the quota, written to ``log``, and stops."""
    first = harness(quota=(Quota(quota, DAY, "greedy"), log))
    first.input.rebalances.append(("assigned", [LEADS]))
    first.feed(*(record(i, f"k{i}", f"lead{i}@example.com") for i in range(calls)))
    while len(first.calls.sent) < calls:
        first.turn()
        first.calls.answer(ACCEPTED)
    first.pipeline.request_stop()
    first.pipeline.run()
    assert sum(log.counts.values()) == calls


def _second(log: TroubledLog, quota: int = 8) -> Harness:
    second = harness(quota=(Quota(quota, DAY, "greedy"), log))
    second.input.rebalances.append(("assigned", [LEADS]))
    second.feed(*(record(i, f"k{i}", f"lead{i}@example.com") for i in range(100, 110)))
    return second


def _run(h: Harness, turns: int) -> None:
    for _ in range(turns):
        h.turn()
        h.calls.answer(ACCEPTED)


def _unknown_gauge(snapshot: Snapshot) -> list[tuple[dict[str, str], float]]:
    """The samples of ``lsq_sink_quota_unknown`` the health port would serve."""
    gauge = next(f for f in families(snapshot) if f.name == "lsq_sink_quota_unknown")
    return [(sample.labels, sample.value) for sample in gauge.samples]


def test_a_read_back_that_fails_holds_the_account_until_it_works_and_never_counts_afresh() -> None:
    """5 of 8 calls spent, then a restart whose read-back fails: no call goes (a fresh count would
    send 8), /readyz and a gauge name the account and why, one error line; once the topic answers
    again the read is tried again on its own, and exactly the 3 calls left go."""
    log = TroubledLog()
    _spend(log, 5)
    log.unreadable = "Broker: Topic authorization failed"
    second = _second(log)
    with capture_logs() as logs:
        _run(second, 50)
        second.clock.advance(3 * RETRY_S)  # retried, failing again: still held, no new line
        _run(second, 50)
    assert second.calls.sent == []
    (reason,) = second.pipeline.snapshot.not_ready
    assert reason.startswith("account main: daily quota unknown")
    assert "could not be read back" in reason
    assert "Topic authorization failed" in reason
    assert _unknown_gauge(second.pipeline.snapshot) == [({"account": "main"}, 1.0)]
    unknown = [e for e in logs if e["event"] == "quota.unknown"]
    assert [(e["log_level"], e["account"]) for e in unknown] == [("error", "main")]
    view = account_view(second.account, second.clock())
    assert view.quota is not None
    assert (view.quota.left, view.quota.unknown) == (0, reason.removeprefix("account main: "))
    assert log.reads >= 2
    log.unreadable = None
    second.clock.advance(RETRY_MAX_S)
    with capture_logs() as logs:
        _run(second, 50)
        second.clock.advance(1.0)  # counts are written (and the snapshot taken) every so often
        _run(second, 1)
    assert len(second.calls.sent) == 3
    assert second.pipeline.snapshot.not_ready == ()
    assert _unknown_gauge(second.pipeline.snapshot) == [({"account": "main"}, 0.0)]
    assert [e["event"] for e in logs if e["event"].startswith("quota.")] == ["quota.known"]
    assert sum(log.counts.values()) == 8


def test_counts_the_topic_refuses_hold_the_account_until_they_are_written() -> None:
    """The quota topic refuses the counts written (deleted, or no Write permission): the calls
    already out are all that go; once it takes them again, every count is written (a topic
    created anew holds them all) and the account goes on with what is left."""
    log = TroubledLog()
    log.unwritable = "Broker: Unknown topic or partition"
    h = _second(log, quota=10)
    with capture_logs() as logs:
        _run(h, 50)
        out = len(h.calls.sent)
        h.clock.advance(3 * RETRY_S)
        _run(h, 50)
    assert 1 <= out < 10
    assert len(h.calls.sent) == out
    (reason,) = h.pipeline.snapshot.not_ready
    assert "could not be written" in reason
    assert "Unknown topic or partition" in reason
    assert [e["event"] for e in logs if e["event"].startswith("quota.")] == ["quota.unknown"]
    assert log.counts == {}
    log.unwritable = None
    h.clock.advance(RETRY_MAX_S)
    _run(h, 50)
    h.clock.advance(1.0)  # counts are written (and the snapshot taken) every so often
    _run(h, 1)
    assert len(h.calls.sent) == 10
    assert h.pipeline.snapshot.not_ready == ()
    assert sum(log.counts.values()) == 10  # none forgotten


def test_an_unusable_topic_is_tried_again_less_and_less_often() -> None:
    """Retries of a failing read-back start after RETRY_S and double up to RETRY_MAX_S, so a
    broken topic does not hold up the loop; the quota lets no call go in between."""
    log = TroubledLog()
    log.unreadable = "Broker: Unknown topic or partition"
    quota = Quota(100, DAY, "greedy")
    quotas = Quotas({"a": quota}, log)
    quotas.restore([LEADS], 1_700_000_000.0)
    quota.apportion([LEADS], 1, offset=1_700_000_000.0)
    reads_at = []
    for tenth in range(3000):  # five minutes, ten turns a second
        now = tenth / 10
        before = log.reads
        quotas.save(now)
        if log.reads > before:
            reads_at.append(now)
        assert quota.wait(now) == math.inf
        assert quota.left(now) == 0
    gaps = [round(b - a, 1) for a, b in zip([0.0, *reads_at], reads_at, strict=False)]
    assert gaps[:5] == [5.0, 10.0, 20.0, 40.0, 60.0]
    assert set(gaps[5:]) == {60.0}


def test_a_quota_is_known_again_when_its_unread_partitions_are_revoked() -> None:
    """The partitions whose counts could not be read went to another replica (which reads them
    itself): nothing unknown is left here."""
    log = TroubledLog()
    log.unreadable = "Broker: Unknown topic or partition"
    quota = Quota(100, DAY, "greedy")
    quotas = Quotas({"a": quota}, log)
    quotas.restore([LEADS], 1_700_000_000.0)
    assert quota.unknown is not None
    quotas.forget([LEADS])
    assert quota.unknown is None


def test_without_a_quota_the_topic_is_never_asked() -> None:
    """Configs without a quota behave as before: nothing is read, written or retried."""
    log = TroubledLog()
    log.unreadable = log.unwritable = "Broker: Unknown topic or partition"
    quotas = Quotas({}, log)
    quotas.restore([LEADS], 1_700_000_000.0)
    for now in range(0, 600, 5):
        quotas.save(float(now))
    assert (log.reads, log.counts, log.reports()) == (0, {}, [])
