"""Logical types become Python values: Avro, Debezium and Kafka Connect types, wherever they sit."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any
from uuid import UUID

import fastavro
import pytest

from connector.errors import DecodeError
from connector.transform.decode import Decoder, writer_schema
from connector.transform.logical import identity

DBZ, CONNECT = "io.debezium.time.", "org.apache.kafka.connect.data."
MOMENT = datetime(2023, 11, 14, 22, 13, 20, 123456, tzinfo=UTC)
MOMENT_US = 1_700_000_000_123_456
VARIABLE_SCALE = {
    "type": "record",
    "name": "VariableScaleDecimal",
    "namespace": "io.debezium.data",
    "fields": [{"name": "scale", "type": "int"}, {"name": "value", "type": "bytes"}],
    "connect.name": "io.debezium.data.VariableScaleDecimal",
}


def record(*fields: tuple[str, Any], name: str = "R") -> dict[str, Any]:
    """A record schema with these (name, type) fields."""
    return {"type": "record", "name": name, "fields": [{"name": n, "type": t} for n, t in fields]}


def typed(base: str, **attributes: Any) -> dict[str, Any]:
    """A primitive schema with attributes, e.g. ``typed("long", logicalType="date")``."""
    return {"type": base, **{key.replace("_", "."): value for key, value in attributes.items()}}


def connect(base: str, name: str, **extra: Any) -> dict[str, Any]:
    """A primitive annotated as Kafka Connect / Debezium type ``name``."""
    return {"type": base, "connect.version": 1, "connect.name": name, **extra}


def decode(schema: Any, value: Any, written_with: Any = None) -> Any:
    """Write ``value`` with ``written_with`` (default: ``schema``), decode it in raw mode."""
    out = io.BytesIO()
    fastavro.schemaless_writer(out, fastavro.parse_schema(written_with or schema), value)
    return Decoder(raw=writer_schema(None, schema)).decode(out.getvalue())


def unscaled(number: int) -> bytes:
    """Two's-complement big-endian bytes of an unscaled decimal."""
    return number.to_bytes((number.bit_length() + 8) // 8, "big", signed=True)


# Avro logical types ----------


@pytest.mark.parametrize(
    ("logical", "written", "expected"),
    [
        ("timestamp-millis", MOMENT, MOMENT.replace(microsecond=123000)),
        ("timestamp-micros", MOMENT, MOMENT),
        ("local-timestamp-millis", MOMENT.replace(tzinfo=None), MOMENT.replace(microsecond=123000)),
        ("local-timestamp-micros", MOMENT.replace(tzinfo=None), MOMENT),
        ("timestamp-nanos", MOMENT_US * 1000 + 789, MOMENT),
        ("local-timestamp-nanos", MOMENT_US * 1000 + 789, MOMENT),
    ],
)
def test_avro_timestamps_become_aware_utc_datetimes(
    logical: str, written: Any, expected: datetime
) -> None:
    """Every Avro timestamp flavour decodes to an aware UTC instant (local ones read as UTC)."""
    schema = record(("t", typed("long", logicalType=logical)))
    decoded = decode(schema, {"t": written})["t"]
    assert decoded == expected
    assert decoded.tzinfo is UTC


@pytest.mark.parametrize(
    ("schema", "written", "expected"),
    [
        (typed("int", logicalType="date"), date(2022, 1, 8), date(2022, 1, 8)),
        (typed("int", logicalType="time-millis"), time(1, 2, 3, 4000), time(1, 2, 3, 4000)),
        (typed("long", logicalType="time-micros"), time(1, 2, 3, 4005), time(1, 2, 3, 4005)),
        (
            typed("string", logicalType="uuid"),
            "6f1b4c1e-0000-4000-8000-00000000000a",
            UUID("6f1b4c1e-0000-4000-8000-00000000000a"),
        ),
    ],
)
def test_avro_dates_times_and_uuids(schema: Any, written: Any, expected: Any) -> None:
    """date → date, time-* → time, uuid → UUID (as fastavro returns it)."""
    decoded = decode(record(("v", schema)), {"v": written})["v"]
    assert decoded == expected
    assert type(decoded) is type(expected)


@pytest.mark.parametrize("base", ["bytes", "fixed"])
def test_avro_decimals_are_exact_even_past_the_declared_precision(base: str) -> None:
    """Decimals keep every digit and their scale (fastavro alone would round to 'precision')."""
    declared = {"logicalType": "decimal", "precision": 4, "scale": 2}
    schema_type = (
        {"type": "fixed", "name": "Money", "size": 16, **declared}
        if base == "fixed"
        else {"type": "bytes", **declared}
    )
    digits = 123456789012345678901234567
    raw: bytes = unscaled(-digits)
    raw = raw.rjust(16, b"\xff") if base == "fixed" else raw
    written_as = record(
        ("m", {"type": "fixed", "name": "Money", "size": 16} if base == "fixed" else "bytes")
    )
    decoded = decode(record(("m", schema_type)), {"m": raw}, written_as)["m"]
    assert decoded == Decimal("-1234567890123456789012345.67")
    assert str(decoded) == "-1234567890123456789012345.67"


def test_avro_decimal_keeps_trailing_zeros_of_its_scale() -> None:
    """Unscaled 100 at scale 2 is Decimal('1.00'), not '1'."""
    schema = record(("m", typed("bytes", logicalType="decimal", precision=5, scale=2)))
    assert str(decode(schema, {"m": Decimal("1.00")})["m"]) == "1.00"


def test_oversized_decimal_is_refused_quickly() -> None:
    """A 100 kB unscaled decimal (corrupt or hostile) is refused instead of taking seconds."""
    schema = record(("m", typed("bytes", logicalType="decimal", precision=9, scale=2)))
    with pytest.raises(DecodeError) as raised:
        decode(schema, {"m": b"\x01" * 100_000}, record(("m", "bytes")))
    assert raised.value.reason.startswith("field m: b'\\x01")
    assert raised.value.reason.endswith("(100000 bytes, more than the 512 allowed)")


def test_named_decimal_fixed_used_twice_is_converted_both_times() -> None:
    """A named fixed decimal referenced by name again is converted at both fields."""
    money = {
        "type": "fixed",
        "name": "Money",
        "size": 4,
        "logicalType": "decimal",
        "precision": 8,
        "scale": 2,
    }
    schema = record(("price", money), ("cost", "Money"))
    decoded = decode(schema, {"price": Decimal("12.34"), "cost": Decimal("-0.05")})
    assert decoded == {"price": Decimal("12.34"), "cost": Decimal("-0.05")}


# Debezium and Kafka Connect types ----------


@pytest.mark.parametrize(
    ("schema", "written", "expected"),
    [
        (connect("long", f"{DBZ}Timestamp"), 1_700_000_000_123, MOMENT.replace(microsecond=123000)),
        (connect("long", f"{DBZ}MicroTimestamp"), MOMENT_US, MOMENT),
        (connect("long", f"{DBZ}NanoTimestamp"), MOMENT_US * 1000 + 999, MOMENT),
        (connect("string", f"{DBZ}ZonedTimestamp"), "2023-11-14T22:13:20.123456Z", MOMENT),
        (connect("string", f"{DBZ}ZonedTimestamp"), "2023-11-15T03:43:20.123456789+05:30", MOMENT),
        (
            connect("long", f"{CONNECT}Timestamp"),
            1_700_000_000_123,
            MOMENT.replace(microsecond=123000),
        ),
        (
            connect("long", f"{CONNECT}Timestamp", logicalType="timestamp-millis"),
            MOMENT.replace(microsecond=123000),
            MOMENT.replace(microsecond=123000),
        ),
    ],
)
def test_debezium_and_connect_timestamps(schema: Any, written: Any, expected: datetime) -> None:
    """Debezium/Connect timestamps (ms, µs, ns, zoned strings) → aware UTC datetimes."""
    decoded = decode(record(("t", schema)), {"t": written})["t"]
    assert decoded == expected
    assert decoded.tzinfo is UTC


@pytest.mark.parametrize(
    ("schema", "written", "expected"),
    [
        (connect("int", f"{DBZ}Date"), 19000, date(2022, 1, 8)),
        (connect("int", f"{DBZ}Date"), -1, date(1969, 12, 31)),
        (connect("int", f"{CONNECT}Date"), 19000, date(2022, 1, 8)),
        (connect("int", f"{CONNECT}Date", logicalType="date"), date(2022, 1, 8), date(2022, 1, 8)),
        (connect("int", f"{DBZ}Time"), 3_723_004, time(1, 2, 3, 4000)),
        (connect("int", f"{CONNECT}Time"), 3_723_004, time(1, 2, 3, 4000)),
        (connect("long", f"{DBZ}MicroTime"), 3_723_004_005, time(1, 2, 3, 4005)),
        (connect("long", f"{DBZ}NanoTime"), 3_723_004_005_006, time(1, 2, 3, 4005)),
        (connect("string", f"{DBZ}ZonedTime"), "01:02:03.004005Z", time(1, 2, 3, 4005, tzinfo=UTC)),
        (connect("string", f"{DBZ}ZonedTime"), "03:02:03+02:00", time(1, 2, 3, tzinfo=UTC)),
    ],
)
def test_debezium_and_connect_dates_and_times(schema: Any, written: Any, expected: Any) -> None:
    """Days since the epoch → date; ms/µs/ns since midnight → time; zoned times → UTC times."""
    decoded = decode(record(("v", schema)), {"v": written})["v"]
    assert decoded == expected
    assert type(decoded) is type(expected)
    if isinstance(expected, time):
        assert decoded.tzinfo == expected.tzinfo


def test_zoned_timestamp_without_offset_is_read_as_utc() -> None:
    """A ZonedTimestamp string lacking an offset is taken as UTC."""
    schema = record(("t", connect("string", f"{DBZ}ZonedTimestamp")))
    assert decode(schema, {"t": "2023-11-14T22:13:20"})["t"] == MOMENT.replace(microsecond=0)


def test_connect_decimal_uses_the_connect_scale_parameter() -> None:
    """Connect Decimal bytes without a logicalType: the scale comes from connect.parameters."""
    schema = record(
        ("m", connect("bytes", f"{CONNECT}Decimal", **{"connect.parameters": {"scale": "3"}}))
    )
    assert str(decode(schema, {"m": unscaled(-1234567)})["m"]) == "-1234.567"


def test_connect_decimal_with_logical_type_is_exact() -> None:
    """AvroConverter's decimal (logicalType + connect.name, precision 64 default) stays exact."""
    annotated = connect(
        "bytes",
        f"{CONNECT}Decimal",
        logicalType="decimal",
        precision=64,
        scale=2,
        **{"connect.parameters": {"scale": "2"}},
    )
    schema, plain = record(("m", annotated)), record(("m", "bytes"))
    assert str(decode(schema, {"m": unscaled(10**40 + 5)}, plain)["m"]) == f"{10**38}.05"


def test_variable_scale_decimal_record_becomes_a_decimal() -> None:
    """io.debezium.data.VariableScaleDecimal {scale, value} → the Decimal it encodes."""
    schema = record(("n", ["null", VARIABLE_SCALE]))
    assert decode(schema, {"n": {"scale": 4, "value": unscaled(-123456)}})["n"] == Decimal(
        "-12.3456"
    )
    assert decode(schema, {"n": None})["n"] is None


def test_connect_name_on_the_wrong_base_type_is_left_alone() -> None:
    """A Debezium name on an Avro type it never annotates is not converted."""
    schema = record(("t", connect("string", f"{DBZ}MicroTimestamp")))
    assert decode(schema, {"t": "12"}) == {"t": "12"}


# Where the values sit ----------

MICROS = connect("long", f"{DBZ}MicroTimestamp")


def test_values_in_nullable_unions_are_converted() -> None:
    """["null", X]: X is converted, null stays None."""
    schema = record(("t", ["null", MICROS]))
    assert decode(schema, {"t": MOMENT_US}) == {"t": MOMENT}
    assert decode(schema, {"t": None}) == {"t": None}


def test_values_in_nested_records_arrays_and_maps_are_converted() -> None:
    """Conversions reach nested records, array items and map values."""
    inner = record(("at", MICROS), ("note", "string"), name="Inner")
    schema = record(
        ("inner", inner),
        ("times", {"type": "array", "items": MICROS}),
        ("by_key", {"type": "map", "values": ["null", MICROS]}),
    )
    value = {
        "inner": {"at": MOMENT_US, "note": "n"},
        "times": [0, MOMENT_US],
        "by_key": {"a": MOMENT_US, "b": None},
    }
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    assert decode(schema, value) == {
        "inner": {"at": MOMENT, "note": "n"},
        "times": [epoch, MOMENT],
        "by_key": {"a": MOMENT, "b": None},
    }


def test_named_record_used_twice_is_converted_both_times() -> None:
    """Debezium's before/after share one named row type: both are converted."""
    row = record(("at", MICROS), name="Value")
    schema = record(("before", ["null", row]), ("after", ["null", "Value"]), name="Envelope")
    decoded = decode(schema, {"before": {"at": 0}, "after": {"at": MOMENT_US}})
    assert decoded == {"before": {"at": datetime(1970, 1, 1, tzinfo=UTC)}, "after": {"at": MOMENT}}


def test_union_branches_are_told_apart_by_python_type() -> None:
    """[boolean, string, MicroTimestamp]: only the long branch is converted (True is no int)."""
    schema = record(("v", ["boolean", "string", MICROS]))
    assert decode(schema, {"v": True}) == {"v": True}
    assert decode(schema, {"v": "x"}) == {"v": "x"}
    assert decode(schema, {"v": MOMENT_US}) == {"v": MOMENT}


def test_union_of_records_is_told_apart_by_field_names() -> None:
    """Two record branches with different fields: each converted by its own rules."""
    created = record(("created", MICROS), name="Created")
    closed = record(("closed", connect("int", f"{DBZ}Date")), name="Closed")
    schema = record(("event", ["null", created, closed]))
    assert decode(schema, {"event": {"created": MOMENT_US}}) == {"event": {"created": MOMENT}}
    assert decode(schema, {"event": {"closed": 1}}) == {"event": {"closed": date(1970, 1, 2)}}


def test_union_that_cannot_be_told_apart_is_refused() -> None:
    """[Debezium Date int, plain long]: both decode to int, so the schema is refused up front."""
    schema = record(("v", [connect("int", f"{DBZ}Date"), "long"]))
    with pytest.raises(ValueError, match=r"^union v: cannot tell apart branches"):
        writer_schema(1, schema)


def test_top_level_logical_value_is_converted() -> None:
    """A value schema that is itself a Debezium timestamp decodes to a datetime."""
    assert decode(MICROS, MOMENT_US) == MOMENT


def test_recursive_schema_converts_every_level() -> None:
    """A linked list of timestamps: each node's value is converted."""
    node = record(("at", MICROS), ("next", ["null", "Node"]), name="Node")
    value = {"at": 0, "next": {"at": MOMENT_US, "next": None}}
    decoded = decode(node, value)
    assert decoded["next"] == {"at": MOMENT, "next": None}
    assert decoded["at"] == datetime(1970, 1, 1, tzinfo=UTC)


def test_deeply_nested_recursive_data_is_a_decode_error_not_a_crash() -> None:
    """fastavro's compiled reader would overflow the C stack; recursive schemas fail cleanly."""
    node = record(("next", ["null", "Node"]), name="Node")
    decoder = Decoder(raw=writer_schema(None, node))
    assert decoder.decode(b"\x02" * 20 + b"\x00")["next"]["next"] is not None
    with pytest.raises(DecodeError, match="RecursionError"):
        decoder.decode(b"\x02" * 200_000 + b"\x00")


@pytest.mark.parametrize(
    "items",
    [
        "null",
        {"type": "record", "name": "Empty", "fields": []},
        {"type": "fixed", "name": "Z", "size": 0},
    ],
)
def test_arrays_of_zero_byte_items_are_refused(items: Any) -> None:
    """An array whose items take no bytes could loop forever on a corrupt count: refused."""
    schema = record(("list", {"type": "array", "items": items}))
    with pytest.raises(ValueError, match=r"^list holds items that take no bytes"):
        writer_schema(1, schema)


# Conversion errors and the identity fast path ----------


def test_malformed_zoned_timestamp_names_the_field_path() -> None:
    """An unparsable ZonedTimestamp is a DecodeError naming the nested field."""
    row = record(("updated", ["null", connect("string", f"{DBZ}ZonedTimestamp")]), name="Value")
    schema = record(("after", ["null", row]))
    with pytest.raises(DecodeError) as raised:
        decode(schema, {"after": {"updated": "yesterday"}})
    assert raised.value.reason == (
        "field after.updated: 'yesterday' is not a valid io.debezium.time.ZonedTimestamp "
        "(Invalid isoformat string: 'yesterday')"
    )


def test_conversion_errors_name_array_indexes_and_map_keys() -> None:
    """Paths show array indexes and map keys; out-of-day times and far dates are refused."""
    times = record(("spans", {"type": "array", "items": connect("long", f"{DBZ}MicroTime")}))
    with pytest.raises(
        DecodeError,
        match=r"^field spans\[1\]: 86400000000 is not a valid .*MicroTime \(not within a day\)",
    ):
        decode(times, {"spans": [0, 86_400_000_000]})
    dates = record(("due", {"type": "map", "values": connect("int", f"{DBZ}Date")}))
    with pytest.raises(DecodeError, match=r"^field due\[late\]: 2147483647 is not a valid"):
        decode(dates, {"due": {"late": 2**31 - 1}})


def test_schema_without_logical_types_uses_the_identity_converter() -> None:
    """No logical types: no converter runs, the dict fastavro returns is the result."""
    schema = writer_schema(
        1, record(("id", "long"), ("tags", {"type": "array", "items": "string"}))
    )
    assert schema.convert is identity
    row = {"id": 1, "tags": []}
    assert schema.convert(row) is row


def test_converter_updates_the_decoded_dict_in_place() -> None:
    """The compiled converter mutates fastavro's fresh dict instead of copying it."""
    schema = writer_schema(1, record(("at", MICROS), ("id", "long")))
    row = {"at": MOMENT_US, "id": 3}
    assert schema.convert(row) is row
    assert row == {"at": MOMENT, "id": 3}


def test_zoned_time_crossing_midnight_wraps_to_the_utc_time_of_day() -> None:
    """01:00+02:00 is 23:00 UTC (of the day before): the time of day is what is kept."""
    schema = record(("t", connect("string", f"{DBZ}ZonedTime")))
    assert decode(schema, {"t": "01:00:00+02:00"})["t"] == time(23, 0, tzinfo=UTC)
