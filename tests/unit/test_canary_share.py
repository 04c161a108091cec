"""The canary's failure-share rule (SPEC §13): a route halts when ``failure_share`` of its last
``window`` checks failed because of their mapping; records' own failures (duplicates, leads that do
not exist) never count, so a correct route with bad data is never halted for it."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest
from structlog.testing import capture_logs

from connector.flow.canary import Canary
from connector.lsq.status import read_status
from connector.records import Answer
from connector.settings.status import CanarySettings
from tests.unit.canary_fakes import (
    BAD_EVENT,
    DUPLICATE,
    PASSED,
    ROUTE,
    START,
    TYPO,
    make_canary,
    pass_checks,
)
from tests.unit.pipeline_fakes import harness, record
from tests.unit.tracking_fakes import DUPLICATE as DUPLICATE_ANSWER
from tests.unit.tracking_fakes import SUCCESS, accept_all, request_id, status_settings

if TYPE_CHECKING:
    from tests.unit.pipeline_fakes import Sent


def test_the_failure_share_halts_once_enough_checks_are_in_the_window() -> None:
    canary = make_canary(calls=0, window=20, failure_share=0.5)
    for i in range(9):  # fewer than window // 2 checks: not enough to judge
        assert canary.checked(ROUTE, TYPO, f"req-{i}", canary=False) is None
    halt = canary.checked(ROUTE, TYPO, "req-9", canary=False)
    assert halt is not None
    assert (halt.route, halt.request_id, halt.rule) == (ROUTE, "req-9", "failure_share")
    assert halt.exception_type == "MXUnknownAttributeException"
    assert halt.attribute == "mx_Ciyt"
    assert halt.reason.startswith("failure share: 10 of its last 10 checked calls failed")
    assert halt.reason.endswith("Attribute 'mx_Ciyt' does not exist")
    assert canary.halted(ROUTE)
    assert not canary.allows(ROUTE, 0, START)


def test_the_failure_share_halts_an_open_route_at_any_time() -> None:
    canary = make_canary(calls=3, window=20, failure_share=0.5)
    pass_checks(canary, 3)
    pass_checks(canary, 100, flag=False)
    for i in range(9):  # 9 of the last 20 failed: under half
        assert canary.checked(ROUTE, TYPO, f"req-{i}", canary=False) is None
    assert not canary.halted(ROUTE)
    halt = canary.checked(ROUTE, TYPO, "req-9", canary=False)
    assert halt is not None
    assert halt.reason.startswith("failure share: 10 of its last 20 checked calls failed")
    assert canary.halts == [halt]
    assert canary.halted(ROUTE)
    assert not canary.allows(ROUTE, 0, START)  # halted: nothing more is sent


def test_a_passing_check_never_halts_even_above_the_share() -> None:
    canary = make_canary(calls=0, window=4, failure_share=0.5)
    assert canary.checked(ROUTE, TYPO, "req-1", canary=False) is None
    assert canary.checked(ROUTE, PASSED, "req-2", canary=False) is None
    halt = canary.checked(ROUTE, TYPO, "req-3", canary=False)
    assert halt is not None
    assert halt.reason.startswith("failure share: 2 of its last 3 checked calls failed")


def test_a_non_canary_mapping_failure_counts_towards_the_failure_share() -> None:
    canary = make_canary(calls=0, window=4, failure_share=0.5)
    assert canary.checked(ROUTE, TYPO, "req-1", canary=False) is None
    halt = canary.checked(ROUTE, TYPO, "req-2", canary=False)
    assert halt is not None
    assert halt.attribute == "mx_Ciyt"
    assert halt.reason.startswith("failure share: 2 of its last 2 checked calls failed")


def test_mapping_failures_past_the_share_halt_naming_the_rule_and_the_exception() -> None:
    """Half of a route's recent checks failing for their mapping halts it; the reason says it was
    the failure share, and which exception LeadSquared named."""
    canary = make_canary(calls=0, window=10, failure_share=0.5)
    with capture_logs() as logs:
        pass_checks(canary, 5, flag=False)
        for i in range(4):  # 4 of 9: under half
            assert canary.checked(ROUTE, BAD_EVENT, f"bad-{i}", canary=False) is None
        halt = canary.checked(ROUTE, BAD_EVENT, "bad-4", canary=False)
    assert halt is not None
    assert halt.rule == "failure_share"
    assert halt.exception_type == "MXInvalidActivityException"
    assert halt.reason == (
        "failure share: 5 of its last 10 checked calls failed for their mapping (failure_share "
        "0.5); the latest with MXInvalidActivityException: Event Code is invalid or empty"
    )
    [line] = [log for log in logs if log["event"] == "route.halted"]
    assert (line["rule"], line["exception_type"]) == ("failure_share", "MXInvalidActivityException")


def test_a_route_whose_checks_half_fail_as_duplicates_never_halts() -> None:
    """Records' own failures (here duplicates, half of all checks, canary calls included) are their
    outcomes, not the mapping's: the route is never halted."""
    canary = Canary([ROUTE], CanarySettings())
    for i in range(400):
        report = DUPLICATE if i % 2 == 0 else PASSED
        probing = canary.probing(ROUTE)
        assert canary.checked(ROUTE, report, f"req-{i}", canary=probing) is None
    assert not canary.halted(ROUTE)
    assert not canary.probing(ROUTE)
    assert canary.halts == []


@pytest.mark.parametrize(
    ("exception_type", "reason"),
    [
        ("MXDuplicateEntryException", "A Lead with same Email already exists."),
        ("MXInvalidEntityException", "Lead does not exist in the system"),
        ("MXInvalidInputException", "Invalid field value for mx_Phone: not a number"),
    ],
)
def test_a_failure_leadsquared_names_a_record_error_never_counts_towards_a_halt(
    exception_type: str, reason: str
) -> None:
    """Read from a Status API answer, a failure whose type names a record error is no mapping
    failure even when its wording sounds like one: every check failing so never halts."""
    task = {"Status": "FAILURE", "StatusReason": reason, "ExceptionType": exception_type}
    report = read_status(Answer(200, json.dumps({"TaskStatus": task}).encode()), "capture")
    assert (report.kind, report.mapping) == ("failed", False)
    canary = make_canary(calls=3, window=4, failure_share=0.5)
    for i in range(20):
        assert canary.checked(ROUTE, report, f"req-{i}", canary=canary.probing(ROUTE)) is None
    assert canary.halts == []


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


def _even(sent: Sent) -> bool:
    return int(request_id(sent).removeprefix("req-")) % 2 == 0


def test_a_route_leadsquared_fails_half_the_records_of_as_duplicates_keeps_sending() -> None:
    """In the loop: half of a route's calls, its canary calls among them, fail in LeadSquared's
    queue as duplicates; every record is still sent, the failed ones get failed follow-ups, and
    the route is never halted."""
    h = harness(calls=100, concurrency=100, status=status_settings(canary={"calls": 3}))
    assert h.tracked is not None
    h.feed(*(record(i, f"k{i}", f"lead{i}@example.com") for i in range(60)))
    for _ in range(200):
        h.turn()
        accept_all(h.calls)
        h.clock.advance(1.0)
        h.tracked.calls.answer(DUPLICATE_ANSWER, _even)
        h.tracked.calls.answer(SUCCESS)
    assert len(h.calls.sent) == 60
    assert (h.pipeline.tally.failed, h.pipeline.tally.succeeded) == (30, 30)
    assert h.pipeline.tally.halted == 0
    assert not [r for r in h.pipeline.snapshot.not_ready if "halted" in r]
