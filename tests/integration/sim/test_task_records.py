"""Over real HTTP: failures injected after acceptance (seen only in the Status API), status records
kept for a time, ``/_sim/tasks``, the counts of status and metrics calls, and metrics under load."""

from __future__ import annotations

import time
from typing import Any

import pytest

from lsq_sim import SimClientError, SimConfig, SimProcess
from tests.integration.sim.lsq import ACCEPTED, CAPTURE_BODY, Api, StartSim, lead_row


def test_an_injected_failure_is_accepted_then_failure_in_the_status_api(
    start_sim: StartSim,
) -> None:
    """The submission gets the usual accepted answer; the Status API then reports FAILURE with
    the MX message as StatusReason and its type, no Message; nothing is stored."""
    sim, api = start_sim(processing={"failure_rate": 1.0, "failure_kinds": ["duplicate"]})
    accepted = api.submit("/lead/capture", CAPTURE_BODY)
    request_id = api.accepted_id(accepted)
    assert accepted.json() == {"Status": ACCEPTED, "RequestID": request_id}
    status = api.wait_status(request_id)
    assert status["TaskStatus"] | {"RequestBody": None} == {
        "TaskType": "Lead Capture",
        "Status": "FAILURE",
        "StatusReason": "A Lead with same Email already exists.",
        "TaskCurrentStep": None,
        "TaskLastStep": "In-Process-Queue",
        "RequestBody": None,
        "Message": None,
        "ExceptionType": "MXDuplicateEntryException",
    }
    assert sim.client.stats().accounts["account1"].queue.failed == 1
    assert sim.client.store().leads == ()
    assert sim.client.tasks(status="FAILURE") == [
        {
            "request_id": request_id,
            "status": "FAILURE",
            "reason": "A Lead with same Email already exists.",
            "exception_type": "MXDuplicateEntryException",
            "operation": "capture",
        }
    ]


def _outcomes(start_sim: StartSim, count: int) -> tuple[list[tuple[Any, ...]], int, int]:
    sim, api = start_sim(processing={"rate": 1000, "failure_rate": 0.3}, seed=11)
    for i in range(count):
        api.accepted_id(api.submit("/lead/capture", lead_row(f"{i}@x.io", mx_City="Pune")))
    sim.client.wait_idle()
    tasks = sim.client.tasks()
    outcomes = [(t["status"], t["exception_type"], t["reason"]) for t in tasks]
    queue = sim.client.stats().accounts["account1"].queue
    assert (queue.failed, queue.succeeded) == (
        sum(o[0] == "FAILURE" for o in outcomes),
        sum(o[0] == "Success" for o in outcomes),
    )
    assert len(sim.client.store().leads) == queue.succeeded
    return outcomes, queue.failed, queue.succeeded


def test_injected_failures_follow_the_rate_every_kind_and_the_seed(start_sim: StartSim) -> None:
    """At 0.3 some of 60 fail, with each of the three kinds (an unknown attribute names one the
    request set); the same seed gives the same outcomes."""
    outcomes, failed, succeeded = _outcomes(start_sim, 60)
    assert (failed + succeeded, 8 <= failed <= 30) == (60, True)
    assert {o[1] for o in outcomes if o[0] == "FAILURE"} == {
        "MXDuplicateEntryException",
        "MXInvalidEntityException",
        "MXUnknownAttributeException",
    }
    reasons = {o[2] for o in outcomes if o[1] == "MXUnknownAttributeException"}
    assert reasons <= {
        "Attribute 'EmailAddress' does not exist",
        "Attribute 'mx_City' does not exist",
    }
    assert _outcomes(start_sim, 60)[0] == outcomes


def test_the_stores_unknown_attribute_error_is_a_failure_naming_it(start_sim: StartSim) -> None:
    """Not injected: with store.lead_attributes set, a request with another attribute ends in
    FAILURE, MXUnknownAttributeException, the reason naming the attribute."""
    sim, api = start_sim(store={"lead_attributes": ["EmailAddress", "FirstName"]})
    body = lead_row("a@x.io", FirstName="A", mx_Ciyt="Pune")
    request_id = api.accepted_id(api.submit("/lead/capture", body))
    status = api.wait_status(request_id, "/lead/capture/status")["TaskStatus"]
    assert (status["Status"], status["ExceptionType"], status["StatusReason"]) == (
        "FAILURE",
        "MXUnknownAttributeException",
        "Attribute 'mx_Ciyt' does not exist",
    )
    assert status["Message"] is None
    assert sim.client.store().leads == ()


def test_finished_records_are_forgotten_after_the_ttl(start_sim: StartSim) -> None:
    """task_record_ttl_s: a finished task's status answers as an unknown RequestID (404) once
    the TTL has passed, and /_sim/tasks no longer lists it."""
    sim, api = start_sim(task_record_ttl_s=0.3)
    request_id = api.accepted_id(api.submit("/lead/capture", CAPTURE_BODY))
    assert api.wait_status(request_id)["TaskStatus"]["Status"] == "Success"
    assert [t["request_id"] for t in sim.client.tasks()] == [request_id]
    time.sleep(0.45)
    gone = api.get("/lead/status", {"RequestID": request_id})
    assert (gone.status_code, gone.json()) == (
        404,
        {"message": f"No request found with RequestID {request_id}"},
    )
    assert sim.client.tasks() == []


def test_tasks_are_listed_per_account_and_by_status(start_sim: StartSim) -> None:
    """/_sim/tasks: the first account by default, ?account= another, ?status= filters; an
    unknown status is a 400, an unknown account a 404."""
    sim, api = start_sim(
        accounts=[
            {"access_key": "a1", "secret_key": "s1", "api_key": "k1"},
            {"name": "shop", "access_key": "a2", "secret_key": "s2", "api_key": "k2"},
        ],
        processing={"rate": 1000, "delay_s": 30},
    )
    first = api.accepted_id(api.submit("/lead/capture", CAPTURE_BODY))
    update = api.accepted_id(api.submit("/lead/update", CAPTURE_BODY, params={"leadId": "L"}))
    assert [t["request_id"] for t in sim.client.tasks()] == [first, update]
    assert {t["status"] for t in sim.client.tasks()} == {"In-Queue"}
    assert [t["operation"] for t in sim.client.tasks(status="In-Queue")] == ["capture", "update"]
    assert sim.client.tasks(status="Success") == []
    assert sim.client.tasks(account="shop") == []
    with pytest.raises(SimClientError, match="status must be one of In-Queue, Success"):
        sim.client.tasks(status="done")
    with pytest.raises(SimClientError, match="no account named 'nobody'"):
        sim.client.tasks(account="nobody")


def test_status_and_metrics_calls_are_counted(sim_api: tuple[Any, Api]) -> None:
    """/lead/status, <op>/status (a 404 and a 400 included) and <op>/metrics are counted apart;
    submissions and calls without a valid x-api-key are not."""
    sim, api = sim_api
    request_id = api.accepted_id(api.submit("/lead/capture", CAPTURE_BODY))
    answers = [
        api.get("/lead/status", {"RequestID": request_id}).status_code,
        api.get("/lead/capture/status", {"RequestID": request_id}).status_code,
        api.get("/activity/create/status", {"RequestID": request_id}).status_code,
        api.get("/lead/update/status").status_code,
        api.get("/lead/capture/metrics").status_code,
        api.get("/activity/createcustom/metrics").status_code,
        api.http.get("/lead/status", params={"RequestID": request_id}).status_code,
    ]
    assert answers == [200, 200, 404, 400, 200, 200, 403]
    stats = sim.client.stats().accounts["account1"]
    assert (stats.status_calls, stats.metrics_calls, stats.calls) == (4, 2, 7)
    sim.client.reset()
    reset = sim.client.stats().accounts["account1"]
    assert (reset.status_calls, reset.metrics_calls) == (0, 0)


def test_metrics_under_load_grow_then_fall_back_to_zero(start_sim: StartSim) -> None:
    """At 5 tasks/s, 15 quick submissions: PendingMessages grows and MaxDelayInSeconds > 0; both
    shrink as the queue drains, and are 0 once every task is processed."""
    sim, api = start_sim(processing={"rate": 5.0})
    for i in range(15):
        api.accepted_id(api.submit("/lead/capture", lead_row(f"{i}@x.io")))
    samples = []
    while True:
        metrics = api.get("/lead/capture/metrics").json()
        samples.append((metrics["PendingMessages"], metrics["MaxDelayInSeconds"]))
        if not metrics["PendingMessages"]:
            break
        time.sleep(0.25)
    pending, delay = samples[0]
    assert pending >= 8  # at most ~1 s of the 3 s it takes to drain has passed
    assert delay >= 2
    assert samples == sorted(samples, reverse=True)
    assert samples[-1] == (0, 0)
    sim.client.wait_idle()
    assert api.get("/lead/capture/metrics").json() == {
        "PendingMessages": 0,
        "MaxDelayInSeconds": 0,
        "ProcessingRatePerMinute": 1.5,
    }


def test_lsq_sim_process_takes_the_failure_and_ttl_options() -> None:
    """--failure-rate, --failure-kinds and --task-record-ttl on a real lsq-sim process (over the
    config file SimProcess writes, whose task_record_ttl_s is null)."""
    args = ["--failure-rate", "1", "--failure-kinds", "not_found", "--task-record-ttl", "0.5"]
    with SimProcess(SimConfig(seed=3), args=args) as sim:
        config = sim.client.config()
        assert (config.processing.failure_rate, config.processing.failure_kinds) == (
            1.0,
            ("not_found",),
        )
        assert config.task_record_ttl_s == 0.5
        api = Api(sim.url, sim.client.account())
        try:
            request_id = api.accepted_id(api.submit("/lead/capture", CAPTURE_BODY))
            status = api.wait_status(request_id)["TaskStatus"]
            assert (status["Status"], status["StatusReason"], status["ExceptionType"]) == (
                "FAILURE",
                "Lead does not exist in the system",
                "MXInvalidEntityException",
            )
            assert [t["request_id"] for t in sim.client.tasks(status="FAILURE")] == [request_id]
            time.sleep(0.65)
            assert api.get("/lead/status", {"RequestID": request_id}).status_code == 404
        finally:
            api.close()
