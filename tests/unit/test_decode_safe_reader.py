"""Pins the one private fastavro API the decoder uses: ``fastavro._read_py.schemaless_reader``.

fastavro's public ``schemaless_reader`` is compiled and recurses on the C stack: deeply nested data
of a recursive schema (a linked list, a tree) kills the process with SIGSEGV, which no ``except``
catches (fastavro 1.13.1: at 10 000 levels). fastavro has no public pure-Python reader, so
:mod:`connector.transform.decode` reads recursive schemas with this private one, which raises
``RecursionError`` instead. If an upgrade moves, renames or changes it, these tests say so first.
"""

from __future__ import annotations

import inspect
import io
from typing import Any

import fastavro
import pytest

from connector.errors import DecodeError
from connector.transform.decode import Decoder, writer_schema

NODE = {"type": "record", "name": "Node", "fields": [{"name": "next", "type": ["null", "Node"]}]}
PINNED = "fastavro._read_py.schemaless_reader (see connector/transform/decode.py)"


def _pure_reader() -> Any:
    """The private reader, failing the test clearly if it is gone or no longer pure Python (a
    compiled one would crash this process on the deep input below instead of raising)."""
    try:
        from fastavro import _read_py  # noqa: PLC0415 (a missing module is the failure to report)
    except ImportError as exc:
        pytest.fail(f"{PINNED}: fastavro._read_py is gone ({exc}); find another safe reader")
    reader = getattr(_read_py, "schemaless_reader", None)
    if not inspect.isfunction(reader) or reader.__module__ != "fastavro._read_py":
        pytest.fail(f"{PINNED} is no longer a pure-Python function: {reader!r}")
    return reader


def test_the_private_reader_takes_what_the_decoder_passes() -> None:
    """The decoder calls it as ``read(stream, parsed_schema, None)``: those three come first and
    may be passed by position; anything after them has a default."""
    parameters = list(inspect.signature(_pure_reader()).parameters.values())
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    first = [(p.name, p.kind in positional) for p in parameters[:3]]
    assert first == [("fo", True), ("writer_schema", True), ("reader_schema", True)], PINNED
    assert all(p.default is not p.empty for p in parameters[3:]), PINNED


def test_the_private_reader_reads_what_the_public_one_does() -> None:
    """A known record (nested records, a union, an array, a map) reads back the same with both."""
    schema = {
        "type": "record",
        "name": "Lead",
        "fields": [
            {"name": "id", "type": "long"},
            {"name": "email", "type": ["null", "string"]},
            {"name": "tags", "type": {"type": "array", "items": "string"}},
            {"name": "attrs", "type": {"type": "map", "values": "double"}},
            {"name": "chain", "type": NODE},
        ],
    }
    row = {
        "id": -7,
        "email": "a@example.com",
        "tags": ["vip", ""],
        "attrs": {"score": 1.5},
        "chain": {"next": {"next": None}},
    }
    parsed = fastavro.parse_schema(schema)
    out = io.BytesIO()
    fastavro.schemaless_writer(out, parsed, row)
    body = out.getvalue()
    assert _pure_reader()(io.BytesIO(body), parsed, None) == row, PINNED
    assert fastavro.schemaless_reader(io.BytesIO(body), parsed, None) == row


def test_the_private_reader_raises_ordinary_errors_on_hostile_input() -> None:
    """Nesting past Python's recursion limit raises RecursionError; a cut-off body EOFError:
    exceptions the decoder turns into DecodeError, not a crash."""
    reader, parsed = _pure_reader(), fastavro.parse_schema(NODE)
    with pytest.raises(RecursionError):
        reader(io.BytesIO(b"\x02" * 200_000 + b"\x00"), parsed, None)
    with pytest.raises(EOFError):
        reader(io.BytesIO(b"\x02" * 5), parsed, None)


def test_recursive_schemas_and_only_they_get_the_private_reader() -> None:
    """The decoder picks it for a recursive schema (and the compiled one otherwise), and a
    hostile record then fails as a DecodeError."""
    recursive = writer_schema(None, NODE)
    assert recursive.read is _pure_reader()
    flat = {"type": "record", "name": "Flat", "fields": [{"name": "n", "type": "int"}]}
    assert writer_schema(None, flat).read is fastavro.schemaless_reader
    with pytest.raises(DecodeError, match="RecursionError"):
        Decoder(raw=recursive).decode(b"\x02" * 200_000 + b"\x00")
