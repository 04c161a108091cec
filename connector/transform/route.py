"""[pure] A compiled route: how one consumed record becomes a payload for LeadSquared, a skip, or a
dead letter (decode → unwrap → map, SPEC §4)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from connector.errors import FatalError, RecordError
from connector.records import DeadLetter, Skip
from connector.transform.unwrap import unwrap

if TYPE_CHECKING:
    from collections.abc import Callable

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
