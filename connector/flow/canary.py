"""[pure] The canary (SPEC §13): a route whose mapping is wrong (an attribute LeadSquared does not
have, an activity type it does not know) gets every call accepted by the async host and every one
failed later in LeadSquared's queue. So after each start, a route sends at most ``calls`` calls
until that many of them have a terminal status; if one fails with a mapping-class error, the route
**halts**: nothing more is sent for it and nothing past it is committed, until the mapping is fixed
and the connector restarted. A route also halts when ``failure_share`` of its last ``window``
checks failed for their mapping. Only mapping-class failures (an unknown attribute, an invalid
field, an invalid activity event: :attr:`Report.mapping <connector.lsq.status.Report.mapping>`)
count towards a halt: a record's own failure (a duplicate, a lead that does not exist) is that
record's outcome (a failed follow-up and a dead letter), never a reason to stop a correct route.
Other routes keep going.

Calls whose status cannot be had within ``timeout_seconds`` (a Status API that does not answer)
count as passed, so a canary never holds a route for good."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from connector.logs import get_logger

if TYPE_CHECKING:
    from collections.abc import Iterable

    from connector.lsq.status import Report
    from connector.settings.status import CanarySettings

__all__ = ["Canary", "Halt"]

_log = get_logger(__name__)
_PROBING_WAIT_S = 0.05


@dataclass(frozen=True, slots=True)
class Halt:
    """Why a route halted."""

    route: str
    reason: str
    attribute: str | None = None
    exception_type: str | None = None
    request_id: str | None = None
    rule: Literal["canary", "failure_share"] = "canary"  # which rule halted it

    def __str__(self) -> str:
        about = f" (attribute {self.attribute})" if self.attribute else ""
        return f"route {self.route} halted{about}: {self.reason}"


@dataclass(slots=True)
class _Route:
    passed: int = 0
    probing_since: float | None = None  # when its first canary call was accepted
    open: bool = False
    recent: deque[bool] = field(default_factory=deque)  # last checks: failed?
    halt: Halt | None = None


class Canary:
    """The canary state of the guarded (async) routes."""

    def __init__(self, routes: Iterable[str], settings: CanarySettings) -> None:
        self._settings = settings
        self._routes = {name: _Route(open=settings.calls == 0) for name in routes}
        self._refused = False  # a probing route's job was refused since the last idle()

    @property
    def halts(self) -> list[Halt]:
        """The routes halted, and why."""
        return [route.halt for route in self._routes.values() if route.halt is not None]

    def idle(self) -> float:
        """Least seconds the next turn of the loop waits: a little after a probing route's job
        was refused (it waits for checks, not for a budget, and must not make the loop spin),
        else 0."""
        refused, self._refused = self._refused, False
        return _PROBING_WAIT_S if refused else 0.0

    def halted(self, route: str) -> bool:
        """Whether ``route`` is halted."""
        state = self._routes.get(route)
        return state is not None and state.halt is not None

    def probing(self, route: str) -> bool:
        """Whether ``route``'s calls are canary calls (checked before it sends more)."""
        state = self._routes.get(route)
        return state is not None and not state.open and state.halt is None

    def allows(self, route: str, out: int, wall: float) -> bool:
        """Whether ``route`` may send a call now, with ``out`` of its calls in flight or accepted
        and not checked yet."""
        state = self._routes.get(route)
        if state is None:
            return True
        if state.halt is not None:
            return False
        if state.open:
            return True
        since = state.probing_since
        if since is not None and wall - since >= self._settings.timeout_seconds:
            self._open(route, state, "canary_unchecked")
            return True
        allowed = state.passed + out < self._settings.calls
        self._refused = self._refused or not allowed
        return allowed

    def accepted(self, route: str, wall: float) -> None:
        """A canary call of ``route`` was accepted: its check begins."""
        state = self._routes.get(route)
        if state is not None and state.probing_since is None:
            state.probing_since = wall

    def checked(
        self, route: str, report: Report | None, request_id: str, *, canary: bool
    ) -> Halt | None:
        """A call of ``route`` reached a terminal status (``report``; ``None``: unknown).
        Returns the halt it causes, if any (logged once, as an error)."""
        state = self._routes.get(route)
        if state is None or state.halt is not None:
            return None
        mapping = (
            report if report is not None and report.kind == "failed" and report.mapping else None
        )
        if canary and mapping is not None:
            first = self._settings.calls
            reason = f"canary: one of its first {first} calls failed with {_named(mapping)}: "
            reason += mapping.reason
            return self._halt(state, _halt(route, mapping, reason, request_id, "canary"))
        state.recent.append(mapping is not None)
        while len(state.recent) > self._settings.window:
            state.recent.popleft()
        failed, checked = sum(state.recent), len(state.recent)
        enough = checked >= max(2, self._settings.window // 2)
        if mapping is not None and enough and failed / checked >= self._settings.failure_share:
            reason = (
                f"failure share: {failed} of its last {checked} checked calls failed for their "
                f"mapping (failure_share {self._settings.failure_share:g}); the latest with "
                f"{_named(mapping)}: {mapping.reason}"
            )
            return self._halt(state, _halt(route, mapping, reason, request_id, "failure_share"))
        if canary and not state.open:
            state.passed += 1
            if state.passed >= self._settings.calls:
                self._open(route, state, "canary_passed")
        return None

    def _open(self, route: str, state: _Route, event: str) -> None:
        state.open = True
        log = _log.info if event == "canary_passed" else _log.warning
        log(f"route.{event}", route=route, checked=state.passed, calls=self._settings.calls)

    def _halt(self, state: _Route, halt: Halt) -> Halt:
        state.halt = halt
        _log.error(
            "route.halted",
            route=halt.route,
            attribute=halt.attribute,
            exception_type=halt.exception_type,
            request_id=halt.request_id,
            rule=halt.rule,
            reason=halt.reason,
            action="nothing more is sent or committed for this route; fix its mapping and restart",
        )
        return halt


def _halt(
    route: str,
    report: Report,
    reason: str,
    request_id: str,
    rule: Literal["canary", "failure_share"],
) -> Halt:
    return Halt(route, reason, report.attribute, report.exception_type, request_id, rule)


def _named(report: Report) -> str:
    """The exception a mapping failure names (LeadSquared's type), or what it is."""
    return report.exception_type or "a mapping-class error"
