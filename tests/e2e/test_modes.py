"""Other ways to run the connector, as real processes: sync mode (lead ids instead of RequestIDs),
registry-less raw Avro with flattened records, `lsq-sink validate`, and `lsq-sink demo` itself."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import fastavro
import httpx
from confluent_kafka import Producer

from connector.flow.codec import RESULT_SCHEMA
from lsq_sim import SimConfig, Simulator
from lsq_stack.kafka import read_topic
from lsq_stack.scenario import build_scenario
from lsq_stack.sink import SinkProcess
from tests.e2e.conftest import config, produce

if TYPE_CHECKING:
    from pathlib import Path

    from lsq_stack.broker import Broker
    from lsq_stack.registry import SchemaRegistryServer
    from tests.e2e.conftest import Topics

_RESULT = fastavro.parse_schema(RESULT_SCHEMA)


def _decode_result(value: bytes | None, wire: bool) -> dict[str, Any]:
    assert value is not None
    body = value[5:] if wire else value
    decoded = fastavro.schemaless_reader(io.BytesIO(body), _RESULT, None)
    assert isinstance(decoded, dict)
    return decoded


def test_sync_capture_results_carry_the_lead_id(
    broker: Broker, registry: SchemaRegistryServer, topics: Topics, tmp_path: Path
) -> None:
    """A sync route calls Lead.Capture on the API host with header keys; each results record
    carries the id of the lead LeadSquared created."""
    scenario = build_scenario(leads=6, updates=0, activities=0, seed=21)
    events = [
        e
        for e, x in zip(scenario.events, scenario.expected, strict=True)
        if x.outcome == "accepted"
    ][:6]
    with Simulator(SimConfig()) as sim:
        produce(broker, registry, topics, events)
        data = config(broker, registry, sim, topics)
        data["routes"][0]["mode"] = "sync"
        with SinkProcess(data, tmp_path) as sink:
            results = read_topic(broker.bootstrap_servers, topics.results, 6, timeout=60)
            assert sink.stop() == 0
        store = sim.client.store()
        calls = sim.client.requests()
    leads_by_email = {lead.fields["EmailAddress"]: lead.id for lead in store.leads}
    for record in results:
        result = _decode_result(record.value, wire=True)
        assert (result["request_id"], result["http_status"]) == (None, 200)
        assert result["lead_id"] in leads_by_email.values()
    assert {c.path for c in calls} == {"/v2/LeadManagement.svc/Lead.Capture"}
    assert all("accessKey" not in c.query and c.headers["x-lsq-accesskey"] for c in calls)


FLAT_LEAD = {
    "type": "record",
    "name": "Lead",
    "fields": [
        {"name": "id", "type": "long"},
        {"name": "email", "type": ["null", "string"], "default": None},
        {"name": "first_name", "type": ["null", "string"], "default": None},
        {"name": "created_at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "__op", "type": ["null", "string"], "default": None},
        {"name": "__deleted", "type": ["null", "string"], "default": None},
        {"name": "__source_ts_ms", "type": ["null", "long"], "default": None},
    ],
}


def test_registry_less_flattened_records(
    broker: Broker, registry: SchemaRegistryServer, topics: Topics, tmp_path: Path
) -> None:
    """Without a registry: bare Avro values written with a local .avsc, flattened by
    ExtractNewRecordState; deletes are skipped and results are bare Avro too."""
    schema_file = tmp_path / "lead.avsc"
    schema_file.write_text(json.dumps(FLAT_LEAD))
    parsed = fastavro.parse_schema(FLAT_LEAD)
    rows = [
        {
            "id": 1,
            "email": "flat1@example.com",
            "first_name": "Ada",
            "created_at": 1_790_000_000_000,
            "__op": "c",
            "__deleted": "false",
            "__source_ts_ms": 1_790_000_000_000,
        },
        {
            "id": 2,
            "email": "flat2@example.com",
            "first_name": None,
            "created_at": 1_790_000_060_000,
            "__op": "r",
            "__deleted": "false",
            "__source_ts_ms": 1_790_000_060_000,
        },
        {
            "id": 1,
            "email": "flat1@example.com",
            "first_name": "Ada",
            "created_at": 1_790_000_000_000,
            "__op": "d",
            "__deleted": "true",
            "__source_ts_ms": 1_790_000_120_000,
        },
    ]
    producer = Producer({"bootstrap.servers": broker.bootstrap_servers})
    for row in rows:
        out = io.BytesIO()
        fastavro.schemaless_writer(out, parsed, row)
        producer.produce(topics.leads, key=str(row["id"]).encode(), value=out.getvalue())
    assert producer.flush(10) == 0
    producer.close()
    with Simulator(SimConfig()) as sim:
        data = config(broker, registry, sim, topics)
        del data["schema_registry"]
        data["routes"] = [
            data["routes"][0]
            | {
                "value_schema": str(schema_file),
                "mapping": {
                    "search_by": "EmailAddress",
                    "lead": {
                        "EmailAddress": "email",
                        "FirstName": "first_name",
                        "mx_Created": "created_at",
                        "mx_Operation": "$op",
                    },
                },
            }
        ]
        with SinkProcess(data, tmp_path) as sink:
            results = read_topic(broker.bootstrap_servers, topics.results, 2, timeout=60)
            sink.wait_for(lambda: bool(sink.events("record.skipped")), 30, "the delete")
            assert sink.stop() == 0
        bodies = sorted(json.dumps(c.json_body()) for c in sim.client.requests())
    assert bodies == sorted(
        json.dumps(b)
        for b in (
            [
                {"Attribute": "EmailAddress", "Value": "flat1@example.com"},
                {"Attribute": "FirstName", "Value": "Ada"},
                {"Attribute": "mx_Created", "Value": "2026-09-21 14:13:20"},
                {"Attribute": "mx_Operation", "Value": "c"},
                {"Attribute": "SearchBy", "Value": "EmailAddress"},
            ],
            [
                {"Attribute": "EmailAddress", "Value": "flat2@example.com"},
                {"Attribute": "mx_Created", "Value": "2026-09-21 14:14:20"},
                {"Attribute": "mx_Operation", "Value": "r"},
                {"Attribute": "SearchBy", "Value": "EmailAddress"},
            ],
        )
    )
    offsets = sorted(_decode_result(r.value, wire=False)["source_offset"] for r in results)
    assert len(offsets) == 2
    [skipped] = sink.events("record.skipped")
    assert skipped["reason"] == "delete"


def test_validate_renders_payloads_without_calling_leadsquared(
    broker: Broker, registry: SchemaRegistryServer, topics: Topics, tmp_path: Path
) -> None:
    """`lsq-sink validate` checks the schemas and renders the exact calls for the first records
    of each topic and for a samples file, with zero API calls; a bad sample fails it (exit 1)."""
    scenario = build_scenario(leads=4, updates=0, activities=0, seed=2)
    produce(broker, registry, topics, scenario.events[:3])
    samples = tmp_path / "samples.jsonl"
    samples.write_text(
        json.dumps({"topic": topics.leads, "value": {"email": "s@example.com", "created_at": 0}})
        + "\n"
        + json.dumps({"topic": topics.leads, "value": {"first_name": "no email"}})
        + "\n"
    )
    with Simulator(SimConfig()) as sim:
        data = config(broker, registry, sim, topics)
        path = tmp_path / "config.yaml"
        path.write_text(json.dumps(data))
        command = [sys.executable, "-m", "connector", "validate", "--config", str(path)]
        command += ["--from-topics", "2", "--samples", str(samples)]
        run = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        assert sim.client.requests() == ()
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    assert run.returncode == 1, run.stderr
    schemas = [line for line in lines if line.get("check") == "schema"]
    assert {s["subject"] for s in schemas} == {
        f"{topics.leads}-value",
        f"{topics.activities}-value",
    }
    assert "error" in next(s for s in schemas if s["subject"] == f"{topics.activities}-value")
    rendered = [line for line in lines if "body" in line]
    assert len(rendered) == 3  # two from the topic, one good sample
    assert all(line["url"] == f"{sim.url}/lead/capture" for line in rendered)
    assert rendered[0]["body"][0] == {"Attribute": "EmailAddress", "Value": "s@example.com"}
    failed = [line for line in lines if line.get("stage") == "map"]
    assert failed[0]["error"] == "SearchBy EmailAddress: lead.EmailAddress is null"
    assert lines[-1] == {"check": "done", "result": "problems found", "api_calls": 0}


def test_demo_command_succeeds() -> None:
    """`lsq-sink demo` (what `make demo` runs) ends with exit 0 and a JSON line showing every
    event processed, nothing lost and nothing throttled."""
    run = subprocess.run(
        [sys.executable, "-m", "connector", "demo"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    summary = json.loads(run.stdout.strip().splitlines()[-1])
    # a call per accepted record and one for the record LeadSquared rejects, fewer when changes
    # of a lead waiting together share one (coalesced); how many do depends on the timing
    assert 100 <= summary.pop("api_calls") <= 121
    assert summary == {
        "consumed": 132,
        "accepted": 120,
        "dead_lettered": 6,
        "skipped": 6,
        "lost": 0,
        "throttled": 0,
    }


CRM_ROW = {
    "type": "record",
    "name": "Contact",
    "fields": [
        {"name": "lsq_id", "type": ["null", "string"], "default": None},
        {"name": "email", "type": "string"},
        {"name": "city", "type": ["null", "string"], "default": None},
    ],
}


def test_update_and_sync_create_routes(
    broker: Broker, registry: SchemaRegistryServer, topics: Topics, tmp_path: Path
) -> None:
    """An update route calls /lead/update with leadId and postUpdatedLead from the mapping; a
    sync create route calls Lead.Create and its results carry the new lead's id."""
    schema_file = tmp_path / "contact.avsc"
    schema_file.write_text(json.dumps(CRM_ROW))
    parsed = fastavro.parse_schema(CRM_ROW)
    with Simulator(SimConfig()) as sim:
        account = sim.account()
        keys = {"accessKey": account.access_key, "secretKey": account.secret_key}
        existing = []
        for i in range(2):  # leads that already exist in LeadSquared
            body = [{"Attribute": "EmailAddress", "Value": f"old{i}@example.com"}]
            answer = httpx.post(
                f"{sim.url}/v2/LeadManagement.svc/Lead.Create", params=keys, json=body
            ).json()
            existing.append(answer["Message"]["Id"])
        updates = [
            {"lsq_id": existing[i], "email": f"old{i}@example.com", "city": "Goa"} for i in range(2)
        ]
        creates = [
            {"lsq_id": None, "email": f"new{i}@example.com", "city": "Pune"} for i in range(3)
        ]
        producer = Producer({"bootstrap.servers": broker.bootstrap_servers})
        for topic, rows in ((topics.leads, updates), (topics.activities, creates)):
            for row in rows:
                out = io.BytesIO()
                fastavro.schemaless_writer(out, parsed, row)
                producer.produce(topic, key=str(row["email"]).encode(), value=out.getvalue())
        assert producer.flush(10) == 0
        producer.close()
        data = config(broker, registry, sim, topics)
        del data["schema_registry"]
        data["routes"] = [
            {
                "name": "updates",
                "topics": [topics.leads],
                "operation": "update",
                "value_schema": str(schema_file),
                "mapping": {
                    "lead_id": "lsq_id",
                    "post_updated_lead": True,
                    "lead": {"mx_City": "city"},
                },
            },
            {
                "name": "creates",
                "topics": [topics.activities],
                "operation": "create",
                "mode": "sync",
                "value_schema": str(schema_file),
                "mapping": {"lead": {"EmailAddress": "email", "mx_City": "city"}},
            },
        ]
        with SinkProcess(data, tmp_path) as sink:
            results = read_topic(broker.bootstrap_servers, topics.results, 5, timeout=60)
            assert sink.stop() == 0
        sim.client.wait_idle()
        calls = sim.client.requests()
        store = sim.client.store()
    update_calls = [c for c in calls if c.path == "/lead/update"]
    assert sorted(c.query["leadId"] for c in update_calls) == sorted(existing)
    assert {c.query["postUpdatedLead"] for c in update_calls} == {"true"}
    assert all(c.json_body() == [{"Attribute": "mx_City", "Value": "Goa"}] for c in update_calls)
    assert {lead.id: lead.fields.get("mx_City") for lead in store.leads if lead.id in existing} == {
        existing[0]: "Goa",
        existing[1]: "Goa",
    }
    decoded = [_decode_result(r.value, wire=False) for r in results]
    created = {r["lead_id"] for r in decoded if r["operation"] == "create"}
    new_ids = {lead.id for lead in store.leads if lead.fields["EmailAddress"].startswith("new")}
    assert created == new_ids
    assert len(created) == 3
    assert {r["request_id"] is not None for r in decoded if r["operation"] == "update"} == {True}
