"""[pure] The async host's Status and Metrics APIs (reference §1.5 and §1.6): their endpoints per
operation, and what their answers say. An accepted RequestID means "queued"; the Status API says
whether LeadSquared then applied the request (``Success``), refused it (``FAILURE``/``ERROR`` with
a reason), or still has it queued (``In-Queue``). The Metrics API says how long its queue is.

Only ``lead/status`` is documented with its URL; the other paths follow the documented pattern
``<submit path>/status`` and can be changed in the settings (``status.paths``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING, Literal

from connector.lsq.answers import stated_limit
from connector.lsq.catalog import Endpoint, Request
from connector.lsq.envelope import as_text, field, parse_json, parse_object, snippet

if TYPE_CHECKING:
    from connector.records import Answer, Operation

__all__ = [
    "METRICS_PATHS",
    "STATUS_PATHS",
    "Depth",
    "Report",
    "ReportKind",
    "metrics_request",
    "read_metrics",
    "read_status",
    "status_request",
]

#: The Status API path of each async operation's requests.
STATUS_PATHS: dict[Operation, str] = {
    "capture": "/lead/status",
    "update": "/lead/update/status",
    "lead_and_activity": "/activity/createcustom/status",
}
#: The Metrics API path of each async operation's queue.
METRICS_PATHS: dict[Operation, str] = {
    "capture": "/lead/capture/metrics",
    "update": "/lead/update/metrics",
    "lead_and_activity": "/activity/createcustom/metrics",
}

#: pending: still queued (or not answered: ask again later); throttled: ask again after the
#: account's cool-down; succeeded / failed: terminal; missing: the Status API does not know it.
ReportKind = Literal["pending", "throttled", "missing", "succeeded", "failed"]

_DONE = {"success": "succeeded", "failure": "failed", "error": "failed", "failed": "failed"}
#: Application errors that say the mapping (not the record) is wrong: a field LeadSquared does not
#: have, or an activity type it does not know. Any other type LeadSquared names (a duplicate, a lead
#: that does not exist, a missing value) is about the record; the wording decides only when no
#: specific type is named.
_MAPPING_TYPES = frozenset(
    {"MXUnknownAttributeException", "MXInvalidFieldException", "MXInvalidActivityException"}
)
_UNSPECIFIC_TYPES = frozenset({None, "MXException"})
_MAPPING_TEXT = re.compile(
    r"(unknown|invalid) (lead )?(attribute|field|schema ?name)|event code is invalid"
    r"|invalid (activity )?event",
    re.IGNORECASE,
)
_EXCEPTION_IN_TEXT = re.compile(r"\b(MX[A-Za-z]+Exception)\b")
_NAME_IN_TEXT = re.compile(r"\b(mx_\w+)|'([A-Za-z_]\w*)'|\"([A-Za-z_]\w*)\"")
_REASON_MAX = 500


@dataclass(frozen=True, slots=True)
class Report:
    """What one Status API answer says about one request."""

    kind: ReportKind
    reason: str = ""
    exception_type: str | None = None
    lead_id: str | None = None
    mapping: bool = False  # a failure the mapping causes (every record of the route would fail)
    attribute: str | None = None  # the attribute the failure names, when it names one


@dataclass(frozen=True, slots=True)
class Depth:
    """LeadSquared's queue of one operation, as the Metrics API reports it."""

    pending: int
    max_delay_s: float
    rate_per_minute: float | None


def status_request(path: str, request_id: str) -> Request:
    """The Status API call for ``request_id`` (``x-api-key`` only: no account keys)."""
    return Request(Endpoint("status", "GET", path), (("RequestID", request_id),))


def metrics_request(path: str) -> Request:
    """The Metrics API call of one operation's queue."""
    return Request(Endpoint("status", "GET", path))


def read_status(answer: Answer, operation: Operation) -> Report:
    """What ``answer`` to a Status API call says about the request of ``operation``."""
    status = answer.status
    if status is None:
        return Report("pending", f"no answer: {answer.error or 'unknown error'}")
    envelope = parse_object(answer.body)
    message = as_text(field(envelope, "ExceptionMessage") or field(envelope, "message"))
    throttle = field(envelope, "ExceptionType") == "MXAPIRateLimitExceededException"
    if status == HTTPStatus.TOO_MANY_REQUESTS or throttle or stated_limit(message):
        return Report("throttled", f"HTTP {status}: {message}"[:_REASON_MAX])
    if status == HTTPStatus.NOT_FOUND:
        return Report("missing", f"HTTP 404: {message or snippet(answer.body)}"[:_REASON_MAX])
    task = field(envelope, "TaskStatus")
    if status != HTTPStatus.OK or not isinstance(task, dict):
        return Report("pending", f"HTTP {status}: {message or snippet(answer.body)}"[:_REASON_MAX])
    state = as_text(field(task, "Status")).strip()
    reason = as_text(field(task, "StatusReason"))[:_REASON_MAX]
    kind = _DONE.get(state.lower())
    if kind == "succeeded":
        return Report("succeeded", reason, lead_id=_lead_id(field(task, "Message"), operation))
    if kind is None:  # In-Queue, or a state not documented: not finished
        return Report("pending", reason or state)
    exception_type = as_text(field(task, "ExceptionType")) or None
    if exception_type is None and (found := _EXCEPTION_IN_TEXT.search(reason)):
        exception_type = found[1]
    mapping = exception_type in _MAPPING_TYPES or (
        exception_type in _UNSPECIFIC_TYPES and bool(_MAPPING_TEXT.search(reason))
    )
    attribute = _attribute(reason, field(task, "RequestBody")) if mapping else None
    return Report("failed", reason or state, exception_type, mapping=mapping, attribute=attribute)


def read_metrics(answer: Answer) -> Depth | None:
    """The queue a Metrics API answer reports (keys in any casing); ``None`` when it is no such
    answer."""
    if answer.status != HTTPStatus.OK:
        return None
    envelope = parse_object(answer.body)
    pending, delay = field(envelope, "PendingMessages"), field(envelope, "MaxDelayInSeconds")
    rate = field(envelope, "ProcessingRatePerMinute")
    if not isinstance(pending, int | float) or not isinstance(delay, int | float):
        return None
    return Depth(int(pending), float(delay), float(rate) if isinstance(rate, int | float) else None)


def _lead_id(message: object, operation: Operation) -> str | None:
    """The lead id in a Success's ``Message`` (the sync API's answer, JSON-encoded)."""
    if operation == "update" or not isinstance(message, str):
        return None
    details = parse_object(message).get("Message")
    if not isinstance(details, dict):
        return None
    # Lead.Capture names the lead in RelatedId (Id is its capture activity); CreateCustom alike.
    found = field(details, "RelatedId") or field(details, "LeadId") or field(details, "Id")
    return as_text(found) or None


def _attribute(reason: str, request_body: object) -> str | None:
    """The attribute a mapping failure is about: a name of the request that the reason quotes,
    else any name the reason quotes."""
    names = _names(parse_json(request_body)) if isinstance(request_body, str) else set()
    for name in sorted(names, key=len, reverse=True):
        if re.search(rf"\b{re.escape(name)}\b", reason):
            return name
    found = _NAME_IN_TEXT.search(reason)
    return None if found is None else next(group for group in found.groups() if group)


def _names(value: object) -> set[str]:
    """Every ``Attribute`` and ``SchemaName`` in a request body, nested ones included."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            if key in {"Attribute", "SchemaName"} and isinstance(item, str):
                found.add(item)
            else:
                found |= _names(item)
    elif isinstance(value, list):
        for item in value:
            found |= _names(item)
    return found
