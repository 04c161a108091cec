"""Contract of the sync (v2) endpoints: responses, header auth, MX errors in both styles."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.integration.sim.lsq import CREATE_CUSTOM_BODY, Api, StartSim, activity_body

if TYPE_CHECKING:
    from lsq_sim import Simulator

LEADS = "/v2/LeadManagement.svc"
ACTIVITIES = "/v2/ProspectActivity.svc"


def _create(api: Api, email: str = "a@x.io") -> str:
    body = [{"Attribute": "EmailAddress", "Value": email}]
    return str(api.sync(f"{LEADS}/Lead.Create", body).json()["Message"]["Id"])


def test_lead_capture_returns_activity_id_lead_id_and_is_created(sim: Simulator, api: Api) -> None:
    """Lead.Capture: Message.Id is the capture activity, RelatedId the lead, IsCreated."""
    body = [{"Attribute": "EmailAddress", "Value": "a@x.io"}]
    first = api.sync(f"{LEADS}/Lead.Capture", body).json()
    again = api.sync(f"{LEADS}/Lead.Capture", body).json()
    store = sim.client.store()
    (lead,) = store.leads
    assert first == {
        "Status": "Success",
        "Message": {"Id": store.activities[0].id, "RelatedId": lead.id, "IsCreated": True},
    }
    assert again["Message"]["IsCreated"] is False
    assert again["Message"]["RelatedId"] == lead.id


def test_lead_capture_applies_lead_update_behavior(sim: Simulator, api: Api) -> None:
    """?LeadUpdateBehavior=DoNotUpdate leaves a matching lead unchanged."""
    api.sync(f"{LEADS}/Lead.Capture", [{"Attribute": "EmailAddress", "Value": "a@x.io"}])
    body = [
        {"Attribute": "EmailAddress", "Value": "a@x.io"},
        {"Attribute": "mx_City", "Value": "X"},
    ]
    response = api.sync(f"{LEADS}/Lead.Capture", body, params={"LeadUpdateBehavior": "DoNotUpdate"})
    assert response.json()["Status"] == "Success"
    assert sim.client.store().leads[0].fields == {"EmailAddress": "a@x.io"}


def test_lead_create_returns_the_lead_id(sim: Simulator, api: Api) -> None:
    """Lead.Create: {"Status": "Success", "Message": {"Id": <lead id>}}."""
    response = api.sync(f"{LEADS}/Lead.Create", [{"Attribute": "FirstName", "Value": "A"}])
    (lead,) = sim.client.store().leads
    assert (response.status_code, response.json()) == (
        200,
        {"Status": "Success", "Message": {"Id": lead.id}},
    )


def test_lead_update_returns_affected_rows(sim: Simulator, api: Api) -> None:
    """Lead.Update: {"Status": "Success", "Message": {"AffectedRows": 1}}; the field changes."""
    lead_id = _create(api)
    body = [{"Attribute": "mx_City", "Value": "Goa"}]
    response = api.sync(f"{LEADS}/Lead.Update", body, params={"leadId": lead_id})
    assert response.json() == {"Status": "Success", "Message": {"AffectedRows": 1}}
    assert sim.client.store().lead(lead_id).fields["mx_City"] == "Goa"


def test_create_custom_returns_activity_and_lead_ids(sim: Simulator, api: Api) -> None:
    """CreateCustom: Message.Id is the activity, Message.RelatedId the lead."""
    response = api.sync(f"{ACTIVITIES}/CreateCustom", CREATE_CUSTOM_BODY)
    store = sim.client.store()
    assert response.json() == {
        "Status": "Success",
        "Message": {"Id": store.activities[0].id, "RelatedId": store.leads[0].id},
    }


def test_activity_create_returns_the_activity_id(sim: Simulator, api: Api) -> None:
    """ProspectActivity.svc/Create: {"Status": "Success", "Message": {"Id": <activity id>}}."""
    lead_id = _create(api)
    response = api.sync(f"{ACTIVITIES}/Create", activity_body(lead_id))
    (activity,) = sim.client.store().activities
    assert response.json() == {"Status": "Success", "Message": {"Id": activity.id}}
    assert (activity.lead_id, activity.event, activity.when) == (
        lead_id,
        201,
        "2015-10-11 12:13:44",
    )


def test_keys_in_x_lsq_headers_are_accepted(api: Api) -> None:
    """Sync calls may carry the keys as x-LSQ-AccessKey / x-LSQ-SecretKey; no x-api-key needed."""
    response = api.http.post(
        f"{LEADS}/Lead.Create",
        headers={
            "x-LSQ-AccessKey": api.account.access_key,
            "x-LSQ-SecretKey": api.account.secret_key,
            "content-type": "application/json",
        },
        json=[{"Attribute": "Phone", "Value": "1"}],
    )
    assert (response.status_code, response.json()["Status"]) == (200, "Success")


def test_bad_keys_are_401(api: Api) -> None:
    """Wrong keys on a sync endpoint → 401 MXInvalidUserDetailsException."""
    response = api.http.post(
        f"{LEADS}/Lead.Create",
        params={"accessKey": api.account.access_key, "secretKey": "nope"},
        json=[{"Attribute": "Phone", "Value": "1"}],
    )
    assert response.status_code == 401
    assert response.json()["ExceptionType"] == "MXInvalidUserDetailsException"


@pytest.mark.parametrize(("style", "status"), [("http500", 500), ("http200", 200)])
def test_mx_errors_in_each_error_style(start_sim: StartSim, style: str, status: int) -> None:
    """A duplicate Lead.Create answers the MX envelope with HTTP 500 or 200, per style."""
    _, api = start_sim(error_style=style)
    _create(api)
    response = api.sync(f"{LEADS}/Lead.Create", [{"Attribute": "EmailAddress", "Value": "A@x.io"}])
    assert (response.status_code, response.json()) == (
        status,
        {
            "Status": "Error",
            "ExceptionType": "MXDuplicateEntryException",
            "ExceptionMessage": "A Lead with same Email already exists.",
        },
    )


def test_update_of_unknown_lead_is_invalid_entity(api: Api) -> None:
    """Lead.Update on an unknown leadId → MXInvalidEntityException."""
    response = api.sync(f"{LEADS}/Lead.Update", [], params={"leadId": "nope"})
    assert (response.status_code, response.json()["ExceptionMessage"]) == (
        500,
        "Lead does not exist in the system",
    )


def test_unknown_event_code_with_configured_list(start_sim: StartSim) -> None:
    """--activity-events: other codes → MXInvalidActivityException."""
    _, api = start_sim(store={"activity_events": [201]})
    lead_id = _create(api)
    response = api.sync(f"{ACTIVITIES}/Create", activity_body(lead_id, event=999))
    assert response.json()["ExceptionType"] == "MXInvalidActivityException"
