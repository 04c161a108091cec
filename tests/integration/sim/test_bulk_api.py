"""Contract of the bulk endpoints over real HTTP: Lead/Bulk/CreateOrUpdate and
Bulk/CustomActivity/Add/ByLeadField (per-row results, whole-call 400s, the shared store), their
own rate budget, and fault rules on their paths."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx
import pytest

from lsq_sim import AnswerClass, FaultRule
from tests.integration.sim.lsq import BULK_ACTIVITIES, BULK_LEADS, Api, StartSim, lead_row

if TYPE_CHECKING:
    from lsq_sim import Simulator

BY_EMAIL = {"searchBy": "EmailAddress"}


def _item(email: str, event: object = 201, **more: Any) -> dict[str, Any]:
    return {"SearchByValue": email, "ActivityEvent": event, **more}


def _invalid(message: str) -> dict[str, str]:
    return {
        "Status": "Error",
        "ExceptionType": "MXInvalidInputException",
        "ExceptionMessage": f"Invalid request: {message}",
    }


def test_25_rows_are_all_applied_in_order(sim: Simulator, api: Api) -> None:
    """A full call: 25 results with RowNumber 1..25, every lead in the store, the body logged."""
    rows = [lead_row(f"u{i}@x.io", FirstName=f"U{i}") for i in range(25)]
    response = api.sync(BULK_LEADS, rows)
    store = sim.client.store()
    assert response.status_code == 200
    assert response.json() == [
        {
            "RowNumber": i + 1,
            "LeadId": lead.id,
            "LeadCreated": True,
            "LeadUpdated": False,
            "AffectedRows": 1,
        }
        for i, lead in enumerate(store.leads)
    ]
    emails = [lead.fields["EmailAddress"] for lead in store.leads]
    assert emails == [f"u{i}@x.io" for i in range(25)]
    assert store.activities == ()  # like Lead.CreateOrUpdate: no "Lead Capture" activity
    logged = sim.client.requests()[-1]
    assert (logged.path, logged.json_body(), logged.answer) == (BULK_LEADS, rows, "success")


def test_26_rows_are_a_400_and_apply_nothing(sim: Simulator, api: Api) -> None:
    """More than 25 rows: HTTP 400 MXInvalidInputException, the store untouched."""
    response = api.sync(BULK_LEADS, [lead_row(f"u{i}@x.io") for i in range(26)])
    assert (response.status_code, response.json()) == (
        400,
        _invalid("at most 25 leads per call, got 26"),
    )
    assert sim.client.store().leads == ()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"Attribute": "EmailAddress", "Value": "a@x.io"}, "body: expected an array"),
        ([], "no leads: send 1 to 25 per call"),
        ([lead_row("a@x.io"), {"Attribute": "Phone"}], "body[1]: expected an array"),
        ([lead_row("a@x.io"), [{"Attribute": "Phone", "Value": 1}]], "body[1][0].Value"),
    ],
)
def test_malformed_bulk_leads_are_a_400(
    sim: Simulator, api: Api, body: object, message: str
) -> None:
    """Not an array, no rows, or a row that is not an Attribute/Value list: 400, none applied."""
    response = api.sync(BULK_LEADS, body)
    assert response.status_code == 400
    assert response.json()["ExceptionMessage"].startswith(f"Invalid request: {message}")
    assert sim.client.store().leads == ()


def test_a_failed_row_changes_nothing_and_the_others_apply(start_sim: StartSim) -> None:
    """An unknown attribute (row 2) and a duplicate (row 5: SearchBy Phone finds lead b, whose
    new EmailAddress is lead a's) fail alone; row 3 updates the lead row 1 created (default
    Lead.Capture matching on EmailAddress, case-insensitive)."""
    sim, api = start_sim(store={"lead_attributes": ["EmailAddress", "Phone", "mx_City"]})
    rows = [
        lead_row("a@x.io", Phone="1"),
        lead_row("b@x.io", mx_Town="X"),
        lead_row("A@X.io", mx_City="Goa"),
        lead_row("b@x.io", Phone="2"),
        lead_row("a@x.io", Phone="2", SearchBy="Phone"),
    ]
    results = api.sync(BULK_LEADS, rows).json()
    a, b = sim.client.store().leads
    assert results == [
        {"RowNumber": 1, "LeadId": a.id, "LeadCreated": True, "LeadUpdated": False,
         "AffectedRows": 1},
        {"RowNumber": 2, "LeadId": None, "LeadCreated": False, "LeadUpdated": False,
         "AffectedRows": 0, "ExceptionType": "MXUnknownAttributeException",
         "ExceptionMessage": "Attribute 'mx_Town' does not exist"},
        {"RowNumber": 3, "LeadId": a.id, "LeadCreated": False, "LeadUpdated": True,
         "AffectedRows": 1},
        {"RowNumber": 4, "LeadId": b.id, "LeadCreated": True, "LeadUpdated": False,
         "AffectedRows": 1},
        {"RowNumber": 5, "LeadId": None, "LeadCreated": False, "LeadUpdated": False,
         "AffectedRows": 0, "ExceptionType": "MXDuplicateEntryException",
         "ExceptionMessage": "A Lead with same Email already exists."},
    ]  # fmt: skip
    assert a.fields == {"EmailAddress": "A@X.io", "Phone": "1", "mx_City": "Goa"}
    assert b.fields == {"EmailAddress": "b@x.io", "Phone": "2"}
    assert sim.client.store().activities == ()


def test_bulk_leads_accept_header_keys_and_reject_bad_ones(api: Api) -> None:
    """Auth as on the other /v2 paths: x-LSQ-* headers work; a wrong secret is a 401."""
    headers = {
        "x-LSQ-AccessKey": api.account.access_key,
        "x-LSQ-SecretKey": api.account.secret_key,
    }
    response = api.http.post(BULK_LEADS, headers=headers, json=[lead_row("a@x.io")])
    assert (response.status_code, response.json()[0]["LeadCreated"]) == (200, True)
    headers["x-LSQ-SecretKey"] = "nope"
    response = api.http.post(BULK_LEADS, headers=headers, json=[lead_row("b@x.io")])
    assert response.status_code == 401


def test_bulk_activities_post_on_found_leads_and_fail_rows_alone(start_sim: StartSim) -> None:
    """Rows in order on the shared store: a known lead (email case-insensitive) gets its
    activity; an unknown lead is a row error and is not created; an invalid event and a bad
    date are row errors."""
    sim, api = start_sim(store={"activity_events": [201]})
    (created,) = api.sync(BULK_LEADS, [lead_row("a@x.io")]).json()
    fields = [{"SchemaName": "mx_Custom_1", "Value": "v"}]
    items = [
        _item("A@x.io", ActivityNote="n", ActivityDateTime="2026-01-02 03:04:05", Fields=fields),
        _item("nobody@x.io"),
        _item("a@x.io", event=999),
        _item("a@x.io", ActivityDateTime="2026-13-02 03:04:05"),
    ]
    response = api.sync(BULK_ACTIVITIES, items, params=BY_EMAIL)
    store = sim.client.store()
    (activity,) = store.activities
    assert (response.status_code, response.json()) == (
        200,
        {
            "Response": [
                {"RowNumber": 1, "ActivityCreated": True, "ProspectActivityId": activity.id},
                {"RowNumber": 2, "ActivityCreated": False, "ProspectActivityId": None,
                 "ExceptionType": "MXInvalidEntityException",
                 "ExceptionMessage": "Lead does not exist in the system"},
                {"RowNumber": 3, "ActivityCreated": False, "ProspectActivityId": None,
                 "ExceptionType": "MXInvalidActivityException",
                 "ExceptionMessage": "Event Code is invalid or empty"},
                {"RowNumber": 4, "ActivityCreated": False, "ProspectActivityId": None,
                 "ExceptionType": "MXInvalidInputException",
                 "ExceptionMessage": "ActivityDateTime: expected 'YYYY-MM-DD HH:MM:SS'"},
            ]
        },
    )  # fmt: skip
    assert [lead.id for lead in store.leads] == [created["LeadId"]]
    assert (activity.lead_id, activity.event, activity.note, activity.when, activity.fields) == (
        created["LeadId"],
        201,
        "n",
        "2026-01-02 03:04:05",
        {"mx_Custom_1": "v"},
    )


@pytest.mark.parametrize(
    ("params", "body", "message"),
    [
        ({}, [_item("a@x.io")], "the searchBy query parameter is required"),
        ({"searchBy": "FirstName"}, [_item("a@x.io")], "searchBy 'FirstName' is not a unique"),
        (BY_EMAIL, [_item("a@x.io")] * 26, "at most 25 activities per call, got 26"),
        (BY_EMAIL, [_item("a@x.io"), {"ActivityEvent": 201}], "body[1].SearchByValue: required"),
        (BY_EMAIL, [_item("a@x.io", event="201")], "body[0].ActivityEvent: expected an integer"),
    ],
)
def test_bad_bulk_activity_calls_are_a_400_and_apply_nothing(
    sim: Simulator, api: Api, params: dict[str, str], body: object, message: str
) -> None:
    """A missing or non-unique searchBy, too many items, or a bad item shape: 400, none applied."""
    api.sync(BULK_LEADS, [lead_row("a@x.io")])
    response = api.sync(BULK_ACTIVITIES, body, params=params)
    assert response.status_code == 400
    assert response.json()["ExceptionMessage"].startswith(f"Invalid request: {message}")
    assert sim.client.store().activities == ()


def test_bulk_calls_have_their_own_budget(start_sim: StartSim) -> None:
    """Bulk 2/10 and main 2/10: the third bulk call is throttled with the bulk N, main calls
    still pass, and stats keep the two budgets apart."""
    budget = {"calls": 2, "window_s": 10.0}
    sim, api = start_sim(rate_limit=budget, bulk_rate_limit=budget)
    bulk = [api.sync(BULK_LEADS, [lead_row(f"u{i}@x.io")]) for i in range(3)]
    assert [r.status_code for r in bulk] == [200, 200, 429]
    assert bulk[2].json() == {
        "Status": "Error",
        "ExceptionType": "MXAPIRateLimitExceededException",
        "ExceptionMessage": "API calls exceeded the limit of 2 in 10 second(s)",
    }
    main = [api.sync("/v2/LeadManagement.svc/Lead.Create", lead_row(f"m{i}@x.io")) for i in "ab"]
    assert [r.status_code for r in main] == [200, 200]
    stats = sim.client.stats().accounts["account1"]
    assert (stats.bulk_calls, stats.bulk_throttled, stats.max_bulk_calls_in_window) == (3, 1, 3)
    assert (stats.bulk_limit, stats.bulk_window_s) == (2, 10.0)
    assert (stats.max_calls_in_window, stats.limit, stats.calls) == (2, 2, 5)
    assert stats.answers[AnswerClass.THROTTLED] == 1


def test_bulk_throttling_follows_the_throttle_style(start_sim: StartSim) -> None:
    """With the body200 style (set on rate_limit), a throttled bulk call is HTTP 200 + MX body."""
    _, api = start_sim(rate_limit={"style": "body200"}, bulk_rate_limit={"calls": 1})
    assert api.sync(BULK_LEADS, [lead_row("a@x.io")]).status_code == 200
    throttled = api.sync(BULK_LEADS, [lead_row("b@x.io")])
    assert (throttled.status_code, throttled.json()["ExceptionMessage"]) == (
        200,
        "API calls exceeded the limit of 1 in 5 second(s)",
    )


def test_fault_rules_apply_to_bulk_paths(sim: Simulator, api: Api) -> None:
    """A 500 rule (times=1) on the bulk lead path answers once and applies nothing; a drop rule
    on the bulk activity path closes the connection once; then both calls work."""
    sim.client.set_faults(
        FaultRule(path_prefix="/v2/LeadManagement.svc/Lead/Bulk/", status=500, times=1),
        FaultRule(path_prefix="/v2/ProspectActivity.svc/Bulk/", action="drop", times=1),
    )
    rows = [lead_row("a@x.io")]
    failed = api.sync(BULK_LEADS, rows)
    assert (failed.status_code, failed.json()) == (500, {"message": "Internal Server Error"})
    assert sim.client.store().leads == ()
    assert api.sync(BULK_LEADS, rows).json()[0]["LeadCreated"] is True
    with pytest.raises(httpx.RemoteProtocolError):
        api.sync(BULK_ACTIVITIES, [_item("a@x.io")], params=BY_EMAIL)
    assert sim.client.store().activities == ()
    answer = api.sync(BULK_ACTIVITIES, [_item("a@x.io")], params=BY_EMAIL).json()
    assert answer["Response"][0]["ActivityCreated"] is True
    answers = [r.answer for r in sim.client.requests()]
    assert answers == ["fault", "success", "dropped", "success"]
