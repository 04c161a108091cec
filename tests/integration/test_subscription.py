"""A route's ``topic_pattern`` subscribes the connector to exactly the topics the route consumes, on
the real broker. The connector's Source, subscribed with ``Settings.subscription()`` (librdkafka
applies it as a regex to every topic in the cluster), receives records from ``<base>.leads`` only,
not from ``<base>.leads_archive`` or ``<base>.leadsx``. As a control, the same Source subscribed to
``"^" + body`` (no end anchor) receives all three, so the broker and librdkafka do apply the
regex, and the first assertion can fail."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from confluent_kafka import Producer

from connector.adapters.consume import Source
from connector.settings.model import Settings
from connector.settings.patterns import parse
from lsq_stack.kafka import create_topics, unique_name

if TYPE_CHECKING:
    from connector.flow.offsets import TopicPartitionKey
    from connector.records import SourceRecord
    from lsq_stack.broker import Broker

_SETTLE_SECONDS = 3.0  # after the wanted records: time for records of other topics to show up


class _Ignore:
    """A rebalance listener with nothing to do: this test reads records only."""

    def assigned(self, tps: list[TopicPartitionKey]) -> None:
        pass

    def revoked(self, tps: list[TopicPartitionKey]) -> None:
        pass

    def lost(self, tps: list[TopicPartitionKey]) -> None:
        pass


def _settings(broker: Broker, pattern: str) -> Settings:
    """The connector's settings with one route on ``pattern``, for this broker."""
    data: dict[str, Any] = {
        "kafka": {
            "bootstrap_servers": broker.bootstrap_servers,
            "group_id": unique_name("subscription"),
            # a regex subscription sees new topics at the next metadata refresh
            "consumer": {**broker.consumer_overrides, "topic.metadata.refresh.interval.ms": 1000},
        },
        "schema_registry": {"url": "http://registry.invalid:8081"},
        "accounts": {"default": {"access_key": "AK", "secret_key": "SK", "api_key": "API"}},
        "output": {"results_topic": "lsq.results", "dead_letter_topic": "lsq.dlq"},
        "routes": [
            {
                "name": "leads",
                "topic_pattern": pattern,
                "mapping": {"search_by": "EmailAddress", "lead": {"EmailAddress": "email"}},
            }
        ],
    }
    return Settings(**data)


def _receive(
    settings: Settings, subscription: list[str], wanted: set[str], timeout: float
) -> list[SourceRecord]:
    """Records read by the connector's Source until one of each ``wanted`` topic arrived, plus
    :data:`_SETTLE_SECONDS`."""
    errors: list[str] = []
    source = Source(settings.kafka.consumer_config(), subscription, _Ignore(), errors.append)
    records: list[SourceRecord] = []
    try:
        deadline, settled = time.monotonic() + timeout, float("inf")
        while time.monotonic() < min(deadline, settled):
            records += source.poll(100, 0.2)
            if settled == float("inf") and wanted <= {r.topic for r in records}:
                settled = time.monotonic() + _SETTLE_SECONDS
    finally:
        source.close()
    seen = {r.topic for r in records}
    assert wanted <= seen, f"missing {sorted(wanted - seen)} after {timeout} s; errors: {errors}"
    return records


def test_a_topic_pattern_subscribes_to_the_routed_topics_only(broker: Broker) -> None:
    """``<base>\\.leads`` reads ``<base>.leads`` and not the topics sharing its prefix; the
    subscription without the end anchor reads them too."""
    base = unique_name("crm")  # letters, digits and '-': literal in a topic pattern
    leads, archive, longer = f"{base}.leads", f"{base}.leads_archive", f"{base}.leadsx"
    create_topics(broker.bootstrap_servers, {leads: 1, archive: 1, longer: 1})
    producer = Producer({"bootstrap.servers": broker.bootstrap_servers})
    for topic in (leads, archive, longer):
        producer.produce(topic, key=topic.encode(), value=b"{}")
    assert producer.flush(10) == 0

    pattern = base + "\\.leads"
    settings = _settings(broker, pattern)
    assert settings.subscription() == [f"^({pattern})$"]
    routes = [settings.route_for(topic) for topic in (leads, archive, longer)]
    assert [route is not None for route in routes] == [True, False, False]

    routed = _receive(settings, settings.subscription(), {leads}, timeout=15)
    assert [(r.topic, r.key) for r in routed] == [(leads, leads.encode())]

    fresh = _settings(broker, pattern)  # a new group: nothing committed, nothing shared
    unanchored = _receive(fresh, ["^" + parse(pattern)], {leads, archive, longer}, timeout=15)
    assert sorted(r.topic for r in unanchored) == sorted([leads, archive, longer])
