"""The local broker really behaves like Kafka for what the connector relies on: topics with N
partitions, produce, consume in a group, commit, and resume at the committed offsets."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient

from lsq_stack.broker import Broker, TansuBroker
from lsq_stack.kafka import committed_offsets, create_topics, read_topic, unique_name


def _produce(bootstrap: str, topic: str, count: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for i in range(count):
        producer.produce(topic, key=f"key-{i % 17}".encode(), value=f"value-{i}".encode())
    assert producer.flush(15) == 0
    producer.close()


def test_create_topics_with_partition_counts(broker: Broker) -> None:
    """Topics are created with exactly the requested partition counts."""
    names = {unique_name("three"): 3, unique_name("one"): 1, unique_name("eight"): 8}
    create_topics(broker.bootstrap_servers, names)
    metadata = AdminClient({"bootstrap.servers": broker.bootstrap_servers}).list_topics(timeout=10)
    assert {name: len(metadata.topics[name].partitions) for name in names} == names


def test_produce_then_read_back_every_record_with_keys_and_headers(broker: Broker) -> None:
    """Every produced record is read back once, with its key, value and headers."""
    topic = unique_name("roundtrip")
    create_topics(broker.bootstrap_servers, {topic: 3})
    producer = Producer({"bootstrap.servers": broker.bootstrap_servers, "enable.idempotence": True})
    for i in range(30):
        producer.produce(topic, key=f"k{i}", value=f"v{i}", headers=[("h", f"{i}".encode())])
    assert producer.flush(15) == 0
    producer.close()
    records = read_topic(broker.bootstrap_servers, topic, 30)
    assert sorted(r.value or b"" for r in records) == sorted(f"v{i}".encode() for i in range(30))
    assert all(r.headers == (("h", (r.value or b"")[1:]),) for r in records)
    assert {r.partition for r in records} == {0, 1, 2}


def test_new_consumer_process_resumes_exactly_at_committed_offsets(broker: Broker) -> None:
    """A group member commits part of a topic; a new process in the group reads exactly the rest."""
    topic, group = unique_name("resume"), unique_name("group")
    create_topics(broker.bootstrap_servers, {topic: 3})
    _produce(broker.bootstrap_servers, topic, 300)

    first = Consumer(broker.consumer_config(group))
    first.subscribe([topic])
    taken: list[tuple[int, int]] = []
    while len(taken) < 120:
        for m in first.consume(20, 0.5):
            assert m.error() is None
            taken.append((m.partition() or 0, m.offset() or 0))
    positions = first.position(first.assignment())
    first.commit(offsets=positions, asynchronous=False)
    first.close()
    committed = committed_offsets(broker.bootstrap_servers, group, topic)
    assert committed == {tp.partition: tp.offset for tp in positions}

    probe = Path(__file__).with_name("resume_probe.py")
    config = json.dumps(broker.consumer_config(group))
    remaining = 300 - sum(max(0, offset) for offset in committed.values())
    out = subprocess.run(
        [sys.executable, str(probe), config, topic, str(remaining)],
        capture_output=True,
        text=True,
        check=True,
        timeout=90,
    ).stdout
    seen: dict[int, list[int]] = defaultdict(list)
    for partition, offset in json.loads(out):
        seen[partition].append(offset)
    assert sum(len(v) for v in seen.values()) == remaining
    for partition, offsets in seen.items():
        start = max(0, committed[partition])
        assert offsets == list(range(start, start + len(offsets))), f"partition {partition}"


def test_tansu_context_manager_starts_and_stops_by_pid() -> None:
    """TansuBroker answers while open; afterwards its process is gone and the port refuses."""
    with TansuBroker() as tansu:
        pid, port = tansu.pid, tansu.port
        topic = unique_name("ctx")
        create_topics(tansu.bootstrap_servers, {topic: 2})
        producer = Producer({"bootstrap.servers": tansu.bootstrap_servers})
        producer.produce(topic, value=b"x", partition=1)
        assert producer.flush(10) == 0
        producer.close()  # Tansu waits up to 5 s for connected clients when stopping
        assert [r.partition for r in read_topic(tansu.bootstrap_servers, topic, 1)] == [1]
    assert not Path(f"/proc/{pid}").exists()
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0
