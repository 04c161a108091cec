"""``lsq-sim`` as a real process (SimProcess): the essentials over the wire, and a clean stop."""

from __future__ import annotations

import os
import signal
import time

import httpx
import pytest

from lsq_sim import SimConfig, SimProcess
from tests.integration.sim.lsq import BULK_LEADS, CAPTURE_BODY, Api, lead_row


def test_lsq_sim_process_accepts_limits_and_processes() -> None:
    """A correct async call gets a RequestID, a missing x-api-key is rejected, the 26th call in
    5 s is throttled (--rate-limit 25/5) and the third bulk call too (--bulk-rate-limit 2/5),
    the Status API reports Success, and SIGTERM exits 0."""
    args = ["--rate-limit", "25/5", "--bulk-rate-limit", "2/5"]
    with SimProcess(SimConfig(seed=5), args=args) as sim:
        assert sim.url.startswith("http://127.0.0.1:")
        api = Api(sim.url, sim.client.account())
        try:
            request_id = api.accepted_id(api.submit("/lead/capture", CAPTURE_BODY))
            rejected = api.submit("/lead/capture", CAPTURE_BODY, api_key=None)
            assert (rejected.status_code, rejected.json()) == (403, {"message": "Forbidden"})
            codes = [api.submit("/lead/capture", CAPTURE_BODY).status_code for _ in range(25)]
            assert codes == [200] * 24 + [429]
            bulk = [api.sync(BULK_LEADS, [lead_row(f"{i}@x.io")]).status_code for i in range(3)]
            assert bulk == [200, 200, 429]
            sim.client.wait_idle()
            status = api.get("/lead/status", {"RequestID": request_id}).json()
            assert status["TaskStatus"]["Status"] == "Success"
        finally:
            api.close()
        assert sim.pid not in (None, 0)
    assert sim.returncode == 0
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{sim.url}/_sim/health", timeout=2)


def test_lsq_sim_exits_0_on_sigint() -> None:
    """Ctrl-C (SIGINT) stops lsq-sim cleanly with exit code 0."""
    with SimProcess() as sim:
        os.kill(sim.pid, signal.SIGINT)
        deadline = time.monotonic() + 10
        while sim.returncode is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert sim.returncode == 0
