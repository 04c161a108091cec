"""[pure] The ``Activity`` object of a lead_and_activity payload (create-lead-and-activity seed):
``ActivityEvent`` (a positive integer), ``ActivityNote``, ``ActivityDateTime`` (UTC
``YYYY-MM-DD HH:MM:SS``; default: the change time, else the record timestamp) and ``Fields``."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeAlias

from connector.errors import ConfigError, MappingError
from connector.records import Change, SourceRecord
from connector.transform.fields import Row, compile_entries, compile_value, render_entries
from connector.transform.spec import FieldSpec
from connector.transform.values import (
    Unmappable,
    activity_datetime,
    activity_event,
    format_datetime,
    utc_from_ms,
)

if TYPE_CHECKING:
    from connector.transform.fields import Entry, Resolve
    from connector.transform.spec import ActivitySpec, FieldSource
    from connector.transform.values import ValueFormatter

__all__ = ["ActivityRenderer"]

#: Computes ActivityEvent for one record.
EventOf: TypeAlias = Callable[[Row, Change, SourceRecord], int]

_NO_SET = "a custom field set is only valid under lead and activity.fields"


class ActivityRenderer:
    """Renders the ``Activity`` object; compiled once from an :class:`ActivitySpec`."""

    __slots__ = ("_datetime", "_event", "_fields", "_note")

    def __init__(self, spec: ActivitySpec, fmt: ValueFormatter) -> None:
        self._event = _event(spec.event, "activity.event", fmt)
        note = spec.note
        self._note = None if note is None else compile_value(note, "activity.note", fmt, _NO_SET)
        self._datetime = _datetime(spec.datetime, "activity.datetime", fmt)
        self._fields: tuple[Entry, ...] = compile_entries(
            spec.fields, "activity.fields", fmt, "SchemaName"
        )

    def __call__(self, row: Row, change: Change, record: SourceRecord) -> dict[str, Any]:
        """The ``Activity`` object for one record; raises MappingError."""
        activity: dict[str, Any] = {"ActivityEvent": self._event(row, change, record)}
        if self._note is not None and (note := self._note(row, change, record)) is not None:
            activity["ActivityNote"] = note
        if (when := self._datetime(row, change, record)) is not None:
            activity["ActivityDateTime"] = when
        if fields := render_entries(self._fields, row, change, record):
            activity["Fields"] = fields
        return activity


def _fixed(code: int) -> EventOf:
    return lambda _row, _change, _record: code


def _constant_event(value: int | str, key: str) -> EventOf:
    try:
        return _fixed(activity_event(str(value)))
    except Unmappable as exc:
        raise ConfigError(f"{key}: {exc.reason}") from None


def _event(source: int | FieldSource, key: str, fmt: ValueFormatter) -> EventOf:
    """``event: 201`` (or ``"201"``, or ``{const: 201}``) is checked now; a path or template
    is checked per record."""
    if isinstance(source, bool):
        raise ConfigError(f"{key}: must be a positive integer, not a boolean")
    if isinstance(source, int):
        return _constant_event(source, key)
    if isinstance(source, str) and source.strip().isascii() and source.strip().isdigit():
        return _constant_event(source, key)
    resolve = compile_value(source, key, fmt, _NO_SET)
    if isinstance(source, FieldSpec) and source.const is not None:
        return _constant_event(fmt(source.const), f"{key}.const")
    if isinstance(source, FieldSpec) and source.default is not None:
        _constant_event(fmt(source.default), f"{key}.default")

    def event(row: Row, change: Change, record: SourceRecord) -> int:
        text = resolve(row, change, record)
        if text is None:
            raise MappingError(key, "no value (ActivityEvent is required)")
        try:
            return activity_event(text)
        except Unmappable as exc:
            raise MappingError(key, exc.reason) from None

    return event


def _datetime(source: FieldSource | None, key: str, fmt: ValueFormatter) -> Resolve:
    """A mapped date-time (checked now when constant), falling back to the change time."""
    resolve = None if source is None else compile_value(source, key, fmt, _NO_SET)
    if isinstance(source, FieldSpec) and source.const is not None:
        constant = _constant_datetime(fmt(source.const), f"{key}.const")
        return lambda _row, _change, _record: constant
    if isinstance(source, FieldSpec) and source.default is not None:
        _constant_datetime(fmt(source.default), f"{key}.default")

    def when(row: Row, change: Change, record: SourceRecord) -> str | None:
        try:
            text = None if resolve is None else resolve(row, change, record)
            if text is not None:
                return activity_datetime(text)
            ms = change.ts_ms if change.ts_ms is not None else record.timestamp_ms
            return None if ms is None else format_datetime(utc_from_ms(ms))
        except Unmappable as exc:
            raise MappingError(key, exc.reason) from None

    return when


def _constant_datetime(text: str, key: str) -> str:
    try:
        return activity_datetime(text)
    except Unmappable as exc:
        raise ConfigError(f"{key}: {exc.reason}") from None
