"""``make bench`` (SPEC §11): figures measured in one run each, as ratios or counts, so they hold on
a noisy machine. The simulator, the connector and the baseline run as separate processes.

- budget use: calls that reached the simulator in 120 s of a backlog's steady state (after two
  windows) ÷ the 600 its strict sliding window allows (25 per 5 s), with the throttle answers;
- gate design: the same ratio for the sliding-window log and for the best token bucket that is
  safe under a sliding window (C + r·W ≤ N), on a simulated clock;
- overhead: connector records/s ÷ a bare httpx loop posting the same bodies to the same
  simulator (no limit) at the same concurrency;
- latency: produce → results record, p50 and p99, while the budget has room;
- fleet: three replicas sharing one account's 25 per 5 s: accepted calls ÷ calls allowed;
- memory: peak RSS while a backlog of 1,000,000 records waits behind the budget;
- backfill (``bench_bulk``): records/s of a 5,000-lead + 20,000-activity snapshot backfill with
  bulk calls at 1 and 5 per window ÷ single calls, budgets time-scaled x5;
- update-heavy (``bench_bulk``): API calls per record of a stream of updates on hot keys at twice
  the budget, and of the same records as a backlog, with and without the ``before`` row
  (coalescing, no-op skips).
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import fastavro
import httpx

from connector.flow.codec import RESULT_SCHEMA
from connector.flow.gates import RateGate
from lsq_sim import RateLimit, SimConfig, SimProcess
from lsq_stack.bench_budget import run_all as budget_figures
from lsq_stack.bench_bulk import run_all as bulk_figures
from lsq_stack.bench_memory import memory
from lsq_stack.broker import local_broker
from lsq_stack.cdc import ACTIVITIES, LEADS, CdcWriter
from lsq_stack.demo import DEAD_LETTERS, RESULTS, sink_config
from lsq_stack.fleet_trial import fleet
from lsq_stack.kafka import create_topics, read_topic, unique_name
from lsq_stack.registry import SchemaRegistryServer
from lsq_stack.scenario import build_scenario
from lsq_stack.sink import SinkProcess
from lsq_stack.trials import Stack as TrialStack

if TYPE_CHECKING:
    from lsq_stack.broker import Broker

__all__ = ["main"]

WINDOW_S = 120.0  # how long budget use is measured
WARMUP_S = 10.0  # two windows: the first holds a burst any gate lets through


class Stack:
    """Broker + registry for the whole run; fresh topics and a fresh group per measurement."""

    def __init__(self, broker: Broker, registry: SchemaRegistryServer, workdir: Path) -> None:
        self.broker, self.registry, self.workdir = broker, registry, workdir

    def prepare(self, sim: SimProcess, leads: int) -> tuple[dict[str, Any], str]:
        """Fresh topics holding a backlog of ``leads`` lead creations, and a connector
        configuration for them: (config, topic suffix)."""
        suffix = self.topics()
        self.produce(leads, suffix, seed=5)
        return self.config(sim, suffix), suffix

    def topics(self) -> str:
        """Fresh copies of the demo's source, results and dead-letter topics: their suffix."""
        suffix = unique_name("bench")
        topics = {f"{LEADS}.{suffix}": 3, f"{ACTIVITIES}.{suffix}": 3}
        topics |= {f"{RESULTS}.{suffix}": 3, f"{DEAD_LETTERS}.{suffix}": 1}
        create_topics(self.broker.bootstrap_servers, topics)
        return suffix

    def config(self, sim: SimProcess, suffix: str) -> dict[str, Any]:
        """The demo's connector configuration on the ``suffix`` copies of its topics."""
        account = sim.client.account()
        config = sink_config(
            self.broker.bootstrap_servers,
            self.registry.url,
            sim.url,
            (account.access_key, account.secret_key, account.api_key),
            group=f"lsq-bench-{suffix}",
            consumer=dict(self.broker.consumer_overrides),
        )
        config["routes"][0]["topics"] = [f"{LEADS}.{suffix}"]
        config["routes"][1]["topics"] = [f"{ACTIVITIES}.{suffix}"]
        config["output"] = {
            "results_topic": f"{RESULTS}.{suffix}",
            "dead_letter_topic": f"{DEAD_LETTERS}.{suffix}",
        }
        return config

    def produce(self, leads: int, suffix: str, seed: int, pause: float = 0.0) -> None:
        """Produce ``leads`` valid lead creations, ``pause`` seconds apart."""
        scenario = build_scenario(leads=leads, updates=0, activities=0, seed=seed)
        events = [
            e
            for e, x in zip(scenario.events, scenario.expected, strict=True)
            if x.outcome == "accepted"
        ][:leads]
        with CdcWriter(self.broker.bootstrap_servers, self.registry.url) as writer:
            for event in events:
                writer.send(event, f"{event.topic}.{suffix}")
                if pause:
                    writer.flush()
                    time.sleep(pause)

    def start(self, config: dict[str, Any], suffix: str) -> SinkProcess:
        return SinkProcess(config, self.workdir / suffix).start()


def _accepted(sink: SinkProcess) -> int:
    return sum(1 for e in sink.events() if e["event"] == "record.accepted")


def budget_use(stack: Stack, say: Any) -> dict[str, Any]:
    """A 750-record backlog against the simulator's strict 25-per-5-s sliding window: calls in
    120 s of steady state (from the third window on: the first window's burst of 25 is filled by
    any gate) ÷ the calls the limit allows in that time."""
    with SimProcess(SimConfig(seed=1)) as sim:
        sink = stack.start(*stack.prepare(sim, 750))
        try:
            calls = sim.client.requests()
            while not calls or calls[-1].time - calls[0].time < WARMUP_S + WINDOW_S + 1:
                say(f"    {len(calls)} calls so far")
                if not sink.running():
                    raise RuntimeError(f"lsq-sink stopped:\n{sink.tail()}")
                time.sleep(10)
                calls = sim.client.requests()
        finally:
            sink.stop()
        stats = sim.client.stats().accounts[sim.client.account().name]
    start = calls[0].time + WARMUP_S
    in_window = sum(1 for c in calls if start <= c.time < start + WINDOW_S)
    allowed = 25 * WINDOW_S / 5
    return {
        "budget_use": round(in_window / allowed, 4),
        "calls_in_120s": in_window,
        "allowed_in_120s": int(allowed),
        "throttled": sum(1 for c in calls if c.answer == "throttled"),
        "max_calls_in_any_5s": stats.max_calls_in_window,
    }


def gate_designs(rtt: float = 0.02, seconds: float = 600.0) -> dict[str, float]:
    """Budget use of the sliding log and of the best safe token bucket (simulated clock)."""

    def drive(admit: Any, release: Any) -> int:
        now, sent, answers = 0.0, 0, list[float]()
        while now < seconds:
            while answers and answers[0] <= now:
                release(answers.pop(0))
            wait = admit(now)
            if wait == 0:
                sent += 1
                answers.append(now + rtt)
                continue
            now = min(now + wait, answers[0]) if answers else now + wait
        return sent

    gate = RateGate(25, 5.0, margin=0.05)

    def log_admit(now: float) -> float:
        wait = gate.wait(now)
        if wait == 0:
            gate.acquire(now)
        return wait

    # Token bucket: capacity 1 refilled at 24/5 s is the largest with C + r·W <= 25.
    bucket = {"tokens": 1.0, "at": 0.0}

    def bucket_admit(now: float) -> float:
        bucket["tokens"] = min(1.0, bucket["tokens"] + (now - bucket["at"]) * 24 / 5)
        bucket["at"] = now
        if bucket["tokens"] >= 1.0 - 1e-9:  # tolerance: float sums never quite reach 1
            bucket["tokens"] -= 1.0
            return 0.0
        return (1.0 - bucket["tokens"]) / (24 / 5)

    allowed = 25 * seconds / 5
    return {
        "sliding_log": round(drive(log_admit, gate.release) / allowed, 4),
        "token_bucket_c1_r4.8": round(drive(bucket_admit, lambda _: None) / allowed, 4),
    }


def overhead(stack: Stack, say: Any, records: int = 4000, concurrency: int = 8) -> dict[str, Any]:
    """Connector records/s vs a bare httpx loop, no rate limit, same bodies and concurrency."""
    with SimProcess(SimConfig(seed=2, rate_limit=RateLimit(enabled=False))) as sim:
        config, suffix = stack.prepare(sim, records)
        unlimited = {"calls": 1_000_000, "window_seconds": 1.0}
        config["accounts"]["default"] |= {"rate_limit": unlimited, "max_concurrency": concurrency}
        config["flow"] = {"max_in_flight_records": 2000}
        sink = stack.start(config, suffix)
        try:
            sink.wait_for(lambda: _accepted(sink) >= records, 300, f"{records} results", 1.0)
        finally:
            sink.stop()
        calls = sim.client.requests()
        first = min(c.time for c in calls)
        last = max(_epoch(e["timestamp"]) for e in sink.events("record.accepted"))
        connector_rate = records / (last - first)
        bodies = stack.workdir / f"{suffix}-bodies.jsonl"
        bodies.write_text("\n".join(c.body for c in calls))
        sim.client.reset()
        say(f"    connector: {connector_rate:.0f} records/s; now the bare httpx loops")
        account = sim.client.account()
        keys = json.dumps([account.access_key, account.secret_key, account.api_key])
        rates = {}
        for layer in ("client", "transport"):
            command = [sys.executable, "-m", "lsq_stack.bench", "--bare-loop", sim.url]
            command += [keys, str(bodies), str(concurrency), layer]
            out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            rates[layer] = float(out.strip())
            sim.client.reset()
    return {
        "overhead_ratio": round(connector_rate / rates["client"], 3),
        "overhead_ratio_same_transport": round(connector_rate / rates["transport"], 3),
        "connector_records_per_s": round(connector_rate, 1),
        "bare_httpx_client_calls_per_s": round(rates["client"], 1),
        "bare_httpx_transport_calls_per_s": round(rates["transport"], 1),
        "records": records,
        "concurrency": concurrency,
    }


def latency(stack: Stack, count: int = 100) -> dict[str, Any]:
    """Produce → results record while the budget has room: records trickle in at 2 per second."""
    with SimProcess(SimConfig(seed=3)) as sim:
        config, suffix = stack.prepare(sim, 0)
        sink = stack.start(config, suffix)
        try:
            sink.wait_for(lambda: bool(sink.events("partitions.assigned")), 60, "assignment")
            stack.produce(1, suffix, seed=8)  # warm-up: schema fetch, connections
            sink.wait_for(lambda: _accepted(sink) >= 1, 60, "the warm-up result")
            stack.produce(count, suffix, seed=9, pause=0.5)
            sink.wait_for(lambda: _accepted(sink) >= count + 1, 60, f"{count} results")
        finally:
            sink.stop()
    results = read_topic(stack.broker.bootstrap_servers, f"{RESULTS}.{suffix}", count + 1)
    schema = fastavro.parse_schema(RESULT_SCHEMA)
    delays = []
    for record in sorted(results, key=lambda r: r.timestamp_ms)[1:]:  # without the warm-up
        body = io.BytesIO((record.value or b"")[5:])
        result: Any = fastavro.schemaless_reader(body, schema, None)
        source = result["source_timestamp"]
        delays.append(record.timestamp_ms - source.timestamp() * 1000)
    delays.sort()
    return {
        "latency_p50_ms": round(statistics.median(delays)),
        "latency_p95_ms": round(delays[int(len(delays) * 0.95) - 1]),
        "latency_p99_ms": round(delays[int(len(delays) * 0.99) - 1]),
        "latency_max_ms": round(delays[-1]),
        "samples": len(delays),
    }


def _epoch(timestamp: str) -> float:
    from datetime import datetime  # noqa: PLC0415

    return datetime.fromisoformat(timestamp).timestamp()


def bare_loop(url: str, keys: str, bodies: Path, concurrency: int, layer: str) -> float:
    """POST every body once from ``concurrency`` threads; calls/s. ``layer`` is ``client``
    (the usual httpx.Client loop) or ``transport`` (httpx's transport, as the connector sends)."""
    access, secret, api = json.loads(keys)
    payloads = [line.encode() for line in bodies.read_text().splitlines() if line]
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    params = {"accessKey": access, "secretKey": secret}
    headers = {"x-api-key": api, "content-type": "application/json"}
    if layer == "client":
        client = httpx.Client(base_url=url, params=params, headers=headers, limits=limits)

        def post(body: bytes) -> int:
            return client.post("/lead/capture", content=body).status_code

        closer: Any = client
    else:
        transport = httpx.HTTPTransport(limits=limits)
        target = httpx.URL(f"{url}/lead/capture", params=params)
        timeout = httpx.Timeout(30.0, connect=5.0).as_dict()

        def post(body: bytes) -> int:
            request = httpx.Request(
                "POST", target, headers=headers, content=body, extensions={"timeout": timeout}
            )
            response = transport.handle_request(request)
            try:
                response.read()
            finally:
                response.close()
            return response.status_code

        closer = transport
    with closer, ThreadPoolExecutor(concurrency) as pool:
        started = time.monotonic()
        statuses = list(pool.map(post, payloads))
        elapsed = time.monotonic() - started
    if bad := [status for status in statuses if status != httpx.codes.OK]:
        raise RuntimeError(f"bare loop got non-200 answers: {bad[:5]}")
    return len(payloads) / elapsed


def main(argv: list[str] | None = None) -> int:
    """Run every benchmark and print the figures, then one JSON line."""
    parser = argparse.ArgumentParser(prog="python -m lsq_stack.bench")
    parser.add_argument(
        "--bare-loop", nargs=5, metavar=("URL", "KEYS", "BODIES", "CONCURRENCY", "LAYER")
    )
    args = parser.parse_args(argv)
    if args.bare_loop:
        url, keys, bodies, concurrency, layer = args.bare_loop
        sys.stdout.write(f"{bare_loop(url, keys, Path(bodies), int(concurrency), layer)}\n")
        return 0

    def say(text: str) -> None:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()

    figures: dict[str, Any] = {}
    with local_broker() as broker, SchemaRegistryServer() as registry:
        stack = Stack(broker, registry, Path(tempfile.mkdtemp(prefix="lsq-bench-")))
        say("gate designs (simulated clock, 20 ms round trips, 10 min backlog)")
        figures["gate_designs"] = gate_designs()
        say(f"  {figures['gate_designs']}")
        say("budget use (750-record backlog, simulator enforcing 25 calls / 5 s sliding window)")
        figures["budget"] = budget_use(stack, say)
        say(f"  {figures['budget']}")
        say("overhead (no rate limit, concurrency 8)")
        figures["overhead"] = overhead(stack, say)
        say(f"  {figures['overhead']}")
        say("latency (produce → results record, 2 records/s, budget has room)")
        figures["latency"] = latency(stack)
        say(f"  {figures['latency']}")
        say("fleet (3 replicas, one account at 25 calls / 5 s, 120 s once each has its share)")
        _, report = fleet(TrialStack(broker, registry, stack.workdir), replicas=3, limit=25)
        figures["fleet"] = {
            "budget_use": round(report.budget_use, 4),
            "accepted_in_120s": report.accepted,
            "allowed_in_120s": int(report.limit * report.seconds / 5),
            "shares": report.shares,
            "throttled": report.throttled,
            "max_calls_in_any_5s": report.max_calls_in_window,
        }
        say(f"  {figures['fleet']}")
        figures |= bulk_figures(stack, say)  # backfill and update-heavy (bench_bulk)
        figures |= budget_figures(stack, say)  # learned limits (bench_budget)
        say("memory (1,000,000-record backlog behind the 25 calls / 5 s budget, 5 minutes)")
        figures["memory"] = memory(stack, say)
        say(f"  {figures['memory']}")
    say(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
