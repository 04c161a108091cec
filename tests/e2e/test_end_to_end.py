"""The connector end to end (SPEC §2-6): a mixed CDC stream over several partitions, through a real
`lsq-sink run` process, into the LeadSquared simulator enforcing 25 calls per 5 s."""

from __future__ import annotations

import io
import time
from collections import defaultdict
from typing import TYPE_CHECKING, Any

import fastavro

from connector.flow.codec import RESULT_SCHEMA
from lsq_sim import AnswerClass, Simulator
from lsq_stack.kafka import committed_offsets, read_topic
from lsq_stack.scenario import build_scenario
from lsq_stack.sink import SinkProcess
from tests.e2e.conftest import config, produce

if TYPE_CHECKING:
    from pathlib import Path

    from lsq_sim import LoggedRequest
    from lsq_stack.broker import Broker
    from lsq_stack.registry import SchemaRegistryServer
    from tests.e2e.conftest import Topics

_RESULT = fastavro.parse_schema(RESULT_SCHEMA)


def _result(value: bytes | None) -> dict[str, Any]:
    assert value is not None
    assert value[0] == 0  # Confluent wire format: the schema is in the registry
    decoded = fastavro.schemaless_reader(io.BytesIO(value[5:]), _RESULT, None)
    assert isinstance(decoded, dict)
    return decoded


def test_mixed_stream_end_to_end(
    broker: Broker, registry: SchemaRegistryServer, topics: Topics, tmp_path: Path
) -> None:
    """Every record gets exactly its expected outcome: the simulator receives exactly the
    expected payloads, one results record per accepted record carries the RequestID the
    simulator issued, bad records are dead-lettered with the right headers, offsets are committed
    at the end of every partition, nothing is throttled, and each key's calls keep offset order."""
    scenario = build_scenario(leads=30, updates=20, activities=25, seed=11)
    with Simulator(_rejecting()) as sim:
        positions = produce(broker, registry, topics, scenario.events)
        data = config(broker, registry, sim, topics)
        data["routes"][0]["coalesce"] = "off"  # a call per change (tests/e2e/test_bulk.py: on)
        with SinkProcess(data, tmp_path) as sink:
            total = len(scenario.events)
            sink.wait_for(lambda: _outcomes(sink) == total, 120, f"{total} outcomes")
            assert sink.stop() == 0
        requests = sim.client.requests()
        stats = sim.client.stats().accounts[sim.account().name]

    by_position = {positions[i]: expected for i, expected in enumerate(scenario.expected)}
    results = read_topic(broker.bootstrap_servers, topics.results, scenario.count("accepted"))
    dlq = read_topic(broker.bootstrap_servers, topics.dead_letters, scenario.count("dead_lettered"))
    calls = {r.request_id: r for r in requests if r.request_id is not None}

    # one results record per accepted record, carrying the RequestID of exactly its call
    seen = set()
    for record in results:
        result = _result(record.value)
        position = (result["source_topic"], result["source_partition"], result["source_offset"])
        expected = by_position[position]
        assert expected.outcome == "accepted", position
        assert position not in seen
        seen.add(position)
        call = calls[result["request_id"]]
        assert (call.path, call.json_body()) == (expected.path, expected.body)
        assert call.query["accessKey"] == sim.account().access_key
        assert call.headers["x-api-key"] == sim.account().api_key
        assert (result["status"], result["http_status"], result["attempts"]) == ("accepted", 200, 1)
    assert len(seen) == scenario.count("accepted")

    # bad records: original bytes with Connect-compatible and lsq.* headers
    for record in dlq:
        headers = {k: v.decode() for k, v in record.headers}
        position = (
            headers["__connect.errors.topic"],
            int(headers["__connect.errors.partition"]),
            int(headers["__connect.errors.offset"]),
        )
        expected = by_position[position]
        assert (expected.outcome, expected.stage) == ("dead_lettered", headers["lsq.error.stage"])
        assert headers["__connect.errors.exception.message"]
        index = next(i for i, p in positions.items() if p == position)
        original = scenario.events[index]
        assert record.value == original.raw or original.raw is None
    stages = sorted(dict(r.headers)["lsq.error.stage"].decode() for r in dlq)
    assert stages == ["decode", "decode", "decode", "map", "map", "submit"]

    # committed offsets at the end of every partition
    ends: dict[str, dict[int, int]] = defaultdict(dict)
    for topic, partition, offset in positions.values():
        ends[topic][partition] = max(ends[topic].get(partition, 0), offset + 1)
    for topic, partitions in ends.items():
        assert committed_offsets(broker.bootstrap_servers, topics.group, topic) == partitions

    # never over the limit, never throttled; every call answered
    assert stats.answers.get(AnswerClass.THROTTLED, 0) == 0
    assert stats.max_calls_in_window <= 25
    assert stats.calls == scenario.count("accepted") + 1  # + the one LeadSquared rejects

    # per-key order: each lead's captures arrive in the order of its change events
    _assert_per_key_order(scenario, requests)
    assert sink.summary() == {
        "consumed": len(scenario.events),
        "accepted": scenario.count("accepted"),
        "dead_lettered": scenario.count("dead_lettered"),
        "skipped": scenario.count("skipped"),
        "recovered": 0,
        "ambiguous_retries": 0,
        "api_calls": stats.calls,
        "throttled": 0,
    }


def test_no_offset_is_committed_before_its_result_is_acknowledged(
    broker: Broker, registry: SchemaRegistryServer, topics: Topics, tmp_path: Path
) -> None:
    """Invariant 1: when results cannot be written (the producer cannot reach any broker), the
    records are consumed and called, yet no offset is ever committed, and the connector stops
    with a clear error instead of going on."""
    scenario = build_scenario(leads=5, updates=0, activities=0, seed=3)
    with Simulator(_rejecting()) as sim:
        produce(broker, registry, topics, scenario.events[:5])
        data = config(broker, registry, sim, topics)
        data["kafka"]["producer"] = {
            "bootstrap.servers": "127.0.0.1:1",
            "delivery.timeout.ms": 6000,
        }
        with SinkProcess(data, tmp_path) as sink:
            sink.wait_for(lambda: len(sim.client.requests()) == 5, 60, "5 calls to LeadSquared")
            for _ in range(3):  # while it runs, for several commit intervals
                assert _committed(broker, topics) == {}
                time.sleep(1)
            assert sink.wait_exit(60) == 1
    assert _committed(broker, topics) == {}
    assert "could not write the accepted record" in sink.tail()
    assert topics.results in sink.tail()


def _committed(broker: Broker, topics: Topics) -> dict[int, int]:
    offsets = committed_offsets(broker.bootstrap_servers, topics.group, topics.leads)
    return {p: o for p, o in offsets.items() if o >= 0}


def _outcomes(sink: SinkProcess) -> int:
    names = {"record.accepted", "record.dead_lettered", "record.skipped"}
    return sum(1 for e in sink.events() if e["event"] in names)


def _rejecting() -> Any:
    from lsq_stack.demo import rejecting_simulator  # noqa: PLC0415

    return rejecting_simulator()


def _assert_per_key_order(scenario: Any, requests: tuple[LoggedRequest, ...]) -> None:
    expected: dict[str, list[Any]] = defaultdict(list)
    for item in scenario.expected:
        if item.outcome == "accepted" and item.email is not None:
            expected[item.email].append(item.body)
    received: dict[str, list[Any]] = defaultdict(list)
    for call in requests:
        if call.path == "/lead/capture":
            body = call.json_body()
            assert isinstance(body, list)
            email = next(
                a["Value"] for a in body if isinstance(a, dict) and a["Attribute"] == "EmailAddress"
            )
            received[str(email)].append(body)
    updated = [email for email, bodies in expected.items() if len(bodies) > 1]
    assert updated, "the scenario must update some leads"
    for email, bodies in expected.items():
        assert received[email] == bodies, email
