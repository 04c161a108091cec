"""The daily quota (SPEC §7): never more than the quota less the reserve in any rolling day, for a
fleet whose partitions move and for processes that restart; evenly paced by default; records wait
for it, never dead-lettered; a calendar day read back whole, however long it is."""

from __future__ import annotations

import bisect
import itertools
import math
import random
from collections import defaultdict
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from connector.flow.deadline import Deadline
from connector.flow.quota import SLICES, Quota, midnights
from connector.flow.quotas import Quotas
from connector.settings.accounts import AccountSettings
from tests.unit.pipeline_fakes import ACCEPTED, harness, record

if TYPE_CHECKING:
    from collections.abc import Collection

    from connector.flow.offsets import TopicPartitionKey
    from connector.flow.quota import Report, Spent

DAY = 86_400.0
TPS = [("leads", p) for p in range(6)]


class TopicLog:
    """The quota topic, in memory: the latest count per key."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, TopicPartitionKey, int], int] = {}
        self.flushes = 0

    def read(self, tps: Collection[TopicPartitionKey], since: float) -> dict[str, list[Spent]]:
        del since  # every count is kept; a quota ignores the expired ones
        found: defaultdict[str, list[Spent]] = defaultdict(list)
        for (account, tp, number), calls in self.counts.items():
            if tp in tps:
                found[account].append((tp, number, calls))
        return dict(found)

    def write(self, account: str, counts: Collection[Spent]) -> None:
        for tp, number, calls in counts:
            self.counts[account, tp, number] = calls

    def reports(self) -> list[Report]:
        return []  # every count is taken at once

    def flush(self, deadline: Deadline) -> bool:
        del deadline
        self.flushes += 1
        return True


class StampedLog(TopicLog):
    """The quota topic with the time each count was written (``wall``), read back from ``since``
    as Kafka's timestamps would have it."""

    def __init__(self) -> None:
        super().__init__()
        self.wall = 0.0
        self.written: dict[tuple[str, TopicPartitionKey, int], float] = {}
        self.asked: list[float] = []  # each read's ``since``

    def write(self, account: str, counts: Collection[Spent]) -> None:
        super().write(account, counts)
        self.written |= {(account, tp, number): self.wall for tp, number, _ in counts}

    def read(self, tps: Collection[TopicPartitionKey], since: float) -> dict[str, list[Spent]]:
        self.asked.append(since)
        found: defaultdict[str, list[Spent]] = defaultdict(list)
        for key, calls in self.counts.items():
            if key[1] in tps and self.written[key] >= since:
                found[key[0]].append((key[1], key[2], calls))
        return dict(found)


def most_in_any_day(times: list[float], day: float = DAY) -> int:
    times = sorted(times)
    return max((bisect.bisect_right(times, t + day) - i for i, t in enumerate(times)), default=0)


def _quota(pacing: Literal["even", "greedy"]) -> Quota:
    """LeadSquared's quota of 3,000 calls a day, 20% of it left to other integrations."""
    account = AccountSettings(
        access_key="a", secret_key="s", daily_quota=3000, quota_reserve=0.2, quota_pacing=pacing
    )
    assert account.quota_calls == 2400
    return Quota(account.quota_calls, account.quota_day_seconds, account.quota_pacing)


def _backlog(quota: Quota, days: float) -> list[float]:
    """A backlog through ``quota``, one call a second at most (the rate limit): the send times."""
    quota.apportion(TPS, len(TPS), offset=0.0)
    sent: list[float] = []
    now = 0.0
    while now < days * DAY:
        if (wait := quota.wait(now)) == 0:
            quota.charge(TPS[len(sent) % len(TPS)], now)
            sent.append(now)
            wait = 1.0
        now += wait
    return sent


def test_a_greedy_backlog_spends_the_quota_at_once_and_then_one_call_per_expired_call() -> None:
    sent = _backlog(_quota("greedy"), days=3)
    assert most_in_any_day(sent) <= 2400
    assert len([t for t in sent if t < DAY]) == 2400  # the first day: all of it, at once
    assert all(b - a == 1.0 for a, b in itertools.pairwise(sent[:2400]))
    assert len(sent) >= 2 * 2400  # and again once a day has passed since each slice ended


def test_even_pacing_spreads_the_quota_over_the_day() -> None:
    sent = _backlog(_quota("even"), days=2)
    assert most_in_any_day(sent) <= 2400
    first_hour = len([t for t in sent if t < 3600])
    assert first_hour <= 2400 / 24 + 2400 / 24 + 1  # the bucket, plus an hour of refill
    late = len([t for t in sent if DAY / 2 <= t < DAY])
    assert late >= 0.45 * 2400  # the second half of the first day still finds calls


@pytest.mark.parametrize("seed", range(5))
def test_a_fleet_whose_partitions_move_and_restart_never_spends_more_than_the_quota(
    seed: int,
) -> None:
    """Three replicas share 6 partitions with skewed traffic; every few hours partitions move
    (written and read back through the quota topic) or a replica restarts (from the topic)."""
    rng = random.Random(seed)  # noqa: S311 - test data
    log, calls, day = TopicLog(), 600, 3600.0
    owners = {tp: i % 3 for i, tp in enumerate(TPS)}
    replicas = [Quota(calls, day, rng.choice(["even", "greedy"])) for _ in range(3)]

    def reassign(now: float) -> None:
        for r, quota in enumerate(replicas):
            for tp, number, count in quota.changed():
                log.write("a", [(tp, number, count)])
            quota.forget(TPS)
            mine = [tp for tp in TPS if owners[tp] == r]
            quota.load(log.read(mine, 0.0).get("a", []))
            quota.apportion(mine, len(TPS), offset=0.0)
        del now

    reassign(0.0)
    sent: list[float] = []
    now = 0.0
    while now < 4 * day:
        if rng.random() < 0.002:  # a rebalance, or a replica replaced by a new process
            if rng.random() < 0.5:
                owners[rng.choice(TPS)] = rng.randrange(3)
            else:
                r = rng.randrange(3)
                replicas[r] = Quota(calls, day, replicas[r].pacing)
            reassign(now)
        r = rng.randrange(3)
        hot = next((tp for tp in TPS if owners[tp] == r), None)
        if replicas[r].wait(now) == 0:
            replicas[r].charge(hot, now)  # its first partition gets all the traffic
            sent.append(now)
        now += rng.expovariate(2.0)
        for quota in replicas:  # written as they change (save())
            log.write("a", quota.changed())
    assert most_in_any_day(sent, day) <= calls
    assert len(sent) >= calls  # it does spend the quota


def test_counts_expire_a_day_after_their_slice_ends() -> None:
    quota = Quota(10, DAY, "greedy")
    quota.apportion(TPS[:1], 1, offset=0.0)
    for _ in range(10):
        quota.charge(None, 100.0)
    assert quota.left(100.0) == 0
    end_of_slice = math.ceil(100.0 / (DAY / SLICES)) * DAY / SLICES
    assert quota.exhausted_until(100.0) == pytest.approx(end_of_slice + DAY)
    assert quota.left(end_of_slice + DAY - 1) == 0
    assert quota.left(end_of_slice + DAY) == 10


def test_midnight_is_the_zones() -> None:
    kolkata = midnights("Asia/Kolkata")  # UTC+5:30: midnight is 18:30 UTC
    evening = datetime(2026, 12, 3, 18, 0, tzinfo=UTC).timestamp()
    assert kolkata(evening) == datetime(2026, 12, 3, 18, 30, tzinfo=UTC).timestamp()
    assert kolkata(kolkata(evening)) == kolkata(evening)  # a midnight is its own
    assert midnights("UTC")(evening) == datetime(2026, 12, 4, tzinfo=UTC).timestamp()


def test_a_calendar_day_spends_the_quota_again_after_midnight() -> None:
    """Greedy, reset at UTC midnight: the day's 2,400 before midnight, 2,400 more after it, and
    never more than 2,400 within one calendar day."""
    start = datetime(2026, 12, 3, 23, 0, tzinfo=UTC).timestamp()
    quota = Quota(2400, DAY, "greedy", midnights("UTC"))
    quota.apportion(TPS, len(TPS), offset=start)
    sent, now = [], 0.0
    while now < 2 * 3600:  # 23:00 to 01:00, ten calls a second
        if quota.wait(now) == 0:
            quota.charge(None, now)
            sent.append(start + now)
        now += 0.1
    midnight = datetime(2026, 12, 4, tzinfo=UTC).timestamp()
    assert len([t for t in sent if t < midnight]) == 2400
    assert len([t for t in sent if t >= midnight]) == 2400


def test_a_time_zone_must_exist() -> None:
    with pytest.raises(ValidationError, match="time zone name"):
        AccountSettings(access_key="a", secret_key="s", quota_reset="Mars/Olympus")
    kolkata = AccountSettings(access_key="a", secret_key="s", quota_reset="Asia/Kolkata")
    assert kolkata.quota_reset == "Asia/Kolkata"


def test_a_part_under_one_call_a_day_never_sends() -> None:
    quota = Quota(5, DAY, "greedy")
    quota.apportion(TPS, 6, offset=0.0)  # 5/6 of a call a day each
    assert quota.wait(0.0) == math.inf
    assert quota.left(0.0) == 0


def test_records_wait_for_the_quota_and_are_never_dead_lettered_across_a_restart() -> None:
    log = TopicLog()
    first = harness(quota=(Quota(5, 60.0, "greedy"), log))
    first.input.rebalances.append(("assigned", [("leads", 0)]))
    first.feed(*(record(i, f"k{i}", f"lead{i}@example.com") for i in range(8)))
    for _ in range(5):
        first.turn(20)
        first.calls.answer(ACCEPTED)
    first.turn(20)
    assert len(first.calls.sent) == 5  # the quota is spent: the others wait
    assert sorted(first.output.kinds().values()) == ["result"] * 5
    assert first.pipeline.snapshot.not_ready == ()  # still ready
    first.pipeline.request_stop()
    first.pipeline.run()
    assert log.flushes >= 1
    assert sum(log.counts.values()) == 5
    # a new process: the quota topic says the day's calls are spent
    second = harness(quota=(Quota(5, 60.0, "greedy"), log))
    second.input.rebalances.append(("assigned", [("leads", 0)]))
    second.feed(*(record(i, f"k{i}", f"lead{i}@example.com") for i in range(5, 8)))
    second.turn(50)
    assert second.calls.sent == []
    second.clock.advance(61.0)  # a day (and a slice) later
    second.turn(50)
    second.calls.answer(ACCEPTED)
    second.turn(20)
    assert len(second.calls.sent) == 3
    assert sorted(second.output.kinds().values()) == ["result"] * 3


LONDON = ZoneInfo("Europe/London")


def test_a_25_hour_calendar_day_is_read_back_whole_after_a_restart() -> None:
    """Europe/London, Sunday 25 October 2026, when the clocks go back: a day of 25 hours. Calls
    spent ten minutes after its midnight still count at 23:30 that day, 24 h 30 min later, in a
    new process that read the quota topic back: 40 calls left of 100, not 100."""
    midnight = datetime(2026, 10, 25, tzinfo=LONDON).timestamp()
    assert midnights("Europe/London")(midnight + 1) - midnight == 25 * 3600
    log = StampedLog()
    first = Quota(100, DAY, "greedy", midnights("Europe/London"))
    first.apportion(TPS[:1], 1, offset=midnight)  # the loop's time 0 is that midnight
    log.wall = midnight + 600
    for _ in range(60):
        first.charge(TPS[0], 600.0)
    Quotas({"a": first}, log).settle(Deadline.after(1.0))
    late = datetime(2026, 10, 25, 23, 30, tzinfo=LONDON).timestamp()
    assert late - midnight == 24.5 * 3600  # still the same calendar day
    second = Quota(100, DAY, "greedy", midnights("Europe/London"))
    Quotas({"a": second}, log).restore(TPS[:1], late)
    second.apportion(TPS[:1], 1, offset=late)
    assert second.left(0.0) == 40
    assert log.asked[-1] <= midnight - DAY / SLICES  # from a slice before the day began
    assert second.left(datetime(2026, 10, 26, tzinfo=LONDON).timestamp() - late) == 100


def test_a_rolling_day_is_read_back_from_a_day_and_a_slice_ago() -> None:
    """Without a calendar day, the read-back window is as it always was, however the clocks
    change: a day and a slice."""
    log = StampedLog()
    quotas = Quotas({"a": Quota(100, DAY, "greedy")}, log)
    for wall in (datetime(2026, 10, 25, 23, 30, tzinfo=LONDON).timestamp(), 1_700_000_000.0):
        quotas.restore(TPS, wall)
        assert log.asked[-1] == wall - DAY - DAY / SLICES


def test_a_calendar_day_reads_back_the_longer_of_its_day_and_a_rolling_day() -> None:
    """Just after midnight a rolling day reaches further back than the calendar day: the read
    starts at the earlier of the two (never later than a rolling day)."""
    log = StampedLog()
    quotas = Quotas({"a": Quota(100, DAY, "greedy", midnights("Asia/Kolkata"))}, log)
    just_after = datetime(2026, 12, 4, 0, 10, tzinfo=ZoneInfo("Asia/Kolkata")).timestamp()
    quotas.restore(TPS, just_after)
    assert log.asked[-1] == just_after - DAY - DAY / SLICES
