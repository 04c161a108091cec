"""One rate budget for the whole fleet (SPEC §2.8, §7), without the replicas talking to each other.

The account's N calls per window are N *seats*. The partitions of the account's topics, in one
order every replica sees alike (by topic, then partition), are dealt onto the seats: with no more
partitions than seats, partition i gets the seats j with j mod P = i; with more, seat j carries the
partitions i with i mod N = j. A replica holds a seat outright when it owns every partition on it
(one call in any window on it, through the gate's sliding-window log), and takes turns on a seat it
shares with others (one call in each turn of a partition it owns: see
:mod:`connector.flow.gates`). Since each partition has one owner, each seat's calls come from one
replica at a time, and the fleet never holds more than N calls in any window, whatever the number
of replicas, partitions or calls. Shares are recomputed on every rebalance; a larger one takes
effect a turn later (:meth:`connector.flow.gates.RateGate.resize`).

Replicas learn budgets from the throttle answers each happens to receive, so they may hold
different ones. The seats are therefore always laid out over the *configured* budget, and a
learned budget never deals them anew: below one seat per partition it only closes turns of that
layout (:mod:`connector.flow.schedule`), the same ones on every replica holding that budget. A
replica then uses part of what the configured layout gives it, whatever it learned, and the fleet
never exceeds the configured budget in any window."""

from __future__ import annotations

from typing import TYPE_CHECKING

from connector.flow.gates import TURN_GUARD_S, TURN_SEND_S, Share
from connector.flow.schedule import thinned
from connector.logs import get_logger

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Iterable, Mapping

    from connector.flow.accounts import Account
    from connector.flow.offsets import TopicPartitionKey
    from connector.flow.ports import Input
    from connector.transform.route import Route

__all__ = ["Shares", "reshare", "share"]

_log = get_logger(__name__)


def share(
    calls: int,
    mine: Collection[int],
    total: int,
    learned: tuple[int, float] | None = None,
    *,
    window: float = 5.0,
    turn: float = 5.0 + TURN_SEND_S + TURN_GUARD_S,
) -> Share:
    """The share of a replica owning partitions ``mine`` (positions in the common order) of
    ``total``, out of a configured budget of ``calls`` per ``window``, of which a throttle answer
    taught this replica that only ``learned`` (calls, seconds) may be used. The seats are always
    laid out over the configured budget; a learned budget below one seat per partition closes
    turns of that layout (:mod:`connector.flow.schedule`), never deals it anew."""
    if not mine or total <= 0:
        return Share()
    seats = min(total, calls)
    if learned is not None and (learned[1] > window or learned[0] < seats):
        if len(mine) == total and learned[1] <= window:
            return Share(learned[0])  # every partition is ours: the log, at the learned budget
        return _thinned(seats, mine, total, learned, window=window, turn=turn)
    calls = calls if learned is None else min(calls, learned[0])
    if total <= calls:  # a seat has one partition: seats are held outright
        return Share(sum(1 for seat in range(calls) if seat % total in mine))
    outright, turns = 0, {}
    for seat in range(calls):
        members = range(seat, total, calls)
        held = frozenset(position for position, p in enumerate(members) if p in mine)
        if len(held) == len(members):
            outright += 1
        elif held:
            turns[seat] = (len(members), held)
    return Share(outright, turns)


def _thinned(
    seats: int,
    mine: Collection[int],
    total: int,
    learned: tuple[int, float],
    *,
    window: float,
    turn: float,
) -> Share:
    """Turns on the configured layout's seats (seat j carries the partitions j, j + seats, …),
    those of ``mine`` only, open by the schedule that keeps ``learned``."""
    counts = [len(range(seat, total, seats)) for seat in range(seats)]
    turns = {}
    for seat, count in enumerate(counts):
        held = frozenset(i for i in range(count) if seat + i * seats in mine)
        if held:
            turns[seat] = (count, held)
    after = TURN_SEND_S + TURN_GUARD_S
    plan = thinned(seats, counts, learned, window=window, turn=turn, counted_within=after)
    return Share(0, turns, plan)


def reshare(
    accounts: Iterable[Account],
    owned: set[TopicPartitionKey],
    *,
    partitions: Mapping[str, int],
    route_of: Callable[[str], Route | None],
    now: float,
    wall: float,
    moved: bool = True,
) -> None:
    """Give each gate of each account (one per budget) this replica's share of the budget as
    learned so far (:attr:`~connector.flow.accounts.Account.budgets`): its ``owned`` partitions
    of the account's topics, out of all of them (``partitions``: count per topic in the
    cluster); ``moved``: whether partitions came or went since the last time (else only a
    budget changed)."""
    for account in accounts:
        topics = sorted(
            t for t in partitions if (route := route_of(t)) and route.account == account.name
        )
        order = [(topic, p) for topic in topics for p in range(partitions[topic])]
        mine = {i for i, tp in enumerate(order) if tp in owned}
        account.resized = False
        if account.quota is not None:
            account.quota.apportion({order[i] for i in mine}, len(order), wall - now)
        for budget, limit in account.budgets.items():
            calls, window = limit.configured, limit.window
            gate, rate = account.gates[budget], limit.rate
            learned = None if rate == (calls, window) else rate
            whole = Share(rate[0] if mine else 0)  # the only replica (share_by_partitions: false)
            if account.shared:
                part = share(calls, mine, len(order), learned, window=window, turn=gate.turn)
            elif rate[1] > window:  # alone, below one call per window: one seat, thinned
                part = share(1, {0} if mine else set(), 1, rate, window=window, turn=gate.turn)
            else:
                part = whole
            gate.resize(part, now, wall - now, moved=moved)
            _log.info(
                "account.budget",
                account=account.name,
                budget=budget,
                calls=part.calls,
                learned=limit.calls if learned else None,
                turns=sum(len(held) for _, held in part.turns.values()),
                per_window=round(part.per_window(window, gate.turn), 2),
                window_s=window,
                partitions=len(mine),
                of_partitions=len(order),
            )


class Shares:
    """This replica's shares of its accounts' budgets and quotas, kept up to date: recomputed
    after partitions came or went (with the partition counts of the cluster, asked once per
    rebalance), and when a budget learned from throttle answers changed or recovered."""

    def __init__(
        self,
        accounts: Iterable[Account],
        route_of: Callable[[str], Route | None],
        clock: Callable[[], float],
        wall: Callable[[], float],
    ) -> None:
        self._accounts, self._route_of = list(accounts), route_of
        self._clock, self._wall = clock, wall
        self._owned: set[TopicPartitionKey] = set()
        self._due = False  # partitions came or went
        self._partitions: dict[str, int] = {}  # partitions per topic, as of the last rebalance

    def gained(self, tps: Iterable[TopicPartitionKey]) -> None:
        self._owned.update(tps)
        self._due = True

    def lost(self, tps: Iterable[TopicPartitionKey]) -> None:
        self._owned.difference_update(tps)
        self._due = True

    def update(self, source: Input) -> None:
        """Reshare if partitions came or went (run after the poll that delivered the rebalance,
        before anything is sent: never inside a rebalance callback, where a metadata request
        would break the Kafka client), or if a budget changed; let lowered budgets recover."""
        now, moved = self._clock(), self._due
        for account in self._accounts:
            account.recover(now)
        if moved:
            self._due, self._partitions = False, source.topic_partitions()
        elif not (self._partitions and any(account.resized for account in self._accounts)):
            return
        partitions, owned, route_of = self._partitions, self._owned, self._route_of
        reshare(
            self._accounts,
            owned,
            partitions=partitions,
            route_of=route_of,
            now=now,
            wall=self._wall(),
            moved=moved,
        )
