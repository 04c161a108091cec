"""[I/O] The simulator's background work on the event loop: one worker per account applying
queued requests at the configured rate, and outage timers that stop and restart listening."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import TYPE_CHECKING

from aiohttp import web

from lsq_sim.failures import draw_failure
from lsq_sim.ops import execute
from lsq_sim.records import MXError
from lsq_stack.serve import RUNNER

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Coroutine

    from lsq_sim.faults import OutageWindow
    from lsq_sim.state import AccountState, SimState
    from lsq_sim.workqueue import Task

__all__ = ["BACKGROUND", "SYSTEM_ERROR", "Background", "apply_task", "run_worker"]

#: The reason of an injected system error (the async API's own example).
SYSTEM_ERROR = "Unable to Connect to DB"
_MAX_LAG_S = 0.05  # how far a worker may catch up after sleeping late


def apply_task(state: SimState, account: AccountState, task: Task, now: float) -> None:
    """One processing attempt: a system error (retried later), FAILURE (an injected application
    error or the store's own) or Success."""
    task.attempts += 1
    error_rate = state.config.processing.error_rate
    if error_rate and state.work_rng.random() < error_rate:
        account.queue.system_error(task, SYSTEM_ERROR, now)
        return
    outcome = _attempt(state, account, task)
    if isinstance(outcome, MXError):
        account.queue.fail(task, outcome.type, outcome.message, now)
    else:
        account.queue.succeed(task, outcome, now)


def _attempt(state: SimState, account: AccountState, task: Task) -> str | MXError:
    """The sync response (JSON) of applying ``task``, or the MX error it ends with instead."""
    injected = draw_failure(state.config.processing, task.submission, state.work_rng)
    if injected is not None:
        return injected
    try:
        result = execute(account.store, task.submission)
    except MXError as exc:
        return exc
    return json.dumps(result, separators=(",", ":"))


async def run_worker(state: SimState, account: AccountState) -> None:
    """Apply the account's queued tasks in order, at most ``processing.rate`` per second."""
    interval = 1.0 / state.config.processing.rate
    next_slot = state.clock()
    while True:
        due = account.queue.next_due()
        now = state.clock()
        start = None if due is None else max(due, next_slot)
        if start is None or start > now:
            account.wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(None if start is None else start - now):
                    await account.wake.wait()
            continue
        task = account.queue.pop_due(now)
        if task is not None:
            apply_task(state, account, task, now)
            next_slot = max(next_slot, now - _MAX_LAG_S) + interval
        await asyncio.sleep(0)


class Listener:
    """Stops and restarts listening on the server's port (the ``refuse`` outage mode)."""

    def __init__(self, app: web.Application) -> None:
        self._app = app
        self._refusals = 0
        self._address: tuple[str, int] | None = None

    async def refuse(self) -> None:
        """Stop accepting connections and close idle ones (nested refusals are counted)."""
        self._refusals += 1
        if self._refusals > 1:
            return
        runner = self._app[RUNNER]
        while not runner.addresses:  # an outage at t=0 may begin before the site is up
            await asyncio.sleep(0.005)
        host, port = runner.addresses[0][:2]
        self._address = (host, port)
        for site in list(runner.sites):
            await site.stop()
        if runner.server is not None:  # as aiohttp's own shutdown: idle ones close at once,
            connections = runner.server.connections  # busy ones after their answer
            for connection in connections:
                connection.close()
            await asyncio.gather(*(c.shutdown(1.0) for c in connections))

    async def accept(self) -> None:
        """Listen again on the same address once the last refusal ends."""
        self._refusals -= 1
        if self._refusals or self._address is None:
            return
        host, port = self._address
        await web.TCPSite(self._app[RUNNER], host, port, reuse_address=True).start()


class Background:
    """The background tasks of one application, cancelled together at cleanup."""

    def __init__(self, app: web.Application, state: SimState) -> None:
        self.state = state
        self._tasks: set[asyncio.Task[None]] = set()
        self.listener = Listener(app)

    def spawn(self, coro: Coroutine[None, None, None]) -> None:
        """Run ``coro`` until it ends or the application stops."""
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def schedule_refusal(self, window: OutageWindow) -> None:
        """Refuse connections during ``window``."""
        self.spawn(self._refusal(window))

    async def _refusal(self, window: OutageWindow) -> None:
        await asyncio.sleep(max(0.0, window.start - self.state.clock()))
        await self.listener.refuse()
        await asyncio.sleep(max(0.0, window.end - self.state.clock()))
        await self.listener.accept()

    async def close(self) -> None:
        """Cancel every task and wait for them."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


#: The background tasks in the aiohttp application.
BACKGROUND = web.AppKey("lsq_sim_background", Background)


async def background_context(app: web.Application) -> AsyncIterator[None]:
    """Start the workers and the configured refusal outages; cancel them at cleanup."""
    background = app[BACKGROUND]
    state = background.state
    for account in state.accounts.values():
        background.spawn(run_worker(state, account))
    for window in state.outages.windows():
        if window.mode == "refuse":
            background.schedule_refusal(window)
    yield
    await background.close()
