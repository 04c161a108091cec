"""[pure] The API surface: which path is which kind of call for which operation, and the Status
API body of a task. Sync and async paths are served by one server (reference §7.1)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from lsq_sim.records import TASK_TYPES, Operation
from lsq_sim.workqueue import TaskStatus

if TYPE_CHECKING:
    from pydantic import JsonValue

    from lsq_sim.workqueue import Task

__all__ = ["ROUTES", "Kind", "Route", "status_body"]


class Kind(StrEnum):
    """What a path does."""

    SUBMIT = "submit"  # async host: queue the request
    SYNC = "sync"  # regular API host: apply at once
    BULK = "bulk"  # regular API host, bulk endpoints: apply at once, own rate budget
    STATUS = "status"
    METRICS = "metrics"


@dataclass(frozen=True, slots=True)
class Route:
    """One API path."""

    kind: Kind
    method: str
    operation: Operation | None  # None: /lead/status answers for every operation


def _async_routes() -> dict[str, Route]:
    paths = {
        Operation.CAPTURE: "/lead/capture",
        Operation.UPDATE: "/lead/update",
        Operation.ACTIVITY_CREATE: "/activity/create",
        Operation.CREATE_CUSTOM: "/activity/createcustom",
    }
    routes: dict[str, Route] = {"/lead/status": Route(Kind.STATUS, "GET", None)}
    for operation, path in paths.items():
        routes[path] = Route(Kind.SUBMIT, "POST", operation)
        routes[f"{path}/status"] = Route(Kind.STATUS, "GET", operation)
        routes[f"{path}/metrics"] = Route(Kind.METRICS, "GET", operation)
    return routes


ROUTES: dict[str, Route] = {
    **_async_routes(),
    "/v2/LeadManagement.svc/Lead.Capture": Route(Kind.SYNC, "POST", Operation.CAPTURE),
    "/v2/LeadManagement.svc/Lead.Create": Route(Kind.SYNC, "POST", Operation.CREATE),
    "/v2/LeadManagement.svc/Lead.Update": Route(Kind.SYNC, "POST", Operation.UPDATE),
    "/v2/ProspectActivity.svc/Create": Route(Kind.SYNC, "POST", Operation.ACTIVITY_CREATE),
    "/v2/ProspectActivity.svc/CreateCustom": Route(Kind.SYNC, "POST", Operation.CREATE_CUSTOM),
    "/v2/LeadManagement.svc/Lead/Bulk/CreateOrUpdate": Route(
        Kind.BULK, "POST", Operation.BULK_CREATE_OR_UPDATE
    ),
    "/v2/ProspectActivity.svc/Bulk/CustomActivity/Add/ByLeadField": Route(
        Kind.BULK, "POST", Operation.BULK_ACTIVITY_BY_FIELD
    ),
}


def status_body(task: Task) -> dict[str, JsonValue]:
    """The Status API answer for ``task``. The top key is ``RequestID`` for Lead Update (as that
    page spells it) and ``RequestId`` otherwise; ``ExceptionType`` is the simulator's addition."""
    operation = task.submission.operation
    key = "RequestID" if operation is Operation.UPDATE else "RequestId"
    queued = task.status is TaskStatus.IN_QUEUE
    return {
        key: task.request_id,
        "TaskStatus": {
            "TaskType": TASK_TYPES[operation],
            "Status": task.status.value,
            "StatusReason": task.reason,
            "TaskCurrentStep": "In-Process-Queue" if queued else None,
            "TaskLastStep": "In-Process-Queue",
            "RequestBody": task.body,
            "Message": task.message,
            "ExceptionType": task.exception_type,
        },
    }
