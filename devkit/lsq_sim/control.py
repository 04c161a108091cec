"""[I/O] The ``/_sim`` endpoints: inspection (requests, store, status records, stats, config) and
control (faults, outages, key rotation, visitors, leads seeded into a store, reset, waiting for
the work queue). No auth, never limited, never faulted, never logged."""

from __future__ import annotations

import asyncio
import json
from itertools import islice
from typing import TYPE_CHECKING, TypeVar

from aiohttp import web
from pydantic import BaseModel, TypeAdapter, ValidationError

from lsq_sim.config import Faults
from lsq_sim.records import LeadField, MXError
from lsq_sim.state import SIM
from lsq_sim.tasks import BACKGROUND
from lsq_sim.views import (
    AccountStats,
    ActivityView,
    KeyRotation,
    LeadView,
    LoggedRequest,
    OutageRequest,
    QueueStats,
    RequestPage,
    Stats,
    StoreView,
    TaskList,
    TaskView,
    Visitors,
)
from lsq_sim.workqueue import TaskStatus

if TYPE_CHECKING:
    from lsq_sim.state import AccountState, LogEntry, SimState

__all__ = ["add_control_routes"]

_M = TypeVar("_M", bound=BaseModel)
#: ``POST /_sim/accounts/{name}/leads``: lead fields by attribute name, one mapping per lead.
_NEW_LEADS = TypeAdapter(list[dict[str, str]])


def add_control_routes(app: web.Application) -> None:
    """Register every ``/_sim`` route on ``app``."""
    router = app.router
    router.add_get("/_sim/health", _health)
    router.add_get("/_sim/config", _config)
    router.add_get("/_sim/requests", _requests)
    router.add_get("/_sim/store", _store)
    router.add_get("/_sim/tasks", _tasks)
    router.add_get("/_sim/stats", _stats)
    router.add_get("/_sim/faults", _get_faults)
    router.add_put("/_sim/faults", _put_faults)
    router.add_delete("/_sim/faults", _delete_faults)
    router.add_post("/_sim/outages", _outage)
    router.add_post("/_sim/accounts/{name}/keys", _rotate)
    router.add_post("/_sim/accounts/{name}/visitors", _visitors)
    router.add_post("/_sim/accounts/{name}/leads", _add_leads)
    router.add_post("/_sim/reset", _reset)
    router.add_post("/_sim/queue/wait", _wait)
    router.add_route("*", "/_sim/{tail:.*}", _unknown)


def _json(model: BaseModel) -> web.Response:
    return web.json_response(text=model.model_dump_json())


def _error(status: int, message: str) -> web.HTTPException:
    errors: dict[int, type[web.HTTPException]] = {
        400: web.HTTPBadRequest,
        404: web.HTTPNotFound,
        409: web.HTTPConflict,
    }
    return errors[status](text=json.dumps({"error": message}), content_type="application/json")


async def _body(request: web.Request, model: type[_M]) -> _M:
    try:
        return model.model_validate_json(await request.read())
    except ValidationError as exc:
        raise _error(400, str(exc)) from None


def _account(state: SimState, name: str | None) -> AccountState:
    if name is None:
        return next(iter(state.accounts.values()))
    try:
        return state.accounts[name]
    except KeyError:
        raise _error(404, f"no account named {name!r}") from None


def _int_param(request: web.Request, name: str, default: int | None) -> int | None:
    value = request.query.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise _error(400, f"{name} must be an integer") from None


async def _health(_: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _config(request: web.Request) -> web.Response:
    return _json(request.app[SIM].current_config())


async def _requests(request: web.Request) -> web.Response:
    state = request.app[SIM]
    since = _int_param(request, "since", 0) or 0
    limit = _int_param(request, "limit", None)
    log = state.log
    skip = max(0, since - log[0].seq + 1) if log else 0
    entries = islice(log, skip, None if limit is None else skip + limit)
    page = RequestPage(requests=tuple(_logged(e) for e in entries), last_seq=state.seq)
    return _json(page)


def _logged(entry: LogEntry) -> LoggedRequest:
    response = None if entry.response is None else json.loads(entry.response)
    return LoggedRequest(
        seq=entry.seq,
        time=entry.time,
        mono=entry.mono,
        method=entry.method,
        path=entry.path,
        query=entry.query,
        headers=entry.headers,
        body=entry.body,
        account=entry.account,
        status=entry.status,
        answer=entry.answer,
        request_id=entry.request_id,
        response=response,
    )


async def _store(request: web.Request) -> web.Response:
    account = _account(request.app[SIM], request.query.get("account"))
    store = account.store
    view = StoreView(
        account=account.account.name,
        leads=tuple(
            LeadView.model_validate(lead, from_attributes=True) for lead in store.leads.values()
        ),
        activities=tuple(
            ActivityView.model_validate(a, from_attributes=True) for a in store.activities
        ),
        visitors=tuple(sorted(store.visitors)),
    )
    return _json(view)


async def _tasks(request: web.Request) -> web.Response:
    """An account's kept status records (the first account's by default), only those with
    ``status`` when given."""
    state = request.app[SIM]
    account = _account(state, request.query.get("account"))
    wanted = _status_param(request.query.get("status"))
    tasks = tuple(
        TaskView(
            request_id=task.request_id,
            status=task.status,
            reason=task.reason,
            exception_type=task.exception_type,
            operation=task.submission.operation,
        )
        for task in account.queue.records(state.clock())
        if wanted in (None, task.status)
    )
    return _json(TaskList(tasks=tasks))


def _status_param(value: str | None) -> TaskStatus | None:
    if value is None:
        return None
    try:
        return TaskStatus(value)
    except ValueError:
        names = ", ".join(s.value for s in TaskStatus)
        raise _error(400, f"status must be one of {names}, not {value!r}") from None


def _account_stats(account: AccountState) -> AccountStats:
    queue, quota = account.queue, account.quota
    return AccountStats(
        calls=account.calls,
        answers=dict(account.answers),
        status_calls=account.status_calls,
        metrics_calls=account.metrics_calls,
        max_calls_in_window=account.main.window.peak,
        window_s=account.limit.window_s,
        limit=account.limit.calls if account.limit.enabled else None,
        bulk_calls=account.bulk.calls,
        bulk_throttled=account.bulk.throttled,
        max_bulk_calls_in_window=account.bulk.window.peak,
        bulk_window_s=account.bulk_limit.window_s,
        bulk_limit=account.bulk_limit.calls if account.bulk_limit.enabled else None,
        quota_refused=0 if quota is None else quota.refused,
        max_calls_in_day=None if quota is None else quota.day.peak,
        queue=QueueStats(
            pending=queue.pending,
            succeeded=queue.succeeded,
            failed=queue.failed,
            errored=queue.errored,
            lost=queue.lost,
        ),
    )


async def _stats(request: web.Request) -> web.Response:
    state = request.app[SIM]
    stats = Stats(
        accounts={name: _account_stats(a) for name, a in state.accounts.items()},
        unidentified=dict(state.unidentified),
        requests=state.seq,
    )
    return _json(stats)


async def _get_faults(request: web.Request) -> web.Response:
    return _json(request.app[SIM].faults.current())


async def _put_faults(request: web.Request) -> web.Response:
    faults = await _body(request, Faults)
    request.app[SIM].faults.replace(faults)
    return _json(faults)


async def _delete_faults(request: web.Request) -> web.Response:
    request.app[SIM].faults.replace(Faults())
    return _json(Faults())


async def _outage(request: web.Request) -> web.Response:
    outage = await _body(request, OutageRequest)
    state = request.app[SIM]
    start = state.clock() + outage.start_in_s
    window = state.outages.add(start, outage.duration_s, outage.mode)
    if outage.mode == "refuse":
        request.app[BACKGROUND].schedule_refusal(window)
    return web.json_response({"start_in_s": outage.start_in_s, "duration_s": outage.duration_s})


async def _rotate(request: web.Request) -> web.Response:
    state = request.app[SIM]
    name = request.match_info["name"]
    _account(state, name)
    changes = (await _body(request, KeyRotation)).model_dump(exclude_none=True)
    try:
        return _json(state.rotate(name, changes))
    except ValueError as exc:
        raise _error(409, str(exc)) from None


async def _visitors(request: web.Request) -> web.Response:
    account = _account(request.app[SIM], request.match_info["name"])
    visitors = await _body(request, Visitors)
    account.store.visitors.update(visitors.ids)
    return web.json_response({"visitors": len(account.store.visitors)})


async def _add_leads(request: web.Request) -> web.Response:
    """Create leads in the account's store as Lead.Create does (unique fields checked and
    indexed), in order: ``{"leads": [lead id, ...]}``. The first lead that fails stops it with a
    400 naming it; the leads before it stay."""
    account = _account(request.app[SIM], request.match_info["name"])
    try:
        leads = _NEW_LEADS.validate_json(await request.read())
    except ValidationError as exc:
        raise _error(400, str(exc)) from None
    ids: list[str] = []
    for number, lead in enumerate(leads):
        entries = tuple(LeadField(name, value) for name, value in lead.items())
        try:
            ids.append(str(account.store.create(entries)["Id"]))
        except MXError as exc:
            message = f"leads[{number}]: {exc.type}: {exc.message} ({number} created before it)"
            raise _error(400, message) from None
    return web.json_response({"leads": ids})


async def _reset(request: web.Request) -> web.Response:
    request.app[SIM].reset()
    return web.json_response({"reset": True})


async def _wait(request: web.Request) -> web.Response:
    """Wait until every account's work queue is empty, or ``timeout`` seconds (then 408)."""
    state = request.app[SIM]
    try:
        timeout = float(request.query.get("timeout", "30"))
    except ValueError:
        raise _error(400, "timeout must be a number") from None
    deadline = state.clock() + timeout
    while (pending := sum(a.queue.pending for a in state.accounts.values())) and (
        state.clock() < deadline
    ):
        await asyncio.sleep(0.005)
    return web.json_response({"pending": pending}, status=408 if pending else 200)


async def _unknown(request: web.Request) -> web.Response:
    raise _error(404, f"no simulator endpoint {request.method} {request.path}")
