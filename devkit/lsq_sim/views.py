"""The JSON shapes of the ``/_sim`` inspection and control endpoints, as frozen pydantic models:
the server renders them and ``SimClient`` parses them, so both sides share one definition."""

from __future__ import annotations

import json
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from lsq_sim.answers import AnswerClass
from lsq_sim.config import OutageMode
from lsq_sim.records import Operation
from lsq_sim.workqueue import TaskStatus

__all__ = [
    "AccountStats",
    "ActivityView",
    "KeyRotation",
    "LeadView",
    "LoggedRequest",
    "OutageRequest",
    "QueueStats",
    "RequestPage",
    "Stats",
    "StoreView",
    "TaskList",
    "TaskView",
    "Visitors",
]


class _View(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LoggedRequest(_View):
    """One API call as received and answered (``answer`` is None while it is being handled;
    ``status`` and ``response`` are None when the connection was dropped)."""

    seq: int
    time: float  # wall clock, seconds since the epoch
    mono: float  # monotonic clock of the simulator
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # content-type, x-api-key, x-LSQ-* (lower-cased names)
    body: str
    account: str | None
    status: int | None
    answer: AnswerClass | None
    request_id: str | None
    response: JsonValue

    def json_body(self) -> JsonValue:
        """The request body parsed as JSON."""
        parsed: JsonValue = json.loads(self.body)
        return parsed


class RequestPage(_View):
    """``GET /_sim/requests``: calls after ``since``, oldest first."""

    requests: tuple[LoggedRequest, ...]
    last_seq: int


class LeadView(_View):
    """A stored lead."""

    id: str
    fields: dict[str, str]
    sets: dict[str, dict[str, str]]


class ActivityView(_View):
    """A stored activity."""

    id: str
    lead_id: str
    event: int
    note: str | None
    when: str
    fields: Mapping[str, str]
    sets: Mapping[str, Mapping[str, str]]


class StoreView(_View):
    """``GET /_sim/store``: one account's leads and activities, in creation order."""

    account: str
    leads: tuple[LeadView, ...]
    activities: tuple[ActivityView, ...]
    visitors: tuple[str, ...]

    def lead(self, lead_id: str) -> LeadView:
        """The lead with ``lead_id`` (KeyError if absent)."""
        for lead in self.leads:
            if lead.id == lead_id:
                return lead
        raise KeyError(lead_id)

    def leads_where(self, attribute: str, value: str) -> list[LeadView]:
        """The leads whose ``attribute`` is ``value``."""
        return [lead for lead in self.leads if lead.fields.get(attribute) == value]

    def activities_of(self, lead_id: str) -> list[ActivityView]:
        """The activities posted on ``lead_id``."""
        return [a for a in self.activities if a.lead_id == lead_id]


class QueueStats(_View):
    """An account's async work queue."""

    pending: int
    succeeded: int
    failed: int  # FAILURE (application errors)
    errored: int  # ERROR (system errors after every retry)
    lost: int  # accepted and never processed (processing.lost_rate)


class AccountStats(_View):
    """Counters of one account."""

    calls: int  # every API call identified to the account
    answers: dict[AnswerClass, int]
    # Calls the Status API (/lead/status, <submit path>/status) and the Metrics API answered
    # (past faults, auth and limit; 400s and 404s included):
    status_calls: int
    metrics_calls: int
    max_calls_in_window: int  # over calls subject to the limit, throttled ones included
    window_s: float
    limit: int | None  # None when the limit is off
    queue: QueueStats
    # The bulk endpoints' own budget (bulk calls never count in the figures above, but they
    # are in ``calls`` and ``answers``):
    bulk_calls: int  # bulk calls, throttled, faulted and unauthorised ones included
    bulk_throttled: int
    max_bulk_calls_in_window: int  # over every bulk call, like max_calls_in_window
    bulk_window_s: float
    bulk_limit: int | None  # None when the bulk limit is off
    # The daily quota, over every call either budget admits:
    quota_refused: int  # calls a budget admitted and the quota refused (answered as throttled)
    max_calls_in_day: int | None  # most admitted in any window of day_s; None without a quota


class Stats(_View):
    """``GET /_sim/stats``."""

    accounts: dict[str, AccountStats]
    unidentified: dict[AnswerClass, int]
    requests: int  # calls received since start (not reset by the log limit)


class TaskView(_View):
    """One kept status record of the async work queue."""

    request_id: str
    status: TaskStatus
    reason: str | None  # the Status API's StatusReason
    exception_type: str | None
    operation: Operation


class TaskList(_View):
    """``GET /_sim/tasks?account=&status=``: kept status records, oldest submission first."""

    tasks: tuple[TaskView, ...]


class OutageRequest(_View):
    """``POST /_sim/outages``: an outage starting ``start_in_s`` from now."""

    duration_s: float = Field(gt=0.0)
    mode: OutageMode = "http503"
    start_in_s: float = Field(0.0, ge=0.0)


class KeyRotation(_View):
    """``POST /_sim/accounts/{name}/keys``: the keys to replace."""

    access_key: str | None = Field(None, min_length=1)
    secret_key: str | None = Field(None, min_length=1)
    api_key: str | None = Field(None, min_length=1)


class Visitors(_View):
    """``POST /_sim/accounts/{name}/visitors``: anonymous visitor ids (MXCProspectId)."""

    ids: tuple[str, ...]
