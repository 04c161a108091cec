"""The state of each key as a fingerprint (SPEC §12): the compact per-partition tables, their
memory per key, the loop skipping a record whose payload LeadSquared last accepted, and what a
later owner may trust of the state topic's records. Also the in-memory state topic the fingerprint
tests share (:class:`FakeStateTopic`)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from hypothesis import given
from hypothesis import strategies as st

from connector.adapters.state import StateTopic
from connector.flow.deadline import Deadline
from connector.flow.fingerprint_table import Fingerprints, Table, key_id, state_key
from connector.flow.fingerprints import FingerprintStore
from connector.flow.lanes import Job
from connector.flow.state_log import (
    OPEN,
    SEAL,
    Receipt,
    Replay,
    fingerprint_value,
    marker_key,
    marker_value,
    seal_value,
    topic_of,
)
from connector.records import Accepted, Payload, SourceRecord
from tests.unit.pipeline_fakes import ACCEPTED, harness

if TYPE_CHECKING:
    from collections.abc import Callable, Collection

    from connector.flow.offsets import TopicPartitionKey

Fate = Literal["deliver", "fail", "stall"]


def test_a_table_keeps_the_latest_fingerprint_of_each_key() -> None:
    table = Table(slots=8)
    for key in range(1, 200):
        table.put(key, key * 10)
    table.put(5, 1)
    assert len(table) == 199
    assert table.get(5) == 1
    assert table.get(199) == 1990
    assert table.get(1000) is None


@given(st.lists(st.tuples(st.booleans(), st.integers(1, 40)), max_size=300))
def test_a_table_forgets_keys_as_a_dict_would(steps: list[tuple[bool, int]]) -> None:
    """Puts and deletes of keys whose home slots collide (16 slots, keys 1..40): after each step
    every key reads back as a dict says, so a delete never hides a key behind it."""
    table, model = Table(slots=16), dict[int, int]()
    for put, key in steps:
        if put:
            table.put(key, key + 7)
            model[key] = key + 7
        else:
            assert table.delete(key) == (model.pop(key, None) is not None)
        assert len(table) == len(model)
        assert all(table.get(k) == model.get(k) for k in range(1, 41))


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
class _Write:
    tp: TopicPartitionKey
    marker: bytes | None
    key: bytes
    value: bytes | None
    fate: Fate


@dataclass
class FakeStateTopic:
    """A state topic in memory. ``logs`` is what the broker durably holds, per partition (a
    record's offset is its index). Writes wait in ``flight`` until delivered (by ``receipts`` and
    ``flush``), each as ``fate`` decided when it was written: delivered, failed (a receipt of a
    lost write), or stalled (it and the later ones of its partition stay in flight until
    :meth:`crash` loses them or a test changes their fate). ``refuse``: the producer refuses
    writes at once (BufferError). ``partial``: partitions whose read back stops half way. Owners
    in different processes share one broker's ``logs``, each with a fake of its own (its
    producer)."""

    partitions: int = 3
    logs: dict[int, list[tuple[bytes, bytes | None]]] = field(default_factory=dict)
    flight: list[_Write] = field(default_factory=list)
    outbox: list[Receipt] = field(default_factory=list)
    fate: Callable[[bytes | None], Fate] = lambda _marker: "deliver"
    refuse: bool = False
    partial: set[int] = field(default_factory=set)

    def read(self, tps: Collection[TopicPartitionKey]) -> dict[TopicPartitionKey, Replay]:
        out: dict[TopicPartitionKey, Replay] = {}
        for tp in tps:
            if tp[1] >= self.partitions:
                continue
            log = self.logs.get(tp[1], [])
            replay = out[tp] = Replay()
            read = log[: len(log) // 2] if tp[1] in self.partial else log
            for offset, (key, value) in enumerate(read):
                if (parsed := topic_of(key)) is not None and parsed[0] == tp[0]:
                    replay.add(offset, key, parsed[1], value)
            replay.complete = tp[1] not in self.partial
        return out

    def write(
        self, tp: TopicPartitionKey, key: bytes, value: bytes | None, marker: bytes | None = None
    ) -> None:
        if self.refuse:
            self.outbox.append(Receipt(tp, marker, written=False))
        else:
            self.flight.append(_Write(tp, marker, key, value, self.fate(marker)))

    def receipts(self) -> list[Receipt]:
        self.deliver()
        out, self.outbox = self.outbox, []
        return out

    def flush(self, deadline: Deadline) -> bool:  # noqa: ARG002 - nothing waits here
        self.deliver()
        return not self.flight

    def deliver(self) -> None:
        """Deliver what is in flight, in order per partition, as each write's fate says."""
        stalled: set[int] = set()
        kept = []
        for write in self.flight:
            if write.fate == "stall" or write.tp[1] in stalled:
                stalled.add(write.tp[1])
                kept.append(write)
            elif write.fate == "fail":
                self.outbox.append(Receipt(write.tp, write.marker, written=False))
            else:
                self.logs.setdefault(write.tp[1], []).append((write.key, write.value))
                self.outbox.append(Receipt(write.tp, write.marker, written=True))
        self.flight = kept

    def crash(self) -> None:
        """The process died: what was in flight is lost."""
        self.flight.clear()
        self.outbox.clear()


def job(key: str, value: str, offset: int = 0, partition: int = 0) -> Job:
    """A job of topic ``leads`` whose payload carries ``value`` for ``key``."""
    record = SourceRecord("leads", partition, offset, key.encode(), None)
    payload = Payload("capture", (), [{"Attribute": "FirstName", "Value": value}])
    return Job(record, "leads", "main", payload, 0.0)


def change(offset: int, key: str, name: str, partition: int = 0) -> SourceRecord:
    row = {"email": f"{key}@x.io", "name": name}
    value = json.dumps({"op": "u", "before": None, "after": row}).encode()
    return SourceRecord("leads", partition, offset, key.encode(), value)


def test_a_payload_already_accepted_for_its_key_is_skipped_and_remembered_across_restarts() -> None:
    """r0 is sent and its fingerprint written; r1, the same row again (no ``before``), is skipped
    as no_change; r2 changes it and is sent. After a graceful stop (the loop settles the memory),
    a new run reading the same state topic skips the unchanged row at once; a partition the
    state topic lacks is never skipped."""
    states = FakeStateTopic(partitions=1)
    memory = FingerprintStore(states)
    h = harness(memory=memory)
    h.input.rebalances.append(("assigned", [("leads", 0)]))
    h.feed(change(0, "k", "A"))
    h.turn()
    h.calls.answer(ACCEPTED)
    h.turn(2)
    assert [key for key, _ in states.logs[0]] == [state_key("leads", b"k")]
    h.feed(change(1, "k", "A"), change(2, "k", "B"))
    h.turn(2)
    assert h.output.kinds() == {0: "result"}  # r1 skipped (no outcome record), r2 out
    assert h.pipeline.tally.no_change == 1
    assert len(h.calls.sent) == 2
    h.calls.answer(ACCEPTED)
    h.turn(2)
    assert memory.settle(Deadline.after(5.0))  # what the loop does when it stops

    again = harness(memory=FingerprintStore(states))  # a restart: the same state topic
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
    states = FakeStateTopic()
    h = harness(memory=FingerprintStore(states))
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


# -- the state topic's records read back (SPEC §2.9: what a later owner may trust) ----------

TP = ("leads", 0)
KEY = state_key("leads", b"k")


def test_a_seal_proves_nothing_written_after_its_owners_read_by_anyone_else() -> None:
    """A late seal of an earlier owner, or an earlier owner's write that lands after the next
    owner read the partition (its producer delivers after its flush gave up), is not covered."""
    replay = Replay()
    replay.add(0, KEY, None, fingerprint_value(1, 7))
    replay.add(1, marker_key(OPEN, "leads"), OPEN, marker_value(8))  # owner 8 read to 0
    replay.add(2, KEY, None, fingerprint_value(2, 8))
    replay.add(3, marker_key(SEAL, "leads"), SEAL, seal_value(7, -1))  # owner 7's, late
    replay.complete = True
    assert not replay.trusted
    replay.add(4, KEY, None, fingerprint_value(3, 7))  # owner 7's write, late
    replay.add(5, marker_key(SEAL, "leads"), SEAL, seal_value(8, 0))
    assert not replay.trusted
    replay.add(6, KEY, None, fingerprint_value(4, 8))
    replay.add(7, marker_key(SEAL, "leads"), SEAL, seal_value(8, 0))
    assert not replay.trusted  # owner 7's write at 4 is still there, after owner 8's read
    clean = Replay()
    for offset, (key, marker, value) in enumerate(
        [
            (KEY, None, fingerprint_value(1, 7)),
            (marker_key(OPEN, "leads"), OPEN, marker_value(8)),
            (KEY, None, fingerprint_value(2, 8)),
            (marker_key(SEAL, "leads"), SEAL, seal_value(8, 0)),
        ]
    ):
        clean.add(offset, key, marker, value)
    clean.complete = True
    assert clean.trusted
    assert clean.table.get(key_id(KEY)) == 2


def test_values_of_earlier_releases_are_never_trusted_without_a_seal() -> None:
    replay = Replay()
    replay.add(0, KEY, None, (1).to_bytes(8, "big"))
    replay.complete = True
    assert not replay.trusted
    assert replay.kept


class _RefusingProducer:
    """A producer whose queue is full."""

    def produce(self, *_: object, **__: object) -> None:
        raise BufferError("Local: Queue full")

    def poll(self, _timeout: float) -> int:
        return 0


def test_a_write_the_producer_refuses_comes_back_as_lost() -> None:
    warnings: list[str] = []
    topic = StateTopic({}, {"bootstrap.servers": "127.0.0.1:9"}, "state", warnings.append)
    topic._producer = _RefusingProducer()  # type: ignore[assignment]  # a fake producer
    topic.write(TP, KEY, fingerprint_value(7, 1))
    topic.write(TP, marker_key(OPEN, "leads"), marker_value(1), OPEN)
    assert topic.receipts() == [Receipt(TP, None, False), Receipt(TP, OPEN, False)]
    assert "Queue full" in warnings[0]
