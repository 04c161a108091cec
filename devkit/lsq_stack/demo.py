"""``lsq-sink demo`` / ``make demo`` (SPEC §10): start a local broker, schema registry and
LeadSquared simulator; produce a realistic CDC stream of lead and activity events (a few of them
bad); run ``lsq-sink run`` as a separate process until every event has its outcome; check the
outcomes against the topics and the simulator; print a summary and, last, one JSON line."""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from lsq_sim import AnswerClass, FaultRule, Faults, SimConfig, SimProcess
from lsq_stack.broker import local_broker
from lsq_stack.cdc import ACTIVITIES, LEADS, CdcWriter
from lsq_stack.kafka import committed_offsets, create_topics, read_topic, unique_name
from lsq_stack.registry import SchemaRegistryServer
from lsq_stack.scenario import REJECTED_EMAIL, build_scenario, route_config
from lsq_stack.sink import SinkProcess

if TYPE_CHECKING:
    from collections.abc import Callable

    from lsq_stack.scenario import Scenario

__all__ = ["main", "rejecting_simulator", "sink_config"]

RESULTS, DEAD_LETTERS = "lsq.results", "lsq.dead-letters"
PARTITIONS = 3


def rejecting_simulator(seed: int = 7) -> SimConfig:
    """The simulator at LeadSquared's 25 calls / 5 s, rejecting the scenario's bad lead."""
    rule = FaultRule(
        body_contains=REJECTED_EMAIL,
        status=200,
        body={
            "Status": "Error",
            "ExceptionType": "MXInvalidInputException",
            "ExceptionMessage": "Invalid Input! Parameter Name: EmailAddress",
        },
    )
    return SimConfig(seed=seed, faults=Faults(rules=(rule,)))


def sink_config(
    bootstrap: str,
    registry_url: str,
    sim_url: str,
    keys: tuple[str, str, str],
    *,
    group: str,
    consumer: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An ``lsq-sink`` configuration for the local stack and the scenario's routes."""
    access, secret, api = keys
    return {
        "kafka": {"bootstrap_servers": bootstrap, "group_id": group, "consumer": consumer or {}},
        "schema_registry": {"url": registry_url},
        "accounts": {
            "default": {
                "async_host": sim_url,
                "api_host": sim_url,
                "access_key": access,
                "secret_key": secret,
                "api_key": api,
            }
        },
        "routes": route_config(),
        "output": {"results_topic": RESULTS, "dead_letter_topic": DEAD_LETTERS},
        "logging": {"format": "json"},
        "health": {"host": "127.0.0.1", "port": 0},  # any free port: several may run at once
    }


def _outcomes(sink: SinkProcess) -> Counter[str]:
    return Counter(
        e["event"].removeprefix("record.")
        for e in sink.events()
        if e["event"] in {"record.accepted", "record.dead_lettered", "record.skipped"}
    )


def main(out: TextIO = sys.stdout) -> int:
    """Run the demo; 0 when every event got the outcome it should."""

    def say(text: str) -> None:
        out.write(text + "\n")
        out.flush()

    scenario = build_scenario()
    workdir = Path(tempfile.mkdtemp(prefix="lsq-demo-"))
    say("lsq-sink demo: CRM change events → LeadSquared, on a local stack")
    with (
        local_broker() as broker,
        SchemaRegistryServer() as registry,
        SimProcess(rejecting_simulator()) as sim,
    ):
        say(f"  broker     {broker.bootstrap_servers} ({broker.kind})")
        say(f"  registry   {registry.url}")
        say(f"  simulator  {sim.url} (LeadSquared API, 25 calls per 5 s)")
        topics = {LEADS: PARTITIONS, ACTIVITIES: PARTITIONS, RESULTS: PARTITIONS, DEAD_LETTERS: 1}
        create_topics(broker.bootstrap_servers, topics)
        with CdcWriter(broker.bootstrap_servers, registry.url) as writer:
            for event in scenario.events:
                writer.send(event)
        say(f"\nproduced {len(scenario.events)} Debezium change events to {LEADS}, {ACTIVITIES}")
        account = sim.client.account()
        group = unique_name("lsq-sink-demo")
        config = sink_config(
            broker.bootstrap_servers,
            registry.url,
            sim.url,
            (account.access_key, account.secret_key, account.api_key),
            group=group,
            consumer=dict(broker.consumer_overrides),
        )
        say(f"running lsq-sink (config and log in {workdir})")
        started = time.monotonic()
        with SinkProcess(config, workdir) as sink:
            total = len(scenario.events)
            last = ""
            counts = _outcomes(sink)
            while sum(counts.values()) < total:
                line = (
                    f"  {sum(counts.values()):4d}/{total} done: {counts['accepted']} accepted, "
                    f"{counts['dead_lettered']} dead-lettered, {counts['skipped']} skipped"
                )
                if line != last:
                    say(line)
                    last = line
                seen = counts
                sink.wait_for(lambda: _outcomes(sink) != seen, 120, "progress", interval=0.5)  # noqa: B023 - used at once
                counts = _outcomes(sink)
            run = _Run(
                sink, sink.stop(), time.monotonic() - started, broker.bootstrap_servers, group
            )
        return _report(say, scenario, run, sim)


@dataclass(frozen=True, slots=True)
class _Run:
    sink: SinkProcess
    exit_code: int
    elapsed: float
    bootstrap: str
    group: str


def _report(say: Callable[[str], None], scenario: Scenario, run: _Run, sim: SimProcess) -> int:
    bootstrap, group, sink, exit_code = run.bootstrap, run.group, run.sink, run.exit_code
    accepted, dead = scenario.count("accepted"), scenario.count("dead_lettered")
    results = read_topic(bootstrap, RESULTS, accepted)
    dlq = read_topic(bootstrap, DEAD_LETTERS, dead)
    stats = sim.client.stats().accounts[sim.client.account().name]
    stages = Counter(dict(r.headers)["lsq.error.stage"].decode() for r in dlq)
    committed = {topic: committed_offsets(bootstrap, group, topic) for topic in (LEADS, ACTIVITIES)}
    summary = sink.summary() or {}
    expected_total = len(scenario.events)
    lost = expected_total - len(results) - len(dlq) - summary.get("skipped", 0)
    say(f"\nall {expected_total} events processed in {run.elapsed:.1f} s; exit code {exit_code}")
    say(f"  accepted       {len(results):4d}  results records on {RESULTS}, each with a RequestID")
    stage_text = ", ".join(f"{n} at {s}" for s, n in sorted(stages.items()))
    say(f"  dead-lettered  {len(dlq):4d}  on {DEAD_LETTERS} ({stage_text})")
    say(f"  skipped        {summary.get('skipped', 0):4d}  (deletes and tombstones)")
    busiest = f"at most {stats.max_calls_in_window} in any {stats.window_s:g} s"
    say(f"  API calls      {stats.calls:4d}  {busiest} (limit {stats.limit})")
    say(f"  committed      {json.dumps({t: sum(o.values()) for t, o in committed.items()})}")
    line = {
        "consumed": summary.get("consumed", 0),
        "accepted": len(results),
        "dead_lettered": len(dlq),
        "skipped": summary.get("skipped", 0),
        "lost": lost,
        "api_calls": stats.calls,
        "throttled": stats.answers.get(AnswerClass.THROTTLED, 0),
    }
    say(json.dumps(line))
    ok = exit_code == 0 and lost == 0 and line["throttled"] == 0
    return 0 if ok and line["consumed"] == expected_total else 1
