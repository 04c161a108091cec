"""`lsq-sink validate --live` as a real process against a real simulator process: each route's first
rendered sample goes through the real API, an async one's status is awaited, and the exit code
says whether LeadSquared applied it."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import pytest

from lsq_sim import Processing, SimConfig, SimProcess, StoreRules

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

LEAD_ROW = {
    "type": "record",
    "name": "Contact",
    "fields": [
        {"name": "email", "type": "string"},
        {"name": "first_name", "type": ["null", "string"], "default": None},
        {"name": "city", "type": ["null", "string"], "default": None},
    ],
}


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A directory holding the value schema the routes read (no schema registry)."""
    (tmp_path / "contact.avsc").write_text(json.dumps(LEAD_ROW))
    return tmp_path


def _route(name: str, topic: str, workdir: Path, lead: dict[str, str], **more: Any) -> Any:
    mapping = {"search_by": "EmailAddress", "lead": lead}
    schema = str(workdir / "contact.avsc")
    return {"name": name, "topics": [topic], "value_schema": schema, "mapping": mapping} | more


def _config(sim: SimProcess, workdir: Path, routes: list[dict[str, Any]]) -> Path:
    account = sim.account()
    data = {
        "kafka": {"bootstrap_servers": "127.0.0.1:9"},  # never reached: samples come from a file
        "accounts": {
            "default": {
                "async_host": sim.url,
                "api_host": sim.url,
                "access_key": account.access_key,
                "secret_key": account.secret_key,
                "api_key": account.api_key,
            }
        },
        "routes": routes,
        "output": {"results_topic": "lsq.results", "dead_letter_topic": "lsq.dlq"},
    }
    path = workdir / "config.yaml"
    path.write_text(json.dumps(data))
    return path


def _samples(workdir: Path, *samples: tuple[str, dict[str, Any]]) -> Path:
    path = workdir / "samples.jsonl"
    path.write_text("".join(json.dumps({"topic": t, "value": v}) + "\n" for t, v in samples))
    return path


def _validate(*args: str) -> tuple[int, list[dict[str, Any]], str]:
    command = [sys.executable, "-m", "connector", "validate", *args]
    run = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    return run.returncode, [json.loads(line) for line in run.stdout.splitlines()], run.stderr


def _check(lines: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [line for line in lines if line.get("check") == kind]


@pytest.fixture
def sim() -> Iterator[SimProcess]:
    """A simulator process that knows only the lead attributes EmailAddress and FirstName."""
    config = SimConfig(store=StoreRules(lead_attributes=("EmailAddress", "FirstName")), seed=3)
    with SimProcess(config) as running:
        yield running


def test_a_correct_mapping_succeeds_live_and_exits_0(sim: SimProcess, workdir: Path) -> None:
    """An async route's sample is accepted and its Status API poll says succeeded (with the
    lead's id); a sync route's answer is final; a route without a sample is said to have none;
    api_calls counts exactly the calls LeadSquared received; no key is printed."""
    routes = [
        _route("leads", "crm.leads", workdir, {"EmailAddress": "email", "FirstName": "first_name"}),
        _route("contacts", "crm.contacts", workdir, {"EmailAddress": "email"}, mode="sync"),
        _route("quiet", "crm.quiet", workdir, {"EmailAddress": "email"}),
    ]
    config = _config(sim, workdir, routes)
    samples = _samples(
        workdir,
        ("crm.leads", {"email": "ada@example.com", "first_name": "Ada"}),
        ("crm.leads", {"email": "second@example.com"}),  # only the first is sent
        ("crm.contacts", {"email": "bob@example.com"}),
    )
    code, lines, stderr = _validate("--config", str(config), "--samples", str(samples), "--live")
    assert code == 0, (lines, stderr)
    calls = sim.client.requests()
    leads = {lead.fields["EmailAddress"]: lead.id for lead in sim.client.store().leads}
    assert sorted(leads) == ["ada@example.com", "bob@example.com"]
    submitted, sync, skipped = _check(lines, "live")
    assert submitted == {
        "check": "live",
        "route": "leads",
        "account": "default",
        "operation": "capture",
        "mode": "async",
        "http_status": 200,
        "request_id": submitted["request_id"],
    }
    assert sync | {"lead_id": None} == {
        "check": "live",
        "route": "contacts",
        "account": "default",
        "operation": "capture",
        "mode": "sync",
        "http_status": 200,
        "request_id": None,
        "lead_id": None,
    }
    assert sync["lead_id"] == leads["bob@example.com"]
    assert skipped == {
        "check": "live",
        "route": "quiet",
        "skipped": "no sample rendered to a payload for this route: nothing sent",
    }
    [status] = _check(lines, "live_status")
    assert status | {"waited_s": 0} == {
        "check": "live_status",
        "route": "leads",
        "request_id": submitted["request_id"],
        "status": "succeeded",
        "reason": "Request was successfully completed",
        "exception_type": None,
        "lead_id": leads["ada@example.com"],
        "mapping_error": False,
        "attribute": None,
        "waited_s": 0,
    }
    assert 0.5 <= status["waited_s"] < 10
    assert [c.path for c in calls][:2] == ["/lead/capture", "/v2/LeadManagement.svc/Lead.Capture"]
    assert {c.path for c in calls[2:]} == {"/lead/status"}
    assert all(c.query == {"RequestID": submitted["request_id"]} for c in calls[2:])
    assert lines[-1] == {"check": "done", "result": "ok", "api_calls": len(calls)}
    account = sim.account()
    for key in (account.access_key, account.secret_key, account.api_key):
        assert key not in json.dumps(lines) + stderr


def test_a_misspelled_attribute_fails_live_naming_it_and_exits_1(
    sim: SimProcess, workdir: Path
) -> None:
    """LeadSquared accepts the call, then its Status API says FAILURE for an attribute it does
    not know: the live_status line is failed, a mapping error naming the attribute, exit 1."""
    routes = [_route("leads", "crm.leads", workdir, {"EmailAddress": "email", "mx_Ciyt": "city"})]
    config = _config(sim, workdir, routes)
    samples = _samples(workdir, ("crm.leads", {"email": "ada@example.com", "city": "Pune"}))
    code, lines, stderr = _validate("--config", str(config), "--samples", str(samples), "--live")
    assert code == 1, (lines, stderr)
    [submitted] = _check(lines, "live")
    assert (submitted["http_status"], "error" in submitted) == (200, False)
    [status] = _check(lines, "live_status")
    assert status | {"waited_s": 0} == {
        "check": "live_status",
        "route": "leads",
        "request_id": submitted["request_id"],
        "status": "failed",
        "reason": "Attribute 'mx_Ciyt' does not exist",
        "exception_type": "MXUnknownAttributeException",
        "lead_id": None,
        "mapping_error": True,
        "attribute": "mx_Ciyt",
        "waited_s": 0,
        "error": "the mapping is wrong: LeadSquared refused attribute 'mx_Ciyt' "
        "(Attribute 'mx_Ciyt' does not exist); fix the route's mapping",
    }
    assert sim.client.store().leads == ()
    calls = len(sim.client.requests())
    assert lines[-1] == {"check": "done", "result": "problems found", "api_calls": calls}


def test_no_terminal_status_within_the_timeout_is_unknown_and_exits_1(workdir: Path) -> None:
    """A request still queued when --live-timeout runs out: status unknown, an error, exit 1."""
    with SimProcess(SimConfig(processing=Processing(delay_s=60.0))) as slow:
        routes = [_route("leads", "crm.leads", workdir, {"EmailAddress": "email"})]
        config = _config(slow, workdir, routes)
        samples = _samples(workdir, ("crm.leads", {"email": "ada@example.com"}))
        args = ["--config", str(config), "--samples", str(samples), "--live", "--live-timeout", "2"]
        code, lines, stderr = _validate(*args)
        calls = len(slow.client.requests())
    assert code == 1, (lines, stderr)
    [status] = _check(lines, "live_status")
    assert (status["status"], status["reason"], status["mapping_error"]) == (
        "unknown",
        "In-Queue",
        False,
    )
    assert status["error"].startswith("no terminal status within 2 s (last answer: pending: ")
    assert 2 <= status["waited_s"] < 5
    assert lines[-1] == {"check": "done", "result": "problems found", "api_calls": calls}
    assert calls == 3  # the call, then polls at 1 s and at the timeout (2 s)


def test_live_without_samples_is_a_usage_error_exit_2(sim: SimProcess, workdir: Path) -> None:
    """--live needs --samples or --from-topics: exit 2 with a message saying so, no call made."""
    routes = [_route("leads", "crm.leads", workdir, {"EmailAddress": "email"})]
    config = _config(sim, workdir, routes)
    code, lines, stderr = _validate("--config", str(config), "--live")
    assert (code, lines) == (2, [])
    assert "validate --live needs samples to send: add --samples FILE or --from-topics N" in stderr
    assert sim.client.requests() == ()
