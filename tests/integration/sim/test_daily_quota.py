"""The daily quota and the plain throttle message of a real ``lsq-sim`` process, set by options."""

from __future__ import annotations

import time

from lsq_sim import AnswerClass, DailyQuota, SimConfig, SimProcess
from tests.integration.sim.lsq import CAPTURE_BODY, Api

#: A high rate limit, so that only the quota refuses; a 3-second day, so that a burst of 8
#: calls always fits in one day, even on a slow host.
QUOTA_ARGS = ["--rate-limit", "1000/1", "--daily-quota", "5", "--quota-day-seconds", "3"]


def _envelope(message: str) -> dict[str, str]:
    return {
        "Status": "Error",
        "ExceptionType": "MXAPIRateLimitExceededException",
        "ExceptionMessage": message,
    }


def test_quota_admits_5_in_a_3_second_day_then_admits_again() -> None:
    """--daily-quota 5 --quota-day-seconds 3: of 8 quick calls 5 are accepted and 3 refused
    (HTTP 429, the documented message naming the quota), the stats count them, and once the day
    has passed calls are accepted again."""
    with SimProcess(SimConfig(seed=7), args=QUOTA_ARGS) as sim:
        api = Api(sim.url, sim.client.account())
        try:
            answers = [api.submit("/lead/capture", CAPTURE_BODY) for _ in range(8)]
            burst_end = time.monotonic()
            assert [a.status_code for a in answers] == [200] * 5 + [429] * 3
            refused = _envelope("API calls exceeded the limit of 5 in 3 second(s)")
            assert all(a.json() == refused for a in answers[5:])
            stats = sim.client.stats().accounts["account1"]
            throttled = stats.answers[AnswerClass.THROTTLED]
            assert (stats.quota_refused, stats.max_calls_in_day, throttled) == (3, 5, 3)
            assert sim.client.config().daily_quota == DailyQuota(calls=5, day_s=3.0)
            time.sleep(max(0.0, burst_end + 3.05 - time.monotonic()))
            assert api.submit("/lead/capture", CAPTURE_BODY).status_code == 200
        finally:
            api.close()


def test_plain_throttle_message_names_no_limit() -> None:
    """--throttle-message plain: a call over the quota is refused with "API rate limit
    exceeded"."""
    args = ["--rate-limit", "1000/1", "--daily-quota", "1", "--throttle-message", "plain"]
    with SimProcess(SimConfig(seed=7), args=args) as sim:
        api = Api(sim.url, sim.client.account())
        try:
            assert api.submit("/lead/capture", CAPTURE_BODY).status_code == 200
            refused = api.submit("/lead/capture", CAPTURE_BODY)
            assert (refused.status_code, refused.json()) == (
                429,
                _envelope("API rate limit exceeded"),
            )
        finally:
            api.close()
