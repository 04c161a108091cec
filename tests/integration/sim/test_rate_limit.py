"""The per-account rate limit over real HTTP, in each throttle style and mode."""

from __future__ import annotations

import time
from typing import Any

import pytest

from lsq_sim import AnswerClass
from tests.integration.sim.lsq import CAPTURE_BODY, Api, StartSim

RATE_LIMIT_BODY = {
    "Status": "Error",
    "ExceptionType": "MXAPIRateLimitExceededException",
    "ExceptionMessage": "API calls exceeded the limit of 5 in 10 second(s)",
}
TWO_ACCOUNTS = [
    {"access_key": "a1", "secret_key": "s1", "api_key": "k1"},
    {"access_key": "a2", "secret_key": "s2", "api_key": "k2"},
]


def _limit(**fields: Any) -> dict[str, Any]:
    """5 calls in 10 s: wide enough that a burst always fits in one window, even on a slow host."""
    return {"calls": 5, "window_s": 10.0, **fields}


def _sleep_to_next_second() -> None:
    time.sleep(1.0 - time.monotonic() % 1.0 + 0.01)


def _burst(api: Api, count: int) -> list[int]:
    return [api.submit("/lead/capture", CAPTURE_BODY).status_code for _ in range(count)]


@pytest.mark.parametrize(
    ("style", "status", "body"),
    [
        ("http429", 429, RATE_LIMIT_BODY),
        ("body200", 200, RATE_LIMIT_BODY),
        ("gateway429", 429, {"message": "Too Many Requests"}),
    ],
)
def test_calls_past_n_in_w_are_throttled_in_the_configured_style(
    start_sim: StartSim, style: str, status: int, body: object
) -> None:
    """5/10: five calls accepted, the sixth throttled with the style's status and body, and no
    Retry-After header."""
    _, api = start_sim(rate_limit=_limit(style=style))
    assert _burst(api, 5) == [200] * 5
    throttled = api.submit("/lead/capture", CAPTURE_BODY)
    assert (throttled.status_code, throttled.json()) == (status, body)
    assert "retry-after" not in throttled.headers


def test_retry_after_is_sent_when_configured(start_sim: StartSim) -> None:
    """--retry-after 1 adds Retry-After: 1 to throttle answers."""
    _, api = start_sim(rate_limit=_limit(retry_after_s=1))
    _burst(api, 5)
    assert api.submit("/lead/capture", CAPTURE_BODY).headers["retry-after"] == "1"


def test_budget_returns_once_the_window_has_passed(start_sim: StartSim) -> None:
    """After W seconds without admitted calls the budget is whole again."""
    _, api = start_sim(rate_limit={"calls": 3, "window_s": 1.0})
    assert _burst(api, 4) == [200, 200, 200, 429]
    time.sleep(1.05)
    assert _burst(api, 3) == [200, 200, 200]


def test_sync_and_async_calls_share_the_account_budget(start_sim: StartSim) -> None:
    """Submissions and sync calls of one account draw on one budget."""
    _, api = start_sim(rate_limit=_limit())
    assert _burst(api, 3) == [200] * 3
    body = [{"Attribute": "FirstName", "Value": "A"}]
    sync = [api.sync("/v2/LeadManagement.svc/Lead.Create", body).status_code for _ in range(3)]
    assert sync == [200, 200, 429]


def test_status_calls_are_not_limited_unless_asked(start_sim: StartSim) -> None:
    """Status and metrics calls do not count by default; with limit_status_calls they do."""
    _, api = start_sim(rate_limit=_limit())
    assert [api.get("/lead/capture/metrics").status_code for _ in range(8)] == [200] * 8
    assert _burst(api, 5) == [200] * 5
    _, limited = start_sim(rate_limit=_limit(limit_status_calls=True))
    codes = [limited.get("/lead/capture/metrics").status_code for _ in range(6)]
    assert codes == [200] * 5 + [429]


def test_accounts_have_separate_budgets(start_sim: StartSim) -> None:
    """One account's burst does not throttle another account."""
    sim, first = start_sim(rate_limit=_limit(), accounts=TWO_ACCOUNTS)
    second = Api(sim.url, sim.account("account2"))
    try:
        assert _burst(first, 6)[-1] == 429
        assert _burst(second, 5) == [200] * 5
    finally:
        second.close()


def test_max_calls_in_window_counts_every_call_throttled_included(start_sim: StartSim) -> None:
    """Stats report the busiest window (8 calls), and 5 accepted / 3 throttled."""
    sim, api = start_sim(rate_limit={"calls": 5, "window_s": 10.0})
    _burst(api, 8)
    stats = sim.client.stats().accounts["account1"]
    assert (stats.max_calls_in_window, stats.window_s, stats.limit) == (8, 10.0, 5)
    accepted, throttled = stats.answers[AnswerClass.ACCEPTED], stats.answers[AnswerClass.THROTTLED]
    assert (accepted, throttled, stats.calls) == (5, 3, 8)


def test_bucket_mode_refills_gradually(start_sim: StartSim) -> None:
    """Bucket 5/2.5: five at once, then a new token every 0.5 s."""
    _, api = start_sim(rate_limit=_limit(mode="bucket", window_s=2.5))
    assert _burst(api, 6)[-1] == 429
    time.sleep(0.55)
    assert _burst(api, 2) == [200, 429]


def test_fixed_mode_allows_a_new_budget_each_aligned_window(start_sim: StartSim) -> None:
    """Fixed 5/1: after the next window boundary the budget is whole again."""
    _, api = start_sim(rate_limit=_limit(mode="fixed", window_s=1.0))
    _sleep_to_next_second()  # windows are aligned to the (shared) monotonic clock
    assert _burst(api, 6)[-1] == 429
    _sleep_to_next_second()
    assert _burst(api, 5) == [200] * 5
