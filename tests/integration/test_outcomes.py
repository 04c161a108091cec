"""The outcome writer and the read-back, on the real broker (SPEC §2.1, §2.2, §2.7): results records
and dead letters are written with the headers that name their source, read back by the ledger
after a restart, and no size stops them: a record larger than the producer's limit (just under, at
and over it) or one the broker refuses as too large is cut down (value, then key, then the
source's headers) with a header saying what was left out and how large it was."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

import fastavro
import pytest
from confluent_kafka import KafkaError, Producer

from connector.adapters.ledger import Ledger
from connector.adapters.results import OutcomeWriter
from connector.errors import OutputError
from connector.flow.codec import RESULT_SCHEMA, ResultEncoder, dead_letter
from connector.flow.deadline import Deadline
from connector.records import Accepted, DeadLetter, SourceRecord
from lsq_stack.kafka import create_topics, read_all, unique_name
from lsq_stack.mockcluster import ApiKey, MockCluster

if TYPE_CHECKING:
    from lsq_stack.broker import Broker
    from lsq_stack.kafka import Received

LIMIT = 1_000_000  # librdkafka's default message.max.bytes
WHY = DeadLetter("decode", "magic byte 0xff is not 0", "DecodeError")
ACCEPTED = Accepted("capture", "leads", "main", "req-1", None, 1_700_000_000_000, 1, 200)
_RESULT = fastavro.parse_schema(RESULT_SCHEMA)


class Outcomes:
    """An outcome writer on fresh topics, and what it reported durable."""

    def __init__(self, bootstrap: str, **producer: Any) -> None:
        self.bootstrap = bootstrap
        self.results, self.dead_letters = unique_name("results"), unique_name("dead-letters")
        config = {"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all"}
        self.writer = OutcomeWriter(
            config | {"linger.ms": 5} | producer,
            self.results,
            self.dead_letters,
            ResultEncoder(None),
        )
        self.durable: list[tuple[str, int]] = []

    def result(self, record: SourceRecord) -> None:
        self.writer.result(
            record, ACCEPTED, lambda: self.durable.append((record.topic, record.offset))
        )

    def dead_letter(self, record: SourceRecord, why: DeadLetter = WHY) -> None:
        self.writer.dead_letter(
            record, why, lambda: self.durable.append((record.topic, record.offset))
        )

    def flush(self) -> None:
        assert self.writer.flush(Deadline.after(30)), "outcomes not acknowledged within 30 s"
        self.writer.close(Deadline.after(5))


def _headers(received: Received) -> dict[str, bytes]:
    return dict(received.headers)


def _sized(total: int, key: bytes = b"key") -> SourceRecord:
    """A source record whose dead letter librdkafka counts as exactly ``total`` bytes."""
    bare = SourceRecord("src", 0, 1, key, b"")
    value = b"\xff" * (total - dead_letter(bare, WHY).size)
    record = SourceRecord("src", 0, 1, key, value)
    assert dead_letter(record, WHY).size == total
    return record


def test_outcomes_are_written_with_their_source_and_read_back_after_a_restart(
    broker: Broker,
) -> None:
    """Results records (Avro, source headers) and dead letters (the original record plus the
    Connect headers) are written and acknowledged; the ledger finds exactly the outcomes at or
    past the committed offsets, streamed from both topics, ignoring records that name no source;
    with a lookback of 0 it reads nothing."""
    out = Outcomes(broker.bootstrap_servers)
    create_topics(broker.bootstrap_servers, {out.results: 2, out.dead_letters: 1})
    for offset in range(10, 15):
        out.result(SourceRecord("src", 0, offset, b"k%d" % offset, b"v", timestamp_ms=5))
    for offset in range(3, 6):
        out.dead_letter(SourceRecord("src", 1, offset, b"d", b"\x01bad", (("trace", b"t1"),)))
    out.flush()
    assert sorted(out.durable) == sorted(
        [("src", o) for o in range(10, 15)] + [("src", o) for o in range(3, 6)]
    )
    stray = Producer({"bootstrap.servers": broker.bootstrap_servers})
    stray.produce(out.results, b"not an outcome", headers=[("lsq.source.topic", b"src")])
    assert stray.flush(10) == 0

    results = [
        r for r in read_all(broker.bootstrap_servers, out.results) if r.value != b"not an outcome"
    ]
    assert len(results) == 5
    for received in results:
        value = fastavro.schemaless_reader(io.BytesIO(received.value or b""), _RESULT, None)
        assert isinstance(value, dict)
        headers = _headers(received)
        assert headers["lsq.source.offset"] == str(value["source_offset"]).encode()
        assert received.key == b"k%d" % value["source_offset"]
        assert (value["request_id"], value["status"]) == ("req-1", "accepted")
    dead = read_all(broker.bootstrap_servers, out.dead_letters)
    assert {(r.key, r.value) for r in dead} == {(b"d", b"\x01bad")}
    assert all(r.headers[0] == ("trace", b"t1") for r in dead)
    assert {_headers(r)["lsq.error.stage"] for r in dead} == {b"decode"}

    config = broker.consumer_config(unique_name("group"))
    warnings: list[str] = []
    ledger = Ledger(config, (out.results, out.dead_letters), 900.0, warnings.append)
    committed = {("src", 0): 12, ("src", 1): 4, ("src", 2): 0}
    assert ledger.done(committed) == {("src", 0): {12, 13, 14}, ("src", 1): {4, 5}}
    assert warnings == []
    assert (
        Ledger(config, (out.results, out.dead_letters), 0.0, warnings.append).done(committed) == {}
    )


@pytest.mark.parametrize(("total", "kept"), [(LIMIT - 1, True), (LIMIT, True), (LIMIT + 1, False)])
def test_a_dead_letter_near_the_producers_limit_is_written_whole_or_without_its_value(
    broker: Broker, total: int, kept: bool
) -> None:
    """A dead letter librdkafka counts just under or at message.max.bytes goes out whole; one
    byte more and it goes out without its value, keeping key and headers, with
    lsq.value.omitted giving the value's size. Either way it is written and acknowledged."""
    out = Outcomes(broker.bootstrap_servers)
    record = _sized(total)
    out.dead_letter(record)
    out.flush()
    assert out.durable == [("src", 1)]
    [received] = read_all(broker.bootstrap_servers, out.dead_letters)
    assert received.key == b"key"
    headers = _headers(received)
    assert headers["__connect.errors.offset"] == b"1"
    if kept:
        assert received.value == record.value
        assert "lsq.value.omitted" not in headers
    else:
        assert received.value is None
        assert headers["lsq.value.omitted"] == str(len(record.value or b"")).encode()


def test_keys_and_headers_too_large_are_left_out_too_and_results_keep_their_value(
    broker: Broker,
) -> None:
    """A key over the limit is left out (lsq.key.omitted), then the source's own headers
    (lsq.headers.omitted) when they alone are too large; a results record never loses its value
    (only the key), so its source stays readable."""
    out = Outcomes(broker.bootstrap_servers)
    huge_key = SourceRecord("src", 0, 1, b"k" * (LIMIT + 10), b"small value")
    huge_headers = SourceRecord("src", 0, 2, b"key", b"v", (("blob", b"h" * (LIMIT + 10)),))
    out.dead_letter(huge_key)
    out.dead_letter(huge_headers)
    out.result(SourceRecord("src", 0, 3, b"r" * (LIMIT + 10), b"v"))
    out.flush()
    assert sorted(out.durable) == [("src", 1), ("src", 2), ("src", 3)]
    by_offset = {
        _headers(r)["__connect.errors.offset"]: r
        for r in read_all(broker.bootstrap_servers, out.dead_letters)
    }
    key_cut = by_offset[b"1"]
    assert (key_cut.key, key_cut.value) == (None, None)
    assert _headers(key_cut)["lsq.value.omitted"] == b"11"
    assert _headers(key_cut)["lsq.key.omitted"] == str(LIMIT + 10).encode()
    headers_cut = by_offset[b"2"]
    assert (headers_cut.key, headers_cut.value) == (b"key", None)
    assert "blob" not in _headers(headers_cut)
    assert int(_headers(headers_cut)["lsq.headers.omitted"]) > LIMIT
    [result] = read_all(broker.bootstrap_servers, out.results)
    assert result.key is None
    assert _headers(result)["lsq.key.omitted"] == str(LIMIT + 10).encode()
    value = fastavro.schemaless_reader(io.BytesIO(result.value or b""), _RESULT, None)
    assert isinstance(value, dict)
    assert value["source_offset"] == 3


def test_a_larger_producer_limit_keeps_larger_values(broker: Broker) -> None:
    """With kafka.producer message.max.bytes raised (and a broker that takes it), a 1.5 MB dead
    letter keeps its value."""
    out = Outcomes(broker.bootstrap_servers, **{"message.max.bytes": 2_000_000})
    record = _sized(1_500_000)
    out.dead_letter(record)
    out.flush()
    [received] = read_all(broker.bootstrap_servers, out.dead_letters)
    assert received.value == record.value


def test_records_the_broker_refuses_as_too_large_are_cut_and_written_again() -> None:
    """The broker's limit (a topic's max.message.bytes) can be lower than the producer's
    (librdkafka's mock cluster answers MESSAGE_TOO_LARGE): a record refused once goes again as
    it was (the broker refuses whole requests: it may have been another record's fault), so a
    small results record is written unchanged; one refused again goes without its value. Nothing
    is lost and nothing fails."""
    with MockCluster() as cluster:
        out = Outcomes(cluster.bootstrap_servers)
        cluster.create_topic(out.results, 1)
        cluster.create_topic(out.dead_letters, 1)
        out.result(SourceRecord("src", 0, 0, b"warm", b"v"))
        assert out.writer.flush(Deadline.after(30))
        cluster.push_request_errors(ApiKey.PRODUCE, [KafkaError.MSG_SIZE_TOO_LARGE])
        out.result(SourceRecord("src", 0, 1, b"small", b"v"))
        assert out.writer.flush(Deadline.after(30))
        too_large = [KafkaError.MSG_SIZE_TOO_LARGE] * 2
        cluster.push_request_errors(ApiKey.PRODUCE, too_large)
        out.dead_letter(SourceRecord("src", 0, 2, b"key", b"\xff" * 300_000))
        out.flush()
        assert sorted(out.durable) == [("src", 0), ("src", 1), ("src", 2)]
        [dead] = read_all(cluster.bootstrap_servers, out.dead_letters)
        assert (dead.key, dead.value) == (b"key", None)
        assert _headers(dead)["lsq.value.omitted"] == b"300000"
        results = read_all(cluster.bootstrap_servers, out.results)
        assert sorted(r.key or b"" for r in results) == [b"small", b"warm"]
        assert all("lsq.key.omitted" not in _headers(r) for r in results)


def test_a_record_too_large_even_when_cut_is_a_clear_error() -> None:
    """With message.max.bytes at librdkafka's minimum (1000), a dead letter whose own headers
    (a reason of 1000 characters) are larger cannot be written: a clear OutputError naming the
    record and the setting, not a crash elsewhere."""
    out = Outcomes("127.0.0.1:9", **{"message.max.bytes": 1000})
    why = DeadLetter("map", "x" * 2000, "MappingError")
    with pytest.raises(OutputError, match=r"src\[0\]@1 .*message\.max\.bytes"):
        out.dead_letter(SourceRecord("src", 0, 1, b"key", b"value"), why)
