"""The HTTP side (``connector.adapters.submit``), through an injected ``httpx.MockTransport``: each
call goes
to its documented host and path with the keys where that host wants them (query string on the
async host, headers on the sync host), the body is the payload as compact UTF-8 JSON, transport
errors say whether the request may have been sent, no key survives in an answer or an error, at
most ``max_concurrency`` calls run at once, and a call that hangs never holds the process."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from typing import TYPE_CHECKING

import httpx
import pytest

from connector.adapters.submit import Submitter
from connector.lsq.catalog import ENDPOINTS, Endpoint, Request, endpoint
from connector.records import Answer, Payload
from connector.settings.model import AccountSettings

if TYPE_CHECKING:
    from collections.abc import Callable

    from connector.records import Mode, Operation

ACCESS, SECRET, API_KEY = "u$r/access+key", 's3cr3t&key="x"', "api-key-123"
ACCOUNT = AccountSettings.model_validate(
    {
        "async_host": "https://async.example.test/api/",
        "api_host": "https://api.example.test",
        "access_key": ACCESS,
        "secret_key": SECRET,
        "api_key": API_KEY,
        "max_concurrency": 2,
    }
)
LEAD = Payload("capture", (), [{"Attribute": "FirstName", "Value": "Zoë"}])
UPDATE = Payload("update", (("leadId", "42"),), [{"Attribute": "City", "Value": "Pune"}])


def submitter(handler: Callable[[httpx.Request], httpx.Response]) -> Submitter:
    return Submitter({"main": ACCOUNT}, transport=lambda _settings: httpx.MockTransport(handler))


def request_of(mode: Mode, payload: Payload) -> Request:
    """The request the single-record planner makes of ``payload``."""
    return Request(endpoint(payload.operation, mode), payload.params, payload.body)


def answer_of(calls: Submitter, mode: Mode, payload: Payload) -> Answer:
    calls.submit(7, "main", request_of(mode, payload))
    answers = calls.collect(10.0)
    assert [ticket for ticket, _ in answers] == [7], "one answer, tagged with its ticket"
    assert calls.collect(0) == [], "no other answer"
    return answers[0][1]


def test_async_call_has_keys_in_the_query_and_the_payload_as_compact_json() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"Status": "Success", "RequestId": "r-1"})

    calls = submitter(handler)
    answer = answer_of(calls, "async", LEAD)
    calls.close()

    assert answer == Answer(200, b'{"Status":"Success","RequestId":"r-1"}')
    (request,) = seen
    assert request.method == "POST"
    assert request.url.host == "async.example.test"
    assert request.url.path == "/api/lead/capture"
    assert request.url.params.multi_items() == [("accessKey", ACCESS), ("secretKey", SECRET)]
    assert request.headers["x-api-key"] == API_KEY
    assert request.headers["content-type"] == "application/json"
    assert request.content == '[{"Attribute":"FirstName","Value":"Zoë"}]'.encode()
    assert "x-lsq-accesskey" not in request.headers


def test_sync_call_has_keys_in_headers_and_its_parameters_in_the_query() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"Status": "Success"})

    calls = submitter(handler)
    answer = answer_of(calls, "sync", UPDATE)
    calls.close()

    assert answer.status == 200
    (request,) = seen
    assert (
        str(request.url) == "https://api.example.test/v2/LeadManagement.svc/Lead.Update?leadId=42"
    )
    assert request.headers["x-lsq-accesskey"] == ACCESS
    assert request.headers["x-lsq-secretkey"] == SECRET
    assert "x-api-key" not in request.headers
    assert json.loads(request.content) == UPDATE.body


@pytest.mark.parametrize(("operation", "mode"), sorted(ENDPOINTS))
def test_every_operation_goes_to_its_documented_path(operation: Operation, mode: Mode) -> None:
    paths: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.path)
        return httpx.Response(200)

    calls = submitter(handler)
    answer_of(calls, mode, Payload(operation, (), {"Lead": []}))
    calls.close()
    prefix = "/api" if mode == "async" else ""
    assert paths == [prefix + ENDPOINTS[(operation, mode)].path]


def test_a_get_request_has_no_body_and_carries_its_own_headers() -> None:
    """A catalog entry for a GET (as the Status API is) goes out as a GET on its host, with its
    query and headers, no body and no content type."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=[])

    calls = submitter(handler)
    status = Endpoint("async", "GET", "/lead/status")
    calls.submit(3, "main", Request(status, (("RequestID", "r-9"),), None, (("x-trace", "1"),)))
    answers = calls.collect(10.0)
    calls.close()

    assert [(ticket, a.status) for ticket, a in answers] == [(3, 200)]
    (request,) = seen
    assert (request.method, request.url.path) == ("GET", "/api/lead/status")
    assert request.url.params.multi_items() == [
        ("accessKey", ACCESS),
        ("secretKey", SECRET),
        ("RequestID", "r-9"),
    ]
    assert (request.headers["x-api-key"], request.headers["x-trace"]) == (API_KEY, "1")
    assert request.content == b""
    assert "content-type" not in request.headers


def _raises(error: Exception) -> Callable[[httpx.Request], httpx.Response]:
    def handler(_request: httpx.Request) -> httpx.Response:
        raise error

    return handler


@pytest.mark.parametrize(
    ("error", "maybe_sent"),
    [
        (httpx.ConnectError(f"refused for {ACCESS}"), False),
        (httpx.ConnectTimeout("connect timed out"), False),
        (httpx.PoolTimeout("no free connection"), False),
        (httpx.ReadTimeout(f"read timed out, secretKey={SECRET}"), True),
        (httpx.WriteTimeout("write timed out"), True),
        (httpx.RemoteProtocolError("server disconnected"), True),
        (httpx.ReadError("connection reset"), True),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else str(value),
)
def test_transport_errors_say_whether_the_request_may_have_been_sent(
    error: httpx.HTTPError, maybe_sent: bool
) -> None:
    calls = submitter(_raises(error))
    answer = answer_of(calls, "async", LEAD)
    calls.close()
    assert answer.status is None
    assert answer.maybe_sent is maybe_sent
    assert answer.error is not None
    assert answer.error.startswith(type(error).__name__)
    assert ACCESS not in answer.error
    assert SECRET not in answer.error


def test_a_bug_in_the_http_side_becomes_an_answer_not_a_lost_call() -> None:
    calls = submitter(_raises(RuntimeError(f"boom with {API_KEY}")))
    answer = answer_of(calls, "async", LEAD)
    calls.close()
    assert answer.status is None
    assert answer.error == "internal error: RuntimeError: boom with ***"


def test_keys_quoted_back_in_an_answer_are_masked() -> None:
    """LeadSquared's error text may quote the request: raw, URL-encoded or JSON-escaped keys."""
    quoted = [ACCESS, SECRET, API_KEY, json.dumps(SECRET)[1:-1]]

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, text=f"bad request {request.url} {' '.join(quoted)}")

    calls = submitter(handler)
    answer = answer_of(calls, "async", LEAD)
    calls.close()
    assert answer.status == 400
    assert answer.body.startswith(b"bad request https://async.example.test/api/lead/capture?")
    for form in [*quoted, "u%24r%2Faccess%2Bkey", "s3cr3t%26key%3D%22x%22"]:
        assert form.encode() not in answer.body, form


def test_no_more_calls_run_at_once_than_max_concurrency() -> None:
    release, lock = threading.Event(), threading.Lock()
    running, peak = [0], [0]

    def handler(_request: httpx.Request) -> httpx.Response:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        release.wait(10)
        with lock:
            running[0] -= 1
        return httpx.Response(200)

    calls = submitter(handler)
    for ticket in range(6):
        calls.submit(ticket, "main", request_of("async", LEAD))
    time.sleep(0.3)
    assert peak[0] == ACCOUNT.max_concurrency
    release.set()
    got: list[int] = []
    deadline = time.monotonic() + 10
    while len(got) < 6 and time.monotonic() < deadline:
        got += [ticket for ticket, _ in calls.collect(1.0)]
    calls.close()
    assert sorted(got) == list(range(6))
    assert peak[0] == ACCOUNT.max_concurrency


def test_close_returns_while_a_call_hangs_and_drops_calls_not_started() -> None:
    started, release = threading.Event(), threading.Event()
    reached: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        reached.append(request.url.path)
        started.set()
        release.wait(10)
        return httpx.Response(200)

    single = AccountSettings.model_validate(ACCOUNT.model_dump() | {"max_concurrency": 1})
    calls = Submitter({"main": single}, transport=lambda _s: httpx.MockTransport(handler))
    calls.submit(1, "main", request_of("async", LEAD))
    assert started.wait(5)
    calls.submit(2, "main", request_of("sync", UPDATE))
    began = time.monotonic()
    calls.close()
    assert time.monotonic() - began < 1.0, "close() waited for a hanging call"
    release.set()
    time.sleep(0.3)
    assert reached == ["/api/lead/capture"], "a call queued before close() was still made"
    assert all(t.daemon for t in threading.enumerate() if t.name.startswith("lsq-main"))


HANGING_PROCESS = """
import time, httpx
from connector.lsq.catalog import Request, endpoint
from connector.settings.model import AccountSettings
from connector.adapters.submit import Submitter

def hang(request):
    print("calling", flush=True)
    time.sleep(120)
    return httpx.Response(200)

account = AccountSettings(access_key="a", secret_key="s")
calls = Submitter({"main": account}, transport=lambda _s: httpx.MockTransport(hang))
calls.submit(1, "main", Request(endpoint("capture", "async"), (), []))
time.sleep(0.5)
calls.close()
"""


def test_a_process_whose_call_hangs_exits_when_its_main_thread_ends() -> None:
    began = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", HANGING_PROCESS],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    took = time.monotonic() - began
    assert done.returncode == 0, done.stderr
    assert done.stdout == "calling\n", "the call never started"
    assert took < 30, f"exit waited {took:.0f} s for a call that hangs 120 s"
