"""Property (SPEC §2.9): coalescing never changes what LeadSquared ends up with. Random change
sequences of one key (nulls, empty strings, unmapped columns, deletes, tombstones, another email)
go through a real route (unwrap → map, ``on_null`` omit and clear), then into the simulator's lead
store (its Lead.Capture and Lead.Update semantics, in-process) twice: one call per record, and
coalesced as the dispatcher groups them. The leads must come out identical."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from hypothesis import given, settings
from hypothesis import strategies as st

from connector.lsq.coalesce import combine
from connector.records import Payload, SourceRecord
from connector.transform.mapping import MappingSpec, compile_mapping
from connector.transform.route import Route
from lsq_sim.records import LeadField
from tests.unit.coalesce_fakes import LEAD_ID, fresh_store, leads, send

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from connector.lsq.coalesce import Coalesce
    from connector.records import Operation as RouteOperation

LEAD: dict[str, Any] = {
    "EmailAddress": "email",
    "Phone": "phone",
    "FirstName": "first",
    "Source": "source",
    "mx_City": {"path": "city", "default": "Pune"},
    "mx_Note": {"template": "{first} {city}"},
    "mx_KYC": {"fields": {"Status": "kyc_status", "mx_CustomObject_1": "kyc_doc"}},
}
BEHAVIORS = (None, "DoNotUpdate", "UpdateOnlyEmptyFields", "DoNotUpdateUniqueFields")


def coalesced(
    mode: Coalesce, payloads: Iterable[Payload | None], gone: Sequence[bool]
) -> list[Payload]:
    """The calls the dispatcher makes: a payload joins the key's last call while that one has not
    gone out (``gone[i]``: it went before record ``i`` arrived) and :func:`combine` allows it;
    ``None`` is a record without a call (skipped or dead-lettered), which may or may not end the
    open call (``gone`` decides)."""
    calls: list[Payload] = []
    open_ = False
    for payload, went in zip(payloads, gone, strict=True):
        open_ = open_ and not went
        if payload is None:
            continue
        joined = combine(mode, calls[-1], payload) if open_ else None
        if joined is None:
            calls.append(payload)
        else:
            calls[-1] = joined
        open_ = True
    return calls


def _route(operation: RouteOperation, mapping: dict[str, Any]) -> Route:
    render = compile_mapping(operation, MappingSpec.model_validate(mapping)).render
    return Route("leads", "main", operation, "async", "skip", json.loads, render)


def _payload(route: Route, value: Any, offset: int) -> Payload | None:
    """What the route makes of one record value: a payload, or ``None`` (no call)."""
    raw = None if value is None else json.dumps(value).encode()
    prepared = route.prepare(SourceRecord("leads", 0, offset, b"k", raw))
    return prepared if isinstance(prepared, Payload) else None


#: Column → the values a row may hold (``{tag}``: the email's first letter: a phone belongs to one
#: email, so no call meets another lead's unique phone).
COLUMNS: dict[str, tuple[Any, ...]] = {
    "phone": ("1{tag}", "2{tag}", None, ""),
    "first": ("X", "A", "B", None, ""),
    "source": ("web", "crm", None, ""),
    "city": ("Goa", "Delhi", None),
    "kyc_status": ("new", "done", None),
    "kyc_doc": ("7", "8", None, ""),
    "pid": (None, None, None, LEAD_ID, "zz"),
    "unmapped": (None, 1, 2),
}


@st.composite
def _rows(draw: st.DrawFn, emails: Sequence[str | None]) -> list[dict[str, Any]]:
    """Rows of one key, each (as a CDC update) like the one before with some columns changed."""
    rows: list[dict[str, Any]] = []
    state: dict[str, Any] = {}
    for _ in range(draw(st.integers(0, 10))):
        first = not state
        if first or draw(st.integers(0, 3)) == 0:  # the lead's email changes less often
            state["email"] = draw(st.sampled_from(emails))
        for column, pool in COLUMNS.items():
            if first or draw(st.booleans()):
                state[column] = draw(st.sampled_from(pool))
        tag = (state["email"] or "?")[0]
        rows.append({k: v.format(tag=tag) if isinstance(v, str) else v for k, v in state.items()})
    return rows


def _value(row: dict[str, Any], kind: str) -> Any:
    """One record value: a Debezium change (create, update, snapshot read), a delete, a plain
    row, or a tombstone."""
    if kind == "tombstone":
        return None
    if kind == "plain":
        return row
    if kind == "d":
        return {"op": "d", "before": row, "after": None}
    return {"op": kind, "before": None, "after": row}


_EXISTING = (
    LeadField("Phone", "1a"),
    LeadField("FirstName", "X"),
    LeadField("FirstName", ""),
    LeadField("Source", "fair"),
    LeadField("mx_City", "Goa"),
    LeadField("mx_Note", "old"),
    LeadField("mx_KYC", "", (("Status", "old"), ("mx_CustomObject_1", ""))),
    LeadField("mx_KYC", "", (("Status", ""), ("mx_CustomObject_1", "5"))),
)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Route, list[Any], list[LeadField] | None]:
    """A route, the record values of one key, and the lead as it was before (if any)."""
    operation: RouteOperation = draw(st.sampled_from(["capture", "update"]))
    lead = {"ProspectID": "pid", **LEAD} if draw(st.integers(0, 3)) == 0 else LEAD
    mapping: dict[str, Any] = {"lead": lead, "on_null": draw(st.sampled_from(["omit", "clear"]))}
    emails: list[str | None] = ["a@x.io", "a@x.io", "b@x.io"]
    if operation == "update":
        mapping["lead_id"] = {"const": LEAD_ID}
        emails += [None, ""]
    elif draw(st.booleans()):
        mapping["search_by"] = "EmailAddress"
        emails += [None, ""]  # dead-lettered: no value to search by
    if operation == "capture" and (behavior := draw(st.sampled_from(BEHAVIORS))) is not None:
        mapping["lead_update_behavior"] = behavior
    existing = None
    if draw(st.booleans()):
        existing = [LeadField("EmailAddress", "a@x.io")]
        existing += draw(st.lists(st.sampled_from(_EXISTING), unique_by=lambda f: f.attribute))
    rows = draw(_rows(emails))
    kinds = st.sampled_from(["c", "u", "u", "u", "r", "d", "plain", "tombstone"])
    values = [_value(row, draw(kinds)) for row in rows]
    return _route(operation, mapping), values, existing


@settings(max_examples=400, deadline=None)
@given(scenario=scenarios(), mode=st.sampled_from(["latest", "merge"]), data=st.data())
def test_coalesced_calls_leave_the_leads_that_one_call_per_record_leaves(
    scenario: tuple[Route, list[Any], list[LeadField] | None], mode: Coalesce, data: st.DataObject
) -> None:
    """Whatever the changes, the null option, the LeadUpdateBehavior and the grouping, the
    coalesced calls leave every lead as sending each record in offset order does."""
    route, values, existing = scenario
    payloads = [_payload(route, value, offset) for offset, value in enumerate(values)]
    gone = data.draw(st.lists(st.booleans(), min_size=len(values), max_size=len(values)))
    one_by_one, together = fresh_store(existing), fresh_store(existing)
    for payload in payloads:
        if payload is not None:
            send(one_by_one, payload)
    for call in coalesced(mode, payloads, gone):
        send(together, call)
    assert leads(together) == leads(one_by_one)
