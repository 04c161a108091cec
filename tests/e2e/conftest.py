"""End-to-end tier: ``lsq-sink run`` as a real process against the real local stack (broker,
schema registry, LeadSquared simulator), one fresh set of topics and one group per test."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from lsq_stack import trials
from lsq_stack.cdc import ACTIVITIES, LEADS, CdcWriter
from lsq_stack.demo import DEAD_LETTERS, RESULTS, sink_config
from lsq_stack.kafka import create_topics, unique_name
from lsq_stack.registry import SchemaRegistryServer

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from lsq_sim import Simulator
    from lsq_stack.broker import Broker
    from lsq_stack.cdc import Event


@pytest.fixture(scope="session")
def registry() -> Iterator[SchemaRegistryServer]:
    with SchemaRegistryServer() as server:
        yield server


@pytest.fixture
def stack(broker: Broker, registry: SchemaRegistryServer, tmp_path: Path) -> trials.Stack:
    """The broker and registry for the reliability trials, with a scratch directory."""
    return trials.Stack(broker, registry, tmp_path)


@dataclass
class Topics:
    """The per-test names of the scenario's topics (the demo's names plus a unique suffix)."""

    leads: str
    activities: str
    results: str
    dead_letters: str
    group: str

    def rename(self, topic: str) -> str:
        return {LEADS: self.leads, ACTIVITIES: self.activities}[topic]


@pytest.fixture
def topics(broker: Broker) -> Topics:
    suffix = unique_name("t")
    names = Topics(
        f"{LEADS}.{suffix}",
        f"{ACTIVITIES}.{suffix}",
        f"{RESULTS}.{suffix}",
        f"{DEAD_LETTERS}.{suffix}",
        f"lsq-sink-{suffix}",
    )
    create_topics(
        broker.bootstrap_servers,
        {names.leads: 3, names.activities: 3, names.results: 3, names.dead_letters: 1},
    )
    return names


def produce(
    broker: Broker, registry: SchemaRegistryServer, topics: Topics, events: list[Event]
) -> dict[int, tuple[str, int, int]]:
    """Produce events to the per-test topics; (topic, partition, offset) of each, by index."""
    with CdcWriter(broker.bootstrap_servers, registry.url) as writer:
        for event in events:
            writer.send(event, topics.rename(event.topic))
        writer.flush()
    return {i: (topics.rename(events[i].topic), *writer.positions[i]) for i in range(len(events))}


def config(
    broker: Broker,
    registry: SchemaRegistryServer,
    sim: Simulator,
    topics: Topics,
    **overrides: Any,
) -> dict[str, Any]:
    """The demo's configuration pointed at the per-test topics, with top-level overrides."""
    account = sim.account()
    data = sink_config(
        broker.bootstrap_servers,
        registry.url,
        sim.url,
        (account.access_key, account.secret_key, account.api_key),
        group=topics.group,
        consumer=dict(broker.consumer_overrides),
    )
    data["routes"][0]["topics"] = [topics.leads]
    data["routes"][1]["topics"] = [topics.activities]
    data["output"] = {"results_topic": topics.results, "dead_letter_topic": topics.dead_letters}
    return data | overrides
