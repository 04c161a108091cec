"""Small Kafka helpers shared by the tests, the demo and the benchmarks: create topics, read a topic
to a count, read a group's committed offsets. Reads use partition assignment, not a group join."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Message, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic  # not re-exported by confluent_kafka.admin's stubs

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "Received",
    "committed_offsets",
    "create_topics",
    "read_all",
    "read_topic",
    "unique_name",
]


@dataclass(frozen=True, slots=True)
class Received:
    """One record read back from a topic."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    timestamp_ms: int


def unique_name(prefix: str) -> str:
    """A topic or group name no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def create_topics(
    bootstrap: str, partitions: Mapping[str, int], config: Mapping[str, str] | None = None
) -> None:
    """Create topics (name → partition count) and wait until the broker confirms each."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    new = [
        NewTopic(name, count, 1, config=dict(config or {})) for name, count in partitions.items()
    ]
    for future in admin.create_topics(new, operation_timeout=10).values():
        future.result(timeout=15)


def _partitions(consumer: Consumer, topic: str, timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        meta = consumer.list_topics(topic, timeout=5).topics.get(topic)
        if meta is not None and meta.error is None and meta.partitions:
            return sorted(meta.partitions)
        time.sleep(0.1)
    raise TimeoutError(f"topic {topic!r} has no partitions after {timeout} s")


def read_topic(bootstrap: str, topic: str, expected: int, timeout: float = 30.0) -> list[Received]:
    """Read ``topic`` from the beginning until ``expected`` records arrived (or time runs out);
    fail if more arrive within a short grace period, so counts are exact."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": unique_name("reader"),
            "enable.auto.commit": False,
        }
    )
    try:
        parts = _partitions(consumer, topic, timeout)
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
        out: list[Received] = []
        deadline = time.monotonic() + timeout
        while len(out) < expected and time.monotonic() < deadline:
            out.extend(_received(m) for m in consumer.consume(500, 0.2) if m.error() is None)
        out.extend(_received(m) for m in consumer.consume(500, 0.3) if m.error() is None)
    finally:
        consumer.close()
    if len(out) != expected:
        raise AssertionError(f"topic {topic!r}: expected {expected} records, read {len(out)}")
    return out


def read_all(bootstrap: str, topic: str, timeout: float = 30.0) -> list[Received]:
    """Every record of ``topic`` up to the end of each partition (from fetch responses' end
    offsets, not ListOffsets, which Tansu answers wrongly)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": unique_name("reader"),
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    try:
        parts = _partitions(consumer, topic, timeout)
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
        out: list[Received] = []
        pending, deadline = set(parts), time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            for message in consumer.consume(500, 0.2):
                if message.error() is None:
                    out.append(_received(message))
                else:
                    pending.discard(message.partition() or 0)
    finally:
        consumer.close()
    if pending:
        raise AssertionError(f"topic {topic!r}: partitions {sorted(pending)} not read to the end")
    return out


def _received(message: Message) -> Received:
    raw = message.headers() or []
    pairs = raw.items() if isinstance(raw, dict) else raw
    headers = tuple((k, _as_bytes(v) or b"") for k, v in pairs)
    return Received(
        topic=message.topic() or "",
        partition=message.partition() or 0,
        offset=message.offset() or 0,
        key=_as_bytes(message.key()),
        value=_as_bytes(message.value()),
        headers=headers,
        timestamp_ms=message.timestamp()[1],
    )


def _as_bytes(data: str | bytes | None) -> bytes | None:
    return data.encode() if isinstance(data, str) else data


def committed_offsets(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    """The group's committed offset per partition of ``topic`` (-1001 when none)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        parts = _partitions(consumer, topic, 10)
        committed = consumer.committed([TopicPartition(topic, p) for p in parts], timeout=10)
    except KafkaException as exc:
        raise RuntimeError(f"cannot read committed offsets of group {group!r}: {exc}") from exc
    finally:
        consumer.close()
    return {tp.partition: tp.offset for tp in committed}
