"""Learned limits at their edges (SPEC §7, §2.10): a limit below one call per window is kept as
stated, and a stated limit is tested again after a quiet spell, so one odd answer cannot pin an
account at a tiny budget for good."""

from __future__ import annotations

from connector.flow.accounts import MAIN, Account
from connector.flow.gates import RateGate
from connector.flow.limits import RECOVER_WINDOWS, RETEST_S, Limit
from connector.settings.model import RetrySettings


def test_a_limit_below_one_call_per_window_is_kept_as_stated() -> None:
    """ "the limit of 5 in 60 second(s)" is at most 5 calls in any 60 s, not one call per 5 s (12 in
    60 s)."""
    limit = Limit(25, 5.0)
    assert limit.throttled((5, 60.0), now=0.0) == "learned"
    assert limit.rate == (5, 60.0)
    assert limit.throttled((5, 60.0), now=10.0) is None  # the same limit again: nothing new


def test_a_limit_over_a_longer_window_that_allows_calls_each_window_is_converted() -> None:
    limit = Limit(25, 5.0)
    limit.throttled((20, 10.0), now=0.0)
    assert limit.rate == (10, 5.0)


def test_a_stated_limit_is_tested_again_after_a_quiet_spell() -> None:
    """Learned 10 of 25: it holds for RETEST_S without a throttle answer, then the budget climbs
    again, one call per window every RECOVER_WINDOWS windows, up to the configured one."""
    limit = Limit(25, 5.0)
    limit.throttled((10, 5.0), now=0.0)
    assert not limit.recover(RETEST_S - 1.0)
    assert limit.rate == (10, 5.0)
    assert limit.recover(RETEST_S)
    assert limit.stated is None
    step = RECOVER_WINDOWS * 5.0
    assert limit.recover(RETEST_S + step)
    assert limit.rate == (11, 5.0)


def test_a_limit_confirmed_by_throttle_answers_is_not_tested_again() -> None:
    """Each throttle answer while the limit is stated renews it."""
    limit = Limit(25, 5.0)
    limit.throttled((10, 5.0), now=0.0)
    limit.throttled((10, 5.0), now=RETEST_S - 10.0)
    limit.recover(RETEST_S + 10.0)
    assert limit.stated == 10
    assert limit.rate[0] <= 10


def test_the_account_logs_a_retest_and_reshares() -> None:
    account = Account(
        "a", {MAIN: RateGate(25, 5.0)}, 4, 5.0, RetrySettings(), limits={MAIN: (25, 5.0)}
    )
    account.budgets[MAIN].throttled((10, 5.0), now=0.0)
    account.resized = False
    account.recover(RETEST_S + 1.0)
    assert account.resized
    assert account.budgets[MAIN].stated is None
