"""``make bench``'s memory figure (SPEC §11): the connector's RSS while a backlog of a million
records waits behind LeadSquared's budget. It must stay flat: the backlog stays in Kafka."""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from confluent_kafka import Producer

from lsq_sim import SimConfig, SimProcess
from lsq_stack.cdc import LEADS, CdcWriter
from lsq_stack.scenario import build_scenario

if TYPE_CHECKING:
    from lsq_stack.bench import Stack

__all__ = ["memory"]


def memory(
    stack: Stack, say: Any, records: int = 1_000_000, seconds: float = 300.0
) -> dict[str, Any]:
    """Peak RSS of the connector over ``seconds`` while a backlog of ``records`` waits behind
    LeadSquared's budget: memory must stay flat (the backlog stays in Kafka)."""
    with SimProcess(SimConfig(seed=4, request_log_limit=10_000)) as sim:
        config, suffix = stack.prepare(sim, 0)
        topic = f"{LEADS}.{suffix}"
        say(f"    producing {records:,} records")
        _produce_backlog(stack, topic, records)
        sink = stack.start(config, suffix)
        samples: list[float] = []
        try:
            started = time.monotonic()
            while time.monotonic() - started < seconds:
                samples.append(_rss_mb(sink.pid))
                time.sleep(1.0)
        finally:
            sink.stop()
        calls = len(sim.client.requests())
    window = max(1, len(samples) // 4)
    return {
        "backlog_records": records,
        "seconds": seconds,
        "peak_rss_mb": round(max(samples), 1),
        "rss_first_quarter_mb": round(statistics.mean(samples[:window]), 1),
        "rss_last_quarter_mb": round(statistics.mean(samples[-window:]), 1),
        "peak_rss_mb_per_30s": [
            round(max(samples[i : i + 30]), 1) for i in range(0, len(samples), 30)
        ],
        "calls": calls,
    }


def _produce_backlog(stack: Stack, topic: str, records: int) -> None:
    """``records`` lead creations: a few hundred distinct Avro values, produced as bytes."""
    with CdcWriter(stack.broker.bootstrap_servers, stack.registry.url) as writer:
        scenario = build_scenario(leads=300, updates=0, activities=0, seed=6)
        first = [
            e
            for e, x in zip(scenario.events, scenario.expected, strict=True)
            if x.outcome == "accepted"
        ]
        values = [writer.encode(e) for e in first]
    producer = Producer(
        {
            "bootstrap.servers": stack.broker.bootstrap_servers,
            "linger.ms": 50,
            "batch.num.messages": 10_000,
            "compression.type": "lz4",
        }
    )
    for i in range(records):
        key, value = values[i % len(values)]
        while True:
            try:
                producer.produce(topic, value=value, key=key)
                break
            except BufferError:
                producer.poll(0.1)
    producer.flush(120)
    producer.close()


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0
