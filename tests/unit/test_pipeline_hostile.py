"""Hostile input through the whole pipeline: the real decode (Confluent wire format, Avro), unwrap
and mapping of a route, with fake Kafka, HTTP and outcome ports. Streams mix good Debezium records
with random bytes, wrong magic bytes, unknown schema ids, truncated and corrupted Avro, invalid
UTF-8, 1 MB strings, unicode of every kind, nulls everywhere, deep custom field sets and top-level
values that are no record. Whatever arrives, the loop never raises, every record gets exactly one
outcome, good records are called with exactly their payload, bad ones are dead-lettered at the
right stage with a precise reason, and commits reach the end of every partition."""

from __future__ import annotations

import io
import json
import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

import fastavro
import structlog
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector.errors import DecodeError
from connector.flow.codec import dead_letter
from connector.records import DeadLetter, SourceRecord
from connector.transform.decode import Decoder, writer_schema
from connector.transform.mapping import MappingSpec, compile_mapping
from connector.transform.route import Route
from tests.unit.pipeline_fakes import route_harness, run_until_done

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from connector.transform.decode import WriterSchema
    from tests.unit.pipeline_fakes import Harness

TOPIC = "crm.hostile.leads"
PARTITIONS = 3
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MEGABYTE = 1_000_000

_OPTIONAL_STRING = ["null", "string"]
ISSUER = {
    "type": "record",
    "name": "Issuer",
    "fields": [
        {"name": "country", "type": _OPTIONAL_STRING, "default": None},
        {"name": "authority", "type": _OPTIONAL_STRING, "default": None},
    ],
}
DOCUMENT = {
    "type": "record",
    "name": "Document",
    "fields": [
        {"name": "number", "type": _OPTIONAL_STRING, "default": None},
        {
            "name": "issued_at",
            "type": ["null", {"type": "long", "logicalType": "timestamp-millis"}],
            "default": None,
        },
        {"name": "issuer", "type": ["null", ISSUER], "default": None},
    ],
}
KYC = {
    "type": "record",
    "name": "Kyc",
    "fields": [
        {"name": "status", "type": _OPTIONAL_STRING, "default": None},
        {"name": "level", "type": ["null", "int"], "default": None},
        {"name": "verified", "type": ["null", "boolean"], "default": None},
        {"name": "document", "type": ["null", DOCUMENT], "default": None},
    ],
}
TEXT_FIELDS = ("email", "first_name", "last_name", "phone", "city", "note")


def _row_schema(created_at: Any) -> dict[str, Any]:
    return {
        "type": "record",
        "name": "Value",
        "fields": [
            {"name": "id", "type": "long"},
            *({"name": name, "type": _OPTIONAL_STRING, "default": None} for name in TEXT_FIELDS),
            {"name": "kyc", "type": ["null", KYC], "default": None},
            {"name": "created_at", "type": created_at},
        ],
    }


def _envelope_schema(row: dict[str, Any]) -> dict[str, Any]:
    source = {
        "type": "record",
        "name": "Source",
        "fields": [{"name": "ts_ms", "type": "long"}, {"name": "table", "type": "string"}],
    }
    return {
        "type": "record",
        "name": "Envelope",
        "namespace": "crm.hostile.leads",
        "fields": [
            {"name": "before", "type": ["null", row], "default": None},
            {"name": "after", "type": ["null", "Value"], "default": None},
            {"name": "source", "type": ["null", source], "default": None},
            {"name": "op", "type": "string"},
            {"name": "ts_ms", "type": ["null", "long"], "default": None},
        ],
    }


#: A Debezium envelope around a leads row with a nested KYC record (a deep custom field set).
ENVELOPE = _envelope_schema(_row_schema({"type": "long", "logicalType": "timestamp-millis"}))
#: The same bytes with ``created_at`` as a plain long: any value fits, even out of datetime range.
RAW_TIMESTAMPS = _envelope_schema(_row_schema("long"))
#: Other writer schemas in the registry: values that are not a Debezium envelope.
OTHERS: dict[int, Any] = {
    2: "string",
    3: {"type": "array", "items": "long"},
    4: ["null", "double"],
    5: {"type": "map", "values": ["null", "string"]},
    6: {
        "type": "record",
        "name": "Order",
        "fields": [{"name": "foo", "type": "long"}, {"name": "bar", "type": _OPTIONAL_STRING}],
    },
}
SCHEMAS: dict[int, Any] = {1: ENVELOPE} | OTHERS
PARSED = {schema_id: fastavro.parse_schema(schema) for schema_id, schema in SCHEMAS.items()}
PARSED_RAW_TIMESTAMPS = fastavro.parse_schema(RAW_TIMESTAMPS)

MAPPING = {
    "search_by": "EmailAddress",
    "lead": {
        "EmailAddress": "email",
        "FirstName": "first_name",
        "LastName": "last_name",
        "Phone": "phone",
        "mx_City": "city",
        "mx_Note": "note",
        "mx_Signup_Date": "created_at",
        "mx_Full_Name": {"template": "{first_name} {last_name}"},
        "mx_KYC": {
            "fields": {
                "Status": "kyc.status",
                "mx_CustomObject_1": "kyc.level",
                "mx_CustomObject_2": "kyc.verified",
                "mx_CustomObject_3": "kyc.document.number",
                "mx_CustomObject_4": "kyc.document.issued_at",
                "mx_CustomObject_5": "kyc.document.issuer.country",
                "mx_CustomObject_6": {"path": "kyc.document.issuer.authority"},
                "mx_CustomObject_7": {
                    "template": "{kyc.document.issuer.country} {kyc.document.number}"
                },
            }
        },
        "Source": {"const": "CRM CDC"},
    },
}


class StubSchemas:
    """Writer schemas by id, standing in for the schema registry: an id it does not hold is a
    DecodeError, as the registry's "not found" is."""

    def __init__(self, schemas: Mapping[int, Any]) -> None:
        self._schemas = {i: writer_schema(i, json.dumps(s)) for i, s in schemas.items()}

    def get(self, schema_id: int) -> WriterSchema:
        try:
            return self._schemas[schema_id]
        except KeyError:
            raise DecodeError(f"schema id {schema_id} is not in the schema registry") from None


def hostile_route() -> Route:
    spec = MappingSpec.model_validate(MAPPING)
    return Route(
        name="leads",
        account="main",
        operation="capture",
        mode="async",
        on_delete="skip",
        decode=Decoder(schemas=StubSchemas(SCHEMAS)).decode,
        render=compile_mapping("capture", spec).render,
    )


# -- what each record must get --------------------------------------------------------------------

Outcome = Literal["accepted", "dead_lettered", "skipped", "any"]
ERROR_CLASS = {"decode": "DecodeError", "unwrap": "UnwrapError", "map": "MappingError"}


@dataclass(frozen=True)
class Case:
    """One record to feed and the outcome it must get: for a dead letter, the stage and a text
    its reason must contain; for an accepted record, the exact body of its call. ``any``: bytes
    corrupted at random, which may still decode; ``undecodable`` then says whether they do not."""

    kind: str
    value: bytes | None
    outcome: Outcome
    stage: str | None = None
    fragment: str = ""
    body: list[dict[str, Any]] | None = None
    undecodable: bool = False


def wire(schema_id: int, body: bytes) -> bytes:
    return b"\x00" + struct.pack(">I", schema_id) + body


def avro(schema_id: int, value: Any, parsed: Any = None) -> bytes:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, PARSED[schema_id] if parsed is None else parsed, value)
    return wire(schema_id, out.getvalue())


def envelope(op: str, row: dict[str, Any] | None, *, before: bool = False) -> dict[str, Any]:
    return {
        "before": row if before else None,
        "after": None if before else row,
        "source": {"ts_ms": 1_790_000_000_000, "table": "leads"},
        "op": op,
        "ts_ms": 1_790_000_000_007,
    }


def _text(value: Any) -> str | None:
    """The oracle's own formatting of row values as LeadSquared strings."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    raise TypeError(value)


def _pairs(items: list[tuple[str, Any]]) -> list[dict[str, Any]]:
    return [{"Attribute": k, "Value": _text(v)} for k, v in items if v is not None]


def expected_body(row: dict[str, Any]) -> list[dict[str, Any]]:
    """The Capture body for a row, written out independently of connector.transform.mapping."""
    kyc = row["kyc"] or {}
    document = kyc.get("document") or {}
    issuer = document.get("issuer") or {}
    full_name = f"{row['first_name'] or ''} {row['last_name'] or ''}".strip()
    reference = f"{issuer.get('country') or ''} {document.get('number') or ''}".strip()
    fields = _pairs(
        [
            ("Status", kyc.get("status")),
            ("mx_CustomObject_1", kyc.get("level")),
            ("mx_CustomObject_2", kyc.get("verified")),
            ("mx_CustomObject_3", document.get("number")),
            ("mx_CustomObject_4", document.get("issued_at")),
            ("mx_CustomObject_5", issuer.get("country")),
            ("mx_CustomObject_6", issuer.get("authority")),
            ("mx_CustomObject_7", reference or None),
        ]
    )
    body = _pairs(
        [
            ("EmailAddress", row["email"]),
            ("FirstName", row["first_name"]),
            ("LastName", row["last_name"]),
            ("Phone", row["phone"]),
            ("mx_City", row["city"]),
            ("mx_Note", row["note"]),
            ("mx_Signup_Date", row["created_at"]),
            ("mx_Full_Name", full_name or None),
        ]
    )
    if fields:
        body.append({"Attribute": "mx_KYC", "Value": "", "Fields": fields})
    return [*body, {"Attribute": "Source", "Value": "CRM CDC"}, _SEARCH_BY]


_SEARCH_BY = {"Attribute": "SearchBy", "Value": "EmailAddress"}


def null_row(row_id: int = 0) -> dict[str, Any]:
    """A row with every nullable field null."""
    return {"id": row_id, **dict.fromkeys(TEXT_FIELDS), "kyc": None, "created_at": EPOCH}


def good(op: str, row: dict[str, Any]) -> Case:
    return Case("good", avro(1, envelope(op, row)), "accepted", body=expected_body(row))


def dead(kind: str, value: bytes, stage: str, fragment: str) -> Case:
    return Case(kind, value, "dead_lettered", stage, fragment)


def undecodable(body: bytes) -> bool:
    """Whether fastavro alone fails to read ``body`` as one whole envelope (the oracle for bytes
    corrupted at random)."""
    stream = io.BytesIO(body)
    try:
        fastavro.schemaless_reader(stream, PARSED[1], None)
    except Exception:  # noqa: BLE001 - any failure at all means: not a readable envelope
        return True
    return stream.tell() != len(body)


# -- strategies ---------------------------------------------------------------------------------

#: Strings that broke parsers before: NUL, BOM, bidi overrides, combining marks, astral planes,
#: line separators, private use, a noncharacter, a lone escape character.
NASTY = [
    "\x00",
    "\ufeffBOM",
    "\u202eevil\u202c",
    "e\u0301\u0301\u0301",
    "\U0001f600\U0001f9d1\u200d\U0001f4bb",
    "\U0010ffff",
    "line\u2028sep\u2029",
    "\ue000private",
    "\uffff",
    "\x1b[31mred",
    "Zoë Łukasz 王 Ñandú",
    "' OR 1=1; --",
    "{first_name}",
    "%s%n",
]
BLANKS = ["", " ", "\t\n", "\u3000", "\u2003\u200a", "\x1c\x1d\x1e\x1f", "\x85"]

unicode_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=30)
any_text = st.one_of(st.none(), unicode_text, st.sampled_from(NASTY))
emails = st.one_of(
    st.emails(),
    unicode_text.filter(str.strip),
    st.sampled_from(NASTY).filter(str.strip),
)
moments = st.integers(0, 4_102_444_800_000).map(lambda ms: EPOCH + timedelta(milliseconds=ms))
issuers = st.none() | st.fixed_dictionaries({"country": any_text, "authority": any_text})
documents = st.none() | st.fixed_dictionaries(
    {"number": any_text, "issued_at": st.none() | moments, "issuer": issuers}
)
kycs = st.none() | st.fixed_dictionaries(
    {
        "status": any_text,
        "level": st.none() | st.integers(-(2**31), 2**31 - 1),
        "verified": st.none() | st.booleans(),
        "document": documents,
    }
)


@st.composite
def rows(draw: st.DrawFn, email: st.SearchStrategy[str | None] = emails) -> dict[str, Any]:
    return {
        "id": draw(st.integers(-(2**63), 2**63 - 1)),
        "email": draw(email),
        **{name: draw(any_text) for name in TEXT_FIELDS[1:]},
        "kyc": draw(kycs),
        "created_at": draw(moments),
    }


ops = st.sampled_from(["c", "u", "r"])
UNWRAP = ["unknown_op", "no_after"]
SKIPPED = ["d", "t", "m", "tombstone", "null"]
RANDOM_BYTES = ["short", "magic", "json", "huge"]
WIRE_ERRORS = ["magic", "unknown_id", "truncated", "trailing", "utf8", "time"]
NOT_A_RECORD = ["string", "array", "double", "map", "map_envelope", "other"]
good_cases = st.builds(good, ops, rows())


@st.composite
def huge_cases(draw: st.DrawFn) -> Case:
    """A good record with one text field of about a megabyte (one, two or four UTF-8 bytes per
    character)."""
    row = draw(rows())
    unit = draw(st.sampled_from(["x", "é", "\U0001f600", "\u202e"]))
    field = draw(st.sampled_from(TEXT_FIELDS))
    row[field] = unit * (MEGABYTE // len(unit.encode()))
    return good("c", row)


@st.composite
def map_stage_cases(draw: st.DrawFn) -> Case:
    """Envelopes whose row cannot give a valid Capture: no email, or a blank one."""
    row = draw(rows(st.none() | st.sampled_from(BLANKS)))
    if draw(st.booleans()):
        row = null_row(row["id"]) | {"email": row["email"]}
    blank = "is null" if row["email"] is None else "is blank"
    return dead("no_email", avro(1, envelope(draw(ops), row)), "map", f"EmailAddress {blank}")


@st.composite
def unwrap_stage_cases(draw: st.DrawFn, kind: str | None = None) -> Case:
    """Envelopes that are no change this connector knows: an unknown op, or no after row."""
    if (kind or draw(st.sampled_from(UNWRAP))) == "unknown_op":
        op = draw(st.text(max_size=3).filter(lambda o: o not in {"c", "u", "r", "d", "t", "m"}))
        value = avro(1, envelope(op, draw(rows())))
        return dead("unknown_op", value, "unwrap", f"unknown op {op!r}")
    op = draw(ops)
    return dead("no_after", avro(1, envelope(op, None)), "unwrap", f"op {op!r} without an 'after'")


@st.composite
def skipped_cases(draw: st.DrawFn, kind: str | None = None) -> Case:
    """Deletes, truncates, messages and tombstones: nothing to call."""
    kind = kind or draw(st.sampled_from(SKIPPED))
    if kind == "tombstone":
        return Case("tombstone", None, "skipped", fragment="tombstone")
    if kind == "null":  # a wire-format null (union of null and double) reads as a tombstone
        return Case("wire_null", avro(4, None), "skipped", fragment="tombstone")
    row = draw(st.none() | rows()) if kind != "d" else draw(rows())
    reason = {"d": "delete", "t": "truncate", "m": "message"}[kind]
    return Case(f"op_{kind}", avro(1, envelope(kind, row, before=True)), "skipped", fragment=reason)


@st.composite
def random_bytes_cases(draw: st.DrawFn, kind: str | None = None) -> Case:
    """Bytes that are no Confluent wire format: empty, shorter than the header, a wrong magic
    byte (random, JSON, a megabyte of garbage)."""
    kind = kind or draw(st.sampled_from(RANDOM_BYTES))
    if kind == "short":
        value = draw(st.binary(max_size=4))
        fragment = "shorter than the 5-byte" if value else "empty value"
        return dead("short", value, "decode", fragment)
    if kind == "json":
        value = json.dumps(draw(st.sampled_from([{"email": "a@b.io"}, ["a"]]))).encode()
    elif kind == "huge":
        value = bytes([draw(st.integers(1, 255))]) * MEGABYTE
    else:
        value = bytes([draw(st.integers(1, 255))]) + draw(st.binary(min_size=4, max_size=100))
    return dead(kind, value, "decode", f"magic byte 0x{value[0]:02x} is not 0")


@st.composite
def wire_error_cases(draw: st.DrawFn, kind: str | None = None) -> Case:
    """Wire format gone wrong: a good record with another magic byte, an unknown schema id,
    truncated, with trailing bytes, with invalid UTF-8 in a string, with an out-of-range
    timestamp."""
    row = draw(rows())
    encoded = avro(1, envelope("c", row))
    kind = kind or draw(st.sampled_from(WIRE_ERRORS))
    if kind == "magic":
        magic = draw(st.integers(1, 255))
        value = bytes([magic]) + encoded[1:]
        return dead("wrong_magic", value, "decode", f"magic byte 0x{magic:02x} is not 0")
    if kind == "unknown_id":
        schema_id = draw(st.integers(0, 2**32 - 1).filter(lambda i: i not in SCHEMAS))
        value = wire(schema_id, encoded[5:])
        return dead("unknown_id", value, "decode", f"schema id {schema_id} ")
    if kind == "truncated":
        cut = draw(st.integers(5, len(encoded) - 1))
        return dead("truncated", encoded[:cut], "decode", "does not match writer schema 1")
    if kind == "trailing":
        extra = draw(st.binary(min_size=1, max_size=30))
        return dead("trailing", encoded + extra, "decode", f"{len(extra)} trailing bytes")
    if kind == "utf8":
        marked = avro(1, envelope("c", row | {"first_name": "\u2603"}))
        value = marked.replace("\u2603".encode(), b"\xed\xa0\x80", 1)  # a UTF-16 surrogate
        return dead("bad_utf8", value, "decode", "utf-8")
    millis = draw(st.sampled_from([2**62, -(2**62), 253_402_300_800_000, -62_135_596_800_001]))
    raw_row = row | {"created_at": millis}
    value = avro(1, envelope("c", raw_row), PARSED_RAW_TIMESTAMPS)
    return dead("timestamp_out_of_range", value, "decode", "")


@st.composite
def corrupted_cases(draw: st.DrawFn) -> Case:
    """A good record with a few bytes of its Avro body overwritten at random: it may still read
    (as some other record), or not."""
    encoded = bytearray(avro(1, envelope(draw(ops), draw(rows()))))
    for _ in range(draw(st.integers(1, 3))):
        encoded[draw(st.integers(5, len(encoded) - 1))] = draw(st.integers(0, 255))
    value = bytes(encoded)
    return Case("corrupted", value, "any", undecodable=undecodable(value[5:]))


@st.composite
def not_a_record_cases(draw: st.DrawFn, kind: str | None = None) -> Case:
    """Top-level values that are no record (a string, an array, a double), maps and other
    records: plain rows without the mapped fields, or envelope-like maps that are broken."""
    kind = kind or draw(st.sampled_from(NOT_A_RECORD))
    if kind == "string":
        value = avro(2, draw(unicode_text))
        return dead("top_string", value, "unwrap", "expected a record, got str")
    if kind == "array":
        value = avro(3, draw(st.lists(st.integers(-(2**63), 2**63 - 1), max_size=5)))
        return dead("top_array", value, "unwrap", "expected a record, got list")
    if kind == "double":
        value = avro(4, draw(st.floats()))
        return dead("top_double", value, "unwrap", "expected a record, got float")
    if kind == "map_envelope":
        if draw(st.booleans()):
            value = avro(5, {"op": "c", "after": draw(unicode_text)})
            return dead("map_after_str", value, "unwrap", "'after' is str, expected a record")
        op = draw(st.text(max_size=3).filter(lambda o: o not in {"c", "u", "r", "d", "t", "m"}))
        return dead("map_bad_op", avro(5, {"__op": op}), "unwrap", f"unknown __op {op!r}")
    if kind == "map":
        reserved = {"email", "op", "before", "after"}
        keys = unicode_text.filter(lambda k: k not in reserved and not k.startswith("__"))
        value = avro(5, draw(st.dictionaries(keys, any_text, max_size=5)))
    else:
        value = avro(6, {"foo": draw(st.integers(-(2**63), 2**63 - 1)), "bar": draw(any_text)})
    return dead(f"plain_{kind}", value, "map", "EmailAddress is null")


hostile_cases = st.one_of(
    map_stage_cases(),
    unwrap_stage_cases(),
    skipped_cases(),
    random_bytes_cases(),
    wire_error_cases(),
    corrupted_cases(),
    not_a_record_cases(),
    huge_cases(),
)
streams = st.lists(st.one_of(good_cases, hostile_cases), min_size=1, max_size=30)
keys = st.none() | st.binary(max_size=8) | st.sampled_from([b"k1", b"k2", b"k3"])
record_headers = st.lists(st.tuples(st.sampled_from(["trace", "x-src"]), st.binary(max_size=8)))


# -- the property -------------------------------------------------------------------------------


def feed(
    h: Harness, cases: list[Case], draw_key: Callable[[int], bytes | None]
) -> list[SourceRecord]:
    """Feed the cases round-robin over the partitions; the SourceRecord of each."""
    next_offset = [0] * PARTITIONS
    records = []
    for i, case in enumerate(cases):
        partition = i % PARTITIONS
        headers = (("trace", str(i).encode()),) if i % 4 == 0 else ()
        record = SourceRecord(
            TOPIC, partition, next_offset[partition], draw_key(i), case.value, headers, 1_000 + i
        )
        next_offset[partition] += 1
        records.append(record)
    h.feed(*records)
    return records


def check_stream(cases: list[Case], draw_key: Callable[[int], bytes | None]) -> None:
    """Run the stream to the end and check every record's outcome."""
    h = route_harness(hostile_route())
    with structlog.testing.capture_logs() as logs:
        records = feed(h, cases, draw_key)
        run_until_done(h, max_turns=20 * len(cases) + 20)

    outcome_lines: dict[tuple[int, int], list[str]] = {}
    for line in logs:
        if line["event"] in {"record.accepted", "record.dead_lettered", "record.skipped"}:
            outcome_lines.setdefault((line["partition"], line["offset"]), []).append(line["event"])
    written = {(w.record.partition, w.record.offset): w for w in h.output.written}
    assert len(written) == len(h.output.written), "a record was written twice"
    sent = [json.dumps(s.request.body, sort_keys=True) for s in h.calls.sent]

    for case, record in zip(cases, records, strict=True):
        where = (record.partition, record.offset)
        lines = outcome_lines.get(where, [])
        assert len(lines) == 1, (case.kind, lines)
        outcome = lines[0].removeprefix("record.")
        item = written.get(where)
        if case.outcome != "any":
            assert outcome == case.outcome, (case.kind, case.fragment, item and item.data)
        if outcome == "skipped":
            assert item is None, case.kind
            skip = next(
                x
                for x in logs
                if x["event"] == "record.skipped" and (x["partition"], x["offset"]) == where
            )
            assert case.fragment in skip["reason"]
            continue
        assert item is not None, case.kind
        if outcome == "accepted":
            assert item.kind == "result"
            if case.body is not None:  # called with exactly its payload
                body = json.dumps(case.body, sort_keys=True)
                assert body in sent, (case.kind, body[:300], [s[:300] for s in sent])
                sent.remove(body)
            continue
        assert item.kind == "dead_letter"
        check_dead_letter(case, record, item.data)
    unexpected_calls = sum(1 for c in cases if c.outcome == "any" and c.body is None)
    assert len(sent) <= unexpected_calls  # only corrupted records that still decode remain

    tally = h.pipeline.tally
    assert (tally.consumed, tally.lost) == (len(cases), 0)
    assert tally.accepted == len(h.calls.sent)  # one call per accepted record, none repeated
    ends = {(TOPIC, r.partition): r.offset + 1 for r in records}
    assert h.input.committed_positions() == ends


def check_dead_letter(case: Case, record: SourceRecord, why: Any) -> None:
    """Stage, reason and error class as expected; the Connect and lsq.* headers built from
    them, after the record's own headers."""
    assert isinstance(why, DeadLetter)
    assert why.reason.strip(), case.kind
    assert (why.attempts, why.http_status) == (0, None)  # never called
    if case.outcome == "any":
        assert why.stage in ERROR_CLASS, why
        if case.undecodable:
            assert why.stage == "decode", (why, case.value)
    else:
        assert why.stage == case.stage, (case.kind, why)
        assert case.fragment in why.reason, (case.kind, case.fragment, why.reason[:300])
    assert why.error_class == ERROR_CLASS[why.stage]
    headers = dead_letter(record, why).all_headers
    assert headers[: len(record.headers)] == list(record.headers)  # the originals, unchanged
    ours = {k: v.decode() for k, v in headers[len(record.headers) :] if isinstance(v, bytes)}
    assert ours["__connect.errors.topic"] == TOPIC
    assert ours["__connect.errors.partition"] == str(record.partition)
    assert ours["__connect.errors.offset"] == str(record.offset)
    assert ours["__connect.errors.exception.class.name"] == why.error_class
    assert ours["__connect.errors.exception.message"] == why.reason
    assert ours["lsq.error.stage"] == why.stage


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(cases=streams, data=st.data())
def test_hostile_streams_get_exactly_one_right_outcome_each(
    cases: list[Case], data: st.DataObject
) -> None:
    """Whatever the stream holds, the loop never raises; each record gets exactly one outcome
    (one log line, at most one written outcome): good ones are called with exactly their payload
    and accepted, bad ones dead-lettered at their stage with a reason naming the problem, skips
    skipped; commits reach the end of every partition."""
    chosen = [data.draw(keys) for _ in cases]
    check_stream(cases, chosen.__getitem__)


#: One case of every kind: (strategy, kind) pairs.
EVERY_KIND: list[st.SearchStrategy[Case]] = [
    good_cases,
    huge_cases(),
    map_stage_cases(),
    corrupted_cases(),
    *(unwrap_stage_cases(kind) for kind in UNWRAP),
    *(skipped_cases(kind) for kind in SKIPPED),
    *(random_bytes_cases(kind) for kind in RANDOM_BYTES),
    *(wire_error_cases(kind) for kind in WIRE_ERRORS),
    *(not_a_record_cases(kind) for kind in NOT_A_RECORD),
]


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cases=st.tuples(*EVERY_KIND).flatmap(lambda found: st.permutations(list(found))),
    key_every=st.integers(1, 4),
)
def test_every_kind_of_hostile_record_in_one_stream(cases: list[Case], key_every: int) -> None:
    """The same property on streams holding every kind of record at least once, in random
    order, some sharing keys, so that no kind depends on what the random stream draws."""
    check_stream(cases, lambda i: None if i % key_every == 0 else f"k{i % 3}".encode())
