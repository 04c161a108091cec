"""[pure] LeadSquared's endpoints, as the seeds document them, and the request the connector makes
of one. An endpoint names its host (the async API host or the regular API host), method and path;
:class:`~connector.adapters.submit.Submitter` adds the account's host and keys. A new call
(a bulk POST, a GET of the Status API) is a new entry here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from connector.records import Mode, Operation

__all__ = ["BULK", "BULK_ROWS", "ENDPOINTS", "Endpoint", "Host", "Request", "endpoint"]

#: ``async``: the async API host (keys in the query string, ``x-api-key`` header);
#: ``api``: the regular API host (keys in ``x-LSQ-*`` headers); ``status``: the async host's Status
#: and Metrics APIs (``x-api-key`` only).
Host = Literal["async", "api", "status"]


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One documented API call."""

    host: Host
    method: Literal["GET", "POST"]
    path: str


#: Each operation's endpoint on the async host and on the regular (sync) API host.
ENDPOINTS: dict[tuple[Operation, Mode], Endpoint] = {
    ("capture", "async"): Endpoint("async", "POST", "/lead/capture"),
    ("update", "async"): Endpoint("async", "POST", "/lead/update"),
    ("lead_and_activity", "async"): Endpoint("async", "POST", "/activity/createcustom"),
    ("capture", "sync"): Endpoint("api", "POST", "/v2/LeadManagement.svc/Lead.Capture"),
    ("update", "sync"): Endpoint("api", "POST", "/v2/LeadManagement.svc/Lead.Update"),
    ("lead_and_activity", "sync"): Endpoint("api", "POST", "/v2/ProspectActivity.svc/CreateCustom"),
    ("create", "sync"): Endpoint("api", "POST", "/v2/LeadManagement.svc/Lead.Create"),
}


#: The bulk calls (reference §2.8) of the operations that have one, on the regular API host: at
#: most :data:`BULK_ROWS` rows each, answered row by row at once.
BULK: dict[Operation, Endpoint] = {
    "capture": Endpoint("api", "POST", "/v2/LeadManagement.svc/Lead/Bulk/CreateOrUpdate"),
    "lead_and_activity": Endpoint(
        "api", "POST", "/v2/ProspectActivity.svc/Bulk/CustomActivity/Add/ByLeadField"
    ),
}
#: LeadSquared's most rows per bulk call.
BULK_ROWS = 25


def endpoint(operation: Operation, mode: Mode) -> Endpoint:
    """The endpoint of ``operation`` in ``mode``."""
    return ENDPOINTS[(operation, mode)]


@dataclass(frozen=True, slots=True)
class Request:
    """One HTTP request without credentials: the endpoint, query parameters, extra headers and the
    JSON body (``None``: no body)."""

    endpoint: Endpoint
    params: tuple[tuple[str, str], ...] = ()
    body: list[Any] | dict[str, Any] | None = None
    headers: tuple[tuple[str, str], ...] = ()
