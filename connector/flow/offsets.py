"""Which offsets may be committed (SPEC §2.1): per partition, the contiguous watermark of records
whose outcome is durable. An offset is committable only when every record consumed at or below it
in its partition is done; the watermark never passes a gap, whatever order outcomes arrive in."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

__all__ = ["OffsetTracker", "TopicPartitionKey"]

#: (topic, partition)
TopicPartitionKey = tuple[str, int]


@dataclass(slots=True)
class _Partition:
    pending: deque[int] = field(default_factory=deque)  # consumed, outcome not yet durable; ordered
    done: set[int] = field(default_factory=set)  # durable, but behind an earlier pending offset
    watermark: int | None = None  # next offset to commit (last contiguous done + 1)
    committed: int | None = None
    last_added: int = -1


class OffsetTracker:
    """Tracks consumed and done offsets for the partitions this member owns."""

    def __init__(self) -> None:
        self._parts: dict[TopicPartitionKey, _Partition] = {}

    def add(self, tp: TopicPartitionKey, offset: int) -> bool:
        """Note a consumed record; ``False`` (ignore it) if that offset was already seen."""
        part = self._parts.setdefault(tp, _Partition())
        if offset <= part.last_added:
            return False
        part.last_added = offset
        part.pending.append(offset)
        return True

    def done(self, tp: TopicPartitionKey, offset: int) -> None:
        """Note that the record at ``offset`` has a durable outcome."""
        part = self._parts.get(tp)
        if part is None or offset > part.last_added:
            return  # partition revoked meanwhile, or never consumed here: nothing to advance
        part.done.add(offset)
        while part.pending and part.pending[0] in part.done:
            finished = part.pending.popleft()
            part.done.discard(finished)
            part.watermark = finished + 1

    def committable(self) -> dict[TopicPartitionKey, int]:
        """Watermarks that moved past what was last committed."""
        return {
            tp: part.watermark
            for tp, part in self._parts.items()
            if part.watermark is not None and part.watermark != part.committed
        }

    def committed(self, positions: dict[TopicPartitionKey, int]) -> None:
        """Record that ``positions`` were committed."""
        for tp, offset in positions.items():
            if tp in self._parts:
                self._parts[tp].committed = offset

    def pending(self, tp: TopicPartitionKey | None = None) -> int:
        """Records consumed without a durable outcome yet (in one partition, or all)."""
        parts = (
            self._parts.values() if tp is None else [self._parts[tp]] if tp in self._parts else []
        )
        return sum(len(part.pending) for part in parts)

    def undone(self, tp: TopicPartitionKey) -> int:
        """Records of ``tp`` consumed whose outcome is not durable yet."""
        part = self._parts.get(tp)
        return 0 if part is None else sum(1 for offset in part.pending if offset not in part.done)

    def highest_done_beyond_watermark(self, tp: TopicPartitionKey) -> int | None:
        """The highest offset that is done but not yet committable because an earlier record
        is pending; ``None`` when the done records form a prefix (no gap)."""
        part = self._parts.get(tp)
        return max(part.done) if part is not None and part.done else None

    def partitions(self) -> list[TopicPartitionKey]:
        """Partitions with state here."""
        return list(self._parts)

    def forget(self, tps: list[TopicPartitionKey]) -> None:
        """Drop partitions no longer owned (after revoke or loss)."""
        for tp in tps:
            self._parts.pop(tp, None)
