"""``lsq-sink validate``: check a configuration without calling LeadSquared. Settings are already
validated when this runs; here the schema registry is reached, each route's latest value schema
fetched, and sample records (from a file, or the first records of each topic) rendered into the
exact payloads the connector would send."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, TextIO

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from connector.app import build_routes
from connector.errors import LsqSinkError, RecordError
from connector.records import Skip, SourceRecord
from connector.schemas import RegistrySchemas, registry_client
from connector.submit import endpoint
from connector.unwrap import unwrap

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from connector.pipeline import Route
    from connector.settings import Settings

__all__ = ["validate"]


def validate(settings: Settings, samples: Path | None, out: TextIO, from_topics: int = 0) -> int:
    """Print one JSON line per check and per sample; 0 when all pass, 1 otherwise."""
    ok = True

    def emit(line: dict[str, Any]) -> None:
        nonlocal ok
        ok = ok and "error" not in line
        out.write(json.dumps(line, ensure_ascii=False, default=str) + "\n")

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
        records: list[tuple[str, Any, Any]] = []
        if samples is not None:
            records += list(_file_samples(samples, emit))
        if from_topics:
            records += list(_topic_samples(settings, from_topics, routes))
        for topic, decoded, raw in records:
            emit(_render(settings, routes, topic, decoded, raw))
    finally:
        if client is not None:
            client.close()
    emit({"check": "done", "result": "ok" if ok else "problems found", "api_calls": 0})
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


def _file_samples(
    path: Path, emit: Callable[[dict[str, Any]], None]
) -> Iterator[tuple[str, Any, Any]]:
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            sample = json.loads(line)
            yield str(sample["topic"]), sample.get("value"), None
        except (ValueError, KeyError, TypeError) as exc:
            emit({"sample": f"{path}:{number}", "error": f"not a sample record: {exc}"})


def _topic_samples(
    settings: Settings, count: int, routes: Callable[[str], Route | None]
) -> Iterator[tuple[str, Any, Any]]:
    consumer = Consumer(
        settings.kafka.consumer_config()
        | {"group.id": f"{settings.kafka.group_id}-validate", "enable.partition.eof": True}
    )
    try:
        for route in settings.routes:
            for topic in route.topics:
                yield from _first_records(consumer, topic, count, routes)
    finally:
        consumer.close()


def _first_records(
    consumer: Consumer, topic: str, count: int, routes: Callable[[str], Route | None]
) -> Iterator[tuple[str, Any, Any]]:
    meta = consumer.list_topics(topic, timeout=10).topics.get(topic)
    if meta is None or meta.error is not None:
        yield topic, None, LsqSinkError(f"topic {topic} not found")
        return
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in meta.partitions])
    route, seen, ended = routes(topic), 0, 0
    while seen < count and ended < len(meta.partitions):
        messages = consumer.consume(count - seen, 2.0)
        if not messages:
            return  # nothing more within the timeout
        for message in messages:
            if message.error() is not None:  # end of a partition
                ended += 1
                continue
            seen += 1
            value = message.value()
            try:
                decoded = None if value is None or route is None else route.decode(value)
            except RecordError as exc:
                yield topic, None, exc
            else:
                yield topic, decoded, None


def _render(
    settings: Settings,
    routes: Callable[[str], Route | None],
    topic: str,
    decoded: Any,
    failure: Any,
) -> dict[str, Any]:
    route = routes(topic)
    line: dict[str, Any] = {"sample": topic, "route": route.name if route else None}
    if route is None:
        return line | {"error": "no route consumes this topic"}
    if isinstance(failure, RecordError):
        return line | {"stage": failure.stage, "error": failure.reason}
    if failure is not None:
        return line | {"error": str(failure)}
    record = SourceRecord(topic, 0, 0, None, None)
    try:
        change = unwrap(decoded)
        if isinstance(change, Skip):
            return line | {"outcome": "skipped", "reason": change.reason}
        payload = route.render(change, record)
    except RecordError as exc:
        return line | {"stage": exc.stage, "error": exc.reason}
    account = settings.accounts[route.account]
    host = account.async_host if route.mode == "async" else account.api_host
    return line | {
        "operation": payload.operation,
        "url": f"{str(host).rstrip('/')}{endpoint(payload.operation, route.mode)}",
        "params": dict(payload.params),
        "body": payload.body,
    }
