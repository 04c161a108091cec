"""`lsq-sink validate --live` without a network: the poll schedule, the lines a call and a status
become, and the whole wait (throttled call sent again, unknown RequestID asked until the timeout,
progress lines, calls counted) over ``httpx.MockTransport`` on a fake clock."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from connector.commands.live import (
    MAX_POLL_S,
    Sample,
    live,
    poll_delay,
    status_line,
    submit_line,
    waiting_line,
)
from connector.lsq.answers import Verdict
from connector.lsq.status import Report
from connector.records import Answer, Mode, Payload, SourceRecord
from connector.settings.load import load_settings
from connector.transform.mapping import MappingSpec, compile_mapping
from connector.transform.route import Route

if TYPE_CHECKING:
    from pathlib import Path

    from connector.settings.model import Settings

SPEC = MappingSpec.model_validate({"search_by": "EmailAddress", "lead": {"EmailAddress": "email"}})


def _route(mode: Mode = "async", name: str = "leads") -> Route:
    render = compile_mapping("capture", SPEC).render
    return Route(name, "main", "capture", mode, "skip", json.loads, render)


def test_polls_start_after_1_s_and_back_off_to_5_s() -> None:
    """1 s, 2 s, 4 s, then every 5 s, however many polls were made."""
    assert [poll_delay(polls, None) for polls in range(6)] == [1.0, 2.0, 4.0, 5.0, 5.0, 5.0]
    assert poll_delay(10_000, Report("pending")) == MAX_POLL_S


def test_a_throttled_poll_waits_the_longest_before_asking_again() -> None:
    """A throttled Status API answer is asked again after 5 s, even right after the first poll."""
    assert poll_delay(1, Report("throttled", "HTTP 429: Too Many Requests")) == 5.0
    assert poll_delay(1, Report("missing")) == 2.0


def test_an_accepted_async_call_is_a_line_without_error() -> None:
    """The submit line carries route, account, operation, mode, HTTP status and RequestID."""
    verdict = Verdict("accepted", "HTTP 200", request_id="req-1")
    assert submit_line(_route(), Answer(200, b"{}"), verdict) == {
        "check": "live",
        "route": "leads",
        "account": "main",
        "operation": "capture",
        "mode": "async",
        "http_status": 200,
        "request_id": "req-1",
    }


def test_a_sync_call_is_final_and_names_the_lead() -> None:
    """A sync route's accepted answer is the end of it: the line names the lead, no error."""
    verdict = Verdict("accepted", "HTTP 200", lead_id="lead-9")
    line = submit_line(_route("sync"), Answer(200, b"{}"), verdict)
    assert (line["mode"], line["request_id"], line["lead_id"], "error" in line) == (
        "sync",
        None,
        "lead-9",
        False,
    )


@pytest.mark.parametrize(
    ("verdict", "error"),
    [
        (
            Verdict("auth", "HTTP 401: bad keys"),
            "LeadSquared rejected the account's keys: HTTP 401: bad keys",
        ),
        (
            Verdict("throttled", "HTTP 429: Too Many Requests"),
            "still throttled when --live-timeout ran out: HTTP 429: Too Many Requests",
        ),
        (
            Verdict("permanent", "HTTP 500: MXUnknownAttributeException: Attribute 'x' unknown"),
            (
                "LeadSquared did not accept the call: HTTP 500: MXUnknownAttributeException: "
                "Attribute 'x' unknown"
            ),
        ),
    ],
)
def test_a_call_not_accepted_is_an_error_saying_why(verdict: Verdict, error: str) -> None:
    """Any answer but accepted makes the line an error, with the verdict and LeadSquared's text."""
    line = submit_line(_route("sync"), Answer(500, b""), verdict)
    assert (line["verdict"], line["error"]) == (verdict.kind, error)


def test_a_succeeded_status_is_a_line_without_error() -> None:
    """Succeeded: the lead id, no mapping error, the wait rounded to 0.1 s."""
    report = Report("succeeded", "Request was successfully completed", lead_id="lead-9")
    assert status_line(_route(), "req-1", report, 1.04, "/lead/status") == {
        "check": "live_status",
        "route": "leads",
        "request_id": "req-1",
        "status": "succeeded",
        "reason": "Request was successfully completed",
        "exception_type": None,
        "lead_id": "lead-9",
        "mapping_error": False,
        "attribute": None,
        "waited_s": 1.0,
    }


def test_a_mapping_failure_names_the_attribute() -> None:
    """Failed because of the mapping: the error says so and names the attribute."""
    reason = "Attribute 'mx_Ciyt' does not exist"
    report = Report("failed", reason, "MXUnknownAttributeException", None, True, "mx_Ciyt")
    line = status_line(_route(), "req-1", report, 2.0, "/lead/status")
    assert (line["status"], line["mapping_error"], line["attribute"]) == ("failed", True, "mx_Ciyt")
    assert line["error"] == (
        "the mapping is wrong: LeadSquared refused attribute 'mx_Ciyt' "
        "(Attribute 'mx_Ciyt' does not exist); fix the route's mapping"
    )


@pytest.mark.parametrize(
    ("report", "error"),
    [
        (
            Report("failed", "Invalid activity event", "MXInvalidActivityException", mapping=True),
            "the mapping is wrong: Invalid activity event; fix the route's mapping",
        ),
        (
            Report("failed", "A Lead with same Email already exists.", "MXDuplicateEntryException"),
            "LeadSquared failed the request: A Lead with same Email already exists.",
        ),
    ],
)
def test_other_failures_say_whether_the_mapping_is_to_blame(report: Report, error: str) -> None:
    """A mapping failure without an attribute, and one of the record (not the mapping)."""
    line = status_line(_route(), "req-1", report, 2.0, "/lead/status")
    assert (line["status"], line["error"]) == ("failed", error)


@pytest.mark.parametrize(
    ("report", "error"),
    [
        (
            Report("pending", "in-queue"),
            (
                "no terminal status within 120 s (last answer: pending: in-queue); "
                "try a longer --live-timeout"
            ),
        ),
        (
            Report("missing", "HTTP 404: not found"),
            (
                "no terminal status within 120 s: the Status API at /lead/status does not know the "
                "RequestID (see status.paths)"
            ),
        ),
    ],
)
def test_no_terminal_status_in_time_is_unknown_and_an_error(report: Report, error: str) -> None:
    """Still pending, or never known to the Status API: status unknown, an error saying which."""
    line = status_line(_route(), "req-1", report, 120.02, "/lead/status")
    assert (line["status"], line["reason"], line["waited_s"]) == ("unknown", report.reason, 120.0)
    assert line["error"] == error


def test_a_waiting_line_says_how_long_and_what_the_last_poll_said() -> None:
    """Progress while waiting: the route, the RequestID, the wait, the last poll's kind."""
    assert waiting_line(_route(), "req-1", Report("missing"), 5.04) == {
        "check": "live_waiting",
        "route": "leads",
        "request_id": "req-1",
        "waited_s": 5.0,
        "last": "missing",
    }
    assert waiting_line(_route(), "req-1", None, 5.0)["last"] is None


@dataclass
class FakeTime:
    """A monotonic clock that moves only when slept on."""

    now: float = 0.0
    sleeps: list[float] = field(default_factory=list)

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.now += seconds


def _settings(tmp_path: Path) -> Settings:
    data = {
        "kafka": {"bootstrap_servers": "127.0.0.1:9"},
        "schema_registry": {"url": "http://127.0.0.1:9"},
        "accounts": {
            "main": {
                "async_host": "https://async.example.test",
                "api_host": "https://api.example.test",
                "access_key": "AK-1",
                "secret_key": "SK-1",
                "api_key": "API-1",
            }
        },
        "routes": [
            {
                "name": "leads",
                "topics": ["crm.leads"],
                "account": "main",
                "mapping": SPEC.model_dump(),
            },
            {
                "name": "quiet",
                "topics": ["crm.quiet"],
                "account": "main",
                "mapping": SPEC.model_dump(),
            },
        ],
        "output": {"results_topic": "lsq.results", "dead_letter_topic": "lsq.dlq"},
    }
    path = tmp_path / "config.yaml"
    path.write_text(json.dumps(data))
    return load_settings(path, environ={})


def test_live_sends_again_while_throttled_and_asks_until_the_timeout(tmp_path: Path) -> None:
    """A throttled call is sent again after the limit's window; an unknown RequestID (404) is
    asked at 1, 2, 4 s then 5 s intervals until the timeout (status unknown); a waiting line
    every 5 s; a route without a sample says so; every call is counted."""
    answers = [
        httpx.Response(429, json={"message": "API calls exceeded the limit of 25 in 5 seconds"}),
        httpx.Response(200, json={"Status": "Request accepted", "RequestID": "req-1"}),
        httpx.Response(404, json={"message": "No request found with RequestID req-1"}),
        httpx.Response(404, json={"message": "No request found with RequestID req-1"}),
        httpx.Response(200, json={"RequestId": "req-1", "TaskStatus": {"Status": "In-Queue"}}),
        httpx.Response(200, json={"RequestId": "req-1", "TaskStatus": {"Status": "In-Queue"}}),
    ]
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answers[len(seen) - 1]

    time = FakeTime()
    lines: list[dict[str, Any]] = []
    route = _route()
    payload = route.prepare_value(
        {"email": "ada@example.com"}, SourceRecord("crm.leads", 0, 0, None, None)
    )
    assert isinstance(payload, Payload)
    calls = live(
        _settings(tmp_path),
        {"leads": Sample(route, payload)},
        lines.append,
        12.0,
        transport=lambda _settings: httpx.MockTransport(handler),
        clock=time.clock,
        sleep=time.sleep,
    )
    assert calls == len(seen) == 6
    assert [(r.method, r.url.path) for r in seen] == [("POST", "/lead/capture")] * 2 + [
        ("GET", "/lead/status")
    ] * 4
    assert all(r.url.params.get("RequestID") == "req-1" for r in seen[2:])
    assert all("accessKey" not in r.url.params and r.headers["x-api-key"] for r in seen[2:])
    assert time.sleeps == [5.0, 1.0, 2.0, 2.0, 2.0, 3.0, 2.0]
    assert [line["check"] for line in lines] == [
        "live",
        "live",
        "live_waiting",
        "live_waiting",
        "live_status",
    ]
    assert lines[1] == {
        "check": "live",
        "route": "quiet",
        "skipped": "no sample rendered to a payload for this route: nothing sent",
    }
    assert [(line["waited_s"], line["last"]) for line in lines[2:4]] == [
        (5.0, "missing"),
        (10.0, "pending"),
    ]
    status = lines[4]
    assert (status["status"], status["waited_s"], status["reason"]) == ("unknown", 12.0, "In-Queue")
    assert "error" in status
    assert "API-1" not in json.dumps(lines)
