"""[pure] What outcome records look like in Kafka (SPEC §5), for the writer and the read-back alike:
the results schema, value and Avro encoding, the header names, the dead-letter headers, and how a
record too large for the producer or the broker is cut down until it fits (invariant 7: no size
stops the connector).

What is cut, in this order, each noted in a header holding the size it had: the dead letter's value
(``lsq.value.omitted``; the value stays at its source offset), then the larger of the key
(``lsq.key.omitted``) and the source record's own headers (``lsq.headers.omitted``), then the
other. What remains (our headers, with a reason of at most 1000 characters, or a results value of
a few hundred bytes) fits any producer limit but the smallest librdkafka allows (1000 bytes).
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import fastavro

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from connector.records import Accepted, DeadLetter, SourceRecord

__all__ = [
    "DEAD_LETTER_SOURCE",
    "OMITTED",
    "RESULT_SCHEMA",
    "RESULT_SOURCE",
    "RESULT_TRACKING",
    "Headers",
    "OutcomeRecord",
    "ResultEncoder",
    "dead_letter",
    "fit",
    "result",
    "source_of",
    "wire_size",
]

Headers = tuple[tuple[str, bytes | None], ...]

#: Headers of a results record naming its source record.
RESULT_SOURCE = ("lsq.source.topic", "lsq.source.partition", "lsq.source.offset")
#: Headers of a results record for reading back the calls whose status is not known yet (SPEC §13).
RESULT_TRACKING = ("lsq.status", "lsq.request.id", "lsq.attempts")
#: Headers of a dead letter naming its source record (Kafka Connect's).
DEAD_LETTER_SOURCE = (
    "__connect.errors.topic",
    "__connect.errors.partition",
    "__connect.errors.offset",
)
#: Headers saying what was left out of a record too large to be written, and how large it was.
OMITTED = {"value": "lsq.value.omitted", "key": "lsq.key.omitted", "headers": "lsq.headers.omitted"}

_TIMESTAMP = {"type": "long", "logicalType": "timestamp-millis"}
_OPTIONAL_STRING = {"type": ["null", "string"], "default": None}
#: The results topic's value schema; ``schemas/result.avsc`` is this, for consumers (a test checks).
RESULT_SCHEMA: dict[str, Any] = {
    "type": "record",
    "name": "LeadSquaredResult",
    "namespace": "io.lsqsink",
    "fields": [
        {"name": "status", "type": "string"},
        {"name": "operation", "type": "string"},
        {"name": "route", "type": "string"},
        {"name": "account", "type": "string"},
        {"name": "request_id", **_OPTIONAL_STRING},
        {"name": "lead_id", **_OPTIONAL_STRING},
        {"name": "source_topic", "type": "string"},
        {"name": "source_partition", "type": "int"},
        {"name": "source_offset", "type": "long"},
        {"name": "source_timestamp", "type": ["null", _TIMESTAMP], "default": None},
        {"name": "submitted_at", "type": _TIMESTAMP},
        {"name": "attempts", "type": "int"},
        {"name": "http_status", "type": "int"},
        {"name": "activity_id", **_OPTIONAL_STRING},
        {"name": "call_id", **_OPTIONAL_STRING},
        {"name": "batch_row", "type": ["null", "int"], "default": None},
        {"name": "coalesced", "type": "boolean", "default": False},
        {"name": "reason", **_OPTIONAL_STRING},
        {"name": "completed_at", "type": ["null", _TIMESTAMP], "default": None},
    ],
}

#: librdkafka's per-record framing at most (RD_KAFKAP_MESSAGE_V2_MAX_OVERHEAD): the producer refuses
#: a record when this plus key, value and serialized headers exceeds ``message.max.bytes``.
_FRAMING = 36


@dataclass(frozen=True, slots=True)
class OutcomeRecord:
    """One record to produce: the source's key, a value, the source's headers and ours."""

    key: bytes | None
    value: bytes | None
    source_headers: Headers
    headers: Headers
    droppable_value: bool  # a dead letter's value stays at its source offset; a result's cannot go

    @property
    def all_headers(self) -> list[tuple[str, bytes | None]]:
        """The headers as written: the source record's, then ours."""
        return [*self.source_headers, *self.headers]

    @property
    def size(self) -> int:
        """Bytes librdkafka counts against ``message.max.bytes``."""
        return wire_size(self.key, self.value, self.all_headers)


def result(record: SourceRecord, accepted: Accepted) -> tuple[dict[str, Any], Headers]:
    """The results record of ``record``: its value (fields of :data:`RESULT_SCHEMA`) and headers."""
    value = {
        "status": accepted.status,
        "operation": accepted.operation,
        "route": accepted.route,
        "account": accepted.account,
        "request_id": accepted.request_id,
        "lead_id": accepted.lead_id,
        "source_topic": record.topic,
        "source_partition": record.partition,
        "source_offset": record.offset,
        "source_timestamp": record.timestamp_ms,
        "submitted_at": accepted.submitted_at_ms,
        "attempts": accepted.attempts,
        "http_status": accepted.http_status,
        "activity_id": accepted.activity_id,
        "call_id": accepted.call_id,
        "batch_row": accepted.batch_row,
        "coalesced": accepted.coalesced,
        "reason": accepted.reason,
        "completed_at": accepted.completed_at_ms,
    }
    tracking = (accepted.status, accepted.request_id or "", str(accepted.attempts))
    return value, _named((*RESULT_SOURCE, *RESULT_TRACKING), (*_position(record), *tracking))


class ResultEncoder:
    """Avro-encodes results records: Confluent wire format when the schema has a registry id,
    a plain Avro body otherwise (registry-less mode)."""

    def __init__(self, schema_id: int | None) -> None:
        self._schema = fastavro.parse_schema(RESULT_SCHEMA)
        self._prefix = b"" if schema_id is None else b"\x00" + struct.pack(">I", schema_id)

    def __call__(self, value: Mapping[str, Any]) -> bytes:
        out = io.BytesIO(self._prefix)
        out.seek(len(self._prefix))
        fastavro.schemaless_writer(out, self._schema, dict(value))
        return out.getvalue()


def dead_letter(record: SourceRecord, why: DeadLetter) -> OutcomeRecord:
    """The source record unchanged, plus Kafka Connect's ``__connect.errors.*`` headers and ours."""
    ours = (
        *_position(record),
        why.error_class,
        why.reason,
        why.stage,
        "" if why.http_status is None else str(why.http_status),
        why.exception_type or "",
        str(why.attempts),
    )
    names = (
        *DEAD_LETTER_SOURCE,
        "__connect.errors.exception.class.name",
        "__connect.errors.exception.message",
        "lsq.error.stage",
        "lsq.http.status",
        "lsq.exception.type",
        "lsq.attempts",
    )
    return OutcomeRecord(record.key, record.value, record.headers, _named(names, ours), True)


def source_of(headers: Mapping[str, bytes | None]) -> tuple[str, int, int] | None:
    """The (topic, partition, offset) an outcome record is about, from its headers."""
    for names in (RESULT_SOURCE, DEAD_LETTER_SOURCE):
        values = [headers.get(name) for name in names]
        if all(value is not None for value in values):
            try:
                topic, partition, offset = (value.decode() for value in values if value is not None)
                return topic, int(partition), int(offset)
            except (UnicodeDecodeError, ValueError):
                return None
    return None


def fit(record: OutcomeRecord, limit: int) -> OutcomeRecord | None:
    """``record`` cut down until librdkafka counts at most ``limit`` bytes: a dead letter's value
    first, then the larger of the key and the source's headers, then the other; ``None`` when
    even the smallest form is larger."""
    value = record.value if record.droppable_value else None
    rest = sorted(
        [("key", record.key), ("headers", record.source_headers or None)],
        key=lambda part: -_length(part[1]),
    )
    for part, content in [("value", value), *rest]:
        if record.size <= limit:
            return record
        if content is None:
            continue
        omitted = (OMITTED[part], str(_length(content)).encode())
        cut = {_FIELDS[part]: _EMPTY[part]}
        record = replace(record, headers=(*record.headers, omitted), **cut)
    return record if record.size <= limit else None


def wire_size(
    key: bytes | None, value: bytes | None, headers: Sequence[tuple[str, bytes | None]]
) -> int:
    """librdkafka's size of a record: framing, key, value and the headers as serialized."""
    return _FRAMING + len(key or b"") + len(value or b"") + _headers_size(headers)


_FIELDS = {"value": "value", "key": "key", "headers": "source_headers"}
_EMPTY: dict[str, Any] = {"value": None, "key": None, "headers": ()}


def _length(content: bytes | Headers | None) -> int:
    if content is None:
        return 0
    if isinstance(content, bytes):
        return len(content)
    return _headers_size(content)


def _headers_size(headers: Sequence[tuple[str, bytes | None]]) -> int:
    """As rd_kafka_headers_serialized_size: zigzag varint lengths, name and value bytes."""
    total = 0
    for name, value in headers:
        raw = name.encode()
        total += _varint(len(raw)) + len(raw)
        total += _varint(-1) if value is None else _varint(len(value)) + len(value)
    return total


def _varint(number: int) -> int:
    zigzag = (number << 1) ^ (number >> 63)
    return max(1, -(-zigzag.bit_length() // 7))  # 7 bits a byte


def _position(record: SourceRecord) -> tuple[str, str, str]:
    return record.topic, str(record.partition), str(record.offset)


def _named(names: tuple[str, ...], values: tuple[str, ...]) -> Headers:
    return tuple((name, value.encode()) for name, value in zip(names, values, strict=True))
