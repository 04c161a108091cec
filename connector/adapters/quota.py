"""[I/O] The quota topic (``output.quota_topic``): the calls each account spent of its daily quota,
per source partition and time slice (:mod:`connector.flow.quota`), so the count survives restarts
and rebalances and the fleet shares it. A record's key is ``account``, ``topic``, ``partition``
and ``slice`` joined by zero bytes; its value the slice's count so far (8 bytes, big-endian), so the
latest record of a key holds its count and the topic may be compacted or keep two days (or more)
of records. Reading starts at the records written since the counts that may still count, on every
partition of the topic.

The connector depends on it for a limit, so it fails closed (SPEC §2.10): :meth:`QuotaTopic.check`
stops the start when it cannot be described, written and read; later, a read that fails or is cut
short is an :class:`~connector.flow.quotas.Unread`, and a count the broker refuses is reported
(:meth:`QuotaTopic.reports`), which hold the accounts' calls until it works again. Its producer
never creates the topic: one created anew would hold no counts."""

from __future__ import annotations

import functools
import time
from typing import TYPE_CHECKING, Any

from confluent_kafka import KafkaError, KafkaException, TopicPartition

from connector.adapters.kafka import OwnTopic, build_consumer
from connector.errors import FatalError
from connector.flow.quota_count import Unread

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Mapping

    from confluent_kafka import Consumer, Message

    from connector.flow.offsets import TopicPartitionKey
    from connector.flow.quota_count import Report, Spent

__all__ = ["CREATE_ADVICE", "QuotaTopic"]

_SIZE = 8  # bytes of a count
#: The start's probe record: no key of ours (``_parse`` skips it) and no count (no 8 bytes).
_PROBE_KEY = b"lsq-sink\x00check"
#: Errors that end a read of the quota topic at once (others may pass: it runs to its deadline).
_UNREADABLE = {
    KafkaError.TOPIC_AUTHORIZATION_FAILED,
    KafkaError.UNKNOWN_TOPIC_OR_PART,
    KafkaError._UNKNOWN_TOPIC,
    KafkaError._UNKNOWN_PARTITION,
}
#: What to do about a quota topic that is not there.
CREATE_ADVICE = (
    "create it (any number of partitions, the replication factor of the results topic, "
    "cleanup.policy=compact,delete, retention.ms=172800000 or more: two days), give the "
    "connector's principal Describe, Read and Write on it, and start again; or remove the "
    "accounts' daily_quota"
)


def quota_key(account: str, tp: TopicPartitionKey, number: int) -> bytes:
    """The record key of ``account``'s count of partition ``tp`` in slice ``number``."""
    return "\x00".join((account, tp[0], str(tp[1]), str(number))).encode()


class QuotaTopic(OwnTopic):
    """Checks, reads and writes the quota topic."""

    ROLE = "quota"

    def __init__(
        self,
        consumer_config: Mapping[str, Any],
        producer_config: Mapping[str, Any],
        topic: str,
        warn: Callable[[str], None],
        timeout_s: float = 120.0,
    ) -> None:
        never_create = {**producer_config, "allow.auto.create.topics": False}
        super().__init__(consumer_config, never_create, topic, warn, timeout_s)
        self._reports: list[Report] = []

    def check(self, accounts: Collection[str], timeout: float = 30.0) -> None:
        """Raise :class:`FatalError` unless the topic exists and a probe record written to it is
        read back (nothing to check without ``accounts``, those with a daily quota)."""
        if not accounts:
            return
        consumer = build_consumer(self._config)
        try:
            problem = self._problem(consumer, time.monotonic() + timeout)
        except KafkaException as exc:
            problem = f"cannot be checked ({exc})"
        finally:
            consumer.close()
        if problem is not None:
            names = ", ".join(f"accounts.{name}.daily_quota" for name in accounts)
            raise FatalError(
                f"output.quota_topic {self._topic!r} {problem}: {names} counts the calls spent "
                f"there, and without it would count from zero after every restart; nothing was "
                f"sent. To fix: {CREATE_ADVICE}"
            )

    def read(
        self, tps: Collection[TopicPartitionKey], since: float
    ) -> dict[str, list[Spent]] | Unread:
        """The counts of ``tps`` written since ``since`` (wall-clock seconds), by account."""
        consumer = build_consumer(self._config)
        try:
            return self._read(consumer, set(tps), since)
        except KafkaException as exc:
            return Unread(f"cannot read the quota topic {self._topic!r}: {exc}")
        finally:
            consumer.close()

    def write(self, account: str, counts: Collection[Spent]) -> None:
        """Produce one record per count (and serve the producer's delivery reports)."""
        for tp, number, calls in counts:
            value = calls.to_bytes(_SIZE, "big")
            report = functools.partial(self._delivered, account, tp, number)
            try:
                key = quota_key(account, tp, number)
                self._producer.produce(self._topic, value, key, on_delivery=report)
            except (BufferError, KafkaException) as exc:
                why = f"cannot write to the quota topic {self._topic!r}: {exc}"
                self._reports.append((account, tp, number, why))
        self._producer.poll(0)

    def reports(self) -> list[Report]:
        """The delivery reports of the counts written since the last call."""
        self._producer.poll(0)
        out, self._reports = self._reports, []
        return out

    def _delivered(
        self,
        account: str,
        tp: TopicPartitionKey,
        number: int,
        error: KafkaError | None,
        _: Message,
    ) -> None:
        why = None if error is None else f"the quota topic {self._topic!r} refused: {error.str()}"
        self._reports.append((account, tp, number, why))

    def _problem(self, consumer: Consumer, deadline: float) -> str | None:
        """What keeps the topic from being used, if anything: described, written, read back."""
        meta = consumer.list_topics(self._topic, timeout=10).topics.get(self._topic)
        if meta is None or (meta.error and meta.error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART):
            return "does not exist"
        if meta.error is not None:
            return f"cannot be described ({meta.error.str()})"
        written: list[tuple[KafkaError | None, Message]] = []
        self._producer.produce(
            self._topic, b"", _PROBE_KEY, on_delivery=lambda e, m: written.append((e, m))
        )
        self._producer.flush(max(0.0, deadline - time.monotonic()))
        if not written:
            return "did not acknowledge a record written to it in time"
        error, message = written[0]
        if error is not None:
            return f"cannot be written ({error.str()})"
        partition, offset = message.partition() or 0, message.offset() or 0
        consumer.assign([TopicPartition(self._topic, partition, offset)])
        while time.monotonic() < deadline:
            for got in consumer.consume(100, 0.5):
                if (error := got.error()) is None and got.offset() == offset:
                    return None
                if error is not None and error.code() != KafkaError._PARTITION_EOF:
                    return f"cannot be read ({error.str()})"
        return "did not give back a record written to it in time"

    def _read(
        self, consumer: Consumer, tps: set[TopicPartitionKey], since: float
    ) -> dict[str, list[Spent]] | Unread:
        meta = consumer.list_topics(self._topic, timeout=10).topics.get(self._topic)
        if meta is None or meta.error is not None:
            error = "it does not exist" if meta is None else meta.error.str()
            return Unread(f"the quota topic {self._topic!r} cannot be read: {error}")
        start = int(since * 1000)
        wanted = [TopicPartition(self._topic, p, start) for p in meta.partitions]
        positions = consumer.offsets_for_times(wanted, timeout=10)
        if failed := [p.error for p in positions if p.error is not None]:
            return Unread(f"the quota topic {self._topic!r} cannot be read: {failed[0]}")
        consumer.assign(positions)
        latest: dict[bytes, int] = {}
        pending, deadline = {p.partition for p in positions}, time.monotonic() + self._timeout_s
        while pending and time.monotonic() < deadline:
            for message in consumer.consume(1000, 0.5):
                if (error := message.error()) is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        pending.discard(message.partition() or 0)
                    elif error.fatal() or error.code() in _UNREADABLE:
                        return Unread(f"the quota topic {self._topic!r}: {error.str()}")
                    continue
                key, value = message.key(), message.value()
                if isinstance(key, bytes) and isinstance(value, bytes) and len(value) == _SIZE:
                    latest[key] = max(latest.get(key, 0), int.from_bytes(value, "big"))
        if pending:
            why = f"partitions {sorted(pending)} not read to their end within {self._timeout_s} s"
            return Unread(f"the quota topic {self._topic!r}: {why}")
        found: dict[str, list[Spent]] = {}
        for key, calls in latest.items():
            if (parsed := _parse(key)) is not None and parsed[1] in tps:
                account, tp, number = parsed
                found.setdefault(account, []).append((tp, number, calls))
        return found


def _parse(key: bytes) -> tuple[str, TopicPartitionKey, int] | None:
    """The account, partition and slice a record key names (``None``: no key of ours)."""
    try:
        account, topic, partition, number = key.decode().split("\x00")
        return account, (topic, int(partition)), int(number)
    except ValueError:  # another shape, or not UTF-8 (UnicodeDecodeError is a ValueError)
        return None
