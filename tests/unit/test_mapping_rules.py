"""The rules: per-record validity (MappingError → dead letter) and configuration (ConfigError at
startup, naming the key relative to the ``mapping:`` block), plus the query parameters."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
import yaml
from pydantic import ValidationError

from connector.errors import ConfigError, MappingError
from connector.records import Change, Payload, SourceRecord
from connector.transform.mapping import MappingSpec, compile_mapping

if TYPE_CHECKING:
    from connector.records import Operation
    from connector.transform.mapping import Mapper

RECORD = SourceRecord("t", 0, 0, None, b"", timestamp_ms=0)


def compile_yaml(operation: Operation, mapping: str) -> Mapper:
    return compile_mapping(operation, MappingSpec.model_validate(yaml.safe_load(mapping)))


def render(operation: Operation, mapping: str, row: dict[str, Any]) -> Payload:
    return compile_yaml(operation, mapping).render(Change("c", row), RECORD)


def fails(operation: Operation, mapping: str, row: dict[str, Any]) -> str:
    """The MappingError message rendering ``row`` raises."""
    with pytest.raises(MappingError) as caught:
        render(operation, mapping, row)
    return str(caught.value)


# --- validity rules (per record) -----------------------------------------------------------

CAPTURE_BY_EMAIL = "search_by: EmailAddress\nlead: {EmailAddress: email, FirstName: name}"


def test_capture_search_by_attribute_null_fails() -> None:
    """capture with search_by: the attribute it names must have a value in this record."""
    msg = fails("capture", CAPTURE_BY_EMAIL, {"name": "Ada"})
    assert msg == "SearchBy EmailAddress: lead.EmailAddress is null"


def test_capture_search_by_attribute_blank_fails() -> None:
    """A blank value cannot be searched on either."""
    msg = fails("capture", CAPTURE_BY_EMAIL, {"email": "  ", "name": "Ada"})
    assert msg == "SearchBy EmailAddress: lead.EmailAddress is blank"


def test_capture_search_by_appends_search_by_last() -> None:
    """capture with search_by renders the SearchBy entry after every mapped attribute."""
    payload = render("capture", CAPTURE_BY_EMAIL, {"email": "a@x.io", "name": "Ada"})
    assert payload.body == [
        {"Attribute": "EmailAddress", "Value": "a@x.io"},
        {"Attribute": "FirstName", "Value": "Ada"},
        {"Attribute": "SearchBy", "Value": "EmailAddress"},
    ]
    assert payload.params == ()


CAPTURE_IDS = "lead: {ProspectId: pid, EmailAddress: email, Phone: phone, FirstName: name}"


def test_capture_without_search_by_needs_an_identifier() -> None:
    """capture: one of ProspectID, EmailAddress, Phone must have a value (else a new lead)."""
    msg = fails("capture", CAPTURE_IDS, {"name": "Ada", "email": ""})
    assert msg == (
        "lead: capture needs ProspectID, EmailAddress or Phone (else LeadSquared creates a lead); "
        "EmailAddress, Phone, ProspectId: all null or blank in this record"
    )


@pytest.mark.parametrize("field", ["pid", "email", "phone"])
def test_capture_any_identifier_is_enough(field: str) -> None:
    """Any one identifier (matched case-insensitively, e.g. ProspectId) satisfies capture."""
    body = render("capture", CAPTURE_IDS, {field: "v1"}).body
    assert isinstance(body, list)
    assert [entry["Value"] for entry in body] == ["v1"]


CREATE = "lead: {FirstName: first, LastName: last, EmailAddress: email, Phone: phone, mx_X: x}"


def test_create_needs_a_name_email_or_phone() -> None:
    """create: at least one of FirstName, LastName, EmailAddress, Phone has a value."""
    msg = fails("create", CREATE, {"x": "only custom"})
    assert msg.startswith("lead: create needs FirstName, LastName, EmailAddress or Phone; ")


@pytest.mark.parametrize("field", ["first", "last", "email", "phone"])
def test_create_any_of_the_four_is_enough(field: str) -> None:
    """Any one of the four satisfies create; the body is the attribute list, no params."""
    assert render("create", CREATE, {field: "v"}).params == ()


@pytest.mark.parametrize("operation", ["capture", "create", "update", "lead_and_activity"])
def test_every_body_needs_an_attribute(operation: Operation) -> None:
    """A row where every attribute is null fails, whatever the operation."""
    mapping = {
        "capture": "lead: {EmailAddress: email}",
        "create": "lead: {EmailAddress: email}",
        "update": "lead_id: {const: L}\nlead: {EmailAddress: email}",
        "lead_and_activity": "lead: {EmailAddress: email}\nactivity: {event: 1}",
    }[operation]
    assert fails(operation, mapping, {}) == "lead: no attribute has a value"


def test_lead_and_activity_search_by_needs_a_value() -> None:
    """lead_and_activity: the search_by attribute (EmailAddress by default) must have a value."""
    mapping = "lead: {EmailAddress: email, mx_City: city}\nactivity: {event: 1}"
    msg = fails("lead_and_activity", mapping, {"city": "Pune"})
    assert msg == "SearchBy EmailAddress: lead.EmailAddress is null"


def test_lead_and_activity_with_explicit_search_by() -> None:
    """An explicit search_by replaces the EmailAddress default."""
    mapping = "search_by: Phone\nlead: {Phone: phone}\nactivity: {event: 1}"
    body = render("lead_and_activity", mapping, {"phone": "+91-1"}).body
    assert isinstance(body, dict)
    assert body["LeadDetails"][-1] == {"Attribute": "SearchBy", "Value": "Phone"}


UPDATE = "lead_id: lid\nlead: {mx_City: city}"


@pytest.mark.parametrize("lead_id", [None, "", "   "])
def test_update_needs_a_lead_id(lead_id: str | None) -> None:
    """update: a null or blank leadId fails the record."""
    msg = fails("update", UPDATE, {"lid": lead_id, "city": "Pune"})
    assert msg == "lead_id: no lead id (leadId is required for update)"


def test_update_lead_id_of_wrong_type_fails() -> None:
    """A lead id that cannot be a string fails with the path."""
    msg = fails("update", UPDATE, {"lid": {"id": 1}, "city": "Pune"})
    assert msg == "lead_id: field 'lid': cannot map a dict; map its fields instead"


def test_update_params_default_post_updated_lead_false() -> None:
    """update params: leadId then postUpdatedLead, false unless configured."""
    payload = render("update", UPDATE, {"lid": 12, "city": "Pune"})
    assert payload.params == (("leadId", "12"), ("postUpdatedLead", "false"))


def test_capture_params_carry_lead_update_behavior() -> None:
    """capture params: LeadUpdateBehavior when configured."""
    mapping = "lead_update_behavior: UpdateOnlyEmptyFields\nlead: {Phone: p}"
    assert render("capture", mapping, {"p": "1"}).params == (
        ("LeadUpdateBehavior", "UpdateOnlyEmptyFields"),
    )


# --- configuration rules (at startup) ------------------------------------------------------

LA = "lead: {EmailAddress: e}\nactivity: {event: 1}\n"


@pytest.mark.parametrize(
    ("operation", "mapping", "message"),
    [
        ("capture", "lead: {Phone: p}\nactivity: {event: 1}",
         "activity: only valid for operation lead_and_activity"),
        ("lead_and_activity", "lead: {EmailAddress: e}",
         "activity: required for operation lead_and_activity"),
        ("capture", "lead: {Phone: p}\nlead_id: x", "lead_id: only valid for operation update"),
        ("update", "lead: {Phone: p}", "lead_id: required for operation update"),
        ("update", "lead: {Phone: p}\nlead_id: x\nlead_update_behavior: DoNotUpdate",
         "lead_update_behavior: only valid for operation capture"),
        ("capture", "lead: {Phone: p}\npost_updated_lead: false",
         "post_updated_lead: only valid for operation update"),
        ("create", "lead: {Phone: p}\nsearch_by: Phone",
         "search_by: only valid for operations capture, lead_and_activity"),
        ("capture", "lead: {Phone: p}\nsearch_by: Mobile",
         "search_by: Mobile must be mapped under lead"),
        ("lead_and_activity", "lead: {Phone: p}\nactivity: {event: 1}",
         "search_by: EmailAddress (the default for lead_and_activity) must be mapped under lead"),
        ("capture", "lead: {Phone: p, mx_KYC: {fields: {S: s}}}\nsearch_by: mx_KYC",
         "search_by: mx_KYC is a custom field set, not a searchable attribute"),
        ("capture", "lead: {}", "lead: map at least one attribute"),
        ("capture", "lead: {FirstName: f}",
         ("lead: capture needs ProspectID, EmailAddress or Phone (else LeadSquared creates a "
          "lead); map at least one of them")),
        ("create", "lead: {mx_City: c}",
         "lead: create needs FirstName, LastName, EmailAddress or Phone; map at least one of them"),
        ("capture", "lead: {Phone: p, '': x}", "lead: attribute names must not be empty"),
        ("capture", "lead: {Phone: p, SearchBy: x}",
         "lead.SearchBy: SearchBy is not an attribute; use search_by"),
        ("capture", "lead: {Phone: p, mx_KYC: {fields: {searchby: x}}}",
         "lead.mx_KYC.fields.searchby: SearchBy is not an attribute; use search_by"),
        ("capture", "lead: {Phone: p, mx_KYC: {fields: {Inner: {fields: {A: a}}}}}",
         "lead.mx_KYC.fields.Inner: custom field sets nest one level only"),
        ("capture", "lead: {Phone: p, mx_KYC: {fields: {}}}",
         "lead.mx_KYC.fields: a custom field set needs at least one field"),
        ("capture", "lead: {Phone: {path: p, const: x}}",
         "lead.Phone: needs exactly one of path, const, template, fields (got path, const)"),
        ("capture", "lead: {Phone: {required: true}}",
         "lead.Phone: needs exactly one of path, const, template, fields (got none)"),
        ("capture", "lead: {Phone: {const: x, default: y}}",
         "lead.Phone.default: only valid with path or template"),
        ("capture", "lead: {Phone: p, mx_KYC: {fields: {S: s}, required: false}}",
         "lead.mx_KYC.required: only valid with path or template"),
        ("capture", "lead: {Phone: {path: p, required: true, default: x}}",
         "lead.Phone: required and default exclude each other"),
        ("capture", "lead: {Phone: $nope}",
         ("lead.Phone: unknown root '$nope' (known: $op, $ts_ms, $topic, $partition, $offset, "
          "$timestamp, $meta.<name>)")),
        ("capture", "lead: {Phone: {path: $meta}}",
         "lead.Phone.path: $meta needs a name, e.g. $meta.table"),
        ("capture", "lead: {Phone: $topic.name}", "lead.Phone: $topic has no fields"),
        ("capture", "lead: {Phone: a..b}",
         "lead.Phone: 'a..b' is not a field path (empty segment)"),
        ("capture", "lead: {Phone: {template: 'x {$bad}'}}",
         ("lead.Phone.template: unknown root '$bad' (known: $op, $ts_ms, $topic, $partition, "
          "$offset, $timestamp, $meta.<name>)")),
        ("capture", "lead: {Phone: {template: 'x {a'}}",
         ("lead.Phone.template: expected '}' before end of string (write {{ and }} for literal "
          "braces)")),
        ("capture", "lead: {Phone: {template: 'x {a:>5}'}}",
         "lead.Phone.template: placeholder {a:>5} must be a plain field path"),
        ("capture", "lead: {Phone: {template: 'x {a!r}'}}",
         "lead.Phone.template: placeholder {a!r} must be a plain field path"),
        ("capture", "lead: {Phone: {template: 'x {}'}}",
         "lead.Phone.template: placeholder {} must be a plain field path"),
        ("capture", "lead: {Phone: {const: .nan}}", "lead.Phone.const: cannot map the float nan"),
        ("capture", "lead: {Phone: {path: p, default: .inf}}",
         "lead.Phone.default: cannot map the float inf"),
        ("update", "lead: {Phone: p}\nlead_id: {fields: {A: a}}",
         "lead_id: a custom field set is not a lead id"),
        ("lead_and_activity", LA.replace("{event: 1}", "{event: 1, note: {fields: {A: a}}}"),
         "activity.note: a custom field set is only valid under lead and activity.fields"),
        ("lead_and_activity", LA.replace("event: 1", "event: 0"),
         "activity.event: '0' is not an activity event code (an integer > 0)"),
        ("lead_and_activity", LA.replace("event: 1", "event: {const: true}"),
         "activity.event.const: 'true' is not an activity event code (an integer > 0)"),
        ("lead_and_activity", LA.replace("event: 1", "event: 1, datetime: {const: soon}"),
         "activity.datetime.const: 'soon' is not a date-time (YYYY-MM-DD HH:MM:SS or ISO-8601)"),
        ("lead_and_activity", LA.replace("event: 1", "event: {path: c, default: -1}"),
         "activity.event.default: '-1' is not an activity event code (an integer > 0)"),
        ("lead_and_activity", LA.replace("event: 1", "event: 1, datetime: {path: d, default: x}"),
         "activity.datetime.default: 'x' is not a date-time (YYYY-MM-DD HH:MM:SS or ISO-8601)"),
        ("lead_and_activity", LA.replace("event: 1", "event: 1, fields: {SearchBy: x}"),
         "activity.fields.SearchBy: SearchBy is not an attribute; use search_by"),
        ("capture", "lead: {Phone: p}\nbooleans: ['1', '1']",
         "booleans: true and false need different forms, not '1'"),
    ],
)  # fmt: skip
def test_config_rules_name_the_key(operation: Operation, mapping: str, message: str) -> None:
    """Each configuration rule raises ConfigError whose message names the key."""
    with pytest.raises(ConfigError) as caught:
        compile_yaml(operation, mapping)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    "mapping",
    [
        {"lead": {"Phone": "p"}, "unknown": 1},
        {"lead": {"Phone": {"path": "p", "typo": True}}},
        {"lead": {"Phone": "p"}, "lead_update_behavior": "Sometimes"},
        {"lead": {"Phone": "p"}, "activity": {"event": True}},
        {"lead": {"Phone": "p"}, "booleans": ["only one"]},
    ],
)
def test_spec_model_rejects_unknown_keys_and_bad_types(mapping: dict[str, Any]) -> None:
    """The MappingSpec model (loaded by settings) refuses unknown keys and wrong types."""
    with pytest.raises(ValidationError):
        MappingSpec.model_validate(mapping)


def test_spec_model_is_frozen() -> None:
    """MappingSpec is immutable once loaded."""
    spec = MappingSpec.model_validate({"lead": {"Phone": "p"}})
    with pytest.raises(ValidationError):
        spec.search_by = "Phone"


def test_each_render_returns_fresh_objects() -> None:
    """Payloads share no mutable state: changing one body does not leak into the next render."""
    mapping = "lead: {EmailAddress: e, mx_KYC: {fields: {S: s}}}\nactivity: {event: 1}"
    mapper = compile_yaml("lead_and_activity", mapping)
    row = {"e": "a@x.io", "s": "ok"}
    first = mapper.render(Change("c", row), RECORD).body
    assert isinstance(first, dict)
    first["LeadDetails"][-1]["Value"] = "Phone"
    first["Activity"]["ActivityEvent"] = 99
    second = mapper.render(Change("c", row), RECORD).body
    assert isinstance(second, dict)
    assert second["LeadDetails"][-1] == {"Attribute": "SearchBy", "Value": "EmailAddress"}
    assert second["Activity"]["ActivityEvent"] == 1
