"""The canary (SPEC §13): a guarded route sends only a few calls until their checks pass, halts
when a canary check fails because of its mapping, and opens when its canary calls cannot be checked
in time. The failure-share rule is in ``test_canary_share.py``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from structlog.testing import capture_logs

from connector.flow.canary import Halt
from tests.unit.canary_fakes import (
    BAD_EVENT,
    DUPLICATE,
    OTHER,
    PASSED,
    ROUTE,
    START,
    TYPO,
    make_canary,
    pass_checks,
)

if TYPE_CHECKING:
    from connector.lsq.status import Report

# -- probing ------------------------------------------------------------------------------------


def test_a_probing_route_allows_calls_only_while_passed_plus_out_is_below_calls() -> None:
    canary = make_canary(calls=3)
    assert canary.probing(ROUTE)
    assert [canary.allows(ROUTE, out, START) for out in range(5)] == [
        True,
        True,
        True,
        False,
        False,
    ]
    canary.accepted(ROUTE, START)
    pass_checks(canary, 1)
    assert canary.probing(ROUTE)
    assert canary.allows(ROUTE, 1, START)
    assert not canary.allows(ROUTE, 2, START)
    pass_checks(canary, 1)
    assert canary.allows(ROUTE, 0, START)
    assert not canary.allows(ROUTE, 1, START)


def test_passing_calls_canary_checks_opens_the_route_for_any_out() -> None:
    canary = make_canary(calls=3)
    canary.accepted(ROUTE, START)
    pass_checks(canary, 2)
    assert canary.probing(ROUTE)
    pass_checks(canary, 1)
    assert not canary.probing(ROUTE)
    assert canary.allows(ROUTE, 10_000, START)
    assert canary.halts == []


def test_non_canary_checks_do_not_count_towards_opening() -> None:
    canary = make_canary(calls=2)
    pass_checks(canary, 5, flag=False)
    assert canary.probing(ROUTE)
    assert not canary.allows(ROUTE, 2, START)


@pytest.mark.parametrize("report", [DUPLICATE, None], ids=["record-failure", "unknown"])
def test_a_canary_check_not_failing_for_its_mapping_counts_as_passed(
    report: Report | None,
) -> None:
    canary = make_canary(calls=3)
    for i in range(3):
        assert canary.checked(ROUTE, report, f"req-{i}", canary=True) is None
    assert not canary.probing(ROUTE)
    assert canary.allows(ROUTE, 100, START)
    assert not canary.halted(ROUTE)


def test_each_route_probes_on_its_own() -> None:
    canary = make_canary(calls=1)
    pass_checks(canary, 1, route=ROUTE)
    assert not canary.probing(ROUTE)
    assert canary.probing(OTHER)
    assert not canary.allows(OTHER, 1, START)


def test_calls_zero_means_open_from_the_start() -> None:
    canary = make_canary(calls=0)
    assert not canary.probing(ROUTE)
    assert canary.allows(ROUTE, 10_000, START)
    assert canary.idle() == 0.0


# -- halting on a mapping failure ---------------------------------------------------------------


def test_a_mapping_failure_of_a_canary_check_halts_the_route() -> None:
    canary = make_canary(calls=3)
    canary.accepted(ROUTE, START)
    pass_checks(canary, 1)
    halt = canary.checked(ROUTE, TYPO, "req-7", canary=True)
    assert halt == Halt(
        ROUTE,
        "canary: one of its first 3 calls failed with MXUnknownAttributeException: "
        "Attribute 'mx_Ciyt' does not exist",
        attribute="mx_Ciyt",
        exception_type="MXUnknownAttributeException",
        request_id="req-7",
        rule="canary",
    )
    assert canary.halts == [halt]
    assert canary.halted(ROUTE)
    assert not canary.probing(ROUTE)
    assert not canary.allows(ROUTE, 0, START)
    assert not canary.allows(ROUTE, 0, START + 10_000.0)  # the timeout does not reopen it
    text = str(halt)
    assert ROUTE in text
    assert "mx_Ciyt" in text


def test_a_halt_touches_no_other_route() -> None:
    canary = make_canary(calls=3)
    canary.checked(ROUTE, TYPO, "req-1", canary=True)
    assert not canary.halted(OTHER)
    assert canary.probing(OTHER)
    assert canary.allows(OTHER, 0, START)
    assert [h.route for h in canary.halts] == [ROUTE]


def test_an_invalid_activity_event_halts_without_an_attribute() -> None:
    canary = make_canary(calls=3)
    halt = canary.checked(ROUTE, BAD_EVENT, "req-2", canary=True)
    assert halt is not None
    assert halt.attribute is None
    assert halt.exception_type == "MXInvalidActivityException"
    assert str(halt) == (
        f"route {ROUTE} halted: canary: one of its first 3 calls failed with "
        "MXInvalidActivityException: Event Code is invalid or empty"
    )


def test_a_halted_route_halts_once_and_ignores_later_checks() -> None:
    canary = make_canary(calls=3)
    with capture_logs() as logs:
        first = canary.checked(ROUTE, TYPO, "req-1", canary=True)
        assert canary.checked(ROUTE, TYPO, "req-2", canary=True) is None
        assert canary.checked(ROUTE, PASSED, "req-3", canary=True) is None
    assert canary.halts == [first]
    halted = [log for log in logs if log["event"] == "route.halted"]
    assert len(halted) == 1
    assert halted[0]["log_level"] == "error"
    assert halted[0]["route"] == ROUTE
    assert halted[0]["attribute"] == "mx_Ciyt"
    assert halted[0]["request_id"] == "req-1"


def test_a_mapping_failure_of_a_non_canary_check_does_not_halt_by_itself() -> None:
    canary = make_canary(calls=0)
    assert canary.checked(ROUTE, TYPO, "req-1", canary=False) is None
    assert not canary.halted(ROUTE)
    assert canary.allows(ROUTE, 50, START)
    assert canary.halts == []


def test_a_late_canary_mapping_failure_halts_a_route_opened_by_the_timeout() -> None:
    canary = make_canary(calls=3, timeout_seconds=60.0)
    canary.accepted(ROUTE, START)
    assert canary.allows(ROUTE, 3, START + 60.0)
    assert canary.checked(ROUTE, TYPO, "req-1", canary=True) is not None
    assert not canary.allows(ROUTE, 0, START + 61.0)


# -- timeout ------------------------------------------------------------------------------------


def test_an_unchecked_probing_route_opens_after_the_timeout() -> None:
    canary = make_canary(calls=3, timeout_seconds=120.0, routes=(ROUTE,))
    canary.accepted(ROUTE, START)
    canary.accepted(ROUTE, START + 100.0)  # the first accepted call starts the clock
    assert not canary.allows(ROUTE, 3, START + 119.9)
    assert canary.probing(ROUTE)
    assert canary.allows(ROUTE, 3, START + 120.0)
    assert not canary.probing(ROUTE)
    assert canary.allows(ROUTE, 10_000, START + 120.0)
    assert canary.idle() > 0  # the refusal at 119.9 s
    assert canary.idle() == 0.0


def test_a_route_with_no_accepted_call_never_times_out() -> None:
    canary = make_canary(calls=3, timeout_seconds=1.0)
    assert not canary.allows(ROUTE, 3, START + 1e9)
    assert canary.probing(ROUTE)


# -- unguarded routes and wait ------------------------------------------------------------------


def test_routes_not_guarded_are_always_allowed() -> None:
    canary = make_canary(calls=3)
    assert canary.allows("sync-route", 10_000, START)
    assert not canary.probing("sync-route")
    assert not canary.halted("sync-route")
    canary.accepted("sync-route", START)
    assert canary.checked("sync-route", TYPO, "req-1", canary=True) is None
    assert canary.allows("sync-route", 10_000, START)
    assert canary.halts == []


def test_the_next_turn_idles_only_after_a_probing_route_refused_a_job() -> None:
    canary = make_canary(calls=1)
    assert canary.idle() == 0.0  # probing, but nothing was refused: no traffic, no wait
    assert canary.allows(ROUTE, 0, START)
    assert canary.idle() == 0.0
    assert not canary.allows(ROUTE, 1, START)
    assert canary.idle() > 0
    assert canary.idle() == 0.0  # once per refusal
    pass_checks(canary, 1, route=ROUTE)
    assert canary.allows(ROUTE, 100, START)
    assert canary.idle() == 0.0


def test_idle_is_zero_without_guarded_routes() -> None:
    assert make_canary(routes=()).idle() == 0.0
