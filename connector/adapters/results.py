"""Write outcomes (SPEC §5): results records (Avro) and dead letters (the original record plus
Kafka-Connect-compatible and ``lsq.*`` headers), with an idempotent ``acks=all`` producer. Each
record's outcome is reported durable only from the broker's acknowledgement; a delivery failure is
latched and raised on the next :meth:`OutcomeWriter.poll`, so nothing past it is committed.

A record too large for the producer (``message.max.bytes``) is cut down before it is produced, and
one the broker refuses as too large (its ``max.message.bytes`` is lower) is cut down further and
produced again (:func:`connector.flow.codec.fit`): no size stops the connector."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from confluent_kafka import KafkaError, KafkaException

from connector.adapters.kafka import build_producer
from connector.errors import OutputError
from connector.flow.codec import OutcomeRecord, dead_letter, fit, result
from connector.logs import get_logger

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from confluent_kafka import Message

    from connector.flow.deadline import Deadline
    from connector.records import Accepted, DeadLetter, SourceRecord

__all__ = ["OutcomeWriter"]

_log = get_logger(__name__)

_IDLE_POLL_S = 0.1
_PRODUCER_MAX_MESSAGE = 1_000_000  # librdkafka's default message.max.bytes


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
        self._producer = build_producer({**producer_config, "error_cb": self._client_error})
        self._limit = int(producer_config.get("message.max.bytes", _PRODUCER_MAX_MESSAGE))
        self._results, self._dlq, self._encode = results_topic, dead_letter_topic, encode
        self._failure: OutputError | None = None
        self._refused: list[_Outgoing] = []  # refused by the broker as too large: cut, resend
        self._polled = 0.0
        self._progress_at = time.monotonic()  # last acknowledgement, or when waiting began
        self._stall_s = stall_warning_s
        self.delayed = False  # outcomes have waited _stall_s without any acknowledgement
        self.pending = 0

    def result(self, record: SourceRecord, accepted: Accepted, durable: Callable[[], None]) -> None:
        """Write the results record of an accepted source record, keyed by its key."""
        value, headers = result(record, accepted)
        out = OutcomeRecord(record.key, self._encode(value), (), headers, droppable_value=False)
        self._produce(_Outgoing(self._results, record, out, "accepted", durable), self._limit)

    def dead_letter(
        self, record: SourceRecord, why: DeadLetter, durable: Callable[[], None]
    ) -> None:
        """Write the original record, unchanged, with the error headers."""
        out = dead_letter(record, why)
        self._produce(_Outgoing(self._dlq, record, out, "dead-letter", durable), self._limit)

    def poll(self) -> None:
        """Serve delivery reports (when some are due, or every 0.1 s for the client's own
        events: each call hands the GIL to other threads); raise the first delivery failure."""
        now = time.monotonic()
        if self.pending or now - self._polled >= _IDLE_POLL_S:
            self._polled = now
            self._producer.poll(0)
            self._resend()
        self._raise_failure()
        if self.pending and not self.delayed and now - self._progress_at > self._stall_s:
            self.delayed = True
            _log.warning(
                "results.delayed",
                topics=[self._results, self._dlq],
                waiting=self.pending,
                reason=f"nothing acknowledged for {self._stall_s:g} s; nothing past them commits",
            )

    def flush(self, deadline: Deadline) -> bool:
        """Wait until ``deadline`` for every outcome to be acknowledged; ``True`` if all were."""
        while True:
            left = self._producer.flush(deadline.left())
            if not self._resend():
                break
        self._raise_failure()
        return left == 0

    def close(self, deadline: Deadline) -> None:
        self._producer.flush(deadline.left())
        self._producer.close()

    def _produce(self, outgoing: _Outgoing, limit: int) -> None:
        """Produce ``outgoing`` cut down to ``limit`` bytes (see the module docstring)."""
        topic, record, outcome = outgoing.topic, outgoing.record, outgoing.outcome
        out = fit(outgoing.out, limit)
        if out is None:
            error = (
                f"larger than {limit} bytes even without its value, key and source headers "
                "(is kafka.producer message.max.bytes above the topic's max.message.bytes?)"
            )
            raise _unwritten(outcome, record, topic, error)
        if out is not outgoing.out:
            cut = {k: (v or b"").decode() for k, v in out.headers if k.endswith(".omitted")}
            _log.warning("outcome.cut", **_where(record), topic_out=topic, limit=limit, **cut)
        sent = replace(outgoing, out=out)

        def delivered(err: KafkaError | None, _: Message) -> None:
            self.pending -= 1
            if err is None:
                self._acknowledged()
                sent.durable()
            elif err.code() == KafkaError.MSG_SIZE_TOO_LARGE and self._failure is None:
                self.pending += 1  # still waiting: produced again (see _resend)
                self._refused.append(replace(sent, refusals=sent.refusals + 1))
            else:
                self._failure = self._failure or _unwritten(outcome, record, topic, err.str())

        headers: list[tuple[str, str | bytes | None]] = [*out.all_headers]
        if not self.pending:
            self._progress_at = time.monotonic()
        self.pending += 1
        while True:
            try:
                self._producer.produce(
                    topic, out.value, out.key, headers=headers, on_delivery=delivered
                )
                return
            except BufferError:  # local queue full: serve deliveries, then try again
                self._producer.poll(0.1)
            except KafkaException as exc:  # refused at once: nothing written
                self.pending -= 1
                error = exc.args[0].str() if exc.args else str(exc)
                raise _unwritten(outcome, record, topic, error) from None

    def _resend(self) -> bool:
        """Produce again what the broker refused as too large; whether there was any. The broker
        refuses a whole request, which may hold other records too: a record refused once goes
        again as it was, one refused again is cut (and so on, until nothing is left to cut)."""
        refused, self._refused = self._refused, []
        for outgoing in refused:
            self.pending -= 1
            size = outgoing.out.size
            try:
                self._produce(outgoing, size if outgoing.refusals == 1 else size - 1)
            except OutputError as error:
                self._failure = self._failure or error
        return bool(refused)

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


@dataclass(frozen=True, slots=True)
class _Outgoing:
    """An outcome record on its way: where to, about which source record, and what to call."""

    topic: str
    record: SourceRecord
    out: OutcomeRecord
    outcome: str
    durable: Callable[[], None]
    refusals: int = 0  # times the broker refused it as too large


def _where(record: SourceRecord) -> dict[str, Any]:
    return {"topic": record.topic, "partition": record.partition, "offset": record.offset}


def _unwritten(outcome: str, record: SourceRecord, topic: str, error: str) -> OutputError:
    where = f"{record.topic}[{record.partition}]@{record.offset}"
    return OutputError(
        f"could not write the {outcome} record of {where} to topic {topic!r}: {error}"
    )
