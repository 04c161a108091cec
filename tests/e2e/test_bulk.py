"""Bulk calls, coalesced changes and no-op skips on the real stack (SPEC §12): ``lsq-sink run``
against the broker, the registry and the simulator's bulk endpoints, with a mixed backlog."""

from __future__ import annotations

import io
import json
import random
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import fastavro
import pytest

from connector.flow.codec import RESULT_SCHEMA
from lsq_sim import AnswerClass, FaultRule, Faults, RateLimit, SimConfig, Simulator
from lsq_sim.config import StoreRules
from lsq_stack.cdc import Event, activity_row, envelope, lead_row
from lsq_stack.kafka import committed_offsets, create_topics, read_all, unique_name
from lsq_stack.reliability import wait_until
from lsq_stack.scenario import expected_create_custom
from lsq_stack.sink import SinkProcess
from tests.e2e.conftest import Topics, config, produce

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from lsq_sim.views import AccountStats, LoggedRequest, StoreView
    from lsq_stack.broker import Broker
    from lsq_stack.kafka import Received
    from lsq_stack.registry import SchemaRegistryServer

CAPTURE = "/v2/LeadManagement.svc/Lead/Bulk/CreateOrUpdate"
ACTIVITIES = "/v2/ProspectActivity.svc/Bulk/CustomActivity/Add/ByLeadField"
LEADS, MISSING_LEADS, ACTIVITY_COUNT = 60, 8, 30
#: Leads whose row carries an attribute the account does not have: LeadSquared rejects them.
REJECTED = {i for i in range(LEADS) if i % 10 == 3}
_RESULT = fastavro.parse_schema(RESULT_SCHEMA)


def lead_body(row: dict[str, Any]) -> list[dict[str, Any]]:
    """The single Lead.Capture body of a leads row under this test's mapping."""
    names = ("EmailAddress", "FirstName", "LastName", "Phone", "mx_Unknown")
    columns = ("email", "first_name", "last_name", "phone", "kyc_status")
    body = [{"Attribute": n, "Value": row[c]} for n, c in zip(names, columns, strict=True)]
    return [*(a for a in body if a["Value"] is not None), SEARCH]


SEARCH = {"Attribute": "SearchBy", "Value": "EmailAddress"}


class Backlog:
    """A snapshot of leads (some rejected), three changes of lead 1, an update of lead 2 that
    touches no mapped column, and activities of known and of unknown leads; with each record's
    single-call body."""

    def __init__(self) -> None:
        rng = random.Random(5)  # noqa: S311 - test data
        self.events: list[Event] = []
        self.bodies: defaultdict[str, list[list[dict[str, Any]]]] = defaultdict(list)
        self.activity_rows: list[dict[str, Any]] = []
        for i in range(LEADS):
            row = lead_row(i, rng, kyc_status="Pending" if i in REJECTED else None)
            self.lead(i, "r", None, row)
            if i == 1:
                for name in ("Bea", "Cid"):
                    row = self.lead(i, "u", row, row | {"first_name": name})
            if i == 2:  # an update of an unmapped column only
                self.lead(i, "u", row, row | {"updated_at": "2030-01-01T00:00:00Z"})
        for i in range(ACTIVITY_COUNT + MISSING_LEADS):
            lead = i % LEADS if i < ACTIVITY_COUNT else 1000 + i  # the last ones: no such lead
            row = activity_row(i, lead, rng)
            event = envelope("activities", "r", None, row, ts_ms=i)
            self.events.append(Event("crm.public.activities", i, event))
            activity = expected_create_custom(row)["Activity"]
            self.activity_rows.append({"SearchByValue": row["lead_email"], **activity})

    def lead(
        self, key: int, op: str, before: dict[str, Any] | None, after: dict[str, Any]
    ) -> dict[str, Any]:
        self.events.append(
            Event("crm.public.leads", key, envelope("leads", op, before, after, ts_ms=key))
        )
        self.bodies[after["email"]].append(lead_body(after))
        return after


def decode(record: Received) -> dict[str, Any]:
    assert record.value is not None
    value = fastavro.schemaless_reader(io.BytesIO(record.value[5:]), _RESULT, None)
    assert isinstance(value, dict)
    return value


@dataclass
class Run:
    """What one run of the connector over the backlog left behind."""

    backlog: Backlog
    positions: dict[int, tuple[str, int, int]]
    results: list[Received]
    letters: list[Received]
    skipped: list[dict[str, Any]]
    alone: list[dict[str, Any]]
    calls: tuple[LoggedRequest, ...]
    stats: AccountStats
    store: StoreView
    committed: dict[str, dict[int, int]]

    def bulk(self, path: str) -> list[LoggedRequest]:
        return [call for call in self.calls if call.path == path]


@pytest.fixture(scope="module")
def run(
    broker: Broker, registry: SchemaRegistryServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Run]:
    """The backlog through ``lsq-sink run``, both routes in bulk under a bulk budget of 2 per
    5 s: leads in sync mode (rows rejected for an unknown attribute are dead letters whichever
    way they go), activities async. The first bulk capture call times out."""
    suffix = unique_name("bulk")
    names = ("crm.public.leads", "crm.public.activities", "lsq.results", "lsq.dead-letters")
    leads, activities, results, letters = (f"{name}.{suffix}" for name in names)
    topics = Topics(leads, activities, results, letters, f"lsq-sink-{suffix}")
    create_topics(
        broker.bootstrap_servers,
        {topics.leads: 3, topics.activities: 3, topics.results: 3, topics.dead_letters: 1},
    )
    backlog = Backlog()
    known = ("EmailAddress", "FirstName", "LastName", "Phone")
    timeout = FaultRule(path_prefix=CAPTURE, times=1, status=503, delay_s=6.0)
    sim_config = SimConfig(
        bulk_rate_limit=RateLimit(calls=2, window_s=5.0),
        store=StoreRules(lead_attributes=known),
        faults=Faults(rules=(timeout,)),
    )
    with Simulator(sim_config) as sim:
        positions = produce(broker, registry, topics, backlog.events)
        data = config(broker, registry, sim, topics)
        account = data["accounts"]["default"]
        account["bulk_rate_limit"] = {"calls": 2, "window_seconds": 5}
        account["request_timeout_seconds"] = 2.0
        leads, activities = data["routes"]
        leads |= {"mode": "sync", "bulk": {"min_rows": 5, "max_rows": 25}}
        columns = ("email", "first_name", "last_name", "phone")
        lead = dict(zip(known, columns, strict=True)) | {"mx_Unknown": "kyc_status"}
        leads["mapping"] = {"search_by": "EmailAddress", "lead": lead}
        activities["bulk"] = True
        with SinkProcess(data, tmp_path_factory.mktemp("bulk")) as sink:
            found: dict[str, list[Received]] = {}

            def settled() -> bool:
                found["results"] = read_all(broker.bootstrap_servers, topics.results, 10)
                found["letters"] = read_all(broker.bootstrap_servers, topics.dead_letters, 10)
                done = len(found["results"]) + len(found["letters"])
                return done + len(sink.events("record.skipped")) >= len(backlog.events)

            wait_until(settled, 120, "an outcome for every record")
            assert sink.stop() == 0, sink.tail()
            skipped, alone = sink.events("record.skipped"), sink.events("call.alone")
        committed = {
            topic: committed_offsets(broker.bootstrap_servers, topics.group, topic)
            for topic in (topics.leads, topics.activities)
        }
        yield Run(
            backlog,
            positions,
            found["results"],
            found["letters"],
            skipped,
            alone,
            sim.client.requests(),
            sim.client.stats().accounts[sim.account().name],
            sim.client.store(),
            committed,
        )


def test_every_record_has_exactly_one_outcome_and_offsets_are_committed_to_the_end(
    run: Run,
) -> None:
    outcomes: Counter[tuple[str, int, int]] = Counter()
    for record in run.results:
        value = decode(record)
        outcomes[(value["source_topic"], value["source_partition"], value["source_offset"])] += 1
    source = ("__connect.errors.topic", "__connect.errors.partition", "__connect.errors.offset")
    for letter in run.letters:
        head = {name: raw.decode() for name, raw in letter.headers}
        where = [head[name] for name in source]
        outcomes[(where[0], int(where[1]), int(where[2]))] += 1
    for event in run.skipped:
        outcomes[(event["topic"], event["partition"], event["offset"])] += 1
    assert outcomes == Counter(run.positions.values())
    ends: defaultdict[str, dict[int, int]] = defaultdict(dict)
    for topic, partition, offset in run.positions.values():
        ends[topic][partition] = max(ends[topic].get(partition, 0), offset + 1)
    assert run.committed == dict(ends)


def test_rejected_rows_are_dead_letters_and_a_no_op_update_is_skipped(run: Run) -> None:
    assert len(run.letters) == len(REJECTED)
    for letter in run.letters:
        assert dict(letter.headers)["lsq.exception.type"] == b"MXUnknownAttributeException"
    assert [event["reason"] for event in run.skipped] == ["no_change"]
    rows = [decode(r) for r in run.results if decode(r)["batch_row"] is not None]
    assert rows, "no results record came from a bulk row"
    assert {r["status"] for r in rows} == {"succeeded"}
    assert all(r["call_id"] for r in rows)


def test_bulk_rows_are_the_single_calls_bodies(run: Run) -> None:
    """Each bulk call has 1 to 25 rows; a capture row is the record's Lead.Capture body, an
    activity row its CreateCustom Activity plus SearchByValue."""
    captures, activities = run.bulk(CAPTURE), run.bulk(ACTIVITIES)
    assert captures
    assert activities
    expected = [json.dumps(row, sort_keys=True) for row in run.backlog.activity_rows]
    for call in captures + activities:
        rows = call.json_body()
        assert isinstance(rows, list)
        assert 1 <= len(rows) <= 25
        for row in rows:
            if call.path == CAPTURE:
                assert isinstance(row, list)
                assert isinstance(row[0], dict)
                assert row in run.backlog.bodies[str(row[0]["Value"])]
            else:
                assert json.dumps(row, sort_keys=True) in expected
    for call in activities:
        assert {k.lower(): v for k, v in call.query.items()}["searchby"] == "EmailAddress"


def emails(call: LoggedRequest) -> list[str]:
    """The EmailAddress of each lead a Lead.Capture or bulk CreateOrUpdate call carries."""
    body = call.json_body()
    assert isinstance(body, list)
    rows = body if call.path == CAPTURE else [body]
    found = []
    for row in rows:
        assert isinstance(row, list)
        for entry in row:
            assert isinstance(entry, dict)
            if entry["Attribute"] == "EmailAddress":
                found.append(str(entry["Value"]))
    return found


def test_a_timed_out_bulk_call_goes_again_in_halves(run: Run) -> None:
    """Every record of the timed-out call is sent again: in bulk calls of at most half its
    rows, or alone."""
    first, *later = run.bulk(CAPTURE)
    assert first.answer == AnswerClass.FAULT
    timed_out = set(emails(first))
    again: set[str] = set()
    for call in later:
        if set(emails(call)) & timed_out:
            assert len(emails(call)) <= (len(timed_out) + 1) // 2
            again |= set(emails(call)) & timed_out
    single = "/v2/LeadManagement.svc/Lead.Capture"
    for call in run.calls:
        if call.path == single and call.seq > first.seq:
            again |= set(emails(call)) & timed_out
    assert again == timed_out


def test_activities_of_unknown_leads_go_alone_and_create_the_lead(run: Run) -> None:
    missing = {row["SearchByValue"] for row in run.backlog.activity_rows[ACTIVITY_COUNT:]}
    emails = {lead.fields.get("EmailAddress") for lead in run.store.leads}
    assert missing <= emails
    assert run.alone, "no activity row named an unknown lead in a bulk call"


def test_a_keys_changes_end_in_its_latest_state_and_no_budget_is_exceeded(run: Run) -> None:
    [one] = [
        lead for lead in run.store.leads if lead.fields.get("EmailAddress") == "lead1@example.com"
    ]
    assert one.fields["FirstName"] == "Cid"
    assert run.stats.max_bulk_calls_in_window <= 2
    assert run.stats.max_calls_in_window <= 25
    assert run.stats.answers.get(AnswerClass.THROTTLED, 0) == 0


def test_the_state_topic_skips_what_was_accepted_across_a_restart(
    broker: Broker, registry: SchemaRegistryServer, topics: Topics, tmp_path: Path
) -> None:
    """Ten leads are captured and their fingerprints written to the state topic. Then the same
    rows come again as a new snapshot (no ``before``), one of them changed: after a restart, the
    nine unchanged ones are skipped as no_change and only the changed one is sent."""
    state = f"{topics.leads}.state"
    create_topics(broker.bootstrap_servers, {state: 3})
    rng = random.Random(8)  # noqa: S311 - test data
    rows = [lead_row(i, rng) for i in range(10)]
    first = [
        Event("crm.public.leads", i, envelope("leads", "r", None, r, ts_ms=i))
        for i, r in enumerate(rows)
    ]
    changed = [r | {"first_name": "Zed"} if r["id"] == 3 else r for r in rows]
    again = [
        Event("crm.public.leads", i, envelope("leads", "r", None, r, ts_ms=i))
        for i, r in enumerate(changed)
    ]
    with Simulator(SimConfig()) as sim:
        data = config(broker, registry, sim, topics)
        data["output"]["state_topic"] = state
        produce(broker, registry, topics, first)
        with SinkProcess(data, tmp_path / "first") as sink:
            sink.wait_for(lambda: len(sink.events("record.accepted")) == 10, 60, "10 results")
            assert sink.stop() == 0, sink.tail()
        positions = produce(broker, registry, topics, again)
        with SinkProcess(data, tmp_path / "again") as sink:
            sink.wait_for(
                lambda: (
                    len(sink.events("record.skipped")) + len(sink.events("record.accepted")) == 10
                ),
                60,
                "10 outcomes",
            )
            assert sink.stop() == 0, sink.tail()
            skipped, accepted = sink.events("record.skipped"), sink.events("record.accepted")
        calls = sim.client.requests()
    assert [event["reason"] for event in skipped] == ["no_change"] * 9
    assert [event["offset"] for event in accepted] == [positions[3][2]]
    assert len(calls) == 11
    last = calls[-1].json_body()
    assert isinstance(last, list)
    assert {"Attribute": "FirstName", "Value": "Zed"} in last
    ends: dict[int, int] = {}
    for _, partition, offset in positions.values():
        ends[partition] = max(ends.get(partition, 0), offset + 1)
    assert committed_offsets(broker.bootstrap_servers, topics.group, topics.leads) == ends
