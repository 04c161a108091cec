"""[pure] From ready jobs to calls. A :class:`Call` is what the loop sends and settles: one HTTP
request of one account, under one of its budgets, on behalf of its member jobs (none for a status
poll), with the interpreter that turns its answer into a verdict per member. A planner decides
which ready jobs go together and on which budget; :class:`SinglePlanner` sends each job alone, on
the main budget. Every kind of call goes through this seam (records, bulk rows, status polls)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from connector.flow.accounts import MAIN
from connector.flow.gates import LOG
from connector.lsq.answers import single
from connector.lsq.catalog import Request, endpoint

if TYPE_CHECKING:
    from collections.abc import Callable

    from connector.flow.accounts import Account, Budget
    from connector.flow.lanes import Job, Lanes
    from connector.flow.offsets import TopicPartitionKey
    from connector.lsq.answers import Settlement
    from connector.lsq.catalog import Endpoint
    from connector.records import Answer
    from connector.transform.route import Route

__all__ = ["Call", "Planner", "SinglePlanner"]


@dataclass(slots=True, eq=False)
class Call:
    """One call to LeadSquared and the jobs it settles."""

    account: str
    budget: Budget
    request: Request
    members: tuple[Job, ...]
    interpret: Callable[[Answer], Settlement]
    slot: int = LOG  # the gate's slot it holds while in flight (RateGate.acquire)
    id: str | None = None  # names a call of several records in their results records
    tp: TopicPartitionKey | None = None  # the partition charged for it (default: its first job's)

    def __post_init__(self) -> None:
        if self.tp is None and self.members:
            self.tp = self.members[0].tp

    @property
    def dropped(self) -> bool:
        """Whether every member's partition was revoked meanwhile (its answer changes nothing;
        a call without members settles what it is for itself)."""
        return bool(self.members) and all(job.dropped for job in self.members)


class Planner(Protocol):
    """Chooses the next call of an account from its ready jobs."""

    def next_call(
        self, account: Account, lanes: Lanes, now: float, allow: Callable[[Job], bool] | None
    ) -> Call | None: ...

    def wait(self, account: Account, lanes: Lanes, now: float) -> float:
        """Seconds until a budget lets a call of ``account``'s ready jobs start."""
        ...


class SinglePlanner:
    """One call per job, on the main budget, to the endpoint of its route's operation and mode."""

    def __init__(self, routes: Callable[[str], Route | None]) -> None:
        self._routes = routes
        self._targets: dict[str, tuple[Endpoint, Callable[[Answer], Settlement]]] = {}

    def next_call(
        self, account: Account, lanes: Lanes, now: float, allow: Callable[[Job], bool] | None
    ) -> Call | None:
        """The next ready job of ``account`` that ``allow`` accepts (live changes first), as a
        call, if the main budget lets one start now."""
        if not account.may_send(MAIN, now):
            return None
        job = lanes.take(account.name, now, allow)
        if job is None:
            return None
        target, interpret = self._target(job.record.topic)
        request = Request(target, job.payload.params, job.payload.body)
        return Call(account.name, MAIN, request, (job,), interpret)

    def wait(self, account: Account, lanes: Lanes, now: float) -> float:  # noqa: ARG002
        """Seconds until the main budget lets a call start."""
        return account.wait(MAIN, now)

    def _target(self, topic: str) -> tuple[Endpoint, Callable[[Answer], Settlement]]:
        """The endpoint and interpreter of the route of ``topic`` (the same for all its calls)."""
        if (found := self._targets.get(topic)) is None:
            route = self._routes(topic)
            assert route is not None  # noqa: S101 - jobs only exist for routed records
            found = endpoint(route.operation, route.mode), single(route.operation, route.mode)
            self._targets[topic] = found
        return found
