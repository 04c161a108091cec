"""[pure] Partition participants: everything that keeps state per source partition beside the
loop (fingerprints, quota counts, status checks, outcomes found again) takes part in the loop
through one protocol, in the shape of Kafka Connect's ``SinkTask.open/close`` and faust's sensor
delegate. A :class:`Participant` overrides the hooks it needs; the others do nothing.

Partitions: :meth:`~Participant.assigned` (read back what the last owner left),
:meth:`~Participant.revoking` (the partitions' calls are settled and committed: make durable what
the next owner reads back, by the deadline), :meth:`~Participant.closing` (the same for every
partition, at a graceful stop), :meth:`~Participant.forget` (no longer owned).

The loop: calls of their own (planners before and after the records'), routes whose records are
held back, the least time a turn waits, reasons not to count as ready, progress and snapshot
fields. Jobs: a payload LeadSquared already holds (skipped as a no-op), whether a call may go now,
accepted, and records whose change LeadSquared may not hold (doubted).

The :class:`Participants` delegate fans each hook out to its list, empty when no feature is on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Mapping, Sequence

    from connector.flow.accounts import Account
    from connector.flow.deadline import Deadline
    from connector.flow.lanes import Job
    from connector.flow.observe import Snapshot
    from connector.flow.offsets import TopicPartitionKey
    from connector.flow.outcomes import Outcomes
    from connector.flow.planner import Planner
    from connector.records import Accepted, DeadLetter, Skip, SourceRecord
    from connector.transform.route import Route

__all__ = ["Loop", "Participant", "Participants"]


@dataclass(frozen=True, slots=True)
class Loop:
    """The parts of the loop a participant may use, handed to it when the loop is built."""

    accounts: Mapping[str, Account]
    route_of: Callable[[str], Route | None]
    outcomes: Outcomes
    clock: Callable[[], float]
    wall: Callable[[], float]
    #: the positions the group committed for partitions (the Kafka input's)
    committed: Callable[[list[TopicPartitionKey]], dict[TopicPartitionKey, int]]
    #: calls in flight of a route
    calls_out: Callable[[str], int]
    #: LeadSquared may not hold the change of a record: every participant hears it
    doubt: Callable[[SourceRecord], None]


class Participant:
    """One feature's part in the loop: every hook does nothing until overridden."""

    # -- partitions -----------------------------------------------------------------------------

    def assigned(self, tps: list[TopicPartitionKey]) -> None:
        """Newly owned partitions: read back what their last owner left."""

    def revoking(self, tps: Collection[TopicPartitionKey], deadline: Deadline) -> None:
        """The calls of ``tps`` settled and committed: make durable what their next owner reads
        back, by ``deadline`` (before :meth:`forget`)."""

    def closing(self, deadline: Deadline) -> None:
        """A graceful stop, every call settled and committed: as :meth:`revoking`, for all."""

    def forget(self, tps: Collection[TopicPartitionKey]) -> None:
        """Partitions no longer owned: drop their state."""

    # -- the loop -------------------------------------------------------------------------------

    def planners(self) -> tuple[Sequence[Planner], Sequence[Planner]]:
        """Calls of its own: planners asked before the records' and after them."""
        return (), ()

    def before_calls(self) -> None:
        """A turn of the loop, before calls are planned (answers of earlier ones settled)."""

    def after_calls(self, now: float) -> None:
        """A turn of the loop, after the calls the budgets allowed at ``now`` went out."""

    def held_routes(self) -> Collection[str]:
        """Routes whose records are held back: neither sent nor committed."""
        return ()

    def idle_floor(self) -> float:
        """Least seconds a turn of the loop waits for work (so it does not spin)."""
        return 0.0

    def not_ready(self) -> list[str]:
        """Why the replica should not count as ready."""
        return []

    def progress(self) -> dict[str, Any]:
        """Fields of the progress line."""
        return {}

    def snapshot(self, snapshot: Snapshot) -> Snapshot:
        """The health port's snapshot, with what this participant shows."""
        return snapshot

    # -- jobs -----------------------------------------------------------------------------------

    def unchanged(self, job: Job, route: Route) -> bool:  # noqa: ARG002 - a hook
        """Whether LeadSquared already holds ``job``'s payload (it is skipped as a no-op)."""
        return False

    def admission(self) -> Callable[[Job], bool] | None:
        """Which jobs' calls may go out now (``None``: every job's), asked once a turn."""
        return None

    def accepted(self, job: Job, route: Route, accepted: Accepted) -> None:
        """LeadSquared accepted ``job``'s call."""

    def doubted(self, record: SourceRecord) -> None:
        """LeadSquared may not hold ``record``'s change (dead-lettered after a call, failed or
        unknown in its queue)."""

    def settled(self, record: SourceRecord, outcome: Skip | DeadLetter | None) -> None:
        """``record`` had ``outcome`` without a call."""


class Participants(Participant):
    """Every participant of the loop, as one."""

    def __init__(self, members: Sequence[Participant] = ()) -> None:
        self.members = tuple(members)

    def assigned(self, tps: list[TopicPartitionKey]) -> None:
        for member in self.members:
            member.assigned(tps)

    def revoking(self, tps: Collection[TopicPartitionKey], deadline: Deadline) -> None:
        for member in self.members:
            member.revoking(tps, deadline)

    def closing(self, deadline: Deadline) -> None:
        for member in self.members:
            member.closing(deadline)

    def forget(self, tps: Collection[TopicPartitionKey]) -> None:
        for member in self.members:
            member.forget(tps)

    def planners(self) -> tuple[Sequence[Planner], Sequence[Planner]]:
        pairs = [member.planners() for member in self.members]
        return [p for pair in pairs for p in pair[0]], [p for pair in pairs for p in pair[1]]

    def before_calls(self) -> None:
        for member in self.members:
            member.before_calls()

    def after_calls(self, now: float) -> None:
        for member in self.members:
            member.after_calls(now)

    def held_routes(self) -> Collection[str]:
        return {route for member in self.members for route in member.held_routes()}

    def idle_floor(self) -> float:
        return max((member.idle_floor() for member in self.members), default=0.0)

    def not_ready(self) -> list[str]:
        return [reason for member in self.members for reason in member.not_ready()]

    def progress(self) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        for member in self.members:
            fields |= member.progress()
        return fields

    def snapshot(self, snapshot: Snapshot) -> Snapshot:
        for member in self.members:
            snapshot = member.snapshot(snapshot)
        return snapshot

    def unchanged(self, job: Job, route: Route) -> bool:
        return any(member.unchanged(job, route) for member in self.members)

    def admission(self) -> Callable[[Job], bool] | None:
        checks = [check for m in self.members if (check := m.admission()) is not None]
        if len(checks) <= 1:
            return checks[0] if checks else None
        return lambda job: all(check(job) for check in checks)

    def accepted(self, job: Job, route: Route, accepted: Accepted) -> None:
        for member in self.members:
            member.accepted(job, route, accepted)

    def doubted(self, record: SourceRecord) -> None:
        for member in self.members:
            member.doubted(record)

    def settled(self, record: SourceRecord, outcome: Skip | DeadLetter | None) -> None:
        for member in self.members:
            member.settled(record, outcome)
