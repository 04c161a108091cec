"""[I/O] Where the connector's Kafka clients are built: settings librdkafka refuses when a client
is created become a :class:`~connector.errors.ConfigError` naming the ``kafka`` section (exit 2,
not a traceback). Also reads a message's headers the one way the connector needs them."""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from confluent_kafka import Consumer, KafkaException, Producer

from connector.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from confluent_kafka import Message

__all__ = ["build_consumer", "build_producer", "headers_of", "reader_config", "settings_refused"]


@contextmanager
def settings_refused(section: str) -> Iterator[None]:
    """Turn a :class:`KafkaException` raised inside into a ConfigError about ``kafka.<section>``."""
    try:
        yield
    except KafkaException as exc:
        error = exc.args[0].str() if exc.args else str(exc)
        raise ConfigError(f"kafka.{section}: librdkafka refused the settings: {error}") from None


def build_consumer(config: Mapping[str, Any]) -> Consumer:
    """A consumer with ``config`` (settings refused: ConfigError about ``kafka.consumer``)."""
    with settings_refused("consumer"):
        return Consumer(dict(config))


def reader_config(consumer_config: Mapping[str, Any], role: str) -> dict[str, Any]:
    """The configuration of a consumer that reads a topic to its end on its own (outcomes read
    back, the state topic): its own group id (``<group>-<role>``), end-of-partition events, no
    commits."""
    group = consumer_config.get("group.id", "lsq-sink")
    return {
        **consumer_config,
        "group.id": f"{group}-{role}",
        "enable.partition.eof": True,
        "enable.auto.commit": False,
    }


def build_producer(config: Mapping[str, Any]) -> Producer:
    """A producer with ``config`` (settings refused: ConfigError about ``kafka.producer``)."""
    with settings_refused("producer"):
        return Producer(dict(config))


def headers_of(message: Message) -> tuple[tuple[str, bytes], ...]:
    """A message's headers as (name, bytes) pairs, in order."""
    raw = message.headers() or []
    pairs = raw.items() if isinstance(raw, dict) else raw
    return tuple((k, v.encode() if isinstance(v, str) else v or b"") for k, v in pairs)
