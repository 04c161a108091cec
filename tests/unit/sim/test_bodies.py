"""Request validation: content type, JSON, strict body shapes with messages naming the path,
and query parameters."""

from __future__ import annotations

import json

import pytest

from lsq_sim.bodies import BodyError, parse_submission
from lsq_sim.records import (
    ActivityInput,
    LeadField,
    MXError,
    Operation,
    Submission,
    UpdateBehavior,
)

JSON = "application/json"
CREATE_CUSTOM_SEED = {
    "LeadDetails": [
        {"Attribute": "EmailAddress", "Value": "email@example.com"},
        {"Attribute": "mx_City", "Value": "Bangalore"},
        {
            "Attribute": "mx_KYC",
            "Value": "",
            "Fields": [
                {"Attribute": "Status", "Value": "Pending"},
                {"Attribute": "mx_CustomObject_1", "Value": "XYZ12345.png"},
            ],
        },
        {"Attribute": "SearchBy", "Value": "EmailAddress"},
    ],
    "Activity": {
        "ActivityEvent": 105,
        "ActivityNote": "Note for the activity",
        "ActivityDateTime": "2016-07-07 10:55:00",
        "Fields": [
            {"SchemaName": "mx_Custom_1", "Value": "123"},
            {
                "Attribute": "mx_KYC",
                "Value": "",
                "Fields": [{"Attribute": "Status", "Value": "Pending"}],
            },
        ],
    },
}


def _parse(
    operation: Operation, body: object, query: dict[str, str] | None = None, ctype: str = JSON
) -> Submission:
    return parse_submission(operation, ctype, json.dumps(body).encode(), query or {})


def _error(operation: Operation, body: object) -> str:
    with pytest.raises(BodyError) as caught:
        _parse(operation, body)
    return caught.value.message


def test_capture_body_becomes_lead_fields_with_behavior() -> None:
    """An Attribute/Value array and LeadUpdateBehavior become a capture submission."""
    body = [{"Attribute": "EmailAddress", "Value": "a@x.io"}, {"Attribute": "Phone", "Value": ""}]
    query = {"leadupdatebehavior": "DoNotUpdate"}
    assert _parse(Operation.CAPTURE, body, query) == Submission(
        Operation.CAPTURE,
        leads=(LeadField("EmailAddress", "a@x.io"), LeadField("Phone", "")),
        behavior=UpdateBehavior.DO_NOT_UPDATE,
    )


def test_create_custom_seed_body_is_accepted() -> None:
    """The body of seeds/create-lead-and-activity-async.txt parses, CFS included."""
    submission = _parse(Operation.CREATE_CUSTOM, CREATE_CUSTOM_SEED)
    assert submission.leads[2] == LeadField(
        "mx_KYC", "", (("Status", "Pending"), ("mx_CustomObject_1", "XYZ12345.png"))
    )
    assert submission.activity == ActivityInput(
        event=105,
        note="Note for the activity",
        when="2016-07-07 10:55:00",
        fields=(
            LeadField("mx_Custom_1", "123"),
            LeadField("mx_KYC", "", (("Status", "Pending"),)),
        ),
    )


def test_activity_create_body_with_extra_keys_is_accepted() -> None:
    """ProcessFilesAsync and ValidateDropDownOptions are allowed extras."""
    body = {
        "RelatedProspectId": "p-1",
        "ActivityEvent": 201,
        "ProcessFilesAsync": True,
        "ValidateDropDownOptions": True,
    }
    activity = _parse(Operation.ACTIVITY_CREATE, body).activity
    assert activity == ActivityInput(event=201, related_lead_id="p-1")


def test_update_takes_lead_id_from_the_query() -> None:
    """leadId (any case) is read from the query; postUpdatedLead true/false is accepted."""
    query = {"leadid": "L-1", "postupdatedlead": "True"}
    assert _parse(Operation.UPDATE, [], query).lead_id == "L-1"


def test_update_without_lead_id_is_an_mx_error() -> None:
    """A missing leadId is MXMandatoryAttributeMissingException, as documented."""
    with pytest.raises(MXError) as caught:
        _parse(Operation.UPDATE, [])
    assert (caught.value.type, caught.value.message) == (
        "MXMandatoryAttributeMissingException",
        "'leadId' is mandatory for updating lead",
    )


@pytest.mark.parametrize("ctype", ["application/json", "application/json; charset=utf-8"])
def test_json_content_type_with_or_without_charset_is_accepted(ctype: str) -> None:
    """A charset parameter does not matter."""
    assert _parse(Operation.CAPTURE, [], ctype=ctype).leads == ()


@pytest.mark.parametrize("ctype", ["text/plain", "application/x-www-form-urlencoded", ""])
def test_other_content_types_are_rejected(ctype: str) -> None:
    """Anything but application/json is a 400 naming the content type."""
    with pytest.raises(BodyError) as caught:
        _parse(Operation.CAPTURE, [], ctype=ctype)
    assert caught.value.message.startswith("Content-Type must be application/json")


def test_body_that_is_not_json_is_rejected() -> None:
    """Unparseable bodies are a 400."""
    with pytest.raises(BodyError) as caught:
        parse_submission(Operation.CAPTURE, JSON, b"[{'Attribute': 1}]", {})
    assert caught.value.message.startswith("body is not valid JSON")


def test_body_that_is_not_utf8_is_rejected() -> None:
    """Bodies must be UTF-8."""
    with pytest.raises(BodyError) as caught:
        parse_submission(Operation.CAPTURE, JSON, b'[{"Attribute": "\xff"}]', {})
    assert caught.value.message == "body is not valid UTF-8"


@pytest.mark.parametrize(
    ("operation", "body", "message"),
    [
        (Operation.CAPTURE, {"Attribute": "A"}, "body: expected an array"),
        (Operation.CAPTURE, [{"Attribute": "A", "Value": 5}], "body[0].Value: expected a string"),
        (
            Operation.CAPTURE,
            [{"Attribute": 1, "Value": "x"}],
            "body[0].Attribute: expected a string",
        ),
        (Operation.CAPTURE, [{"Value": "x"}], "body[0].Attribute: required"),
        (
            Operation.CAPTURE,
            [{"Attribute": "A", "Value": None}],
            "body[0].Value: expected a string",
        ),
        (Operation.CAPTURE, ["x"], "body[0]: expected an object"),
        (
            Operation.CAPTURE,
            [{"Attribute": "mx_KYC", "Value": "x", "Fields": []}],
            'body[0]: a custom field set (with Fields) needs Value ""',
        ),
        (
            Operation.CAPTURE,
            [{"Attribute": "mx_KYC", "Value": "", "Fields": [{"Attribute": "S", "Value": 1}]}],
            "body[0].Fields[0].Value: expected a string",
        ),
        (Operation.ACTIVITY_CREATE, [], "body: expected an object"),
        (Operation.ACTIVITY_CREATE, {"ActivityEvent": 1}, "RelatedProspectId: required"),
    ],
)
def test_shape_errors_name_the_path(operation: Operation, body: object, message: str) -> None:
    """Each shape problem is reported with its JSON path."""
    assert _error(operation, body) == message


def _custom(**activity: object) -> dict[str, object]:
    return {"LeadDetails": [{"Attribute": "EmailAddress", "Value": "a@x.io"}], "Activity": activity}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (_custom(ActivityEvent="105"), "Activity.ActivityEvent: expected an integer"),
        (_custom(ActivityEvent=True), "Activity.ActivityEvent: expected an integer"),
        (_custom(ActivityEvent=105.0), "Activity.ActivityEvent: expected an integer"),
        (
            _custom(ActivityEvent=1, ActivityDateTime="2016-07-07T10:55:00Z"),
            "Activity.ActivityDateTime: expected 'YYYY-MM-DD HH:MM:SS'",
        ),
        (
            _custom(ActivityEvent=1, ActivityDateTime="2016-13-07 10:55:00"),
            "Activity.ActivityDateTime: expected 'YYYY-MM-DD HH:MM:SS'",
        ),
        (
            _custom(ActivityEvent=1, Fields=[{"Attribute": "mx_Custom_1", "Value": "1"}]),
            'Activity.Fields[0]: a custom field set needs Value "" and Fields',
        ),
        (
            _custom(ActivityEvent=1, Fields=[{"Value": "1"}]),
            "Activity.Fields[0]: expected SchemaName, or Attribute with Fields",
        ),
        (
            _custom(ActivityEvent=1, Fields=[{"SchemaName": "mx_Custom_1", "Value": 1}]),
            "Activity.Fields[0].Value: expected a string",
        ),
        (
            {"LeadDetails": [{"Attribute": "A", "Value": "x"}] * 2 + [{"Attribute": "B"}]},
            "LeadDetails[2].Value: required (and 1 more problems)",
        ),
    ],
)
def test_create_custom_shape_errors_name_the_path(body: object, message: str) -> None:
    """Activity problems are reported with their path under LeadDetails / Activity."""
    assert _error(Operation.CREATE_CUSTOM, body) == message


def test_unknown_lead_update_behavior_is_rejected() -> None:
    """An unknown LeadUpdateBehavior is a 400 listing the valid ones."""
    with pytest.raises(BodyError) as caught:
        _parse(Operation.CAPTURE, [], {"leadupdatebehavior": "Sometimes"})
    assert caught.value.message == (
        "LeadUpdateBehavior must be one of DoNotUpdate, UpdateOnlyEmptyFields, "
        "DoNotUpdateUniqueFields, not 'Sometimes'"
    )


def test_post_updated_lead_must_be_a_boolean() -> None:
    """postUpdatedLead other than true/false is a 400."""
    with pytest.raises(BodyError) as caught:
        _parse(Operation.UPDATE, [], {"leadid": "L", "postupdatedlead": "yes"})
    assert caught.value.message == "postUpdatedLead must be true or false, not 'yes'"
