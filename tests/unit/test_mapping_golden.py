"""Golden tests: for each LeadSquared seed page, a mapping and a row that render exactly the
page's example body (copied from /work/shared/seeds), with the right query parameters."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import yaml

from connector.records import Change, Payload, SourceRecord
from connector.transform.mapping import MappingSpec, compile_mapping

if TYPE_CHECKING:
    from connector.records import Operation

RECORD = SourceRecord("crm.leads", 0, 42, b"k", b"v", timestamp_ms=1_700_000_000_000)


def render(operation: Operation, mapping: str, row: dict[str, Any]) -> Payload:
    spec = MappingSpec.model_validate(yaml.safe_load(mapping))
    return compile_mapping(operation, spec).render(Change("u", row), RECORD)


PERSON_MAPPING = """
lead:
  FirstName: first_name
  LastName: last_name
  EmailAddress: email
  Phone: phone
  ProspectID: lsq_id
search_by: Phone
"""

CAPTURE_ASYNC_SEED = """[
{"Attribute":"FirstName", "Value":"Bret"},
{"Attribute":"LastName", "Value":"Lee"},
{"Attribute":"EmailAddress", "Value":"bret.lee@australia.com"},
{"Attribute":"Phone", "Value":"8888888888"},
{"Attribute":"ProspectID", "Value":"xxxxxxxx-d168-xxxx-9f8b-xxxx97xxxxxx"},
{"Attribute":"SearchBy", "Value":"Phone"}
]"""


def test_capture_async_seed_body() -> None:
    """capture-leads-async.txt: attributes in config order, SearchBy last, no query params."""
    row = {
        "first_name": "Bret",
        "last_name": "Lee",
        "email": "bret.lee@australia.com",
        "phone": 8888888888,
        "lsq_id": "xxxxxxxx-d168-xxxx-9f8b-xxxx97xxxxxx",
        "ignored_column": "not mapped",
    }
    payload = render("capture", PERSON_MAPPING, row)
    assert payload == Payload("capture", (), json.loads(CAPTURE_ASYNC_SEED))


CAPTURE_SYNC_SEED = """[
   {"Attribute":"FirstName", "Value":"Wim"},
   {"Attribute":"LastName", "Value":"Wenders"},
   {"Attribute":"EmailAddress", "Value":"wim.wenders@example.com"},
   {"Attribute":"Phone", "Value":"7777777777"},
   {"Attribute":"ProspectID", "Value":"45b5fded-e696-45a6-9fbb-c6af6178229e"},
   {"Attribute":"SearchBy", "Value":"Phone"},
   {"Attribute":"RelatedCompanyId", "Value":"82a19544-ef4f-4cef-a09c-d68b939742f9"}
]"""


def test_capture_sync_seed_body_with_search_by_last() -> None:
    """capture-leads.txt: the seed lists SearchBy before RelatedCompanyId; the mapping always puts
    SearchBy last (as the async seed does), so the body is the seed's entries in that order."""
    spec = yaml.safe_load(PERSON_MAPPING)
    spec["lead"]["RelatedCompanyId"] = "company_id"
    spec["lead_update_behavior"] = "DoNotUpdate"
    row = {
        "first_name": "Wim",
        "last_name": "Wenders",
        "email": "wim.wenders@example.com",
        "phone": "7777777777",
        "lsq_id": "45b5fded-e696-45a6-9fbb-c6af6178229e",
        "company_id": "82a19544-ef4f-4cef-a09c-d68b939742f9",
    }
    mapper = compile_mapping("capture", MappingSpec.model_validate(spec))
    payload = mapper.render(Change("c", row), RECORD)
    seed = json.loads(CAPTURE_SYNC_SEED)
    search_by = seed.pop(5)
    assert payload.body == [*seed, search_by]
    assert payload.params == (("LeadUpdateBehavior", "DoNotUpdate"),)


CREATE_SEED = """[
{"Attribute":"EmailAddress", "Value":"john.smith@example.com"},
{"Attribute":"FirstName", "Value":"John"},
{"Attribute":"LastName", "Value":"Smith"},
{"Attribute":"Phone", "Value":"8888888888"},
{"Attribute":"mx_City", "Value":"Bangalore"},
{"Attribute":"mx_KYC", "Value":"",
"Fields":[
{"Attribute":"Status", "Value":"Pending"},
{"Attribute":"mx_CustomObject_1", "Value":"XYZ12345.png"},
{"Attribute":"mx_CustomObject_2", "Value":"864563"}
]}
]"""


def test_create_seed_body_with_custom_field_set() -> None:
    """create-lead.txt: plain attributes, then a custom field set with Value "" and Fields."""
    mapping = """
    lead:
      EmailAddress: email
      FirstName: {path: name.first}
      LastName: {path: name.last, required: true}
      Phone: {template: "{phone}"}
      mx_City: {const: Bangalore}
      mx_KYC:
        fields:
          Status: kyc.status
          mx_CustomObject_1: kyc.document
          mx_CustomObject_2: kyc.number
    """
    row = {
        "email": "john.smith@example.com",
        "name": {"first": "John", "last": "Smith"},
        "phone": 8888888888,
        "kyc": {"status": "Pending", "document": "XYZ12345.png", "number": Decimal(864563)},
    }
    assert render("create", mapping, row) == Payload("create", (), json.loads(CREATE_SEED))


UPDATE_SEED = """[
   {"Attribute":"Phone", "Value":"9999999999"},
   {"Attribute":"mx_City", "Value":"London"}
]"""


def test_update_seed_body_and_params() -> None:
    """update-lead-async.txt: the body, and leadId + postUpdatedLead as query parameters."""
    mapping = """
    post_updated_lead: true
    lead_id: lsq_prospect_id
    lead:
      Phone: phone
      mx_City: city
    """
    row = {"lsq_prospect_id": "0b3c1a2e-lead", "phone": "9999999999", "city": "London"}
    payload = render("update", mapping, row)
    assert payload.body == json.loads(UPDATE_SEED)
    assert payload.params == (("leadId", "0b3c1a2e-lead"), ("postUpdatedLead", "true"))


LEAD_AND_ACTIVITY_SEED = """{
    "LeadDetails": [
        {"Attribute": "EmailAddress", "Value": "email@example.com"},
        {"Attribute": "mx_City", "Value": "Bangalore"},
        {"Attribute": "mx_KYC", "Value": "", "Fields": [
                {"Attribute": "Status", "Value": "Pending"},
                {"Attribute": "mx_CustomObject_1", "Value": "XYZ12345.png"},
                {"Attribute": "mx_CustomObject_2", "Value": "864563"}
        ]},
        {"Attribute": "SearchBy", "Value": "EmailAddress"}
    ],
    "Activity": {
        "ActivityEvent": 105,
        "ActivityNote": "Note for the activity",
        "ActivityDateTime": "2016-07-07 10:55:00",
        "Fields": [
            {"SchemaName": "mx_Custom_1", "Value": "123"},
            {"SchemaName": "mx_Custom_2", "Value": "2016-07-07 10:55:00"},
            {"Attribute": "mx_KYC", "Value": "", "Fields": [
                    {"Attribute": "Status", "Value": "Pending"},
                    {"Attribute": "mx_CustomObject_2", "Value": "XYZ12345.png"},
                    {"Attribute": "mx_CustomObject_4", "Value": "864563"}
            ]}
        ]
    }
}"""


def test_lead_and_activity_seed_body() -> None:
    """create-lead-and-activity-async.txt: LeadDetails with SearchBy last (EmailAddress by
    default), the Activity object, and activity CFS entries keyed by Attribute. (The seed's
    ActivityDateTime is the placeholder "yyyy-MM-dd HH:mm:ss"; a real date-time stands in.)"""
    mapping = """
    lead:
      EmailAddress: email
      mx_City: city
      mx_KYC:
        fields:
          Status: kyc.status
          mx_CustomObject_1: kyc.document
          mx_CustomObject_2: kyc.number
    activity:
      event: 105
      note: {template: "Note for the {what}"}
      datetime: ordered_at
      fields:
        mx_Custom_1: amount
        mx_Custom_2: ordered_at
        mx_KYC:
          fields:
            Status: kyc.status
            mx_CustomObject_2: kyc.document
            mx_CustomObject_4: kyc.number
    """
    row = {
        "email": "email@example.com",
        "city": "Bangalore",
        "kyc": {"status": "Pending", "document": "XYZ12345.png", "number": 864563},
        "what": "activity",
        "amount": 123,
        "ordered_at": datetime(2016, 7, 7, 10, 55, tzinfo=UTC),
    }
    payload = render("lead_and_activity", mapping, row)
    assert payload == Payload("lead_and_activity", (), json.loads(LEAD_AND_ACTIVITY_SEED))
