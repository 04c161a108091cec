"""[pure] Logical types → the conversion of each: what fastavro returns for a leaf schema (or a
Debezium ``VariableScaleDecimal`` record) → the Python value the mapping sees.

Timestamps (Avro ``timestamp-*``, ``local-timestamp-*`` read as UTC, Debezium and Kafka Connect
types named by ``connect.name``) become aware UTC ``datetime``; dates ``date``; times of day
``time``; decimals exact ``Decimal``; the rest stays as fastavro returns it (``uuid``: ``UUID``).
:mod:`connector.transform.converter` puts these together into one converter per schema.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from functools import partial
from typing import TYPE_CHECKING, Any, TypeAlias

from fastavro.read import LOGICAL_READERS

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["Convert", "Unconvertible", "identity", "leaf_converter", "logical_record_converter"]

Convert: TypeAlias = "Callable[[Any], Any]"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_DAY = _EPOCH.date().toordinal()
_DAY_MICROS = 86_400_000_000
_CONVERSION_ERRORS = (ValueError, ArithmeticError, TypeError)
#: How much of an unconvertible value an error message shows.
_SHOWN = 60
#: Longest unscaled decimal accepted (~1,200 digits; PostgreSQL's declared maximum is 1,000).
#: Turning an int into a Decimal takes time quadratic in its length: 1 MB would take minutes.
_MAX_DECIMAL_BYTES = 512


class Unconvertible(Exception):  # noqa: N818 - internal, always turned into a DecodeError
    """A value its logical type cannot hold; ``steps`` gathers the field path on the way out."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.steps: list[str] = []

    @property
    def message(self) -> str:
        path = "".join(reversed(self.steps)).lstrip(".")
        return f"field {path}: {self.reason}" if path else self.reason


def identity(value: Any) -> Any:
    """The converter of a schema without logical types."""
    return value


def _from_millis(value: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=value)


def _from_micros(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)


def _from_nanos(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value // 1000)


def _as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC)


def _from_days(value: int) -> date:
    return date.fromordinal(_EPOCH_DAY + value)


def _time_of_day(micros: int) -> time:
    if not 0 <= micros < _DAY_MICROS:
        raise ValueError("not within a day")
    seconds, micro = divmod(micros, 1_000_000)
    minutes, second = divmod(seconds, 60)
    hour, minute = divmod(minutes, 60)
    return time(hour, minute, second, micro)


def _time_millis(value: int) -> time:
    return _time_of_day(value * 1000)


def _time_nanos(value: int) -> time:
    return _time_of_day(value // 1000)


def _zoned_timestamp(text: str) -> datetime:
    parsed = datetime.fromisoformat(text)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _zoned_time(text: str) -> time:
    parsed = time.fromisoformat(text)
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return datetime.combine(_EPOCH.date(), parsed).astimezone(UTC).timetz()


def _decimal(unscaled: bytes, scale: int) -> Decimal:
    """Two's-complement big-endian unscaled bytes → the exact Decimal (no context rounding)."""
    if len(unscaled) > _MAX_DECIMAL_BYTES:
        raise ValueError(f"{len(unscaled)} bytes, more than the {_MAX_DECIMAL_BYTES} allowed")
    sign, digits, _ = Decimal(int.from_bytes(unscaled, "big", signed=True)).as_tuple()
    return Decimal((sign, digits, -scale))


def _variable_scale_decimal(value: dict[str, Any]) -> Decimal:
    return _decimal(value["value"], value["scale"])


_INTS, _STRING = frozenset({"int", "long"}), frozenset({"string"})
_DBZ, _CONNECT = "io.debezium.time.", "org.apache.kafka.connect.data."
_CONNECT_DECIMAL, _VARIABLE_SCALE = f"{_CONNECT}Decimal", "io.debezium.data.VariableScaleDecimal"
#: ``connect.name`` → (Avro types it may annotate, conversion).
_CONNECT_TYPES: dict[str, tuple[frozenset[str], Convert]] = {
    f"{_DBZ}Timestamp": (_INTS, _from_millis),
    f"{_DBZ}MicroTimestamp": (_INTS, _from_micros),
    f"{_DBZ}NanoTimestamp": (_INTS, _from_nanos),
    f"{_DBZ}ZonedTimestamp": (_STRING, _zoned_timestamp),
    f"{_DBZ}Date": (_INTS, _from_days),
    f"{_DBZ}Time": (_INTS, _time_millis),
    f"{_DBZ}MicroTime": (_INTS, _time_of_day),
    f"{_DBZ}NanoTime": (_INTS, _time_nanos),
    f"{_DBZ}ZonedTime": (_STRING, _zoned_time),
    f"{_CONNECT}Timestamp": (_INTS, _from_millis),
    f"{_CONNECT}Date": (_INTS, _from_days),
    f"{_CONNECT}Time": (_INTS, _time_millis),
}
#: Avro 1.12 logical types fastavro 1.13 leaves as plain ints.
_AVRO_NANOS = frozenset({"timestamp-nanos", "local-timestamp-nanos"})


def _leaf(kind: str, convert: Convert) -> Convert:
    def leaf(value: Any) -> Any:
        try:
            return convert(value)
        except _CONVERSION_ERRORS as exc:
            text = repr(value)
            text = text if len(text) <= _SHOWN else f"{text[: _SHOWN - 3]}..."
            raise Unconvertible(f"{text} is not a valid {kind} ({exc})") from exc

    return leaf


def leaf_converter(schema: dict[str, Any]) -> Convert | None:
    """The conversion for a primitive, fixed or enum schema, if it has a logical type."""
    kind, logical = schema["type"], schema.get("logicalType", "")
    if logical == "decimal" and kind in {"bytes", "fixed"}:
        del schema["logicalType"]  # fastavro would round to the declared precision: read bytes
        return _leaf("decimal", partial(_decimal, scale=int(schema.get("scale", 0))))
    if f"{kind}-{logical}" in LOGICAL_READERS:  # fastavro converts it already
        return _leaf(logical, _as_utc) if logical.startswith("local-timestamp") else None
    if kind == "long" and logical in _AVRO_NANOS:
        return _leaf(logical, _from_nanos)
    connect = schema.get("connect.name", "")
    if connect == _CONNECT_DECIMAL and kind == "bytes":
        scale = (schema.get("connect.parameters") or {}).get("scale", schema.get("scale", 0))
        return _leaf(connect, partial(_decimal, scale=int(scale)))
    accepts, convert = _CONNECT_TYPES.get(connect, (frozenset(), identity))
    return _leaf(connect, convert) if kind in accepts else None


def logical_record_converter(schema: dict[str, Any]) -> Convert | None:
    """The conversion for a record schema that is a logical type as a whole (Debezium's
    ``VariableScaleDecimal``: a scale and unscaled bytes), if it is one."""
    names = {field["name"] for field in schema["fields"]}
    is_variable_scale = _VARIABLE_SCALE in {schema.get("connect.name"), schema["name"]}
    if is_variable_scale and names >= {"scale", "value"}:
        return _leaf(_VARIABLE_SCALE, _variable_scale_decimal)
    return None
