"""The Kafka input on the real broker: rebalance events reach the listener from inside a poll, and
a metadata request from there is refused with a clear error (confluent-kafka would abort the
process at the next callback of that poll)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pytest

from connector.adapters.consume import Source
from lsq_stack.kafka import create_topics, unique_name

if TYPE_CHECKING:
    from connector.flow.offsets import TopicPartitionKey
    from lsq_stack.broker import Broker


class _Listener:
    """Asks for the cluster's partition counts from inside each assignment."""

    def __init__(self) -> None:
        self.source: Source | None = None
        self.assigned_seen: list[TopicPartitionKey] = []

    def assigned(self, tps: list[TopicPartitionKey]) -> None:
        self.assigned_seen += tps
        assert self.source is not None
        self.source.topic_partitions()

    def revoked(self, tps: list[TopicPartitionKey]) -> None:
        pass

    def lost(self, tps: list[TopicPartitionKey]) -> None:
        pass


def test_metadata_request_inside_a_rebalance_callback_is_refused(broker: Broker) -> None:
    """The assignment reaches the listener inside poll(); its metadata request raises a clear
    RuntimeError out of that poll; outside callbacks the same request answers."""
    topic = unique_name("source")
    create_topics(broker.bootstrap_servers, {topic: 2})
    listener = _Listener()
    config = broker.consumer_config(unique_name("group")) | {"debug": "cgrp"}
    source = Source(config, [topic], listener, lambda _error: None)
    listener.source = source
    try:
        with pytest.raises(RuntimeError, match=r"topic_partitions\(\) called from a rebalance"):
            _poll_for(source, 60)
        assert sorted(listener.assigned_seen) == [(topic, 0), (topic, 1)]
        assert source.topic_partitions()[topic] == 2
    finally:
        source.close()


def _poll_for(source: Source, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        source.poll(10, 0.2)
