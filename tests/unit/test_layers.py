"""The pure core stays pure: its modules load neither the Kafka client nor the HTTP client, so they
run anywhere and are tested without a network (STYLE: pure core, thin I/O)."""

from __future__ import annotations

import subprocess
import sys

PURE = [
    "connector.records",
    "connector.errors",
    "connector.transform.decode",
    "connector.transform.logical",
    "connector.transform.unwrap",
    "connector.transform.mapping",
    "connector.flow.gates",
    "connector.lsq.answers",
    "connector.flow.offsets",
    "connector.flow.lanes",
    "connector.flow.fleet",
    "connector.flow.codec",
    "connector.settings.patterns",
]


def test_pure_modules_import_neither_kafka_nor_http_clients() -> None:
    """Importing every pure module loads no confluent_kafka and no httpx module."""
    code = (
        f"import sys; import {', '.join(PURE)};"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in {'confluent_kafka', 'httpx'}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"
