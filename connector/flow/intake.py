"""[pure] Steps 2-4 of the loop for one consumed record: its route decodes, unwraps and maps it
(:meth:`~connector.transform.route.Route.prepare`), and it becomes a job in its key's lane, or an
outcome without a call (after its key's earlier outcomes), or is held back with its route."""

from __future__ import annotations

from typing import TYPE_CHECKING

from connector.flow.lanes import Job
from connector.records import DeadLetter, Skip

if TYPE_CHECKING:
    from collections.abc import Callable, Collection

    from connector.flow.dispatch import Dispatcher
    from connector.flow.outcomes import Outcomes
    from connector.records import SourceRecord
    from connector.transform.route import Route

__all__ = ["intake"]


def intake(
    record: SourceRecord,
    *,
    route_of: Callable[[str], Route | None],
    outcomes: Outcomes,
    dispatcher: Dispatcher,
    held: Collection[str],
    now: float,
) -> None:
    """Take ``record`` in at ``now``; records of the routes in ``held`` are neither sent nor
    committed until their route is released (e.g. halted by the canary)."""
    if not outcomes.take(record):
        return
    route = route_of(record.topic)
    if route is None:  # subscribed by the routes' patterns, so only a misconfigured group
        why = DeadLetter("route", f"no route consumes topic {record.topic!r}", "NoRoute")
        outcomes.dead_letter(record, None, why)
        return
    prepared = route.prepare(record)
    if isinstance(prepared, Skip | DeadLetter):  # after its key's earlier outcomes
        dispatcher.settle_without_call(record, route, prepared)
    elif route.name not in held:
        live = not prepared.snapshot
        dispatcher.queue(Job(record, route.name, route.account, prepared, now, live=live), route)
