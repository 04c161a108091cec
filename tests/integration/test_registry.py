"""The in-memory Schema Registry works with confluent-kafka's real client and Avro serializers."""

from __future__ import annotations

import io
import json
import struct
from typing import TYPE_CHECKING, Any

import fastavro
import pytest
from confluent_kafka import Producer
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient, SchemaRegistryError
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from connector.flow.codec import RESULT_SCHEMA
from lsq_stack.kafka import create_topics, read_topic, unique_name
from lsq_stack.registry import SchemaRegistryServer

if TYPE_CHECKING:
    from collections.abc import Iterator

    from lsq_stack.broker import Broker

LEAD_V1 = {
    "type": "record",
    "name": "Lead",
    "namespace": "crm",
    "fields": [{"name": "id", "type": "long"}, {"name": "email", "type": "string"}],
}
LEAD_V2 = {
    **LEAD_V1,
    "fields": [*LEAD_V1["fields"], {"name": "city", "type": ["null", "string"], "default": None}],
}


@pytest.fixture(scope="module")
def registry() -> Iterator[SchemaRegistryServer]:
    with SchemaRegistryServer() as server:
        yield server


@pytest.fixture
def client(registry: SchemaRegistryServer) -> Iterator[SchemaRegistryClient]:
    with SchemaRegistryClient({"url": registry.url}) as opened:
        yield opened


def _serializer(client: SchemaRegistryClient, schema: dict[str, Any]) -> AvroSerializer:
    serializer: AvroSerializer = AvroSerializer(
        client, json.dumps(schema), conf={"auto.register.schemas": True}
    )
    return serializer


def _value_ctx(topic: str) -> SerializationContext:
    return SerializationContext(topic, MessageField.VALUE)


def test_serializer_round_trip_through_the_broker(
    broker: Broker, client: SchemaRegistryClient
) -> None:
    """Records serialized with AvroSerializer travel through Kafka and deserialize identically."""
    topic = unique_name("leads")
    create_topics(broker.bootstrap_servers, {topic: 2})
    serialize = _serializer(client, LEAD_V1)
    producer = Producer({"bootstrap.servers": broker.bootstrap_servers})
    sent = [{"id": i, "email": f"lead{i}@example.com"} for i in range(20)]
    for value in sent:
        producer.produce(topic, value=serialize(value, _value_ctx(topic)))
    assert producer.flush(10) == 0
    producer.close()

    records = read_topic(broker.bootstrap_servers, topic, 20)
    schema_id = client.get_latest_version(f"{topic}-value").schema_id
    deserialize = AvroDeserializer(client)
    received = []
    for record in records:
        assert record.value is not None
        assert record.value[:5] == b"\x00" + struct.pack(">I", schema_id)
        received.append(deserialize(record.value, _value_ctx(topic)))
    assert sorted(received, key=lambda v: v["id"]) == sent


def test_schema_evolution_second_version_of_a_subject(client: SchemaRegistryClient) -> None:
    """A compatible new version gets version 2 and a new id; data of both versions decodes."""
    topic = unique_name("evolve")
    old = _serializer(client, LEAD_V1)({"id": 1, "email": "a@x.io"}, _value_ctx(topic))
    new = _serializer(client, LEAD_V2)(
        {"id": 2, "email": "b@x.io", "city": "Pune"}, _value_ctx(topic)
    )
    subject = f"{topic}-value"
    assert client.get_versions(subject) == [1, 2]
    latest = client.get_latest_version(subject)
    assert latest.version == 2
    assert json.loads(latest.schema.schema_str or "")["fields"][-1]["name"] == "city"
    assert client.get_version(subject, 1).schema_id != latest.schema_id
    deserialize = AvroDeserializer(client)
    assert deserialize(old, _value_ctx(topic)) == {"id": 1, "email": "a@x.io"}
    assert deserialize(new, _value_ctx(topic)) == {"id": 2, "email": "b@x.io", "city": "Pune"}


def test_unknown_schema_id_gives_a_clear_client_error(client: SchemaRegistryClient) -> None:
    """Wire-format bytes naming an unregistered schema id fail with 'Schema ... not found'."""
    payload = b"\x00" + struct.pack(">I", 999_999) + b"\x02"
    with pytest.raises(SchemaRegistryError) as raised:
        client.get_schema(999_999)
    assert (raised.value.http_status_code, raised.value.error_code) == (404, 40403)
    assert "Schema 999999 not found" in raised.value.error_message
    with pytest.raises(SchemaRegistryError, match="Schema 999999 not found"):
        AvroDeserializer(client)(payload, _value_ctx("any"))


def test_same_schema_in_two_subjects_shares_one_id(client: SchemaRegistryClient) -> None:
    """Registering identical schemas under two subjects returns the same id."""
    schema = Schema(json.dumps(LEAD_V1), "AVRO")
    first = client.register_schema(unique_name("s1"), schema)
    second = client.register_schema(unique_name("s2"), schema)
    assert first == second


def test_lookup_finds_registered_schema_and_rejects_unknown(client: SchemaRegistryClient) -> None:
    """POST /subjects/{s} finds a registered schema's version; an unknown one is 40403."""
    subject = unique_name("lookup")
    schema_id = client.register_schema(subject, Schema(json.dumps(LEAD_V1), "AVRO"))
    found = client.lookup_schema(subject, Schema(json.dumps(LEAD_V1), "AVRO"))
    assert (found.schema_id, found.version, found.subject) == (schema_id, 1, subject)
    with pytest.raises(SchemaRegistryError) as raised:
        client.lookup_schema(subject, Schema(json.dumps(LEAD_V2), "AVRO"))
    assert raised.value.error_code == 40403


def test_invalid_avro_schema_is_rejected_with_422(client: SchemaRegistryClient) -> None:
    """A schema fastavro cannot parse is refused with error code 42201."""
    bad = Schema(json.dumps({"type": "record", "name": "X", "fields": [{"name": "a"}]}), "AVRO")
    with pytest.raises(SchemaRegistryError) as raised:
        client.register_schema(unique_name("bad"), bad)
    assert (raised.value.http_status_code, raised.value.error_code) == (422, 42201)


def test_compatibility_config_global_and_per_subject(client: SchemaRegistryClient) -> None:
    """GET/PUT /config and /config/{subject} store and return compatibility levels."""
    subject = unique_name("cfg")
    assert client.get_compatibility() == "BACKWARD"
    client.set_compatibility(subject, "FULL")
    assert client.get_compatibility(subject) == "FULL"
    assert client.get_compatibility() == "BACKWARD"


def test_subjects_listing_and_deletion(client: SchemaRegistryClient) -> None:
    """Registered subjects are listed; a deleted subject is gone and reports its versions."""
    subject = unique_name("gone")
    client.register_schema(subject, Schema(json.dumps(LEAD_V1), "AVRO"))
    assert subject in client.get_subjects()
    assert client.delete_subject(subject) == [1]
    assert subject not in client.get_subjects()
    with pytest.raises(SchemaRegistryError) as raised:
        client.get_latest_version(subject)
    assert raised.value.error_code == 40401


def test_basic_auth_is_enforced_when_configured() -> None:
    """With basic auth on, the client needs the right user info; without it, 401."""
    with SchemaRegistryServer(basic_auth="reader:s3cret") as server:
        subject, schema = unique_name("auth"), Schema(json.dumps(LEAD_V1), "AVRO")
        with (
            SchemaRegistryClient({"url": server.url}) as anonymous,
            pytest.raises(SchemaRegistryError) as raised,
        ):
            anonymous.register_schema(subject, schema)
        assert raised.value.http_status_code == 401
        config = {"url": server.url, "basic.auth.user.info": "reader:s3cret"}
        with SchemaRegistryClient(config) as authed:
            assert authed.register_schema(subject, schema) == 1


def test_a_version_that_cannot_read_the_latest_is_refused(client: SchemaRegistryClient) -> None:
    """BACKWARD (the default): a new required field without a default cannot read the data of
    the latest version, so the registry refuses it (409), as Confluent's does; with the subject's
    level NONE it is accepted."""
    subject = unique_name("strict")
    client.register_schema(subject, Schema(json.dumps(LEAD_V1), "AVRO"))
    required = {**LEAD_V1, "fields": [*LEAD_V1["fields"], {"name": "city", "type": "string"}]}
    with pytest.raises(SchemaRegistryError) as raised:
        client.register_schema(subject, Schema(json.dumps(required), "AVRO"))
    assert (raised.value.http_status_code, raised.value.error_code) == (409, 409)
    assert "incompatible" in raised.value.error_message
    client.set_compatibility(subject, "NONE")
    client.register_schema(subject, Schema(json.dumps(required), "AVRO"))
    assert client.get_versions(subject) == [1, 2]


def test_the_results_schema_is_a_backward_compatible_version_of_the_previous_one(
    client: SchemaRegistryClient,
) -> None:
    """The results schema before bulk calls, coalescing and completion tracking, then today's: the
    registry's BACKWARD check accepts today's as version 2, and a record of the earlier version
    reads with today's (the new fields take their defaults)."""
    added = {"activity_id", "call_id", "batch_row", "coalesced", "reason", "completed_at"}
    earlier = {
        **RESULT_SCHEMA,
        "fields": [f for f in RESULT_SCHEMA["fields"] if f["name"] not in added],
    }
    subject = unique_name("results") + "-value"
    client.register_schema(subject, Schema(json.dumps(earlier), "AVRO"))
    client.register_schema(subject, Schema(json.dumps(RESULT_SCHEMA), "AVRO"))
    assert client.get_versions(subject) == [1, 2]
    record = {
        "status": "accepted", "operation": "capture", "route": "leads", "account": "main",
        "request_id": "r", "lead_id": None, "source_topic": "t", "source_partition": 0,
        "source_offset": 1, "source_timestamp": None, "submitted_at": 1, "attempts": 1,
        "http_status": 200,
    }  # fmt: skip
    out = io.BytesIO()
    fastavro.schemaless_writer(out, fastavro.parse_schema(earlier), record)
    out.seek(0)
    read = fastavro.schemaless_reader(
        out, fastavro.parse_schema(earlier), fastavro.parse_schema(RESULT_SCHEMA)
    )
    assert isinstance(read, dict)
    defaults = {"activity_id": None, "call_id": None, "batch_row": None, "coalesced": False}
    defaults |= {"reason": None, "completed_at": None}
    assert {k: v for k, v in read.items() if k != "submitted_at"} == {
        k: v for k, v in (record | defaults).items() if k != "submitted_at"
    }  # submitted_at reads back as a datetime (timestamp-millis)
