"""Writer schemas from a real Schema Registry (the project's in-memory one, with confluent-kafka's
own client): fetch, cache, unknown ids, outages, basic auth, references, and a Debezium event end
to end (wire bytes → Decoder → unwrap → Change)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest
from aiohttp import web
from confluent_kafka.schema_registry import Schema, SchemaReference, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from connector.adapters.schemas import RegistrySchemas, registry_client
from connector.errors import DecodeError, SchemaSourceError
from connector.records import Change
from connector.transform.decode import Decoder
from connector.transform.unwrap import unwrap
from lsq_stack.kafka import unique_name
from lsq_stack.registry import SchemaRegistryServer
from lsq_stack.serve import ServerThread

if TYPE_CHECKING:
    from collections.abc import Iterator

LEAD = {
    "type": "record",
    "name": "Lead",
    "namespace": "crm",
    "fields": [{"name": "id", "type": "long"}, {"name": "email", "type": "string"}],
}
PASSWORD = "s3cret-Pa55"


@pytest.fixture(scope="module")
def registry() -> Iterator[SchemaRegistryServer]:
    with SchemaRegistryServer() as server:
        yield server


@pytest.fixture
def client(registry: SchemaRegistryServer) -> Iterator[SchemaRegistryClient]:
    with registry_client(registry.url, None, timeout_s=5, max_retries=0) as opened:
        yield opened


def register(client: SchemaRegistryClient, schema: dict[str, Any], **extra: Any) -> int:
    """Register ``schema`` under a fresh subject; its id."""
    schema_id: int = client.register_schema(
        unique_name("subject"), Schema(json.dumps(schema), "AVRO", **extra)
    )
    return schema_id


def test_get_fetches_and_prepares_the_writer_schema(client: SchemaRegistryClient) -> None:
    """A registered id gives its parsed writer schema; wire bytes decode with it."""
    schema_id = register(client, LEAD)
    schemas = RegistrySchemas(client)
    found = schemas.get(schema_id)
    assert found.schema_id == schema_id
    assert isinstance(found.schema, dict)
    assert found.schema["name"] == "crm.Lead"
    value = b"\x00" + schema_id.to_bytes(4, "big") + b"\x0e\x0aa@x.y"
    assert Decoder(schemas).decode(value) == {"id": 7, "email": "a@x.y"}


def test_schemas_are_cached_per_id_and_need_no_registry_afterwards() -> None:
    """After the first get, the same prepared schema is returned even with the registry gone."""
    with (
        SchemaRegistryServer() as server,
        registry_client(server.url, None, max_retries=0) as client,
    ):
        schema_id = register(client, LEAD)
        schemas = RegistrySchemas(client)
        first = schemas.get(schema_id)
        server.stop()
        assert schemas.get(schema_id) is first


def test_unknown_id_is_a_decode_error(client: SchemaRegistryClient) -> None:
    """An id the registry does not have (404, 40403): that record is dead-lettered."""
    with pytest.raises(DecodeError) as raised:
        RegistrySchemas(client).get(999_999)
    assert raised.value.reason == "schema id 999999 is not in the schema registry"


def source_error(url: str, user_info: str | None = None, schema_id: int = 1) -> SchemaSourceError:
    """The SchemaSourceError a fresh client gives for ``get(schema_id)`` (no retries)."""
    with (
        registry_client(url, user_info, timeout_s=2, max_retries=0) as client,
        pytest.raises(SchemaSourceError) as raised,
    ):
        RegistrySchemas(client).get(schema_id)
    return raised.value


def test_registry_down_before_the_first_fetch_is_a_source_error() -> None:
    """Connection refused is SchemaSourceError (retry, then stop), not a DecodeError."""
    with SchemaRegistryServer() as server:
        url = server.url
    message = str(source_error(url))
    assert message.startswith("schema registry unreachable fetching schema id 1: ConnectError")


def test_basic_auth_with_the_right_credentials() -> None:
    """With basic.auth.user.info the registry answers."""
    with (
        SchemaRegistryServer(basic_auth=f"reader:{PASSWORD}") as server,
        registry_client(server.url, f"reader:{PASSWORD}", max_retries=0) as client,
    ):
        schema_id = register(client, LEAD)
        assert RegistrySchemas(client).get(schema_id).schema_id == schema_id


@pytest.mark.parametrize("user_info", [None, "reader:wrong-Pa55word"])
def test_missing_or_wrong_credentials_are_a_source_error_without_secrets(
    user_info: str | None,
) -> None:
    """401 is SchemaSourceError with a hint; no password (given or expected) in the message."""
    with SchemaRegistryServer(basic_auth=f"reader:{PASSWORD}") as server:
        message = str(source_error(server.url, user_info))
    assert message == (
        "schema registry failed fetching schema id 1: HTTP 401, error code 401: Unauthorized"
        " (check the registry credentials)"
    )
    assert PASSWORD not in message
    assert "wrong-Pa55word" not in message


def test_credentials_in_the_url_never_reach_messages() -> None:
    """user:password@ in the registry URL is used for auth, and redacted from every error."""
    with SchemaRegistryServer(basic_auth=f"reader:{PASSWORD}") as server:
        url = server.url.replace("http://", "http://reader:wrong-Pa55word@")
        refused = source_error(url)
    unreachable = source_error(url)
    assert "HTTP 401" in str(refused)
    assert "ConnectError" in str(unreachable)
    for error in (refused, unreachable):
        assert "wrong-Pa55word" not in str(error)
        assert error.__cause__ is None


def _failing_registry(status: int, body: dict[str, Any]) -> ServerThread:
    """A server answering every schema-by-id request with ``status`` and ``body``."""

    async def answer(_: web.Request) -> web.Response:
        return web.json_response(body, status=status)

    app = web.Application()
    app.router.add_get("/schemas/ids/{id}", answer)
    return ServerThread(app)


def test_server_errors_are_source_errors_with_the_registry_message() -> None:
    """A 5xx answer is SchemaSourceError naming the status, code and message."""
    with _failing_registry(500, {"error_code": 50001, "message": "store unavailable"}) as server:
        message = str(source_error(server.url, schema_id=3))
    assert message == (
        "schema registry failed fetching schema id 3: HTTP 500, error code 50001: store unavailable"
    )


def test_a_404_that_is_not_schema_not_found_is_a_source_error() -> None:
    """A 404 without a registry 'not found' code (wrong URL path) must not dead-letter records."""
    with _failing_registry(404, {"error_code": 404, "message": "HTTP 404 Not Found"}) as server:
        message = str(source_error(server.url, schema_id=3))
    assert "HTTP 404, error code 404: HTTP 404 Not Found" in message


def test_non_avro_schema_is_a_decode_error(client: SchemaRegistryClient) -> None:
    """A JSON Schema id cannot be decoded as Avro: DecodeError saying only Avro is supported."""
    schema_id = client.register_schema(unique_name("json"), Schema('{"type": "object"}', "JSON"))
    schemas = RegistrySchemas(client)
    for _ in range(2):  # the verdict is cached, and raised afresh each time
        with pytest.raises(DecodeError) as raised:
            schemas.get(schema_id)
        assert raised.value.reason == (
            f"schema id {schema_id} is a JSON schema; only Avro is supported"
        )


def test_schema_references_are_resolved(client: SchemaRegistryClient) -> None:
    """A schema using a named type from another subject (a reference) decodes."""
    address = {
        "type": "record",
        "name": "Address",
        "namespace": "crm",
        "fields": [{"name": "city", "type": "string"}],
    }
    subject = unique_name("address")
    client.register_schema(subject, Schema(json.dumps(address), "AVRO"))
    lead = {**LEAD, "fields": [*LEAD["fields"], {"name": "home", "type": "crm.Address"}]}
    reference = SchemaReference("crm.Address", subject, 1)
    schema_id = register(client, lead, references=[reference])
    value = b"\x00" + schema_id.to_bytes(4, "big") + b"\x0e\x0aa@x.y\x08Pune"
    decoded = Decoder(RegistrySchemas(client)).decode(value)
    assert decoded == {"id": 7, "email": "a@x.y", "home": {"city": "Pune"}}


# A Debezium change event end to end ----------


def _connect(base: str, name: str, **extra: Any) -> dict[str, Any]:
    return {"type": base, "connect.version": 1, "connect.name": name, **extra}


def _optional(schema: Any) -> list[Any]:
    return ["null", schema]


#: As Debezium's PostgreSQL connector emits it through Confluent's AvroConverter.
ROW = {
    "type": "record",
    "name": "Value",
    "fields": [
        {"name": "id", "type": "long"},
        {"name": "email", "type": _optional("string"), "default": None},
        {"name": "created_at", "type": _connect("long", "io.debezium.time.MicroTimestamp")},
        {
            "name": "updated_at",
            "type": _optional(_connect("string", "io.debezium.time.ZonedTimestamp")),
            "default": None,
        },
        {
            "name": "birthday",
            "type": _optional(_connect("int", "io.debezium.time.Date")),
            "default": None,
        },
        {
            "name": "score",
            "type": _optional(
                _connect(
                    "bytes",
                    "org.apache.kafka.connect.data.Decimal",
                    logicalType="decimal",
                    precision=10,
                    scale=2,
                    **{"connect.parameters": {"scale": "2", "connect.decimal.precision": "10"}},
                )
            ),
            "default": None,
        },
        {
            "name": "balance",
            "type": _optional(
                {
                    "type": "record",
                    "name": "VariableScaleDecimal",
                    "namespace": "io.debezium.data",
                    "fields": [
                        {"name": "scale", "type": "int"},
                        {"name": "value", "type": "bytes"},
                    ],
                    "connect.doc": "Variable scaled decimal",
                    "connect.version": 1,
                    "connect.name": "io.debezium.data.VariableScaleDecimal",
                }
            ),
            "default": None,
        },
    ],
    "connect.name": "crm.public.leads.Value",
}
SOURCE = {
    "type": "record",
    "name": "Source",
    "namespace": "io.debezium.connector.postgresql",
    "fields": [
        {"name": "version", "type": "string"},
        {"name": "connector", "type": "string"},
        {"name": "name", "type": "string"},
        {"name": "ts_ms", "type": "long"},
        {
            "name": "snapshot",
            "type": [
                _connect(
                    "string",
                    "io.debezium.data.Enum",
                    **{
                        "connect.parameters": {"allowed": "true,last,false,incremental"},
                        "connect.default": "false",
                    },
                ),
                "null",
            ],
            "default": "false",
        },
        {"name": "db", "type": "string"},
        {"name": "sequence", "type": _optional("string"), "default": None},
        {"name": "schema", "type": "string"},
        {"name": "table", "type": "string"},
        {"name": "txId", "type": _optional("long"), "default": None},
        {"name": "lsn", "type": _optional("long"), "default": None},
        {"name": "xmin", "type": _optional("long"), "default": None},
    ],
    "connect.name": "io.debezium.connector.postgresql.Source",
}
ENVELOPE = {
    "type": "record",
    "name": "Envelope",
    "namespace": "crm.public.leads",
    "fields": [
        {"name": "before", "type": _optional(ROW), "default": None},
        {"name": "after", "type": _optional("Value"), "default": None},
        {"name": "source", "type": SOURCE},
        {"name": "op", "type": "string"},
        {"name": "ts_ms", "type": _optional("long"), "default": None},
        {
            "name": "transaction",
            "type": _optional(
                {
                    "type": "record",
                    "name": "block",
                    "namespace": "event",
                    "fields": [
                        {"name": "id", "type": "string"},
                        {"name": "total_order", "type": "long"},
                        {"name": "data_collection_order", "type": "long"},
                    ],
                    "connect.version": 1,
                    "connect.name": "event.block",
                }
            ),
            "default": None,
        },
    ],
    "connect.version": 1,
    "connect.name": "crm.public.leads.Envelope",
}
SOURCE_VALUE = {
    "version": "2.7.0.Final",
    "connector": "postgresql",
    "name": "crm",
    "ts_ms": 1_700_000_000_000,
    "snapshot": "false",
    "db": "crm",
    "sequence": '["24023928","24023928"]',
    "schema": "public",
    "table": "leads",
    "txId": 565,
    "lsn": 24023928,
    "xmin": None,
}


def test_debezium_update_from_wire_bytes_to_change(client: SchemaRegistryClient) -> None:
    """AvroSerializer bytes of a Debezium update → Decoder → unwrap → Change with Python values."""
    before = {
        "id": 9,
        "email": "old@example.com",
        "created_at": 1_700_000_000_123_456,
        "updated_at": None,
        "birthday": None,
        "score": None,
        "balance": None,
    }
    after = before | {
        "email": "new@example.com",
        "updated_at": "2023-11-15T03:43:20.5+05:30",
        "birthday": 8000,
        "score": Decimal("98.50"),
        "balance": {"scale": 3, "value": (-1234567).to_bytes(3, "big", signed=True)},
    }
    event = {
        "before": before,
        "after": after,
        "source": SOURCE_VALUE,
        "op": "u",
        "ts_ms": 1_700_000_000_900,
        "transaction": None,
    }
    serialize = AvroSerializer(client, json.dumps(ENVELOPE), conf={"auto.register.schemas": True})
    topic = unique_name("crm.public.leads")
    wire = serialize(event, SerializationContext(topic, MessageField.VALUE))
    assert wire is not None

    change = unwrap(Decoder(RegistrySchemas(client)).decode(wire))

    assert isinstance(change, Change)
    assert (change.op, change.ts_ms) == ("u", 1_700_000_000_000)
    created = datetime(2023, 11, 14, 22, 13, 20, 123456, tzinfo=UTC)
    assert change.after == {
        "id": 9,
        "email": "new@example.com",
        "created_at": created,
        "updated_at": datetime(2023, 11, 14, 22, 13, 20, 500000, tzinfo=UTC),
        "birthday": date(1991, 11, 27),
        "score": Decimal("98.50"),
        "balance": Decimal("-1234.567"),
    }
    assert change.before == before | {"created_at": created}
    assert change.meta is not None
    assert change.meta["table"] == "leads"
    assert change.meta["lsn"] == 24023928
    assert (change.meta["ts_ms"], change.meta["source_ts_ms"]) == (
        1_700_000_000_900,
        1_700_000_000_000,
    )
