"""An in-memory Confluent Schema Registry: the subset of its REST API that confluent-kafka's
``SchemaRegistryClient``, ``AvroSerializer`` and ``AvroDeserializer`` use (register, lookup,
schemas by id, subjects, versions, latest, config), so the real client and serializers run in
tests and the demo. A new Avro version of a subject must pass the subject's compatibility level
against the earlier versions, checked with Apache Avro's reader/writer compatibility checker (the
one Karapace uses): BACKWARD (the default) means the new schema reads data of the latest one."""

from __future__ import annotations

import argparse
import base64
import json
import sys
from dataclasses import dataclass, field
from typing import Any

import avro.schema
import fastavro
from aiohttp import web
from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType

from lsq_stack.serve import ServerThread, run_foreground

__all__ = ["RegistryState", "SchemaRegistryServer", "build_app", "main"]

_JSON = "application/vnd.schemaregistry.v1+json"
_COMPATIBILITY = {"NONE", "BACKWARD", "BACKWARD_TRANSITIVE", "FORWARD", "FORWARD_TRANSITIVE"}
_COMPATIBILITY |= {"FULL", "FULL_TRANSITIVE"}


class RegistryError(Exception):
    """An error answer in the registry's format: HTTP status + error_code + message."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True, slots=True)
class StoredSchema:
    schema: str
    schema_type: str
    references: tuple[tuple[str, str, int], ...]  # (name, subject, version)

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"schema": self.schema}
        if self.schema_type != "AVRO":
            out["schemaType"] = self.schema_type
        if self.references:
            refs = [{"name": n, "subject": s, "version": v} for n, s, v in self.references]
            out["references"] = refs
        return out


@dataclass
class RegistryState:
    """Schemas by id (one id per distinct schema), subjects as ordered lists of ids."""

    schemas: dict[int, StoredSchema] = field(default_factory=dict)
    subjects: dict[str, list[int]] = field(default_factory=dict)
    compatibility: str = "BACKWARD"
    subject_compatibility: dict[str, str] = field(default_factory=dict)

    def register(self, subject: str, body: dict[str, Any]) -> dict[str, Any]:
        stored = _parse(body)
        versions = self.subjects.get(subject, [])
        known = next((i for i in versions if self.schemas[i] == stored), None)
        if known is None:
            level = self.subject_compatibility.get(subject, self.compatibility)
            earlier = [self.schemas[i] for i in versions]
            if problem := incompatibility(stored, earlier, level):
                what = "Schema being registered is incompatible with an earlier schema"
                raise RegistryError(409, 409, f'{what} for subject "{subject}": {problem}')
        versions = self.subjects.setdefault(subject, [])
        schema_id = self._id_of(stored) if known is None else known
        if schema_id not in versions:
            versions.append(schema_id)
        return self._version_json(subject, versions.index(schema_id) + 1)

    def lookup(self, subject: str, body: dict[str, Any]) -> dict[str, Any]:
        versions = self.subject_ids(subject)
        stored = _parse(body)
        for index, schema_id in enumerate(versions):
            if self.schemas[schema_id] == stored:
                return self._version_json(subject, index + 1)
        raise RegistryError(404, 40403, "Schema not found")

    def by_id(self, schema_id: int) -> StoredSchema:
        if schema_id not in self.schemas:
            raise RegistryError(404, 40403, f"Schema {schema_id} not found")
        return self.schemas[schema_id]

    def version(self, subject: str, version: str) -> dict[str, Any]:
        versions = self.subject_ids(subject)
        number = len(versions) if version in {"latest", "-1"} else _int(version, 42202, "version")
        if not 1 <= number <= len(versions):
            raise RegistryError(404, 40402, f"Version {version} not found.")
        return self._version_json(subject, number)

    def versions_of(self, schema_id: int) -> list[dict[str, Any]]:
        self.by_id(schema_id)
        return [
            {"subject": subject, "version": ids.index(schema_id) + 1}
            for subject, ids in sorted(self.subjects.items())
            if schema_id in ids
        ]

    def delete_subject(self, subject: str) -> list[int]:
        versions = self.subject_ids(subject)
        del self.subjects[subject]
        return list(range(1, len(versions) + 1))

    def subject_ids(self, subject: str) -> list[int]:
        if subject not in self.subjects:
            raise RegistryError(404, 40401, f"Subject '{subject}' not found.")
        return self.subjects[subject]

    def _id_of(self, stored: StoredSchema) -> int:
        for schema_id, known in self.schemas.items():
            if known == stored:
                return schema_id
        schema_id = len(self.schemas) + 1
        self.schemas[schema_id] = stored
        return schema_id

    def _version_json(self, subject: str, version: int) -> dict[str, Any]:
        schema_id = self.subjects[subject][version - 1]
        out = {"subject": subject, "version": version, "id": schema_id}
        return out | self.schemas[schema_id].as_json()


def incompatibility(new: StoredSchema, earlier: list[StoredSchema], level: str) -> str | None:
    """Why ``new`` breaks ``level`` against the ``earlier`` versions (oldest first), or ``None``.
    Only Avro schemas without references are checked (others pass, as with level NONE)."""
    if level == "NONE" or not earlier or new.schema_type != "AVRO" or new.references:
        return None
    others = earlier if level.endswith("_TRANSITIVE") else earlier[-1:]
    checker = ReaderWriterCompatibilityChecker()  # type: ignore[no-untyped-call]
    for old in others:
        if old.schema_type != "AVRO" or old.references:
            continue
        pairs = []
        if level.startswith(("BACKWARD", "FULL")):
            pairs.append((new, old))  # the new schema reads what the old one wrote
        if level.startswith(("FORWARD", "FULL")):
            pairs.append((old, new))
        for reader, writer in pairs:
            result = checker.get_compatibility(
                reader=avro.schema.parse(reader.schema), writer=avro.schema.parse(writer.schema)
            )
            if result.compatibility is not SchemaCompatibilityType.compatible:
                return "; ".join(result.messages) or "incompatible"
    return None


def _int(text: str, code: int, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise RegistryError(422, code, f"The specified {what} '{text}' is not valid.") from None


def _parse(body: dict[str, Any]) -> StoredSchema:
    text, schema_type = body.get("schema"), body.get("schemaType", "AVRO")
    if not isinstance(text, str) or not isinstance(schema_type, str):
        raise RegistryError(422, 42201, "Invalid schema: 'schema' must be a string")
    refs = tuple(
        (str(r.get("name")), str(r.get("subject")), int(r.get("version", 0)))
        for r in body.get("references") or []
    )
    if schema_type == "AVRO":
        try:
            parsed = json.loads(text)
            fastavro.parse_schema(parsed)
        except (ValueError, TypeError, fastavro.schema.SchemaParseException) as exc:
            if not refs:  # with references, named types live in other subjects
                raise RegistryError(422, 42201, f"Invalid schema: {exc}") from exc
        else:
            text = json.dumps(parsed, separators=(",", ":"))
    return StoredSchema(text, schema_type, refs)


STATE = web.AppKey("state", RegistryState)


def _reply(data: object, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, content_type=_JSON)


@web.middleware
async def _errors(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        response: web.StreamResponse = await handler(request)
    except RegistryError as exc:
        return _reply({"error_code": exc.code, "message": exc.message}, exc.status)
    except json.JSONDecodeError as exc:
        return _reply({"error_code": 400, "message": f"Malformed JSON: {exc}"}, 400)
    return response


def _basic_auth(credentials: str | None) -> Any:
    expected = "Basic " + base64.b64encode(credentials.encode()).decode() if credentials else None

    @web.middleware
    async def check(request: web.Request, handler: Any) -> web.StreamResponse:
        if expected is not None and request.headers.get("Authorization") != expected:
            raise RegistryError(401, 401, "Unauthorized")
        response: web.StreamResponse = await handler(request)
        return response

    return check


def build_app(basic_auth: str | None = None) -> web.Application:
    """The registry as an aiohttp app; ``basic_auth`` is ``user:password`` to require it."""
    app = web.Application(middlewares=[_errors, _basic_auth(basic_auth)])
    app[STATE] = RegistryState()
    routes = web.RouteTableDef()

    def state(request: web.Request) -> RegistryState:
        return request.app[STATE]

    @routes.post("/subjects/{subject}/versions")
    async def register(request: web.Request) -> web.Response:
        return _reply(state(request).register(request.match_info["subject"], await request.json()))

    @routes.post("/subjects/{subject}")
    async def lookup(request: web.Request) -> web.Response:
        return _reply(state(request).lookup(request.match_info["subject"], await request.json()))

    @routes.get("/schemas/ids/{id}")
    async def by_id(request: web.Request) -> web.Response:
        schema_id = _int(request.match_info["id"], 42202, "id")
        return _reply(state(request).by_id(schema_id).as_json())

    @routes.get("/schemas/ids/{id}/versions")
    async def idsubject_ids(request: web.Request) -> web.Response:
        return _reply(state(request).versions_of(_int(request.match_info["id"], 42202, "id")))

    @routes.get("/schemas/ids/{id}/subjects")
    async def id_subjects(request: web.Request) -> web.Response:
        found = state(request).versions_of(_int(request.match_info["id"], 42202, "id"))
        return _reply([entry["subject"] for entry in found])

    @routes.get("/schemas/types")
    async def types(_: web.Request) -> web.Response:
        return _reply(["AVRO", "JSON", "PROTOBUF"])

    @routes.get("/subjects")
    async def subjects(request: web.Request) -> web.Response:
        return _reply(sorted(state(request).subjects))

    @routes.get("/subjects/{subject}/versions")
    async def versions(request: web.Request) -> web.Response:
        count = len(state(request).subject_ids(request.match_info["subject"]))
        return _reply(list(range(1, count + 1)))

    @routes.get("/subjects/{subject}/versions/{version}")
    async def version(request: web.Request) -> web.Response:
        info = request.match_info
        return _reply(state(request).version(info["subject"], info["version"]))

    @routes.delete("/subjects/{subject}")
    async def delete(request: web.Request) -> web.Response:
        return _reply(state(request).delete_subject(request.match_info["subject"]))

    @routes.get("/config")
    async def get_config(request: web.Request) -> web.Response:
        return _reply({"compatibilityLevel": state(request).compatibility})

    @routes.get("/config/{subject}")
    async def get_subject_config(request: web.Request) -> web.Response:
        registry, subject = state(request), request.match_info["subject"]
        if subject in registry.subject_compatibility:
            return _reply({"compatibilityLevel": registry.subject_compatibility[subject]})
        if request.query.get("defaultToGlobal") == "true":
            return _reply({"compatibilityLevel": registry.compatibility})
        message = f"Subject '{subject}' does not have subject-level compatibility configured"
        raise RegistryError(404, 40408, message)

    @routes.put("/config")
    @routes.put("/config/{subject}")
    async def put_config(request: web.Request) -> web.Response:
        level = str((await request.json()).get("compatibility", "")).upper()
        if level not in _COMPATIBILITY:
            raise RegistryError(422, 42203, f"Invalid compatibility level: {level!r}")
        registry, subject = state(request), request.match_info.get("subject")
        if subject is None:
            registry.compatibility = level
        else:
            registry.subject_compatibility[subject] = level
        return _reply({"compatibility": level})

    app.add_routes(routes)
    return app


class SchemaRegistryServer(ServerThread):
    """The registry in a background thread of this process; a context manager with ``.url``."""

    def __init__(self, basic_auth: str | None = None, port: int = 0) -> None:
        super().__init__(build_app(basic_auth), port=port)


def main(argv: list[str] | None = None) -> int:
    """``python -m lsq_stack.registry``: serve until SIGINT/SIGTERM."""
    parser = argparse.ArgumentParser(
        prog="python -m lsq_stack.registry",
        description="In-memory Confluent Schema Registry (REST subset) on 127.0.0.1.",
    )
    parser.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    parser.add_argument("--basic-auth", metavar="USER:PASSWORD", help="require HTTP basic auth")
    args = parser.parse_args(argv)

    def announce(url: str) -> None:
        sys.stdout.write(f"schema registry listening on {url}\n")
        sys.stdout.flush()

    run_foreground(build_app(args.basic_auth), "127.0.0.1", args.port, announce)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
