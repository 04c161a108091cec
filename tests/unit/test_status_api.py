"""What the async host's Status and Metrics APIs answer (reference §1.5, §1.6, §3.3), read into
reports: succeeded with the lead id, failed with the reason and whether the mapping is to blame,
pending, throttled or missing; and the GET requests that ask."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connector.lsq.catalog import Endpoint, Request
from connector.lsq.status import (
    STATUS_PATHS,
    Depth,
    Report,
    metrics_request,
    read_metrics,
    read_status,
    status_request,
)
from connector.records import Answer, Operation

OPERATIONS: tuple[Operation, ...] = ("capture", "update", "lead_and_activity")
KINDS = {"pending", "throttled", "missing", "succeeded", "failed"}

CAPTURE_MESSAGE = {"Status": "Success", "Message": {"Id": "act-1", "RelatedId": "lead-9"}}
UPDATE_SUCCESS = {
    "RequestID": "7ba60ab0-7054-4856-8590-1b5a9f904ad1",
    "TaskStatus": {
        "TaskType": "Lead Update",
        "Status": "Success",
        "StatusReason": "Request was successfully completed",
        "TaskCurrentStep": None,
        "TaskLastStep": "In-Process-Queue",
        "RequestBody": '[ {"Attribute": "mx_City", "Value": "Bangalore"} ]',
        "Message": '{"Status":"Success","Message":{"AffectedRows":1}}',
    },
}
CAPTURE_SUCCESS = {
    "RequestId": "8eca6fa6-262c-43eb-8cfe-6e3325e2dc73",
    "TaskStatus": {
        "TaskType": "Lead Capture",
        "Status": "Success",
        "StatusReason": "Request was successfully completed",
        "TaskCurrentStep": None,
        "TaskLastStep": "In-Process-Queue",
        "RequestBody": '[\r\n\t{"Attribute": "EmailAddress", "Value": "a@example.com"}\r\n]',
        "Message": json.dumps(CAPTURE_MESSAGE),
    },
}
LEAD_BODY = [
    {"Attribute": "EmailAddress", "Value": "a@example.com"},
    {"Attribute": "mx_Ciyt", "Value": "Pune"},
    {"Attribute": "SearchBy", "Value": "EmailAddress"},
]
CREATE_CUSTOM_BODY = {
    "LeadDetails": [
        {"Attribute": "EmailAddress", "Value": "a@example.com"},
        {
            "Attribute": "mx_KYC",
            "Value": "",
            "Fields": [
                {"Attribute": "Status", "Value": "Pending"},
                {"Attribute": "mx_CustomObject_9", "Value": "XYZ12345.png"},
            ],
        },
        {"Attribute": "SearchBy", "Value": "EmailAddress"},
    ],
    "Activity": {
        "ActivityEvent": 105,
        "ActivityNote": "Note for the activity",
        "Fields": [{"SchemaName": "mx_Custom_7", "Value": "123"}],
    },
}


def _json(body: object, status: int = 200) -> Answer:
    return Answer(status, json.dumps(body).encode())


def _task(status: str, reason: str = "", **extra: object) -> Answer:
    task: dict[str, Any] = {
        "TaskType": "Lead Capture",
        "Status": status,
        "StatusReason": reason,
        "TaskCurrentStep": None,
        "TaskLastStep": "In-Process-Queue",
        "RequestBody": json.dumps(LEAD_BODY),
        "Message": None,
    }
    return _json({"RequestId": "req-1", "TaskStatus": task | extra})


# -- Success ------------------------------------------------------------------------------------


def test_documented_update_success_succeeds_without_a_lead_id() -> None:
    report = read_status(_json(UPDATE_SUCCESS), "update")
    assert report == Report("succeeded", "Request was successfully completed")


def test_documented_capture_success_reads_the_lead_id_from_the_message_related_id() -> None:
    report = read_status(_json(CAPTURE_SUCCESS), "capture")
    assert report.kind == "succeeded"
    assert report.lead_id == "lead-9"  # RelatedId, not Id (the capture activity)
    assert report.reason == "Request was successfully completed"
    assert not report.mapping


def test_update_never_reports_a_lead_id_even_when_the_message_names_one() -> None:
    answer = _task("Success", "done", Message=json.dumps(CAPTURE_MESSAGE))
    assert read_status(answer, "update").lead_id is None


def test_create_custom_success_reads_the_related_lead_id() -> None:
    answer = _task("Success", "done", Message=json.dumps(CAPTURE_MESSAGE))
    assert read_status(answer, "lead_and_activity") == Report("succeeded", "done", lead_id="lead-9")


def test_capture_success_with_the_older_affected_rows_message_has_no_lead_id() -> None:
    answer = _task("Success", "done", Message='{"Status":"Success","Message":{"AffectedRows":1}}')
    assert read_status(answer, "capture") == Report("succeeded", "done")


@pytest.mark.parametrize("message", [None, "", "not json", "[1, 2]", '{"Message": "text"}'])
def test_capture_success_with_an_unreadable_message_still_succeeds(message: object) -> None:
    report = read_status(_task("Success", "done", Message=message), "capture")
    assert report == Report("succeeded", "done")


def test_capture_success_whose_message_has_a_lone_surrogate_still_succeeds() -> None:
    """A JSON ``\\ud800`` escape decodes to a str that cannot be UTF-8 encoded; the answer still
    says Success, so the read must not raise (``message.encode()`` must not be outside the try)."""
    answer = _task("Success", "done", Message='{"Status":"Success","Message":"\ud800"}')
    assert read_status(answer, "capture") == Report("succeeded", "done")


# -- pending and failed -------------------------------------------------------------------------


def test_in_queue_is_pending() -> None:
    assert read_status(_task("In-Queue"), "capture").kind == "pending"


@pytest.mark.parametrize("state", ["In-Process", "Retrying", "true", ""])
def test_an_undocumented_status_is_pending(state: str) -> None:
    report = read_status(_task(state, "working on it"), "update")
    assert report == Report("pending", "working on it")


@pytest.mark.parametrize("state", ["FAILURE", "ERROR", "Error", "Failed", " failure "])
def test_failure_and_error_fail_with_the_status_reason(state: str) -> None:
    reason = "A Lead with same Email already exists."
    report = read_status(_task(state, reason, ExceptionType="MXDuplicateEntryException"), "capture")
    assert report == Report("failed", reason, "MXDuplicateEntryException")


def test_a_failure_without_a_reason_gives_its_state_as_reason() -> None:
    assert read_status(_task("ERROR"), "capture") == Report("failed", "ERROR")


def test_exception_type_is_found_in_the_reason_text_when_not_given() -> None:
    reason = "MXDuplicateEntryException: Duplicate entry 'a@example.com' for key 'UQ_Prospect'"
    report = read_status(_task("FAILURE", reason), "capture")
    assert report.kind == "failed"
    assert report.exception_type == "MXDuplicateEntryException"
    assert report.reason == reason
    assert not report.mapping
    assert report.attribute is None


def test_the_given_exception_type_wins_over_one_named_in_the_reason() -> None:
    reason = "MXInvalidInputException: Invalid Input! Parameter Name: activity"
    answer = _task("FAILURE", reason, ExceptionType="MXInvalidEntityException")
    assert read_status(answer, "update").exception_type == "MXInvalidEntityException"


def test_a_failure_without_any_exception_type_has_none() -> None:
    report = read_status(_task("ERROR", "There was an error processing the request."), "capture")
    assert report == Report("failed", "There was an error processing the request.")


def test_a_long_reason_is_cut() -> None:
    report = read_status(_task("FAILURE", "x" * 5000), "capture")
    assert report.reason == "x" * 500


# -- mapping-class failures ---------------------------------------------------------------------


def test_unknown_attribute_is_a_mapping_failure_naming_the_attribute() -> None:
    answer = _task(
        "FAILURE",
        "Attribute 'mx_Ciyt' does not exist",
        ExceptionType="MXUnknownAttributeException",
        RequestBody=json.dumps(LEAD_BODY),
    )
    report = read_status(answer, "capture")
    assert report == Report(
        "failed",
        "Attribute 'mx_Ciyt' does not exist",
        "MXUnknownAttributeException",
        mapping=True,
        attribute="mx_Ciyt",
    )


def test_unknown_attribute_named_only_in_the_reason_text_is_a_mapping_failure() -> None:
    answer = _task("FAILURE", "MXUnknownAttributeException: Attribute 'mx_Ciyt' does not exist")
    report = read_status(answer, "capture")
    assert report.exception_type == "MXUnknownAttributeException"
    assert report.mapping
    assert report.attribute == "mx_Ciyt"


def test_invalid_activity_event_is_a_mapping_failure() -> None:
    answer = _task(
        "ERROR",
        "Event Code is invalid or empty",
        ExceptionType="MXInvalidActivityException",
        RequestBody=json.dumps(CREATE_CUSTOM_BODY),
    )
    report = read_status(answer, "lead_and_activity")
    assert report == Report(
        "failed", "Event Code is invalid or empty", "MXInvalidActivityException", mapping=True
    )


@pytest.mark.parametrize(
    "reason", ["Event Code is invalid or empty", "Invalid event code", "Unknown lead attribute"]
)
def test_mapping_wording_alone_makes_a_mapping_failure(reason: str) -> None:
    assert read_status(_task("FAILURE", reason), "lead_and_activity").mapping


@pytest.mark.parametrize(
    ("reason", "exception_type"),
    [
        ("A Lead with same Email already exists.", "MXDuplicateEntryException"),
        ("Duplicate entry 'a@example.com' for key 'UQ_Prospect'", "MXDuplicateEntryException"),
        ("Lead does not exist in the system", "MXInvalidEntityException"),
        ("'leadId' is mandatory for updating lead", "MXMandatoryAttributeMissingException"),
    ],
)
def test_record_level_failures_are_not_mapping_failures(reason: str, exception_type: str) -> None:
    report = read_status(_task("FAILURE", reason, ExceptionType=exception_type), "update")
    assert report == Report("failed", reason, exception_type)


def test_a_lead_does_not_exist_without_exception_type_is_not_a_mapping_failure() -> None:
    report = read_status(_task("FAILURE", "Lead does not exist in the system"), "update")
    assert report == Report("failed", "Lead does not exist in the system")


def test_an_attribute_nested_in_a_custom_field_set_is_found_in_the_body() -> None:
    # The reason quotes 'Owner' first: only the request body says the attribute is the CFS field.
    reason = "Field set 'Owner' has an unknown field: mx_CustomObject_9"
    answer = _task(
        "FAILURE",
        reason,
        ExceptionType="MXInvalidFieldException",
        RequestBody=json.dumps(CREATE_CUSTOM_BODY),
    )
    report = read_status(answer, "lead_and_activity")
    assert report.mapping
    assert report.attribute == "mx_CustomObject_9"


def test_an_activity_field_schema_name_is_found_in_the_body() -> None:
    reason = "Invalid field in 'Activity': mx_Custom_7"
    answer = _task(
        "FAILURE",
        reason,
        ExceptionType="MXInvalidFieldException",
        RequestBody=json.dumps(CREATE_CUSTOM_BODY),
    )
    assert read_status(answer, "lead_and_activity").attribute == "mx_Custom_7"


def test_a_body_name_that_prefixes_the_quoted_one_is_not_taken_for_it() -> None:
    body = [{"Attribute": "mx_City", "Value": "a"}, {"Attribute": "mx_City_Code", "Value": "b"}]
    answer = _task(
        "FAILURE",
        "Attribute 'mx_City_Code' does not exist",
        ExceptionType="MXUnknownAttributeException",
        RequestBody=json.dumps(body),
    )
    assert read_status(answer, "capture").attribute == "mx_City_Code"


@pytest.mark.parametrize(
    ("reason", "attribute"),
    [
        ("Attribute 'mx_Stat' does not exist", "mx_Stat"),
        ('Attribute "Ciyt" does not exist', "Ciyt"),
        ("Unknown attribute mx_Zone_Code in request", "mx_Zone_Code"),
    ],
)
def test_a_name_the_reason_quotes_that_is_not_in_the_body_is_the_attribute(
    reason: str, attribute: str
) -> None:
    answer = _task(
        "FAILURE",
        reason,
        ExceptionType="MXUnknownAttributeException",
        RequestBody=json.dumps(LEAD_BODY),
    )
    report = read_status(answer, "capture")
    assert report.mapping
    assert report.attribute == attribute


@pytest.mark.parametrize("body", [None, "", "not json", json.dumps({"Attribute": 5})])
def test_a_mapping_failure_with_an_unreadable_body_still_names_the_quoted_attribute(
    body: object,
) -> None:
    answer = _task(
        "FAILURE",
        "Attribute 'mx_Ciyt' does not exist",
        ExceptionType="MXUnknownAttributeException",
        RequestBody=body,
    )
    assert read_status(answer, "capture").attribute == "mx_Ciyt"


def test_a_mapping_failure_that_names_nothing_has_no_attribute() -> None:
    answer = _task("FAILURE", "invalid field", ExceptionType="MXInvalidFieldException")
    report = read_status(answer, "capture")
    assert report.mapping
    assert report.attribute is None


# -- key casing ---------------------------------------------------------------------------------


def test_lower_case_keys_still_read() -> None:
    body = {
        "requestid": "req-1",
        "taskstatus": {
            "status": "FAILURE",
            "statusreason": "Attribute 'mx_Ciyt' does not exist",
            "exceptiontype": "MXUnknownAttributeException",
            "requestbody": json.dumps(LEAD_BODY),
        },
    }
    report = read_status(_json(body), "capture")
    assert report == Report(
        "failed",
        "Attribute 'mx_Ciyt' does not exist",
        "MXUnknownAttributeException",
        mapping=True,
        attribute="mx_Ciyt",
    )


def test_mixed_case_keys_and_status_still_read_a_success() -> None:
    body = {
        "TASKSTATUS": {
            "STATUS": "SUCCESS",
            "Statusreason": "ok",
            "message": json.dumps({"Status": "Success", "Message": {"relatedid": "lead-3"}}),
        }
    }
    assert read_status(_json(body), "capture") == Report("succeeded", "ok", lead_id="lead-3")


# -- HTTP-level answers -------------------------------------------------------------------------


def test_404_is_missing() -> None:
    report = read_status(_json({"message": "RequestID not found"}, 404), "capture")
    assert report.kind == "missing"
    assert report.reason == "HTTP 404: RequestID not found"


def test_404_without_a_json_body_is_missing_with_the_body_as_reason() -> None:
    report = read_status(Answer(404, b"Not Found"), "update")
    assert report == Report("missing", "HTTP 404: Not Found")


def test_429_is_throttled() -> None:
    report = read_status(_json({"message": "Too Many Requests"}, 429), "capture")
    assert report == Report("throttled", "HTTP 429: Too Many Requests")


def test_429_without_a_body_is_throttled() -> None:
    assert read_status(Answer(429, b""), "capture").kind == "throttled"


@pytest.mark.parametrize("status", [200, 500])
def test_a_rate_limit_envelope_is_throttled_whatever_the_http_status(status: int) -> None:
    envelope = {
        "Status": "Error",
        "ExceptionType": "MXAPIRateLimitExceededException",
        "ExceptionMessage": "API calls exceeded the limit of 25 in 5 second(s)",
    }
    report = read_status(_json(envelope, status), "capture")
    assert report.kind == "throttled"
    assert "exceeded the limit of 25 in 5 second(s)" in report.reason


def test_a_lower_case_message_with_the_rate_limit_text_is_throttled() -> None:
    body = {"message": "API calls exceeded the limit of 25 in 5 second(s)"}
    assert read_status(_json(body), "update").kind == "throttled"


def test_no_answer_is_pending_with_the_error_as_reason() -> None:
    report = read_status(Answer(None, error="timeout"), "capture")
    assert report.kind == "pending"
    assert "timeout" in report.reason


def test_a_server_error_is_pending_even_with_a_task_status() -> None:
    report = read_status(_json(UPDATE_SUCCESS, 500), "update")
    assert report.kind == "pending"
    assert report.reason.startswith("HTTP 500")


@pytest.mark.parametrize("status", [500, 502, 503, 403])
def test_other_http_errors_are_pending(status: int) -> None:
    report = read_status(Answer(status, b"<html>Bad Gateway</html>"), "capture")
    assert report == Report("pending", f"HTTP {status}: <html>Bad Gateway</html>")


@pytest.mark.parametrize(
    "body", [b"", b"<html>ok</html>", b"\xff\xfe\x00garbage", b"[]", b'"Success"', b"{}"]
)
def test_a_200_that_is_not_a_task_status_is_pending(body: bytes) -> None:
    assert read_status(Answer(200, body), "capture").kind == "pending"


def test_a_200_whose_task_status_is_not_an_object_is_pending() -> None:
    assert read_status(_json({"TaskStatus": "Success"}), "capture").kind == "pending"


# -- never raises -------------------------------------------------------------------------------

_SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
_JSON_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=12,
)
_TASK_KEYS = st.sampled_from(
    ["Status", "status", "StatusReason", "ExceptionType", "RequestBody", "Message", "TaskType"]
)
_TASK_VALUES = (
    _JSON_VALUES
    | st.sampled_from(["Success", "FAILURE", "ERROR", "In-Queue", "MXUnknownAttributeException"])
    | _JSON_VALUES.map(json.dumps)
)
_STATUSES = st.none() | st.sampled_from([200, 404, 429, 500]) | st.integers(100, 599)


@given(status=_STATUSES, body=st.binary(max_size=300), operation=st.sampled_from(OPERATIONS))
def test_read_status_never_raises_on_arbitrary_bytes(
    status: int | None, body: bytes, operation: Operation
) -> None:
    report = read_status(Answer(status, body, error="boom"), operation)
    assert report.kind in KINDS
    assert len(report.reason) <= 500


@given(
    status=_STATUSES,
    task=st.dictionaries(_TASK_KEYS, _TASK_VALUES, max_size=6),
    extra=st.dictionaries(st.sampled_from(["ExceptionMessage", "message", "RequestId"]), _SCALARS),
    operation=st.sampled_from(OPERATIONS),
)
def test_read_status_never_raises_on_arbitrary_task_statuses(
    status: int | None, task: dict[str, Any], extra: dict[str, Any], operation: Operation
) -> None:
    body = json.dumps({"TaskStatus": task} | extra).encode()
    report = read_status(Answer(status, body), operation)
    assert report.kind in KINDS
    assert not report.mapping or report.kind == "failed"
    assert report.attribute is None or report.mapping


# -- Metrics API --------------------------------------------------------------------------------


def test_documented_metrics_body_reads() -> None:
    body = {"PendingMessages": 1, "MaxDelayInSeconds": 0, "ProcessingRatePerMinute": 24.8}
    assert read_metrics(_json(body)) == Depth(1, 0.0, 24.8)


def test_metrics_rate_spelled_with_a_lower_case_r_reads() -> None:
    body = {"PendingMessages": 12000, "MaxDelayInSeconds": 720.5, "ProcessingratePerMinute": 3}
    assert read_metrics(_json(body)) == Depth(12000, 720.5, 3.0)


@pytest.mark.parametrize("rate", [None, "24.8", [1]])
def test_metrics_without_a_numeric_rate_has_no_rate(rate: object) -> None:
    body: dict[str, object] = {"PendingMessages": 4, "MaxDelayInSeconds": 9}
    if rate is not None:
        body["ProcessingRatePerMinute"] = rate
    assert read_metrics(_json(body)) == Depth(4, 9.0, None)


@pytest.mark.parametrize(
    "answer",
    [
        Answer(None, error="timeout"),
        _json({"PendingMessages": 1, "MaxDelayInSeconds": 0}, 500),
        _json({"PendingMessages": 1, "MaxDelayInSeconds": 0}, 429),
        _json({"MaxDelayInSeconds": 0, "ProcessingRatePerMinute": 1.0}),
        _json({"PendingMessages": 1, "ProcessingRatePerMinute": 1.0}),
        _json({"PendingMessages": "1", "MaxDelayInSeconds": 0}),
        _json([1, 2, 3]),
        Answer(200, b"not json"),
    ],
)
def test_metrics_that_are_no_such_answer_read_as_none(answer: Answer) -> None:
    assert read_metrics(answer) is None


# -- requests -----------------------------------------------------------------------------------


def test_status_request_is_a_get_on_the_status_host_with_the_request_id() -> None:
    request = status_request("/lead/status", "abc")
    assert request == Request(Endpoint("status", "GET", "/lead/status"), (("RequestID", "abc"),))
    assert request.body is None
    assert request.headers == ()


def test_metrics_request_is_a_get_on_the_status_host_without_parameters() -> None:
    request = metrics_request("/lead/capture/metrics")
    assert request == Request(Endpoint("status", "GET", "/lead/capture/metrics"))
    assert request.params == ()
    assert request.body is None


def test_capture_status_path_is_the_documented_one() -> None:
    assert STATUS_PATHS["capture"] == "/lead/status"
