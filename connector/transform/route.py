"""[pure] A compiled route: how one consumed record becomes a payload for LeadSquared, a skip, or a
dead letter (decode → unwrap → map, SPEC §4)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

from connector.errors import FatalError, RecordError
from connector.records import DeadLetter, Skip
from connector.transform.unwrap import unwrap

if TYPE_CHECKING:
    from collections.abc import Callable

    from connector.lsq.coalesce import Coalesce
    from connector.records import Change, Mode, Operation, Payload, SourceRecord, Stage

__all__ = ["Route"]


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
    bulk: tuple[int, int] | None = None  # fewest and most rows of its bulk calls (None: no bulk)
    #: skip an update whose ``before`` maps to the same payload (SPEC §12): it changes nothing
    skip_unchanged: bool = False
    coalesce: Coalesce | None = None  # how waiting changes of one key share a call (None: never)
    #: skip a record whose payload LeadSquared last accepted for its key (with a state topic)
    remember: bool = False

    def prepare(self, record: SourceRecord) -> Payload | Skip | DeadLetter:
        """decode → unwrap → map: the call to make, a skip, or why the record is dead-lettered."""
        try:
            value = None if record.value is None else self.decode(record.value)
        except Exception as error:  # noqa: BLE001 - see _unprepared
            return _unprepared("decode", error)
        return self.prepare_value(value, record)

    def prepare_value(self, value: Any, record: SourceRecord) -> Payload | Skip | DeadLetter:
        """unwrap → map for an already decoded value; a snapshot read's payload says so."""
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
            payload = self.render(change, record)
        except Exception as error:  # noqa: BLE001 - see _unprepared
            return _unprepared("map", error)
        if self.skip_unchanged and self._unchanged(change, record, payload):
            return Skip("no_change")
        return replace(payload, snapshot=True) if change.snapshot else payload

    def _unchanged(self, change: Change, record: SourceRecord, payload: Payload) -> bool:
        """Whether the row before an update maps to ``payload`` too (exact when the source sends
        the whole row before, e.g. REPLICA IDENTITY FULL; a partial one maps differently)."""
        if change.op != "u" or not change.before:
            return False
        try:
            return self.render(replace(change, after=change.before, before=None), record) == payload
        except Exception:  # noqa: BLE001 - a before that does not map is no previous state
            return False


def _unprepared(stage: Stage, error: Exception) -> DeadLetter:
    """Whatever goes wrong while one record is prepared is that record's dead letter, never a
    crash (a restart would meet the same record again: SPEC §2.7). Only a :class:`FatalError`
    (the schema registry cannot be reached: every record would fail) stops the connector."""
    if isinstance(error, FatalError):
        raise error
    if isinstance(error, RecordError):
        return DeadLetter(error.stage, error.reason, type(error).__name__)
    return DeadLetter(stage, f"{type(error).__name__}: {error}", type(error).__name__)
