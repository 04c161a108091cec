"""The counters: most calls in any window (incremental) and the 10-minute processing rate."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from lsq_sim.meters import RateMeter, WindowCounter


def _brute_force_peak(times: list[float], window: float) -> int:
    """Slide a closed window over every start point that matters."""
    return max((sum(1 for u in times if t <= u <= t + window) for t in times), default=0)


def test_peak_counts_the_busiest_window() -> None:
    """Calls at 0, 0.5, 1.0 share a closed 1-second window; 2.5 and 3.2 do not join them."""
    counter = WindowCounter(1.0)
    for t in (0.0, 0.5, 1.0, 2.5, 3.2):
        counter.add(t)
    assert counter.peak == 3


def test_peak_never_decreases() -> None:
    """The peak is a maximum over the whole run."""
    counter = WindowCounter(1.0)
    for t in (0.0, 0.1, 0.2, 5.0):
        counter.add(t)
    assert counter.peak == 3


@given(
    st.lists(st.floats(min_value=0, max_value=30, allow_nan=False), max_size=150).map(sorted),
    st.sampled_from([0.5, 1.0, 5.0]),
)
def test_peak_matches_brute_force(times: list[float], window: float) -> None:
    """Property: the incremental peak equals the maximum over all windows."""
    counter = WindowCounter(window)
    for t in times:
        counter.add(t)
    assert counter.peak == _brute_force_peak(times, window)


def test_rate_meter_averages_over_ten_minutes() -> None:
    """Events per minute over the previous 600 s; older ones drop out."""
    meter = RateMeter()
    for i in range(60):
        meter.add(800.0 + i)
    for i in range(120):
        meter.add(1000.0 + i * 2)
    assert meter.per_minute(1300.0) == 18.0  # 60 + 120 events within the last 600 s
    assert meter.per_minute(1500.0) == 12.0
    assert meter.per_minute(5000.0) == 0.0
