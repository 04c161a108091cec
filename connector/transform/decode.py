"""[pure] Bytes of a Kafka record value → Python data: the Confluent wire format (or, without a
registry, a bare Avro body) read with the record's writer schema, logical types normalised.

A writer schema is prepared once (:func:`writer_schema`): fastavro parses it and
:mod:`connector.transform.converter` compiles the converter for its logical types. The hot path is
the 5-byte header, one fastavro read and that converter. Every failure is a
:class:`~connector.errors.DecodeError` saying what is wrong.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from io import BytesIO
from typing import IO, TYPE_CHECKING, Any, Protocol, cast

import fastavro
from fastavro import _read_py

from connector.errors import DecodeError
from connector.transform.converter import compile_converter
from connector.transform.logical import Convert, Unconvertible, identity

if TYPE_CHECKING:
    from collections.abc import Callable

    from fastavro.types import NamedSchemas, Schema

__all__ = [
    "HEADER_SIZE",
    "Decoder",
    "WriterSchema",
    "WriterSchemas",
    "add_named_types",
    "wire_schema_id",
    "writer_schema",
]

#: Magic byte (1) + big-endian schema id (4) in front of the Avro body.
HEADER_SIZE = 5

_HINTS = {
    0x01: "; Confluent's schema-GUID format is not supported",
    0x7B: "; is it JSON?",
    0x5B: "; is it JSON?",
}


class _Read(Protocol):
    def __call__(self, fo: IO[bytes], writer_schema: Schema, reader_schema: None, /) -> Any: ...


#: fastavro's compiled reader recurses on the C stack: a recursive schema (a tree, a linked list)
#: with deeply nested data crashes the process (SIGSEGV). Such schemas use the pure-Python reader,
#: which raises RecursionError instead. fastavro has no public name for it: this private one is
#: pinned by tests/unit/test_decode_safe_reader.py.
_FAST_READ: _Read = fastavro.schemaless_reader
_SAFE_READ = cast("_Read", _read_py.schemaless_reader)


@dataclass(frozen=True, slots=True)
class WriterSchema:
    """A writer schema ready for the hot path: the fastavro-parsed ``schema`` (its decimals carry no
    ``logicalType``: ``convert`` makes them exact instead of fastavro's rounding to the declared
    precision), the compiled ``convert`` (identity when nothing needs converting) and the fastavro
    ``read`` function to use. ``schema_id`` is ``None`` in registry-less raw mode."""

    schema_id: int | None
    schema: Schema
    convert: Convert = identity
    read: _Read = _FAST_READ

    @property
    def label(self) -> str:
        """How error messages name this schema."""
        return "the writer schema" if self.schema_id is None else f"writer schema {self.schema_id}"

    def decode_body(self, value: bytes, start: int = 0) -> Any:
        """Read the Avro body at ``value[start:]`` (all of it) and convert its logical types."""
        stream = BytesIO(value)
        stream.seek(start)
        try:
            data = self.read(stream, self.schema, None)
        except Exception as exc:  # fastavro raises built-in errors of many types on bad input
            raise DecodeError(f"Avro body does not match {self.label}: {_describe(exc)}") from exc
        if extra := len(value) - stream.tell():
            raise DecodeError(
                f"{extra} trailing bytes after the Avro record (wrong writer schema?)"
            )
        try:
            return self.convert(data)
        except Unconvertible as exc:
            raise DecodeError(exc.message) from exc


def writer_schema(
    schema_id: int | None, schema: str | Schema, named_schemas: NamedSchemas | None = None
) -> WriterSchema:
    """Parse a writer schema (JSON text or its decoded form, not one fastavro already parsed:
    preparing it adjusts the parsed copy) and compile its converter.

    ``named_schemas`` holds named types parsed from the schema's references, if any. Raises
    ``ValueError`` saying why when the schema is not valid JSON, not valid Avro, or cannot be read
    safely (an array of items that take no bytes; an ambiguous union of convertible types).
    """
    named: NamedSchemas = {} if named_schemas is None else named_schemas
    parsed = _parse(schema, named)
    convert, recursive = compile_converter(parsed, named)
    read = _SAFE_READ if recursive else _FAST_READ
    return WriterSchema(schema_id, parsed, convert or identity, read)


def add_named_types(schema: str | Schema, named_schemas: NamedSchemas) -> None:
    """Parse a schema another one references, adding its named types to ``named_schemas`` (then
    given to :func:`writer_schema`); ``ValueError`` as there."""
    _parse(schema, named_schemas)


def _parse(schema: str | Schema, named: NamedSchemas) -> Schema:
    if isinstance(schema, str):
        try:
            schema = json.loads(schema)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not valid JSON ({exc})") from exc
    if isinstance(schema, dict) and "__fastavro_parsed" in schema:
        raise ValueError("pass the schema's JSON, not a schema fastavro has parsed")
    try:
        return fastavro.parse_schema(schema, named)
    except Exception as exc:  # fastavro raises built-in errors of many types on bad schemas
        raise ValueError(f"not a valid Avro schema ({_describe(exc)})") from exc


class WriterSchemas(Protocol):
    """Where writer schemas come from (a schema registry, ``.avsc`` files)."""

    def get(self, schema_id: int) -> WriterSchema:
        """The writer schema with this id.

        Raises :class:`~connector.errors.DecodeError` for an id the source does not know (or a
        schema it cannot use) and :class:`~connector.errors.SchemaSourceError` when the source
        cannot be reached right now.
        """
        ...


class Decoder:
    """Decodes record values: Confluent wire format with ``schemas``, or bare Avro bodies all
    written with one ``raw`` writer schema (registry-less mode). Give exactly one of them."""

    __slots__ = ("_locate",)

    def __init__(
        self, schemas: WriterSchemas | None = None, raw: WriterSchema | None = None
    ) -> None:
        if (schemas is None) == (raw is None):
            raise ValueError(
                "Decoder needs exactly one of schemas= (wire format) or raw= (bare Avro)"
            )
        self._locate: Callable[[bytes], tuple[WriterSchema, int]]
        if raw is not None:
            self._locate = lambda _value: (raw, 0)
        elif schemas is not None:
            self._locate = lambda value: (schemas.get(wire_schema_id(value)), HEADER_SIZE)

    def decode(self, value: bytes) -> Any:
        """The decoded value: a dict for a record, with logical types converted."""
        if not value:
            raise DecodeError("empty value")
        schema, start = self._locate(value)
        return schema.decode_body(value, start)


def wire_schema_id(value: bytes) -> int:
    """The schema id in a Confluent wire-format header; ``DecodeError`` when there is none."""
    if len(value) < HEADER_SIZE:
        raise DecodeError(
            f"value is {len(value)} bytes, shorter than the {HEADER_SIZE}-byte wire-format header"
        )
    if magic := value[0]:
        hint = _HINTS.get(magic, "")
        raise DecodeError(f"magic byte 0x{magic:02x} is not 0 (not Confluent wire format{hint})")
    return int.from_bytes(value[1:HEADER_SIZE], "big")


def _describe(exc: BaseException) -> str:
    text = str(exc)
    name = type(exc).__name__
    return f"{name}: {text}" if text else name
