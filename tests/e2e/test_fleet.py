"""One rate budget for the whole fleet (SPEC §2.3, §7): three `lsq-sink run` replicas in one
consumer group against one simulator that enforces the account's limit."""

from __future__ import annotations

from connector.testing import trials
from connector.testing.fleet_trial import fleet


def test_three_replicas_never_exceed_the_account_limit_together(stack: trials.Stack) -> None:
    """Each replica takes a third of the budget (two partitions of six); together they are
    never throttled and never send more than the limit in any window; nothing is lost. (The
    share of the budget they use is a benchmark figure: `make bench`.)"""
    limit = trials.STEADY
    trial, report = fleet(stack, limit=limit, records=900, seconds=10.0)
    assert report.shares == (limit // 3,) * 3
    assert report.throttled == 0
    assert report.max_calls_in_window <= limit
    assert report.accepted > 0
    assert trial.report("fleet", restarts=0).lost == 0
    print(f"fleet of 3: budget use {report.budget_use:.3f} ({report.accepted} calls in 10 s)")  # noqa: T201
