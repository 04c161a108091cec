"""The canary (SPEC §13): a guarded route sends only a few calls until their checks pass, halts
when a canary check fails because of its mapping or when too many of its recent checks fail, and
opens when its canary calls cannot be checked in time."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from connector.flow.canary import Canary, Halt
from connector.lsq.status import Report
from connector.settings.status import CanarySettings

ROUTE = "leads"
OTHER = "activities"
START = 1_700_000_000.0

PASSED = Report("succeeded", "Request was successfully completed", lead_id="lead-1")
TYPO = Report(
    "failed",
    "Attribute 'mx_Ciyt' does not exist",
    "MXUnknownAttributeException",
    mapping=True,
    attribute="mx_Ciyt",
)
BAD_EVENT = Report(
    "failed", "Event Code is invalid or empty", "MXInvalidActivityException", mapping=True
)
DUPLICATE = Report("failed", "A Lead with same Email already exists.", "MXDuplicateEntryException")


def _canary(
    *,
    calls: int = 3,
    timeout_seconds: float = 120.0,
    window: int = 20,
    failure_share: float = 0.5,
    routes: tuple[str, ...] = (ROUTE, OTHER),
) -> Canary:
    settings = CanarySettings(
        calls=calls, timeout_seconds=timeout_seconds, window=window, failure_share=failure_share
    )
    return Canary(routes, settings)


def _pass(canary: Canary, count: int, *, route: str = ROUTE, flag: bool = True) -> None:
    for i in range(count):
        assert canary.checked(route, PASSED, f"ok-{i}", canary=flag) is None


# -- probing ------------------------------------------------------------------------------------


def test_a_probing_route_allows_calls_only_while_passed_plus_out_is_below_calls() -> None:
    canary = _canary(calls=3)
    assert canary.probing(ROUTE)
    assert [canary.allows(ROUTE, out, START) for out in range(5)] == [
        True,
        True,
        True,
        False,
        False,
    ]
    canary.accepted(ROUTE, START)
    _pass(canary, 1)
    assert canary.probing(ROUTE)
    assert canary.allows(ROUTE, 1, START)
    assert not canary.allows(ROUTE, 2, START)
    _pass(canary, 1)
    assert canary.allows(ROUTE, 0, START)
    assert not canary.allows(ROUTE, 1, START)


def test_passing_calls_canary_checks_opens_the_route_for_any_out() -> None:
    canary = _canary(calls=3)
    canary.accepted(ROUTE, START)
    _pass(canary, 2)
    assert canary.probing(ROUTE)
    _pass(canary, 1)
    assert not canary.probing(ROUTE)
    assert canary.allows(ROUTE, 10_000, START)
    assert canary.halts == []


def test_non_canary_checks_do_not_count_towards_opening() -> None:
    canary = _canary(calls=2)
    _pass(canary, 5, flag=False)
    assert canary.probing(ROUTE)
    assert not canary.allows(ROUTE, 2, START)


@pytest.mark.parametrize("report", [DUPLICATE, None], ids=["record-failure", "unknown"])
def test_a_canary_check_not_failing_for_its_mapping_counts_as_passed(
    report: Report | None,
) -> None:
    canary = _canary(calls=3)
    for i in range(3):
        assert canary.checked(ROUTE, report, f"req-{i}", canary=True) is None
    assert not canary.probing(ROUTE)
    assert canary.allows(ROUTE, 100, START)
    assert not canary.halted(ROUTE)


def test_each_route_probes_on_its_own() -> None:
    canary = _canary(calls=1)
    _pass(canary, 1, route=ROUTE)
    assert not canary.probing(ROUTE)
    assert canary.probing(OTHER)
    assert not canary.allows(OTHER, 1, START)


def test_calls_zero_means_open_from_the_start() -> None:
    canary = _canary(calls=0)
    assert not canary.probing(ROUTE)
    assert canary.allows(ROUTE, 10_000, START)
    assert canary.idle() == 0.0


# -- halting on a mapping failure ---------------------------------------------------------------


def test_a_mapping_failure_of_a_canary_check_halts_the_route() -> None:
    canary = _canary(calls=3)
    canary.accepted(ROUTE, START)
    _pass(canary, 1)
    halt = canary.checked(ROUTE, TYPO, "req-7", canary=True)
    assert halt == Halt(
        ROUTE,
        "Attribute 'mx_Ciyt' does not exist",
        attribute="mx_Ciyt",
        exception_type="MXUnknownAttributeException",
        request_id="req-7",
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
    canary = _canary(calls=3)
    canary.checked(ROUTE, TYPO, "req-1", canary=True)
    assert not canary.halted(OTHER)
    assert canary.probing(OTHER)
    assert canary.allows(OTHER, 0, START)
    assert [h.route for h in canary.halts] == [ROUTE]


def test_an_invalid_activity_event_halts_without_an_attribute() -> None:
    canary = _canary(calls=3)
    halt = canary.checked(ROUTE, BAD_EVENT, "req-2", canary=True)
    assert halt is not None
    assert halt.attribute is None
    assert halt.exception_type == "MXInvalidActivityException"
    assert str(halt) == f"route {ROUTE} halted: Event Code is invalid or empty"


def test_a_halted_route_halts_once_and_ignores_later_checks() -> None:
    canary = _canary(calls=3)
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
    canary = _canary(calls=0)
    assert canary.checked(ROUTE, TYPO, "req-1", canary=False) is None
    assert not canary.halted(ROUTE)
    assert canary.allows(ROUTE, 50, START)
    assert canary.halts == []


def test_a_late_canary_mapping_failure_halts_a_route_opened_by_the_timeout() -> None:
    canary = _canary(calls=3, timeout_seconds=60.0)
    canary.accepted(ROUTE, START)
    assert canary.allows(ROUTE, 3, START + 60.0)
    assert canary.checked(ROUTE, TYPO, "req-1", canary=True) is not None
    assert not canary.allows(ROUTE, 0, START + 61.0)


# -- halting on a failure share -----------------------------------------------------------------


def test_the_failure_share_halts_once_enough_checks_are_in_the_window() -> None:
    canary = _canary(calls=0, window=20, failure_share=0.5)
    for i in range(9):  # fewer than window // 2 checks: not enough to judge
        assert canary.checked(ROUTE, DUPLICATE, f"req-{i}", canary=False) is None
    halt = canary.checked(ROUTE, DUPLICATE, "req-9", canary=False)
    assert halt is not None
    assert halt.route == ROUTE
    assert halt.request_id == "req-9"
    assert halt.exception_type == "MXDuplicateEntryException"
    assert halt.attribute is None
    assert halt.reason.startswith("10 of its last 10 checked calls failed")
    assert halt.reason.endswith("A Lead with same Email already exists.")
    assert canary.halted(ROUTE)
    assert not canary.allows(ROUTE, 0, START)


def test_the_failure_share_halts_an_open_route_at_any_time() -> None:
    canary = _canary(calls=3, window=20, failure_share=0.5)
    _pass(canary, 3)
    _pass(canary, 100, flag=False)
    for i in range(9):  # 9 of the last 20 failed: under half
        assert canary.checked(ROUTE, DUPLICATE, f"req-{i}", canary=False) is None
    assert not canary.halted(ROUTE)
    halt = canary.checked(ROUTE, DUPLICATE, "req-9", canary=False)
    assert halt is not None
    assert halt.reason.startswith("10 of its last 20 checked calls failed")
    assert canary.halts == [halt]
    assert canary.halted(ROUTE)
    assert not canary.allows(ROUTE, 0, START)  # halted: nothing more is sent


def test_a_passing_check_never_halts_even_above_the_share() -> None:
    canary = _canary(calls=0, window=4, failure_share=0.5)
    assert canary.checked(ROUTE, DUPLICATE, "req-1", canary=False) is None
    assert canary.checked(ROUTE, PASSED, "req-2", canary=False) is None
    halt = canary.checked(ROUTE, DUPLICATE, "req-3", canary=False)
    assert halt is not None
    assert halt.reason.startswith("2 of its last 3 checked calls failed")


def test_a_non_canary_mapping_failure_counts_towards_the_failure_share() -> None:
    canary = _canary(calls=0, window=4, failure_share=0.5)
    assert canary.checked(ROUTE, TYPO, "req-1", canary=False) is None
    halt = canary.checked(ROUTE, TYPO, "req-2", canary=False)
    assert halt is not None
    assert halt.attribute == "mx_Ciyt"
    assert halt.reason.startswith("2 of its last 2 checked calls failed")


@pytest.mark.parametrize("phase", [0, 7, 19])
def test_a_five_percent_failure_rate_over_200_checks_never_halts_with_the_defaults(
    phase: int,
) -> None:
    defaults = CanarySettings()
    canary = Canary([ROUTE], defaults)
    for i in range(200):
        report = DUPLICATE if i % 20 == phase else PASSED
        probing = canary.probing(ROUTE)
        assert canary.checked(ROUTE, report, f"req-{i}", canary=probing) is None
    assert not canary.halted(ROUTE)
    assert not canary.probing(ROUTE)
    assert canary.halts == []


# -- timeout ------------------------------------------------------------------------------------


def test_an_unchecked_probing_route_opens_after_the_timeout() -> None:
    canary = _canary(calls=3, timeout_seconds=120.0, routes=(ROUTE,))
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
    canary = _canary(calls=3, timeout_seconds=1.0)
    assert not canary.allows(ROUTE, 3, START + 1e9)
    assert canary.probing(ROUTE)


# -- unguarded routes and wait ------------------------------------------------------------------


def test_routes_not_guarded_are_always_allowed() -> None:
    canary = _canary(calls=3)
    assert canary.allows("sync-route", 10_000, START)
    assert not canary.probing("sync-route")
    assert not canary.halted("sync-route")
    canary.accepted("sync-route", START)
    assert canary.checked("sync-route", TYPO, "req-1", canary=True) is None
    assert canary.allows("sync-route", 10_000, START)
    assert canary.halts == []


def test_the_next_turn_idles_only_after_a_probing_route_refused_a_job() -> None:
    canary = _canary(calls=1)
    assert canary.idle() == 0.0  # probing, but nothing was refused: no traffic, no wait
    assert canary.allows(ROUTE, 0, START)
    assert canary.idle() == 0.0
    assert not canary.allows(ROUTE, 1, START)
    assert canary.idle() > 0
    assert canary.idle() == 0.0  # once per refusal
    _pass(canary, 1, route=ROUTE)
    assert canary.allows(ROUTE, 100, START)
    assert canary.idle() == 0.0


def test_idle_is_zero_without_guarded_routes() -> None:
    assert _canary(routes=()).idle() == 0.0
