"""[pure] Logical types of a writer schema → one converter compiled per schema, touching only the
fields that need it (nested records, arrays, maps and union branches included).

Timestamps (Avro ``timestamp-*``, ``local-timestamp-*`` read as UTC, Debezium and Kafka Connect
types named by ``connect.name``) become aware UTC ``datetime``; dates ``date``; times of day
``time``; decimals exact ``Decimal``; the rest stays as fastavro returns it (``uuid``: ``UUID``).
Converters mutate the fresh containers fastavro returns instead of copying them.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from functools import partial
from typing import TYPE_CHECKING, Any, TypeAlias
from uuid import UUID

from fastavro.read import LOGICAL_READERS

if TYPE_CHECKING:
    from collections.abc import Callable

    from fastavro.types import NamedSchemas, Schema

__all__ = ["Convert", "Unconvertible", "compile_converter", "identity"]

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
#: The Python type fastavro returns for each Avro type, then for the logical types it converts.
_PY_TYPES: dict[str, type] = {"null": type(None), "boolean": bool, "int": int, "long": int}
_PY_TYPES |= {"float": float, "double": float, "bytes": bytes, "string": str, "fixed": bytes}
_PY_TYPES |= {"enum": str, "array": list, "map": dict, "record": dict, "error": dict}
_LOGICAL_PY_TYPES: dict[str, type] = {"date": date, "time-millis": time, "time-micros": time}
_LOGICAL_PY_TYPES |= {"uuid": UUID} | dict.fromkeys(
    ["timestamp-millis", "timestamp-micros", "local-timestamp-millis", "local-timestamp-micros"],
    datetime,
)


def _leaf(kind: str, convert: Convert) -> Convert:
    def leaf(value: Any) -> Any:
        try:
            return convert(value)
        except _CONVERSION_ERRORS as exc:
            text = repr(value)
            text = text if len(text) <= _SHOWN else f"{text[: _SHOWN - 3]}..."
            raise Unconvertible(f"{text} is not a valid {kind} ({exc})") from exc

    return leaf


def _leaf_converter(schema: dict[str, Any]) -> Convert | None:
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


def _record_converter(fields: tuple[tuple[str, Convert], ...]) -> Convert:
    def record(value: dict[str, Any]) -> dict[str, Any]:
        for name, convert in fields:
            try:
                value[name] = convert(value[name])
            except Unconvertible as exc:
                exc.steps.append(f".{name}")
                raise
        return value

    return record


def _array_converter(convert: Convert) -> Convert:
    def array(items: list[Any]) -> list[Any]:
        for index, item in enumerate(items):
            try:
                items[index] = convert(item)
            except Unconvertible as exc:
                exc.steps.append(f"[{index}]")
                raise
        return items

    return array


def _map_converter(convert: Convert) -> Convert:
    def mapping(values: dict[str, Any]) -> dict[str, Any]:
        for key, item in values.items():
            try:
                values[key] = convert(item)
            except Unconvertible as exc:
                exc.steps.append(f"[{key}]")
                raise
        return values

    return mapping


def _union_converter(table: dict[type, Convert]) -> Convert:
    """Picks the branch by the Python type fastavro returned (exactly: a ``bool`` is no ``int``)."""
    if len(table) == 1:
        [(branch_type, convert)] = table.items()
        return lambda value: convert(value) if type(value) is branch_type else value
    return lambda value: table.get(type(value), identity)(value)


def identity(value: Any) -> Any:
    """The converter of a schema without logical types."""
    return value


def compile_converter(schema: Schema, named: NamedSchemas) -> tuple[Convert | None, bool]:
    """The converter for a parsed schema (``None`` when nothing needs converting) and whether the
    schema is recursive."""
    compiler = _Compiler(named)
    return compiler.node(schema, ""), compiler.recursive


def _is_leaf(kind: Any, named: NamedSchemas) -> bool:
    """Whether a schema's ``type`` is a type name (not a nested schema or a named reference)."""
    return isinstance(kind, str) and kind not in named


class _Compiler:
    """Walks a parsed schema once; named types are compiled once, recursion through a lazy link."""

    def __init__(self, named: NamedSchemas) -> None:
        self._named = named
        self._done: dict[str, Convert | None] = {}
        self._active: set[str] = set()
        self.recursive = False

    def node(self, schema: Any, path: str) -> Convert | None:
        if isinstance(schema, list):
            return self._union(schema, path)
        if isinstance(schema, str):
            return self._named_type(schema, path) if schema in self._named else None
        kind = schema["type"]
        if not isinstance(kind, str) or kind in self._named:
            return self.node(kind, path)
        if kind in {"record", "error", "fixed", "enum"}:
            return self._named_type(schema["name"], path, schema)
        if kind == "array":
            return self._array(schema["items"], path)
        if kind == "map":
            convert = self.node(schema["values"], f"{path}[]")
            return None if convert is None else _map_converter(convert)
        return _leaf_converter(schema)

    def _named_type(self, name: str, path: str, schema: Any = None) -> Convert | None:
        if name in self._done:
            return self._done[name]
        if name in self._active:
            self.recursive = True
            return partial(self._late, name)
        self._active.add(name)
        schema = self._named[name] if schema is None else schema
        is_record = schema["type"] in {"record", "error"}
        self._done[name] = self._record(schema, path) if is_record else _leaf_converter(schema)
        self._active.discard(name)
        return self._done[name]

    def _late(self, name: str, value: Any) -> Any:
        """A recursive type's converter, looked up when called (it was unfinished when linked)."""
        return (self._done[name] or identity)(value)

    def _record(self, schema: dict[str, Any], path: str) -> Convert | None:
        names = {field["name"] for field in schema["fields"]}
        is_variable_scale = _VARIABLE_SCALE in {schema.get("connect.name"), schema["name"]}
        if is_variable_scale and names >= {"scale", "value"}:
            return _leaf(_VARIABLE_SCALE, _variable_scale_decimal)
        fields = []
        for field in schema["fields"]:
            convert = self.node(field["type"], f"{path}.{field['name']}")
            if convert is not None:
                fields.append((field["name"], convert))
        return _record_converter(tuple(fields)) if fields else None

    def _array(self, items: Any, path: str) -> Convert | None:
        if self._zero_width(items, frozenset()):
            where = path.lstrip(".") or "the top-level array"
            raise ValueError(
                f"{where} holds items that take no bytes (null or empty): a corrupt block count "
                "would make reading it loop without end"
            )
        convert = self.node(items, f"{path}[]")
        return None if convert is None else _array_converter(convert)

    def _union(self, branches: list[Any], path: str) -> Convert | None:
        groups: dict[type, list[tuple[Any, Convert | None]]] = {}
        for branch in branches:
            convert = self.node(branch, path)
            groups.setdefault(self._python_type(branch), []).append((branch, convert))
        table = {
            branch_type: self._dispatch(group, path)
            for branch_type, group in groups.items()
            if any(convert is not None for _, convert in group)
        }
        return _union_converter(table) if table else None

    def _dispatch(self, group: list[tuple[Any, Convert | None]], path: str) -> Convert:
        """One converter for union branches fastavro returns as the same Python type: records
        told apart by their field names."""
        if len(group) == 1:
            return group[0][1] or identity
        by_fields: dict[frozenset[str], Convert] = {}
        for branch, convert in group:
            fields = self._field_names(branch)
            if fields is None or fields in by_fields:
                where = path.lstrip(".") or "the top-level union"
                raise ValueError(f"union {where}: cannot tell apart branches that need converting")
            by_fields[fields] = convert or identity
        return lambda value: by_fields.get(frozenset(value), identity)(value)

    def _resolve(self, schema: Any) -> Any:
        """A schema with named references and ``{"type": <schema>}`` wrappers followed."""
        while True:
            if isinstance(schema, str) and schema in self._named:
                schema = self._named[schema]
            elif isinstance(schema, dict) and not _is_leaf(schema["type"], self._named):
                schema = schema["type"]
            else:
                return schema

    def _python_type(self, schema: Any) -> type:
        schema = self._resolve(schema)
        if isinstance(schema, str):
            return _PY_TYPES.get(schema, object)
        if isinstance(schema, list):
            return object  # a union in a union is not valid Avro
        kind, logical = schema["type"], schema.get("logicalType")
        if f"{kind}-{logical}" in LOGICAL_READERS:
            return _LOGICAL_PY_TYPES.get(logical, _PY_TYPES.get(kind, object))
        return _PY_TYPES.get(kind, object)

    def _field_names(self, schema: Any) -> frozenset[str] | None:
        schema = self._resolve(schema)
        if isinstance(schema, dict) and schema["type"] in {"record", "error"}:
            return frozenset(field["name"] for field in schema["fields"])
        return None

    def _zero_width(self, schema: Any, seen: frozenset[str]) -> bool:
        """Whether values of this type are encoded in no bytes at all (``seen``: the records
        being looked into, so recursion ends; a record inside itself is not zero-width)."""
        schema = self._resolve(schema)
        if isinstance(schema, str):
            return schema == "null"
        if isinstance(schema, list):
            return False  # the branch index takes a byte
        kind = schema["type"]
        if kind == "fixed":
            return bool(schema["size"] == 0)
        if kind in {"record", "error"}:
            if schema["name"] in seen:
                return False
            seen |= {schema["name"]}
            return all(self._zero_width(field["type"], seen) for field in schema["fields"])
        return bool(kind == "null")
