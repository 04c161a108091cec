"""The mapping language, one feature at a time: field spec forms, paths and ``$`` roots,
templates, required/default, null omission, custom field sets, ``booleans``, and the activity's
event, note and date-time."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from connector.errors import MappingError
from connector.records import Change, SourceRecord
from connector.transform.mapping import MappingSpec, compile_mapping

if TYPE_CHECKING:
    from connector.transform.mapping import Mapper

RECORD = SourceRecord("crm.public.leads", 3, 1234, b"k", b"v", timestamp_ms=1_700_000_000_000)


def updater(lead_yaml: str, **extra: Any) -> Mapper:
    """An update mapping (no identity rules) with the given ``lead:`` block."""
    spec = {"lead_id": {"const": "L1"}, "lead": yaml.safe_load(lead_yaml), **extra}
    return compile_mapping("update", MappingSpec.model_validate(spec))


def lead(lead_yaml: str, row: dict[str, Any], change: Change | None = None, **extra: Any) -> Any:
    """The rendered attribute list for ``row``."""
    return updater(lead_yaml, **extra).render(change or Change("c", row), RECORD).body


def activity(activity_yaml: str, row: dict[str, Any], change: Change | None = None) -> Any:
    """The rendered Activity object for ``row`` (lead: EmailAddress from ``email``)."""
    spec = {"lead": {"EmailAddress": "email"}, "activity": yaml.safe_load(activity_yaml)}
    mapper = compile_mapping("lead_and_activity", MappingSpec.model_validate(spec))
    row = {"email": "a@example.com", **row}
    body = mapper.render(change or Change("c", row), RECORD).body
    assert isinstance(body, dict)
    return body["Activity"]


def pairs(*items: tuple[str, str]) -> list[dict[str, str]]:
    return [{"Attribute": name, "Value": value} for name, value in items]


def test_each_field_spec_form() -> None:
    """A bare string and ``path`` read the row; ``const`` and ``template`` build values."""
    body = lead(
        """
        A: email
        B: {path: phone}
        C: {const: Debezium CDC}
        D: {const: 7}
        E: {const: true}
        F: {template: "{first} {last}"}
        """,
        {"email": "e@x.io", "phone": "123", "first": "Ada", "last": "Lovelace"},
    )
    assert body == pairs(
        ("A", "e@x.io"), ("B", "123"), ("C", "Debezium CDC"), ("D", "7"), ("E", "true"),
        ("F", "Ada Lovelace"),
    )  # fmt: skip


def test_dotted_paths_and_list_indexes() -> None:
    """Dotted segments walk nested rows; integer segments index lists; misses are null."""
    row = {"kyc": {"doc": {"id": "D1"}}, "phones": ["p0", "p1"], "flat": "x"}
    body = lead(
        """
        A: kyc.doc.id
        B: phones.1
        C: phones.5
        D: flat.deeper
        E: kyc.missing.id
        """,
        row,
    )
    assert body == pairs(("A", "D1"), ("B", "p1"))


def test_digit_segment_is_a_key_in_mappings() -> None:
    """A numeric segment reads a string key when the value is a mapping."""
    assert lead("A: codes.0", {"codes": {"0": "zero"}}) == pairs(("A", "zero"))


def test_special_roots_read_the_change_and_the_record() -> None:
    """$op, $ts_ms, $meta.<name>, $topic, $partition, $offset, $timestamp."""
    change = Change("u", {}, meta={"table": "leads", "lsn": 99}, ts_ms=1_600_000_000_000)
    body = lead(
        """
        op: $op
        ts: $ts_ms
        table: $meta.table
        lsn: $meta.lsn
        missing: $meta.nope
        topic: $topic
        partition: $partition
        offset: $offset
        timestamp: $timestamp
        """,
        {},
        change,
    )
    assert body == pairs(
        ("op", "u"), ("ts", "2020-09-13 12:26:40"), ("table", "leads"), ("lsn", "99"),
        ("topic", "crm.public.leads"), ("partition", "3"), ("offset", "1234"),
        ("timestamp", "2023-11-14 22:13:20"),
    )  # fmt: skip


def test_unknown_change_time_and_meta_are_null() -> None:
    """$ts_ms without a change time and $meta without metadata are null (left out)."""
    body = lead("A: $ts_ms\nB: $meta.table\nC: {const: c}", {}, Change("c", {}))
    assert body == pairs(("C", "c"))


def test_deletes_read_the_before_row() -> None:
    """For a delete, paths read the row before the change."""
    change = Change("d", None, before={"email": "gone@x.io"})
    assert lead("EmailAddress: email\nop: $op", {}, change) == pairs(
        ("EmailAddress", "gone@x.io"), ("op", "d")
    )


def test_templates_escape_braces_format_values_and_strip() -> None:
    """{{ and }} are literal braces; placeholders format like values; the result is stripped."""
    row = {"n": 5, "at": datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC), "ok": False}
    body = lead('A: {template: "  {{id}}={n} at {at} ok={ok} via {$topic}  "}', row)
    assert body == pairs(("A", "{id}=5 at 2024-01-02 03:04:05 ok=false via crm.public.leads"))


def test_template_nulls_render_empty_and_empty_result_is_null() -> None:
    """Null placeholders render as nothing; an all-empty template leaves the attribute out."""
    tmpl = 'A: {template: "{first} {last}"}\nB: {template: "{first} {last}", default: anon}'
    assert lead(tmpl, {"last": "Lee"}) == pairs(("A", "Lee"), ("B", "Lee"))
    assert lead(tmpl + "\nC: {const: c}", {}) == pairs(("B", "anon"), ("C", "c"))


def test_template_placeholder_with_unmappable_value_names_it() -> None:
    """A dict in a placeholder fails the record, naming the attribute and placeholder."""
    with pytest.raises(MappingError) as caught:
        lead('A: {template: "x {obj}"}', {"obj": {"a": 1}})
    assert str(caught.value) == (
        "lead.A: template placeholder 'obj': cannot map a dict; map its fields instead"
    )


def test_required_path_null_names_attribute_and_field() -> None:
    """``required: true`` on a null path: MappingError naming the attribute and the path."""
    with pytest.raises(MappingError) as caught:
        lead("Phone: {path: phone, required: true}", {"phone": None})
    assert caught.value.path == "lead.Phone"
    assert str(caught.value) == "lead.Phone: field 'phone' is null"


def test_required_template_rendering_empty_fails() -> None:
    """``required: true`` on a template that renders empty fails the record."""
    with pytest.raises(MappingError, match=r"^lead\.N: template '\{a\}' rendered empty$"):
        lead('N: {template: "{a}", required: true}\nX: {const: x}', {})


def test_default_is_used_only_when_null() -> None:
    """``default`` replaces null (and missing) values, is formatted like a value, else unused."""
    spec = "Plan: {path: plan, default: free}\nVip: {path: vip, default: false}"
    assert lead(spec, {}) == pairs(("Plan", "free"), ("Vip", "false"))
    assert lead(spec, {"plan": "pro", "vip": True}) == pairs(("Plan", "pro"), ("Vip", "true"))


def test_nulls_are_left_out_but_empty_strings_are_kept() -> None:
    """A null or missing field omits its attribute; an empty string is a value."""
    body = lead("A: a\nB: b\nC: c", {"a": None, "c": ""})
    assert body == pairs(("C", ""))


def test_unmappable_path_value_names_attribute_and_field() -> None:
    """A list value fails the record with the attribute, the field and the reason."""
    with pytest.raises(MappingError) as caught:
        lead("A: tags", {"tags": ["x"]})
    assert caught.value.path == "lead.A"
    assert str(caught.value) == (
        "lead.A: field 'tags': cannot map a list; map its items instead (e.g. field.0)"
    )


def test_lead_custom_field_set_drops_null_inner_fields() -> None:
    """A lead CFS has Value "" and Fields; null inner fields are left out."""
    body = lead("mx_KYC: {fields: {Status: s, mx_CustomObject_1: doc}}", {"s": "Pending"})
    assert body == [{"Attribute": "mx_KYC", "Value": "", "Fields": pairs(("Status", "Pending"))}]


def test_custom_field_set_with_all_fields_null_is_left_out() -> None:
    """A CFS whose inner fields are all null is omitted."""
    body = lead("mx_KYC: {fields: {Status: s}}\nA: a", {"a": "x"})
    assert body == pairs(("A", "x"))


def test_custom_field_set_inner_error_names_the_nested_key() -> None:
    """A failing inner field names lead.<set>.fields.<field>."""
    with pytest.raises(MappingError, match=r"^lead\.mx_KYC\.fields\.Status: field 's'"):
        lead("mx_KYC: {fields: {Status: s}}", {"s": b"raw"})


def test_booleans_setting_applies_to_paths_consts_and_templates() -> None:
    """``booleans`` sets the true/false forms everywhere a boolean is formatted."""
    body = lead(
        'A: flag\nB: {const: false}\nC: {template: "{flag}"}', {"flag": True}, booleans=["1", "0"]
    )
    assert body == pairs(("A", "1"), ("B", "0"), ("C", "1"))


def test_values_of_every_type_render_through_the_mapping() -> None:
    """Row values of each decoded type arrive in the payload in LeadSquared form."""
    row = {"d": Decimal("10.50"), "f": 1e20, "day": date(2024, 2, 29), "big": 2**70}
    assert lead("D: d\nF: f\nDay: day\nBig: big", row) == pairs(
        ("D", "10.50"), ("F", "100000000000000000000"), ("Day", "2024-02-29"),
        ("Big", "1180591620717411303424"),
    )  # fmt: skip


def test_activity_note_datetime_and_fields() -> None:
    """Activity: event, note (template), datetime (ISO converted to UTC) and SchemaName fields."""
    act = activity(
        """
        event: {path: code}
        note: {template: "Order {order_id} placed"}
        datetime: placed_at
        fields: {mx_Custom_1: amount, mx_Custom_2: missing}
        """,
        {"code": "201", "order_id": 7, "placed_at": "2024-05-01T10:00:00+02:00", "amount": 9.5},
    )
    assert act == {
        "ActivityEvent": 201,
        "ActivityNote": "Order 7 placed",
        "ActivityDateTime": "2024-05-01 08:00:00",
        "Fields": [{"SchemaName": "mx_Custom_1", "Value": "9.5"}],
    }


def test_activity_datetime_defaults_to_change_time_then_record_time() -> None:
    """Without (or with a null) datetime, ActivityDateTime is the change time, else the record's
    timestamp; note and empty Fields are left out."""
    with_ts = Change("c", {"email": "a@x.io"}, ts_ms=1_500_000_000_000)
    assert activity("event: 201", {}, with_ts) == {
        "ActivityEvent": 201,
        "ActivityDateTime": "2017-07-14 02:40:00",
    }
    assert activity("event: 201\ndatetime: when", {"when": None}) == {
        "ActivityEvent": 201,
        "ActivityDateTime": "2023-11-14 22:13:20",
    }


def test_activity_datetime_omitted_when_no_time_is_known() -> None:
    """No mapped value, no change time and no record timestamp: ActivityDateTime is left out."""
    spec = {"lead": {"EmailAddress": "email"}, "activity": {"event": 201}}
    mapper = compile_mapping("lead_and_activity", MappingSpec.model_validate(spec))
    record = SourceRecord("t", 0, 0, None, b"")
    body = mapper.render(Change("c", {"email": "a@x.io"}), record).body
    assert isinstance(body, dict)
    assert body["Activity"] == {"ActivityEvent": 201}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC), "2024-01-02 03:04:05"),
        (date(2024, 1, 2), "2024-01-02 00:00:00"),
        ("2024-01-02 03:04:05", "2024-01-02 03:04:05"),
        ("2024-01-02T03:04:05Z", "2024-01-02 03:04:05"),
    ],
)
def test_activity_datetime_accepts_datetimes_dates_and_strings(value: Any, expected: str) -> None:
    """Mapped ActivityDateTime values are normalised to UTC YYYY-MM-DD HH:MM:SS."""
    assert activity("event: 1\ndatetime: when", {"when": value})["ActivityDateTime"] == expected


@pytest.mark.parametrize("value", [1_700_000_000, "next tuesday", True, Decimal("1.5")])
def test_activity_datetime_refuses_other_values(value: Any) -> None:
    """A mapped ActivityDateTime that is not a date-time fails the record."""
    with pytest.raises(MappingError, match=r"^activity\.datetime: .* is not a date-time"):
        activity("event: 1\ndatetime: when", {"when": value})


def test_activity_datetime_constant_is_normalised() -> None:
    """A constant ActivityDateTime is checked and normalised once."""
    act = activity('event: 1\ndatetime: {const: "2024-01-02T03:04:05+01:00"}', {})
    assert act["ActivityDateTime"] == "2024-01-02 02:04:05"


@pytest.mark.parametrize(
    ("event", "row", "expected"),
    [
        ("201", {}, 201),
        ("{const: 105}", {}, 105),
        ("{const: '164'}", {}, 164),
        ("code", {"code": 223}, 223),
        ("code", {"code": " 380 "}, 380),
        ("code", {"code": Decimal(206)}, 206),
        ('{template: "2{suffix}"}', {"suffix": "04"}, 204),
        ("{path: code, default: 21}", {}, 21),
    ],
)
def test_activity_event_sources(event: str, row: dict[str, Any], expected: int) -> None:
    """ActivityEvent from a constant, a numeric string, a path, a template or a default."""
    assert activity(f"event: {event}", row)["ActivityEvent"] == expected


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ({}, "no value (ActivityEvent is required)"),
        ({"code": 0}, "'0' is not an activity event code (an integer > 0)"),
        ({"code": -3}, "'-3' is not an activity event code (an integer > 0)"),
        ({"code": "abc"}, "'abc' is not an activity event code (an integer > 0)"),
        ({"code": 2.5}, "'2.5' is not an activity event code (an integer > 0)"),
        ({"code": True}, "'true' is not an activity event code (an integer > 0)"),
    ],
)
def test_activity_event_invalid_values_fail_the_record(row: dict[str, Any], reason: str) -> None:
    """A missing, non-positive or non-integer ActivityEvent fails the record."""
    with pytest.raises(MappingError) as caught:
        activity("event: code", row)
    assert (caught.value.path, str(caught.value)) == ("activity.event", f"activity.event: {reason}")


def test_activity_custom_field_set_uses_attribute_key() -> None:
    """Inside Activity.Fields, a CFS entry is keyed by Attribute (plain fields by SchemaName)."""
    act = activity(
        "event: 1\nfields: {mx_Custom_1: a, mx_KYC: {fields: {Status: s, Gone: g}}}",
        {"a": "x", "s": "Done"},
    )
    assert act["Fields"] == [
        {"SchemaName": "mx_Custom_1", "Value": "x"},
        {"Attribute": "mx_KYC", "Value": "", "Fields": pairs(("Status", "Done"))},
    ]
