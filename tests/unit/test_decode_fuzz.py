"""Property tests: arbitrary bytes only ever give DecodeError; valid records round-trip exactly."""

from __future__ import annotations

import io
import struct
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import fastavro
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector.errors import DecodeError
from connector.transform.decode import Decoder, WriterSchema, writer_schema

DBZ = "io.debezium.time."
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

#: Every Avro type and every conversion, so random bytes reach each reader and converter.
EVERYTHING = {
    "type": "record",
    "name": "Everything",
    "namespace": "fuzz",
    "fields": [
        {"name": "b", "type": "boolean"},
        {"name": "i", "type": "int"},
        {"name": "f", "type": "float"},
        {"name": "d", "type": "double"},
        {"name": "raw", "type": "bytes"},
        {"name": "s", "type": ["null", "string"]},
        {"name": "e", "type": {"type": "enum", "name": "Color", "symbols": ["RED", "GREEN"]}},
        {"name": "fx", "type": {"type": "fixed", "name": "Four", "size": 4}},
        {"name": "tags", "type": {"type": "array", "items": "string"}},
        {"name": "attrs", "type": {"type": "map", "values": ["null", "long"]}},
        {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "lts", "type": {"type": "long", "logicalType": "local-timestamp-micros"}},
        {"name": "day", "type": {"type": "int", "logicalType": "date"}},
        {"name": "tod", "type": {"type": "int", "logicalType": "time-millis"}},
        {"name": "id", "type": {"type": "string", "logicalType": "uuid"}},
        {
            "name": "money",
            "type": {"type": "bytes", "logicalType": "decimal", "precision": 9, "scale": 2},
        },
        {
            "name": "micro",
            "type": ["null", {"type": "long", "connect.name": f"{DBZ}MicroTimestamp"}],
        },
        {"name": "nano", "type": {"type": "long", "connect.name": f"{DBZ}NanoTime"}},
        {"name": "zoned", "type": {"type": "string", "connect.name": f"{DBZ}ZonedTimestamp"}},
        {"name": "ddate", "type": {"type": "int", "connect.name": f"{DBZ}Date"}},
        {
            "name": "nums",
            "type": {
                "type": "array",
                "items": {
                    "type": "record",
                    "name": "VariableScaleDecimal",
                    "namespace": "io.debezium.data",
                    "fields": [
                        {"name": "scale", "type": "int"},
                        {"name": "value", "type": "bytes"},
                    ],
                    "connect.name": "io.debezium.data.VariableScaleDecimal",
                },
            },
        },
    ],
}
TREE = {
    "type": "record",
    "name": "Tree",
    "fields": [
        {"name": "at", "type": {"type": "long", "connect.name": f"{DBZ}Timestamp"}},
        {"name": "children", "type": {"type": "array", "items": "Tree"}},
    ],
}


class AnyId:
    """Every schema id names the same writer schema."""

    def __init__(self, schema: WriterSchema) -> None:
        self.schema = schema

    def get(self, schema_id: int) -> WriterSchema:
        assert schema_id >= 0
        return self.schema


def only_decode_errors(decoder: Decoder, value: bytes) -> None:
    """Decoding succeeds or raises DecodeError with a reason; nothing else escapes."""
    try:
        decoder.decode(value)
    except DecodeError as exc:
        reason = exc.reason
    else:
        reason = "decoded"
    assert reason


FUZZ = settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
WIRE = Decoder(AnyId(writer_schema(1, EVERYTHING)))
RAW = Decoder(raw=writer_schema(None, EVERYTHING))
RAW_TREE = Decoder(raw=writer_schema(None, TREE))


@FUZZ
@given(st.binary(max_size=300))
def test_arbitrary_bytes_in_wire_mode_only_raise_decode_error(value: bytes) -> None:
    """Any value, header or not, decodes or fails with DecodeError."""
    only_decode_errors(WIRE, value)


@FUZZ
@given(st.integers(0, 2**32 - 1), st.binary(max_size=300))
def test_arbitrary_bodies_behind_a_valid_header_only_raise_decode_error(
    schema_id: int, body: bytes
) -> None:
    """Random Avro bodies behind a well-formed header decode or fail with DecodeError."""
    only_decode_errors(WIRE, b"\x00" + struct.pack(">I", schema_id) + body)


@FUZZ
@given(st.binary(max_size=300))
def test_arbitrary_bytes_in_raw_mode_only_raise_decode_error(value: bytes) -> None:
    """Raw mode (whole value is the body) on every kind of type: only DecodeError."""
    only_decode_errors(RAW, value)
    only_decode_errors(RAW_TREE, value)


@FUZZ
@given(st.lists(st.sampled_from([b"\x00", b"\x02", b"\x01", b"\xff\xff\xff\xff\x0f"]), max_size=80))
def test_structured_noise_only_raises_decode_error(chunks: list[bytes]) -> None:
    """Small varints (counts, indexes, lengths) stitched together: only DecodeError."""
    value = b"".join(chunks)
    only_decode_errors(RAW, value)
    only_decode_errors(RAW_TREE, value)


ROW = {
    "type": "record",
    "name": "Row",
    "namespace": "crm",
    "fields": [
        {"name": "id", "type": "long"},
        {"name": "name", "type": "string"},
        {"name": "score", "type": "double"},
        {"name": "email", "type": ["null", "string"]},
        {"name": "tags", "type": {"type": "array", "items": "string"}},
        {"name": "attrs", "type": {"type": "map", "values": "long"}},
        {"name": "seen", "type": {"type": "long", "logicalType": "timestamp-micros"}},
        {
            "name": "amount",
            "type": {"type": "bytes", "logicalType": "decimal", "precision": 20, "scale": 2},
        },
        {
            "name": "changed",
            "type": ["null", {"type": "long", "connect.name": f"{DBZ}MicroTimestamp"}],
        },
    ],
}
ROW_SCHEMA = writer_schema(3, ROW)
PARSED_ROW = fastavro.parse_schema(ROW)
MICROS = st.integers(-(10**15), 10**16)

rows = st.fixed_dictionaries(
    {
        "id": st.integers(-(2**63), 2**63 - 1),
        "name": st.text(),
        "score": st.floats(allow_nan=False),
        "email": st.none() | st.text(),
        "tags": st.lists(st.text(), max_size=5),
        "attrs": st.dictionaries(st.text(), st.integers(-(2**63), 2**63 - 1), max_size=5),
        "seen": MICROS.map(lambda us: EPOCH + timedelta(microseconds=us)),
        "amount": st.decimals(places=2, min_value=-(10**17), max_value=10**17),
        "changed": st.none() | MICROS,
    }
)


@settings(max_examples=300)
@given(rows)
def test_valid_records_round_trip(row: dict[str, Any]) -> None:
    """A record fastavro writes decodes to the same values, Debezium µs as the matching datetime."""
    out = io.BytesIO()
    fastavro.schemaless_writer(out, PARSED_ROW, row)
    decoded = Decoder(AnyId(ROW_SCHEMA)).decode(b"\x00\x00\x00\x00\x03" + out.getvalue())
    changed = row["changed"]
    expected = {
        **row,
        "changed": None if changed is None else EPOCH + timedelta(microseconds=changed),
    }
    assert decoded == expected
    assert isinstance(decoded["amount"], Decimal)
    assert decoded["amount"].as_tuple().exponent == -2


def _valid_everything() -> bytes:
    value = {
        "b": True,
        "i": -3,
        "f": 1.5,
        "d": 2.25,
        "raw": b"\x00\x01",
        "s": "text",
        "e": "GREEN",
        "fx": b"abcd",
        "tags": ["a", "bc"],
        "attrs": {"k": 1, "n": None},
        "ts": 1_700_000_000_000,
        "lts": 1_700_000_000_000_000,
        "day": 19000,
        "tod": 1000,
        "id": "6f1b4c1e-0000-4000-8000-00000000000a",
        "money": Decimal("12.34"),
        "micro": 1_700_000_000_000_000,
        "nano": 5_000_000,
        "zoned": "2023-11-14T22:13:20Z",
        "ddate": 19000,
        "nums": [{"scale": 2, "value": b"\x04\xd2"}],
    }
    out = io.BytesIO()
    fastavro.schemaless_writer(out, fastavro.parse_schema(EVERYTHING), value)
    return out.getvalue()


VALID_EVERYTHING = _valid_everything()


def test_the_mutation_seed_decodes() -> None:
    """The seed for the mutation test is a valid record with every conversion applied."""
    decoded = RAW.decode(VALID_EVERYTHING)
    assert decoded["zoned"] == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    assert decoded["nums"] == [Decimal("12.34")]
    assert decoded["money"] == Decimal("12.34")


@FUZZ
@given(
    st.lists(st.tuples(st.integers(0, len(VALID_EVERYTHING) - 1), st.integers(0, 255)), max_size=6),
    st.integers(0, len(VALID_EVERYTHING)),
)
def test_mutated_valid_records_only_raise_decode_error(
    changes: list[tuple[int, int]], cut: int
) -> None:
    """A valid record with bytes overwritten and its end cut off: decodes or DecodeError."""
    value = bytearray(VALID_EVERYTHING)
    for position, byte in changes:
        value[position] = byte
    only_decode_errors(RAW, bytes(value[:cut]))
    only_decode_errors(RAW, bytes(value))
