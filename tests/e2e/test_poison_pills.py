"""No poison pill (SPEC §2.7) and the fleet as one client (§2.8), end to end: two `lsq-sink run`
replicas in one group share an account limited to 2 calls per 5 s (more replicas than the
budget's calls would allow under a share by partitions: they take turns), and their topic pattern
shares its prefix with other topics. The input holds records just under, at and over the
producer's size limit for their dead letters, a value and a key over a megabyte, envelopes whose
op is an array or a map, and leads LeadSquared rejects with MX exceptions that mention limits,
among good leads. Every record ends with exactly one outcome, the oversized dead letters lose
their value (then their key) with a header saying so, the prefix-sharing topics are never read,
neither process exits, and the simulator never sees more than 2 calls in any 5 s."""

from __future__ import annotations

import bisect
import io
import json
import random
from collections import Counter
from typing import TYPE_CHECKING, Any

import fastavro
from confluent_kafka import Producer
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient

from connector.errors import DecodeError
from connector.flow.codec import dead_letter, source_of
from connector.records import DeadLetter, SourceRecord
from connector.transform.decode import wire_schema_id
from lsq_sim import AnswerClass, FaultRule, Faults, RateLimit, SimConfig, Simulator
from lsq_stack.cdc import LEADS, CdcWriter, Event, envelope, lead_row
from lsq_stack.kafka import committed_offsets, create_topics, read_all
from lsq_stack.sink import SinkProcess
from tests.e2e.conftest import config

if TYPE_CHECKING:
    from pathlib import Path

    from lsq_stack.broker import Broker
    from lsq_stack.kafka import Received
    from lsq_stack.registry import SchemaRegistryServer
    from tests.e2e.conftest import Topics

LIMIT = 1_000_000  # the producer's message.max.bytes (librdkafka's default)
CALLS, WINDOW = 2, 5.0
SIZED = 2  # the partition the sized records go to, first, so that their offsets are known
ROWS = (*range(1, 7), 90, 91)  # lead rows: 6 accepted, 2 rejected (MX_LIMIT_TEXT)
MX_LIMIT_TEXT = {
    "lead90@example.com": (200, "MXInvalidInputException", "Notes exceeded the limit of 2000"),
    "lead91@example.com": (500, "MXInvalidFieldException", "Rate limit field is invalid"),
}


def _reason(value: bytes) -> str:
    try:
        wire_schema_id(value)
    except DecodeError as error:
        return error.reason
    raise AssertionError("the value was meant to be undecodable")


def _sized(topic: str, offset: int, total: int) -> bytes:
    """An undecodable value whose dead letter librdkafka counts as exactly ``total`` bytes."""
    value = b"\xff" * (total - 200_000)
    for _ in range(3):  # the reason does not depend on the length: settles at once
        record = SourceRecord(topic, SIZED, offset, b"sized", value)
        why = DeadLetter("decode", _reason(value), "DecodeError")
        value += b"\xff" * (total - dead_letter(record, why).size)
    assert dead_letter(SourceRecord(topic, SIZED, offset, b"sized", value), why).size == total
    return value


def _envelope_schema(op: Any) -> dict[str, Any]:
    row = {"type": "record", "name": "Row", "fields": [{"name": "email", "type": "string"}]}
    return {
        "type": "record",
        "name": "Envelope",
        "fields": [
            {"name": "before", "type": ["null", row]},
            {"name": "after", "type": ["null", "Row"]},
            {"name": "op", "type": op},
        ],
    }


_FLATTENED = {
    "type": "record",
    "name": "Flat",
    "fields": [
        {"name": "email", "type": "string"},
        {"name": "__op", "type": {"type": "map", "values": "string"}},
    ],
}


def _malformed(registry: str, topic: str) -> list[bytes]:
    """Envelopes whose op is an array or a map, and a flattened record whose __op is a map."""
    client = SchemaRegistryClient({"url": registry})
    out = []
    row = {"before": None, "after": {"email": "nobody@example.com"}}
    cases = [
        (_envelope_schema({"type": "array", "items": "string"}), row | {"op": ["c"]}),
        (_envelope_schema({"type": "map", "values": "int"}), row | {"op": {"c": 1}}),
        (_FLATTENED, {"email": "flat@example.com", "__op": {"op": "c"}}),
    ]
    try:
        for i, (schema, value) in enumerate(cases):
            schema_id = client.register_schema(
                f"{topic}.malformed{i}-value", Schema(json.dumps(schema), "AVRO")
            )
            body = io.BytesIO()
            fastavro.schemaless_writer(body, fastavro.parse_schema(schema), value)
            out.append(b"\x00" + schema_id.to_bytes(4, "big") + body.getvalue())
    finally:
        client.close()
    return out


def _produce(bootstrap: str, registry: str, leads: str, others: list[str]) -> list[bytes]:
    """The input: first, on partition SIZED, dead letters just under, at and over the producer's
    limit, a 1.5 MB value and a 1.1 MB key (the sized values are returned); then malformed
    envelopes; then the leads of ROWS, also written to the prefix-sharing ``others``."""
    producer = Producer({"bootstrap.servers": bootstrap, "message.max.bytes": 3_000_000})
    sized = [_sized(leads, offset, total) for offset, total in enumerate((LIMIT - 1, LIMIT))]
    sized += [_sized(leads, 2, LIMIT + 1), b"\xff" * 1_500_000]
    for value in sized:
        producer.produce(leads, value, b"sized", partition=SIZED)
    producer.produce(leads, b"\xff\x00", b"k" * 1_100_000, partition=SIZED)
    assert producer.flush(30) == 0
    for value in _malformed(registry, leads):
        producer.produce(leads, value, b"malformed")
    assert producer.flush(30) == 0
    rng = random.Random(8)  # noqa: S311 - reproducible sample rows
    with CdcWriter(bootstrap, registry) as writer:
        for i in ROWS:
            row = lead_row(i, rng)
            event = Event(LEADS, row["id"], envelope("leads", "c", None, row, ts_ms=0))
            for topic in (leads, *others):
                writer.send(event, topic)
        writer.flush()
    return sized


def _simulator() -> Simulator:
    """An account of 2 calls per 5 s (strict sliding window) rejecting two leads with MX
    exceptions whose text mentions limits."""
    rules = tuple(
        FaultRule(
            body_contains=f'"{email}"',
            status=status,
            body={"Status": "Error", "ExceptionType": kind, "ExceptionMessage": text},
        )
        for email, (status, kind, text) in MX_LIMIT_TEXT.items()
    )
    limit = RateLimit(calls=CALLS, window_s=WINDOW)
    return Simulator(SimConfig(rate_limit=limit, faults=Faults(rules=rules)))


def test_poison_pills_never_stop_two_replicas_sharing_a_tiny_budget(
    broker: Broker, registry: SchemaRegistryServer, topics: Topics, tmp_path: Path
) -> None:
    """Every record gets exactly its outcome, both replicas keep running and stop cleanly,
    commits reach the end, the prefix-sharing topics are never read, and the two replicas
    together never exceed 2 calls in any 5 s (nor are they throttled)."""
    bootstrap, leads = broker.bootstrap_servers, topics.leads
    others = [f"{leads}_archive", f"{leads}.v2"]
    create_topics(bootstrap, dict.fromkeys(others, 1))
    sized = _produce(bootstrap, registry.url, leads, others)
    total = len(sized) + 1 + 3 + len(ROWS)
    with _simulator() as sim:
        data = config(broker, registry, sim, topics)
        data["accounts"]["default"]["rate_limit"] = {"calls": CALLS, "window_seconds": WINDOW}
        route = {k: v for k, v in data["routes"][0].items() if k != "topics"}
        data["routes"] = [route | {"topic_pattern": leads.replace(".", r"\.")}]
        sinks = [SinkProcess(data, tmp_path, name=f"replica-{n}").start() for n in "ab"]
        try:
            sinks[0].wait_for(lambda: _logged(sinks) >= total, 240, f"{total} outcomes")
            assert all(sink.running() for sink in sinks), [s.tail() for s in sinks]
        finally:
            codes = [sink.stop() for sink in sinks]
        calls = sim.client.requests()
        stats = sim.client.stats().accounts[sim.account().name]
    assert codes == [0, 0], [s.tail() for s in sinks]

    outcomes = _outcomes(bootstrap, topics)
    assert set(outcomes) == {(leads, p, o) for p, o in _positions(bootstrap, leads)}
    assert Counter(len(kinds) for kinds in outcomes.values()) == Counter({1: total})
    assert sum(1 for kinds in outcomes.values() if kinds == ["result"]) == len(ROWS) - 2
    dead = {source_of(dict(r.headers)): r for r in read_all(bootstrap, topics.dead_letters)}
    _check_sized(dead, leads, sized)
    headers = [dict(r.headers) for r in dead.values()]
    stages = Counter(h["lsq.error.stage"] for h in headers)
    assert stages == Counter({b"decode": 5, b"unwrap": 3, b"submit": 2})
    assert sorted(
        h["lsq.exception.type"] for h in headers if h["lsq.error.stage"] == b"submit"
    ) == [
        b"MXInvalidFieldException",
        b"MXInvalidInputException",
    ]
    committed = committed_offsets(bootstrap, topics.group, leads)
    assert committed == {p: o + 1 for p, o in _ends(bootstrap, leads).items()}
    for other in others:
        assert all(o < 0 for o in committed_offsets(bootstrap, topics.group, other).values())
    times = sorted(c.time for c in calls)
    assert len(times) == len(ROWS)
    most = max(bisect.bisect_right(times, t + WINDOW) - i for i, t in enumerate(times))
    assert most <= CALLS, times
    assert stats.max_calls_in_window <= CALLS
    assert stats.answers.get(AnswerClass.THROTTLED, 0) == 0


def _check_sized(dead: dict[Any, Received], topic: str, sized: list[bytes]) -> None:
    """Under and at the limit: whole; over it: without the value; the huge key: without both."""
    for offset, value in enumerate(sized):
        received = dead[(topic, SIZED, offset)]
        headers = dict(received.headers)
        assert received.key == b"sized"
        if offset < 2:
            assert received.value == value
            assert "lsq.value.omitted" not in headers
        else:
            assert received.value is None
            assert headers["lsq.value.omitted"] == str(len(value)).encode()
    huge_key = dead[(topic, SIZED, len(sized))]
    assert (huge_key.key, huge_key.value) == (None, None)
    headers = dict(huge_key.headers)
    assert (headers["lsq.key.omitted"], headers["lsq.value.omitted"]) == (b"1100000", b"2")


def _outcomes(bootstrap: str, topics: Topics) -> dict[tuple[str, int, int], list[str]]:
    found: dict[tuple[str, int, int], list[str]] = {}
    for topic, kind in ((topics.results, "result"), (topics.dead_letters, "dead_letter")):
        for record in read_all(bootstrap, topic):
            source = source_of(dict(record.headers))
            assert source is not None, record.headers
            found.setdefault(source, []).append(kind)
    return found


def _positions(bootstrap: str, topic: str) -> list[tuple[int, int]]:
    return [(r.partition, r.offset) for r in read_all(bootstrap, topic)]


def _ends(bootstrap: str, topic: str) -> dict[int, int]:
    ends: dict[int, int] = {}
    for partition, offset in _positions(bootstrap, topic):
        ends[partition] = max(ends.get(partition, -1), offset)
    return ends


def _logged(sinks: list[SinkProcess]) -> int:
    names = {"record.accepted", "record.dead_lettered", "record.skipped", "record.recovered"}
    return sum(1 for sink in sinks for event in sink.events() if event["event"] in names)
