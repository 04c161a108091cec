"""[pure] Learned limits (SPEC §7): the configured budget is a ceiling, not a fact. LeadSquared's
limits differ by plan and the account's keys are shared with its other integrations, so each
budget of an account (main, bulk) follows what the throttle answers say:

- an answer that **states** the limit ("API calls exceeded the limit of N in W second(s)") lowers
  the budget to it at once, exactly as stated, below one call per window too (:attr:`Limit.rate`);
  the budget stays within it until :data:`RETEST_S` pass without a throttle answer, then the
  stated limit is forgotten and the budget rises slowly again, so that one odd answer cannot pin
  an account at a tiny budget for good (a limit that still holds is stated again by the next
  throttle answer);
- an answer that states none, or one that comes although the budget is already within the stated
  limit (other integrations spend part of it), lowers the budget **multiplicatively**
  (:data:`DECREASE`), at most once a window, since the answers of calls already sent come in a
  burst;
- an answer stating a limit over more than :data:`RATE_WINDOW_MAX_S` ("... of 10000 in 86400
  second(s)") is about a quota, not the rate: it changes no budget (the cool-down and, if it
  lasts, the probes of a throttled-out account hold the calls);
- a budget below its ceiling **recovers** by one call per window every :data:`RECOVER_WINDOWS`
  windows without a throttle answer (additive increase: AIMD);
- while LeadSquared's own queue is long (the Metrics API, SPEC §13), the budget is **held** at a
  part of what it was (:meth:`Limit.slow`), and recovers the same way once the queue is short.

The budget is the fleet's: each replica takes its share of it (:mod:`connector.flow.fleet`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

__all__ = ["DECREASE", "RATE_WINDOW_MAX_S", "RECOVER_WINDOWS", "RETEST_S", "Limit", "per_window"]

#: What a throttle answer without a usable limit leaves of the budget.
DECREASE = 0.7
#: Windows without a throttle answer before the budget rises by one call.
RECOVER_WINDOWS = 2.0
#: The longest window a stated limit may have to be a rate limit; longer ones are quotas.
RATE_WINDOW_MAX_S = 60.0
#: Seconds without a throttle answer after which a stated limit is tested again.
RETEST_S = 1800.0

Change = Literal["learned", "lowered"]


def per_window(stated: tuple[int, float], window: float) -> int:
    """The most calls per ``window`` that keep "at most N calls in any W seconds" (``stated``).
    The gate holds at most that many calls in any ``window``. A W-window lies within one window
    when W ≤ window (so N); otherwise ⌈W / window⌉ windows cover it, each with at most its
    share."""
    calls, seconds = stated
    if seconds <= window:
        return calls
    return calls // math.ceil(seconds / window - 1e-9)


@dataclass(slots=True)
class Limit:
    """One budget of one account: its configured calls per window (the ceiling), what
    LeadSquared stated, and the calls per window used now."""

    configured: int
    window: float
    calls: int = -1  # used now (-1: the configured value)
    stated: int | None = None  # calls per window the account's throttle answers stated
    #: a stated limit of less than one call per window, as stated (calls, seconds)
    stated_below: tuple[int, float] | None = None
    stated_at: float = -math.inf  # the last throttle answer while a limit was stated
    lowered_at: float = -math.inf  # when a throttle answer last lowered it
    calm_since: float = -math.inf  # the last throttle answer or rise
    held: int | None = None  # while LeadSquared's queue is long: the most calls per window

    def __post_init__(self) -> None:
        self.calls = self.configured if self.calls < 0 else self.calls

    @property
    def rate(self) -> tuple[int, float]:
        """The budget now, as "at most N calls in any W seconds"."""
        if self.stated_below is not None and self.calls <= 1:
            return self.stated_below
        return (self.calls, self.window)

    @property
    def ceiling(self) -> int:
        """The most the budget may rise to: the configured value, or the stated limit or the
        queue's hold if lower."""
        bounds = (self.stated, self.held)
        return min((self.configured, *(bound for bound in bounds if bound is not None)))

    def slow(self, factor: float | None, now: float) -> bool:
        """LeadSquared's queue is long: hold the budget at ``factor`` of what it is (once, until
        the queue is short again); ``None``: it is short again, the budget may recover. Whether
        anything changed."""
        if factor is None or self.held is not None:
            changed = factor is None and self.held is not None
            self.held = None if factor is None else self.held
            return changed
        self.held = max(1, math.floor(self.calls * factor))
        self.calls, self.calm_since = min(self.calls, self.held), now
        return True

    def throttled(self, stated: tuple[int, float] | None, now: float) -> Change | None:
        """A throttle answer arrived at ``now``, stating ``stated`` or no limit. Returns how the
        budget changed: ``learned`` (down to a newly stated limit), ``lowered`` (multiplicatively)
        or ``None``."""
        self.calm_since = now
        if stated is not None and stated[1] > RATE_WINDOW_MAX_S:
            return None  # a quota spent, not the rate: no budget would help
        if self.stated is not None:
            self.stated_at = now
        if stated is not None:
            calls = per_window(stated, self.window)
            learned = (max(1, calls), stated if calls == 0 else None)
            if learned != (self.stated, self.stated_below):
                (self.stated, self.stated_below), self.stated_at = learned, now
                if self.calls > learned[0] or learned[1] is not None:
                    self.calls, self.lowered_at = learned[0], now
                    return "learned"
        if now - self.lowered_at < self.window:  # the answer of a call sent before it was lowered
            return None
        lowered = max(1, math.floor(self.calls * DECREASE))
        if lowered == self.calls:
            return None
        self.calls, self.lowered_at = lowered, now
        return "lowered"

    def recover(self, now: float) -> bool:
        """Add one call per window when none was throttled for :data:`RECOVER_WINDOWS` windows
        and the budget is below its ceiling, after forgetting a stated limit no throttle answer
        confirmed for :data:`RETEST_S`; whether the budget changed."""
        if self.stated is not None and now - self.stated_at >= RETEST_S:
            self.stated = self.stated_below = None
            self.calm_since = now
            return True
        if self.calls >= self.ceiling or now - self.calm_since < RECOVER_WINDOWS * self.window:
            return False
        self.calls, self.calm_since = self.calls + 1, now
        return True
