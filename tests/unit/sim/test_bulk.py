"""The bulk endpoints' pure parts: whole-call validation (bodies.py) and per-row application to
the store (bulk.py)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from lsq_sim.bodies import BodyError, parse_bulk_activities, parse_bulk_leads
from lsq_sim.bulk import add_activities, create_or_update
from lsq_sim.config import StoreRules
from lsq_sim.records import ActivityInput, BulkActivity, LeadField
from tests.unit.sim.builders import NOW, fields, make_store

if TYPE_CHECKING:
    from lsq_sim.store import LeadStore

JSON = "application/json"


def _row(**values: str) -> list[dict[str, str]]:
    return [{"Attribute": name, "Value": value} for name, value in values.items()]


def _leads_error(body: object, ctype: str = JSON) -> str:
    with pytest.raises(BodyError) as caught:
        parse_bulk_leads(ctype, json.dumps(body).encode())
    return caught.value.message


def _activities_error(body: object, query: dict[str, str] | None = None) -> str:
    query = {"searchby": "EmailAddress"} if query is None else query
    with pytest.raises(BodyError) as caught:
        parse_bulk_activities(JSON, json.dumps(body).encode(), query)
    return caught.value.message


def _item(value: str, event: int = 201, when: str | None = None) -> BulkActivity:
    return BulkActivity(value, ActivityInput(event=event, when=when))


# -- whole-call validation -------------------------------------------------------------------


def test_bulk_lead_rows_parse_like_capture_bodies() -> None:
    """Each row becomes a tuple of LeadField, custom field sets and SearchBy included."""
    cfs = {"Attribute": "mx_KYC", "Value": "", "Fields": [{"Attribute": "Status", "Value": "P"}]}
    body = [_row(EmailAddress="a@x.io", SearchBy="EmailAddress"), [cfs]]
    assert parse_bulk_leads(JSON, json.dumps(body).encode()) == (
        (LeadField("EmailAddress", "a@x.io"), LeadField("SearchBy", "EmailAddress")),
        (LeadField("mx_KYC", "", (("Status", "P"),)),),
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"rows": []}, "body: expected an array"),
        ([], "no leads: send 1 to 25 per call"),
        ([_row(EmailAddress="a@x.io")] * 26, "at most 25 leads per call, got 26"),
        ([_row(Phone="1"), {"Attribute": "Phone", "Value": "1"}], "body[1]: expected an array"),
        ([_row(Phone="1"), [{"Attribute": "Phone"}]], "body[1][0].Value: required"),
        ([[{"Attribute": "Phone", "Value": 1}]], "body[0][0].Value: expected a string"),
    ],
)
def test_bad_bulk_lead_bodies_are_body_errors(body: object, message: str) -> None:
    """Not an array, 0 or 26 rows, or a row that is not an Attribute/Value list."""
    assert _leads_error(body) == message


def test_bulk_bodies_must_be_json() -> None:
    """The content type and JSON checks of the single endpoints apply."""
    assert _leads_error([_row(Phone="1")], ctype="text/plain").startswith("Content-Type")
    with pytest.raises(BodyError, match="not valid JSON"):
        parse_bulk_activities(JSON, b"[", {"searchby": "Phone"})


def test_bulk_activity_items_parse_with_the_date_left_for_the_row() -> None:
    """searchBy and each item (CreateCustom's Activity plus SearchByValue); a bad date is not a
    whole-call error."""
    body: list[dict[str, Any]] = [
        {
            "SearchByValue": "a@x.io",
            "ActivityEvent": 201,
            "ActivityNote": "n",
            "ActivityDateTime": "2026-01-02 03:04:05",
            "Fields": [{"SchemaName": "mx_Custom_1", "Value": "v"}],
        },
        {"SearchByValue": "b@x.io", "ActivityEvent": 202, "ActivityDateTime": "yesterday"},
    ]
    search_by, items = parse_bulk_activities(
        JSON, json.dumps(body).encode(), {"searchby": "EmailAddress"}
    )
    assert search_by == "EmailAddress"
    assert items == (
        BulkActivity(
            "a@x.io",
            ActivityInput(201, "n", "2026-01-02 03:04:05", (LeadField("mx_Custom_1", "v"),)),
        ),
        BulkActivity("b@x.io", ActivityInput(202, when="yesterday")),
    )


ITEM = {"SearchByValue": "a", "ActivityEvent": 1}


@pytest.mark.parametrize(
    ("body", "query", "message"),
    [
        ([ITEM], {}, "the searchBy query parameter is required"),
        ([], None, "no activities: send 1 to 25 per call"),
        ([ITEM] * 26, None, "at most 25 activities per call, got 26"),
        ([{"ActivityEvent": 1}], None, "body[0].SearchByValue: required"),
        ([{**ITEM, "ActivityEvent": "1"}], None, "body[0].ActivityEvent: expected an integer"),
        ([{**ITEM, "Fields": [{"Value": "v"}]}], None,
         "body[0].Fields[0]: expected SchemaName, or Attribute with Fields"),
    ],
)  # fmt: skip
def test_bad_bulk_activity_calls_are_body_errors(
    body: object, query: dict[str, str] | None, message: str
) -> None:
    """A missing searchBy, 0 or 26 items, or an item of the wrong shape."""
    assert _activities_error(body, query) == message


# -- per-row application ---------------------------------------------------------------------


def test_rows_apply_in_order_with_capture_matching(store: LeadStore) -> None:
    """Row 2 creates, row 3 updates the lead of row 1 (EmailAddress, case-insensitive), and no
    "Lead Capture" activity is posted."""
    rows = [
        fields(EmailAddress="a@x.io"),
        fields(Phone="2"),
        fields(EmailAddress="A@x.io", Phone="1"),
    ]
    created = {"LeadCreated": True, "LeadUpdated": False, "AffectedRows": 1}
    assert create_or_update(store, rows) == [
        {"RowNumber": 1, "LeadId": "id-1", **created},
        {"RowNumber": 2, "LeadId": "id-2", **created},
        {"RowNumber": 3, "LeadId": "id-1", "LeadCreated": False, "LeadUpdated": True,
         "AffectedRows": 1},
    ]  # fmt: skip
    assert store.leads["id-1"].fields == {"EmailAddress": "A@x.io", "Phone": "1"}
    assert store.activities == []


def test_a_failed_row_changes_nothing(store: LeadStore) -> None:
    """A duplicate (SearchBy Phone finds id-2, its new email is id-1's) and a SearchBy on a
    field that is not unique fail alone, with no activity and no change."""
    store.create(fields(EmailAddress="a@x.io"))
    store.create(fields(Phone="2"))
    rows = [
        (*fields(EmailAddress="a@x.io", Phone="2"), LeadField("SearchBy", "Phone")),
        (*fields(FirstName="F"), LeadField("SearchBy", "FirstName")),
    ]
    failed = {"LeadId": None, "LeadCreated": False, "LeadUpdated": False, "AffectedRows": 0}
    assert create_or_update(store, rows) == [
        {"RowNumber": 1, **failed, "ExceptionType": "MXDuplicateEntryException",
         "ExceptionMessage": "A Lead with same Email already exists."},
        {"RowNumber": 2, **failed, "ExceptionType": "MXInvalidInputException",
         "ExceptionMessage": "SearchBy 'FirstName' is not a unique field"},
    ]  # fmt: skip
    assert {i: lead.fields for i, lead in store.leads.items()} == {
        "id-1": {"EmailAddress": "a@x.io"},
        "id-2": {"Phone": "2"},
    }
    assert store.activities == []


def test_unknown_attribute_fails_its_row_only() -> None:
    """With a configured attribute list, a row with another attribute is MXUnknownAttribute."""
    store = make_store(StoreRules(lead_attributes=("EmailAddress",)))
    rows = [fields(EmailAddress="a@x.io", mx_X="1"), fields(EmailAddress="b@x.io")]
    assert create_or_update(store, rows) == [
        {"RowNumber": 1, "LeadId": None, "LeadCreated": False, "LeadUpdated": False,
         "AffectedRows": 0, "ExceptionType": "MXUnknownAttributeException",
         "ExceptionMessage": "Attribute 'mx_X' does not exist"},
        {"RowNumber": 2, "LeadId": "id-1", "LeadCreated": True, "LeadUpdated": False,
         "AffectedRows": 1},
    ]  # fmt: skip
    assert [lead.fields["EmailAddress"] for lead in store.leads.values()] == ["b@x.io"]


def test_bulk_activities_post_on_found_leads_and_fail_rows_alone() -> None:
    """Found lead: posted; unknown lead: MXInvalidEntity and not created; bad event: MXInvalid-
    Activity; bad date: MXInvalidInput."""
    store = make_store(StoreRules(activity_events=(201,)))
    lead_id = store.create(fields(EmailAddress="a@x.io"))["Id"]
    items = [
        _item("A@X.io"),
        _item("nobody@x.io"),
        _item(""),
        _item("a@x.io", event=202),
        _item("a@x.io", when="2026-02-30 00:00:00"),
    ]
    failed = {"ActivityCreated": False, "ProspectActivityId": None}
    no_lead = {**failed, "ExceptionType": "MXInvalidEntityException",
               "ExceptionMessage": "Lead does not exist in the system"}  # fmt: skip
    assert add_activities(store, "EmailAddress", items) == {
        "Response": [
            {"RowNumber": 1, "ActivityCreated": True, "ProspectActivityId": "id-2"},
            {"RowNumber": 2, **no_lead},
            {"RowNumber": 3, **no_lead},
            {"RowNumber": 4, **failed, "ExceptionType": "MXInvalidActivityException",
             "ExceptionMessage": "Event Code is invalid or empty"},
            {"RowNumber": 5, **failed, "ExceptionType": "MXInvalidInputException",
             "ExceptionMessage": "ActivityDateTime: expected 'YYYY-MM-DD HH:MM:SS'"},
        ]
    }  # fmt: skip
    assert list(store.leads) == [lead_id]
    (activity,) = store.activities
    assert (activity.id, activity.lead_id, activity.event, activity.when) == (
        "id-2",
        "id-1",
        201,
        NOW,
    )


def test_search_by_must_be_a_unique_lead_field() -> None:
    """Phone and configured unique fields work; other fields and ProspectID are BodyErrors and
    nothing is applied."""
    store = make_store(StoreRules(unique_fields=("EmailAddress", "mx_PAN")))
    store.create(fields(Phone="1", mx_PAN="P1"))
    for number, (search_by, value) in enumerate((("Phone", "1"), ("mx_PAN", "P1")), start=2):
        posted = {"RowNumber": 1, "ActivityCreated": True, "ProspectActivityId": f"id-{number}"}
        assert add_activities(store, search_by, [_item(value)]) == {"Response": [posted]}
    for search_by in ("FirstName", "ProspectID", "emailaddress"):
        with pytest.raises(BodyError, match=f"searchBy '{search_by}' is not a unique lead field"):
            add_activities(store, search_by, [_item("1")])
    assert len(store.activities) == 2
