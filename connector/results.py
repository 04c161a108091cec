"""Write outcomes (SPEC §5): results records (Avro) and dead letters (the original record plus
Kafka-Connect-compatible and ``lsq.*`` headers), with an idempotent ``acks=all`` producer. Each
record's outcome is reported durable only from the broker's acknowledgement; a delivery failure is
latched and raised on the next :meth:`OutcomeWriter.poll`, so nothing past it is committed."""

from __future__ import annotations

import io
import struct
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import fastavro
from confluent_kafka import KafkaError, KafkaException, Producer

from connector.errors import OutputError
from connector.ledger import SOURCE_HEADERS
from connector.logs import get_logger

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from confluent_kafka import Message

    from connector.records import SourceRecord, Stage

_log = get_logger(__name__)

__all__ = [
    "RESULT_SCHEMA",
    "Accepted",
    "DeadLetter",
    "OutcomeWriter",
    "ResultEncoder",
    "dead_letter_headers",
    "result_value",
]

_IDLE_POLL_S = 0.1

_REASON_MAX = 1000
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
    ],
}


class ResultEncoder:
    """Avro-encodes results records: Confluent wire format when the schema has a registry id,
    a plain Avro body otherwise (registry-less mode)."""

    def __init__(self, schema_id: int | None) -> None:
        self._schema = fastavro.parse_schema(RESULT_SCHEMA)
        self._prefix = b"" if schema_id is None else b"\x00" + struct.pack(">I", schema_id)

    def __call__(self, result: Mapping[str, Any]) -> bytes:
        out = io.BytesIO(self._prefix)
        out.seek(len(self._prefix))
        fastavro.schemaless_writer(out, self._schema, dict(result))
        return out.getvalue()


@dataclass(frozen=True, slots=True)
class Accepted:
    """What LeadSquared accepted for a record: becomes its results record."""

    operation: str
    route: str
    account: str
    request_id: str | None
    lead_id: str | None
    submitted_at_ms: int
    attempts: int
    http_status: int


def result_value(record: SourceRecord, accepted: Accepted) -> dict[str, Any]:
    """The results record of ``record`` (fields of :data:`RESULT_SCHEMA`)."""
    return {
        "status": "accepted",
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
    }


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """Why a record is dead-lettered: stage, reason and what LeadSquared answered, if anything."""

    stage: Stage
    reason: str
    error_class: str
    exception_type: str | None = None
    http_status: int | None = None
    attempts: int = 0

    def __post_init__(self) -> None:
        # Reasons may quote the offending value: keep headers and log lines small.
        if len(self.reason) > _REASON_MAX:
            cut = f"{self.reason[:_REASON_MAX]}… ({len(self.reason) - _REASON_MAX} more characters)"
            object.__setattr__(self, "reason", cut)


Headers = list[tuple[str, str | bytes | None]]


def dead_letter_headers(record: SourceRecord, why: DeadLetter) -> Headers:
    """The original headers, then Kafka Connect's ``__connect.errors.*`` and ours (SPEC §5)."""
    ours = {
        "__connect.errors.topic": record.topic,
        "__connect.errors.partition": str(record.partition),
        "__connect.errors.offset": str(record.offset),
        "__connect.errors.exception.class.name": why.error_class,
        "__connect.errors.exception.message": why.reason,
        "lsq.error.stage": why.stage,
        "lsq.http.status": "" if why.http_status is None else str(why.http_status),
        "lsq.exception.type": why.exception_type or "",
        "lsq.attempts": str(why.attempts),
    }
    return [*record.headers, *((k, v.encode()) for k, v in ours.items())]


class OutcomeWriter:
    """Produces outcomes; each one's ``durable()`` callback runs once the broker acknowledged it."""

    def __init__(
        self,
        producer_config: Mapping[str, Any],
        results_topic: str,
        dead_letter_topic: str,
        encode: Callable[[Mapping[str, Any]], bytes],
        stall_warning_s: float = 15.0,
    ) -> None:
        self._producer = Producer({**producer_config, "error_cb": self._client_error})
        # headroom below librdkafka's limit for the record's own framing
        self._max_message = int(producer_config.get("message.max.bytes", 1_000_000)) - 1024
        self._results, self._dlq, self._encode = results_topic, dead_letter_topic, encode
        self._failure: OutputError | None = None
        self._polled = 0.0
        self._progress_at = time.monotonic()  # last acknowledgement, or when waiting began
        self._stall_s = stall_warning_s
        self.delayed = False  # outcomes have waited _stall_s without any acknowledgement
        self.pending = 0

    def result(self, record: SourceRecord, accepted: Accepted, durable: Callable[[], None]) -> None:
        """Write the results record of an accepted source record, keyed by its key."""
        value = self._encode(result_value(record, accepted))
        source = (record.topic, str(record.partition), str(record.offset))
        headers: Headers = [
            (name, v.encode()) for name, v in zip(SOURCE_HEADERS, source, strict=True)
        ]
        self._produce(
            self._results, record, value, headers=headers, outcome="accepted", durable=durable
        )

    def dead_letter(
        self, record: SourceRecord, why: DeadLetter, durable: Callable[[], None]
    ) -> None:
        """Write the original record, unchanged, with the error headers."""
        headers = dead_letter_headers(record, why)
        self._produce(
            self._dlq, record, record.value, headers=headers, outcome="dead-letter", durable=durable
        )

    def poll(self) -> None:
        """Serve delivery reports (when some are due, or every 0.1 s for the client's own
        events: each call hands the GIL to other threads); raise the first delivery failure."""
        now = time.monotonic()
        if self.pending or now - self._polled >= _IDLE_POLL_S:
            self._polled = now
            self._producer.poll(0)
        self._raise_failure()
        if self.pending and not self.delayed and now - self._progress_at > self._stall_s:
            self.delayed = True
            _log.warning(
                "results.delayed",
                topics=[self._results, self._dlq],
                waiting=self.pending,
                reason=f"nothing acknowledged for {self._stall_s:g} s; nothing past them commits",
            )

    def flush(self, timeout: float) -> bool:
        """Wait up to ``timeout`` for every outcome to be acknowledged; ``True`` if all were."""
        left = self._producer.flush(timeout)
        self._raise_failure()
        return left == 0

    def close(self, timeout: float) -> None:
        self._producer.flush(timeout)
        self._producer.close()

    def _produce(
        self,
        topic: str,
        record: SourceRecord,
        value: bytes | None,
        *,
        headers: Headers | None,
        outcome: str,
        durable: Callable[[], None],
    ) -> None:
        def delivered(err: KafkaError | None, _: Message) -> None:
            self.pending -= 1
            if err is not None:
                self._failure = self._failure or _unwritten(outcome, record, topic, err.str())
            else:
                self._acknowledged()
                durable()

        if not self.pending:
            self._progress_at = time.monotonic()
        self.pending += 1
        while True:
            try:
                self._producer.produce(
                    topic, value, record.key, headers=headers, on_delivery=delivered
                )
                return
            except BufferError:  # local queue full: serve deliveries, then try again
                self._producer.poll(0.1)
            except KafkaException as exc:  # refused at once (e.g. too large): nothing written
                self.pending -= 1
                error = exc.args[0].str() if exc.args else str(exc)
                raise _unwritten(outcome, record, topic, error) from None

    def _acknowledged(self) -> None:
        self._progress_at = time.monotonic()
        if self.delayed:
            self.delayed = False
            _log.info("results.delivered_again", topics=[self._results, self._dlq])

    def _client_error(self, error: KafkaError) -> None:
        _log.warning("kafka.error", client="producer", error=error.str())

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise self._failure


def _unwritten(outcome: str, record: SourceRecord, topic: str, error: str) -> OutputError:
    where = f"{record.topic}[{record.partition}]@{record.offset}"
    return OutputError(
        f"could not write the {outcome} record of {where} to topic {topic!r}: {error}"
    )
