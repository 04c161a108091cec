"""Reads on assignment (SPEC §2.5, §8): outcomes, quota counts, fingerprints and unfinished checks
are read back while the partitions are assigned, inside the consumer's poll. Each read is bounded
by its own timeout, within half of the liveness timeout, and the loop counts as turning between
them, so /livez never fails while reads progress and the four together stay far within
max.poll.interval.ms."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from connector.commands.run import _read_on_assignment_s
from connector.flow.quota import Quota
from tests.unit.pipeline_fakes import Clock, FakeRecovery, harness
from tests.unit.test_quota import TopicLog

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping

    from connector.flow.offsets import TopicPartitionKey
    from connector.flow.quota import Spent

READ_S = 25.0  # what each slow read takes here


class SlowRecovery(FakeRecovery):
    clock: Clock | None = None

    def done(self, committed: Mapping[TopicPartitionKey, int]) -> dict[TopicPartitionKey, set[int]]:
        assert self.clock is not None
        self.clock.advance(READ_S)
        return super().done(committed)


class SlowLog(TopicLog):
    def __init__(self, clock: Clock) -> None:
        super().__init__()
        self.clock = clock

    def read(self, tps: Collection[TopicPartitionKey], since: float) -> dict[str, list[Spent]]:
        self.clock.advance(READ_S)
        return super().read(tps, since)


def test_the_loop_counts_as_turning_between_reads_on_assignment() -> None:
    """Two reads of 25 s each: /livez (60 s) sees the loop turn after each, never 50 s without."""
    clock, slow = Clock(), SlowRecovery({})
    slow.clock = clock
    h = harness(quota=(Quota(100, 86_400.0, "greedy"), SlowLog(clock)), recovery=slow, clock=clock)
    start = h.clock()
    h.pipeline.assigned([("leads", 0)])
    assert h.clock() - start >= 2 * READ_S
    assert h.clock() - h.pipeline.last_turn <= READ_S


@pytest.mark.parametrize(("liveness", "expected"), [(60.0, 30.0), (20.0, 10.0), (600.0, 30.0)])
def test_each_read_on_assignment_takes_at_most_half_the_liveness_timeout(
    liveness: float, expected: float
) -> None:
    assert _read_on_assignment_s(liveness) == expected
