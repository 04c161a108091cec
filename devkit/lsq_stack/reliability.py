"""Reliability trials on the local stack: crashes, graceful stops, rebalances, LeadSquared outages
and errors. A :class:`Trial` owns fresh topics, a backlog of lead events with one email each (so
every call is attributable), the simulator and the connector processes; its :class:`Report`
counts from the topics and the simulator, not from the connector: records, restarts, records
lost, records with more than one outcome, duplicate calls, dead letters, recovery time."""

from __future__ import annotations

import json
import random
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from connector.flow.codec import source_of
from lsq_stack.cdc import LEADS, CdcWriter, Event, envelope, lead_row
from lsq_stack.demo import sink_config
from lsq_stack.kafka import committed_offsets, create_topics, read_all, unique_name
from lsq_stack.sink import SinkProcess

if TYPE_CHECKING:
    from pathlib import Path

    from lsq_sim import LoggedRequest, Simulator
    from lsq_stack.broker import Broker
    from lsq_stack.registry import SchemaRegistryServer

__all__ = ["AfterKill", "Report", "Trial"]

Position = tuple[int, int]  # (partition, offset)


@dataclass(frozen=True, slots=True)
class Report:
    """What a trial's topics and the simulator show at the end."""

    scenario: str
    records: int
    restarts: int
    lost: int
    duplicate_outcomes: int
    duplicate_calls: int
    dead_lettered: int
    recovery_s: float | None = None

    def row(self) -> str:
        """A Markdown table row."""
        recovery = "—" if self.recovery_s is None else f"{self.recovery_s:.1f} s"
        cells = [self.scenario, self.records, self.restarts, self.lost, self.duplicate_outcomes]
        cells += [self.duplicate_calls, self.dead_lettered, recovery]
        return "| " + " | ".join(str(c) for c in cells) + " |"


@dataclass(frozen=True, slots=True)
class AfterKill:
    """What a crash left behind, measured from the topics and the simulator once the process is
    gone: records LeadSquared accepted a call for but that have no outcome record (the calls a
    restart may repeat), and records with an outcome past the committed offsets (the ones a
    restart must find in the outcome topics instead of calling again)."""

    in_flight: int
    done_uncommitted: frozenset[Position]


class Trial:
    """One trial: topics, records, simulator, connector processes in one consumer group."""

    def __init__(
        self,
        broker: Broker,
        registry: SchemaRegistryServer,
        sim: Simulator,
        workdir: Path,
        *,
        partitions: int = 3,
        config: dict[str, Any] | None = None,
    ) -> None:
        self.broker, self.registry, self.sim, self.workdir = broker, registry, sim, workdir
        suffix = unique_name("trial")
        self.topic, self.results = f"{LEADS}.{suffix}", f"lsq.results.{suffix}"
        self.dead_letters, self.group = f"lsq.dead-letters.{suffix}", f"lsq-sink-{suffix}"
        create_topics(
            broker.bootstrap_servers,
            {self.topic: partitions, self.results: partitions, self.dead_letters: 1},
        )
        self.config = self._config(config or {})
        self.emails: dict[Position, str] = {}
        self.sinks: list[SinkProcess] = []
        self._final_calls: tuple[LoggedRequest, ...] | None = None
        self._rng = random.Random(7)

    def produce(self, count: int, *, updates: int = 0) -> None:
        """``count`` lead creations (lead ids continue from earlier calls), then ``updates``
        changes of random earlier leads (same key: per-key order can be checked)."""
        first = len(set(self.emails.values()))
        rows = [lead_row(first + i, self._rng) for i in range(count)]
        events = [
            Event(LEADS, row["id"], envelope("leads", "c", None, row, ts_ms=0)) for row in rows
        ]
        for n in range(updates):
            row = self._rng.choice(rows)
            after = row | {"city": f"City {n}"}
            events.append(Event(LEADS, row["id"], envelope("leads", "u", row, after, ts_ms=0)))
        with CdcWriter(self.broker.bootstrap_servers, self.registry.url) as writer:
            for event in events:
                writer.send(event, self.topic)
        for index, event in enumerate(events):
            assert event.value is not None  # noqa: S101 - built just above
            self.emails[writer.positions[index]] = event.value["after"]["email"]

    def __enter__(self) -> Trial:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop every connector process still running (a failed trial leaves none behind), then
        keep what the simulator received: it stops right after the trial."""
        for sink in self.sinks:
            if sink.running():
                sink.stop(timeout=30)
        self._final_calls = self.sim.client.requests()

    def start(self, name: str | None = None, **env: str) -> SinkProcess:
        """Start one more connector process in the trial's group."""
        name = name or f"lsq-sink-{len(self.sinks)}"
        sink = SinkProcess(self.config, self.workdir / self.group, env=env, name=name).start()
        self.sinks.append(sink)
        return sink

    def after_kill(self) -> AfterKill:
        """Measure what the crash that just happened left (see :class:`AfterKill`)."""
        time.sleep(0.5)  # a call already on the wire reaches the simulator
        outcomes, committed = self.outcomes(), self._settled_commits()
        called = self.accepted_calls_per_email()
        in_flight = sum(
            called[email] for position, email in self.emails.items() if position not in outcomes
        )
        done = frozenset(p for p in outcomes if p[1] >= committed.get(p[0], 0))
        return AfterKill(in_flight, done)

    def outcomes(self) -> dict[Position, list[str]]:
        """Outcome records per source position: "result" and/or "dead_letter"."""
        found: dict[Position, list[str]] = defaultdict(list)
        for topic, kind in ((self.results, "result"), (self.dead_letters, "dead_letter")):
            for record in read_all(self.broker.bootstrap_servers, topic):
                source = source_of(dict(record.headers))
                if source is not None and source[0] == self.topic:
                    found[source[1], source[2]].append(kind)
        return dict(found)

    def done(self) -> int:
        """Source records that have at least one outcome record."""
        return len(self.outcomes())

    def wait_done(self, sink: SinkProcess, timeout: float) -> None:
        """Wait until every record produced has an outcome (as the connector logs them)."""
        total = len(self.emails)

        def finished() -> bool:
            logged = sum(1 for s in self.sinks for e in s.events() if _is_outcome(e))
            return logged >= total and self.done() >= total

        sink.wait_for(finished, timeout, f"an outcome for each of {total} records", 1.0)

    def _settled_commits(self, timeout: float = 10.0) -> dict[int, int]:
        """The committed offsets once two reads a second apart agree: a commit the killed process
        sent just before it died may still land on a busy broker (read too early, the records it
        covers would count as done but uncommitted, and the next run rightly finds none of them)."""
        deadline, last = time.monotonic() + timeout, self.committed()
        while time.monotonic() < deadline:
            time.sleep(1.0)
            now = self.committed()
            if now == last:
                break
            last = now
        return last

    def committed(self) -> dict[int, int]:
        return {
            p: o
            for p, o in committed_offsets(
                self.broker.bootstrap_servers, self.group, self.topic
            ).items()
            if o >= 0
        }

    def ends(self) -> dict[int, int]:
        """The end offset of each input partition (what a complete commit reaches)."""
        out: dict[int, int] = {}
        for partition, offset in self.emails:
            out[partition] = max(out.get(partition, 0), offset + 1)
        return out

    def calls(self) -> tuple[LoggedRequest, ...]:
        """Every call the simulator received (as it was at the end, once the trial closed)."""
        if self._final_calls is not None:
            return self._final_calls
        return self.sim.client.requests()

    def accepted_calls_per_email(self) -> Counter[str]:
        """Calls LeadSquared accepted, by the lead's email (creations and updates share it)."""
        counts: Counter[str] = Counter()
        for call in self.calls():
            if call.answer == "accepted":
                counts[_email(call)] += 1
        return counts

    def report(self, scenario: str, restarts: int, recovery_s: float | None = None) -> Report:
        outcomes = self.outcomes()
        expected_calls = Counter(self.emails.values())
        accepted = self.accepted_calls_per_email()
        return Report(
            scenario=scenario,
            records=len(self.emails),
            restarts=restarts,
            lost=sum(1 for position in self.emails if position not in outcomes),
            duplicate_outcomes=sum(1 for kinds in outcomes.values() if len(kinds) > 1),
            duplicate_calls=sum(max(0, accepted[e] - n) for e, n in expected_calls.items()),
            dead_lettered=sum(kinds.count("dead_letter") for kinds in outcomes.values()),
            recovery_s=recovery_s,
        )

    def _config(self, overrides: dict[str, Any]) -> dict[str, Any]:
        account = self.sim.account()
        config = sink_config(
            self.broker.bootstrap_servers,
            self.registry.url,
            self.sim.url,
            (account.access_key, account.secret_key, account.api_key),
            group=self.group,
            consumer=dict(self.broker.consumer_overrides),
        )
        config["routes"] = [config["routes"][0] | {"topics": [self.topic]}]
        config["output"] = {"results_topic": self.results, "dead_letter_topic": self.dead_letters}
        for section, values in overrides.items():
            merged = config.get(section, {})
            config[section] = _merge(merged, values) if isinstance(values, dict) else values
        return config


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        out[key] = _merge(out.get(key, {}), value) if isinstance(value, dict) else value
    return out


def _is_outcome(event: dict[str, Any]) -> bool:
    return event.get("event") in {"record.accepted", "record.dead_lettered", "record.recovered"}


def _email(call: LoggedRequest) -> str:
    body = json.loads(call.body)
    attributes = body if isinstance(body, list) else body.get("LeadDetails", [])
    return next((str(a["Value"]) for a in attributes if a.get("Attribute") == "EmailAddress"), "")


def wait_until(condition: Any, timeout: float, what: str, interval: float = 0.2) -> None:
    """Poll ``condition()`` until true (for conditions not tied to one process)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)
