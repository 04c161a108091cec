"""Completion tracking (SPEC §13) on the real stack: ``lsq-sink run`` with ``status.enabled``
against a simulated account whose queue fails 5% of requests after accepting them, and which knows
only the lead attributes of the demo's mapping. One route maps correctly; a second one misspells
an attribute. The connector is stopped while checks are pending and started again.

One run (module fixture) is shared by the tests below."""

from __future__ import annotations

import io
import json
import random
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import fastavro
import pytest

from connector.flow.codec import RESULT_SCHEMA
from lsq_sim import Processing, RateLimit, SimConfig, Simulator, StoreRules
from lsq_stack.cdc import CdcWriter, Event, envelope, lead_row
from lsq_stack.kafka import committed_offsets, create_topics, read_all, unique_name
from lsq_stack.sink import SinkProcess
from tests.e2e.conftest import Topics, config

if TYPE_CHECKING:
    from lsq_stack.broker import Broker
    from lsq_stack.kafka import Received
    from lsq_stack.registry import SchemaRegistryServer

GOOD, BAD = 60, 12  # records of the correct route and of the misspelled one
CANARY = 3
TYPO = "mx_Ciyt"  # mx_City, misspelled
KNOWN = (
    "EmailAddress",
    "FirstName",
    "LastName",
    "Phone",
    "Company",
    "mx_City",
    "mx_Lifetime_Value",
    "mx_Marketing_Opt_In",
    "mx_Signup_Date",
    "Source",
    "mx_KYC",
)
_RESULT = fastavro.parse_schema(RESULT_SCHEMA)
Position = tuple[str, int, int]


@dataclass
class Tracked:
    """What the run left behind."""

    good: str  # the correct route's topic
    bad: str
    sources: dict[Position, bytes]  # value of each source record
    results: list[dict[str, Any]]
    letters: list[Received]
    failed_ids: dict[str, str]  # request ids the simulator's queue failed, with the reasons
    typo_calls_first: int  # calls carrying the misspelled attribute before the restart
    typo_calls: int
    ready_first: tuple[int, str]  # /readyz of the first process once it halted
    halted_first: list[dict[str, Any]]
    restored: list[dict[str, Any]]  # status.checks_restored events of the second process
    committed_bad: dict[int, int]
    progress: list[dict[str, Any]]  # progress lines of the first process
    stats: Any


@pytest.fixture(scope="module")
def tracked(
    broker: Broker, registry: SchemaRegistryServer, tmp_path_factory: pytest.TempPathFactory
) -> Tracked:
    suffix = unique_name("status")
    good, bad = f"crm.public.leads.{suffix}", f"crm.public.leads-typo.{suffix}"
    results, letters = f"lsq.results.{suffix}", f"lsq.dead-letters.{suffix}"
    topics = Topics(good, bad, results, letters, f"lsq-sink-{suffix}")
    create_topics(broker.bootstrap_servers, {good: 3, bad: 1, results: 3, letters: 1})
    rng = random.Random(21)  # noqa: S311 - test data
    sources: dict[Position, bytes] = {}
    with CdcWriter(broker.bootstrap_servers, registry.url) as writer:
        for topic, count, start in ((good, GOOD, 0), (bad, BAD, 1000)):
            for i in range(start, start + count):
                change = envelope("leads", "c", None, lead_row(i, rng), ts_ms=i)
                writer.send(Event("crm.public.leads", i, change), topic)
        writer.flush()
    for record in read_all(broker.bootstrap_servers, good, 10) + read_all(
        broker.bootstrap_servers, bad, 10
    ):
        sources[(record.topic, record.partition, record.offset)] = record.value or b""
    sim_config = SimConfig(
        rate_limit=RateLimit(calls=25, window_s=1.0),
        processing=Processing(
            delay_s=1.5, failure_rate=0.05, failure_kinds=("duplicate", "not_found")
        ),
        store=StoreRules(lead_attributes=KNOWN),
        seed=5,
    )
    with Simulator(sim_config) as sim:
        data = config(broker, registry, sim, topics)
        data["accounts"]["default"]["rate_limit"] = {"calls": 25, "window_seconds": 1.0}
        leads = data["routes"][0]
        typo = json.loads(json.dumps(leads))
        typo["mapping"]["lead"][TYPO] = typo["mapping"]["lead"].pop("mx_City")
        data["routes"] = [
            leads | {"topics": [good]},
            typo | {"name": "typo", "topics": [bad]},
        ]
        data["status"] = {
            "enabled": True,
            "first_poll_seconds": 0.5,
            "max_poll_interval_seconds": 1.0,
            "give_up_seconds": 120,
            "canary": {"calls": CANARY},
        }
        data["logging"]["progress_interval_seconds"] = 1.0

        def typo_calls() -> int:
            return sum(TYPO in r.body for r in sim.client.requests() if r.method == "POST")

        def decoded() -> list[dict[str, Any]]:
            return [_result(r) for r in read_all(broker.bootstrap_servers, results, 10)]

        with SinkProcess(data, tmp_path_factory.mktemp("first")) as first:
            first.wait_for(lambda: bool(first.events("route.halted")), 60, "the typo route halts")
            url = first.health_url() + "/readyz"  # published about once a second
            first.wait_for(lambda: _get(url)[0] == 503, 10, "/readyz to fail")
            ready_first = _get(url)
            first.wait_for(
                lambda: sum(r["status"] == "accepted" for r in decoded()) >= GOOD // 2,
                60,
                "half the good records accepted",
            )
            assert first.stop() == 0, first.tail()
            halted_first = first.events("route.halted")
            progress = first.events("progress")
        typo_calls_first = typo_calls()
        with SinkProcess(data, tmp_path_factory.mktemp("second")) as second:

            def finished() -> bool:
                done = Counter(
                    (r["source_topic"], r["source_partition"], r["source_offset"])
                    for r in decoded()
                    if r["status"] != "accepted" and r["source_topic"] == good
                )
                return len(done) >= GOOD

            second.wait_for(finished, 120, "a follow-up for every good record")
            second.wait_for(lambda: bool(second.events("route.halted")), 60, "the halt again")
            assert second.stop() == 0, second.tail()
            restored = second.events("status.checks_restored")
        failed_ids = {t["request_id"]: t["reason"] for t in sim.client.tasks(status="FAILURE")}
        stats = sim.client.stats()
        return Tracked(
            good,
            bad,
            sources,
            decoded(),
            read_all(broker.bootstrap_servers, letters, 10),
            failed_ids,
            typo_calls_first,
            typo_calls(),
            ready_first,
            halted_first,
            restored,
            committed_offsets(broker.bootstrap_servers, topics.group, bad),
            progress,
            stats,
        )


def test_a_misspelled_attribute_halts_its_route_within_the_canary_calls(tracked: Tracked) -> None:
    assert 1 <= tracked.typo_calls_first <= CANARY
    assert tracked.typo_calls <= 2 * CANARY  # each start checks again, and halts again
    [halt] = tracked.halted_first
    assert (halt["route"], halt["attribute"]) == ("typo", TYPO)
    assert halt["exception_type"] == "MXUnknownAttributeException"
    assert TYPO in halt["reason"]
    status, body = tracked.ready_first
    assert status == 503
    assert "typo" in body
    assert TYPO in body


def test_nothing_past_a_halted_routes_canary_is_committed(tracked: Tracked) -> None:
    assert max(tracked.committed_bad.values()) <= 2 * CANARY < BAD  # a canary per start
    accepted = [r for r in tracked.results if r["source_topic"] == tracked.bad]
    follow_ups = [r for r in accepted if r["status"] != "accepted"]
    assert {r["status"] for r in follow_ups} == {"failed"}
    assert any(TYPO in (r["reason"] or "") for r in follow_ups)
    # each with LeadSquared's reason (a few failed first in the simulator's injected 5%)
    assert all(r["reason"] == tracked.failed_ids[r["request_id"]] for r in follow_ups)


def test_the_correct_route_delivers_every_record_with_one_follow_up_each(
    tracked: Tracked,
) -> None:
    good = [r for r in tracked.results if r["source_topic"] == tracked.good]
    accepted = Counter(_position(r) for r in good if r["status"] == "accepted")
    follow = Counter(_position(r) for r in good if r["status"] != "accepted")
    positions = {p for p in tracked.sources if p[0] == tracked.good}
    assert set(accepted) == positions
    assert set(follow) == positions
    assert max(follow.values()) == 1  # the restart repeated no follow-up
    assert {r["status"] for r in good if r["status"] != "accepted"} <= {"succeeded", "failed"}


def test_exactly_the_requests_the_queue_failed_are_failed_and_dead_lettered(
    tracked: Tracked,
) -> None:
    good = [r for r in tracked.results if r["source_topic"] == tracked.good]
    by_request = {r["request_id"]: r["status"] for r in good if r["status"] != "accepted"}
    failed = {rid for rid, status in by_request.items() if status == "failed"}
    assert failed, "the simulator failed none: the test proves nothing"
    assert failed == set(tracked.failed_ids) & set(by_request)
    reasons = {r["request_id"]: r["reason"] for r in good if r["status"] == "failed"}
    assert reasons == {rid: tracked.failed_ids[rid] for rid in failed}  # LeadSquared's own
    assert all(
        by_request[rid] == "succeeded" for rid in by_request if rid not in tracked.failed_ids
    )
    late = [
        letter
        for letter in tracked.letters
        if dict(letter.headers).get("lsq.error.stage") == b"leadsquared"
    ]
    failed_positions = {_position(r) for r in good if r["status"] == "failed"} | {
        _position(r) for r in tracked.results if r["status"] == "failed"
    }
    assert {_source_of(letter) for letter in late} == failed_positions
    for letter in late:
        assert letter.value == tracked.sources[_source_of(letter)]


def test_a_restart_loses_no_pending_check(tracked: Tracked) -> None:
    assert tracked.restored, "no check was pending at the restart: the test proves nothing"
    assert sum(event["checks"] for event in tracked.restored) >= 1


def _result(record: Received) -> dict[str, Any]:
    value = record.value or b""
    decoded = fastavro.schemaless_reader(io.BytesIO(value[5:]), _RESULT, None)
    assert isinstance(decoded, dict)
    return decoded


def _position(result: dict[str, Any]) -> Position:
    return result["source_topic"], result["source_partition"], result["source_offset"]


def _source_of(letter: Received) -> Position:
    headers = dict(letter.headers)
    names = ("__connect.errors.topic", "__connect.errors.partition", "__connect.errors.offset")
    topic, partition, offset = (headers[name].decode() for name in names)
    return topic, int(partition), int(offset)


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:  # noqa: S310 - local test URL
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_progress_shows_checks_follow_ups_the_halt_and_leadsquareds_queue(tracked: Tracked) -> None:
    last = tracked.progress[-1]
    assert last["halted"] == ["typo"]
    assert last["follow_ups"]["succeeded"] + last["follow_ups"]["failed"] > 0
    assert last["status_calls"] > 0
    assert set(last["queue"]) == {"default/capture"}  # the Metrics API, read at start
    assert tracked.stats.accounts["account1"].metrics_calls >= 1
