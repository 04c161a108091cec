"""Decoding record values: the Confluent wire format, raw mode, writer schemas, every error."""

from __future__ import annotations

import io
import json
import struct
from datetime import UTC, datetime
from typing import Any

import fastavro
import pytest

from connector.errors import DecodeError, SchemaSourceError
from connector.transform.decode import Decoder, WriterSchema, wire_schema_id, writer_schema

LEAD = {
    "type": "record",
    "name": "Lead",
    "namespace": "crm",
    "fields": [
        {"name": "id", "type": "long"},
        {"name": "email", "type": ["null", "string"], "default": None},
        {"name": "tags", "type": {"type": "array", "items": "string"}},
    ],
}
LEAD_ROW = {"id": 7, "email": "a@example.com", "tags": ["vip", "new"]}


def avro(schema: Any, record: Any) -> bytes:
    """``record`` as an Avro binary body written with ``schema``."""
    out = io.BytesIO()
    fastavro.schemaless_writer(out, fastavro.parse_schema(schema), record)
    return out.getvalue()


def wire(schema_id: int, body: bytes) -> bytes:
    """A Confluent wire-format value."""
    return b"\x00" + struct.pack(">I", schema_id) + body


def zigzag(number: int) -> bytes:
    """An Avro long (zig-zag varint), to hand-craft corrupt bodies."""
    number = (number << 1) ^ (number >> 63)
    out = bytearray()
    while number > 0x7F:
        out.append((number & 0x7F) | 0x80)
        number >>= 7
    out.append(number)
    return bytes(out)


class Schemas:
    """An in-memory WriterSchemas: ids → schemas; counts lookups."""

    def __init__(self, schemas: dict[int, Any]) -> None:
        self.schemas = {sid: writer_schema(sid, schema) for sid, schema in schemas.items()}
        self.lookups: list[int] = []

    def get(self, schema_id: int) -> WriterSchema:
        self.lookups.append(schema_id)
        if schema_id not in self.schemas:
            raise DecodeError(f"schema id {schema_id} is not in the schema registry")
        return self.schemas[schema_id]


@pytest.fixture
def decoder() -> Decoder:
    return Decoder(Schemas({7: LEAD}))


# Wire format ----------


def test_wire_format_value_decodes_to_the_record(decoder: Decoder) -> None:
    """Magic byte 0 + schema id 7 + body → the record, read with schema 7."""
    assert decoder.decode(wire(7, avro(LEAD, LEAD_ROW))) == LEAD_ROW


def test_schema_id_is_read_big_endian() -> None:
    """The 4 header bytes after the magic byte are the big-endian schema id."""
    assert wire_schema_id(b"\x00\x00\x01\x00\x02rest") == 65538
    schemas = Schemas({65538: LEAD})
    assert Decoder(schemas).decode(wire(65538, avro(LEAD, LEAD_ROW)))["id"] == 7
    assert schemas.lookups == [65538]


def test_each_value_is_read_with_its_own_writer_schema() -> None:
    """Two schema ids in one stream: each body is read with the schema its header names."""
    other = {"type": "record", "name": "Other", "fields": [{"name": "n", "type": "int"}]}
    decoder = Decoder(Schemas({1: LEAD, 2: other}))
    assert decoder.decode(wire(2, avro(other, {"n": 3}))) == {"n": 3}
    assert decoder.decode(wire(1, avro(LEAD, LEAD_ROW))) == LEAD_ROW


def test_empty_value_is_a_decode_error(decoder: Decoder) -> None:
    """b'' is refused before anything else."""
    with pytest.raises(DecodeError, match=r"^empty value$"):
        decoder.decode(b"")


def test_value_shorter_than_the_header_is_a_decode_error(decoder: Decoder) -> None:
    """Fewer than 5 bytes cannot hold the wire-format header."""
    with pytest.raises(DecodeError) as raised:
        decoder.decode(b"\x00\x00\x07")
    assert raised.value.reason == "value is 3 bytes, shorter than the 5-byte wire-format header"
    assert raised.value.stage == "decode"


def test_json_value_is_named_as_probably_json(decoder: Decoder) -> None:
    """A JSON document starts with '{' (0x7b): the error says so."""
    with pytest.raises(DecodeError) as raised:
        decoder.decode(b'{"id": 7}')
    expected = "magic byte 0x7b is not 0 (not Confluent wire format; is it JSON?)"
    assert raised.value.reason == expected


def test_other_magic_bytes_are_decode_errors(decoder: Decoder) -> None:
    """Any non-zero magic byte is refused; 1 (schema GUIDs) gets its own hint."""
    with pytest.raises(
        DecodeError, match=r"^magic byte 0x41 is not 0 \(not Confluent wire format\)$"
    ):
        decoder.decode(b"ABCDEFGH")
    with pytest.raises(DecodeError, match=r"magic byte 0x01 .*schema-GUID format"):
        decoder.decode(b"\x01" + bytes(20))


def test_unknown_schema_id_comes_from_the_source(decoder: Decoder) -> None:
    """The schema source's DecodeError for an unknown id passes through unchanged."""
    with pytest.raises(DecodeError, match=r"^schema id 42 is not in the schema registry$"):
        decoder.decode(wire(42, b"\x02"))


def test_source_outage_is_not_a_decode_error() -> None:
    """SchemaSourceError (registry down) propagates: the record is not dead-lettered."""

    class Down:
        def get(self, schema_id: int) -> WriterSchema:
            raise SchemaSourceError(f"registry unreachable fetching schema id {schema_id}")

    with pytest.raises(SchemaSourceError):
        Decoder(Down()).decode(wire(7, b"\x02"))


def test_truncated_body_names_the_writer_schema_and_fastavro_error(decoder: Decoder) -> None:
    """A body cut short does not match its writer schema; the reason names both."""
    body = avro(LEAD, LEAD_ROW)
    with pytest.raises(DecodeError) as raised:
        decoder.decode(wire(7, body[:-3]))
    assert raised.value.reason.startswith("Avro body does not match writer schema 7: EOFError")


def test_trailing_bytes_after_the_record_are_a_decode_error(decoder: Decoder) -> None:
    """Bytes left after the record mean the wrong writer schema (or garbage)."""
    with pytest.raises(DecodeError) as raised:
        decoder.decode(wire(7, avro(LEAD, LEAD_ROW) + b"\x00\x01\x02\x03"))
    assert raised.value.reason == "4 trailing bytes after the Avro record (wrong writer schema?)"


def test_invalid_utf8_string_is_a_decode_error(decoder: Decoder) -> None:
    """A string field holding invalid UTF-8 fails to decode (strict)."""
    body = zigzag(7) + b"\x02" + zigzag(2) + b"\xff\xfe" + b"\x00"
    with pytest.raises(DecodeError, match="UnicodeDecodeError"):
        decoder.decode(wire(7, body))


def test_bad_union_index_is_a_decode_error(decoder: Decoder) -> None:
    """A union branch index past the branches fails to decode."""
    with pytest.raises(DecodeError, match="Avro body does not match writer schema 7"):
        decoder.decode(wire(7, zigzag(7) + zigzag(5) + b"\x00"))


# Corrupt lengths fail fast ----------

STRING_RECORD = {"type": "record", "name": "S", "fields": [{"name": "s", "type": "string"}]}
LONGS = {
    "type": "record",
    "name": "A",
    "fields": [{"name": "a", "type": {"type": "array", "items": "long"}}],
}


@pytest.mark.parametrize("length", [2**31, 2**62, -5])
def test_huge_or_negative_string_length_fails_fast(length: int) -> None:
    """A corrupt length prefix makes no huge allocation: DecodeError at once."""
    decoder = Decoder(raw=writer_schema(None, STRING_RECORD))
    with pytest.raises(DecodeError, match=r"Avro body does not match the writer schema: EOFError"):
        decoder.decode(zigzag(length) + b"abc")


def test_huge_array_block_count_fails_fast() -> None:
    """An array claiming 2**62 items in 3 bytes runs out of data instead of looping."""
    decoder = Decoder(raw=writer_schema(None, LONGS))
    with pytest.raises(DecodeError, match="EOFError"):
        decoder.decode(zigzag(2**62) + b"\x02\x04")


# Raw mode ----------


def test_raw_mode_reads_the_whole_value_as_one_avro_body() -> None:
    """Registry-less mode: no header, the value is the body of the one writer schema."""
    decoder = Decoder(raw=writer_schema(None, LEAD))
    assert decoder.decode(avro(LEAD, LEAD_ROW)) == LEAD_ROW


def test_raw_mode_errors_name_the_writer_schema_without_an_id() -> None:
    """Without an id the reason says 'the writer schema'; trailing bytes are caught too."""
    decoder = Decoder(raw=writer_schema(None, LEAD))
    with pytest.raises(DecodeError, match=r"^Avro body does not match the writer schema: "):
        decoder.decode(b"\x0e")
    with pytest.raises(DecodeError, match=r"^1 trailing bytes"):
        decoder.decode(avro(LEAD, LEAD_ROW) + b"\x00")
    with pytest.raises(DecodeError, match=r"^empty value$"):
        decoder.decode(b"")


def test_raw_mode_does_not_look_for_a_header() -> None:
    """A raw body starting with 0 is not mistaken for the wire format."""
    counter = {"type": "record", "name": "C", "fields": [{"name": "n", "type": "long"}]}
    assert Decoder(raw=writer_schema(3, counter)).decode(b"\x00") == {"n": 0}


def test_decoder_needs_exactly_one_schema_source() -> None:
    """Both or neither of schemas= and raw= is a programming error."""
    with pytest.raises(ValueError, match="exactly one"):
        Decoder()
    with pytest.raises(ValueError, match="exactly one"):
        Decoder(Schemas({}), raw=writer_schema(None, LEAD))


# Writer schemas ----------


def test_writer_schema_from_json_text_or_dict() -> None:
    """JSON text and its decoded form give the same parsed schema, keeping connect.* attributes."""
    annotated = {
        **STRING_RECORD,
        "connect.name": "crm.S",
        "fields": [{"name": "s", "type": {"type": "string", "connect.name": "x.Y"}}],
    }
    from_text, from_dict = writer_schema(5, json.dumps(annotated)), writer_schema(5, annotated)
    assert from_text.schema == from_dict.schema
    assert from_text.schema_id == 5
    assert isinstance(from_text.schema, dict)
    assert from_text.schema["connect.name"] == "crm.S"
    assert from_text.schema["fields"][0]["type"]["connect.name"] == "x.Y"


def test_writer_schema_does_not_change_the_given_dict() -> None:
    """Preparing a schema (which adjusts decimals) leaves the caller's dict as it was."""
    schema = {
        "type": "record",
        "name": "M",
        "fields": [
            {
                "name": "m",
                "type": {"type": "bytes", "logicalType": "decimal", "precision": 4, "scale": 2},
            }
        ],
    }
    before = json.dumps(schema, sort_keys=True)
    writer_schema(1, schema)
    assert json.dumps(schema, sort_keys=True) == before


@pytest.mark.parametrize(
    ("schema", "reason"),
    [
        ("{not json", r"^not valid JSON \(Expecting property name"),
        ('{"type": "record", "name": "X", "fields": [{"name": "a"}]}', r"^not a valid Avro schema"),
        ('"no-such-type"', r"^not a valid Avro schema \(UnknownType: no-such-type\)"),
    ],
)
def test_unparsable_writer_schema_is_a_value_error(schema: str, reason: str) -> None:
    """Text that is not JSON or not Avro is refused with the parser's reason."""
    with pytest.raises(ValueError, match=reason):
        writer_schema(1, schema)


def test_already_parsed_schema_is_refused() -> None:
    """A fastavro-parsed schema would be adjusted in place: the JSON is asked for instead."""
    with pytest.raises(ValueError, match="not a schema fastavro has parsed"):
        writer_schema(1, fastavro.parse_schema(LEAD))


def test_writer_schema_label_names_the_id() -> None:
    """Errors name 'writer schema N', or 'the writer schema' in raw mode."""
    assert writer_schema(9, LEAD).label == "writer schema 9"
    assert writer_schema(None, LEAD).label == "the writer schema"


def test_timestamp_fastavro_cannot_represent_is_a_decode_error() -> None:
    """A timestamp-millis far past year 9999 fails with DecodeError, not OverflowError."""
    schema = {
        "type": "record",
        "name": "T",
        "fields": [{"name": "t", "type": {"type": "long", "logicalType": "timestamp-millis"}}],
    }
    decoder = Decoder(raw=writer_schema(None, schema))
    assert decoder.decode(zigzag(0)) == {"t": datetime(1970, 1, 1, tzinfo=UTC)}
    with pytest.raises(DecodeError, match="Avro body does not match"):
        decoder.decode(zigzag(2**62))
