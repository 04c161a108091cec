"""Coalesced changes (SPEC §12): changes of one key waiting together go out as one call that
leaves LeadSquared as the calls one by one would (SPEC §2.9); each source record keeps its own
outcome, in per-key order. What LeadSquared keeps of each change: test_coalesce_rules.py."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from connector.lsq.coalesce import combine
from connector.records import Accepted, Payload, SourceRecord
from lsq_sim.records import LeadField
from tests.unit.coalesce_fakes import (
    EMAIL,
    MODES,
    SEARCH,
    attrs,
    both_ways,
    capture,
    fields,
    fresh_store,
    leads,
    send,
)
from tests.unit.pipeline_fakes import ACCEPTED, DUPLICATE, THROTTLED, harness

if TYPE_CHECKING:
    from connector.lsq.coalesce import Coalesce


# --- X → A → null: a null left out must not undo the change before it (pins the fix) --------


@pytest.mark.parametrize("mode", MODES)
def test_a_null_after_a_change_keeps_the_change(mode: Coalesce) -> None:
    """X → A → null ends at A, as the calls one by one leave it (not at X: the null is left out
    of the later payload, so that payload alone would not touch the field)."""
    existing = [LeadField("EmailAddress", "a@x.io"), LeadField("Phone", "X")]
    one_by_one, together = both_ways(mode, [capture(("Phone", "A")), capture()], existing)
    assert fields(one_by_one) == fields(together) == [{"EmailAddress": "a@x.io", "Phone": "A"}]


def test_latest_carries_what_the_later_payload_left_out_after_its_own_attributes() -> None:
    earlier = Payload("capture", (), attrs(EMAIL, ("Phone", "1"), SEARCH))
    later = Payload("capture", (), attrs(EMAIL, SEARCH))
    combined = combine("latest", earlier, later)
    assert combined is not None
    assert combined.body == attrs(EMAIL, ("Phone", "1"), SEARCH)


def test_latest_is_the_later_payload_when_it_names_every_attribute() -> None:
    earlier = Payload("capture", (), attrs(("Phone", "1"), EMAIL, SEARCH))
    later = Payload("capture", (), attrs(EMAIL, ("Phone", "2"), SEARCH))
    assert combine("latest", earlier, later) == later


def test_x_then_a_then_null_through_the_dispatcher_leaves_a_in_leadsquared() -> None:
    """r0 (name X) is out; r1 (A) and r2 (null) wait and go as one call: applied to the lead
    store after r0, it leaves A, as r1 and r2 one by one would."""
    h = harness(coalesce="latest")
    h.feed(change(0, "k", lead(0, name="X")))
    h.turn()
    h.feed(change(1, "k", lead(1, name="A")), change(2, "k", {"email": "a@x.io", "name": None}))
    h.calls.answer(ACCEPTED)
    h.turn(2)
    assert len(h.calls.sent) == 2
    store = fresh_store()
    for sent in h.calls.sent:
        body = sent.request.body
        assert isinstance(body, list)
        send(store, Payload("capture", sent.request.params, body))
    assert fields(leads(store)) == [{"EmailAddress": "a@x.io", "FirstName": "A"}]


def test_merge_is_what_both_calls_in_turn_would_leave() -> None:
    """Attributes of both, the later winning, in first-seen order, custom field sets merged field
    by field, SearchBy last as in a single call."""
    kyc_1 = {"Attribute": "mx_KYC", "Value": "", "Fields": attrs(("Status", "new"), ("Id", "7"))}
    kyc_2 = {"Attribute": "mx_KYC", "Value": "", "Fields": attrs(("Status", "done"))}
    earlier = attrs(("EmailAddress", "a@x.io"), ("Phone", "1"), SEARCH)
    earlier.insert(2, kyc_1)
    later = [*attrs(("EmailAddress", "a@x.io"), ("FirstName", "A")), kyc_2, *attrs(SEARCH)]
    merged = combine("merge", Payload("capture", (), earlier), Payload("capture", (), later))
    assert merged is not None
    assert merged.body == [
        *attrs(("EmailAddress", "a@x.io"), ("Phone", "1")),
        {"Attribute": "mx_KYC", "Value": "", "Fields": attrs(("Status", "done"), ("Id", "7"))},
        *attrs(("FirstName", "A"), SEARCH),
    ]


def test_changes_for_different_leads_never_combine() -> None:
    one = Payload("update", (("leadId", "L1"), ("postUpdatedLead", "false")), attrs(("Phone", "1")))
    two = Payload("update", (("leadId", "L2"), ("postUpdatedLead", "false")), attrs(("Phone", "2")))
    assert combine("latest", one, two) is None
    assert combine("merge", one, two) is None


def change(offset: int, key: str, row: dict[str, Any]) -> SourceRecord:
    value = {"op": "u", "before": None, "after": row}
    return SourceRecord("leads", 0, offset, key.encode(), json.dumps(value).encode())


def lead(offset: int, name: str | None = None, email: str = "a@x.io") -> dict[str, Any]:
    return {"email": email, "name": f"lead {offset}" if name is None else name}


def test_changes_waiting_behind_a_call_go_out_as_one_call_with_the_latest_state() -> None:
    """r0 is out; r1..r3 of the same key wait and go in one call carrying r3's state; each of the
    four gets its results record, r1..r3 sharing the request id and marked coalesced, and the
    offsets are committed to the end."""
    h = harness(coalesce="latest")
    h.feed(change(0, "k", lead(0)))
    h.turn()
    h.feed(*(change(i, "k", lead(i)) for i in (1, 2, 3)), change(4, "other", lead(4, email="o@x")))
    h.turn()
    assert len(h.calls.sent) == 2  # r0, and the other key's record: r1..r3 wait for r0
    h.calls.answer(ACCEPTED)
    h.turn(2)
    assert len(h.calls.sent) == 3
    body = h.calls.sent[2].request.body
    assert body == attrs(("EmailAddress", "a@x.io"), ("FirstName", "lead 3"), SEARCH)
    h.calls.answer(ACCEPTED)
    h.turn(2)
    results = {w.record.offset: w.data for w in h.output.written}
    assert sorted(results) == [0, 1, 2, 3, 4]
    assert all(isinstance(r, Accepted) for r in results.values())
    coalesced = {o for o, r in results.items() if isinstance(r, Accepted) and r.coalesced}
    assert coalesced == {1, 2, 3}
    assert (h.pipeline.tally.api_calls, h.pipeline.tally.coalesced) == (3, 2)
    assert h.input.committed_positions()[("leads", 0)] == 5


def test_merge_keeps_an_attribute_a_later_change_left_out() -> None:
    h = harness(coalesce="merge")
    h.feed(change(0, "k", lead(0)))
    h.turn()
    h.feed(change(1, "k", {"email": "a@x.io", "name": "B"}), change(2, "k", lead(2, name=None)))
    h.feed(change(3, "k", {"email": "a@x.io", "name": None}))
    h.turn()
    h.calls.answer(ACCEPTED)
    h.turn(2)
    body = h.calls.sent[1].request.body
    assert body == attrs(("EmailAddress", "a@x.io"), ("FirstName", "lead 2"), SEARCH)


def test_without_coalescing_each_change_is_a_call() -> None:
    h = harness()
    h.feed(*(change(i, "k", lead(i)) for i in range(3)))
    for _ in range(3):
        h.turn()
        h.calls.answer(ACCEPTED)
        h.turn()
    assert h.pipeline.tally.api_calls == 3


def test_a_change_never_joins_a_call_already_sent() -> None:
    """After a throttled attempt, the job has gone out once: a newer change waits behind it as
    a call of its own (what LeadSquared may have seen must be followed by what came later)."""
    h = harness(coalesce="latest")
    h.feed(change(0, "k", lead(0)))
    h.turn()
    h.calls.answer(THROTTLED)
    h.turn()
    h.feed(change(1, "k", lead(1)))
    h.turn()
    h.clock.advance(6.0)
    h.turn()
    h.calls.answer(ACCEPTED)
    h.turn(2)
    h.calls.answer(ACCEPTED)
    h.turn(2)
    names = [s.request.body[1]["Value"] for s in h.calls.sent]  # type: ignore[index]
    assert names == ["lead 0", "lead 0", "lead 1"]
    assert not any(isinstance(w.data, Accepted) and w.data.coalesced for w in h.output.written)


def test_a_coalesced_call_that_fails_dead_letters_every_record_it_carried() -> None:
    h = harness(coalesce="latest")
    h.feed(change(0, "k", lead(0)))
    h.turn()
    h.feed(change(1, "k", lead(1)), change(2, "k", lead(2)))
    h.calls.answer(ACCEPTED)
    h.turn(2)
    h.calls.answer(DUPLICATE)
    h.turn(2)
    assert h.output.kinds() == {0: "result", 1: "dead_letter", 2: "dead_letter"}
    assert h.input.committed_positions()[("leads", 0)] == 3
