"""[pure] Time budgets as deadlines on the monotonic clock (SPEC §2.10: a graceful stop, its final
flushes included, ends within its grace). A :class:`Deadline` is a moment every step of one piece
of work shares, so no step starts a budget of its own; :class:`Grace` holds the shutdown grace and
gives out the deadlines of a graceful stop and of a rebalance's revoke."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["CLOSE_RESERVE_S", "REVOKE_S", "Deadline", "Grace"]

#: Of the shutdown grace, kept after the stop's work for leaving the group and closing clients
#: (at most a quarter of it).
CLOSE_RESERVE_S = 1.0
#: Most seconds a revoke of a rebalance (not a stop) waits for the partitions' work.
REVOKE_S = 10.0


@dataclass(frozen=True, slots=True)
class Deadline:
    """The moment ``at`` on ``clock`` (monotonic seconds) by which something must be over."""

    at: float
    clock: Callable[[], float] = field(default=time.monotonic, compare=False, repr=False)

    @classmethod
    def after(cls, seconds: float, clock: Callable[[], float] = time.monotonic) -> Deadline:
        """``seconds`` (at least 0) from now."""
        return cls(clock() + max(0.0, seconds), clock)

    def left(self) -> float:
        """Seconds until it, 0 once it passed."""
        return max(0.0, self.at - self.clock())

    def expired(self) -> bool:
        """Whether it passed."""
        return self.clock() >= self.at

    def sooner(self, other: Deadline | None) -> Deadline:
        """The earlier of this one and ``other`` (this one when ``other`` is ``None``)."""
        return self if other is None or self.at <= other.at else other

    def earlier(self, seconds: float) -> Deadline:
        """The moment ``seconds`` before this one."""
        return Deadline(self.at - seconds, self.clock)


class Grace:
    """The shutdown grace. :meth:`begin` starts a graceful stop's (when the signal came, as the
    orchestrator counts it); from then on every deadline given out ends by the stop's: the end
    of the grace less :data:`CLOSE_RESERVE_S` for leaving the group."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds, self._clock = seconds, clock
        self.end: Deadline | None = None  # the end of a graceful stop's grace, once one began

    def begin(self) -> Deadline:
        """Start a graceful stop (again: the first one's deadline stands); returns the deadline
        of its work: drain, commit and final flushes."""
        if self.end is None:
            self.end = Deadline.after(self.seconds, self._clock)
        return self.end.earlier(min(CLOSE_RESERVE_S, self.seconds / 4))

    def closing(self, otherwise: float) -> Deadline:
        """The end of the stop's grace, for closing clients; ``otherwise`` seconds from now when
        no stop began (after a failure)."""
        return Deadline.after(otherwise, self._clock) if self.end is None else self.end

    def within(self, seconds: float) -> Deadline:
        """A deadline ``seconds`` (at most the grace) from now, or the stop's when one began and
        that is sooner: a revoke from inside the consumer's close() gets what is left of the
        stop, never a budget of its own."""
        own = Deadline.after(min(seconds, self.seconds), self._clock)
        return own if self.end is None else own.sooner(self.begin())
