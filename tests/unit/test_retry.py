"""Every LeadSquared answer gets the action SPEC §6 prescribes, looking at the body first."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connector.lsq.answers import backoff, classify
from connector.records import Answer

ACCEPTED = {
    "Status": "Request accepted. Please use below request id to check the status",
    "RequestID": "8eca6fa6-262c-43eb-8cfe-6e3325e2dc73",
}
RATE_ENVELOPE = {
    "Status": "Error",
    "ExceptionType": "MXAPIRateLimitExceededException",
    "ExceptionMessage": "API calls exceeded the limit of 25 in 5 second(s)",
}
DUPLICATE = {
    "Status": "Error",
    "ExceptionType": "MXDuplicateEntryException",
    "ExceptionMessage": "A Lead with same Email already exists.",
}


def _answer(status: int | None, body: Any = b"", **kwargs: Any) -> Answer:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Answer(status, raw, **kwargs)


def test_async_accepted_carries_the_request_id() -> None:
    """HTTP 200 with a RequestID is accepted, with that id."""
    verdict = classify(_answer(200, ACCEPTED), "capture", "async")
    assert (verdict.kind, verdict.request_id) == ("accepted", ACCEPTED["RequestID"])


def test_request_id_is_trimmed_and_read_case_insensitively() -> None:
    """The createcustom seed shows a leading space and the prose spells it RequestId."""
    body = {"Status": "Request accepted.", "RequestId": " 571dfc10-d3e6-4511-8d33-c7a7ad8c236c"}
    verdict = classify(_answer(200, body), "lead_and_activity", "async")
    assert verdict.request_id == "571dfc10-d3e6-4511-8d33-c7a7ad8c236c"


def test_async_200_without_request_id_is_permanent() -> None:
    """An accepted-looking answer without a RequestID is dead-lettered, not retried (a retry
    could create a duplicate)."""
    verdict = classify(_answer(200, {"Status": "OK"}), "capture", "async")
    assert verdict.kind == "permanent"
    assert "without a RequestID" in verdict.reason


@pytest.mark.parametrize(
    ("operation", "message", "lead_id"),
    [
        ("capture", {"Id": "act-1", "RelatedId": "lead-1", "IsCreated": True}, "lead-1"),
        ("create", {"Id": "lead-2"}, "lead-2"),
        ("lead_and_activity", {"Id": "act-3", "RelatedId": "lead-3"}, "lead-3"),
        ("update", {"AffectedRows": 1}, None),
    ],
)
def test_sync_success_carries_the_lead_id(
    operation: Any, message: dict[str, Any], lead_id: str | None
) -> None:
    """Sync answers with Status Success are accepted with the lead id each API returns."""
    verdict = classify(_answer(200, {"Status": "Success", "Message": message}), operation, "sync")
    assert (verdict.kind, verdict.lead_id) == ("accepted", lead_id)


@pytest.mark.parametrize("status", [429, 200, 500])
def test_rate_limit_envelope_is_throttled_whatever_the_status(status: int) -> None:
    """MXAPIRateLimitExceededException means throttled with HTTP 429, 200 or 500."""
    verdict = classify(_answer(status, RATE_ENVELOPE), "capture", "async")
    assert verdict.kind == "throttled"
    assert verdict.exception_type == "MXAPIRateLimitExceededException"


@pytest.mark.parametrize(
    "body", [b"", {"message": "Too Many Requests"}, b"API calls exceeded the limit of 25"]
)
def test_http_429_is_throttled_with_any_body(body: Any) -> None:
    """A 429 is throttled whether the body is empty, gateway JSON or text."""
    assert classify(_answer(429, body), "update", "async").kind == "throttled"


def test_rate_limit_text_in_a_200_body_is_throttled() -> None:
    """The limit message without an exception type still means throttled."""
    body = {"Status": "Error", "ExceptionMessage": "API calls exceeded the limit of 20 in 5 sec"}
    assert classify(_answer(200, body), "capture", "sync").kind == "throttled"


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (
            200,
            {**DUPLICATE, "ExceptionMessage": "Notes exceeded the limit of 2000 characters"},
            "permanent",
        ),
        (
            500,
            {**DUPLICATE, "ExceptionMessage": "API calls exceeded the limit, see docs"},
            "permanent",
        ),
        (
            200,
            {"Status": "Error", "ExceptionMessage": "rate limit of the field reached"},
            "permanent",
        ),
        (
            200,
            {"Status": "Error", "ExceptionMessage": "Too many requests for this lead"},
            "permanent",
        ),
        (200, {"message": "Too Many Requests"}, "permanent"),
        (
            503,
            {"ExceptionType": "NullReferenceException", "ExceptionMessage": "rate limit"},
            "retry",
        ),
        (502, b"<html>Too Many Requests: rate limit exceeded</html>", "retry"),
        (
            200,
            {**DUPLICATE, "ExceptionMessage": "API calls exceeded the limit of 2 in 5 second(s)"},
            "throttled",
        ),
        (
            200,
            {
                "Status": "Error",
                "ExceptionMessage": "api calls exceeded the limit of 10 in 1 seconds",
            },
            "throttled",
        ),
    ],
)
def test_only_429_the_rate_limit_type_or_its_documented_message_is_a_throttle(
    status: int, body: Any, kind: str
) -> None:
    """Throttles are retried without limit and close the whole account, so only HTTP 429, the
    MXAPIRateLimitExceededException type or the message "API calls exceeded the limit of N in W
    second(s)" count: another answer that mentions a limit or too many requests is about the
    record (dead-lettered) or a server error (retried a limited number of times)."""
    assert classify(_answer(status, body), "capture", "async").kind == kind


@pytest.mark.parametrize("status", [200, 500, 400])
def test_mx_exception_is_permanent_whatever_the_status(status: int) -> None:
    """An MX exception in the body is dead-lettered with its type and message."""
    verdict = classify(_answer(status, DUPLICATE), "capture", "sync")
    assert verdict.kind == "permanent"
    assert verdict.exception_type == "MXDuplicateEntryException"
    assert verdict.reason == (
        f"HTTP {status}: MXDuplicateEntryException: A Lead with same Email already exists."
    )


def test_non_mx_exception_with_5xx_is_a_system_error_to_retry() -> None:
    """Non-MX exceptions (e.g. NullReferenceException) with a 5xx are retried."""
    body = {"Status": "Error", "ExceptionType": "NullReferenceException", "ExceptionMessage": "x"}
    assert classify(_answer(500, body), "capture", "async").kind == "retry"


@pytest.mark.parametrize(
    "body",
    [
        {"Status": "Error", "ExceptionMessage": "Invalid lead ID"},
        {"Status": "Failed", "Message": {"Message": "Invalid event code"}},
    ],
)
def test_error_status_without_exception_type_is_permanent(body: dict[str, Any]) -> None:
    """Status Error/Failed in a 200 body is a permanent failure with the server's message."""
    verdict = classify(_answer(200, body), "lead_and_activity", "sync")
    assert verdict.kind == "permanent"
    assert verdict.reason.endswith(("Invalid lead ID", "Invalid event code"))


@pytest.mark.parametrize("status", [401, 403])
def test_credentials_rejected_is_auth(status: int) -> None:
    """401 and 403 mean the account's keys are rejected, never a DLQ."""
    verdict = classify(_answer(status, {"message": "Forbidden"}), "capture", "async")
    assert (verdict.kind, verdict.reason) == ("auth", f"HTTP {status}: Forbidden")


@pytest.mark.parametrize("status", [500, 502, 503, 504, 408])
def test_5xx_and_408_without_mx_are_retried(status: int) -> None:
    """Server and gateway failures without an MX exception are retried."""
    assert classify(
        _answer(status, {"message": "Service Unavailable"}), "update", "async"
    ).kind == ("retry")


@pytest.mark.parametrize("status", [400, 404, 405, 409, 413, 415])
def test_other_4xx_are_permanent(status: int) -> None:
    """Bad request, not found and other client errors are dead-lettered."""
    verdict = classify(_answer(status, b"<html>bad</html>"), "capture", "async")
    assert (verdict.kind, verdict.reason) == ("permanent", f"HTTP {status}: <html>bad</html>")


def test_transport_failure_is_retried_with_the_error() -> None:
    """No HTTP answer at all (refused, timed out) is retried and says why."""
    answer = Answer(None, error="connection refused", maybe_sent=False)
    verdict = classify(answer, "capture", "async")
    assert (verdict.kind, verdict.reason) == ("retry", "no answer: connection refused")


def test_reason_is_bounded() -> None:
    """Huge server messages are cut to 500 characters."""
    body = {"Status": "Error", "ExceptionType": "MXX", "ExceptionMessage": "y" * 10_000}
    assert len(classify(_answer(500, body), "capture", "sync").reason) == 500


@given(status=st.one_of(st.none(), st.integers(100, 599)), body=st.binary(max_size=300))
def test_any_answer_gets_a_verdict(status: int | None, body: bytes) -> None:
    """Arbitrary status and body bytes always classify, never raise."""
    verdict = classify(Answer(status, body, error="e"), "capture", "async")
    assert verdict.kind in {"accepted", "throttled", "retry", "permanent", "auth"}


def test_backoff_is_full_jitter_capped_exponential() -> None:
    """Delay = draw * min(cap, base * 2^(attempt-1))."""
    assert backoff(1, 0.5, 60.0, lambda: 1.0) == 0.5
    assert backoff(4, 0.5, 60.0, lambda: 0.5) == 2.0
    assert backoff(20, 0.5, 60.0, lambda: 0.999) == pytest.approx(59.94)
    assert backoff(10_000, 0.5, 60.0, lambda: 0.0) == 0.0
