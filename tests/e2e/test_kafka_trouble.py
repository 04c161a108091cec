"""Kafka trouble (SPEC §6): the results topic cannot be written for a while, or for longer than the
producer's delivery timeout; the broker is not there when the connector starts. ``lsq-sink run``
runs as a real process. Broker faults come from librdkafka's mock cluster (``MockCluster``, reached
over TCP): the results topic answers Metadata with LEADER_NOT_AVAILABLE, a retriable error, so the
connector's producer holds its results and retries until the error clears or its delivery timeout
expires. The broker that is not there at start is Tansu, started late on the port the connector was
told to use."""

from __future__ import annotations

import contextlib
import io
import json
import socket
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import fastavro
import pytest
from confluent_kafka import KafkaError

from connector.flow.codec import RESULT_SCHEMA
from lsq_sim import SimConfig, Simulator
from lsq_stack.broker import TansuBroker
from lsq_stack.cdc import ACTIVITIES, LEADS, CdcWriter
from lsq_stack.demo import DEAD_LETTERS, RESULTS, rejecting_simulator, sink_config
from lsq_stack.kafka import committed_offsets, create_topics, read_topic, unique_name
from lsq_stack.mockcluster import MockCluster
from lsq_stack.scenario import build_scenario
from lsq_stack.sink import SinkProcess

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from lsq_sim import LoggedRequest
    from lsq_stack.cdc import Event
    from lsq_stack.registry import SchemaRegistryServer

_RESULT = fastavro.parse_schema(RESULT_SCHEMA)
_OUTCOMES = {"record.accepted", "record.dead_lettered", "record.skipped"}
#: A first group join on Tansu takes session.timeout.ms / 2; on the mock cluster, a member joining
#: after another left waits about session.timeout.ms: a short session keeps both quick.
_QUICK_GROUP = {"session.timeout.ms": 3000, "heartbeat.interval.ms": 500, "fetch.wait.max.ms": 25}
_TOPICS = {LEADS: 3, ACTIVITIES: 3, RESULTS: 3, DEAD_LETTERS: 1}
Position = tuple[str, int, int]


# -- the stack ---------------------------------------------------------------------------------


def _accepted_events(seed: int) -> list[Event]:
    """Twenty leads and activities, each with its own key, that LeadSquared accepts: until their
    results are written, none of them may be committed."""
    scenario = build_scenario(leads=10, updates=0, activities=10, seed=seed)
    return [
        event
        for event, expected in zip(scenario.events, scenario.expected, strict=True)
        if expected.outcome == "accepted"
    ]


def _produce(bootstrap: str, registry: SchemaRegistryServer, events: list[Event]) -> list[Position]:
    """Produce ``events``; the (topic, partition, offset) of each, in order."""
    with CdcWriter(bootstrap, registry.url) as writer:
        for event in events:
            writer.send(event)
        writer.flush()
    return [(events[i].topic, *writer.positions[i]) for i in range(len(events))]


def _config(bootstrap: str, registry: SchemaRegistryServer, sim: Simulator) -> dict[str, Any]:
    account = sim.account()
    data = sink_config(
        bootstrap,
        registry.url,
        sim.url,
        (account.access_key, account.secret_key, account.api_key),
        group=unique_name("lsq-sink"),
        consumer=dict(_QUICK_GROUP),
    )
    data["logging"]["progress_interval_seconds"] = 1  # a heartbeat of the loop to wait on
    data["flow"] = {"stall_warning_seconds": 2}
    return data


@contextlib.contextmanager
def _mock_with_unwritable_results(
    registry: SchemaRegistryServer, events: list[Event]
) -> Iterator[tuple[MockCluster, list[Position]]]:
    """A mock cluster holding ``events``, whose results topic cannot be written: its Metadata
    answers LEADER_NOT_AVAILABLE (set before any producer learns the topic's leaders)."""
    with MockCluster() as cluster:
        for name, partitions in _TOPICS.items():
            cluster.create_topic(name, partitions)
        cluster.set_topic_error(RESULTS, KafkaError.LEADER_NOT_AVAILABLE)
        yield cluster, _produce(cluster.bootstrap_servers, registry, events)


# -- reading what happened ---------------------------------------------------------------------


def _committed(bootstrap: str, group: str) -> dict[str, dict[int, int]]:
    """The group's committed offsets per input topic and partition (only those committed)."""
    out = {}
    for topic in (LEADS, ACTIVITIES):
        offsets = committed_offsets(bootstrap, group, topic)
        out[topic] = {p: o for p, o in offsets.items() if o >= 0}
    return out


def _ends(positions: list[Position]) -> dict[str, dict[int, int]]:
    """The end offset (last + 1) of every partition that holds one of ``positions``."""
    ends: dict[str, dict[int, int]] = defaultdict(dict)
    for topic, partition, offset in positions:
        ends[topic][partition] = max(ends[topic].get(partition, 0), offset + 1)
    return dict(ends)


def _outcomes(sink: SinkProcess) -> list[dict[str, Any]]:
    return [e for e in sink.events() if e["event"] in _OUTCOMES]


def _result(value: bytes | None) -> dict[str, Any]:
    assert value is not None
    decoded = fastavro.schemaless_reader(io.BytesIO(value[5:]), _RESULT, None)
    assert isinstance(decoded, dict)
    return decoded


def _results_by_position(bootstrap: str, count: int) -> dict[Position, dict[str, Any]]:
    """The results topic's ``count`` records by source position; fails on a duplicate."""
    out: dict[Position, dict[str, Any]] = {}
    for record in read_topic(bootstrap, RESULTS, count):
        result = _result(record.value)
        position = (result["source_topic"], result["source_partition"], result["source_offset"])
        assert position not in out, f"two results for {position}"
        out[position] = result
    return out


def _wait_progress_line(sink: SinkProcess) -> dict[str, Any]:
    """Wait for the next progress line (one a second: each is at least one commit interval on)."""
    seen = len(sink.events("progress"))
    sink.wait_for(lambda: len(sink.events("progress")) > seen, 60, "a progress line")
    return sink.events("progress")[-1]


# -- the results topic unwritable for a while ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Outage:
    """What one run through a passing results-topic outage showed (the connector not restarted)."""

    positions: list[Position]
    calls_during: tuple[LoggedRequest, ...]
    committed_during: list[dict[str, dict[int, int]]]
    progress_during: list[dict[str, Any]]
    log_during: list[dict[str, Any]]
    sink: SinkProcess
    exit_code: int
    committed_after: dict[str, dict[int, int]]
    results: dict[Position, dict[str, Any]]
    dead_letters: int
    calls: tuple[LoggedRequest, ...]


@pytest.fixture(scope="module")
def outage(registry: SchemaRegistryServer, tmp_path_factory: pytest.TempPathFactory) -> _Outage:
    """Run the connector while its results topic cannot be written: all records are consumed and
    called; three progress lines (three commit intervals) on, the fault is cleared; then wait
    until every record has its outcome and the commits reached the end of every partition."""
    events = _accepted_events(seed=31)
    workdir = tmp_path_factory.mktemp("outage")
    with (
        _mock_with_unwritable_results(registry, events) as (cluster, positions),
        Simulator(SimConfig()) as sim,
    ):
        bootstrap = cluster.bootstrap_servers
        data = _config(bootstrap, registry, sim)
        group = data["kafka"]["group_id"]
        with SinkProcess(data, workdir) as sink:
            sink.wait_for(lambda: len(sim.client.requests()) == len(events), 60, "every call")
            calls_during = sim.client.requests()
            progress, committed = [], []
            for _ in range(3):
                progress.append(_wait_progress_line(sink))
                committed.append(_committed(bootstrap, group))
            sink.wait_for(lambda: bool(sink.events("results.delayed")), 30, "results.delayed")
            log_during = sink.events()
            cluster.clear_topic_error(RESULTS)
            sink.wait_for(lambda: len(_outcomes(sink)) >= len(events), 60, "every outcome")
            ends = _ends(positions)
            sink.wait_for(lambda: _committed(bootstrap, group) == ends, 60, "commits at the ends")
            exit_code = sink.stop()
        return _Outage(
            positions=positions,
            calls_during=calls_during,
            committed_during=committed,
            progress_during=progress,
            log_during=log_during,
            sink=sink,
            exit_code=exit_code,
            committed_after=_committed(bootstrap, group),
            results=_results_by_position(bootstrap, len(events)),
            dead_letters=len(read_topic(bootstrap, DEAD_LETTERS, 0)),
            calls=sim.client.requests(),
        )


def test_nothing_is_committed_while_the_results_topic_cannot_be_written(outage: _Outage) -> None:
    """While results cannot be written, the connector still consumes every record and calls
    LeadSquared for each, but over several commit intervals no offset is committed: no record
    has a durable outcome."""
    bodies = sorted(call.body for call in outage.calls_during)
    assert len(bodies) == len(set(bodies)) == len(outage.positions)
    assert outage.committed_during == [{LEADS: {}, ACTIVITIES: {}}] * 3
    for line in outage.progress_during:
        assert (line["consumed"], line["accepted"], line["in_flight"]) == (20, 0, 20)


def test_a_results_topic_outage_is_reported_while_it_lasts(outage: _Outage) -> None:
    """While results cannot be written, the connector logs a warning or an error that names the
    results topic (an operator sees why commits stopped, before the delivery timeout), and says
    when they flow again."""
    problems = [
        event
        for event in outage.log_during
        if event.get("level") in {"warning", "error", "critical"} and RESULTS in json.dumps(event)
    ]
    assert problems
    assert outage.sink.events("results.delivered_again")


def test_once_the_results_topic_recovers_every_record_gets_one_outcome_and_commits_reach_the_end(
    outage: _Outage,
) -> None:
    """When the fault clears, the same connector process (never restarted) delivers the held
    results: exactly one results record per record, carrying the RequestID of its one call, no
    call repeated, no dead letter, and commits at the end of every partition; it then stops
    cleanly."""
    assert outage.exit_code == 0
    assert len(outage.sink.events("connector.started")) == 1
    assert set(outage.results) == set(outage.positions)
    request_ids = {call.request_id for call in outage.calls}
    assert len(outage.calls) == len(outage.positions)  # held results are not called again
    assert {r["request_id"] for r in outage.results.values()} == request_ids
    assert all(r["status"] == "accepted" for r in outage.results.values())
    accepted = {(e["topic"], e["partition"], e["offset"]) for e in _outcomes(outage.sink)}
    assert accepted == set(outage.positions)
    assert len(_outcomes(outage.sink)) == len(outage.positions)
    assert outage.dead_letters == 0
    assert outage.committed_after == _ends(outage.positions)


# -- the results topic unwritable for longer than the delivery timeout --------------------------


def test_results_unwritable_past_the_delivery_timeout_stops_and_a_restart_delivers_everything(
    registry: SchemaRegistryServer, tmp_path: Path
) -> None:
    """When results cannot be written within the producer's delivery.timeout.ms, the connector
    exits with code 1 and a message naming the results topic, having committed nothing. Started
    again after the fault is cleared, it resumes from the (absent) commits and gives every record
    exactly one results record. Calls may repeat (the outcome ledger reads nothing back: the mock
    cluster has no offsets_for_times, and no result was written), records may not go missing."""
    events = _accepted_events(seed=37)
    with (
        _mock_with_unwritable_results(registry, events) as (cluster, positions),
        Simulator(SimConfig()) as sim,
    ):
        bootstrap = cluster.bootstrap_servers
        data = _config(bootstrap, registry, sim)
        data["kafka"]["producer"] = {"delivery.timeout.ms": 3000}
        group = data["kafka"]["group_id"]
        first = SinkProcess(data, tmp_path, name="first").start()
        assert first.wait_exit(120) == 1
        calls_before = len(sim.client.requests())
        stopped = [line for line in first.tail(5).splitlines() if line.startswith("lsq-sink: ")]
        assert _committed(bootstrap, group) == {LEADS: {}, ACTIVITIES: {}}

        cluster.clear_topic_error(RESULTS)
        with SinkProcess(data, tmp_path, name="second") as second:
            second.wait_for(lambda: len(_outcomes(second)) >= len(events), 60, "every outcome")
            ends = _ends(positions)
            second.wait_for(lambda: _committed(bootstrap, group) == ends, 60, "commits at the ends")
            assert second.stop() == 0
        calls = sim.client.requests()
        results = _results_by_position(bootstrap, len(events))

    assert len(stopped) == 1, first.tail()
    assert stopped[0].startswith("lsq-sink: stopped: could not write the accepted record of ")
    assert f"to topic {RESULTS!r}" in stopped[0]
    assert "timed out" in stopped[0]
    assert calls_before >= 1  # the record whose result timed out was called
    assert set(results) == set(positions)
    assert {r["request_id"] for r in results.values()} <= {c.request_id for c in calls}
    assert len(calls) == calls_before + len(events)  # the restart calls every record once more
    assert second.summary() == {
        "consumed": len(events),
        "accepted": len(events),
        "dead_lettered": 0,
        "skipped": 0,
        "recovered": 0,
        "ambiguous_retries": 0,
        "api_calls": len(events),
        "throttled": 0,
    }


# -- the broker not there at start ---------------------------------------------------------------


def _unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_broker_unavailable_at_start_is_reported_and_waited_for(
    registry: SchemaRegistryServer, tmp_path: Path
) -> None:
    """Pointed at a broker that is not there yet, the connector logs an error naming the broker's
    address (not once per reconnection attempt) and keeps running (its loop goes on, it does not
    exit); once the broker is up and the topics hold a mixed CDC stream, it processes every
    record to its expected outcome and commits the end of every partition."""
    scenario = build_scenario(leads=8, updates=4, activities=6, seed=41)
    port = _unused_port()
    bootstrap = f"127.0.0.1:{port}"
    tansu = TansuBroker(tmp_path / "tansu.log", port=port)
    with contextlib.ExitStack() as stack:
        stack.callback(tansu.stop)  # after the connector has stopped
        sim = stack.enter_context(Simulator(rejecting_simulator()))
        data = _config(bootstrap, registry, sim)
        group = data["kafka"]["group_id"]
        sink = stack.enter_context(SinkProcess(data, tmp_path))
        sink.wait_for(
            lambda: any(bootstrap in e["error"] for e in sink.events("kafka.error")),
            60,
            "an error about the broker",
        )
        waiting = [_wait_progress_line(sink) for _ in range(2)]  # the loop goes on meanwhile
        assert sink.running()
        refused = [e for e in sink.events() if "Connection refused" in json.dumps(e)]
        assert 1 <= len(refused) <= 8, refused  # retried many times a second: held back

        tansu.start()
        create_topics(bootstrap, _TOPICS)
        positions = _produce(bootstrap, registry, scenario.events)
        total = len(scenario.events)
        sink.wait_for(lambda: len(_outcomes(sink)) >= total, 120, f"{total} outcomes")
        ends = _ends(positions)
        sink.wait_for(lambda: _committed(bootstrap, group) == ends, 60, "commits at the ends")
        assert sink.stop() == 0
        results = _results_by_position(bootstrap, scenario.count("accepted"))
        dead_letters = read_topic(bootstrap, DEAD_LETTERS, scenario.count("dead_lettered"))

    assert all(line["consumed"] == 0 for line in waiting)
    errors = [e["error"] for e in sink.events("kafka.error")]
    assert any(bootstrap in error and "failed" in error for error in errors), errors
    expected = dict(zip(positions, scenario.expected, strict=True))
    outcomes = {(e["topic"], e["partition"], e["offset"]): e["event"] for e in _outcomes(sink)}
    assert outcomes == {p: f"record.{x.outcome}" for p, x in expected.items()}
    assert len(_outcomes(sink)) == total
    assert all(expected[p].outcome == "accepted" for p in results)
    stages = sorted(dict(r.headers)["lsq.error.stage"].decode() for r in dead_letters)
    assert stages == sorted(x.stage or "" for x in scenario.expected if x.stage is not None)
