"""[pure] Every answer the simulator gives an API call: HTTP status, JSON body, headers and the
answer class the inspection log and stats use. Gateway-level answers (403, 404, 503, gateway
429) use AWS API Gateway's ``{"message": …}``; LeadSquared-level ones use the MX envelope."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from http import HTTPStatus
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import JsonValue

    from lsq_sim.config import DailyQuota, ErrorStyle, RateLimit
    from lsq_sim.records import MXError

__all__ = [
    "ACCEPTED_STATUS",
    "PLAIN_THROTTLE_MESSAGE",
    "Answer",
    "AnswerClass",
    "accepted",
    "bad_request",
    "forbidden",
    "mx_error",
    "not_found",
    "over_quota",
    "throttled",
    "unauthorized",
]

ACCEPTED_STATUS = "Request accepted. Please use below request id to check the status"
#: The throttle message that names no limit (``RateLimit.states_limit`` False).
PLAIN_THROTTLE_MESSAGE = "API rate limit exceeded"


class AnswerClass(StrEnum):
    """How a call was answered (the ``answer`` of each logged request)."""

    ACCEPTED = "accepted"
    SUCCESS = "success"
    THROTTLED = "throttled"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    BAD_REQUEST = "bad_request"
    NOT_FOUND = "not_found"
    MX_ERROR = "mx_error"
    FAULT = "fault"
    DROPPED = "dropped"


@dataclass(frozen=True, slots=True)
class Answer:
    """One answer; ``drop`` closes the connection instead of answering."""

    status: int
    body: JsonValue
    kind: AnswerClass
    request_id: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False


def envelope(exception_type: str, message: str) -> dict[str, JsonValue]:
    """LeadSquared's error envelope."""
    return {"Status": "Error", "ExceptionType": exception_type, "ExceptionMessage": message}


def accepted(request_id: str) -> Answer:
    """HTTP 200: an async request was queued."""
    body: JsonValue = {"Status": ACCEPTED_STATUS, "RequestID": request_id}
    return Answer(200, body, AnswerClass.ACCEPTED, request_id=request_id)


def success(body: JsonValue) -> Answer:
    """HTTP 200 with a successful body."""
    return Answer(200, body, AnswerClass.SUCCESS)


def forbidden(status: int) -> Answer:
    """A missing or wrong ``x-api-key`` at the gateway (403 by default, or 401)."""
    message = "Forbidden" if status == HTTPStatus.FORBIDDEN else "Unauthorized"
    return Answer(status, {"message": message}, AnswerClass.FORBIDDEN)


def unauthorized() -> Answer:
    """Missing or wrong accessKey/secretKey."""
    body = envelope("MXInvalidUserDetailsException", "Invalid User Details")
    return Answer(401, body, AnswerClass.UNAUTHORIZED)


def throttled(limit: RateLimit) -> Answer:
    """Over the account's budget, in the configured style."""
    return _throttled(limit, limit.calls, limit.window_s)


def over_quota(limit: RateLimit, quota: DailyQuota) -> Answer:
    """Over the account's daily quota: a throttle answer in the style of its rate ``limit``,
    naming the quota's calls and day."""
    return _throttled(limit, quota.calls, quota.day_s)


def _throttled(limit: RateLimit, calls: int, window_s: float) -> Answer:
    """A throttle answer in the style of ``limit`` for a limit of ``calls`` in ``window_s``."""
    headers = {} if limit.retry_after_s is None else {"Retry-After": str(limit.retry_after_s)}
    if limit.style == "gateway429":
        return Answer(429, {"message": "Too Many Requests"}, AnswerClass.THROTTLED, None, headers)
    message = PLAIN_THROTTLE_MESSAGE
    if limit.states_limit:
        message = f"API calls exceeded the limit of {calls} in {window_s:g} second(s)"
    body = envelope("MXAPIRateLimitExceededException", message)
    status = 200 if limit.style == "body200" else 429
    return Answer(status, body, AnswerClass.THROTTLED, None, headers)


def mx_error(error: MXError, style: ErrorStyle) -> Answer:
    """An application error, with HTTP 500 or HTTP 200 per the configured style."""
    status = 200 if style == "http200" else 500
    return Answer(status, envelope(error.type, error.message), AnswerClass.MX_ERROR)


def bad_request(message: str) -> Answer:
    """HTTP 400: the request is not as the API specifies."""
    body = envelope("MXInvalidInputException", f"Invalid request: {message}")
    return Answer(400, body, AnswerClass.BAD_REQUEST)


def not_found(message: str) -> Answer:
    """HTTP 404."""
    return Answer(404, {"message": message}, AnswerClass.NOT_FOUND)
