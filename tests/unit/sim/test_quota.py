"""The daily quota in the request pipeline, over injected time: what it counts, how it answers,
its stats and its reset."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

from lsq_sim.app import Call, _answer
from lsq_sim.config import Account, DailyQuota, RateLimit, SimConfig
from lsq_sim.control import _account_stats
from lsq_sim.state import SimState

if TYPE_CHECKING:
    from lsq_sim.answers import Answer

ACCOUNT = Account(access_key="a", secret_key="s", api_key="k")
QUERY = {"accesskey": "a", "secretkey": "s"}
HEADERS = {"content-type": "application/json", "x-api-key": "k"}
CREATE = "/v2/LeadManagement.svc/Lead.Create"
BULK = "/v2/LeadManagement.svc/Lead/Bulk/CreateOrUpdate"
METRICS = "/lead/capture/metrics"
WIDE = RateLimit(calls=1000, window_s=1.0)
THREE_IN_10_S = DailyQuota(calls=3, day_s=10.0)


class Clock:
    """A settable monotonic clock."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _sim(quota: DailyQuota | None = THREE_IN_10_S, **more: Any) -> SimState:
    """One account (ACCOUNT) with wide rate limits unless ``more`` sets them, on a Clock."""
    fields = {"accounts": (ACCOUNT,), "rate_limit": WIDE, "bulk_rate_limit": WIDE, **more}
    return SimState(SimConfig.model_validate({"daily_quota": quota, **fields}), Clock())


def _send(state: SimState, at: float, path: str = CREATE, method: str = "POST") -> Answer:
    """One call to ``path`` at time ``at``, through the whole pipeline."""
    assert isinstance(state.clock, Clock)
    state.clock.now = at
    row = [{"Attribute": "FirstName", "Value": "A"}]
    body = [row] if path == BULK else row
    raw = json.dumps(body).encode() if method == "POST" else b""
    account = state.accounts["account1"]
    call = Call(method, path, QUERY, HEADERS, raw, raw.decode(), at, account)
    return asyncio.run(_answer(state, call))


def _statuses(state: SimState, times: list[float], path: str = CREATE) -> list[int]:
    return [_send(state, t, path).status for t in times]


def _message(answer: Answer) -> object:
    assert isinstance(answer.body, dict)
    return answer.body["ExceptionMessage"]


def test_quota_refuses_past_n_in_a_rolling_day_and_counts_it() -> None:
    """3 per 10 s: the fourth call is refused with the documented message until the first call
    is more than a day old; refusals use no quota and are counted apart from the rate limit."""
    state = _sim()
    assert _statuses(state, [0.0, 1.0, 2.0, 3.0, 10.0]) == [200, 200, 200, 429, 429]
    refused = _send(state, 10.0)
    assert (refused.kind, _message(refused)) == (
        "throttled",
        "API calls exceeded the limit of 3 in 10 second(s)",
    )
    assert _statuses(state, [10.5, 10.6, 12.5]) == [200, 429, 200]
    stats = _account_stats(state.accounts["account1"])
    assert (stats.quota_refused, stats.max_calls_in_day) == (4, 3)
    assert state.accounts["account1"].main.throttled == 0


def test_main_bulk_and_counted_status_calls_share_the_quota() -> None:
    """Sync and bulk calls draw on one quota; metrics calls only when they count against the
    rate limit (limit_status_calls)."""
    state = _sim()
    assert [_send(state, 0.0, METRICS, "GET").status for _ in range(4)] == [200] * 4
    assert _statuses(state, [0.0, 0.1], BULK) + _statuses(state, [0.2, 0.3]) == [200] * 3 + [429]
    counted = _sim(rate_limit=WIDE.model_copy(update={"limit_status_calls": True}))
    assert [_send(counted, 0.0, METRICS, "GET").status for _ in range(4)] == [200] * 3 + [429]


def test_calls_the_rate_limit_throttles_use_no_quota() -> None:
    """Rate limit 2/1 and quota 3/10: the rate limit's refusals leave the quota alone, and a call
    that passes the rate limit can still be refused by the quota (its rate budget then used)."""
    state = _sim(rate_limit=RateLimit(calls=2, window_s=1.0))
    assert _statuses(state, [0.0, 0.0, 0.0, 1.5, 1.6, 1.7]) == [200, 200, 429, 200, 429, 429]
    account = state.accounts["account1"]
    assert account.quota is not None
    assert (account.main.throttled, account.quota.refused) == (2, 1)
    assert _message(_send(state, 1.8)) == "API calls exceeded the limit of 2 in 1 second(s)"


def test_quota_answers_in_the_main_limit_style_and_message() -> None:
    """body200 with the plain message: refused with HTTP 200 and "API rate limit exceeded"."""
    plain = RateLimit(calls=1000, window_s=1.0, style="body200", states_limit=False)
    state = _sim(DailyQuota(calls=1, day_s=10.0), rate_limit=plain)
    assert _send(state, 0.0, BULK).status == 200
    refused = _send(state, 0.1)
    assert (refused.status, _message(refused)) == (200, "API rate limit exceeded")


def test_an_account_quota_overrides_the_default_and_none_means_unlimited() -> None:
    """An account's own daily_quota wins; without any quota nothing is refused or tracked."""
    own = ACCOUNT.model_copy(update={"daily_quota": DailyQuota(calls=1, day_s=5.0)})
    state = _sim(DailyQuota(calls=9), accounts=(own,))
    assert _statuses(state, [0.0, 1.0]) == [200, 429]
    assert _message(_send(state, 2.0)) == "API calls exceeded the limit of 1 in 5 second(s)"
    unlimited = _sim(None)
    assert _statuses(unlimited, [0.0] * 20) == [200] * 20
    stats = _account_stats(unlimited.accounts["account1"])
    assert (stats.quota_refused, stats.max_calls_in_day) == (0, None)


def test_reset_clears_the_quota() -> None:
    """After a reset the whole quota is back and its counters are zero."""
    state = _sim()
    _statuses(state, [0.0, 0.0, 0.0, 0.0])
    state.reset()
    stats = _account_stats(state.accounts["account1"])
    assert (stats.quota_refused, stats.max_calls_in_day) == (0, 0)
    assert _statuses(state, [0.1, 0.2, 0.3, 0.4]) == [200, 200, 200, 429]
