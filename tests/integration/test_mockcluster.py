"""The ctypes wrapper around librdkafka's mock cluster: topics with exact partition counts, produce
and consume in a group through it, topic and request errors on and off, brokers down and up, and
a close that frees everything."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from confluent_kafka import Consumer, KafkaError, Message, Producer

from lsq_stack.mockcluster import ApiKey, MockCluster, MockClusterError

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def cluster() -> Iterator[MockCluster]:
    with MockCluster() as running:
        yield running


def _deliver(
    bootstrap: str, topic: str, count: int, **config: str | int
) -> list[KafkaError | None]:
    """Produce ``count`` records and wait for every delivery report; the error of each."""
    reports: list[KafkaError | None] = []

    def delivered(err: KafkaError | None, _: Message) -> None:
        reports.append(err)

    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 1, **config})
    for i in range(count):
        producer.produce(topic, f"value-{i}".encode(), f"key-{i}".encode(), on_delivery=delivered)
    assert producer.flush(30) == 0
    producer.close()
    return reports


def _codes(reports: list[KafkaError | None]) -> list[int]:
    return [KafkaError.NO_ERROR if err is None else err.code() for err in reports]


def test_topics_have_exact_partition_counts_and_records_go_through_a_group(
    cluster: MockCluster,
) -> None:
    """A created topic has exactly its partitions; records produced idempotently are all read
    back by a consumer group, which commits, and the commit reads back."""
    cluster.create_topic("three", 3)
    cluster.create_topic("one", 1)
    reports = _deliver(cluster.bootstrap_servers, "three", 30, **{"enable.idempotence": 1})
    assert _codes(reports) == [KafkaError.NO_ERROR] * 30
    consumer = Consumer(
        {
            "bootstrap.servers": cluster.bootstrap_servers,
            "group.id": "g",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    try:
        topics = consumer.list_topics(timeout=10).topics
        assert {name: len(topics[name].partitions) for name in ("three", "one")} == {
            "three": 3,
            "one": 1,
        }
        consumer.subscribe(["three"])
        values: list[bytes] = []
        for _ in range(300):
            if len(values) == 30:
                break
            values += [m.value() or b"" for m in consumer.consume(30, 0.1) if m.error() is None]
        consumer.commit(asynchronous=False)
        committed = consumer.committed(consumer.assignment(), timeout=10)
    finally:
        consumer.close()
    assert sorted(values) == sorted(f"value-{i}".encode() for i in range(30))
    assert sum(tp.offset for tp in committed) == 30


def test_creating_an_existing_topic_fails_with_the_broker_error(cluster: MockCluster) -> None:
    """The mock's answer is raised with its text."""
    cluster.create_topic("twice", 2)
    with pytest.raises(MockClusterError, match="already exists"):
        cluster.create_topic("twice", 2)


def test_a_topic_error_holds_records_until_it_is_cleared(cluster: MockCluster) -> None:
    """With LEADER_NOT_AVAILABLE set on a topic, its Metadata carries the error and a producer
    holds its records until its delivery timeout; once cleared, records are delivered."""
    cluster.create_topic("held", 2)
    cluster.set_topic_error("held", KafkaError.LEADER_NOT_AVAILABLE)
    probe = Consumer({"bootstrap.servers": cluster.bootstrap_servers, "group.id": "probe"})
    try:
        error = probe.list_topics("held", timeout=10).topics["held"].error
        assert error is not None
        assert error.code() == KafkaError.LEADER_NOT_AVAILABLE
        reports = _deliver(cluster.bootstrap_servers, "held", 3, **{"delivery.timeout.ms": 1000})
        assert _codes(reports) == [KafkaError._MSG_TIMED_OUT] * 3

        cluster.clear_topic_error("held")
        assert probe.list_topics("held", timeout=10).topics["held"].error is None
    finally:
        probe.close()
    assert _codes(_deliver(cluster.bootstrap_servers, "held", 3)) == [KafkaError.NO_ERROR] * 3


def test_pushed_request_errors_fail_requests_in_order_and_can_be_cleared(
    cluster: MockCluster,
) -> None:
    """Pushed Produce errors answer the next Produce requests (a producer without retries sees
    them), and clearing drops the ones not used yet."""
    cluster.create_topic("errors", 1)
    cluster.push_request_errors(ApiKey.PRODUCE, [KafkaError.NOT_ENOUGH_REPLICAS])
    once = _deliver(cluster.bootstrap_servers, "errors", 1, retries=0)
    assert _codes(once) == [KafkaError.NOT_ENOUGH_REPLICAS]

    cluster.push_request_errors(ApiKey.PRODUCE, [KafkaError.NOT_ENOUGH_REPLICAS] * 5)
    cluster.clear_request_errors(ApiKey.PRODUCE)
    assert _codes(_deliver(cluster.bootstrap_servers, "errors", 1, retries=0)) == [0]


def test_a_broker_down_holds_records_until_it_is_up_again(cluster: MockCluster) -> None:
    """With every broker down, records time out; once up, they are delivered."""
    cluster.create_topic("down", 1)
    cluster.broker_down()
    reports = _deliver(cluster.bootstrap_servers, "down", 2, **{"delivery.timeout.ms": 1000})
    assert _codes(reports) == [KafkaError._MSG_TIMED_OUT] * 2
    cluster.broker_up()
    assert _codes(_deliver(cluster.bootstrap_servers, "down", 2)) == [0, 0]


def _threads() -> int:
    """The process's OS threads (Linux's /proc: the stack runs on Linux)."""
    return sum(1 for _ in Path("/proc/self/task").iterdir())


def test_close_stops_listening_frees_its_threads_and_is_idempotent() -> None:
    """After close, the listeners are gone, librdkafka's threads have ended (the OS thread
    count is back where it was), a second close does nothing, and commands fail clearly."""
    before = _threads()
    cluster = MockCluster(brokers=3)
    cluster.create_topic("t", 3)
    ports = [int(address.rsplit(":", 1)[1]) for address in cluster.bootstrap_servers.split(",")]
    assert len(ports) == 3
    assert _threads() > before
    cluster.close()
    cluster.close()
    assert _threads() == before
    for port in ports:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
    with pytest.raises(MockClusterError, match="closed"):
        cluster.create_topic("after", 1)


def test_brokers_must_be_at_least_one() -> None:
    """A cluster without brokers is refused before anything is created."""
    with pytest.raises(ValueError, match="at least 1"):
        MockCluster(brokers=0)
