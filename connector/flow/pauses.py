"""[pure] Which assigned partitions the loop pauses, and why (SPEC §2.5, §13): all of them while
too much is in flight (resumed below 80% of the bounds), and for good those of a route the canary
halted: their records are neither sent nor committed, and they must not fill the in-flight bounds
that the other routes need."""

from __future__ import annotations

from typing import TYPE_CHECKING

from connector.logs import get_logger

if TYPE_CHECKING:
    from collections.abc import Callable, Collection

    from connector.flow.offsets import TopicPartitionKey
    from connector.flow.outcomes import Outcomes
    from connector.flow.ports import Input
    from connector.settings.model import FlowSettings
    from connector.transform.route import Route

__all__ = ["Pauses"]

_log = get_logger(__name__)


class Pauses:
    """The input's paused partitions."""

    def __init__(self, flow: FlowSettings, routes: Callable[[str], Route | None]) -> None:
        self._flow, self._routes = flow, routes
        self.full = False  # too much in flight: every partition is paused
        self.held: set[TopicPartitionKey] = set()  # partitions of halted routes

    def assigned(self, source: Input, tps: list[TopicPartitionKey]) -> None:
        """New partitions join the pause in force."""
        if self.full:
            source.pause(tps)

    def hold(
        self, source: Input, halted: Collection[str], tps: list[TopicPartitionKey] | None = None
    ) -> list[TopicPartitionKey]:
        """Pause the partitions (of ``tps``, else of the assignment) of the ``halted`` routes;
        returns those newly held."""
        if not halted:
            return []
        routes = ((tp, self._routes(tp[0])) for tp in (tps or source.assignment()))
        new = [tp for tp, r in routes if r and r.name in halted and tp not in self.held]
        if new:
            self.held.update(new)
            source.pause(new)
        return new

    def pressure(self, source: Input, outcomes: Outcomes) -> None:
        """Pause the input while too much is in flight, resume it below the bounds (held
        partitions stay paused, and their records do not count)."""
        flow, held = self._flow, self.held
        full = outcomes.pressure(flow.max_in_flight_records, flow.max_in_flight_bytes, held)
        if full is None or full == self.full:
            return
        self.full = full
        tps = [tp for tp in source.assignment() if tp not in held]
        (source.pause if full else source.resume)(tps)
        event, size = "input.paused" if full else "input.resumed", outcomes.bytes_held()
        _log.info(event, records_in_flight=outcomes.pending(), bytes_in_flight=size)

    def forget(self, tps: Collection[TopicPartitionKey]) -> None:
        """Partitions no longer owned."""
        self.held.difference_update(tps)
