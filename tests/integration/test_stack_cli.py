"""The broker and registry command lines start real processes that serve and stop on SIGTERM."""

from __future__ import annotations

import re
import signal
import subprocess
import sys

import httpx
from confluent_kafka.admin import AdminClient


def _start(module: str, pattern: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", module], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    found = re.search(pattern, line)
    assert found, f"unexpected first line from {module}: {line!r}"
    return proc, found.group(1)


def _stop(proc: subprocess.Popen[str]) -> int:
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=20)  # also closes the pipes
    return proc.returncode


def test_broker_command_line_prints_bootstrap_and_serves() -> None:
    """`python -m lsq_stack.broker` announces a bootstrap address that answers metadata."""
    proc, bootstrap = _start("lsq_stack.broker", r"KAFKA_BOOTSTRAP_SERVERS=(\S+)")
    try:
        metadata = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10)
        assert len(metadata.brokers) == 1
    finally:
        assert _stop(proc) == 0


def test_registry_command_line_prints_url_and_serves() -> None:
    """`python -m lsq_stack.registry` announces a URL that answers the REST API."""
    proc, url = _start("lsq_stack.registry", r"listening on (http://127\.0\.0\.1:\d+)")
    try:
        assert httpx.get(f"{url}/subjects").json() == []
        assert httpx.get(f"{url}/config").json() == {"compatibilityLevel": "BACKWARD"}
    finally:
        assert _stop(proc) == 0
