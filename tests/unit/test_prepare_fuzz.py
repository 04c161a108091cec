"""Property tests: preparing a record never raises (SPEC §2.7). Whatever Avro record reaches a
route — any schema (records nested in every position, arrays, maps, unions, enums, fixed, every
primitive and logical type, recursive types) with any valid value, envelope fields (``op``,
``__op``, ``before``, ...) and mapped fields of any type, well-formed Debezium envelopes and
flattened rows — :meth:`Route.prepare` returns a Payload, a Skip or a DeadLetter with a stage and
a reason; only a FatalError (the schema registry cannot be reached) escapes.

Records are written by fastavro and read back the real way: Confluent wire format through the
routes :func:`connector.commands.run.build_routes` compiles from settings, with
:class:`RegistrySchemas` over an in-memory registry client (raw ``.avsc`` mode for the
regressions). Every route (capture, update, lead_and_activity, create and the demo's two)
prepares every record."""

from __future__ import annotations

import io
import json
import string
import struct
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, cast, get_args

import fastavro
import pytest
from confluent_kafka.schema_registry import Schema
from confluent_kafka.schema_registry.error import SchemaRegistryError
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from connector.adapters.schemas import RegistrySchemas
from connector.commands.run import build_routes
from connector.errors import SchemaSourceError
from connector.records import DeadLetter, Payload, Skip, SourceRecord, Stage
from connector.settings.model import Settings
from lsq_stack.scenario import route_config

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping
    from pathlib import Path

    from confluent_kafka.schema_registry import SchemaRegistryClient

    from connector.records import Change
    from connector.transform.route import Route
    from connector.transform.spec import FieldSource, MappingSpec

STAGES = frozenset(get_args(Stage))
FUZZ = settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# -- the routes under test ----------------------------------------------------------------------

#: One route per operation, using every kind of source the mapping knows: plain, dotted and
#: indexed paths, ``$`` roots, required/default, templates, constants and custom field sets.
OWN_ROUTES: list[dict[str, Any]] = [
    {
        "name": "capture",
        "topics": ["fuzz.capture"],
        "operation": "capture",
        "mapping": {
            "search_by": "EmailAddress",
            "lead_update_behavior": "UpdateOnlyEmptyFields",
            "booleans": ["yes", "no"],
            "lead": {
                "EmailAddress": {"path": "email", "required": True},
                "FirstName": "first_name",
                "LastName": {"path": "last_name", "default": "Unknown"},
                "Phone": {"template": "+{country_code} {phone}"},
                "Company": "company.name",
                "mx_City": "city",
                "mx_Lifetime_Value": "lifetime_value",
                "mx_Signup_Date": "created_at",
                "mx_First_Tag": "tags.0",
                "mx_Table": "$meta.table",
                "mx_Op": "$op",
                "mx_Changed_At": "$ts_ms",
                "Source": {"const": "fuzz"},
                "mx_KYC": {"fields": {"Status": "kyc.status", "mx_CustomObject_1": "kyc.document"}},
            },
        },
    },
    {
        "name": "update",
        "topics": ["fuzz.update"],
        "operation": "update",
        "on_delete": "dead_letter",
        "mapping": {
            "post_updated_lead": True,
            "lead_id": {"path": "prospect_id", "required": True},
            "lead": {
                "Phone": "phone",
                "mx_City": "city",
                "FirstName": {"template": "{first_name} {last_name}"},
            },
        },
    },
    {
        "name": "activity",
        "topics": ["fuzz.activity"],
        "operation": "lead_and_activity",
        "mapping": {
            "lead": {"EmailAddress": "email", "mx_Score": "score"},
            "activity": {
                "event": "event_code",
                "note": {"template": "{note} ({$topic}@{$offset})"},
                "datetime": "occurred_at",
                "fields": {
                    "mx_Custom_1": "amount",
                    "mx_Custom_2": {"path": "channel", "default": "web"},
                    "mx_KYC": {"fields": {"Status": "kyc.status"}},
                },
            },
        },
    },
    {
        "name": "create",
        "topics": ["fuzz.create"],
        "operation": "create",
        "mode": "sync",
        "mapping": {"lead": {"FirstName": "first_name", "LastName": "last_name", "Phone": "phone"}},
    },
]
ACCOUNT = {"access_key": "AK", "secret_key": "SK", "api_key": "API"}
ALL_ROUTES = [*OWN_ROUTES, *route_config()]  # the demo's leads and activities routes too


def _settings(routes: list[dict[str, Any]], *, registry: bool) -> Settings:
    config: dict[str, Any] = {
        "kafka": {"bootstrap_servers": "127.0.0.1:9092"},
        "accounts": {"default": ACCOUNT},
        "routes": routes,
        "output": {"results_topic": "lsq.results", "dead_letter_topic": "lsq.dead-letters"},
    }
    if registry:
        config["schema_registry"] = {"url": "http://registry.invalid:8081"}
    return Settings.model_validate(config)


def _compiled(config: Settings, schemas: RegistrySchemas | None) -> list[Route]:
    """Every route of ``config``, compiled as the connector does (through its topic lookup)."""
    route_for = build_routes(config, schemas)
    found = [route_for(route.topics[0]) for route in config.routes]
    assert None not in found
    return [route for route in found if route is not None]


class Registry:
    """An in-memory stand-in for the :class:`SchemaRegistryClient` that
    :class:`RegistrySchemas` asks for schemas by id; ``down`` makes it fail as an unreachable
    registry does (HTTP 503), an unknown id is "not found" (404, 40403)."""

    def __init__(self, *, down: bool = False) -> None:
        self.down = down
        self._ids: dict[str, int] = {}
        self._texts: dict[int, str] = {}

    def register(self, schema: Any) -> int:
        text = json.dumps(schema)
        if text not in self._ids:
            self._ids[text] = len(self._ids) + 1
            self._texts[self._ids[text]] = text
        return self._ids[text]

    def get_schema(self, schema_id: int) -> Schema:
        if self.down:
            raise SchemaRegistryError(503, 50301, "Service Unavailable")
        if schema_id not in self._texts:
            raise SchemaRegistryError(404, 40403, "Schema not found")
        return Schema(self._texts[schema_id], "AVRO")

    def schemas(self) -> RegistrySchemas:
        return RegistrySchemas(cast("SchemaRegistryClient", self))


REGISTRY_SETTINGS = _settings(ALL_ROUTES, registry=True)
REGISTRY = Registry()
ROUTES = _compiled(REGISTRY_SETTINGS, REGISTRY.schemas())


def _source_names(spec: MappingSpec) -> set[str]:
    """The row and ``$meta`` field names a mapping reads (path segments, template holes)."""
    sources: list[FieldSource] = [*spec.lead.values()]
    if spec.lead_id is not None:
        sources.append(spec.lead_id)
    if (activity := spec.activity) is not None:
        if not isinstance(activity.event, int):
            sources.append(activity.event)
        sources += [s for s in (activity.note, activity.datetime) if s is not None]
        sources += activity.fields.values()
    paths: list[str] = []
    while sources:
        source = sources.pop()
        if isinstance(source, str):
            paths.append(source)
        elif source.fields is not None:
            sources += source.fields.values()
        elif source.path is not None:
            paths.append(source.path)
        elif source.template is not None:
            paths += [name for _, name, _, _ in string.Formatter().parse(source.template) if name]
    names: set[str] = set()
    for path in paths:
        head, *rest = path.split(".")
        if head == "$meta":  # envelope metadata: a source field, or a flattened __ field
            names |= {rest[0], f"__{rest[0]}"}
        elif not head.startswith("$"):
            names |= {segment for segment in (head, *rest) if _is_avro_name(segment)}
    return names


def _is_avro_name(text: str) -> bool:
    return text[:1] in _NAME_START and all(c in _NAME_REST for c in text)


_NAME_START = frozenset(string.ascii_letters + "_")
_NAME_REST = _NAME_START | frozenset(string.digits)

#: Field names unwrap gives a meaning to.
ENVELOPE = ("op", "__op", "__deleted", "before", "after", "source", "ts_ms")
#: Field names the routes' mappings read (``email``, ``kyc``, ``status``, ``table``, ...).
MAPPED = tuple(
    sorted(set().union(*(_source_names(route.mapping) for route in REGISTRY_SETTINGS.routes)))
)

# -- Avro schemas -------------------------------------------------------------------------------

PRIMITIVES = ("null", "boolean", "int", "long", "float", "double", "bytes", "string")
LOGICAL: tuple[dict[str, Any], ...] = (
    {"type": "int", "logicalType": "date"},
    {"type": "int", "logicalType": "time-millis"},
    {"type": "long", "logicalType": "time-micros"},
    {"type": "long", "logicalType": "timestamp-millis"},
    {"type": "long", "logicalType": "timestamp-micros"},
    {"type": "long", "logicalType": "local-timestamp-millis"},
    {"type": "string", "logicalType": "uuid"},
    {"type": "long", "connect.name": "io.debezium.time.MicroTimestamp"},
    {"type": "int", "connect.name": "io.debezium.time.Date"},
    {"type": "string", "connect.name": "io.debezium.time.ZonedTimestamp"},
)
NAMED_KINDS = ("record", "enum", "fixed")
KINDS = ("primitive", "primitive", "logical", "decimal", "enum", "fixed", "reference")
NESTED = ("record", "record", "array", "map")

identifiers = st.builds(
    str.__add__,
    st.sampled_from(sorted(_NAME_START)),
    st.text(alphabet=sorted(_NAME_REST), max_size=6),
)
field_names = st.one_of(st.sampled_from(ENVELOPE), st.sampled_from(MAPPED), identifiers)


@dataclass
class Names:
    """The named types of one schema: fresh unique names, each type's definition (for values
    and by-name references) and the records still being defined (referencing one is recursion)."""

    defined: dict[str, dict[str, Any]] = field(default_factory=dict)
    open: set[str] = field(default_factory=set)
    count: int = 0

    def new(self, kind: str) -> str:
        self.count += 1
        return f"{kind.capitalize()}{self.count}"

    def closed(self) -> list[str]:
        return sorted(set(self.defined) - self.open)


def branch_name(schema: Any) -> str:
    """How a union names this branch: what fastavro's ``(name, value)`` notation expects, and
    what Avro forbids twice in one union."""
    if isinstance(schema, str):
        return schema
    kind = schema["type"]
    return str(schema["name"]) if kind in NAMED_KINDS else str(kind)


#: Python types fastavro reads these Avro types as: the connector refuses a union with two
#: branches of one such type when one of them needs converting (it cannot tell them apart).
FAMILIES = {"int": "int", "long": "int", "float": "float", "double": "float", "fixed": "bytes"}


def family(schema: Any, names: Names) -> str:
    """The Python type a branch is read as (roughly: records by name)."""
    if isinstance(schema, str):
        if schema in names.defined:
            return family(names.defined[schema], names)
        return FAMILIES.get(schema, schema)
    kind = str(schema["type"])
    return str(schema["name"]) if kind == "record" else FAMILIES.get(kind, kind)


@st.composite
def avro_types(draw: st.DrawFn, names: Names, depth: int) -> Any:
    """Any Avro type (not a union: unions are only built where one may stand)."""
    kind = draw(st.sampled_from(KINDS + NESTED if depth > 0 else KINDS))
    if kind == "reference" and not names.closed():
        kind = "primitive"
    if kind == "primitive":
        return draw(st.sampled_from(PRIMITIVES))
    if kind == "logical":
        return dict(draw(st.sampled_from(LOGICAL)))
    if kind == "decimal":
        precision = draw(st.integers(1, 40))
        scale = draw(st.integers(0, precision))
        return {"type": "bytes", "logicalType": "decimal", "precision": precision, "scale": scale}
    if kind == "reference":
        return draw(st.sampled_from(names.closed()))
    if kind == "enum":
        name = names.new("enum")
        symbols = draw(st.lists(identifiers, min_size=1, max_size=4, unique=True))
        names.defined[name] = {"type": "enum", "name": name, "symbols": symbols}
        return names.defined[name]
    if kind == "fixed":
        name = names.new("fixed")
        names.defined[name] = {"type": "fixed", "name": name, "size": draw(st.integers(0, 16))}
        return names.defined[name]
    if kind == "array":
        return {"type": "array", "items": draw(unions_or_types(names, depth - 1))}
    if kind == "map":
        return {"type": "map", "values": draw(unions_or_types(names, depth - 1))}
    return draw(avro_records(names, depth - 1))


@st.composite
def unions(draw: st.DrawFn, names: Names, depth: int) -> list[Any]:
    """A union: with or without null, no two branches of one unnamed type; mostly no two
    branches read as one Python type either (valid Avro the connector refuses to read)."""
    branches: list[Any] = []
    strict = draw(st.integers(1, 5)) < 5
    for _ in range(draw(st.integers(1, 4))):
        known = set(names.defined)
        branch = draw(avro_types(names, depth))
        clash = family(branch, names) in {family(b, names) for b in branches}
        if branch_name(branch) not in map(branch_name, branches) and not (strict and clash):
            branches.append(branch)
        else:  # dropped: so are the named types defined inside it (an array of records)
            for name in set(names.defined) - known:
                del names.defined[name]
    if "null" not in branches and draw(st.booleans()):
        branches.insert(draw(st.sampled_from([0, len(branches)])), "null")
    return branches


def unions_or_types(names: Names, depth: int) -> st.SearchStrategy[Any]:
    return st.one_of(avro_types(names, depth), unions(names, depth))


@st.composite
def avro_records(
    draw: st.DrawFn,
    names: Names,
    depth: int,
    named: Iterable[str] = (),
    max_fields: int = 5,
) -> dict[str, Any]:
    """A record of up to ``max_fields`` fields of any type, plus fields ``named``; now and then
    it refers to itself (a nullable or an array field: recursion that values can end)."""
    name = names.new("record")
    names.open.add(name)
    wanted = [*named, *draw(st.lists(field_names, max_size=max_fields))]
    order = draw(st.permutations(list(dict.fromkeys(wanted))))
    fields = [{"name": key, "type": draw(unions_or_types(names, depth))} for key in order]
    if draw(st.integers(0, 9)) == 0:
        recursive = draw(st.sampled_from([["null", name], {"type": "array", "items": name}]))
        fields.append({"name": f"{name}_self", "type": recursive})
    names.open.discard(name)
    names.defined[name] = {"type": "record", "name": name, "fields": fields}
    return names.defined[name]


# -- valid values for a schema ------------------------------------------------------------------

INT = st.integers(-(2**31), 2**31 - 1)
LONG = st.integers(-(2**63), 2**63 - 1)
PRIMITIVE_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "null": st.none(),
    "boolean": st.booleans(),
    "int": INT,
    "long": LONG,
    "float": st.floats(width=32),
    "double": st.floats(),
    "bytes": st.binary(max_size=24),
    "string": st.text(max_size=24),
}


@st.composite
def mostly(
    draw: st.DrawFn, usual: st.SearchStrategy[Any], raw: st.SearchStrategy[Any], one_in: int = 5
) -> Any:
    """``raw`` one time in ``one_in``, else ``usual``."""
    return draw(raw if draw(st.integers(1, one_in)) == one_in else usual)


def rarely(raw: st.SearchStrategy[Any], usual: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``raw`` one time in 25: for logical values (a row has many, any may spoil the record)."""
    return mostly(usual, raw, one_in=25)


DATETIMES = st.datetimes(timezones=st.none() | st.just(UTC))
#: A logical type's value: mostly as a producer writes it (a date, a UUID, ...), now and then
#: any value of the underlying type, which may hold what the logical type cannot (a time past
#: midnight, a timestamp past year 9999, a uuid that is no UUID).
LOGICAL_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "date": rarely(INT, st.dates()),
    "time-millis": rarely(INT, st.times()),
    "time-micros": rarely(LONG, st.times()),
    "timestamp-millis": rarely(LONG, DATETIMES),
    "timestamp-micros": rarely(LONG, DATETIMES),
    "local-timestamp-millis": rarely(LONG, st.datetimes()),
    "uuid": rarely(st.text(max_size=40), st.uuids()),
    "io.debezium.time.MicroTimestamp": rarely(LONG, st.integers(-(10**16), 10**16)),
    "io.debezium.time.Date": rarely(INT, st.integers(-(10**6), 10**6)),
    "io.debezium.time.ZonedTimestamp": rarely(st.text(), DATETIMES.map(datetime.isoformat)),
}


def _decimals(precision: int, scale: int) -> st.SearchStrategy[Any]:
    digits = 10**precision - 1
    exact = st.integers(-digits, digits).map(lambda unscaled: Decimal(unscaled).scaleb(-scale))
    return rarely(st.binary(max_size=24), exact)  # or any two's-complement unscaled bytes


def values(schema: Any, named: Mapping[str, Any], depth: int = 3) -> st.SearchStrategy[Any]:
    """Valid values for ``schema``; unions in fastavro's ``(branch, value)`` notation, so a value
    is written with exactly the branch it was drawn for. ``depth`` counts the named types entered:
    once spent, nullable unions are null and arrays and maps empty, so recursive types end."""
    if isinstance(schema, str):
        if schema in PRIMITIVE_VALUES:
            return PRIMITIVE_VALUES[schema]
        return values(named[schema], named, depth - 1)
    if isinstance(schema, list):
        if depth <= 0 and "null" in schema:
            return st.just(("null", None))
        return st.one_of(
            [st.tuples(st.just(branch_name(b)), values(b, named, depth)) for b in schema]
        )
    kind, logical = schema["type"], schema.get("logicalType", schema.get("connect.name"))
    if kind == "record":
        fields = {f["name"]: values(f["type"], named, depth) for f in schema["fields"]}
        return st.fixed_dictionaries(fields)
    if kind == "enum":
        return st.sampled_from(schema["symbols"])
    if kind == "fixed":
        return st.binary(min_size=schema["size"], max_size=schema["size"])
    if kind in {"array", "map"} and depth <= 0:
        return st.just([] if kind == "array" else {})
    if kind == "array":
        return st.lists(values(schema["items"], named, depth), max_size=3)
    if kind == "map":
        inner = values(schema["values"], named, depth)
        return st.dictionaries(st.text(max_size=8), inner, max_size=3)
    if logical == "decimal":
        return _decimals(schema["precision"], schema["scale"])
    return LOGICAL_VALUES.get(logical, PRIMITIVE_VALUES[kind])


# -- records ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Example:
    """A writer schema and one value it can write."""

    schema: dict[str, Any]
    value: dict[str, Any]


@st.composite
def any_records(draw: st.DrawFn) -> Example:
    """A record of any fields; some envelope fields and some mapped fields, of any type."""
    names = Names()
    envelope = draw(st.lists(st.sampled_from(ENVELOPE), max_size=4))
    mapped = draw(st.lists(st.sampled_from(MAPPED), max_size=6))
    schema = draw(avro_records(names, 2, named=[*envelope, *mapped], max_fields=4))
    return Example(schema, draw(values(schema, names.defined)))


#: Column types of a row: mostly what databases give, now and then anything.
SCALARS: tuple[Any, ...] = (
    "string",
    "string",
    ["null", "string"],
    ["null", "long"],
    "int",
    "double",
    "boolean",
    {"type": "long", "connect.name": "io.debezium.time.MicroTimestamp"},
    {"type": "bytes", "logicalType": "decimal", "precision": 12, "scale": 2},
    {"type": "string", "logicalType": "uuid"},
)
#: Epoch milliseconds: mostly plausible, now and then any long (past year 9999: unmappable).
MILLIS = mostly(st.integers(0, 4 * 10**12), LONG)
#: A value every route renders, for each mapped column.
GOOD_ROW = dict.fromkeys(MAPPED, "42") | {
    "email": "a@example.com",
    "lead_email": "a@example.com",
    "occurred_at": "2024-01-02 03:04:05",
}
#: Text for a string column: mostly what the column's lead field takes, else anything.
TEXT = st.sampled_from(["a@example.com", "42", "2024-01-02 03:04:05", " ", ""]) | st.text()
OPS = mostly(st.sampled_from(["c", "u", "r", "d", "t", "m"]), st.text(max_size=2), one_in=10)


@st.composite
def rows(draw: st.DrawFn, names: Names, extra: tuple[dict[str, Any], ...] = ()) -> dict[str, Any]:
    """A row record named Value: most mapped columns, mostly of scalar types, a few other
    columns of any type, then ``extra`` fields."""
    fields: list[dict[str, Any]] = []
    taken = {column["name"] for column in extra}
    for column in MAPPED:
        if column in taken or draw(st.integers(1, 6)) == 1:
            continue
        column_type = draw(mostly(st.sampled_from(SCALARS), unions_or_types(names, 1), 20))
        fields.append({"name": column, "type": column_type})
    others = draw(st.lists(identifiers, max_size=2, unique=True))
    fields += [
        {"name": column, "type": draw(unions_or_types(names, 1))}
        for column in others
        if column not in MAPPED and not column.startswith("__")
    ]
    names.defined["Value"] = {"type": "record", "name": "Value", "fields": [*fields, *extra]}
    return names.defined["Value"]


@st.composite
def row_values(draw: st.DrawFn, row: dict[str, Any], names: Names) -> dict[str, Any]:
    value: dict[str, Any] = draw(values(row, names.defined))
    for column in row["fields"]:
        text = mostly(st.just(GOOD_ROW.get(column["name"], "42")), TEXT, one_in=3)
        if column["type"] == "string":
            value[column["name"]] = draw(text)
        elif column["type"] == ["null", "string"]:
            value[column["name"]] = draw(st.just(("null", None)) | text.map(_tag("string")))
    return value


def _tag(branch: str) -> Callable[[Any], tuple[str, Any]]:
    return lambda value: (branch, value)


SOURCE: dict[str, Any] = {
    "type": "record",
    "name": "Source",
    "fields": [
        {"name": "version", "type": "string"},
        {"name": "connector", "type": "string"},
        {"name": "ts_ms", "type": "long"},
        {"name": "snapshot", "type": ["null", "string"]},
        {"name": "db", "type": "string"},
        {"name": "table", "type": ["null", "string"]},
    ],
}


@st.composite
def envelopes(draw: st.DrawFn) -> Example:
    """A Debezium change event: ``before``/``after`` rows of one Value record, ``op`` mostly
    one of c/u/r/d, the ``source`` block and ``ts_ms``."""
    names = Names()
    row = draw(rows(names))
    schema = {
        "type": "record",
        "name": "Envelope",
        "fields": [
            {"name": "before", "type": ["null", row]},
            {"name": "after", "type": ["null", "Value"]},
            {"name": "source", "type": SOURCE},
            {"name": "op", "type": "string"},
            {"name": "ts_ms", "type": ["null", "long"]},
        ],
    }
    value: dict[str, Any] = draw(values(schema, names.defined | {"Source": SOURCE}))
    op = value["op"] = draw(OPS)
    value["source"]["ts_ms"] = draw(MILLIS)
    for side in ("before", "after"):
        wanted = side == "after" if op in {"c", "u", "r"} else side == "before"
        if wanted or draw(st.integers(0, 3)) == 0:
            value[side] = ("Value", draw(row_values(row, names)))
    return Example(schema, value)


DELETED = st.sampled_from([("null", None), ("string", "true"), ("string", "false")])


@st.composite
def flattened(draw: st.DrawFn) -> Example:
    """A record flattened by ExtractNewRecordState: row columns, ``__op``, ``__deleted``, ``__``
    metadata."""
    names = Names()
    meta: tuple[dict[str, Any], ...] = (
        {"name": "__op", "type": ["null", "string"]},
        {"name": "__deleted", "type": ["null", "string"]},
        {"name": "__source_ts_ms", "type": ["null", "long"]},
        {"name": "__table", "type": "string"},
    )
    schema = draw(rows(names, extra=meta))
    value = draw(row_values(schema, names))
    value["__op"] = draw(st.just(("null", None)) | OPS.map(_tag("string")))
    value["__deleted"] = draw(DELETED)
    value["__source_ts_ms"] = draw(st.just(("null", None)) | MILLIS.map(_tag("long")))
    return Example(schema, value)


# -- the property -------------------------------------------------------------------------------


def avro_body(schema: Any, value: Any) -> bytes:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, fastavro.parse_schema(schema), value)
    return out.getvalue()


def wire_record(
    example: Example, registry: Registry = REGISTRY, timestamp_ms: int | None = 1_700_000_000_000
) -> SourceRecord:
    """The example as a Kafka record value: Confluent wire format, its schema registered."""
    schema_id = registry.register(example.schema)
    header = b"\x00" + struct.pack(">I", schema_id)
    value = header + avro_body(example.schema, example.value)
    return SourceRecord("fuzz", 0, 7, b"key", value, timestamp_ms=timestamp_ms)


def prepared(route: Route, record: SourceRecord) -> Payload | Skip | DeadLetter:
    """What the route makes of the record, checked: one of the three outcomes, well formed."""
    result = route.prepare(record)
    assert isinstance(result, Payload | Skip | DeadLetter), result
    if isinstance(result, DeadLetter):
        assert result.stage in STAGES
        assert result.reason.strip()
        assert result.error_class
    elif isinstance(result, Skip):
        assert result.reason
    else:
        assert result.operation == route.operation
        json.dumps(result.body, allow_nan=False)  # what the submitter sends
    return result


#: Kafka record timestamps (the activity date-time when the change has none): none, or ms.
TIMESTAMPS = st.none() | MILLIS


def prepare_everywhere(example: Example, timestamp_ms: int | None) -> None:
    """Every route prepares the example (how far each got: ``--hypothesis-show-statistics``)."""
    record = wire_record(example, timestamp_ms=timestamp_ms)
    for route in ROUTES:
        result = prepared(route, record)
        how = result.stage if isinstance(result, DeadLetter) else type(result).__name__
        event(f"{route.name}: {how}")


@FUZZ
@given(any_records(), TIMESTAMPS)
def test_any_record_prepares_to_an_outcome(example: Example, timestamp_ms: int | None) -> None:
    """Any schema, any value, envelope and mapped fields of any type: an outcome, no exception."""
    prepare_everywhere(example, timestamp_ms)


@FUZZ
@given(envelopes(), TIMESTAMPS)
def test_any_debezium_envelope_prepares_to_an_outcome(
    example: Example, timestamp_ms: int | None
) -> None:
    """Change events with rows of any columns reach the mapping: an outcome, no exception."""
    prepare_everywhere(example, timestamp_ms)


@FUZZ
@given(flattened(), TIMESTAMPS)
def test_any_flattened_record_prepares_to_an_outcome(
    example: Example, timestamp_ms: int | None
) -> None:
    """Flattened rows (``__op``, ``__deleted``) of any columns: an outcome, no exception."""
    prepare_everywhere(example, timestamp_ms)


# -- the harness works, and regressions ---------------------------------------------------------

COLUMNS = [{"name": name, "type": "string"} for name in MAPPED]
ROW = {"type": "record", "name": "Value", "fields": COLUMNS}


def _envelope(op: Any, op_type: Any = "string") -> Example:
    """A change event whose ``after`` row renders on every route."""
    schema = {
        "type": "record",
        "name": "Envelope",
        "fields": [
            {"name": "before", "type": ["null", ROW]},
            {"name": "after", "type": ["null", "Value"]},
            {"name": "op", "type": op_type},
        ],
    }
    value = {"before": ("null", None), "after": ("Value", GOOD_ROW), "op": op}
    return Example(schema, value)


def test_a_well_formed_change_event_renders_on_every_route() -> None:
    """The harness is sound: a change event with every mapped column set becomes a payload on
    every route, so the properties above do reach the mapping."""
    record = wire_record(_envelope("u"))
    outcomes = {route.name: prepared(route, record) for route in ROUTES}
    assert all(isinstance(outcome, Payload) for outcome in outcomes.values()), outcomes
    # the strategies' column names come from the mappings: nested paths and $meta included
    assert {"email", "prospect_id", "event_code", "kyc", "status", "table", "__table"} <= {*MAPPED}


def _raw_routes(tmp_path: Path, schema: Any) -> list[Route]:
    """The routes in registry-less mode: bare Avro bodies, the writer schema from a file."""
    avsc = tmp_path / "value.avsc"
    avsc.write_text(json.dumps(schema), encoding="utf-8")
    routes = [route | {"value_schema": str(avsc)} for route in ALL_ROUTES]
    return _compiled(_settings(routes, registry=False), None)


MALFORMED_OPS = [
    pytest.param(_envelope(["c"], {"type": "array", "items": "string"}), "'op'", id="op-array"),
    pytest.param(
        Example(
            {
                "type": "record",
                "name": "Value",
                "fields": [*COLUMNS, {"name": "__op", "type": {"type": "map", "values": "int"}}],
            },
            GOOD_ROW | {"__op": {"c": 1}},
        ),
        "'__op'",
        id="__op-map",
    ),
]


@pytest.mark.parametrize(("example", "named"), MALFORMED_OPS)
def test_an_op_that_is_no_string_is_dead_lettered_at_unwrap(
    tmp_path: Path, example: Example, named: str
) -> None:
    """An ``op`` array or an ``__op`` map (no hashable change kind) is the record's dead letter
    at unwrap naming the field, on every route; not a TypeError out of prepare."""
    record = SourceRecord("fuzz", 0, 7, None, avro_body(example.schema, example.value))
    for route in _raw_routes(tmp_path, example.schema):
        why = prepared(route, record)
        assert isinstance(why, DeadLetter), (route.name, why)
        assert (why.stage, why.error_class) == ("unwrap", "UnwrapError")
        assert named in why.reason


@pytest.mark.parametrize(
    "error",
    [KeyError("EmailAddress"), TypeError("unhashable type: 'dict'")],
    ids=lambda error: type(error).__name__,
)
def test_a_bug_in_render_is_the_records_dead_letter_at_map(error: Exception) -> None:
    """An exception no one foresaw while rendering (a bug) dead-letters the record at stage
    map, naming the exception type, instead of stopping the connector."""

    def broken(_change: Change, _record: SourceRecord) -> Payload:
        raise error

    record = wire_record(_envelope("c"))
    for route in ROUTES:
        why = prepared(replace(route, render=broken), record)
        assert isinstance(why, DeadLetter)
        assert (why.stage, why.error_class) == ("map", type(error).__name__)
        assert why.reason.startswith(f"{type(error).__name__}: ")


def test_an_unknown_schema_id_is_dead_lettered_at_decode() -> None:
    """A schema id the registry does not have is that record's problem: stage decode."""
    record = wire_record(_envelope("c"), Registry())
    for route in _compiled(REGISTRY_SETTINGS, Registry().schemas()):
        why = prepared(route, record)
        assert isinstance(why, DeadLetter)
        assert (why.stage, why.error_class) == ("decode", "DecodeError")


def test_an_unreachable_registry_raises_out_of_prepare() -> None:
    """A FatalError while decoding (the registry cannot be reached: every record would fail)
    is raised, not dead-lettered: the connector stops and resumes from its last commit."""
    record = wire_record(_envelope("c"))
    for route in _compiled(REGISTRY_SETTINGS, Registry(down=True).schemas()):
        with pytest.raises(SchemaSourceError, match="schema registry failed"):
            route.prepare(record)
