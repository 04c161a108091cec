"""[I/O] The aiohttp application. Every API call is logged on arrival, then goes
faults → auth → limit → validate → handle; ``/_sim/*`` (control.py) is never faulted, limited
or logged. Bulk calls draw on the account's bulk budget only; the others on its main budget.
Every call a budget admits must then pass the account's daily quota, if it has one."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web

from lsq_sim import answers, bulk
from lsq_sim.answers import Answer, AnswerClass
from lsq_sim.bodies import (
    BodyError,
    parse_bulk_activities,
    parse_bulk_leads,
    parse_submission,
)
from lsq_sim.control import add_control_routes
from lsq_sim.faults import outage_plan
from lsq_sim.ops import execute
from lsq_sim.records import MXError, Operation
from lsq_sim.routes import ROUTES, Kind, Route, status_body
from lsq_sim.state import SIM, AccountState, SimState
from lsq_sim.tasks import BACKGROUND, Background, background_context
from lsq_sim.workqueue import Task

if TYPE_CHECKING:
    from collections.abc import Mapping

    from lsq_sim.config import SimConfig
    from lsq_sim.faults import FaultPlan
    from lsq_sim.records import Submission
    from lsq_sim.state import Budget

__all__ = ["build_app"]


def build_app(config: SimConfig) -> web.Application:
    """The simulator as an aiohttp application (serve it with ``lsq_stack.serve``)."""
    state = SimState(config)
    app = web.Application()
    app[SIM] = state
    app[BACKGROUND] = Background(app, state)
    app.cleanup_ctx.append(background_context)
    add_control_routes(app)
    app.router.add_route("*", "/{tail:.*}", handle_api)
    return app


@dataclass(frozen=True, slots=True)
class Call:
    """An API call as received."""

    method: str
    path: str
    query: Mapping[str, str]  # parameter names lower-cased
    headers: Mapping[str, str]
    raw: bytes
    text: str
    arrived: float
    account: AccountState | None


async def handle_api(request: web.Request) -> web.StreamResponse:
    """Log, answer (or drop) one API call."""
    state = request.app[SIM]
    arrived = state.clock()
    raw = await request.read()
    text = raw.decode("utf-8", errors="replace")
    query = {name.lower(): value for name, value in request.query.items()}
    account = state.identify(query, request.headers)
    entry = state.receive(
        request.method,
        request.path,
        query=request.query,
        headers=request.headers,
        body=text,
        account=account,
    )
    call = Call(request.method, request.path, query, request.headers, raw, text, arrived, account)
    answer = await _answer(state, call)
    if answer.drop:
        state.answered(entry, account, answer, None)
        request.protocol.force_close()  # the client sees the connection close without an answer
        return web.Response()
    body = json.dumps(answer.body).encode()
    state.answered(entry, account, answer, body)
    return web.Response(
        body=body,
        status=answer.status,
        headers=answer.headers,
        content_type="application/json",
    )


async def _answer(state: SimState, call: Call) -> Answer:
    route = ROUTES.get(call.path)
    counted = None if route is None or call.account is None else _budget(route, call.account)
    if counted is not None:
        counted.count(call.arrived)
    plan = _fault_plan(state, call)
    if plan.delay_s:
        await asyncio.sleep(plan.delay_s)
    if plan.drop:
        return Answer(0, None, AnswerClass.DROPPED, drop=True)
    if plan.respond is not None:
        return Answer(plan.respond[0], plan.respond[1], AnswerClass.FAULT)
    if route is None or route.method != call.method:
        return answers.not_found(f"API not found: {call.method} {call.path}")
    account = _authenticate(state, route, call)
    if isinstance(account, Answer):
        return account
    budget = _budget(route, account)
    refused = None if budget is None else _refusal(account, budget, state.clock())
    if refused is not None:
        return refused
    if route.kind is Kind.BULK:
        return _bulk(route, account, call)
    return _handle(state, route, account, call)


def _budget(route: Route, account: AccountState) -> Budget | None:
    """The budget a call to ``route`` draws on, if any."""
    if route.kind is Kind.BULK:
        return account.bulk
    limited = account.counts_against_limit(route.kind in (Kind.STATUS, Kind.METRICS))
    return account.main if limited else None


def _refusal(account: AccountState, budget: Budget, now: float) -> Answer | None:
    """The throttle answer for a call at ``now`` over ``budget``, or then over the account's
    daily quota (such a call has used rate budget, but no quota); None when it is admitted."""
    if not budget.limiter.admit(now):
        budget.throttled += 1
        return answers.throttled(budget.limit)
    quota = account.quota
    if quota is not None and not quota.day.admit(now):
        quota.refused += 1
        return answers.over_quota(account.limit, quota.limit)
    return None


def _fault_plan(state: SimState, call: Call) -> FaultPlan:
    mode = state.outages.active(call.arrived)
    if mode is not None:
        return outage_plan(mode)
    return state.faults.plan(call.path, call.text, state.fault_rng)


def _authenticate(state: SimState, route: Route, call: Call) -> AccountState | Answer:
    """Sync: accessKey/secretKey in the query or x-LSQ-* headers. Async: x-api-key, and for
    submissions also accessKey/secretKey in the query."""
    query, headers = call.query, call.headers
    if route.kind in (Kind.SYNC, Kind.BULK):
        access = query.get("accesskey") or headers.get("x-lsq-accesskey")
        secret = query.get("secretkey") or headers.get("x-lsq-secretkey")
        found = state.by_access_key(access)
        if found is None or found.account.secret_key != secret:
            return answers.unauthorized()
        return found
    found = state.by_api_key(headers.get("x-api-key"))
    if found is None:
        return answers.forbidden(state.config.api_key_status)
    keys = (query.get("accesskey"), query.get("secretkey"))
    if route.kind is Kind.SUBMIT and keys != (found.account.access_key, found.account.secret_key):
        return answers.unauthorized()
    return found


def _handle(state: SimState, route: Route, account: AccountState, call: Call) -> Answer:
    if route.kind is Kind.STATUS:
        account.status_calls += 1
        return _status(state, route, account, call)
    if route.operation is None:  # never: only /lead/status has no operation
        raise AssertionError(route)
    if route.kind is Kind.METRICS:
        account.metrics_calls += 1
        rate = state.config.processing.rate
        return answers.success(account.queue.metrics(route.operation, state.clock(), rate))
    content_type = call.headers.get("content-type")
    try:
        submission = parse_submission(route.operation, content_type, call.raw, call.query)
        if route.kind is Kind.SYNC:
            return answers.success(execute(account.store, submission))
    except BodyError as exc:
        return answers.bad_request(exc.message)
    except MXError as exc:
        return answers.mx_error(exc, state.config.error_style)
    return _enqueue(state, account, submission, call)


def _bulk(route: Route, account: AccountState, call: Call) -> Answer:
    """A bulk call: HTTP 400 (nothing applied) for a bad call, else 200 with one result per row
    (row errors are inside the 200, so the error style does not apply)."""
    content_type = call.headers.get("content-type")
    try:
        if route.operation is Operation.BULK_CREATE_OR_UPDATE:
            rows = parse_bulk_leads(content_type, call.raw)
            return answers.success(bulk.create_or_update(account.store, rows))
        search_by, items = parse_bulk_activities(content_type, call.raw, call.query)
        return answers.success(bulk.add_activities(account.store, search_by, items))
    except BodyError as exc:
        return answers.bad_request(exc.message)


def _enqueue(state: SimState, account: AccountState, submission: Submission, call: Call) -> Answer:
    processing = state.config.processing
    now = state.clock()
    task = Task(state.new_id(), submission, call.text, now, now + processing.delay_s)
    lost = bool(processing.lost_rate) and state.work_rng.random() < processing.lost_rate
    account.queue.submit(task, lost=lost)
    account.wake.set()
    return answers.accepted(task.request_id)


def _status(state: SimState, route: Route, account: AccountState, call: Call) -> Answer:
    """The Status API; a record forgotten (task_record_limit, task_record_ttl_s) is unknown."""
    request_id = call.query.get("requestid")
    if not request_id:
        return answers.bad_request("the RequestID query parameter is required")
    task = account.queue.get(request_id, state.clock())
    if task is None or route.operation not in (None, task.submission.operation):
        return answers.not_found(f"No request found with RequestID {request_id}")
    return answers.success(status_body(task))
