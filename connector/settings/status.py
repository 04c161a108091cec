"""Completion tracking (SPEC §13): polling the Status API for each accepted RequestID, the canary
that halts a route whose first calls fail because of its mapping, and pacing by LeadSquared's own
queue (the Metrics API). Off unless ``status.enabled``: every poll is a call of the account's
budget."""

from __future__ import annotations

from pydantic import Field, model_validator

from connector.records import Operation
from connector.settings.base import Model

__all__ = ["CanarySettings", "QueueSettings", "StatusSettings"]


class CanarySettings(Model):
    """The first ``calls`` accepted calls of each async route (after every start) are checked
    before the route sends more; a mapping-class failure among them halts the route. So does a
    ``failure_share`` of its last ``window`` checks failing for their mapping, at any time (a
    record's own failure, such as a duplicate, is that record's outcome, never a halt)."""

    calls: int = Field(3, ge=0)  # 0: no canary (the failure share still halts)
    timeout_seconds: float = Field(120.0, gt=0)  # unchecked canary calls then count as passed
    window: int = Field(20, ge=2)
    failure_share: float = Field(0.5, gt=0, le=1)


class QueueSettings(Model):
    """LeadSquared's queue per operation, read from the Metrics API every ``poll_seconds``; while
    it holds more than ``max_pending`` requests or ``max_delay_seconds`` of work, the account's
    budget is held at ``slowdown`` of what it was."""

    enabled: bool = True
    poll_seconds: float = Field(60.0, gt=0)
    max_pending: int = Field(10_000, ge=1)
    max_delay_seconds: float = Field(600.0, gt=0)
    slowdown: float = Field(0.5, gt=0, lt=1)


class StatusSettings(Model):
    """Status API polls of accepted calls and their follow-up results records."""

    enabled: bool = False
    #: Status API path per async operation (defaults in :data:`connector.lsq.status.STATUS_PATHS`)
    paths: dict[Operation, str] = Field(default_factory=dict)
    first_poll_seconds: float = Field(5.0, gt=0)
    max_poll_interval_seconds: float = Field(300.0, gt=0)  # polls back off, doubling, up to this
    give_up_seconds: float = Field(3600.0, gt=0)  # no terminal status by then: status unknown
    #: most of an account's budget polls take while records wait (spare calls are used first)
    max_share: float = Field(0.1, gt=0, le=1)
    sample: float = Field(1.0, gt=0, le=1)  # share of accepted calls polled (canary calls always)
    #: most checks held at once (about 850 bytes each, 180 more per further record of the call):
    #: while that many are held, accepted calls are not checked (counted; canary calls always are)
    max_checks: int = Field(10_000, ge=1, le=1_000_000)
    canary: CanarySettings = CanarySettings()
    queue: QueueSettings = QueueSettings()

    @model_validator(mode="after")
    def _ordered(self) -> StatusSettings:
        if self.first_poll_seconds > self.give_up_seconds:
            raise ValueError("first_poll_seconds is more than give_up_seconds")
        for operation, path in self.paths.items():
            if not path.startswith("/"):
                raise ValueError(f"paths.{operation}: {path!r} must start with /")
        return self
