"""Lead.Capture: each rule of seeds/capture-leads.txt ("How it Works") and LeadUpdateBehavior."""

from __future__ import annotations

import pytest

from lsq_sim.capture import capture, match
from lsq_sim.records import DuplicateEntryError, LeadField, MXError, UpdateBehavior
from lsq_sim.store import LEAD_CAPTURE_EVENT, LeadStore
from tests.unit.sim.builders import fields


def _lead(store: LeadStore, **values: str) -> str:
    return str(store.create(fields(**values))["Id"])


def test_no_prospect_id_email_or_phone_creates_a_lead(store: LeadStore) -> None:
    """Rule 1: none of ProspectID, EmailAddress, Phone → a new lead, even if others match."""
    _lead(store, FirstName="Ann", EmailAddress="a@x.io")
    result = capture(store, fields(FirstName="Ann"), None)
    assert result["IsCreated"] is True
    assert result["RelatedId"] != "id-1"
    assert len(store.leads) == 2


def test_match_order_is_prospect_id_then_email_then_phone(store: LeadStore) -> None:
    """Rule 2: ProspectID beats EmailAddress, EmailAddress beats Phone."""
    by_id = _lead(store, FirstName="ById")
    by_email = _lead(store, EmailAddress="e@x.io")
    by_phone = _lead(store, Phone="555")
    both = fields(ProspectID=by_id, Phone="555")
    assert match(store, both) is store.leads[by_id]
    assert match(store, fields(EmailAddress="e@x.io", Phone="555")) is store.leads[by_email]
    assert match(store, fields(Phone="555")) is store.leads[by_phone]


def test_prospect_id_of_an_anonymous_visitor_creates_a_lead_with_that_id(
    store: LeadStore,
) -> None:
    """Rule 3: a ProspectID that is a tracked visitor becomes the new lead's id."""
    store.visitors.add("visitor-7")
    result = capture(store, fields(ProspectID="visitor-7", FirstName="V"), None)
    assert (result["RelatedId"], result["IsCreated"]) == ("visitor-7", True)
    assert store.leads["visitor-7"].fields == {"FirstName": "V"}
    assert "visitor-7" not in store.visitors


def test_prospect_id_match_with_another_email_creates_a_new_lead(store: LeadStore) -> None:
    """Rule 4: ProspectID matches but the EmailAddress passed differs → a new lead."""
    old = _lead(store, EmailAddress="old@x.io")
    result = capture(store, fields(ProspectID=old, EmailAddress="new@x.io"), None)
    assert result["IsCreated"] is True
    assert result["RelatedId"] != old
    assert store.leads[old].fields == {"EmailAddress": "old@x.io"}


def test_prospect_id_match_without_email_updates_that_lead(store: LeadStore) -> None:
    """Rule 5: ProspectID matches and no EmailAddress is passed → that lead is updated."""
    lead = _lead(store, EmailAddress="a@x.io")
    result = capture(store, fields(ProspectID=lead, mx_City="Pune"), None)
    assert (result["RelatedId"], result["IsCreated"]) == (lead, False)
    assert store.leads[lead].fields == {"EmailAddress": "a@x.io", "mx_City": "Pune"}


def test_prospect_id_and_email_both_matching_update_the_lead(store: LeadStore) -> None:
    """Rule 6: ProspectID and EmailAddress both match (email in any case) → update."""
    lead = _lead(store, EmailAddress="a@x.io")
    result = capture(store, fields(ProspectID=lead, EmailAddress="A@X.io", LastName="L"), None)
    assert (result["RelatedId"], result["IsCreated"]) == (lead, False)
    assert store.leads[lead].fields["LastName"] == "L"


def test_unmatched_prospect_id_with_matching_email_updates_the_email_lead(
    store: LeadStore,
) -> None:
    """Rule 7: ProspectID matches nothing, EmailAddress matches → that lead is updated."""
    lead = _lead(store, EmailAddress="a@x.io")
    result = capture(store, fields(ProspectID="unknown", EmailAddress="a@x.io", LastName="L"), None)
    assert (result["RelatedId"], result["IsCreated"]) == (lead, False)
    assert "ProspectID" not in store.leads[lead].fields


def test_phone_match_updates_when_no_email_matches(store: LeadStore) -> None:
    """Rule 2, last step: Phone matches → update (and the new email is written)."""
    lead = _lead(store, Phone="555")
    result = capture(store, fields(EmailAddress="n@x.io", Phone="555"), None)
    assert (result["RelatedId"], result["IsCreated"]) == (lead, False)
    assert store.leads[lead].fields == {"Phone": "555", "EmailAddress": "n@x.io"}


def test_nothing_matching_creates_a_lead(store: LeadStore) -> None:
    """Rule 8: no match by ProspectID, EmailAddress or Phone → a new lead."""
    _lead(store, EmailAddress="a@x.io", Phone="1")
    result = capture(store, fields(ProspectID="p", EmailAddress="b@x.io", Phone="2"), None)
    assert result["IsCreated"] is True
    assert store.leads[str(result["RelatedId"])].fields == {"EmailAddress": "b@x.io", "Phone": "2"}


def test_repeated_capture_keeps_the_first_source(store: LeadStore) -> None:
    """Rule 9: capturing the same lead again does not change its Source once set."""
    first = capture(store, fields(EmailAddress="a@x.io", Source="Web"), None)
    capture(store, fields(EmailAddress="a@x.io", Source="Chat", mx_City="Pune"), None)
    assert store.leads[str(first["RelatedId"])].fields == {
        "EmailAddress": "a@x.io",
        "Source": "Web",
        "mx_City": "Pune",
    }


def test_search_by_takes_priority(store: LeadStore) -> None:
    """Rule 10: with SearchBy=Phone the lead is found by Phone only, even if the email matches
    another lead (and even if ProspectID is passed, as long as not all three are)."""
    _lead(store, EmailAddress="a@x.io")
    by_phone = _lead(store, Phone="555")
    assert (
        match(store, fields(EmailAddress="a@x.io", Phone="555", SearchBy="Phone"))
        is (store.leads[by_phone])
    )
    assert (
        match(store, fields(ProspectID="id-1", Phone="555", SearchBy="Phone"))
        is (store.leads[by_phone])
    )


def test_search_by_without_a_match_creates(store: LeadStore) -> None:
    """Rule 10: SearchBy=EmailAddress with an unknown email → create, although Phone matches."""
    _lead(store, Phone="555")
    entries = fields(EmailAddress="n@x.io", FirstName="N", SearchBy="EmailAddress")
    assert match(store, (*entries, LeadField("Phone", "555"))) is None


def test_search_by_is_ignored_when_prospect_id_email_and_phone_are_all_passed(
    store: LeadStore,
) -> None:
    """Rule 11: ProspectID, EmailAddress, Phone and SearchBy all passed → SearchBy ignored."""
    by_id = _lead(store, EmailAddress="a@x.io")
    _lead(store, Phone="555")
    entries = fields(ProspectID=by_id, EmailAddress="a@x.io", Phone="555", SearchBy="Phone")
    assert match(store, entries) is store.leads[by_id]


def test_search_by_is_not_stored(store: LeadStore) -> None:
    """SearchBy (and ProspectID) are instructions, not lead fields."""
    result = capture(store, fields(EmailAddress="a@x.io", SearchBy="EmailAddress"), None)
    assert store.leads[str(result["RelatedId"])].fields == {"EmailAddress": "a@x.io"}


def test_search_by_a_field_that_is_not_unique_is_an_mx_error(store: LeadStore) -> None:
    """SearchBy must name a unique field (or ProspectID)."""
    with pytest.raises(MXError) as caught:
        capture(store, fields(mx_City="Pune", SearchBy="mx_City"), None)
    assert caught.value.type == "MXInvalidInputException"


def test_every_capture_posts_a_lead_capture_activity(store: LeadStore) -> None:
    """Creates and updates each post an event-23 activity on the lead; Id is that activity."""
    created = capture(store, fields(EmailAddress="a@x.io"), None)
    updated = capture(store, fields(EmailAddress="a@x.io", FirstName="A"), None)
    lead = created["RelatedId"]
    assert [(a.id, a.lead_id, a.event) for a in store.activities] == [
        (created["Id"], lead, LEAD_CAPTURE_EVENT),
        (updated["Id"], lead, LEAD_CAPTURE_EVENT),
    ]


def test_duplicate_on_capture_posts_the_activity_on_the_existing_lead(store: LeadStore) -> None:
    """A capture failing with MXDuplicateEntryException still posts Lead Capture, on the lead
    it collided with, and changes nothing."""
    owner = _lead(store, Phone="555")
    target = _lead(store, EmailAddress="a@x.io")
    with pytest.raises(DuplicateEntryError) as caught:
        capture(store, fields(EmailAddress="a@x.io", Phone="555"), None)
    assert caught.value.existing_lead_id == owner
    assert [(a.lead_id, a.event) for a in store.activities] == [(owner, LEAD_CAPTURE_EVENT)]
    assert store.leads[target].fields == {"EmailAddress": "a@x.io"}


def test_do_not_update_leaves_the_matched_lead_unchanged(store: LeadStore) -> None:
    """LeadUpdateBehavior=DoNotUpdate: a match is not changed (the activity is still posted)."""
    lead = _lead(store, EmailAddress="a@x.io", FirstName="A")
    result = capture(
        store, fields(EmailAddress="a@x.io", FirstName="B"), UpdateBehavior.DO_NOT_UPDATE
    )
    assert (result["RelatedId"], result["IsCreated"]) == (lead, False)
    assert store.leads[lead].fields == {"EmailAddress": "a@x.io", "FirstName": "A"}
    assert len(store.activities) == 1


def test_do_not_update_still_creates_when_nothing_matches(store: LeadStore) -> None:
    """DoNotUpdate only concerns the update branch."""
    result = capture(store, fields(EmailAddress="a@x.io"), UpdateBehavior.DO_NOT_UPDATE)
    assert result["IsCreated"] is True


def test_update_only_empty_fields_writes_blank_or_absent_fields(store: LeadStore) -> None:
    """UpdateOnlyEmptyFields: fields (and CFS inner fields) already set are kept."""
    lead = _lead(store, EmailAddress="a@x.io", FirstName="A", LastName="")
    store.update(lead, (LeadField("mx_KYC", "", (("Status", "Done"),)),))
    entries = (
        *fields(EmailAddress="a@x.io", FirstName="B", LastName="L", mx_City="Pune"),
        LeadField("mx_KYC", "", (("Status", "Pending"), ("mx_Doc", "d.png"))),
    )
    capture(store, entries, UpdateBehavior.UPDATE_ONLY_EMPTY_FIELDS)
    assert store.leads[lead].fields == {
        "EmailAddress": "a@x.io",
        "FirstName": "A",
        "LastName": "L",
        "mx_City": "Pune",
    }
    assert store.leads[lead].sets == {"mx_KYC": {"Status": "Done", "mx_Doc": "d.png"}}


def test_do_not_update_unique_fields_writes_everything_else(store: LeadStore) -> None:
    """DoNotUpdateUniqueFields: unique fields keep their value, others are written."""
    lead = _lead(store, EmailAddress="a@x.io", Phone="1")
    entries = fields(ProspectID=lead, Phone="2", FirstName="F")
    capture(store, entries, UpdateBehavior.DO_NOT_UPDATE_UNIQUE_FIELDS)
    assert store.leads[lead].fields == {"EmailAddress": "a@x.io", "Phone": "1", "FirstName": "F"}


def test_no_behavior_is_a_normal_update(store: LeadStore) -> None:
    """Without LeadUpdateBehavior every passed field is written."""
    lead = _lead(store, EmailAddress="a@x.io", FirstName="A", Phone="1")
    capture(store, fields(EmailAddress="a@x.io", FirstName="B", Phone="2"), None)
    assert store.leads[lead].fields == {"EmailAddress": "a@x.io", "FirstName": "B", "Phone": "2"}
