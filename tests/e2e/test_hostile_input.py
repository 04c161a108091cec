"""Hostile input end to end: a seeded corpus of about 100 hostile records (random bytes, JSON, wrong
magic bytes, unknown schema ids, truncated and corrupted Avro, invalid UTF-8, a 900 kB blob,
values that are no record, broken envelopes, rows with nothing to identify the lead) interleaved
with about 50 good Debezium lead events, some of them on the same keys, through a real
``lsq-sink run`` process. Every good record is accepted with exactly the payload it gets without
hostile neighbours, every hostile one is in the dead-letter topic unchanged with the Connect
headers and a precise reason, nothing is lost, every partition is committed to its end, and the
process exits 0 on SIGTERM."""

from __future__ import annotations

import io
import json
import random
import struct
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import fastavro
from confluent_kafka import Producer
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient

from connector.flow.codec import RESULT_SCHEMA
from lsq_sim import RateLimit, SimConfig, Simulator
from lsq_stack.cdc import LEADS, CdcWriter, Event, envelope, lead_row, schema_text
from lsq_stack.kafka import committed_offsets, read_topic
from lsq_stack.scenario import expected_capture
from lsq_stack.sink import SinkProcess
from tests.e2e.conftest import config

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from lsq_stack.broker import Broker
    from lsq_stack.kafka import Received
    from lsq_stack.registry import SchemaRegistryServer
    from tests.e2e.conftest import Topics

SEED = 20_260_417
_RESULT = fastavro.parse_schema(RESULT_SCHEMA)
_LEAD_ENVELOPE = fastavro.parse_schema(json.loads(schema_text("crm.public.leads-value")))
_LEAD_KEY = fastavro.parse_schema(json.loads(schema_text("crm.public.leads-key")))
#: Names and cities that broke encoders before: combining marks, bidi overrides, astral planes,
#: NUL and other control characters, a BOM, a line separator, a noncharacter.
UNICODE = [
    "Zoë",
    "Łukasz",
    "王秀英",
    "أحمد",
    "e\u0301\u0301",
    "\u202eevil\u202c",
    "\U0001f600\U0001f9d1\u200d\U0001f4bb",
    "nul\x00byte",
    "\ufeffbom",
    "line\u2028sep",
    "\uffff",
    "tab\tand\nnewline",
    "' OR 1=1; --",
    "{first_name}",
]


@dataclass(frozen=True, slots=True)
class Expect:
    """What one produced record must get: accepted with ``body``, or dead-lettered at ``stage``
    with ``fragment`` in its reason, or skipped."""

    outcome: str
    body: Any = None
    stage: str | None = None
    fragment: str = ""
    email: str | None = None


@dataclass
class Corpus:
    events: list[Event]
    expected: list[Expect]

    def add(self, event: Event, expect: Expect) -> None:
        self.events.append(event)
        self.expected.append(expect)

    def count(self, outcome: str) -> int:
        return sum(1 for e in self.expected if e.outcome == outcome)


def _wire(schema_id: int, body: bytes) -> bytes:
    return b"\x00" + struct.pack(">I", schema_id) + body


def _encode(schema_id: int, value: dict[str, Any]) -> bytes:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, _LEAD_ENVELOPE, value)
    return _wire(schema_id, out.getvalue())


class _Builder:
    """Builds the corpus; ``lead_id`` and ``string_id`` are the registry ids of the leads
    envelope schema and of a schema whose values are bare strings."""

    def __init__(self, lead_id: int, string_id: int) -> None:
        self.rng = random.Random(SEED)  # noqa: S311 - a reproducible corpus, not secrets
        self.lead_id, self.string_id = lead_id, string_id
        self.corpus = Corpus([], [])
        self.rows: dict[int, dict[str, Any]] = {}
        self.ts = 1_793_000_000_000

    def envelope(self, op: str, before: Any, after: Any) -> dict[str, Any]:
        self.ts += 1000
        return envelope("leads", op, before, after, ts_ms=self.ts)

    def good(self, key: int) -> None:
        """A create (or an update of a lead created before) with unicode of every kind."""
        before = self.rows.get(key)
        changes: dict[str, Any] = {
            "first_name": self.rng.choice(UNICODE),
            "city": self.rng.choice([*UNICODE, None]),
        }
        if self.rng.random() < 0.2:  # nulls in every field that may be null
            changes |= dict.fromkeys(("first_name", "last_name", "company", "city", "phone"))
            changes |= dict.fromkeys(("kyc_status", "kyc_document", "lifetime_value"))
            changes |= {"marketing_opt_in": None, "updated_at": None}
        row = lead_row(key, self.rng) | changes if before is None else before | changes
        self.rows[key] = row
        value = self.envelope("c" if before is None else "u", before, row)
        expect = Expect("accepted", body=expected_capture(row), email=row["email"])
        self.corpus.add(Event(LEADS, key, value), expect)

    def huge_good(self, key: int) -> None:
        """A good lead with a company name of 900 kB (the producer's limit is 1 MB)."""
        row = lead_row(key, self.rng, company="Ω" * 450_000)
        self.rows[key] = row
        expect = Expect("accepted", body=expected_capture(row), email=row["email"])
        self.corpus.add(Event(LEADS, key, self.envelope("c", None, row)), expect)

    def hostile(self, key: int, kind: str) -> None:
        valid = _encode(self.lead_id, self.envelope("c", None, lead_row(key, self.rng)))
        value, stage, fragment = _HOSTILE[kind](self, key, valid)
        expect = Expect("dead_lettered", None, stage, fragment)
        self.corpus.add(Event(LEADS, key, raw=value), expect)


#: How each kind of hostile record is made from a valid one: (value, stage, reason fragment).
Made = tuple[bytes, str, str]


def _random(b: _Builder, _key: int, _valid: bytes) -> Made:
    value = bytes([b.rng.randrange(1, 256)]) + b.rng.randbytes(b.rng.randrange(4, 200))
    return value, "decode", f"magic byte 0x{value[0]:02x} is not 0"


def _json(_b: _Builder, key: int, _valid: bytes) -> Made:
    value = json.dumps({"email": f"json{key}@example.com", "op": "c"}).encode()
    return value, "decode", "magic byte 0x7b is not 0 (not Confluent wire format; is it JSON?)"


def _short(b: _Builder, _key: int, _valid: bytes) -> Made:
    value = b.rng.randbytes(b.rng.randrange(1, 5))
    return value, "decode", "shorter than the 5-byte wire-format header"


def _magic(b: _Builder, _key: int, valid: bytes) -> Made:
    value = bytes([b.rng.randrange(1, 256)]) + valid[1:]
    return value, "decode", f"magic byte 0x{value[0]:02x} is not 0"


def _unknown_id(b: _Builder, _key: int, valid: bytes) -> Made:
    schema_id = 900_000 + b.rng.randrange(100_000)
    return _wire(schema_id, valid[5:]), "decode", f"schema id {schema_id} is not in the schema"


def _truncated(b: _Builder, _key: int, valid: bytes) -> Made:
    value = valid[: b.rng.randrange(5, len(valid))]
    return value, "decode", f"Avro body does not match writer schema {b.lead_id}"


def _trailing(b: _Builder, _key: int, valid: bytes) -> Made:
    extra = b.rng.randbytes(b.rng.randrange(1, 20))
    return valid + extra, "decode", f"{len(extra)} trailing bytes after the Avro record"


def _utf8(b: _Builder, key: int, _valid: bytes) -> Made:
    row = lead_row(key, b.rng, first_name="\u2603")
    marked = _encode(b.lead_id, b.envelope("c", None, row))
    value = marked.replace("\u2603".encode(), b"\xed\xa0\x80", 1)  # a UTF-16 surrogate
    return value, "decode", "UnicodeDecodeError: 'utf-8' codec can't decode"


def _union(b: _Builder, _key: int, valid: bytes) -> Made:
    value = _wire(b.lead_id, b"\x7e" + valid[6:])  # the 'before' union index 63: no such branch
    return value, "decode", f"Avro body does not match writer schema {b.lead_id}"


def _string(b: _Builder, _key: int, _valid: bytes) -> Made:
    text = b.rng.choice(UNICODE).encode()
    value = _wire(b.string_id, bytes([len(text) * 2]) + text)  # an Avro string, not a record
    return value, "unwrap", "expected a record, got str"


def _op(b: _Builder, key: int, _valid: bytes) -> Made:
    value = _encode(b.lead_id, b.envelope("x", None, lead_row(key, b.rng)))
    return value, "unwrap", "unknown op 'x'"


def _no_after(b: _Builder, key: int, _valid: bytes) -> Made:
    value = _encode(b.lead_id, b.envelope("u", lead_row(key, b.rng), None))
    return value, "unwrap", "op 'u' without an 'after' row"


def _no_email(b: _Builder, key: int, _valid: bytes) -> Made:
    row = lead_row(key, b.rng, email=None, phone=None)  # nulls where the lead is identified
    return _encode(b.lead_id, b.envelope("c", None, row)), "map", "lead.EmailAddress is null"


def _blank(b: _Builder, key: int, _valid: bytes) -> Made:
    row = lead_row(key, b.rng, email=b.rng.choice([" ", "\t", "\u3000", ""]))
    return _encode(b.lead_id, b.envelope("c", None, row)), "map", "lead.EmailAddress is blank"


_HOSTILE: dict[str, Callable[[_Builder, int, bytes], Made]] = {
    "random": _random,
    "json": _json,
    "empty": lambda _b, _key, _valid: (b"", "decode", "empty value"),
    "short": _short,
    "magic": _magic,
    "unknown_id": _unknown_id,
    "truncated": _truncated,
    "trailing": _trailing,
    "utf8": _utf8,
    "union": _union,
    "string": _string,
    "op": _op,
    "no_after": _no_after,
    "no_email": _no_email,
    "blank": _blank,
    "blob": lambda _b, _key, _valid: (b"\xff" * 900_000, "decode", "magic byte 0xff is not 0"),
}


HOSTILE = [kind for kind in _HOSTILE if kind != "blob"]


def build_corpus(lead_id: int, string_id: int) -> Corpus:
    """About 50 good lead events and 100 hostile records, shuffled with a fixed seed; hostile
    records share keys with good ones (same partition, same per-key lane) or have their own."""
    b = _Builder(lead_id, string_id)
    plan = ["good"] * 48 + ["huge"] + [HOSTILE[i % len(HOSTILE)] for i in range(98)] + ["blob"]
    b.rng.shuffle(plan)
    for i, kind in enumerate(plan):
        if kind == "good":
            b.good(b.rng.randrange(1, 30))  # 29 keys: creates, then updates of the same leads
        elif kind == "huge":
            b.huge_good(500)
        else:
            shared = b.rng.random() < 0.5
            b.hostile(b.rng.randrange(1, 30) if shared else 1000 + i, kind)
    for key in sorted(b.rows)[:2]:  # a delete and its tombstone: skipped, as always
        b.corpus.add(Event(LEADS, key, b.envelope("d", b.rows[key], None)), Expect("skipped"))
        b.corpus.add(Event(LEADS, key, None), Expect("skipped"))
    return b.corpus


def _register(registry_url: str, topic: str) -> tuple[int, int]:
    """Register the leads envelope (as the CDC writer will) and a bare string schema."""
    client = SchemaRegistryClient({"url": registry_url})
    try:
        lead_id = client.register_schema(
            f"{topic}-value", Schema(schema_text("crm.public.leads-value"), "AVRO")
        )
        string_id = client.register_schema(f"{topic}.strings-value", Schema('"string"', "AVRO"))
    finally:
        client.close()
    return lead_id, string_id


def test_hostile_corpus_end_to_end(
    broker: Broker, registry: SchemaRegistryServer, topics: Topics, tmp_path: Path
) -> None:
    """Good records among hostile ones: each gets exactly its outcome, the good ones with their
    own payload and in per-key order, the bad ones unchanged in the DLQ with the stage and a
    precise reason; offsets are committed to the end and the process exits 0."""
    corpus = build_corpus(*_register(registry.url, topics.leads))
    sim_config = SimConfig(rate_limit=RateLimit(calls=1000, window_s=1))
    with Simulator(sim_config) as sim:
        with CdcWriter(broker.bootstrap_servers, registry.url) as writer:
            for event in corpus.events:
                writer.send(event, topics.leads)
            writer.flush()
        positions = {i: (topics.leads, *writer.positions[i]) for i in range(len(corpus.events))}
        data = config(broker, registry, sim, topics)
        data["accounts"]["default"]["rate_limit"] = {"calls": 1000, "window_seconds": 1}
        data["routes"] = data["routes"][:1]
        data["routes"][0]["coalesce"] = "off"  # each record's own payload, checked exactly
        with SinkProcess(data, tmp_path) as sink:
            total = len(corpus.events)
            sink.wait_for(lambda: _outcomes(sink) >= total, 90, f"{total} outcomes")
            exit_code = sink.stop()
        requests = sim.client.requests()

    assert exit_code == 0, sink.tail()
    by_position = {position: i for i, position in positions.items()}
    bootstrap = broker.bootstrap_servers
    results = read_topic(bootstrap, topics.results, corpus.count("accepted"), timeout=60)
    dlq = read_topic(bootstrap, topics.dead_letters, corpus.count("dead_lettered"), timeout=60)
    _check_results(corpus, by_position, results, requests)
    _check_dead_letters(corpus, by_position, dlq)
    _assert_per_key_order(corpus, requests)

    # nothing lost: every partition committed to its end, the summary adds up, no crash
    ends: dict[int, int] = defaultdict(int)
    for _, partition, offset in positions.values():
        ends[partition] = max(ends[partition], offset + 1)
    assert committed_offsets(bootstrap, topics.group, topics.leads) == ends
    summary = sink.summary()
    assert summary is not None
    assert summary["consumed"] == len(corpus.events)
    assert (summary["accepted"], summary["dead_lettered"], summary["skipped"]) == (
        corpus.count("accepted"),
        corpus.count("dead_lettered"),
        corpus.count("skipped"),
    )
    assert "Traceback" not in sink.log_path.read_text(errors="replace")


Positions = dict[tuple[str, int, int], int]


def _check_results(
    corpus: Corpus, by_position: Positions, results: list[Received], requests: Any
) -> None:
    """One results record per good record, for exactly the call its own row gives."""
    calls = {r.request_id: r for r in requests if r.request_id is not None}
    accepted = set()
    for record in results:
        assert record.value is not None
        result = fastavro.schemaless_reader(io.BytesIO(record.value[5:]), _RESULT, None)
        assert isinstance(result, dict)
        position = (result["source_topic"], result["source_partition"], result["source_offset"])
        index = by_position[position]
        expect = corpus.expected[index]
        assert expect.outcome == "accepted", (position, expect)
        assert index not in accepted
        accepted.add(index)
        call = calls[result["request_id"]]
        assert call.json_body() == expect.body, index
        assert (result["status"], result["http_status"], result["attempts"]) == ("accepted", 200, 1)
    assert len(accepted) == corpus.count("accepted") == len(requests)


def _check_dead_letters(corpus: Corpus, by_position: Positions, dlq: list[Received]) -> None:
    """Each hostile record once, unchanged, with the Connect headers, its stage and reason."""
    dead: Counter[int] = Counter()
    for record in dlq:
        headers = {k: v.decode() for k, v in record.headers}
        position = (
            headers["__connect.errors.topic"],
            int(headers["__connect.errors.partition"]),
            int(headers["__connect.errors.offset"]),
        )
        index = by_position[position]
        dead[index] += 1
        expect, event = corpus.expected[index], corpus.events[index]
        assert expect.outcome == "dead_lettered", (position, expect)
        assert headers["lsq.error.stage"] == expect.stage, (index, headers)
        message = headers["__connect.errors.exception.message"]
        assert expect.fragment in message, (index, expect.fragment, message)
        error_class = {"decode": "DecodeError", "unwrap": "UnwrapError", "map": "MappingError"}
        assert headers["__connect.errors.exception.class.name"] == error_class[expect.stage or ""]
        assert (headers["lsq.attempts"], headers["lsq.http.status"]) == ("0", "")
        assert record.value == event.raw
        assert record.key is not None
        assert record.key[5:] == _key_body(event.key)  # the wire-format key, unchanged
    hostile = {i for i, e in enumerate(corpus.expected) if e.outcome == "dead_lettered"}
    assert dead == Counter(hostile)


def _key_body(key: int | None) -> bytes:
    """The Avro body of a key as the CDC writer serialized it (a record ``{id: long}``)."""
    assert key is not None
    out = io.BytesIO()
    fastavro.schemaless_writer(out, _LEAD_KEY, {"id": key})
    return out.getvalue()


def _assert_per_key_order(corpus: Corpus, requests: Any) -> None:
    expected: dict[str, list[Any]] = defaultdict(list)
    for item in corpus.expected:
        if item.outcome == "accepted":
            expected[str(item.email)].append(item.body)
    received: dict[str, list[Any]] = defaultdict(list)
    for call in requests:
        body = call.json_body()
        email = next(a["Value"] for a in body if a["Attribute"] == "EmailAddress")
        received[email].append(body)
    assert any(len(bodies) > 1 for bodies in expected.values()), "some leads must be updated"
    assert received == expected


def _outcomes(sink: SinkProcess) -> int:
    names = {"record.accepted", "record.dead_lettered", "record.skipped"}
    return sum(1 for e in sink.events() if e["event"] in names)


#: An activities writer schema whose event code is a string (a legitimate schema: the mapping
#: accepts any value that reads as a positive integer).
_TEXT_CODES = {
    "type": "record",
    "name": "Activity",
    "fields": [
        {"name": "lead_email", "type": "string"},
        {"name": "event_code", "type": "string"},
        {"name": "occurred_at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    ],
}


def test_a_large_bad_value_is_dead_lettered_and_the_connector_goes_on(
    broker: Broker, registry: SchemaRegistryServer, topics: Topics, tmp_path: Path
) -> None:
    """An activity whose event code is 600 kB of digits (too large to be a valid code) is
    dead-lettered at map (its reason quotes the value only in part, so the dead letter stays
    under the producer's message size), and the next record of the same key is accepted."""
    client = SchemaRegistryClient({"url": registry.url})
    try:
        schema_id = client.register_schema(
            f"{topics.activities}-value", Schema(json.dumps(_TEXT_CODES), "AVRO")
        )
    finally:
        client.close()
    parsed = fastavro.parse_schema(_TEXT_CODES)
    producer = Producer({"bootstrap.servers": broker.bootstrap_servers})
    for code in ("7" * 600_000, "201"):
        out = io.BytesIO()
        row = {"lead_email": "big@example.com", "event_code": code, "occurred_at": 1_790_000_000}
        fastavro.schemaless_writer(out, parsed, row)
        producer.produce(topics.activities, _wire(schema_id, out.getvalue()), b"one-key")
    assert producer.flush(10) == 0
    producer.close()
    with Simulator(SimConfig(rate_limit=RateLimit(calls=1000, window_s=1))) as sim:
        data = config(broker, registry, sim, topics)
        with SinkProcess(data, tmp_path) as sink:
            sink.wait_for(lambda: _outcomes(sink) >= 2, 60, "both outcomes")
            assert sink.stop() == 0
    [dead] = read_topic(broker.bootstrap_servers, topics.dead_letters, 1)
    assert dict(dead.headers)["lsq.error.stage"] == b"map"
    assert b"activity.event" in dict(dead.headers)["__connect.errors.exception.message"]
    read_topic(broker.bootstrap_servers, topics.results, 1)
