"""[pure] Fault injection: which fault (if any) a call gets, from the rules, the convenience rates
and the outage windows. Randomness comes from an injected, seeded ``random.Random``."""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from random import Random

    from pydantic import JsonValue

    from lsq_sim.config import FaultRule, Faults, OutageMode

__all__ = ["NO_FAULT", "FaultPlan", "FaultState", "OutageWindow", "Outages", "outage_plan"]


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """What happens to a call: wait ``delay_s``, then drop it, answer ``respond``, or go on."""

    delay_s: float = 0.0
    respond: tuple[int, JsonValue] | None = None
    drop: bool = False


NO_FAULT = FaultPlan()


def _gateway_body(status: int) -> JsonValue:
    try:
        return {"message": HTTPStatus(status).phrase}
    except ValueError:
        return {"message": f"HTTP {status}"}


class FaultState:
    """The current fault settings, with how many times each rule may still apply."""

    def __init__(self, faults: Faults) -> None:
        self.faults = faults
        self._remaining: list[int | None] = [rule.times for rule in faults.rules]

    def replace(self, faults: Faults) -> None:
        """Swap in new settings (rule counters restart)."""
        self.faults = faults
        self._remaining = [rule.times for rule in faults.rules]

    def current(self) -> Faults:
        """The settings, with each rule's ``times`` showing what is left."""
        rules = tuple(
            rule.model_copy(update={"times": left})
            for rule, left in zip(self.faults.rules, self._remaining, strict=True)
        )
        return self.faults.model_copy(update={"rules": rules})

    def plan(self, path: str, body: str, rng: Random) -> FaultPlan:
        """Decide the fault for one call to ``path`` with ``body``."""
        faults = self.faults
        delay = faults.latency_ms / 1000
        if faults.latency_jitter_ms:
            delay += rng.uniform(0.0, faults.latency_jitter_ms / 1000)
        rule = self._pick(path, body, rng)
        if rule is not None:
            delay += rule.delay_s
            if rule.action == "drop":
                return FaultPlan(delay, drop=True)
            if rule.action == "respond":
                body_ = rule.body if rule.body is not None else _gateway_body(rule.status)
                return FaultPlan(delay, respond=(rule.status, body_))
        if faults.error_rate and rng.random() < faults.error_rate:
            return FaultPlan(delay, respond=(503, _gateway_body(503)))
        if faults.drop_rate and rng.random() < faults.drop_rate:
            return FaultPlan(delay, drop=True)
        return FaultPlan(delay) if delay else NO_FAULT

    def _pick(self, path: str, body: str, rng: Random) -> FaultRule | None:
        for i, rule in enumerate(self.faults.rules):
            left = self._remaining[i]
            if left == 0 or not _matches(rule, path, body):
                continue
            if rule.probability < 1.0 and rng.random() >= rule.probability:
                continue
            if left is not None:
                self._remaining[i] = left - 1
            return rule
        return None


def _matches(rule: FaultRule, path: str, body: str) -> bool:
    return (rule.path_prefix is None or path.startswith(rule.path_prefix)) and (
        rule.body_contains is None or rule.body_contains in body
    )


@dataclass(frozen=True, slots=True)
class OutageWindow:
    """An outage from ``start`` to ``end`` (monotonic seconds)."""

    start: float
    end: float
    mode: OutageMode


def outage_plan(mode: OutageMode) -> FaultPlan:
    """How a call is answered during an outage (refused connections: dropped if already open)."""
    if mode == "http503":
        return FaultPlan(respond=(503, _gateway_body(503)))
    return FaultPlan(drop=True)


class Outages:
    """Scheduled outage windows."""

    def __init__(self) -> None:
        self._windows: list[OutageWindow] = []

    def add(self, start: float, duration_s: float, mode: OutageMode) -> OutageWindow:
        """Schedule an outage of ``duration_s`` seconds from ``start``."""
        window = OutageWindow(start, start + duration_s, mode)
        self._windows.append(window)
        return window

    def windows(self) -> tuple[OutageWindow, ...]:
        """The windows not yet forgotten."""
        return tuple(self._windows)

    def active(self, now: float) -> OutageMode | None:
        """The mode of an outage in progress at ``now``, if any (ended windows are forgotten)."""
        if not self._windows:
            return None
        self._windows = [w for w in self._windows if w.end > now]
        return next((w.mode for w in self._windows if w.start <= now), None)
