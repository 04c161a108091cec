"""The pipeline's ports and the small state it keeps per route and account: protocols for the
Kafka input, the outcome writer and the HTTP calls (so the loop can run against fakes in tests),
the compiled :class:`Route` (decode → unwrap → map for one record), the per-account
:class:`Account` and the :class:`Tally`."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from connector.errors import FatalError, RecordError
from connector.records import DeadLetter, Skip
from connector.transform.unwrap import unwrap

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from connector.flow.gates import RateGate
    from connector.flow.offsets import TopicPartitionKey
    from connector.lsq.answers import Verdict
    from connector.records import (
        Accepted,
        Answer,
        Change,
        Mode,
        Operation,
        Payload,
        SourceRecord,
        Stage,
    )
    from connector.settings.model import RetrySettings

__all__ = ["Account", "Calls", "Input", "Output", "Recovery", "Route", "Tally"]


class Input(Protocol):
    """The Kafka source (see :class:`connector.adapters.consume.Source`)."""

    def poll(self, max_records: int, timeout: float) -> list[SourceRecord]: ...
    def assignment(self) -> list[TopicPartitionKey]: ...
    def pause(self, tps: list[TopicPartitionKey]) -> None: ...
    def resume(self, tps: list[TopicPartitionKey]) -> None: ...
    def commit(self, positions: Mapping[TopicPartitionKey, int]) -> str | None: ...
    def committed(self, tps: list[TopicPartitionKey]) -> dict[TopicPartitionKey, int]: ...
    def lag(self) -> int: ...
    def topic_partitions(self) -> dict[str, int]: ...
    def close(self) -> None: ...


class Output(Protocol):
    """The results and dead-letter writer (:class:`~connector.adapters.results.OutcomeWriter`)."""

    def result(
        self, record: SourceRecord, accepted: Accepted, durable: Callable[[], None]
    ) -> None: ...
    def dead_letter(
        self, record: SourceRecord, why: DeadLetter, durable: Callable[[], None]
    ) -> None: ...

    delayed: bool  # outcomes have waited long without any acknowledgement

    def poll(self) -> None: ...
    def flush(self, timeout: float) -> bool: ...


class Recovery(Protocol):
    """Finds records that already have an outcome (:class:`~connector.adapters.ledger.Ledger`)."""

    def done(
        self, committed: Mapping[TopicPartitionKey, int]
    ) -> dict[TopicPartitionKey, set[int]]: ...


class Calls(Protocol):
    """The HTTP side (see :class:`connector.adapters.submit.Submitter`)."""

    in_flight: int

    def submit(self, ticket: int, account: str, mode: Mode, payload: Payload) -> None: ...
    def collect(self, timeout: float) -> list[tuple[int, Answer]]: ...


@dataclass(frozen=True, slots=True)
class Route:
    """A compiled route: how records of its topics become calls of one account."""

    name: str
    account: str
    operation: Operation
    mode: Mode
    on_delete: Literal["skip", "dead_letter"]
    decode: Callable[[bytes], Any]
    render: Callable[[Change, SourceRecord], Payload]

    def prepare(self, record: SourceRecord) -> Payload | Skip | DeadLetter:
        """decode → unwrap → map: the call to make, a skip, or why the record is dead-lettered."""
        try:
            value = None if record.value is None else self.decode(record.value)
        except Exception as error:  # noqa: BLE001 - see _unprepared
            return _unprepared("decode", error)
        return self.prepare_value(value, record)

    def prepare_value(self, value: Any, record: SourceRecord) -> Payload | Skip | DeadLetter:
        """unwrap → map for an already decoded value."""
        try:
            change = unwrap(value)
        except Exception as error:  # noqa: BLE001 - see _unprepared
            return _unprepared("unwrap", error)
        if isinstance(change, Skip):
            return change
        if change.op == "d":
            if self.on_delete == "skip":
                return Skip("delete")
            return DeadLetter("unwrap", "delete event (on_delete: dead_letter)", "DeleteEvent")
        try:
            return self.render(change, record)
        except Exception as error:  # noqa: BLE001 - see _unprepared
            return _unprepared("map", error)


def _unprepared(stage: Stage, error: Exception) -> DeadLetter:
    """Whatever goes wrong while one record is prepared is that record's dead letter, never a
    crash (a restart would meet the same record again: SPEC §2.7). Only a :class:`FatalError`
    (the schema registry cannot be reached: every record would fail) stops the connector."""
    if isinstance(error, FatalError):
        raise error
    if isinstance(error, RecordError):
        return DeadLetter(error.stage, error.reason, type(error).__name__)
    return DeadLetter(stage, f"{type(error).__name__}: {error}", type(error).__name__)


@dataclass(slots=True)
class Account:
    """One LeadSquared account's gate and state, shared by all its routes."""

    name: str
    gate: RateGate
    concurrency: int
    cooldown: float  # seconds to send nothing after a throttle answer
    budget: tuple[int, float] = (25, 5.0)  # the account's calls per window, for the whole fleet
    shared: bool = True  # this replica takes a share of the budget by its partitions
    answers: Counter[str] = field(default_factory=Counter)  # answers by verdict kind
    in_flight: int = 0
    rejected: str | None = None  # why LeadSquared rejects the keys (401/403), while it does
    probe_at: float = 0.0
    failures_in_a_row: int = 0  # transient failures (5xx, timeouts, refused connections)
    down_until: float = 0.0  # while it looks down: the next probe, not before
    throttled_since: float | None = None  # first of the throttle answers in a row
    throttle_spell: str | None = None  # why: only throttles for too long (then: one probe)

    def looks_down(self, threshold: int) -> bool:
        """Whether so many calls failed in a row that LeadSquared looks unavailable."""
        return self.failures_in_a_row >= threshold

    def probing(self, threshold: int) -> bool:
        """Whether only one call at a time may go out: the keys are rejected, LeadSquared looks
        down, or it has answered nothing but throttles for too long."""
        return (
            self.rejected is not None
            or self.looks_down(threshold)
            or self.throttle_spell is not None
        )

    def note_answer(self, verdict: Verdict, now: float, retry: RetrySettings) -> str | None:
        """Track LeadSquared's health from one answer. Transient failures in a row mean it looks
        down, and then only one probe at a time goes out, at growing intervals (at most
        ``retry.probe_max_seconds``), until any other answer shows it is back. Throttle answers
        alone for ``retry.throttle_unavailable_seconds`` count the same way (one probe a
        cool-down), until any other answer. Returns the change to log, if any:
        ``"unavailable"``, ``"throttled_out"`` or ``"available_again"``."""
        if verdict.kind == "throttled":
            self.throttled_since = now if self.throttled_since is None else self.throttled_since
            spell = now - self.throttled_since
            if self.throttle_spell is None and spell >= retry.throttle_unavailable_seconds:
                self.throttle_spell = f"LeadSquared has answered only throttles for {spell:.0f} s"
                return "throttled_out"
            return None
        was_throttled_out = self.throttle_spell is not None
        self.throttled_since = self.throttle_spell = None
        threshold = retry.outage_threshold
        if verdict.kind != "retry":
            was_down = self.looks_down(threshold)
            self.failures_in_a_row, self.down_until = 0, 0.0
            return "available_again" if was_down or was_throttled_out else None
        self.failures_in_a_row += 1
        if not self.looks_down(threshold):
            return "available_again" if was_throttled_out else None
        probes = self.failures_in_a_row - threshold
        pause = retry.backoff_base_seconds * 2.0 ** min(probes, 30)
        self.down_until = now + min(retry.probe_max_seconds, pause)
        return "unavailable" if probes == 0 else None


@dataclass(slots=True)
class Tally:
    """What happened so far (SPEC §10's summary line)."""

    consumed: int = 0
    accepted: int = 0
    dead_lettered: int = 0
    skipped: int = 0
    recovered: int = 0  # outcome written before a restart: not called again
    api_calls: int = 0
    throttled: int = 0
    retried: int = 0
    ambiguous: int = 0  # calls retried although LeadSquared may have received them

    @property
    def lost(self) -> int:
        """Consumed records with no outcome: non-zero only while work is in flight."""
        done = self.accepted + self.dead_lettered + self.skipped + self.recovered
        return self.consumed - done
