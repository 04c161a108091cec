"""[pure] The counts the loop keeps: the :class:`Tally` of what happened to records and calls so
far, and :class:`Buckets`, a latency histogram over :data:`LATENCY_BOUNDS`. A leaf: it imports
nothing from the connector, so every step that counts can import it."""

from __future__ import annotations

import bisect
from collections import Counter
from dataclasses import dataclass, field, replace

__all__ = ["LATENCY_BOUNDS", "Buckets", "Tally"]

#: Upper bounds (seconds) of the latency buckets: produce → result, and commits.
LATENCY_BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


@dataclass(slots=True)
class Tally:
    """What happened so far (SPEC §10's summary line)."""

    consumed: int = 0
    accepted: int = 0
    dead_lettered: int = 0
    skipped: int = 0
    recovered: int = 0  # outcome written before a restart: not called again
    api_calls: int = 0
    throttled: int = 0
    retried: int = 0
    ambiguous: int = 0  # calls retried although LeadSquared may have received them
    bulk_calls: int = 0  # of api_calls, bulk calls (up to 25 records each)
    coalesced: int = 0  # records whose change went out with an earlier one of their key
    no_change: int = 0  # of skipped, updates whose mapped payload did not change
    by_route: Counter[str] = field(default_factory=Counter)  # records with an outcome, per route
    # completion tracking (SPEC §13): follow-ups written, by status, and what it cost
    succeeded: int = 0
    failed: int = 0
    unknown: int = 0
    dead_lettered_late: int = 0  # failed in LeadSquared's queue: copied to the dead-letter topic
    status_calls: int = 0  # Status and Metrics API calls
    halted: int = 0  # routes halted
    status_checks_skipped: int = 0  # accepted calls not checked: status.max_checks were held

    def copy(self) -> Tally:
        return replace(self, by_route=Counter(self.by_route))

    @property
    def done(self) -> int:
        """Records with an outcome."""
        return self.accepted + self.dead_lettered + self.skipped + self.recovered

    @property
    def lost(self) -> int:
        """Consumed records with no outcome: non-zero only while work is in flight."""
        return self.consumed - self.done


@dataclass(slots=True)
class Buckets:
    """A histogram: counts per upper bound (the last one is +Inf), their sum and count."""

    bounds: tuple[float, ...] = LATENCY_BOUNDS
    counts: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BOUNDS) + 1))
    total: float = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value

    def copy(self) -> Buckets:
        return Buckets(self.bounds, list(self.counts), self.total)
