"""Property: whatever a decoded row holds (nulls everywhere, unicode, very long strings, nested
dicts and lists, huge ints, NaN and infinities, ...), rendering returns a valid Payload or raises
MappingError, never anything else."""

from __future__ import annotations

import json
from datetime import UTC, timedelta, timezone
from typing import TYPE_CHECKING, Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.errors import MappingError
from connector.records import Change, Payload, SourceRecord
from connector.transform.mapping import MappingSpec, compile_mapping

if TYPE_CHECKING:
    from connector.records import ChangeOp, Operation
    from connector.transform.mapping import Mapper

LEAD = yaml.safe_load("""
EmailAddress: email
Phone: {path: contact.phones.0}
ProspectID: {path: pid, default: "none"}
FirstName: {template: "{first} {contact.name} {$op}"}
Source: {const: CDC}
mx_When: {path: when}
mx_Amount: amount
mx_Table: $meta.table
mx_KYC: {fields: {Status: kyc.status, mx_CustomObject_1: kyc.doc}}
""")
ACTIVITY = yaml.safe_load("""
event: {path: code}
note: {template: "Order {order} {first}"}
datetime: when
fields: {mx_Custom_1: amount, mx_KYC: {fields: {Status: kyc.status}}}
""")
MAPPINGS: dict[Operation, dict[str, Any]] = {
    "capture": {"search_by": "EmailAddress", "lead": LEAD},
    "create": {"lead": LEAD},
    "update": {"lead_id": "pid", "post_updated_lead": True, "lead": LEAD},
    "lead_and_activity": {"lead": LEAD, "activity": ACTIVITY},
}
MAPPERS: dict[Operation, Mapper] = {
    operation: compile_mapping(operation, MappingSpec.model_validate(mapping))
    for operation, mapping in MAPPINGS.items()
}
OPS: list[ChangeOp] = ["c", "u", "r", "d"]
KEYS = ["email", "contact", "pid", "first", "when", "amount", "kyc", "code", "order", "extra"]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([-(10**30), 2**31, 0]),
    st.builds(pow, st.just(10), st.just(5000)),  # built lazily: repr() of it would fail
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.text(),
    st.sampled_from(["", "  ", "x" * 100_000, "2024-01-02T03:04:05+05:30", "201", "é\u200b😀"]),
    st.binary(max_size=8),
    st.datetimes(timezones=st.sampled_from([None, UTC, timezone(timedelta(hours=-12))])),
    st.dates(),
    st.times(),
    st.uuids(),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from([*KEYS, "0", "phones", "name", "status", "doc"]), inner),
    ),
    max_leaves=12,
)
#: Half chaos, half rows whose identifiers are present, so that both outcomes get exercised.
rows = st.one_of(
    st.dictionaries(st.sampled_from(KEYS), values),
    st.fixed_dictionaries(
        {
            "email": st.text(min_size=1).filter(str.strip),
            "pid": st.uuids().map(str),
            "code": st.integers(min_value=1, max_value=2**31 - 1),
        },
        optional={key: scalars for key in KEYS if key not in ("email", "pid", "code")},
    ),
)
timestamps = st.one_of(st.none(), st.integers(min_value=-(2**63), max_value=2**63))


@st.composite
def changes(draw: st.DrawFn) -> Change:
    row = draw(rows)
    op = draw(st.sampled_from(OPS))
    meta = draw(st.one_of(st.none(), st.dictionaries(st.sampled_from(["table", "lsn"]), values)))
    after = None if op == "d" else row
    return Change(op, after, before=row if op == "d" else None, meta=meta, ts_ms=draw(timestamps))


def check_payload(payload: Payload, operation: Operation) -> None:
    """Every value is a string, the body is strict JSON, ActivityEvent is a positive int."""
    assert payload.operation == operation
    json.dumps(payload.body, allow_nan=False)
    body = payload.body
    lead = body["LeadDetails"] if isinstance(body, dict) else body
    assert lead
    for entry in lead:
        assert isinstance(entry["Value"], str)
        for inner in entry.get("Fields", []):
            assert isinstance(inner["Value"], str)
    if isinstance(body, dict):
        assert body["Activity"]["ActivityEvent"] > 0
    assert all(name and value.strip() for name, value in payload.params)


@settings(max_examples=300, deadline=None)
@given(
    operation=st.sampled_from(list(MAPPERS)),
    change=changes(),
    record_ts=timestamps,
)
def test_render_returns_a_payload_or_raises_mapping_error(
    operation: Operation, change: Change, record_ts: int | None
) -> None:
    """Random rows never make render raise anything but MappingError."""
    record = SourceRecord("topic", 0, 0, None, b"", timestamp_ms=record_ts)
    outcome: Payload | MappingError
    try:
        outcome = MAPPERS[operation].render(change, record)
    except MappingError as exc:
        outcome = exc
    if isinstance(outcome, Payload):
        check_payload(outcome, operation)
    else:
        assert outcome.path
        assert str(outcome).startswith(f"{outcome.path}: ")


def test_fuzz_mappings_render_a_typical_row() -> None:
    """The fuzzed mappings do succeed on a well-formed row (the property is not vacuous)."""
    row: dict[str, Any] = {"email": "a@x.io", "pid": "P1", "code": 201, "first": "Ada"}
    record = SourceRecord("topic", 0, 0, None, b"", timestamp_ms=0)
    for operation, mapper in MAPPERS.items():
        check_payload(mapper.render(Change("c", row), record), operation)
