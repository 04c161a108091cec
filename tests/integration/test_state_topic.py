"""The state topic on the real broker (SPEC §2.9, §12): fingerprints, tombstones and markers written
through :class:`StateTopic` are read back by the next owner's; a tombstone clears its key; a read
that does not reach a partition's end, or an owner that handed over without a seal, leaves the
next owner trusting nothing."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from connector.adapters.state import StateTopic
from connector.flow.deadline import Deadline
from connector.flow.fingerprint_table import key_id, state_key
from connector.flow.fingerprints import FingerprintStore
from connector.flow.lanes import Job
from connector.flow.state_log import OPEN, SEAL, fingerprint_value, marker_key, seal_value
from connector.records import Payload, SourceRecord
from lsq_stack.kafka import create_topics, read_all, unique_name

if TYPE_CHECKING:
    from lsq_stack.broker import Broker

LEADS = ("crm.public.leads", 1)


def _state_topic(broker: Broker, topic: str, timeout_s: float = 30.0) -> StateTopic:
    consumer = broker.consumer_config(unique_name("group"))
    producer: dict[str, Any] = {
        "bootstrap.servers": broker.bootstrap_servers,
        "enable.idempotence": True,
        "acks": "all",
    }
    return StateTopic(consumer, producer, topic, lambda _: None, timeout_s=timeout_s)


def _job(key: str, value: str) -> Job:
    record = SourceRecord(LEADS[0], LEADS[1], 0, key.encode(), None)
    payload = Payload("capture", (), [{"Attribute": "FirstName", "Value": value}])
    return Job(record, "leads", "default", payload, 0.0)


def test_a_tombstone_clears_its_key_when_the_partition_is_read_back(broker: Broker) -> None:
    topic = unique_name("lsq.state")
    create_topics(broker.bootstrap_servers, {topic: 2})
    states = _state_topic(broker, topic)
    k, j = state_key(LEADS[0], b"k"), state_key(LEADS[0], b"j")
    try:
        states.write(LEADS, k, fingerprint_value(11, 5))
        states.write(LEADS, j, fingerprint_value(12, 5))
        states.write(LEADS, k, None)
        states.write(LEADS, marker_key(SEAL, LEADS[0]), seal_value(5, -1), SEAL)
        assert states.flush(Deadline.after(20))
        assert [receipt.written for receipt in states.receipts()] == [True] * 4
        replay = _state_topic(broker, topic).read([LEADS, (LEADS[0], 0)])
    finally:
        states.close(Deadline.after(5))
    assert set(replay) == {LEADS, (LEADS[0], 0)}
    assert replay[LEADS].complete
    assert replay[LEADS].trusted
    assert replay[LEADS].table.get(key_id(k)) is None
    assert replay[LEADS].table.get(key_id(j)) == 12
    assert len(replay[(LEADS[0], 0)].table) == 0  # the other partition: nothing of this one


def test_the_next_owner_trusts_only_a_sealed_partition_read_back_to_its_end(broker: Broker) -> None:
    """An owner that accepted A and settled: the next owner skips A. Read back with no time to
    reach the end: nothing is trusted. An owner that handed over without settling: nothing is."""
    topic = unique_name("lsq.state")
    create_topics(broker.bootstrap_servers, {topic: 2})
    first_topic = _state_topic(broker, topic)
    try:
        first = FingerprintStore(first_topic)
        first.restore([LEADS])
        first.accepted(_job("k", "A"))
        assert first.settle(Deadline.after(20.0))
    finally:
        first_topic.close(Deadline.after(5))
    short = _state_topic(broker, topic, timeout_s=0.0)
    hurried = short.read([LEADS])[LEADS]  # a read that did not reach the end
    short.close(Deadline.after(5))
    assert not hurried.complete
    assert not hurried.trusted
    second_topic = _state_topic(broker, topic)
    try:
        second = FingerprintStore(second_topic)
        second.restore([LEADS])
        assert second.unchanged(_job("k", "A"))
        assert second_topic.flush(Deadline.after(20))
        assert not second.closed  # its open marker is acknowledged: calls may go out
        second.accepted(_job("k", "B"))
        assert second_topic.flush(Deadline.after(20))  # no settle: it stops without a seal
    finally:
        second_topic.close(Deadline.after(5))
    third_topic = _state_topic(broker, topic)
    third = FingerprintStore(third_topic)
    third.restore([LEADS])
    third_topic.close(Deadline.after(5))
    assert not third.unchanged(_job("k", "B"))
    assert not third.unchanged(_job("k", "A"))
    keys = [record.key for record in read_all(broker.bootstrap_servers, topic)]
    assert keys.count(marker_key(OPEN, LEADS[0])) == 1  # the second owner's (the first read none)
