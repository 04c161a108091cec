"""The lead store: Lead.Create, Lead.Update, unique fields, activities and CreateCustom."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from lsq_sim.config import StoreRules
from lsq_sim.records import (
    ActivityInput,
    DuplicateEntryError,
    LeadField,
    MXError,
)
from tests.unit.sim.builders import NOW, fields, make_store

if TYPE_CHECKING:
    from lsq_sim.store import LeadStore


def test_create_stores_fields_and_custom_field_sets(store: LeadStore) -> None:
    """Lead.Create returns the new id; plain fields and CFS (nested) are stored."""
    kyc = LeadField("mx_KYC", "", (("Status", "Pending"), ("mx_CustomObject_1", "a.png")))
    result = store.create((*fields(EmailAddress="a@x.io", mx_City="Pune"), kyc))
    lead = store.leads[str(result["Id"])]
    assert result == {"Id": "id-1"}
    assert lead.fields == {"EmailAddress": "a@x.io", "mx_City": "Pune"}
    assert lead.sets == {"mx_KYC": {"Status": "Pending", "mx_CustomObject_1": "a.png"}}


@pytest.mark.parametrize("name", ["FirstName", "LastName", "EmailAddress", "Phone"])
def test_create_accepts_any_one_identifying_field(store: LeadStore, name: str) -> None:
    """One of FirstName, LastName, EmailAddress or Phone is enough to create a lead."""
    result = store.create((LeadField(name, "x"),))
    assert store.leads[str(result["Id"])].fields == {name: "x"}


def test_create_without_identifying_field_is_an_mx_error(store: LeadStore) -> None:
    """Lead.Create with none of the four identifying fields fails (blank values do not count)."""
    with pytest.raises(MXError) as caught:
        store.create(fields(mx_City="Pune", EmailAddress=" "))
    assert caught.value.type == "MXMandatoryAttributeMissingException"
    assert store.leads == {}


def test_create_with_taken_email_is_a_duplicate_ignoring_case(store: LeadStore) -> None:
    """EmailAddress is unique and compared case-insensitively."""
    store.create(fields(EmailAddress="Ann@X.io"))
    with pytest.raises(DuplicateEntryError) as caught:
        store.create(fields(EmailAddress="ann@x.io"))
    assert caught.value.type == "MXDuplicateEntryException"
    assert caught.value.message == "A Lead with same Email already exists."
    assert caught.value.existing_lead_id == "id-1"
    assert len(store.leads) == 1


def test_create_with_taken_phone_is_a_duplicate(store: LeadStore) -> None:
    """Phone is unique by default."""
    store.create(fields(Phone="+91-98"))
    with pytest.raises(DuplicateEntryError) as caught:
        store.create(fields(Phone="+91-98", FirstName="B"))
    assert caught.value.message == "A Lead with same Phone Number already exists."


def test_configured_unique_field_is_enforced_with_a_generic_message() -> None:
    """A field made unique by configuration collides too; Phone no longer does."""
    store = make_store(StoreRules(unique_fields=("EmailAddress", "mx_PAN")))
    store.create(fields(FirstName="A", mx_PAN="P1", Phone="1"))
    store.create(fields(FirstName="B", Phone="1"))
    with pytest.raises(DuplicateEntryError) as caught:
        store.create(fields(FirstName="C", mx_PAN="P1"))
    assert caught.value.message == "A Lead with same mx_PAN already exists."


def test_blank_unique_values_never_collide(store: LeadStore) -> None:
    """Two leads may both have an empty EmailAddress."""
    store.create(fields(FirstName="A", EmailAddress=""))
    store.create(fields(FirstName="B", EmailAddress=""))
    assert len(store.leads) == 2


def test_update_unknown_lead_is_invalid_entity(store: LeadStore) -> None:
    """Lead.Update on an id that does not exist: MXInvalidEntityException."""
    with pytest.raises(MXError) as caught:
        store.update("nope", fields(FirstName="A"))
    assert (caught.value.type, caught.value.message) == (
        "MXInvalidEntityException",
        "Lead does not exist in the system",
    )


def test_update_changes_only_the_fields_passed(store: LeadStore) -> None:
    """Lead.Update keeps fields it was not given and answers AffectedRows 1."""
    store.create(fields(FirstName="A", EmailAddress="a@x.io", mx_City="Pune"))
    result = store.update("id-1", fields(mx_City="Goa", Phone="7"))
    assert result == {"AffectedRows": 1}
    assert store.leads["id-1"].fields == {
        "FirstName": "A",
        "EmailAddress": "a@x.io",
        "mx_City": "Goa",
        "Phone": "7",
    }


def test_update_into_another_leads_email_is_a_duplicate(store: LeadStore) -> None:
    """Uniqueness holds on update; the lead is left unchanged."""
    store.create(fields(EmailAddress="a@x.io"))
    store.create(fields(EmailAddress="b@x.io", FirstName="B"))
    with pytest.raises(DuplicateEntryError):
        store.update("id-2", fields(FirstName="C", EmailAddress="A@x.io"))
    assert store.leads["id-2"].fields == {"EmailAddress": "b@x.io", "FirstName": "B"}


def test_update_to_own_email_is_not_a_duplicate(store: LeadStore) -> None:
    """Re-sending a lead's own unique value (any case) is fine."""
    store.create(fields(EmailAddress="a@x.io"))
    store.update("id-1", fields(EmailAddress="A@X.io"))
    assert store.leads["id-1"].fields["EmailAddress"] == "A@X.io"


def test_changing_email_frees_the_old_value(store: LeadStore) -> None:
    """After a lead's email changes, another lead may take the old one."""
    store.create(fields(EmailAddress="a@x.io"))
    store.update("id-1", fields(EmailAddress="new@x.io"))
    store.create(fields(EmailAddress="a@x.io"))
    assert store.find("EmailAddress", "a@x.io") is store.leads["id-2"]


def test_unknown_attribute_with_configured_list_is_an_mx_error() -> None:
    """With a list of known attributes, others fail with MXUnknownAttributeException."""
    store = make_store(StoreRules(lead_attributes=("EmailAddress", "FirstName")))
    store.create(fields(EmailAddress="a@x.io", FirstName="A"))
    with pytest.raises(MXError) as caught:
        store.create(fields(EmailAddress="b@x.io", mx_Cty="Pune"))
    assert caught.value.type == "MXUnknownAttributeException"
    assert "mx_Cty" in caught.value.message


def test_any_attribute_is_accepted_by_default(store: LeadStore) -> None:
    """Without a list of known attributes, any attribute is stored."""
    store.create(fields(EmailAddress="a@x.io", mx_Anything_At_All="1"))
    assert store.leads["id-1"].fields["mx_Anything_At_All"] == "1"


def test_activity_create_on_unknown_lead_is_invalid_entity(store: LeadStore) -> None:
    """ProspectActivity.svc/Create needs an existing RelatedProspectId."""
    with pytest.raises(MXError) as caught:
        store.create_activity(ActivityInput(event=201, related_lead_id="nope"))
    assert caught.value.type == "MXInvalidEntityException"
    assert store.activities == []


def test_activity_create_stores_fields_and_defaults_the_time(store: LeadStore) -> None:
    """The activity keeps event, note, SchemaName fields and CFS; no date-time means now."""
    store.create(fields(EmailAddress="a@x.io"))
    activity = ActivityInput(
        event=201,
        note="hello",
        fields=(LeadField("mx_Custom_1", "9"), LeadField("mx_KYC", "", (("Status", "Ok"),))),
        related_lead_id="id-1",
    )
    result = store.create_activity(activity)
    stored = store.activities[0]
    assert result == {"Id": stored.id}
    assert (stored.lead_id, stored.event, stored.note, stored.when) == ("id-1", 201, "hello", NOW)
    assert stored.fields == {"mx_Custom_1": "9"}
    assert stored.sets == {"mx_KYC": {"Status": "Ok"}}


@pytest.mark.parametrize("event", [0, -5])
def test_non_positive_event_is_invalid(store: LeadStore, event: int) -> None:
    """Event codes are positive integers."""
    store.create(fields(EmailAddress="a@x.io"))
    with pytest.raises(MXError) as caught:
        store.create_activity(ActivityInput(event=event, related_lead_id="id-1"))
    assert (caught.value.type, caught.value.message) == (
        "MXInvalidActivityException",
        "Event Code is invalid or empty",
    )


def test_configured_event_list_rejects_other_codes() -> None:
    """With --activity-events, only those codes are accepted."""
    store = make_store(StoreRules(activity_events=(105, 201)))
    store.create(fields(EmailAddress="a@x.io"))
    store.create_activity(ActivityInput(event=201, related_lead_id="id-1"))
    with pytest.raises(MXError) as caught:
        store.create_activity(ActivityInput(event=202, related_lead_id="id-1"))
    assert caught.value.type == "MXInvalidActivityException"
    assert [a.event for a in store.activities] == [201]


def test_create_custom_updates_the_lead_found_by_email_by_default(store: LeadStore) -> None:
    """Without SearchBy, CreateCustom looks the lead up by EmailAddress and updates it."""
    store.create(fields(EmailAddress="a@x.io", mx_City="Pune"))
    result = store.create_custom(
        fields(EmailAddress="A@x.io", mx_City="Goa"), ActivityInput(event=105)
    )
    assert result == {"Id": store.activities[0].id, "RelatedId": "id-1"}
    assert store.leads["id-1"].fields["mx_City"] == "Goa"
    assert len(store.leads) == 1


def test_create_custom_searches_by_the_search_by_field(store: LeadStore) -> None:
    """SearchBy=Phone finds the lead by Phone; SearchBy itself is not stored."""
    store.create(fields(Phone="5", FirstName="A"))
    result = store.create_custom(
        fields(Phone="5", EmailAddress="new@x.io", SearchBy="Phone"), ActivityInput(event=105)
    )
    assert result["RelatedId"] == "id-1"
    assert store.leads["id-1"].fields == {
        "Phone": "5",
        "FirstName": "A",
        "EmailAddress": "new@x.io",
    }


def test_create_custom_creates_the_lead_when_none_matches(store: LeadStore) -> None:
    """No lead with that EmailAddress: one is created and the activity posted on it."""
    result = store.create_custom(fields(EmailAddress="a@x.io"), ActivityInput(event=105, note="n"))
    lead_id = str(result["RelatedId"])
    assert store.leads[lead_id].fields == {"EmailAddress": "a@x.io"}
    assert [(a.lead_id, a.event, a.note) for a in store.activities] == [(lead_id, 105, "n")]


def test_create_custom_with_invalid_event_writes_nothing() -> None:
    """An invalid event code fails before the lead is created or updated."""
    store = make_store(StoreRules(activity_events=(105,)))
    with pytest.raises(MXError):
        store.create_custom(fields(EmailAddress="a@x.io"), ActivityInput(event=999))
    assert (store.leads, store.activities) == ({}, [])


def test_clear_forgets_leads_activities_visitors_and_unique_values(store: LeadStore) -> None:
    """After clear(), a former email can be used again."""
    store.create(fields(EmailAddress="a@x.io"))
    store.visitors.add("v-1")
    store.clear()
    assert (store.leads, store.activities, store.visitors) == ({}, [], set())
    store.create(fields(EmailAddress="a@x.io"))
    assert len(store.leads) == 1
