"""Commit after result (SPEC §2.1): the committable offset is the contiguous done watermark."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hypothesis import given
from hypothesis import strategies as st

from connector.flow.offsets import OffsetTracker

if TYPE_CHECKING:
    import random

TP = ("leads", 0)


def test_nothing_is_committable_until_the_first_record_is_done() -> None:
    """Consumed records alone commit nothing."""
    tracker = OffsetTracker()
    for offset in range(3):
        tracker.add(TP, offset)
    assert tracker.committable() == {}
    assert tracker.pending() == 3


def test_watermark_never_passes_a_gap() -> None:
    """Later records done before an earlier one do not move the watermark past it."""
    tracker = OffsetTracker()
    for offset in range(5):
        tracker.add(TP, offset)
    tracker.done(TP, 0)
    tracker.done(TP, 2)
    tracker.done(TP, 3)
    assert tracker.committable() == {TP: 1}
    tracker.done(TP, 1)
    assert tracker.committable() == {TP: 4}
    tracker.done(TP, 4)
    assert tracker.committable() == {TP: 5}
    assert tracker.pending() == 0


def test_highest_done_beyond_watermark_names_the_gap() -> None:
    """Done records behind a pending one are reported so a drain can fill the gap."""
    tracker = OffsetTracker()
    for offset in range(4):
        tracker.add(TP, offset)
    assert tracker.highest_done_beyond_watermark(TP) is None
    tracker.done(TP, 2)
    tracker.done(TP, 3)
    assert tracker.highest_done_beyond_watermark(TP) == 3
    tracker.done(TP, 0)
    tracker.done(TP, 1)
    assert tracker.highest_done_beyond_watermark(TP) is None
    assert tracker.partitions() == [TP]


def test_offset_gaps_in_the_log_are_fine() -> None:
    """Compacted or transactional logs skip offsets; the watermark follows consumed offsets."""
    tracker = OffsetTracker()
    for offset in (10, 13, 20):
        tracker.add(TP, offset)
    tracker.done(TP, 13)
    tracker.done(TP, 10)
    assert tracker.committable() == {TP: 14}
    tracker.done(TP, 20)
    assert tracker.committable() == {TP: 21}


def test_committed_positions_are_not_offered_again() -> None:
    """After a commit only partitions whose watermark moved again are committable."""
    tracker = OffsetTracker()
    other = ("leads", 1)
    for tp in (TP, other):
        tracker.add(tp, 0)
        tracker.add(tp, 1)
        tracker.done(tp, 0)
    tracker.committed(tracker.committable())
    assert tracker.committable() == {}
    tracker.done(other, 1)
    assert tracker.committable() == {other: 2}


def test_redelivered_offsets_are_ignored() -> None:
    """An offset at or below the last consumed one is reported as a duplicate."""
    tracker = OffsetTracker()
    assert tracker.add(TP, 5)
    assert not tracker.add(TP, 5)
    assert not tracker.add(TP, 3)
    assert tracker.pending(TP) == 1


def test_forgotten_partitions_ignore_late_outcomes() -> None:
    """After a revoke, outcomes for that partition change nothing."""
    tracker = OffsetTracker()
    tracker.add(TP, 0)
    tracker.forget([TP])
    tracker.done(TP, 0)
    assert tracker.committable() == {}
    assert tracker.pending(TP) == 0


@given(
    offsets=st.lists(st.integers(0, 10_000), min_size=1, max_size=80, unique=True),
    order=st.randoms(use_true_random=False),
    finished=st.integers(0, 80),
)
def test_watermark_is_one_past_the_longest_done_prefix(
    offsets: list[int], order: random.Random, finished: int
) -> None:
    """For any outcome order, the watermark is one past the last offset of the longest
    consumed prefix that is entirely done."""
    consumed = sorted(offsets)
    tracker = OffsetTracker()
    for offset in consumed:
        tracker.add(TP, offset)
    done = order.sample(consumed, min(finished, len(consumed)))
    for offset in done:
        tracker.done(TP, offset)
    prefix = 0
    while prefix < len(consumed) and consumed[prefix] in set(done):
        prefix += 1
    expected = {TP: consumed[prefix - 1] + 1} if prefix else {}
    assert tracker.committable() == expected
