"""``lsq-sink validate --live`` (SPEC §13): prove each route's mapping with one real call before the
first deploy. One rendered sample per route is sent exactly as the connector sends it; an async
route's RequestID is then polled on the Status API until LeadSquared applied or refused it.

The pure parts come first (the poll schedule, the JSON lines); :func:`live` makes the calls."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from connector.adapters.submit import Submitter, pooled_transport
from connector.lsq.answers import classify
from connector.lsq.catalog import Request, endpoint
from connector.lsq.status import STATUS_PATHS, Report, read_status, status_request
from connector.records import Answer

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    import httpx

    from connector.lsq.answers import Verdict
    from connector.records import Payload
    from connector.settings.model import AccountSettings, Settings
    from connector.transform.route import Route

__all__ = [
    "FIRST_POLL_S",
    "MAX_POLL_S",
    "PROGRESS_S",
    "Sample",
    "live",
    "poll_delay",
    "status_line",
    "submit_line",
    "waiting_line",
]

#: The first Status API poll comes this long after the call was accepted; the next ones at
#: doubling intervals up to :data:`MAX_POLL_S`. Shorter than the connector's own
#: ``status.first_poll_seconds``: someone is waiting, and it is one call per route.
FIRST_POLL_S = 1.0
MAX_POLL_S = 5.0
#: A ``live_waiting`` line for each route still waiting, at most this often.
PROGRESS_S = 5.0

Line = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Sample:
    """The one rendered sample a route sends: the first that rendered to a payload for it."""

    route: Route
    payload: Payload


# -- pure: the schedule and the lines -----------------------------------------------------------


def poll_delay(polls: int, last: Report | None) -> float:
    """Seconds until the next Status API poll, after ``polls`` polls whose last said ``last``:
    1 s, 2 s, 4 s, then 5 s; a throttled answer waits the longest."""
    if last is not None and last.kind == "throttled":
        return MAX_POLL_S
    return min(MAX_POLL_S, FIRST_POLL_S * 2.0 ** min(polls, 16))  # bounded: no float overflow


def submit_line(route: Route, answer: Answer, verdict: Verdict) -> Line:
    """The line of a sample's call: what LeadSquared answered; an ``error`` unless accepted."""
    line: Line = {
        "check": "live",
        "route": route.name,
        "account": route.account,
        "operation": route.operation,
        "mode": route.mode,
        "http_status": answer.status,
        "request_id": verdict.request_id,
    }
    if route.mode == "sync":
        line["lead_id"] = verdict.lead_id
    if verdict.kind == "accepted":
        return line
    return line | {"verdict": verdict.kind, "error": _refusal(verdict)}


def status_line(route: Route, request_id: str, report: Report, waited_s: float, path: str) -> Line:
    """The line of a RequestID's end: ``report`` is the last Status API answer (not terminal when
    the wait timed out: status ``unknown``). An ``error`` unless LeadSquared applied it."""
    line: Line = {
        "check": "live_status",
        "route": route.name,
        "request_id": request_id,
        "status": report.kind if report.kind in {"succeeded", "failed"} else "unknown",
        "reason": report.reason,
        "exception_type": report.exception_type,
        "lead_id": report.lead_id,
        "mapping_error": report.mapping,
        "attribute": report.attribute,
        "waited_s": round(waited_s, 1),
    }
    if report.kind == "succeeded":
        return line
    if report.kind == "failed":
        return line | {"error": _failure(report)}
    return line | {"error": _no_status(report, waited_s, path)}


def waiting_line(route: Route, request_id: str, last: Report | None, waited_s: float) -> Line:
    """A progress line while a RequestID has no terminal status yet."""
    return {
        "check": "live_waiting",
        "route": route.name,
        "request_id": request_id,
        "waited_s": round(waited_s, 1),
        "last": None if last is None else last.kind,
    }


def _refusal(verdict: Verdict) -> str:
    if verdict.kind == "auth":
        return f"LeadSquared rejected the account's keys: {verdict.reason}"
    if verdict.kind == "throttled":
        return f"still throttled when --live-timeout ran out: {verdict.reason}"
    return f"LeadSquared did not accept the call: {verdict.reason}"


def _failure(report: Report) -> str:
    if report.mapping and report.attribute:
        return (
            f"the mapping is wrong: LeadSquared refused attribute {report.attribute!r} "
            f"({report.reason}); fix the route's mapping"
        )
    if report.mapping:
        return f"the mapping is wrong: {report.reason}; fix the route's mapping"
    return f"LeadSquared failed the request: {report.reason}"


def _no_status(report: Report, waited_s: float, path: str) -> str:
    waited = f"no terminal status within {waited_s:.0f} s"
    if report.kind == "missing":
        return f"{waited}: the Status API at {path} does not know the RequestID (see status.paths)"
    return f"{waited} (last answer: {report.kind}: {report.reason}); try a longer --live-timeout"


# -- I/O: the calls ------------------------------------------------------------------------------


class _Calls:
    """One call at a time through the :class:`Submitter`, counted."""

    def __init__(
        self,
        accounts: Mapping[str, AccountSettings],
        transport: Callable[[AccountSettings], httpx.BaseTransport],
        clock: Callable[[], float],
    ) -> None:
        self._submitter = Submitter(accounts, transport)
        self._accounts, self._clock = accounts, clock
        self.made = 0

    def call(self, account: str, request: Request) -> Answer:
        """Make the call and wait for its answer (the account's timeouts bound the wait)."""
        self.made += 1
        ticket = self.made
        settings = self._accounts[account]
        wait = settings.connect_timeout_seconds + settings.request_timeout_seconds + 1.0
        self._submitter.submit(ticket, account, request)
        deadline = self._clock() + wait
        while (left := deadline - self._clock()) > 0:
            for answered, answer in self._submitter.collect(left):
                if answered == ticket:  # an earlier call given up on may still answer: skipped
                    return answer
        return Answer(None, error=f"no answer within {wait:.0f} s")

    def close(self) -> None:
        self._submitter.close()


@dataclass(slots=True)
class _Check:
    """An accepted RequestID waiting for its terminal status."""

    route: Route
    request_id: str
    path: str
    since: float
    due: float  # when the next poll goes out
    shown: float  # when it was last shown waiting
    polls: int = 0
    last: Report | None = None


def live(
    settings: Settings,
    samples: Mapping[str, Sample],
    emit: Callable[[Line], None],
    timeout: float,
    *,
    transport: Callable[[AccountSettings], httpx.BaseTransport] = pooled_transport,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Send each route's sample (by route name) and wait up to ``timeout`` seconds for the
    terminal status of each accepted async one; emit a line for each. Returns the calls made."""
    calls = _Calls(settings.accounts, transport, clock)
    paths = STATUS_PATHS | settings.status.paths
    checks: list[_Check] = []
    try:
        for route_settings in settings.routes:
            sample = samples.get(route_settings.name)
            if sample is None:
                skipped = "no sample rendered to a payload for this route: nothing sent"
                emit({"check": "live", "route": route_settings.name, "skipped": skipped})
                continue
            route = sample.route
            answer, verdict = _send(calls, sample, timeout, clock=clock, sleep=sleep)
            emit(submit_line(route, answer, verdict))
            if route.mode == "async" and verdict.kind == "accepted" and verdict.request_id:
                now = clock()
                path = paths[route.operation]
                due = now + poll_delay(0, None)
                checks.append(_Check(route, verdict.request_id, path, now, due, now))
        _await(calls, checks, emit, timeout, clock=clock, sleep=sleep)
    finally:
        calls.close()
    return calls.made


def _send(
    calls: _Calls,
    sample: Sample,
    timeout: float,
    *,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
) -> tuple[Answer, Verdict]:
    """The connector's call for ``sample``, sent again while throttled (it was not taken) and
    ``timeout`` allows; any other answer is final (a retry could apply it twice)."""
    route, payload = sample.route, sample.payload
    request = Request(endpoint(route.operation, route.mode), payload.params, payload.body)
    deadline = clock() + timeout
    while True:
        answer = calls.call(route.account, request)
        verdict = classify(answer, route.operation, route.mode)
        pause = verdict.limit[1] if verdict.limit else MAX_POLL_S
        if verdict.kind != "throttled" or clock() + pause > deadline:
            return answer, verdict
        sleep(pause)


def _await(
    calls: _Calls,
    checks: list[_Check],
    emit: Callable[[Line], None],
    timeout: float,
    *,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
) -> None:
    """Poll each check's RequestID when due until it is terminal or ``timeout`` has passed since
    it was accepted; show each still waiting every :data:`PROGRESS_S`."""
    while checks:
        now = clock()
        for waiting in checks:
            if now - waiting.shown >= PROGRESS_S:
                emit(
                    waiting_line(
                        waiting.route, waiting.request_id, waiting.last, now - waiting.since
                    )
                )
                waiting.shown = now
        check = min(checks, key=lambda c: c.due)
        if check.due > now:
            next_shown = min(c.shown for c in checks) + PROGRESS_S
            sleep(min(check.due, next_shown) - now)
            continue
        answer = calls.call(check.route.account, status_request(check.path, check.request_id))
        check.polls += 1
        check.last = report = read_status(answer, check.route.operation)
        now = clock()
        waited = now - check.since
        if report.kind in {"succeeded", "failed"} or waited >= timeout:
            emit(status_line(check.route, check.request_id, report, waited, check.path))
            checks.remove(check)
        else:
            check.due = min(now + poll_delay(check.polls, report), check.since + timeout)
