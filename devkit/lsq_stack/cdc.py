"""Realistic Debezium CDC events for the demo, the tests and the benchmarks: rows of a CRM's
``leads`` and ``activities`` tables in Postgres-connector envelopes (schemas in ``schemas/demo``),
Avro-serialized with confluent-kafka's serializers through a Schema Registry, keyed by row id."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from confluent_kafka import KafkaError, Message, Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

if TYPE_CHECKING:
    import random

__all__ = [
    "ACTIVITIES",
    "LEADS",
    "SCHEMAS",
    "CdcWriter",
    "Event",
    "activity_row",
    "envelope",
    "lead_row",
    "schema_text",
]

# The checkout's schemas/demo: the devkit is only ever installed editable, from devkit/.
SCHEMAS = Path(__file__).resolve().parents[2] / "schemas" / "demo"
LEADS, ACTIVITIES = "crm.public.leads", "crm.public.activities"
_EPOCH = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
_FIRST = ["Asha", "Ravi", "Meera", "Arjun", "Priya", "Kabir", "Zoë", "Łukasz", "Ana", "Chen"]
_LAST = ["Iyer", "Sharma", "Nair", "Gupta", "Khan", "Das", "Müller", "Nowak", "Silva", "Wang"]
_CITIES = ["Bengaluru", "Mumbai", "Pune", "Chennai", "Delhi", "Hyderabad", None]
_COMPANIES = ["Acme Corp", "Globex", "Initech", None]


def schema_text(subject: str) -> str:
    """The JSON text of a demo schema, e.g. ``crm.public.leads-value``."""
    return (SCHEMAS / f"{subject}.avsc").read_text(encoding="utf-8")


@dataclass(frozen=True, slots=True)
class Event:
    """One record to produce: a row change, a tombstone (``value=None``), or raw bytes."""

    topic: str
    key: int | None
    value: dict[str, Any] | None = None
    raw: bytes | None = None


def lead_row(i: int, rng: random.Random, **changes: Any) -> dict[str, Any]:
    """Row ``i`` of the leads table (deterministic for a given ``rng`` state)."""
    first, last = rng.choice(_FIRST), rng.choice(_LAST)
    created = _EPOCH + timedelta(minutes=i)
    row = {
        "id": i,
        "email": f"lead{i}@example.com",
        "first_name": first,
        "last_name": last,
        "phone": f"+91-9{i:09d}",
        "company": rng.choice(_COMPANIES),
        "city": rng.choice(_CITIES),
        "kyc_status": rng.choice(["Pending", "Verified", None]),
        "kyc_document": f"KYC-{i:06d}.png",
        "lifetime_value": Decimal(rng.randrange(0, 10_000_000)) / 100,
        "marketing_opt_in": rng.choice([True, False, None]),
        "created_at": int(created.timestamp() * 1_000_000),
        "updated_at": (created + timedelta(seconds=30)).isoformat().replace("+00:00", "Z"),
    }
    return row | changes


def activity_row(i: int, lead: int, rng: random.Random, **changes: Any) -> dict[str, Any]:
    """Row ``i`` of the activities table, about lead number ``lead``."""
    occurred = _EPOCH + timedelta(minutes=lead, seconds=i)
    row = {
        "id": i,
        "lead_email": f"lead{lead}@example.com",
        "event_code": rng.choice([201, 202, 205]),
        "note": rng.choice(["Viewed pricing", "Requested demo", "Downloaded brochure", None]),
        "amount": Decimal(rng.randrange(0, 500_000)) / 100,
        "channel": rng.choice(["web", "mobile", "email"]),
        "occurred_at": int(occurred.timestamp() * 1_000_000),
    }
    return row | changes


def envelope(
    table: str,
    op: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    *,
    ts_ms: int,
    lsn: int = 0,
) -> dict[str, Any]:
    """A Debezium Postgres-connector change event for ``table``."""
    source = {
        "version": "2.7.3.Final",
        "connector": "postgresql",
        "name": "crm",
        "ts_ms": ts_ms,
        "snapshot": "true" if op == "r" else "false",
        "db": "crm",
        "schema": "public",
        "table": table,
        "txId": 1000 + lsn,
        "lsn": lsn,
    }
    return {
        "before": before,
        "after": after,
        "source": source,
        "op": op,
        "ts_ms": ts_ms + 7,
    }


class CdcWriter:
    """Produces events with Avro keys and values (Confluent wire format, schemas registered)."""

    def __init__(self, bootstrap: str, registry_url: str) -> None:
        self._registry = SchemaRegistryClient({"url": registry_url})
        self._producer = Producer(
            {"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 5}
        )
        self._serializers: dict[tuple[str, MessageField], AvroSerializer] = {}
        #: (partition, offset) of each event sent, by send order, once acknowledged
        self.positions: dict[int, tuple[int, int]] = {}
        self._sent = 0

    def encode(self, event: Event, topic: str | None = None) -> tuple[bytes | None, bytes | None]:
        """The key and value bytes ``event`` would be produced with (schemas registered)."""
        topic = topic or event.topic
        key = None if event.key is None else self._serialize(event.topic, topic, "key", event.key)
        value = event.raw
        if value is None and event.value is not None:
            value = self._serialize(event.topic, topic, "value", event.value)
        return key, value

    def send(self, event: Event, topic: str | None = None) -> None:
        """Produce one event, to ``topic`` if given (its schemas stay those of ``event.topic``);
        call :meth:`flush` to wait for all."""
        topic = topic or event.topic
        key, value = self.encode(event, topic)
        index, self._sent = self._sent, self._sent + 1

        def delivered(err: KafkaError | None, message: Message) -> None:
            if err is None:
                self.positions[index] = (message.partition() or 0, message.offset() or 0)

        self._producer.produce(topic, value=value, key=key, on_delivery=delivered)
        self._producer.poll(0)

    def flush(self, timeout: float = 30.0) -> None:
        """Wait until every event is acknowledged."""
        if left := self._producer.flush(timeout):
            raise RuntimeError(f"{left} CDC events were not acknowledged within {timeout} s")

    def close(self) -> None:
        self.flush()
        self._producer.close()
        self._registry.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _serialize(self, table: str, topic: str, part: str, data: Any) -> bytes:
        field = MessageField.KEY if part == "key" else MessageField.VALUE
        serializer = self._serializers.get((table, field))
        if serializer is None:
            text = schema_text(f"{table}-{part}")
            serializer = AvroSerializer(self._registry, text, conf={"auto.register.schemas": True})
            self._serializers[table, field] = serializer
        if part == "key":
            data = {"id": data}
        out = serializer(data, SerializationContext(topic, field))
        if not isinstance(out, bytes):
            raise TypeError(f"serializer returned {type(out).__name__}, not bytes")
        return out
