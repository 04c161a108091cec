"""[pure] What the health port serves: the :class:`Snapshot` of the loop's state (the loop
publishes one about once a second; the server thread only ever reads the latest), the views of
accounts, daily quotas and completion tracking it holds, and why a replica is not ready. The counts
are in :mod:`connector.flow.tally`, the progress line in :mod:`connector.flow.progress`."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from connector.flow.accounts import BULK, MAIN
from connector.flow.tally import Buckets, Tally

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from connector.flow.accounts import Account, Budget
    from connector.flow.outcomes import Outcomes

__all__ = [
    "AccountView",
    "QuotaView",
    "Snapshot",
    "TrackingView",
    "account_view",
    "not_ready",
    "quota_view",
    "take_snapshot",
]


@dataclass(frozen=True, slots=True)
class QuotaView:
    """An account's daily quota as this replica spends it."""

    per_day: float  # calls this replica may spend in a rolling day (its partitions' part)
    left: int  # of them, calls left now
    until: float | None  # while none is left (or pacing holds them): wall time of the next one
    day: float  # seconds of the quota's day
    unknown: str | None = None  # why the calls spent are not known: none is sent (fails closed)


@dataclass(frozen=True, slots=True)
class AccountView:
    """One account as the health port shows it."""

    name: str
    calls: float  # this replica's share of the budget: calls per window (turns averaged)
    window_s: float
    free: int
    in_flight: int
    available: bool  # not down, keys not rejected
    answers: dict[str, int]
    bulk_calls: float | None = None  # the same share of the bulk budget, when it has one
    #: the fleet's calls per window of each budget: (configured, learned from throttle answers)
    budgets: dict[Budget, tuple[int, int]] = field(default_factory=dict)
    quota: QuotaView | None = None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The loop's state for /metrics and /readyz; immutable, replaced as a whole."""

    tally: Tally = field(default_factory=Tally)
    in_flight_records: int = 0
    in_flight_bytes: int = 0
    lag: int = 0
    paused: bool = False
    accounts: tuple[AccountView, ...] = ()
    result_latency: Buckets = field(default_factory=Buckets)
    commit_latency: Buckets = field(default_factory=Buckets)
    not_ready: tuple[str, ...] = ("starting",)  # why /readyz fails; empty when ready
    tracking: TrackingView | None = None  # with status tracking on (SPEC §13)


@dataclass(frozen=True, slots=True)
class TrackingView:
    """Completion tracking as the health port shows it."""

    checks: int  # accepted calls whose status is not known yet
    halted: tuple[str, ...]  # routes the canary halted
    #: LeadSquared's queue per (account, operation): pending messages, most delay in seconds
    queues: tuple[tuple[str, str, int, float], ...]


def quota_view(account: Account, now: float) -> QuotaView | None:
    """An account's daily quota as this replica spends it, if it has one."""
    if (quota := account.quota) is None:
        return None
    return QuotaView(
        quota.allowance, quota.left(now), quota.exhausted_until(now), quota.day, quota.unknown
    )


def account_view(account: Account, now: float) -> AccountView:
    """An account's state for the health port."""
    gate, bulk = account.gates[MAIN], account.gates.get(BULK)
    calls, window = gate.share.per_window(gate.window, gate.turn), gate.window
    available = not account.probing
    free, answers = gate.free(now), dict(account.answers)
    budgets = {b: (limit.configured, limit.calls) for b, limit in account.budgets.items()}
    view = AccountView(
        account.name, calls, window, free, account.in_flight, available, answers, budgets=budgets
    )
    if (quota := quota_view(account, now)) is not None:
        view = replace(view, quota=quota)
    if bulk is not None:
        view = replace(view, bulk_calls=bulk.share.per_window(bulk.window, bulk.turn))
    return view


def take_snapshot(
    outcomes: Outcomes,
    accounts: Sequence[AccountView],
    *,
    lag: int,
    paused: bool,
    not_ready: tuple[str, ...],
    tracking: TrackingView | None = None,
) -> Snapshot:
    """The loop's state for the health port: copies of the counts and latency buckets (results,
    commits), work in flight (records, bytes), the lag, the accounts, why it is not ready."""
    return Snapshot(
        tally=outcomes.tally.copy(),
        in_flight_records=outcomes.pending(),
        in_flight_bytes=outcomes.bytes_held(),
        lag=lag,
        paused=paused,
        accounts=tuple(accounts),
        result_latency=outcomes.result_latency.copy(),
        commit_latency=outcomes.commit_latency.copy(),
        not_ready=not_ready,
        tracking=tracking,
    )


def not_ready(
    *,
    stopping: bool,
    joined: bool,
    results_delayed: bool,
    accounts: Iterable[Account],
    reasons: Iterable[str] = (),
) -> tuple[str, ...]:
    """Why a replica should not count as ready (SPEC §8: in the group, producing, keys
    accepted, no route halted by the canary, SPEC §13); empty when it should. ``reasons``: more
    of them (a halted route's), appended in order."""
    why = []
    if stopping:
        why.append("stopping")
    if not joined:
        why.append("not in the consumer group yet")
    if results_delayed:
        why.append("results and dead letters are not being acknowledged by Kafka")
    for a in accounts:
        if a.rejected is not None:
            why.append(f"account {a.name}: LeadSquared rejects its keys ({a.rejected})")
        if a.throttle_spell is not None:
            why.append(
                f"account {a.name}: {a.throttle_spell} (its keys may be shared, or "
                "its limit is lower than configured); one probe a cool-down"
            )
        if a.quota is not None and a.quota.unknown is not None:
            why.append(f"account {a.name}: {a.quota.unknown}")
    why += reasons
    return tuple(why)
