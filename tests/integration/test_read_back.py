"""Completion tracking's two read-backs on the real broker (SPEC §13): a source record read back by
its offset, long after it was committed, for its dead letter (and ``None`` where there is none),
and the accepted calls whose follow-up is not written yet, from the results topic's headers."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import TYPE_CHECKING

from confluent_kafka import Producer

from connector.adapters.ledger import Ledger
from connector.adapters.originals import SourceReader
from connector.adapters.results import OutcomeWriter
from connector.flow.codec import ResultEncoder
from connector.flow.deadline import Deadline
from connector.records import Accepted, SourceRecord
from lsq_stack.kafka import create_topics, unique_name

if TYPE_CHECKING:
    from connector.flow.offsets import TopicPartitionKey
    from lsq_stack.broker import Broker

ACCEPTED = Accepted("capture", "leads", "main", "req-1", None, 1_700_000_000_000, 1, 200)


def test_a_source_record_is_read_back_by_its_offset_as_it_was(broker: Broker) -> None:
    topic = unique_name("source")
    create_topics(broker.bootstrap_servers, {topic: 2})
    producer = Producer({"bootstrap.servers": broker.bootstrap_servers})
    for i in range(5):
        headers: list[tuple[str, str | bytes | None]] = [("trace", f"t{i}".encode())]
        producer.produce(topic, f"v{i}".encode(), f"k{i}".encode(), partition=1, headers=headers)
    producer.flush(10)
    warnings: list[str] = []
    reader = SourceReader(broker.consumer_config(unique_name("group")), warnings.append, 5.0)
    try:
        for offset in (3, 0, 99):  # 99: past the end, as a record retention removed
            reader.fetch((topic, 1), offset)
        got: list[tuple[TopicPartitionKey, int, SourceRecord | None]] = []
        deadline = time.monotonic() + 30
        while len(got) < 3 and time.monotonic() < deadline:
            got += reader.fetched()
            time.sleep(0.05)
    finally:
        reader.close()
    found = {offset: record for _, offset, record in got}
    assert set(found) == {3, 0, 99}
    assert found[99] is None
    for offset in (3, 0):
        record = found[offset]
        assert record is not None
        assert (record.key, record.value, record.headers) == (
            f"k{offset}".encode(),
            f"v{offset}".encode(),
            (("trace", f"t{offset}".encode()),),
        )


def test_accepted_calls_without_a_follow_up_are_read_back(broker: Broker) -> None:
    results, letters = unique_name("results"), unique_name("dead-letters")
    create_topics(broker.bootstrap_servers, {results: 3, letters: 1})
    producer = {"bootstrap.servers": broker.bootstrap_servers, "acks": "all"}
    writer = OutcomeWriter(producer, results, letters, ResultEncoder(None))

    def source(offset: int, partition: int = 0) -> SourceRecord:
        return SourceRecord("src", partition, offset, b"k%d" % offset, b"v")

    for offset in range(4):
        writer.result(source(offset), replace(ACCEPTED, request_id=f"req-{offset}"), lambda: None)
    writer.result(source(9, 1), replace(ACCEPTED, request_id="req-other"), lambda: None)
    writer.result(source(5), replace(ACCEPTED, request_id=None, lead_id="L"), lambda: None)  # sync
    done = replace(ACCEPTED, request_id="req-1", status="succeeded", completed_at_ms=1)
    writer.result(source(1), done, lambda: None)  # a follow-up: req-1 is finished
    assert writer.flush(Deadline.after(10))
    writer.close(Deadline.after(5))
    warnings: list[str] = []
    ledger = Ledger(
        broker.consumer_config(unique_name("group")), (results, letters), 900.0, warnings.append
    )
    found = ledger.unfinished([("src", 0)], time.time() - 60)
    assert sorted((u.record.offset, u.request_id, u.attempts) for u in found) == [
        (0, "req-0", 1),
        (2, "req-2", 1),
        (3, "req-3", 1),
    ]
    assert all(u.record.key == b"k%d" % u.record.offset for u in found)
    assert all(abs(u.accepted_at - time.time()) < 60 for u in found)
    assert ledger.unfinished([("src", 0)], time.time() + 60) == []  # none since then
    assert warnings == []
