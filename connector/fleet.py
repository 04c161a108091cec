"""One rate budget for the whole fleet (SPEC §7): the replicas of a consumer group share each
account's budget in proportion to the partitions each owns, recomputed on every rebalance, so that
together they stay under the limit. (A replica's larger share takes effect only a window later:
see :meth:`connector.ratelimit.RateGate.resize`.)"""

from __future__ import annotations

from typing import TYPE_CHECKING

from connector.logs import get_logger
from connector.ratelimit import fleet_share

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    from connector.offsets import TopicPartitionKey
    from connector.ports import Account, Route

__all__ = ["reshare"]

_log = get_logger(__name__)


def reshare(
    accounts: Iterable[Account],
    owned: set[TopicPartitionKey],
    partitions: Mapping[str, int],
    route_of: Callable[[str], Route | None],
    now: float,
) -> None:
    """Give each account's gate this replica's share: its ``owned`` partitions of the account's
    topics, out of all of them (``partitions``: count per topic in the cluster)."""
    for account in accounts:
        topics = {t for t in partitions if (route := route_of(t)) and route.account == account.name}
        total = sum(partitions[t] for t in topics)
        mine = sum(1 for topic, _ in owned if topic in topics)
        calls, window = account.budget
        if account.shared:
            calls, window = fleet_share(calls, window, mine, total)
        elif not mine:
            calls = 0
        account.gate.resize(calls, now, window)
        _log.info(
            "account.budget",
            account=account.name,
            calls=calls,
            window_s=round(window, 3),
            partitions=mine,
            of_partitions=total,
        )
