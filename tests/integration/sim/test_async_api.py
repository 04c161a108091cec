"""Contract of the async host over real HTTP: submissions, auth, validation, unknown paths."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import pytest

from lsq_sim import AnswerClass
from tests.integration.sim.lsq import (
    CAPTURE_BODY,
    CREATE_CUSTOM_BODY,
    UPDATE_BODY,
    Api,
    StartSim,
    activity_body,
)

if TYPE_CHECKING:
    from lsq_sim import Simulator

MX_INVALID_USER = {
    "Status": "Error",
    "ExceptionType": "MXInvalidUserDetailsException",
    "ExceptionMessage": "Invalid User Details",
}


@pytest.mark.parametrize(
    ("path", "body", "params"),
    [
        ("/lead/capture", CAPTURE_BODY, {}),
        ("/lead/update", UPDATE_BODY, {"leadId": "L-1", "postUpdatedLead": "false"}),
        ("/activity/create", activity_body("L-1"), {}),
        ("/activity/createcustom", CREATE_CUSTOM_BODY, {}),
    ],
)
def test_each_async_endpoint_accepts_with_a_request_id(
    sim: Simulator, api: Api, path: str, body: object, params: dict[str, str]
) -> None:
    """HTTP 200 with the documented Status text and a uuid4 RequestID, logged as accepted."""
    request_id = api.accepted_id(api.submit(path, body, params=params))
    assert uuid.UUID(request_id).version == 4
    (logged,) = sim.client.requests()
    assert (logged.path, logged.answer, logged.request_id) == (path, "accepted", request_id)


def test_missing_x_api_key_is_forbidden(api: Api) -> None:
    """No x-api-key: the gateway answers 403 {"message": "Forbidden"}."""
    response = api.submit("/lead/capture", CAPTURE_BODY, api_key=None)
    assert (response.status_code, response.json()) == (403, {"message": "Forbidden"})


def test_wrong_x_api_key_is_forbidden(api: Api) -> None:
    """A wrong x-api-key is rejected the same way, even with the right query keys."""
    response = api.submit("/lead/capture", CAPTURE_BODY, api_key="wrong")
    assert (response.status_code, response.json()) == (403, {"message": "Forbidden"})


def test_x_api_key_rejection_status_is_configurable(start_sim: StartSim) -> None:
    """--api-key-status 401 answers 401 {"message": "Unauthorized"}."""
    _, api = start_sim(api_key_status=401)
    response = api.submit("/lead/capture", CAPTURE_BODY, api_key=None)
    assert (response.status_code, response.json()) == (401, {"message": "Unauthorized"})


@pytest.mark.parametrize(
    "keys",
    [
        {},
        {"accessKey": "sim-access-key"},
        {"accessKey": "sim-access-key", "secretKey": "wrong"},
        {"accessKey": "wrong", "secretKey": "sim-secret-key"},
    ],
    ids=["none", "no-secret", "wrong-secret", "wrong-access"],
)
def test_missing_or_wrong_access_keys_are_401(api: Api, keys: dict[str, str]) -> None:
    """With a valid x-api-key, missing or wrong accessKey/secretKey → 401 MX body."""
    response = api.submit("/lead/capture", CAPTURE_BODY, keys=keys)
    assert (response.status_code, response.json()) == (401, MX_INVALID_USER)


def test_key_parameter_names_are_case_insensitive(api: Api) -> None:
    """The docs write both accessKey and accesskey: either is accepted."""
    keys = {"accesskey": api.account.access_key, "SECRETKEY": api.account.secret_key}
    api.accepted_id(api.submit("/lead/capture", CAPTURE_BODY, keys=keys))


def test_keys_of_another_account_are_401(start_sim: StartSim) -> None:
    """The query keys must belong to the account of the x-api-key."""
    _, api = start_sim(
        accounts=[
            {"access_key": "a1", "secret_key": "s1", "api_key": "k1"},
            {"access_key": "a2", "secret_key": "s2", "api_key": "k2"},
        ]
    )
    response = api.submit(
        "/lead/capture", CAPTURE_BODY, keys={"accessKey": "a2", "secretKey": "s2"}
    )
    assert response.status_code == 401


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
def test_content_type_must_be_json(api: Api, content_type: str) -> None:
    """400 when the Content-Type is not application/json, naming it."""
    response = api.submit("/lead/capture", CAPTURE_BODY, content_type=content_type)
    assert response.status_code == 400
    assert content_type in response.json()["ExceptionMessage"]


def test_json_with_charset_is_accepted(api: Api) -> None:
    """application/json; charset=utf-8 is fine."""
    api.accepted_id(
        api.submit("/lead/capture", CAPTURE_BODY, content_type="application/json; charset=utf-8")
    )


def test_body_that_is_not_json_is_400(api: Api) -> None:
    """Unparseable JSON → 400."""
    response = api.submit("/lead/capture", None, raw=b"[{Attribute: 'x'}")
    assert response.status_code == 400
    assert response.json()["ExceptionMessage"].startswith("Invalid request: body is not valid JSON")


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("/lead/capture", [{"Attribute": "Phone", "Value": 9}], "body[0].Value: expected a string"),
        (
            "/activity/createcustom",
            {**CREATE_CUSTOM_BODY, "Activity": {"ActivityEvent": "105"}},
            "Activity.ActivityEvent: expected an integer",
        ),
        ("/activity/create", {"ActivityEvent": 1}, "RelatedProspectId: required"),
    ],
)
def test_malformed_body_is_400_naming_the_problem(
    api: Api, path: str, body: Any, message: str
) -> None:
    """A body not in the documented shape → 400 whose message names the path."""
    response = api.submit(path, body)
    assert response.status_code == 400
    assert response.json() == {
        "Status": "Error",
        "ExceptionType": "MXInvalidInputException",
        "ExceptionMessage": f"Invalid request: {message}",
    }


@pytest.mark.parametrize(("method", "path"), [("POST", "/lead/create"), ("GET", "/lead/capture")])
def test_unknown_path_or_method_is_404(sim: Simulator, api: Api, method: str, path: str) -> None:
    """404 with a JSON body saying the API was not found."""
    response = api.http.request(method, path, params=api.keys(), headers={"x-api-key": "k"})
    assert response.status_code == 404
    assert response.json() == {"message": f"API not found: {method} {path}"}
    assert sim.client.requests()[0].answer is AnswerClass.NOT_FOUND


def test_update_without_lead_id_is_an_mx_error_at_submission(api: Api) -> None:
    """/lead/update without leadId: MXMandatoryAttributeMissingException (HTTP 500)."""
    response = api.submit("/lead/update", UPDATE_BODY)
    assert response.status_code == 500
    assert response.json() == {
        "Status": "Error",
        "ExceptionType": "MXMandatoryAttributeMissingException",
        "ExceptionMessage": "'leadId' is mandatory for updating lead",
    }


@pytest.mark.parametrize("flag", ["postUpdatedLead", "postUpdatedlead"])
def test_update_accepts_both_spellings_of_post_updated_lead(api: Api, flag: str) -> None:
    """Both documented spellings of postUpdatedLead are accepted."""
    api.accepted_id(api.submit("/lead/update", UPDATE_BODY, params={"leadId": "L", flag: "true"}))


def test_unknown_lead_update_behavior_is_400(api: Api) -> None:
    """An unknown LeadUpdateBehavior is rejected at submission."""
    params = {"LeadUpdateBehavior": "Merge"}
    response = api.submit("/lead/capture", CAPTURE_BODY, params=params)
    assert response.status_code == 400
    assert "LeadUpdateBehavior must be one of" in response.json()["ExceptionMessage"]


def test_accepted_requests_are_applied_with_the_sync_semantics(sim: Simulator, api: Api) -> None:
    """Capture then CreateCustom (same email) end as one lead with two activities and the CFS."""
    api.accepted_id(api.submit("/lead/capture", CAPTURE_BODY))
    custom = {**CREATE_CUSTOM_BODY, "LeadDetails": [
        {"Attribute": "EmailAddress", "Value": "bret.lee@australia.com"},
        *CREATE_CUSTOM_BODY["LeadDetails"][1:],
    ]}  # fmt: skip
    api.accepted_id(api.submit("/activity/createcustom", custom))
    sim.client.wait_idle()
    store = sim.client.store()
    (lead,) = store.leads
    assert lead.fields["mx_City"] == "Bangalore"
    assert lead.sets == {"mx_KYC": {"Status": "Pending", "mx_CustomObject_1": "XYZ12345.png"}}
    assert [a.event for a in store.activities_of(lead.id)] == [23, 105]
