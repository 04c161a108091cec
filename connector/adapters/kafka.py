"""[I/O] Where the connector's Kafka clients are built: settings librdkafka refuses when a client
is created become a :class:`~connector.errors.ConfigError` naming the ``kafka`` section (exit 2,
not a traceback). Also reads a message's headers the one way the connector needs them."""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from confluent_kafka import Consumer, KafkaException, Producer

from connector.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

    from confluent_kafka import Message

    from connector.flow.deadline import Deadline

__all__ = [
    "OwnTopic",
    "build_consumer",
    "build_producer",
    "headers_of",
    "reader_config",
    "settings_refused",
]


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


T = TypeVar("T")


class OwnTopic:
    """A topic the connector keeps its own state in (:attr:`ROLE`: the state topic, the quota
    topic): written by a producer, read back by a consumer of its own (:func:`reader_config`)."""

    ROLE: ClassVar[str]

    def __init__(
        self,
        consumer_config: Mapping[str, Any],
        producer_config: Mapping[str, Any],
        topic: str,
        warn: Callable[[str], None],
        timeout_s: float = 120.0,
    ) -> None:
        self._config = reader_config(consumer_config, self.ROLE)
        self._producer = build_producer(dict(producer_config))
        self._topic, self._warn, self._timeout_s = topic, warn, timeout_s

    def flush(self, deadline: Deadline) -> bool:
        """Wait until every record written is acknowledged (by ``deadline``); whether all were."""
        return self._producer.flush(deadline.left()) == 0

    def close(self, deadline: Deadline) -> None:
        self.flush(deadline)

    def _reading(self, read: Callable[[Consumer], T], otherwise: T) -> T:
        """``read`` with a consumer of its own; ``otherwise`` (and a warning) when Kafka fails."""
        consumer = build_consumer(self._config)
        try:
            return read(consumer)
        except KafkaException as exc:
            self._warn(f"cannot read the {self.ROLE} topic {self._topic!r}: {exc}")
            return otherwise
        finally:
            consumer.close()
