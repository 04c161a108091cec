"""``lsq-sink validate``: check a configuration without calling LeadSquared. Settings are already
validated when this runs; here the schema registry is reached, each route's latest value schema
fetched, and sample records (from a file, or the first records of each topic) rendered into the
exact payloads the connector would send. With ``--live``, one rendered sample per route is then
sent for real (:mod:`connector.commands.live`)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, TextIO

from confluent_kafka import OFFSET_BEGINNING, TopicPartition

from connector.adapters.kafka import build_consumer
from connector.adapters.schemas import RegistrySchemas, registry_client
from connector.commands.live import Sample, live
from connector.commands.run import build_routes
from connector.lsq.catalog import endpoint
from connector.records import DeadLetter, Payload, Skip, SourceRecord

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from confluent_kafka import Consumer

    from connector.settings.model import Settings
    from connector.transform.route import Route

__all__ = ["validate"]


def validate(
    settings: Settings,
    samples: Path | None,
    out: TextIO,
    from_topics: int = 0,
    live_timeout: float | None = None,
) -> int:
    """Print one JSON line per check and per sample; 0 when all pass, 1 otherwise. With a
    ``live_timeout`` (``--live``), each route's first rendered sample is also sent to LeadSquared
    and an async one's status awaited for up to that many seconds."""
    ok = True
    chosen: dict[str, Sample] = {}  # route name → the sample --live sends

    def emit(line: dict[str, Any]) -> None:
        nonlocal ok
        ok = ok and "error" not in line
        out.write(json.dumps(line, ensure_ascii=False, default=str) + "\n")
        out.flush()  # live checks wait: show each line as it comes

    def rendered(
        route: Route | None, topic: str, prepared: Payload | Skip | DeadLetter | None
    ) -> None:
        emit(_render(settings, route, topic, prepared))
        if route is not None and isinstance(prepared, Payload):
            chosen.setdefault(route.name, Sample(route, prepared))

    emit({"check": "configuration", "routes": [route.name for route in settings.routes]})
    registry = settings.schema_registry
    client = None
    if registry is not None:
        auth = registry.basic_auth_user_info
        client = registry_client(registry.url, auth.get_secret_value() if auth else None)
    try:
        if client is not None:
            for line in _schema_checks(settings, client):
                emit(line)
        routes = build_routes(settings, RegistrySchemas(client) if client else None)
        if samples is not None:
            for topic, value in _file_samples(samples, emit):
                route, record = routes(topic), SourceRecord(topic, 0, 0, None, None)
                rendered(route, topic, route.prepare_value(value, record) if route else None)
        if from_topics:
            for record in _topic_samples(settings, from_topics):
                route = routes(record.topic)
                rendered(route, record.topic, route.prepare(record) if route else None)
    finally:
        if client is not None:
            client.close()
    calls = 0 if live_timeout is None else live(settings, chosen, emit, live_timeout)
    emit({"check": "done", "result": "ok" if ok else "problems found", "api_calls": calls})
    return 0 if ok else 1


def _schema_checks(settings: Settings, client: Any) -> Iterator[dict[str, Any]]:
    for route in settings.routes:
        for topic in route.topics:
            subject = f"{topic}-value"
            try:
                latest = client.get_latest_version(subject)
            except Exception as exc:  # noqa: BLE001 - any registry problem is reported, not raised
                yield {"check": "schema", "subject": subject, "error": str(exc)}
                continue
            yield {
                "check": "schema",
                "subject": subject,
                "schema_id": latest.schema_id,
                "version": latest.version,
            }


def _file_samples(path: Path, emit: Callable[[dict[str, Any]], None]) -> Iterator[tuple[str, Any]]:
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            sample = json.loads(line)
            yield str(sample["topic"]), sample.get("value")
        except (ValueError, KeyError, TypeError) as exc:
            emit({"sample": f"{path}:{number}", "error": f"not a sample record: {exc}"})


def _topic_samples(settings: Settings, count: int) -> Iterator[SourceRecord]:
    consumer = build_consumer(
        settings.kafka.consumer_config()
        | {"group.id": f"{settings.kafka.group_id}-validate", "enable.partition.eof": True}
    )
    try:
        for route in settings.routes:
            for topic in route.topics:
                yield from _first_records(consumer, topic, count)
    finally:
        consumer.close()


def _first_records(consumer: Consumer, topic: str, count: int) -> Iterator[SourceRecord]:
    """Up to ``count`` records from the start of ``topic`` (read-only: nothing is committed)."""
    meta = consumer.list_topics(topic, timeout=10).topics.get(topic)
    if meta is None or meta.error is not None:
        return
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in meta.partitions])
    seen, ended = 0, 0
    while seen < count and ended < len(meta.partitions):
        messages = consumer.consume(count - seen, 2.0)
        if not messages:
            return  # nothing more within the timeout
        for message in messages:
            if message.error() is not None:  # end of a partition
                ended += 1
                continue
            seen += 1
            yield SourceRecord(
                topic,
                message.partition() or 0,
                message.offset() or 0,
                message.key(),
                message.value(),
            )


def _render(
    settings: Settings,
    route: Route | None,
    topic: str,
    prepared: Payload | Skip | DeadLetter | None,
) -> dict[str, Any]:
    line: dict[str, Any] = {"sample": topic, "route": route.name if route else None}
    if route is None or prepared is None:
        return line | {"error": "no route consumes this topic"}
    if isinstance(prepared, Skip):
        return line | {"outcome": "skipped", "reason": prepared.reason}
    if isinstance(prepared, DeadLetter):
        return line | {"stage": prepared.stage, "error": prepared.reason}
    account = settings.accounts[route.account]
    host = account.async_host if route.mode == "async" else account.api_host
    return line | {
        "operation": prepared.operation,
        "url": f"{str(host).rstrip('/')}{endpoint(prepared.operation, route.mode).path}",
        "params": dict(prepared.params),
        "body": prepared.body,
    }
