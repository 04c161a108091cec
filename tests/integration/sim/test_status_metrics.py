"""Status and Metrics APIs over real HTTP: In-Queue → Success / FAILURE / ERROR, routes, metrics."""

from __future__ import annotations

import json

import pytest

from tests.integration.sim.lsq import (
    CAPTURE_BODY,
    CREATE_CUSTOM_BODY,
    UPDATE_BODY,
    Api,
    StartSim,
    activity_body,
)


def test_status_is_in_queue_then_success(start_sim: StartSim) -> None:
    """Before processing: In-Queue with the body as a string; after: Success and the sync
    response as a string in Message."""
    sim, api = start_sim(processing={"rate": 1000, "delay_s": 1.0})
    raw = b'[ {"Attribute": "EmailAddress",\r\n\t"Value": "a@x.io"} ]'
    request_id = api.accepted_id(api.submit("/lead/capture", None, raw=raw))
    queued = api.get("/lead/status", {"RequestID": request_id}).json()
    assert queued == {
        "RequestId": request_id,
        "TaskStatus": {
            "TaskType": "Lead Capture",
            "Status": "In-Queue",
            "StatusReason": None,
            "TaskCurrentStep": "In-Process-Queue",
            "TaskLastStep": "In-Process-Queue",
            "RequestBody": raw.decode(),
            "Message": None,
            "ExceptionType": None,
        },
    }
    done = api.wait_status(request_id)["TaskStatus"]
    store = sim.client.store()
    assert (done["Status"], done["StatusReason"], done["TaskCurrentStep"]) == (
        "Success",
        "Request was successfully completed",
        None,
    )
    assert json.loads(done["Message"]) == {
        "Status": "Success",
        "Message": {
            "Id": store.activities[0].id,
            "RelatedId": store.leads[0].id,
            "IsCreated": True,
        },
    }


def test_application_error_is_failure_with_the_reason(api: Api) -> None:
    """An MX error while processing: FAILURE, StatusReason = message, ExceptionType kept."""
    params = {"leadId": "no-such-lead"}
    request_id = api.accepted_id(api.submit("/lead/update", UPDATE_BODY, params=params))
    status = api.wait_status(request_id, "/lead/update/status")
    assert status["RequestID"] == request_id  # the Update page's spelling
    assert {k: status["TaskStatus"][k] for k in ("TaskType", "Status", "StatusReason")} == {
        "TaskType": "Lead Update",
        "Status": "FAILURE",
        "StatusReason": "Lead does not exist in the system",
    }
    assert (status["TaskStatus"]["ExceptionType"], status["TaskStatus"]["Message"]) == (
        "MXInvalidEntityException",
        None,
    )


def test_system_errors_are_retried_then_reported_as_error(start_sim: StartSim) -> None:
    """Injected system errors are retried on the (scaled) schedule, then ERROR."""
    sim, api = start_sim(
        processing={"rate": 1000, "error_rate": 1.0, "retry_schedule_scale": 0.00002}
    )
    request_id = api.accepted_id(api.submit("/lead/capture", CAPTURE_BODY))
    sim.client.wait_idle(timeout=10)
    status = api.get("/lead/status", {"RequestID": request_id}).json()["TaskStatus"]
    assert (status["Status"], status["StatusReason"]) == ("ERROR", "Unable to Connect to DB")
    assert sim.client.stats().accounts["account1"].queue.errored == 1
    assert sim.client.store().leads == ()


@pytest.mark.parametrize(
    ("path", "body", "params", "task_type"),
    [
        ("/lead/capture", CAPTURE_BODY, {}, "Lead Capture"),
        ("/lead/update", UPDATE_BODY, {"leadId": "L"}, "Lead Update"),
        ("/activity/create", activity_body("L"), {}, "Activity Create"),
        ("/activity/createcustom", CREATE_CUSTOM_BODY, {}, "Activity Create Custom"),
    ],
)
def test_each_operation_has_its_status_route(
    api: Api, path: str, body: object, params: dict[str, str], task_type: str
) -> None:
    """<submit path>/status and /lead/status both answer; another operation's route is 404."""
    request_id = api.accepted_id(api.submit(path, body, params=params))
    own = api.get(f"{path}/status", {"RequestID": request_id})
    shared = api.get("/lead/status", {"RequestID": request_id})
    other = "/activity/create" if path != "/activity/create" else "/lead/capture"
    assert own.json()["TaskStatus"]["TaskType"] == task_type
    assert shared.json() == own.json()
    assert api.get(f"{other}/status", {"RequestID": request_id}).status_code == 404


def test_unknown_request_id_is_404(api: Api) -> None:
    """An unknown RequestID → 404 with a JSON error."""
    response = api.get("/lead/status", {"RequestID": "nope"})
    assert (response.status_code, response.json()) == (
        404,
        {"message": "No request found with RequestID nope"},
    )


def test_status_without_request_id_is_400(api: Api) -> None:
    """The RequestID parameter is required."""
    assert api.get("/lead/status").status_code == 400


def test_status_needs_the_x_api_key_only(api: Api) -> None:
    """Status works without accessKey/secretKey but not without x-api-key."""
    request_id = api.accepted_id(api.submit("/lead/capture", CAPTURE_BODY))
    bare = api.http.get("/lead/status", params={"RequestID": request_id})
    assert bare.status_code == 403
    assert api.get("/lead/status", {"RequestID": request_id}).status_code == 200


def test_status_is_per_account(start_sim: StartSim) -> None:
    """Another account's x-api-key does not see the request (404)."""
    _, api = start_sim(
        accounts=[
            {"access_key": "a1", "secret_key": "s1", "api_key": "k1"},
            {"access_key": "a2", "secret_key": "s2", "api_key": "k2"},
        ]
    )
    request_id = api.accepted_id(api.submit("/lead/capture", CAPTURE_BODY))
    other = api.http.get(
        "/lead/status", params={"RequestID": request_id}, headers={"x-api-key": "k2"}
    )
    assert other.status_code == 404


def test_metrics_report_pending_delay_and_rate(start_sim: StartSim) -> None:
    """PendingMessages and MaxDelayInSeconds while queued; ProcessingRatePerMinute after."""
    sim, api = start_sim(processing={"rate": 1000, "delay_s": 1.0})
    for _ in range(3):
        api.accepted_id(api.submit("/lead/capture", CAPTURE_BODY))
    api.accepted_id(api.submit("/lead/update", UPDATE_BODY, params={"leadId": "L"}))
    queued = api.get("/lead/capture/metrics").json()
    assert queued["PendingMessages"] == 3
    assert queued["MaxDelayInSeconds"] == 1  # the newest is due within 1 s, rounded up
    assert api.get("/lead/update/metrics").json()["PendingMessages"] == 1
    sim.client.wait_idle()
    done = api.get("/lead/capture/metrics").json()
    assert done == {"PendingMessages": 0, "MaxDelayInSeconds": 0, "ProcessingRatePerMinute": 0.3}
    assert api.get("/activity/create/metrics").json()["ProcessingRatePerMinute"] == 0.0


def test_processing_rate_bounds_how_fast_the_queue_drains(start_sim: StartSim) -> None:
    """At 1 task/s, five submissions cannot all be processed straight away."""
    _, api = start_sim(processing={"rate": 1.0})
    for _ in range(5):
        api.accepted_id(api.submit("/lead/capture", CAPTURE_BODY))
    assert api.get("/lead/capture/metrics").json()["PendingMessages"] >= 2


def test_lost_requests_stay_in_queue(start_sim: StartSim) -> None:
    """--lost-rate 1: accepted, never processed; status stays In-Queue, nothing pending."""
    sim, api = start_sim(processing={"rate": 1000, "lost_rate": 1.0})
    request_id = api.accepted_id(api.submit("/lead/capture", CAPTURE_BODY))
    sim.client.wait_idle()
    status = api.get("/lead/status", {"RequestID": request_id}).json()
    assert status["TaskStatus"]["Status"] == "In-Queue"
    assert sim.client.stats().accounts["account1"].queue.lost == 1
