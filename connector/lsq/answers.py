"""[pure] What each LeadSquared answer means (SPEC §6): for the account and for each record of the
call (a :class:`Settlement`), and the backoff between retries.

Pure functions over :class:`~connector.records.Answer`. The body is read before the status:
LeadSquared reports rate limits and application (``MX…``) errors inside HTTP 200 bodies too.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Literal

from connector.lsq.envelope import as_text, field, parse_object, snippet

if TYPE_CHECKING:
    from collections.abc import Callable

    from connector.records import Answer, Mode, Operation

__all__ = [
    "Settlement",
    "Verdict",
    "VerdictKind",
    "backoff",
    "classify",
    "single",
    "stated_limit",
]

#: accepted → results topic; throttled → account cool-down, retry; retry → backoff, retry up to
#: the limit; permanent → dead-letter; auth → the account's keys are rejected: hold, never DLQ;
#: alone → this record's part of a call of several cannot go that way: send it in a call of its own.
VerdictKind = Literal["accepted", "throttled", "retry", "permanent", "auth", "alone"]

#: LeadSquared's documented throttle message, "API calls exceeded the limit of N in W second(s)".
_THROTTLE = re.compile(
    r"\s*API calls exceeded the limit of (\d+) in (\d+(?:\.\d+)?) ?sec", re.IGNORECASE
)
_FAILED = {"error", "failed", "failure"}
_REASON_MAX = 500
_MAX_DOUBLINGS = 62  # beyond this the float overflows; every realistic cap is far below


@dataclass(frozen=True, slots=True)
class Verdict:
    """The decision for one answer, with what LeadSquared said (server text only, no secrets)."""

    kind: VerdictKind
    reason: str = ""
    exception_type: str | None = None
    request_id: str | None = None
    lead_id: str | None = None
    activity_id: str | None = None
    row: int | None = None  # the record's row in a bulk call (1-based)
    applied: bool = False  # LeadSquared applied it before answering (a bulk call's row)
    #: the account's limit a throttle answer states: (calls, window seconds)
    limit: tuple[int, float] | None = None


@dataclass(frozen=True, slots=True)
class Settlement:
    """One answer, interpreted: what it says about the account (throttled, keys rejected, down,
    fine) and the verdict for each member of the call, in order."""

    call: Verdict
    members: tuple[Verdict, ...]
    #: whether the answer is evidence of the account's state (a status poll's only when throttled)
    observed: bool = True


def single(operation: Operation, mode: Mode) -> Callable[[Answer], Settlement]:
    """The interpreter of a one-record call of ``operation`` in ``mode``: its verdict is the
    record's."""

    def interpret(answer: Answer) -> Settlement:
        verdict = classify(answer, operation, mode)
        return Settlement(verdict, (verdict,))

    return interpret


def classify(answer: Answer, operation: Operation, mode: Mode) -> Verdict:
    """Decide what to do with ``answer`` to a ``mode`` call of ``operation``."""
    status = answer.status
    if status is None:
        return Verdict("retry", f"no answer: {answer.error or 'unknown error'}")
    envelope = parse_object(answer.body)
    exc_type = as_text(envelope.get("ExceptionType")) or None
    if status == HTTPStatus.OK and exc_type is None and mode == "async":  # the common case
        request_id = as_text(field(envelope, "RequestID")).strip()
        if request_id and as_text(envelope.get("Status")).lower() not in _FAILED:
            return Verdict("accepted", "HTTP 200", request_id=request_id)
    message = _message(envelope) or snippet(answer.body)
    reason = f"HTTP {status}: {exc_type + ': ' if exc_type else ''}{message}"[:_REASON_MAX]
    if status == HTTPStatus.TOO_MANY_REQUESTS or _is_rate_limit(exc_type, message):
        return Verdict("throttled", reason, exc_type, limit=stated_limit(message))
    if status in (HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN):
        return Verdict("auth", reason, exc_type)
    server_error = status >= HTTPStatus.INTERNAL_SERVER_ERROR
    if exc_type is not None:
        # MX… exceptions are application errors: retrying repeats them. Others are system errors.
        transient = server_error and not exc_type.startswith("MX")
        return Verdict("retry" if transient else "permanent", reason, exc_type)
    if as_text(envelope.get("Status")).lower() in _FAILED:
        return Verdict("permanent", reason)
    if HTTPStatus.OK <= status < HTTPStatus.MULTIPLE_CHOICES:
        return _success(envelope, operation, mode, status)
    transient = server_error or status == HTTPStatus.REQUEST_TIMEOUT
    return Verdict("retry" if transient else "permanent", reason)


def backoff(attempt: int, base: float, cap: float, draw: Callable[[], float]) -> float:
    """Full-jitter delay before retry number ``attempt`` (1-based): uniform in
    [0, min(cap, base·2^(attempt-1))). ``draw`` returns a uniform number in [0, 1)."""
    return draw() * min(cap, base * 2.0 ** min(attempt - 1, _MAX_DOUBLINGS))


def stated_limit(message: str) -> tuple[int, float] | None:
    """The limit a throttle message states ("API calls exceeded the limit of N in W second(s)"),
    as (N, W); ``None`` when it states none, or none that makes sense (N or W zero)."""
    found = _THROTTLE.match(message)
    if found is None:
        return None
    calls, window = int(found[1]), float(found[2])
    return (calls, window) if calls > 0 and window > 0 else None


def _is_rate_limit(exc_type: str | None, message: str) -> bool:
    """A throttle is the rate-limit exception type or the documented message, and nothing else:
    another exception whose text mentions a limit ("exceeded the limit of 2000 characters") is
    about the record and is dead-lettered, never retried forever."""
    return exc_type == "MXAPIRateLimitExceededException" or bool(_THROTTLE.match(message))


def _success(envelope: dict[str, Any], operation: Operation, mode: Mode, status: int) -> Verdict:
    if mode == "async":
        request_id = as_text(field(envelope, "RequestID")).strip()
        if request_id:
            return Verdict("accepted", f"HTTP {status}", request_id=request_id)
        return Verdict("permanent", f"HTTP {status} without a RequestID: {_compact(envelope)}")
    if as_text(envelope.get("Status")).lower() != "success":
        return Verdict("permanent", f"HTTP {status} without Status Success: {_compact(envelope)}")
    message = envelope.get("Message")
    details = message if isinstance(message, dict) else {}
    # Lead.Capture and CreateCustom name the lead in RelatedId; Lead.Create in Id.
    key = "Id" if operation == "create" else "RelatedId"
    lead_id = as_text(details.get(key) or details.get("Id")) or None
    return Verdict("accepted", f"HTTP {status}", lead_id=None if operation == "update" else lead_id)


def _message(envelope: dict[str, Any]) -> str:
    for key in ("ExceptionMessage", "message", "Message"):
        value = envelope.get(key)
        if isinstance(value, dict):
            value = value.get("Message")
        if isinstance(value, str) and value:
            return value
    return ""


def _compact(envelope: dict[str, Any]) -> str:
    return json.dumps(envelope, separators=(",", ":"))[:200]
