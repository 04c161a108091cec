"""The state of each key as a fingerprint (SPEC §12): the compact per-partition tables, their
memory per key, and the loop skipping a record whose payload LeadSquared last accepted."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from connector.flow.fingerprints import Fingerprints, Memory, Table, key_id, state_key
from connector.records import Accepted, SourceRecord
from tests.unit.pipeline_fakes import ACCEPTED, harness

if TYPE_CHECKING:
    from collections.abc import Collection

    from connector.flow.offsets import TopicPartitionKey


def test_a_table_keeps_the_latest_fingerprint_of_each_key() -> None:
    table = Table(slots=8)
    for key in range(1, 200):
        table.put(key, key * 10)
    table.put(5, 1)
    assert len(table) == 199
    assert table.get(5) == 1
    assert table.get(199) == 1990
    assert table.get(1000) is None


def test_a_million_keys_take_at_most_64_bytes_each() -> None:
    """Two arrays of 64-bit integers at most 3/4 full: 16 bytes over the load, and no Python
    object per key (the issue's bound is 64 bytes of process memory per key)."""
    prints = Fingerprints()
    tp = ("leads", 0)
    prints.load(tp, ((key_id(str(i).encode()), i) for i in range(1_000_000)))
    assert len(prints) == 1_000_000
    assert prints.nbytes / len(prints) <= 64
    assert prints.get(tp, b"x") is None


@dataclass
class FakeStates:
    """A state topic in memory: records per partition, in order; ``partitions`` it has."""

    partitions: int = 3
    records: dict[int, list[tuple[bytes, int]]] = field(default_factory=dict)

    def read(
        self, tps: Collection[TopicPartitionKey]
    ) -> dict[TopicPartitionKey, list[tuple[int, int]]]:
        prefix = {tp: tp[0].encode() + b"\x00" for tp in tps if tp[1] < self.partitions}
        return {
            tp: [(key_id(k), v) for k, v in self.records.get(tp[1], []) if k.startswith(p)]
            for tp, p in prefix.items()
        }

    def write(self, tp: TopicPartitionKey, key: bytes, fingerprint: int) -> None:
        self.records.setdefault(tp[1], []).append((key, fingerprint))


def change(offset: int, key: str, name: str, partition: int = 0) -> SourceRecord:
    row = {"email": f"{key}@x.io", "name": name}
    value = json.dumps({"op": "u", "before": None, "after": row}).encode()
    return SourceRecord("leads", partition, offset, key.encode(), value)


def test_a_payload_already_accepted_for_its_key_is_skipped_and_remembered_across_restarts() -> None:
    """r0 is sent and its fingerprint written; r1, the same row again (no ``before``), is skipped
    as no_change; r2 changes it and is sent. A new run reading the same state topic skips the
    unchanged row at once; a partition the state topic lacks is never skipped."""
    states = FakeStates(partitions=1)
    h = harness(memory=Memory(states))
    h.input.rebalances.append(("assigned", [("leads", 0)]))
    h.feed(change(0, "k", "A"))
    h.turn()
    h.calls.answer(ACCEPTED)
    h.turn(2)
    assert [key for key, _ in states.records[0]] == [state_key("leads", b"k")]
    h.feed(change(1, "k", "A"), change(2, "k", "B"))
    h.turn(2)
    assert h.output.kinds() == {0: "result"}  # r1 skipped (no outcome record), r2 out
    assert h.pipeline.tally.no_change == 1
    assert len(h.calls.sent) == 2
    h.calls.answer(ACCEPTED)
    h.turn(2)

    again = harness(memory=Memory(states))  # a restart: the same state topic
    again.input.rebalances.append(("assigned", [("leads", 0), ("leads", 1)]))
    again.feed(change(3, "k", "B"), change(4, "k", "A"), change(0, "p1", "A", partition=1))
    again.turn(2)
    sent = [s.request.body[1]["Value"] for s in again.calls.sent]  # type: ignore[index]
    assert sent == ["A", "A"]  # r4 (changed since) and partition 1's record; r3 skipped
    assert again.pipeline.tally.no_change == 1
    again.calls.answer(ACCEPTED)
    again.turn(2)
    results = [w for w in again.output.written if isinstance(w.data, Accepted)]
    assert sorted((w.record.partition, w.record.offset) for w in results) == [(0, 4), (1, 0)]


def test_a_change_waiting_behind_its_key_is_never_skipped() -> None:
    """With a call of the key out, the key's state is not known yet: the same payload again is
    queued (it may coalesce), never skipped."""
    states = FakeStates()
    h = harness(memory=Memory(states))
    h.input.rebalances.append(("assigned", [("leads", 0)]))
    h.feed(change(0, "k", "A"))
    h.turn()
    h.feed(change(1, "k", "A"))
    h.turn()
    h.calls.answer(ACCEPTED)
    h.turn(2)
    h.calls.answer(ACCEPTED)
    h.turn(2)
    assert h.output.kinds() == {0: "result", 1: "result"}
    assert h.pipeline.tally.no_change == 0
