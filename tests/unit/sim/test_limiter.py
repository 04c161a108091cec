"""The rate limiter in each mode, and the daily quota, over injected time (no sleeping)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from lsq_sim.config import RateLimit
from lsq_sim.limiter import (
    FixedWindow,
    Limiter,
    RollingQuota,
    SlidingWindow,
    TokenBucket,
    Unlimited,
    make_limiter,
)

arrivals = st.lists(st.floats(min_value=0, max_value=20, allow_nan=False), max_size=200).map(sorted)


def _admitted(limiter: Limiter, times: list[float]) -> list[float]:
    return [t for t in times if limiter.admit(t)]


def _most_in_any_window(times: list[float], window: float) -> int:
    return max((sum(1 for u in times if t - window <= u <= t) for t in times), default=0)


def test_sliding_admits_n_then_rejects_within_the_window() -> None:
    """5/1: five calls pass, the sixth in the same second is throttled."""
    limiter = SlidingWindow(5, 1.0)
    assert [limiter.admit(0.1 * i) for i in range(6)] == [True] * 5 + [False]


def test_sliding_window_is_closed_at_both_ends() -> None:
    """A call exactly W after the first still shares its window; just after, it passes."""
    limiter = SlidingWindow(2, 1.0)
    assert _admitted(limiter, [0.0, 0.5, 1.0, 1.0001]) == [0.0, 0.5, 1.0001]


def test_throttled_calls_do_not_consume_budget() -> None:
    """Rejected calls are not counted: after the window slides, the full budget is back."""
    limiter = SlidingWindow(3, 1.0)
    assert _admitted(limiter, [0.0, 0.0, 0.0] + [0.5] * 10) == [0.0, 0.0, 0.0]
    assert _admitted(limiter, [1.01, 1.02, 1.03, 1.04]) == [1.01, 1.02, 1.03]


@given(arrivals)
def test_sliding_never_admits_more_than_n_in_any_window(times: list[float]) -> None:
    """Property: admitted calls never exceed N in any closed W-second window."""
    admitted = _admitted(SlidingWindow(5, 1.0), times)
    assert _most_in_any_window(admitted, 1.0) <= 5


@given(arrivals)
def test_sliding_rejects_only_when_the_window_is_full(times: list[float]) -> None:
    """Property: a call is throttled only when N admitted calls lie in its last W seconds."""
    limiter, admitted = SlidingWindow(3, 1.0), []
    for t in times:
        if limiter.admit(t):
            admitted.append(t)
        else:
            assert sum(1 for u in admitted if u >= t - 1.0) == 3


def test_rolling_quota_admits_n_per_closed_day_and_keeps_the_busiest_day() -> None:
    """3 per 10 s: the fourth call is refused until the first one is more than a day old, and
    the peak is the most calls admitted in one day (refused calls count in neither)."""
    quota = RollingQuota(3, 10.0)
    admitted = _admitted(quota, [0.0, 1.0, 2.0, 3.0, 10.0, 10.5, 10.6, 12.5, 30.0])
    assert admitted == [0.0, 1.0, 2.0, 10.5, 12.5, 30.0]
    assert quota.peak == 3


@given(arrivals, st.integers(min_value=1, max_value=6), st.sampled_from([0.5, 1.0, 5.0]))
def test_rolling_quota_peak_is_the_most_admitted_in_any_day(
    times: list[float], calls: int, day: float
) -> None:
    """Property: the incremental peak equals the brute-force busiest day of the admitted calls,
    which never exceeds the quota; a call is refused only when the day is full."""
    quota, admitted = RollingQuota(calls, day), []
    for t in times:
        if quota.admit(t):
            admitted.append(t)
        else:
            assert sum(1 for u in admitted if u >= t - day) == calls
    assert quota.peak == _most_in_any_window(admitted, day) <= calls


def test_fixed_windows_are_aligned_and_reset() -> None:
    """Fixed: N per [k·W, (k+1)·W); a new window starts with a full budget (bursts of 2N)."""
    limiter = FixedWindow(2, 1.0)
    assert _admitted(limiter, [0.9, 0.95, 0.99, 1.0, 1.01, 1.02]) == [0.9, 0.95, 1.0, 1.01]


@given(arrivals)
def test_fixed_never_admits_more_than_n_per_window(times: list[float]) -> None:
    """Property: at most N admitted calls share an aligned window."""
    admitted = _admitted(FixedWindow(4, 2.0), times)
    per_window: dict[int, int] = {}
    for t in admitted:
        per_window[int(t // 2.0)] = per_window.get(int(t // 2.0), 0) + 1
    assert max(per_window.values(), default=0) <= 4


def test_bucket_starts_full_and_refills_n_per_w() -> None:
    """Bucket 5/1: five at once, then one more every 0.2 s."""
    limiter = TokenBucket(5, 1.0)
    assert [limiter.admit(0.0) for _ in range(6)] == [True] * 5 + [False]
    assert _admitted(limiter, [0.1, 0.2, 0.2, 0.4]) == [0.2, 0.4]


@given(arrivals)
def test_bucket_admits_at_most_capacity_plus_refill_per_window(times: list[float]) -> None:
    """Property: a bucket lets at most C + r·W = 2N calls through in any window of W."""
    admitted = _admitted(TokenBucket(5, 1.0), times)
    assert _most_in_any_window(admitted, 1.0) <= 10


def test_unlimited_admits_everything() -> None:
    """--rate-limit off: no call is throttled."""
    assert all(Unlimited().admit(0.0) for _ in range(1000))


def test_make_limiter_follows_the_mode() -> None:
    """The configured mode picks the algorithm; disabled means unlimited."""
    assert isinstance(make_limiter(RateLimit()), SlidingWindow)
    assert isinstance(make_limiter(RateLimit(mode="fixed")), FixedWindow)
    assert isinstance(make_limiter(RateLimit(mode="bucket")), TokenBucket)
    assert isinstance(make_limiter(RateLimit(enabled=False)), Unlimited)
