"""[I/O] Where writer schemas come from: a Confluent Schema Registry (cached per id) or ``.avsc``
files for users without one. Each source implements
:class:`~connector.transform.decode.WriterSchemas`.

An id the source does not know is a :class:`~connector.errors.DecodeError` (the record goes to the
dead-letter topic); a registry that cannot be reached is a
:class:`~connector.errors.SchemaSourceError` (retry, then stop). Messages never carry credentials:
URL user info is redacted and chained client exceptions are dropped.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, TypeVar

from confluent_kafka.schema_registry import SchemaRegistryClient, SchemaRegistryError

from connector.errors import ConfigError, DecodeError, SchemaSourceError
from connector.transform.decode import WriterSchema, add_named_types, writer_schema

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from pathlib import Path

    from confluent_kafka.schema_registry import SchemaReference
    from fastavro.types import NamedSchemas

__all__ = ["FileSchemas", "RegistrySchemas", "load_avsc", "registry_client"]

#: The registry's "not found" error codes: subject, version, schema.
_NOT_FOUND = frozenset({40401, 40402, 40403})
_HTTP_NOT_FOUND = 404
_AUTH_FAILED = frozenset({401, 403})
_USER_INFO = re.compile(r"(?<=://)[^/@\s]+@")
_T = TypeVar("_T")


def registry_client(
    url: str, basic_auth_user_info: str | None, *, timeout_s: float = 10.0, max_retries: int = 3
) -> SchemaRegistryClient:
    """A Schema Registry client for ``url`` (comma-separated for several) with optional basic auth
    (``user:password``); the caller owns and closes it. Bad settings → ``ConfigError``."""
    config: dict[str, Any] = {"url": url, "timeout": timeout_s, "max.retries": max_retries}
    if basic_auth_user_info is not None:
        config["basic.auth.user.info"] = basic_auth_user_info
    try:
        return SchemaRegistryClient(config)
    except (ValueError, TypeError) as exc:
        secrets = [basic_auth_user_info] if basic_auth_user_info else []
        raise ConfigError(f"schema registry: {_redact(str(exc), secrets)}") from None


class RegistrySchemas:
    """Writer schemas fetched from a Schema Registry by id, prepared once and cached."""

    def __init__(self, client: SchemaRegistryClient) -> None:
        self._client = client
        self._cache: dict[int, WriterSchema | DecodeError] = {}

    def get(self, schema_id: int) -> WriterSchema:
        """The writer schema with this id (:class:`~connector.transform.decode.WriterSchemas`)."""
        found = self._cache.get(schema_id)
        if found is None:
            found = self._cache[schema_id] = self._fetch(schema_id)
        if isinstance(found, DecodeError):
            raise DecodeError(found.reason)
        return found

    def _fetch(self, schema_id: int) -> WriterSchema | DecodeError:
        """The prepared schema, or the DecodeError saying why this id's schema cannot be used
        (cached too: what an id names never changes). Unknown ids raise and are not cached."""
        missing = f"schema id {schema_id} is not in the schema registry"
        schema = _call(missing, schema_id, self._client.get_schema, schema_id)
        if schema.schema_type not in {None, "AVRO"}:
            return DecodeError(
                f"schema id {schema_id} is a {schema.schema_type} schema; only Avro is supported"
            )
        try:
            named = self._referenced(schema.references or [], schema_id, set())
            return writer_schema(schema_id, schema.schema_str or "", named)
        except ValueError as exc:
            return DecodeError(f"schema id {schema_id} cannot be used: {exc}")

    def _referenced(
        self, references: Sequence[SchemaReference], schema_id: int, seen: set[tuple[str, int]]
    ) -> NamedSchemas:
        """The named types of a schema's references (and theirs), parsed in dependency order."""
        named: NamedSchemas = {}
        for reference in references:
            subject, version = str(reference.subject), int(reference.version or 0)
            if (subject, version) in seen:
                continue
            seen.add((subject, version))
            missing = f"schema id {schema_id} references {subject} v{version}, not in the registry"
            found = _call(missing, schema_id, self._client.get_version, subject, version)
            named |= self._referenced(found.schema.references or [], schema_id, seen)
            add_named_types(found.schema.schema_str or "", named)
        return named


class FileSchemas:
    """Writer schemas for wire-format values from ``.avsc`` files, by schema id, all loaded (and
    checked) when this is built."""

    def __init__(self, files: Mapping[int, Path]) -> None:
        self._schemas = {schema_id: load_avsc(path, schema_id) for schema_id, path in files.items()}

    def get(self, schema_id: int) -> WriterSchema:
        """The writer schema with this id (:class:`~connector.transform.decode.WriterSchemas`)."""
        try:
            return self._schemas[schema_id]
        except KeyError:
            known = ", ".join(map(str, sorted(self._schemas))) or "none"
            message = f"schema id {schema_id} is not among the schema files (ids: {known})"
            raise DecodeError(message) from None


def load_avsc(path: Path, schema_id: int | None = None) -> WriterSchema:
    """One writer schema from an ``.avsc`` file; ``ConfigError`` naming the file and the problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"schema file {path}: cannot read it ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"schema file {path}: not UTF-8 text") from None
    try:
        return writer_schema(schema_id, text)
    except ValueError as exc:
        raise ConfigError(f"schema file {path}: {exc}") from None


def _call(missing: str, schema_id: int, request: Callable[..., _T], *args: Any) -> _T:
    """Run a registry request: "not found" (404 with a 4040x code) → ``DecodeError(missing)``;
    other failures → ``SchemaSourceError`` (the client's own retries are spent by then). Chained
    exceptions are dropped: they may hold the registry URL."""
    try:
        return request(*args)
    except SchemaRegistryError as exc:
        status, code = exc.http_status_code, exc.error_code
        if status == _HTTP_NOT_FOUND and code in _NOT_FOUND:
            raise DecodeError(missing) from None
        hint = " (check the registry credentials)" if status in _AUTH_FAILED else ""
        text = _redact(f"HTTP {status}, error code {code}: {exc.error_message}")
        message = f"schema registry failed fetching schema id {schema_id}: {text}{hint}"
        raise SchemaSourceError(message) from None
    except Exception as exc:  # noqa: BLE001 - httpx transport errors, whatever the client raises
        text = _redact(f"{type(exc).__name__}: {exc}")
        message = f"schema registry unreachable fetching schema id {schema_id}: {text}"
        raise SchemaSourceError(message) from None


def _redact(text: str, secrets: Sequence[str] = ()) -> str:
    """``text`` without URL user info (``https://user:pass@host`` → ``https://***@host``)."""
    for secret in secrets:
        text = text.replace(secret, "***")
    return _USER_INFO.sub("***@", text)
