"""[pure] Python values from decoded rows → the strings LeadSquared expects (SPEC §4), plus the two
activity values with stricter rules: ``ActivityDateTime`` (UTC ``YYYY-MM-DD HH:MM:SS``) and
``ActivityEvent`` (a positive integer). Failures raise :class:`Unmappable` with a reason; the
caller adds the mapping path."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from uuid import UUID

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "Unmappable",
    "ValueFormatter",
    "activity_datetime",
    "activity_event",
    "format_datetime",
    "utc_from_ms",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DATE_PREFIX = re.compile(r"\d{4}-\d{2}-\d{2}(?:$|[T ])")
_DIGITS = re.compile(r"[0-9]+")
#: Decimals whose digits would reach this far from the point are refused (a "1E+999999999"
#: value would otherwise become a gigabyte string).
_MAX_DECIMAL_EXPONENT = 1000
#: LeadSquared activity codes are 32-bit integers on its side.
_MAX_EVENT = 2**31 - 1
_MAX_EVENT_DIGITS = len(str(_MAX_EVENT))


class Unmappable(ValueError):  # noqa: N818 -- internal signal, turned into MappingError by callers
    """A value that cannot become a LeadSquared string; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def utc_from_ms(ms: int) -> datetime:
    """Milliseconds since the epoch → aware UTC datetime (exact, no float rounding)."""
    try:
        return _EPOCH + timedelta(milliseconds=ms)
    except OverflowError:
        raise Unmappable(f"timestamp {ms} ms is out of range") from None


def format_datetime(value: datetime) -> str:
    """A datetime → UTC ``YYYY-MM-DD HH:MM:SS`` (naive values are read as UTC; sub-seconds cut)."""
    if value.tzinfo is not None:
        try:
            value = value.astimezone(UTC)
        except OverflowError:
            raise Unmappable(f"datetime {value.isoformat()} is out of range in UTC") from None
    return (
        f"{value.year:04d}-{value.month:02d}-{value.day:02d} "
        f"{value.hour:02d}:{value.minute:02d}:{value.second:02d}"
    )


def _format_date(value: date) -> str:
    return f"{value.year:04d}-{value.month:02d}-{value.day:02d}"


def _format_time(value: time) -> str:
    return f"{value.hour:02d}:{value.minute:02d}:{value.second:02d}"


def _format_int(value: int) -> str:
    try:
        return int.__repr__(value)
    except ValueError:  # past sys.get_int_max_str_digits()
        raise Unmappable("integer has too many digits") from None


def _format_float(value: float) -> str:
    if not math.isfinite(value):
        raise Unmappable(f"cannot map the float {value!r}")
    if value == 0:
        return "0"
    text = format(Decimal(repr(value)), "f")  # repr is the shortest round-tripping form
    return text.rstrip("0").rstrip(".") if "." in text else text


def _format_decimal(value: Decimal) -> str:
    if not value.is_finite():
        raise Unmappable(f"cannot map the decimal {value}")
    exponent = value.as_tuple().exponent
    if value.adjusted() > _MAX_DECIMAL_EXPONENT or -int(exponent) > _MAX_DECIMAL_EXPONENT:
        raise Unmappable(f"decimal {value} is out of range")
    return format(value.copy_abs() if value.is_zero() else value, "f")


def _refuse(kind: str, hint: str) -> Callable[[Any], str]:
    def refuse(_: Any) -> str:
        raise Unmappable(f"cannot map {kind}; {hint}")

    return refuse


_REFUSE_BYTES = _refuse("bytes", "decode them upstream or map a text field")
_REFUSE_DICT = _refuse("a dict", "map its fields instead")
_REFUSE_LIST = _refuse("a list", "map its items instead (e.g. field.0)")


class ValueFormatter:
    """Formats row values as LeadSquared strings; ``booleans`` are the (true, false) forms."""

    __slots__ = ("_by_type",)

    def __init__(self, booleans: tuple[str, str]) -> None:
        true, false = booleans
        self._by_type: dict[type, Callable[[Any], str]] = {
            str: str,
            bool: lambda value: true if value else false,
            int: _format_int,
            float: _format_float,
            Decimal: _format_decimal,
            datetime: format_datetime,
            date: _format_date,
            time: _format_time,
            UUID: str,
            bytes: _REFUSE_BYTES,
            bytearray: _REFUSE_BYTES,
            memoryview: _REFUSE_BYTES,
            dict: _REFUSE_DICT,
            list: _REFUSE_LIST,
            tuple: _REFUSE_LIST,
        }

    def __call__(self, value: Any) -> str:
        """The LeadSquared string for a non-null ``value``; raises Unmappable."""
        formatter = self._by_type.get(type(value))
        if formatter is None:
            formatter = self._by_subclass(value)
        return formatter(value)

    def _by_subclass(self, value: Any) -> Callable[[Any], str]:
        # Exact types are looked up first; subclasses (str enums, Mapping types) land here.
        for kind, formatter in self._by_type.items():
            if isinstance(value, kind):
                return str.__str__ if kind is str else formatter
        if isinstance(value, Mapping):
            return _REFUSE_DICT
        if isinstance(value, Sequence):
            return _REFUSE_LIST
        return _refuse(f"a {type(value).__name__}", "map a field of a supported type")


def activity_datetime(text: str) -> str:
    """A formatted value → ``ActivityDateTime``: ``YYYY-MM-DD HH:MM:SS`` or ISO-8601 (converted
    to UTC; naive read as UTC; a bare date is midnight). Anything else raises Unmappable."""
    if _DATE_PREFIX.match(text):
        try:
            return format_datetime(datetime.fromisoformat(text))
        except ValueError:
            pass
    raise Unmappable(f"{text!r} is not a date-time (YYYY-MM-DD HH:MM:SS or ISO-8601)")


def activity_event(text: str) -> int:
    """A formatted value → ``ActivityEvent``: a positive integer in decimal digits."""
    stripped = text.strip()
    if _DIGITS.fullmatch(stripped) and len(stripped) <= _MAX_EVENT_DIGITS:
        code = int(stripped)
        if 0 < code <= _MAX_EVENT:
            return code
    raise Unmappable(f"{text!r} is not an activity event code (an integer > 0)")
