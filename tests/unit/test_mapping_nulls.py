"""``mapping.on_null``: a null lead value is left out (``omit``, the default: LeadSquared keeps the
field) or sent as ``""`` (``clear``: LeadSquared empties the field). Defaults, required values,
constants and activity fields are unaffected; a bad value is one clear error naming the key."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
import yaml
from pydantic import ValidationError

from connector.errors import ConfigError, MappingError
from connector.records import Change, Payload, SourceRecord
from connector.settings.load import load_settings
from connector.transform.mapping import MappingSpec, compile_mapping
from tests.unit.coalesce_fakes import fresh_store, leads, send

if TYPE_CHECKING:
    from pathlib import Path

    from connector.records import Operation

RECORD = SourceRecord("t", 0, 0, None, b"", timestamp_ms=0)
LEAD = """
lead:
  EmailAddress: email
  Phone: phone
  mx_Plan: {path: plan, default: free}
  mx_Name: {template: "{first} {last}"}
  Source: {const: CDC}
  mx_KYC: {fields: {Status: kyc_status, mx_CustomObject_1: kyc_doc}}
"""
NULLS = {"email": "a@x.io", "phone": None, "plan": None, "first": None, "last": None}


def render(mapping: str, row: dict[str, Any], operation: Operation = "capture") -> Payload:
    spec = MappingSpec.model_validate(yaml.safe_load(mapping))
    return compile_mapping(operation, spec).render(Change("u", row), RECORD)


def test_by_default_a_null_attribute_is_left_out() -> None:
    """The default (``omit``): today's payloads, nulls left out, an all-null set too."""
    assert MappingSpec.model_validate({"lead": {"Phone": "p"}}).on_null == "omit"
    body = render(f"search_by: EmailAddress\n{LEAD}", NULLS).body
    assert body == [
        {"Attribute": "EmailAddress", "Value": "a@x.io"},
        {"Attribute": "mx_Plan", "Value": "free"},
        {"Attribute": "Source", "Value": "CDC"},
        {"Attribute": "SearchBy", "Value": "EmailAddress"},
    ]


def test_clear_sends_a_null_attribute_with_an_empty_value() -> None:
    """``clear``: null paths, empty templates and null set fields become ``""``; a default still
    applies first, constants are constants; SearchBy stays last."""
    body = render(f"on_null: clear\nsearch_by: EmailAddress\n{LEAD}", NULLS).body
    assert body == [
        {"Attribute": "EmailAddress", "Value": "a@x.io"},
        {"Attribute": "Phone", "Value": ""},
        {"Attribute": "mx_Plan", "Value": "free"},
        {"Attribute": "mx_Name", "Value": ""},
        {"Attribute": "Source", "Value": "CDC"},
        {
            "Attribute": "mx_KYC",
            "Value": "",
            "Fields": [
                {"Attribute": "Status", "Value": ""},
                {"Attribute": "mx_CustomObject_1", "Value": ""},
            ],
        },
        {"Attribute": "SearchBy", "Value": "EmailAddress"},
    ]


def test_clear_empties_the_field_in_leadsquared_and_omit_keeps_it() -> None:
    """Applied to the simulator's lead store: the lead's phone is emptied only with ``clear``."""
    ends = {}
    for on_null in ("omit", "clear"):
        store = fresh_store()
        send(store, render("search_by: EmailAddress\nlead: {EmailAddress: e, Phone: p}", _row("1")))
        mapping = (
            f"on_null: {on_null}\nsearch_by: EmailAddress\nlead: {{EmailAddress: e, Phone: p}}"
        )
        send(store, render(mapping, _row(None)))
        ends[on_null] = [fields for _id, fields, _sets in leads(store)]
    assert ends["omit"] == [{"EmailAddress": "a@x.io", "Phone": "1"}]
    assert ends["clear"] == [{"EmailAddress": "a@x.io", "Phone": ""}]


def _row(phone: str | None) -> dict[str, Any]:
    return {"e": "a@x.io", "p": phone}


def test_clear_keeps_required_values_and_identifiers_required() -> None:
    """A required null still fails the record, and a null search value is still no value."""
    required = "on_null: clear\nlead: {EmailAddress: e, Phone: {path: p, required: true}}"
    with pytest.raises(MappingError, match="field 'p' is null"):
        render(required, _row(None))
    with pytest.raises(MappingError, match="SearchBy EmailAddress"):
        render("on_null: clear\nsearch_by: EmailAddress\nlead: {EmailAddress: e}", {"e": None})


def test_an_update_that_clears_every_attribute_is_a_call() -> None:
    """With ``clear``, an update whose values are all null clears them (with ``omit`` it has no
    attribute and is dead-lettered)."""
    mapping = "lead: {Phone: p, mx_City: c}\nlead_id: id"
    row = {"id": "L1", "p": None, "c": None}
    with pytest.raises(MappingError, match="no attribute has a value"):
        render(mapping, row, "update")
    body = render(f"on_null: clear\n{mapping}", row, "update").body
    assert body == [{"Attribute": "Phone", "Value": ""}, {"Attribute": "mx_City", "Value": ""}]


def test_activity_fields_are_not_cleared() -> None:
    """The option is about lead fields; a new activity's null fields stay left out."""
    mapping = """
on_null: clear
lead: {EmailAddress: e, Phone: p}
activity: {event: 201, fields: {mx_Custom_1: amount}}
"""
    body = render(mapping, {"e": "a@x.io", "p": None, "amount": None}, "lead_and_activity").body
    assert isinstance(body, dict)
    assert body["LeadDetails"][1] == {"Attribute": "Phone", "Value": ""}
    assert "Fields" not in body["Activity"]


@pytest.mark.parametrize("value", ["empty", "", None, True, ["clear"]])
def test_an_unknown_on_null_is_an_error_saying_what_is_allowed(value: Any) -> None:
    with pytest.raises(ValidationError) as caught:
        MappingSpec.model_validate({"lead": {"Phone": "p"}, "on_null": value})
    message = str(caught.value)
    assert "on_null" in message
    assert "must be omit (a null lead attribute is left out" in message
    assert f"not {value!r}" in message


def test_a_bad_on_null_in_the_config_file_names_the_route_key(tmp_path: Path) -> None:
    config = {
        "kafka": {"bootstrap_servers": "kafka:9092"},
        "schema_registry": {"url": "http://registry:8081"},
        "accounts": {"default": {"access_key": "A", "secret_key": "S", "api_key": "K"}},
        "output": {"results_topic": "r", "dead_letter_topic": "d"},
        "routes": [
            {
                "name": "leads",
                "topics": ["crm.leads"],
                "mapping": {"lead": {"EmailAddress": "email"}, "on_null": "blank"},
            }
        ],
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={})
    assert "routes.0.mapping.on_null: must be omit" in str(caught.value)
    assert "not 'blank'" in str(caught.value)
