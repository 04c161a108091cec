"""The /_sim inspection and control endpoints through SimClient."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from lsq_sim import LoggedRequest, SimClientError
from tests.integration.sim.lsq import CAPTURE_BODY, Api, StartSim

if TYPE_CHECKING:
    from lsq_sim import Simulator


def test_requests_log_shows_exactly_what_was_sent_in_order(sim: Simulator, api: Api) -> None:
    """Each call: method, path, query, relevant headers, raw body, account, answer, response."""
    raw = b'[ {"Attribute":"EmailAddress", "Value":"a@x.io"} ]'
    accepted = api.submit(
        "/lead/capture", None, raw=raw, params={"LeadUpdateBehavior": "DoNotUpdate"}
    )
    api.submit("/lead/capture", CAPTURE_BODY, api_key=None)
    first, second = sim.client.requests()
    account = api.account
    assert first.model_dump(exclude={"time", "mono"}) == {
        "seq": 1,
        "method": "POST",
        "path": "/lead/capture",
        "query": {
            "accessKey": account.access_key,
            "secretKey": account.secret_key,
            "LeadUpdateBehavior": "DoNotUpdate",
        },
        "headers": {"content-type": "application/json", "x-api-key": account.api_key},
        "body": raw.decode(),
        "account": "account1",
        "status": 200,
        "answer": "accepted",
        "request_id": accepted.json()["RequestID"],
        "response": accepted.json(),
    }
    assert (second.seq, second.answer, second.status) == (2, "forbidden", 403)
    assert second.json_body() == CAPTURE_BODY
    assert first.mono <= second.mono


def test_requests_since_returns_only_newer_calls(sim: Simulator, api: Api) -> None:
    """?since=SEQ returns calls after SEQ; limit pages."""
    for _ in range(4):
        api.submit("/lead/capture", CAPTURE_BODY)
    assert [r.seq for r in sim.client.requests(since=2)] == [3, 4]
    page = sim.client.request_page(since=0, limit=3)
    assert ([r.seq for r in page.requests], page.last_seq) == ([1, 2, 3], 4)


def test_request_log_limit_keeps_the_most_recent(start_sim: StartSim) -> None:
    """With request_log_limit=2 only the last two calls are kept; counters see all."""
    sim, api = start_sim(request_log_limit=2)
    for _ in range(5):
        api.submit("/lead/capture", CAPTURE_BODY)
    assert [r.seq for r in sim.client.requests()] == [4, 5]
    assert [r.seq for r in sim.client.requests(since=4)] == [5]
    stats = sim.client.stats()
    assert (stats.requests, stats.accounts["account1"].calls) == (5, 5)


def test_stats_count_answers_per_account_and_unidentified(sim: Simulator, api: Api) -> None:
    """Calls are counted per answer class; calls with no known key are unidentified."""
    api.submit("/lead/capture", CAPTURE_BODY)
    api.submit("/lead/capture", CAPTURE_BODY, content_type="text/plain")
    api.submit("/lead/capture", CAPTURE_BODY, api_key="who?", keys={})
    sim.client.wait_idle()
    stats = sim.client.stats()
    account = stats.accounts["account1"]
    assert (account.calls, dict(account.answers)) == (2, {"accepted": 1, "bad_request": 1})
    assert (account.queue.pending, account.queue.succeeded) == (0, 1)
    assert stats.unidentified == {"forbidden": 1}


def test_store_view_lists_leads_activities_and_visitors(sim: Simulator, api: Api) -> None:
    """/_sim/store shows leads with fields and sets, activities, and registered visitors."""
    sim.client.register_visitors("account1", "v-2")
    api.sync(
        "/v2/LeadManagement.svc/Lead.Capture",
        [{"Attribute": "ProspectID", "Value": "v-1"}, {"Attribute": "FirstName", "Value": "A"}],
    )
    sim.client.register_visitors("account1", "v-1")
    api.sync(
        "/v2/LeadManagement.svc/Lead.Capture",
        [{"Attribute": "ProspectID", "Value": "v-1"}, {"Attribute": "FirstName", "Value": "B"}],
    )
    store = sim.client.store("account1")
    assert [(lead.id, lead.fields) for lead in store.leads][-1] == ("v-1", {"FirstName": "B"})
    assert store.visitors == ("v-2",)
    assert [a.event for a in store.activities_of("v-1")] == [23]


def test_reset_clears_log_store_and_stats(sim: Simulator, api: Api) -> None:
    """After reset: no requests, no leads, zero counters; sequence numbers keep growing."""
    api.sync("/v2/LeadManagement.svc/Lead.Create", [{"Attribute": "FirstName", "Value": "A"}])
    sim.client.reset()
    assert (sim.client.requests(), sim.client.store().leads) == ((), ())
    assert sim.client.stats().accounts["account1"].calls == 0
    api.submit("/lead/capture", CAPTURE_BODY)
    assert [r.seq for r in sim.client.requests()] == [2]


def test_wait_idle_times_out_when_the_queue_cannot_drain(start_sim: StartSim) -> None:
    """wait_idle raises TimeoutError while tasks are still pending."""
    sim, api = start_sim(processing={"rate": 1000, "delay_s": 5})
    api.submit("/lead/capture", CAPTURE_BODY)
    with pytest.raises(TimeoutError, match="not empty"):
        sim.client.wait_idle(timeout=0.2)


def test_config_shows_current_accounts(sim: Simulator) -> None:
    """/_sim/config returns the configuration in force, with the accounts' keys."""
    config = sim.client.config()
    assert config.accounts == sim.config.accounts
    assert sim.client.account() == sim.account()


def test_unknown_control_endpoint_and_account_are_errors(sim: Simulator) -> None:
    """Unknown /_sim paths and accounts answer 404, raised as SimClientError."""
    with pytest.raises(SimClientError, match="404"):
        sim.client.store("nobody")
    with pytest.raises(SimClientError, match="404"):
        sim.client.register_visitors("nobody", "v")


def test_logged_request_round_trips_through_json(sim: Simulator, api: Api) -> None:
    """LoggedRequest is a frozen model: the same value after a JSON round trip."""
    api.submit("/lead/capture", CAPTURE_BODY)
    (logged,) = sim.client.requests()
    assert LoggedRequest.model_validate_json(logged.model_dump_json()) == logged
