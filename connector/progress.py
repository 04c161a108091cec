"""The periodic progress line (pure): rates since the last line, work in flight, the backlog and how
long it will take at the current rate, and the rate-limit slots free per account."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

    from connector.ports import Tally

__all__ = ["Progress", "progress_fields"]


@dataclass(slots=True)
class Progress:
    """Where the last progress line left off."""

    interval: float
    at: float
    done: int = 0
    calls: int = 0


def progress_fields(
    tally: Tally,
    last: Progress,
    now: float,
    *,
    in_flight: int,
    lag: int,
    tokens: Mapping[str, int],
) -> dict[str, Any]:
    """The fields of a progress line; moves ``last`` on to ``now``."""
    elapsed = max(now - last.at, 1e-9)
    done = tally.accepted + tally.dead_lettered + tally.skipped + tally.recovered
    rate = (done - last.done) / elapsed
    backlog = lag + in_flight
    fields = {
        "records_per_s": round(rate, 2),
        "calls_per_s": round((tally.api_calls - last.calls) / elapsed, 2),
        "consumed": tally.consumed,
        "accepted": tally.accepted,
        "dead_lettered": tally.dead_lettered,
        "skipped": tally.skipped,
        "recovered": tally.recovered,
        "throttled": tally.throttled,
        "in_flight": in_flight,
        "backlog": backlog,
        "eta_s": round(backlog / rate) if rate > 0 else None,
        "tokens": dict(tokens),
    }
    last.at, last.done, last.calls = now, done, tally.api_calls
    return fields
