"""[pure] One LeadSquared account, shared by all its routes: its rate gates (one per budget), how
many of its calls are out, and what its answers say about it. The loop asks two things,
:meth:`Account.may_send` and :meth:`Account.hold_until`, and tells two, :meth:`Account.sent` /
:meth:`Account.answered` and :meth:`Account.observe`.

What an account can be, besides fine: its keys **rejected** (401/403: one probe every
``auth_retry_seconds``, records held, never dead-lettered), **down** (``outage_threshold``
transient failures in a row: one probe at growing intervals), **throttled out** (nothing but
throttle answers for ``throttle_unavailable_seconds``: one probe a cool-down). Any other answer ends
each of them."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from connector.flow.limits import Limit
from connector.logs import get_logger

if TYPE_CHECKING:
    from connector.flow.gates import RateGate
    from connector.flow.offsets import TopicPartitionKey
    from connector.flow.quota import Quota
    from connector.lsq.answers import Verdict
    from connector.settings.model import RetrySettings

__all__ = ["BULK", "MAIN", "Account", "Budget"]

_log = get_logger(__name__)

#: A rate budget of an account: ``main`` is the one every call of the async and sync hosts uses,
#: ``bulk`` LeadSquared's separate (smaller) one of its bulk calls.
Budget = Literal["main", "bulk"]
MAIN: Budget = "main"
BULK: Budget = "bulk"


@dataclass(slots=True)
class Account:
    """One LeadSquared account's gates and state."""

    name: str
    gates: dict[Budget, RateGate]
    concurrency: int
    cooldown: float  # seconds to send nothing after a throttle answer
    retry: RetrySettings
    #: calls per window of each budget as configured, for the whole fleet: the ceilings of
    #: :attr:`budgets`
    limits: dict[Budget, tuple[int, float]] = field(default_factory=dict)
    #: each budget as learned from throttle answers (:mod:`connector.flow.limits`): the fleet's
    #: calls per window now, which :func:`~connector.flow.fleet.reshare` shares out
    budgets: dict[Budget, Limit] = field(init=False)
    resized: bool = False  # a budget changed since the last reshare
    quota: Quota | None = None  # its daily quota, when it has one
    shared: bool = True  # this replica takes a share of the budgets by its partitions
    answers: Counter[str] = field(default_factory=Counter)  # answers by verdict kind
    rejected: str | None = None  # why LeadSquared rejects the keys (401/403), while it does
    probe_at: float = 0.0
    failures_in_a_row: int = 0  # transient failures (5xx, timeouts, refused connections)
    down_until: float = 0.0  # while it looks down: the next probe, not before
    throttled_since: float | None = None  # first of the throttle answers in a row
    throttle_spell: str | None = None  # why: only throttles for too long (then: one probe)

    def __post_init__(self) -> None:
        self.budgets = {b: Limit(calls, window) for b, (calls, window) in self.limits.items()}

    @property
    def in_flight(self) -> int:
        """Calls sent and not answered yet."""
        return sum(gate.in_flight for gate in self.gates.values())

    @property
    def looks_down(self) -> bool:
        """Whether so many calls failed in a row that LeadSquared looks unavailable."""
        return self.failures_in_a_row >= self.retry.outage_threshold

    @property
    def probing(self) -> bool:
        """Whether only one call at a time may go out: the keys are rejected, LeadSquared looks
        down, or it has answered nothing but throttles for too long."""
        return self.rejected is not None or self.looks_down or self.throttle_spell is not None

    def may_send(self, budget: Budget, now: float) -> bool:
        """Whether a call of ``budget`` may start now."""
        if (self.rejected is not None and now < self.probe_at) or (
            self.looks_down and now < self.down_until
        ):
            return False
        limit = 1 if self.probing else self.concurrency
        if self.quota is not None and self.quota.wait(now) > 0:
            return False
        return self.in_flight < limit and self.gates[budget].wait(now) == 0

    def wait(self, budget: Budget, now: float) -> float:
        """Seconds until ``budget``'s gate lets a call start (``inf``: not before an answer)."""
        if self.in_flight >= self.concurrency:
            return float("inf")
        quota = 0.0 if self.quota is None else self.quota.wait(now)
        return max(quota, self.gates[budget].wait(now))

    def free(self, now: float) -> int:
        """Calls the gates let start now (the "tokens")."""
        return sum(gate.free(now) for gate in self.gates.values())

    def sent(self, budget: Budget, now: float, tp: TopicPartitionKey | None = None) -> int:
        """A call of ``budget`` for records of ``tp`` goes out (only after :meth:`may_send`):
        returns the gate's slot."""
        if self.rejected is not None:  # one call tells whether the keys work again
            self.probe_at = now + self.retry.auth_retry_seconds
        if self.quota is not None:
            self.quota.charge(tp, now)
        return self.gates[budget].acquire(now)

    def answered(self, budget: Budget, slot: int, now: float) -> None:
        """The call holding ``slot`` of ``budget`` has its answer (or failed)."""
        self.gates[budget].release(now, slot)

    def observe(self, verdict: Verdict, budget: Budget, now: float) -> None:
        """What one answer of a call of ``budget`` says about the account: count it and track
        its health (see the module docstring), and cool that budget's gate down after a throttle
        answer."""
        self.answers[verdict.kind] += 1
        if change := self._health(verdict, now):
            log = _log.info if change == "available_again" else _log.warning
            log(f"account.{change}", account=self.name, reason=verdict.reason)
        if verdict.kind == "accepted" and self.rejected is not None:
            _log.info("account.accepted_again", account=self.name)
            self.rejected = None
        elif verdict.kind == "throttled":
            self.gates[budget].cool_down(now, self.cooldown)
            _log.warning("call.throttled", account=self.name, budget=budget, reason=verdict.reason)
            self._learn(budget, verdict.limit, now)
        elif verdict.kind == "auth":
            if self.rejected is None:
                _log.error("account.rejected", account=self.name, reason=verdict.reason)
            self.rejected = verdict.reason
            self.probe_at = now + self.retry.auth_retry_seconds

    def recover(self, now: float) -> None:
        """Let budgets lowered by throttle answers rise again, slowly (see
        :meth:`~connector.flow.limits.Limit.recover`)."""
        for budget, limit in self.budgets.items():
            stated = limit.stated
            if limit.recover(now):
                self.resized = True
                if stated is not None and limit.stated is None:  # one answer must not pin it
                    _log.info("account.limit_retested", **self._budget_fields(budget))
                elif limit.calls == limit.ceiling:
                    _log.info("account.budget_recovered", **self._budget_fields(budget))

    def queue(self, factor: float | None, now: float, **about: object) -> None:
        """LeadSquared's queue for this account is long (hold the main budget at ``factor`` of
        what it is) or, with ``None``, short again (let it recover); ``about`` says why, in the
        log line of a change."""
        limit = self.budgets.get(MAIN)
        if limit is not None and limit.slow(factor, now):
            self.resized = True
            event = "account.queue_long" if factor is not None else "account.queue_short"
            (_log.warning if factor is not None else _log.info)(
                event, **self._budget_fields(MAIN), **about
            )

    def _learn(self, budget: Budget, stated: tuple[int, float] | None, now: float) -> None:
        limit = self.budgets.get(budget)
        change = None if limit is None else limit.throttled(stated, now)
        if change is not None:
            self.resized = True
            log = _log.warning if change == "learned" else _log.info
            log(f"account.limit_{change}", **self._budget_fields(budget))

    def _budget_fields(self, budget: Budget) -> dict[str, object]:
        limit = self.budgets[budget]
        return {
            "account": self.name,
            "budget": budget,
            "calls": limit.calls,
            "window_s": limit.window,
            "configured": limit.configured,
            "stated": limit.stated,
        }

    def hold_until(self, verdict: Verdict, now: float) -> float | None:
        """When a record answered with ``verdict`` may go again because of the account's state
        (throttled, keys rejected, down); ``None`` when the verdict is the record's own matter."""
        if verdict.kind == "throttled":
            return now + self.cooldown
        if verdict.kind == "auth":
            return self.probe_at
        if verdict.kind == "retry" and self.looks_down:
            return self.down_until  # an outage: not the record's fault
        return None

    def _health(self, verdict: Verdict, now: float) -> str | None:
        """Track LeadSquared's health from one answer. Transient failures in a row mean it looks
        down, and then only one probe at a time goes out, at growing intervals (at most
        ``retry.probe_max_seconds``), until any other answer shows it is back. Throttle answers
        alone for ``retry.throttle_unavailable_seconds`` count the same way (one probe a
        cool-down), until any other answer. Returns the change to log, if any:
        ``"unavailable"``, ``"throttled_out"`` or ``"available_again"``."""
        retry = self.retry
        if verdict.kind == "throttled":
            self.throttled_since = now if self.throttled_since is None else self.throttled_since
            spell = now - self.throttled_since
            if self.throttle_spell is None and spell >= retry.throttle_unavailable_seconds:
                self.throttle_spell = f"LeadSquared has answered only throttles for {spell:.0f} s"
                return "throttled_out"
            return None
        was_throttled_out = self.throttle_spell is not None
        self.throttled_since = self.throttle_spell = None
        if verdict.kind != "retry":
            was_down = self.looks_down
            self.failures_in_a_row, self.down_until = 0, 0.0
            return "available_again" if was_down or was_throttled_out else None
        self.failures_in_a_row += 1
        if not self.looks_down:
            return "available_again" if was_throttled_out else None
        probes = self.failures_in_a_row - retry.outage_threshold
        pause = retry.backoff_base_seconds * 2.0 ** min(probes, 30)
        self.down_until = now + min(retry.probe_max_seconds, pause)
        return "unavailable" if probes == 0 else None
