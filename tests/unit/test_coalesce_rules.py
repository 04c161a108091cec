"""What LeadSquared keeps of each change a coalesced call carries (SPEC §2.9), on the simulator's
lead store: the latest value, except the lead Source Lead.Capture never changes once set and the
first values UpdateOnlyEmptyFields and DoNotUpdate keep; and the changes that never share a call
(DoNotUpdateUniqueFields, another lead, a ProspectID)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from connector.lsq.coalesce import combine
from connector.records import Payload
from lsq_sim.records import LeadField
from tests.unit.coalesce_fakes import EMAIL, MODES, SEARCH, attrs, both_ways, capture, fields, kyc

if TYPE_CHECKING:
    from connector.lsq.coalesce import Coalesce


@pytest.mark.parametrize("mode", MODES)
def test_an_empty_value_clears_what_an_earlier_change_set(mode: Coalesce) -> None:
    """With ``on_null: clear`` a null is sent as "": a value, so X → A → "" ends empty."""
    existing = [LeadField("EmailAddress", "a@x.io"), LeadField("Phone", "X")]
    payloads = [capture(("Phone", "A")), capture(("Phone", ""))]
    one_by_one, together = both_ways(mode, payloads, existing)
    assert fields(one_by_one) == fields(together) == [{"EmailAddress": "a@x.io", "Phone": ""}]


# --- what LeadSquared keeps from the first change ------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_a_capture_keeps_the_lead_source_the_first_change_set(mode: Coalesce) -> None:
    """Lead.Capture never changes a Source already set: the first non-empty one stays."""
    payloads = [capture(("Source", "")), capture(("Source", "web")), capture(("Source", "crm"))]
    one_by_one, together = both_ways(mode, payloads)
    assert fields(one_by_one) == fields(together) == [{"EmailAddress": "a@x.io", "Source": "web"}]


@pytest.mark.parametrize("mode", MODES)
def test_update_only_empty_fields_keeps_each_field_s_first_value(mode: Coalesce) -> None:
    """With UpdateOnlyEmptyFields, each field (custom field set fields one by one) keeps the
    first non-empty value it is given; a lead's non-empty field is never written."""
    only_empty = "UpdateOnlyEmptyFields"
    first = capture(kyc(("Status", "new")), ("FirstName", "A"), ("Phone", ""), behavior=only_empty)
    later_set = kyc(("Status", "done"), ("Id", "7"))
    later = capture(later_set, ("FirstName", "B"), ("Phone", "2"), behavior=only_empty)
    existing = [LeadField("EmailAddress", "a@x.io"), LeadField("mx_City", "Goa")]
    one_by_one, together = both_ways(mode, [first, later], existing)
    assert one_by_one == together
    assert together[0][1] == {
        "EmailAddress": "a@x.io",
        "mx_City": "Goa",
        "FirstName": "A",
        "Phone": "2",
    }
    assert together[0][2] == {"mx_KYC": {"Status": "new", "Id": "7"}}


@pytest.mark.parametrize("mode", MODES)
def test_do_not_update_carries_the_first_change_only(mode: Coalesce) -> None:
    """With DoNotUpdate the first change creates the lead (or leaves it) and the later ones
    write nothing: the combined call is the first change."""
    first = capture(("Phone", "1"), behavior="DoNotUpdate")
    later = capture(("Phone", "2"), ("FirstName", "B"), behavior="DoNotUpdate")
    assert combine(mode, first, later) == first
    one_by_one, together = both_ways(mode, [first, later])
    assert fields(one_by_one) == fields(together) == [{"EmailAddress": "a@x.io", "Phone": "1"}]


# --- what cannot share a call ---------------------------------------------------------------


def test_do_not_update_unique_fields_never_combines() -> None:
    """What it leaves depends on the tenant's unique fields, which the connector does not know."""
    first = capture(("Phone", "1"), behavior="DoNotUpdateUniqueFields")
    later = capture(("Phone", "2"), behavior="DoNotUpdateUniqueFields")
    assert combine("latest", first, later) is None
    assert combine("merge", first, later) is None


@pytest.mark.parametrize(
    ("earlier", "later"),
    [
        (attrs(EMAIL, SEARCH), attrs(("EmailAddress", "b@x.io"), SEARCH)),  # another lead
        (attrs(EMAIL, ("Phone", "1")), attrs(EMAIL, ("Phone", "2"))),  # matched by both
        (attrs(("ProspectID", "P1"), EMAIL), attrs(("ProspectID", "P1"), EMAIL)),
        (attrs(("Phone", ""), ("FirstName", "A")), attrs(("Phone", ""), ("FirstName", "B"))),
    ],
)
def test_captures_that_may_not_find_the_same_lead_never_combine(
    earlier: list[dict[str, Any]], later: list[dict[str, Any]]
) -> None:
    """Another search value, a ProspectID (a lead of another email, or none: a new lead each
    time) or no value to match on: each capture may find or create another lead."""
    assert combine("merge", Payload("capture", (), earlier), Payload("capture", (), later)) is None


def test_a_created_lead_is_found_again_by_the_same_email() -> None:
    """The first capture creates the lead, the later one updates it: one call does both."""
    one_by_one, together = both_ways(
        "merge", [capture(("Phone", "1")), capture(("FirstName", "A"))]
    )
    assert (
        fields(one_by_one)
        == fields(together)
        == [{"EmailAddress": "a@x.io", "Phone": "1", "FirstName": "A"}]
    )


def test_updates_of_one_lead_id_combine_field_by_field() -> None:
    params = (("leadId", "P1"), ("postUpdatedLead", "false"))
    one = Payload("update", params, [*attrs(("Phone", "1")), kyc(("Id", "7"))])
    two = Payload("update", params, [kyc(("Status", "ok"))])
    existing = [LeadField("EmailAddress", "a@x.io"), LeadField("Source", "fair")]
    one_by_one, together = both_ways("latest", [one, two], existing)
    assert one_by_one == together
    assert together == [
        (
            "P1",
            {"EmailAddress": "a@x.io", "Source": "fair", "Phone": "1"},
            {"mx_KYC": {"Id": "7", "Status": "ok"}},
        )
    ]
