"""Fault injection over real HTTP: rules, rates, outages (503, refused, dropped), key rotation."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import httpx
import pytest

from lsq_sim import AnswerClass, FaultRule
from tests.integration.sim.lsq import CAPTURE_BODY, Api, StartSim

if TYPE_CHECKING:
    from lsq_sim import Simulator

MX_DUPLICATE = {
    "Status": "Error",
    "ExceptionType": "MXDuplicateEntryException",
    "ExceptionMessage": "A Lead with same Phone Number already exists.",
}


def _capture(api: Api) -> httpx.Response:
    return api.submit("/lead/capture", CAPTURE_BODY)


def test_respond_rule_scripts_an_mx_body_with_http_200(sim: Simulator, api: Api) -> None:
    """A respond rule returns its status and body, and is logged as a fault."""
    sim.client.set_faults(FaultRule(path_prefix="/lead/", status=200, body=MX_DUPLICATE))
    response = _capture(api)
    assert (response.status_code, response.json()) == (200, MX_DUPLICATE)
    assert sim.client.requests()[-1].answer == "fault"


def test_rules_apply_before_auth_and_only_where_they_match(sim: Simulator, api: Api) -> None:
    """A rule answers even without an x-api-key; other paths and bodies are untouched."""
    sim.client.set_faults(FaultRule(path_prefix="/lead/capture", body_contains="Bret", status=502))
    assert api.submit("/lead/capture", CAPTURE_BODY, api_key=None).status_code == 502
    other_body = [{"Attribute": "EmailAddress", "Value": "x@y.z"}]
    assert api.submit("/lead/capture", other_body).status_code == 200
    assert api.submit("/lead/update", [], params={"leadId": "L"}).status_code == 200


def test_times_limits_a_rule(sim: Simulator, api: Api) -> None:
    """times=2: two calls fail, the third passes; the control API shows none left."""
    sim.client.set_faults(FaultRule(status=503, times=2))
    assert [_capture(api).status_code for _ in range(3)] == [503, 503, 200]
    assert sim.client.faults().rules[0].times == 0


def test_drop_rule_closes_the_connection_without_an_answer(sim: Simulator, api: Api) -> None:
    """The client sees the server disconnect; the log says dropped, with no status."""
    sim.client.set_faults(FaultRule(action="drop", times=1))
    with pytest.raises(httpx.RemoteProtocolError):
        _capture(api)
    logged = sim.client.requests()[-1]
    assert (logged.answer, logged.status, logged.response) == ("dropped", None, None)
    assert _capture(api).status_code == 200


def test_delay_rule_delays_the_answer(sim: Simulator, api: Api) -> None:
    """A delay rule holds the answer at least delay_s, then handles the call normally."""
    sim.client.set_faults(FaultRule(action="delay", delay_s=0.3))
    started = time.monotonic()
    response = _capture(api)
    assert time.monotonic() - started >= 0.3
    assert response.status_code == 200


def test_error_rate_answers_503(sim: Simulator, api: Api) -> None:
    """error_rate=1: every API call answers 503 Service Unavailable."""
    sim.client.set_faults(error_rate=1.0)
    response = _capture(api)
    assert (response.status_code, response.json()) == (503, {"message": "Service Unavailable"})
    sim.client.clear_faults()
    assert _capture(api).status_code == 200


def test_drop_rate_drops(sim: Simulator, api: Api) -> None:
    """drop_rate=1: connections close unanswered."""
    sim.client.set_faults(drop_rate=1.0)
    with pytest.raises(httpx.RemoteProtocolError):
        _capture(api)


def test_latency_applies_to_every_call(sim: Simulator, api: Api) -> None:
    """latency_ms=200 delays each answer by at least 0.2 s."""
    sim.client.set_faults(latency_ms=200)
    started = time.monotonic()
    assert _capture(api).status_code == 200
    assert time.monotonic() - started >= 0.2


def test_control_endpoints_are_never_faulted(sim: Simulator, api: Api) -> None:
    """With every API call failing, /_sim still answers."""
    sim.client.set_faults(error_rate=1.0)
    assert _capture(api).status_code == 503
    assert sim.client.stats().accounts["account1"].answers[AnswerClass.FAULT] == 1


def test_http503_outage_and_recovery(sim: Simulator, api: Api) -> None:
    """During an http503 outage every call answers 503; afterwards calls succeed."""
    sim.client.outage(0.5, "http503")
    assert _capture(api).status_code == 503
    time.sleep(0.55)
    assert _capture(api).status_code == 200


def test_drop_outage_and_recovery(sim: Simulator, api: Api) -> None:
    """During a drop outage connections close unanswered."""
    sim.client.outage(0.5, "drop")
    with pytest.raises(httpx.RemoteProtocolError):
        _capture(api)
    time.sleep(0.55)
    assert _capture(api).status_code == 200


def test_refuse_outage_refuses_connections_then_listens_again(sim: Simulator, api: Api) -> None:
    """A refuse outage closes the port (connections refused) and reopens the same port."""
    assert _capture(api).status_code == 200  # a pooled keep-alive connection exists
    sim.client.outage(1.0, "refuse")
    time.sleep(0.1)
    with pytest.raises(httpx.ConnectError):
        _capture(api)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{sim.url}/_sim/health", timeout=2)
    time.sleep(1.0)
    assert _capture(api).status_code == 200
    assert sim.client.health()


def test_configured_outage_starts_relative_to_simulator_start(start_sim: StartSim) -> None:
    """--outage 0:1: 503 from the start, then normal service."""
    _, api = start_sim(outages=[{"start_s": 0, "duration_s": 1.0}])
    assert _capture(api).status_code == 503
    time.sleep(1.0)
    assert _capture(api).status_code == 200


def test_configured_refuse_outage_at_start(start_sim: StartSim) -> None:
    """--outage 0:1:refuse: connections are refused from the start, then accepted."""
    _, api = start_sim(outages=[{"start_s": 0, "duration_s": 1.0, "mode": "refuse"}])
    time.sleep(0.1)
    with pytest.raises(httpx.ConnectError):
        _capture(api)
    time.sleep(1.0)
    assert _capture(api).status_code == 200


def test_key_rotation_rejects_old_keys(sim: Simulator, api: Api) -> None:
    """After rotation the old x-api-key is forbidden, old query keys are 401; new keys work."""
    new = sim.client.rotate_keys("account1", secret_key="s-new", api_key="k-new")
    assert (new.access_key, new.secret_key, new.api_key) == (
        api.account.access_key,
        "s-new",
        "k-new",
    )
    assert _capture(api).status_code == 403
    assert api.submit("/lead/capture", CAPTURE_BODY, api_key="k-new").status_code == 401
    rotated = Api(sim.url, new)
    try:
        assert _capture(rotated).status_code == 200
    finally:
        rotated.close()
    assert sim.client.account("account1") == new
