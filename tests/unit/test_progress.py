"""The progress line (SPEC §8): per-route drain times, learned budgets, and what a daily quota
leaves, with the drain time counting the quota's pace."""

from __future__ import annotations

from collections import Counter

from structlog.testing import capture_logs

from connector.flow.accounts import MAIN, Account
from connector.flow.gates import RateGate
from connector.flow.observe import TrackingView
from connector.flow.progress import Progress, progress_fields, tracking_fields
from connector.flow.quota import Quota
from connector.flow.tally import Tally
from connector.settings.model import RetrySettings
from tests.unit.pipeline_fakes import harness, record

WALL = 1_700_000_000.0


def _account(quota: Quota | None = None) -> Account:
    account = Account(
        "main", {MAIN: RateGate(25, 5.0)}, 4, 5.0, RetrySettings(), limits={MAIN: (25, 5.0)}
    )
    account.quota = quota
    return account


def test_each_route_drains_at_its_own_rate() -> None:
    tally = Tally(accepted=300, by_route=Counter(leads=200, activities=100))
    last = Progress(10.0, at=0.0)
    account = _account()
    account.budgets[MAIN].throttled((10, 5.0), now=0.0)
    fields = progress_fields(
        tally,
        last,
        10.0,
        in_flight=5,
        backlog={"leads": 400, "activities": 50, "idle": 0},
        accounts={"main": account},
    )
    assert fields["eta_s_by_route"] == {"activities": 5, "leads": 20}  # 400 at 20/s, 50 at 10/s
    assert fields["eta_s"] == 15  # 450 at 30/s
    assert fields["budgets"] == {"main": {MAIN: 10}}
    assert last.by_route == Counter(leads=200, activities=100)
    assert "quota_left" not in fields


def test_tracking_fields_come_from_the_view_and_the_tally() -> None:
    """Checks in flight, follow-ups by status and status calls; halted routes and LeadSquared's
    queues only when there are some."""
    tally = Tally(succeeded=5, failed=2, unknown=1, status_calls=9, status_checks_skipped=3)
    queues = (("main", "lead.update", 40, 12.5),)
    fields = tracking_fields(TrackingView(4, ("leads",), queues), tally)
    assert fields == {
        "checks": 4,
        "follow_ups": {"succeeded": 5, "failed": 2, "unknown": 1},
        "status_calls": 9,
        "checks_skipped": 3,
        "halted": ["leads"],
        "queue": {"main/lead.update": {"pending": 40, "max_delay_s": 12.5}},
    }
    assert set(tracking_fields(TrackingView(0, (), ()), Tally())) == {
        "checks",
        "follow_ups",
        "status_calls",
        "checks_skipped",
    }


def test_a_spent_quota_says_until_when_and_slows_the_drain_estimate() -> None:
    quota = Quota(100, 1000.0, "greedy")
    quota.apportion([("leads", 0)], 1, offset=WALL)
    for _ in range(100):
        quota.charge(("leads", 0), 0.0)
    tally = Tally(accepted=100, by_route=Counter(leads=100))
    fields = progress_fields(
        tally,
        Progress(10.0, at=0.0),
        10.0,
        in_flight=0,
        backlog={"leads": 200},
        accounts={"main": _account(quota)},
    )
    assert fields["quota_left"] == {"main": 0}
    assert fields["quota_exhausted_until"]["main"].startswith("2023-11-14T22:")
    assert fields["eta_s"] == 2000  # 200 calls at 100 per 1000 s, not 20 s at 10/s


def test_the_loop_reports_each_routes_backlog() -> None:
    h = harness()
    h.feed(*(record(i, f"k{i}", f"lead{i}@example.com") for i in range(30)))
    h.turn(3)
    h.clock.advance(11.0)
    with capture_logs() as logs:
        h.turn(1)
    (line,) = [entry for entry in logs if entry["event"] == "progress"]
    assert line["backlog"] == 30  # none answered yet: all without an outcome
    assert line["eta_s_by_route"] == {"leads": None}  # nothing done yet: no rate
    assert line["budgets"] == {"main": {MAIN: 25}}
