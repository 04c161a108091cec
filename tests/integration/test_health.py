"""The health port as a real HTTP server on 127.0.0.1 (SPEC §8): /livez follows the loop's last
turn, /readyz the published reasons, /metrics the Prometheus exposition of the latest snapshot."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import httpx
import pytest

from connector.adapters.health import HealthServer
from connector.flow.observe import Snapshot
from connector.flow.tally import Tally

if TYPE_CHECKING:
    from collections.abc import Iterator


@dataclass
class Loop:
    """What a pipeline publishes, set by hand, and a manual clock."""

    snapshot: Snapshot = field(default_factory=Snapshot)
    last_turn: float = 100.0
    now: float = 100.0


def _get(url: str) -> tuple[int, str]:
    answer = httpx.get(url)
    return answer.status_code, answer.text


@pytest.fixture
def served() -> Iterator[tuple[Loop, str]]:
    loop = Loop()
    server = HealthServer("127.0.0.1", 0, loop, 60.0, clock=lambda: loop.now).start()
    try:
        yield loop, f"http://127.0.0.1:{server.port}"
    finally:
        server.close()


def test_livez_fails_only_when_the_loop_stops_turning(served: tuple[Loop, str]) -> None:
    """200 while the last turn is recent; 503 saying for how long once it is older than the
    liveness timeout; 200 again when the loop turns."""
    loop, url = served
    assert _get(f"{url}/livez") == (200, "ok\n")
    loop.now += 61
    assert _get(f"{url}/livez") == (503, "the loop has not turned for 61 s\n")
    loop.last_turn = loop.now
    assert httpx.get(f"{url}/livez").status_code == 200


def test_readyz_lists_the_reasons_until_there_are_none(served: tuple[Loop, str]) -> None:
    """503 with one reason per line while the snapshot has any; 200 "ready" after."""
    loop, url = served
    assert _get(f"{url}/readyz") == (503, "starting\n")
    loop.snapshot = Snapshot(not_ready=("not in the consumer group yet", "account main: x"))
    assert _get(f"{url}/readyz") == (503, "not in the consumer group yet\naccount main: x\n")
    loop.snapshot = Snapshot(not_ready=())
    assert _get(f"{url}/readyz") == (200, "ready\n")


def test_metrics_serve_the_latest_snapshot(served: tuple[Loop, str]) -> None:
    """The Prometheus text format, with the values of the snapshot published last."""
    loop, url = served
    loop.snapshot = Snapshot(Tally(consumed=7), not_ready=())
    first = httpx.get(f"{url}/metrics")
    assert first.headers["content-type"].startswith("text/plain; version=")
    assert "lsq_sink_records_consumed_total 7.0\n" in first.text
    loop.snapshot = Snapshot(Tally(consumed=9))
    assert "lsq_sink_records_consumed_total 9.0\n" in httpx.get(f"{url}/metrics").text


def test_unknown_paths_are_404_and_a_busy_port_is_an_error(served: tuple[Loop, str]) -> None:
    """Anything else is a 404 naming the three paths; a second server on the same port fails to
    start (the connector reports it as a configuration error of health.port)."""
    loop, url = served
    assert _get(f"{url}/") == (404, "not found: try /metrics, /livez or /readyz\n")
    port = int(url.rsplit(":", 1)[1])
    with pytest.raises(OSError, match="in use"):
        HealthServer("127.0.0.1", port, loop, 60.0)
