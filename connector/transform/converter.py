"""[pure] A writer schema → one converter compiled per schema, touching only the fields whose
logical types need it (nested records, arrays, maps and union branches included); each
conversion comes from :mod:`connector.transform.logical`. Converters mutate the fresh containers
fastavro returns instead of copying them.
"""

from __future__ import annotations

from datetime import date, datetime, time
from functools import partial
from typing import TYPE_CHECKING, Any
from uuid import UUID

from fastavro.read import LOGICAL_READERS

from connector.transform.logical import (
    Unconvertible,
    identity,
    leaf_converter,
    logical_record_converter,
)

if TYPE_CHECKING:
    from fastavro.types import NamedSchemas, Schema

    from connector.transform.logical import Convert

__all__ = ["compile_converter"]

#: The Python type fastavro returns for each Avro type, then for the logical types it converts.
_PY_TYPES: dict[str, type] = {"null": type(None), "boolean": bool, "int": int, "long": int}
_PY_TYPES |= {"float": float, "double": float, "bytes": bytes, "string": str, "fixed": bytes}
_PY_TYPES |= {"enum": str, "array": list, "map": dict, "record": dict, "error": dict}
_LOGICAL_PY_TYPES: dict[str, type] = {"date": date, "time-millis": time, "time-micros": time}
_LOGICAL_PY_TYPES |= {"uuid": UUID} | dict.fromkeys(
    ["timestamp-millis", "timestamp-micros", "local-timestamp-millis", "local-timestamp-micros"],
    datetime,
)


def _record_converter(fields: tuple[tuple[str, Convert], ...]) -> Convert:
    def record(value: dict[str, Any]) -> dict[str, Any]:
        for name, convert in fields:
            try:
                value[name] = convert(value[name])
            except Unconvertible as exc:
                exc.steps.append(f".{name}")
                raise
        return value

    return record


def _array_converter(convert: Convert) -> Convert:
    def array(items: list[Any]) -> list[Any]:
        for index, item in enumerate(items):
            try:
                items[index] = convert(item)
            except Unconvertible as exc:
                exc.steps.append(f"[{index}]")
                raise
        return items

    return array


def _map_converter(convert: Convert) -> Convert:
    def mapping(values: dict[str, Any]) -> dict[str, Any]:
        for key, item in values.items():
            try:
                values[key] = convert(item)
            except Unconvertible as exc:
                exc.steps.append(f"[{key}]")
                raise
        return values

    return mapping


def _union_converter(table: dict[type, Convert]) -> Convert:
    """Picks the branch by the Python type fastavro returned (exactly: a ``bool`` is no ``int``)."""
    if len(table) == 1:
        [(branch_type, convert)] = table.items()
        return lambda value: convert(value) if type(value) is branch_type else value
    return lambda value: table.get(type(value), identity)(value)


def compile_converter(schema: Schema, named: NamedSchemas) -> tuple[Convert | None, bool]:
    """The converter for a parsed schema (``None`` when nothing needs converting) and whether the
    schema is recursive."""
    compiler = _Compiler(named)
    return compiler.node(schema, ""), compiler.recursive


def _is_leaf(kind: Any, named: NamedSchemas) -> bool:
    """Whether a schema's ``type`` is a type name (not a nested schema or a named reference)."""
    return isinstance(kind, str) and kind not in named


class _Compiler:
    """Walks a parsed schema once; named types are compiled once, recursion through a lazy link."""

    def __init__(self, named: NamedSchemas) -> None:
        self._named = named
        self._done: dict[str, Convert | None] = {}
        self._active: set[str] = set()
        self.recursive = False

    def node(self, schema: Any, path: str) -> Convert | None:
        if isinstance(schema, list):
            return self._union(schema, path)
        if isinstance(schema, str):
            return self._named_type(schema, path) if schema in self._named else None
        kind = schema["type"]
        if not isinstance(kind, str) or kind in self._named:
            return self.node(kind, path)
        if kind in {"record", "error", "fixed", "enum"}:
            return self._named_type(schema["name"], path, schema)
        if kind == "array":
            return self._array(schema["items"], path)
        if kind == "map":
            convert = self.node(schema["values"], f"{path}[]")
            return None if convert is None else _map_converter(convert)
        return leaf_converter(schema)

    def _named_type(self, name: str, path: str, schema: Any = None) -> Convert | None:
        if name in self._done:
            return self._done[name]
        if name in self._active:
            self.recursive = True
            return partial(self._late, name)
        self._active.add(name)
        schema = self._named[name] if schema is None else schema
        is_record = schema["type"] in {"record", "error"}
        self._done[name] = self._record(schema, path) if is_record else leaf_converter(schema)
        self._active.discard(name)
        return self._done[name]

    def _late(self, name: str, value: Any) -> Any:
        """A recursive type's converter, looked up when called (it was unfinished when linked)."""
        return (self._done[name] or identity)(value)

    def _record(self, schema: dict[str, Any], path: str) -> Convert | None:
        if (whole := logical_record_converter(schema)) is not None:
            return whole
        fields = []
        for field in schema["fields"]:
            convert = self.node(field["type"], f"{path}.{field['name']}")
            if convert is not None:
                fields.append((field["name"], convert))
        return _record_converter(tuple(fields)) if fields else None

    def _array(self, items: Any, path: str) -> Convert | None:
        if self._zero_width(items, frozenset()):
            where = path.lstrip(".") or "the top-level array"
            raise ValueError(
                f"{where} holds items that take no bytes (null or empty): a corrupt block count "
                "would make reading it loop without end"
            )
        convert = self.node(items, f"{path}[]")
        return None if convert is None else _array_converter(convert)

    def _union(self, branches: list[Any], path: str) -> Convert | None:
        groups: dict[type, list[tuple[Any, Convert | None]]] = {}
        for branch in branches:
            convert = self.node(branch, path)
            groups.setdefault(self._python_type(branch), []).append((branch, convert))
        table = {
            branch_type: self._dispatch(group, path)
            for branch_type, group in groups.items()
            if any(convert is not None for _, convert in group)
        }
        return _union_converter(table) if table else None

    def _dispatch(self, group: list[tuple[Any, Convert | None]], path: str) -> Convert:
        """One converter for union branches fastavro returns as the same Python type: records
        told apart by their field names."""
        if len(group) == 1:
            return group[0][1] or identity
        by_fields: dict[frozenset[str], Convert] = {}
        for branch, convert in group:
            fields = self._field_names(branch)
            if fields is None or fields in by_fields:
                where = path.lstrip(".") or "the top-level union"
                raise ValueError(f"union {where}: cannot tell apart branches that need converting")
            by_fields[fields] = convert or identity
        return lambda value: by_fields.get(frozenset(value), identity)(value)

    def _resolve(self, schema: Any) -> Any:
        """A schema with named references and ``{"type": <schema>}`` wrappers followed."""
        while True:
            if isinstance(schema, str) and schema in self._named:
                schema = self._named[schema]
            elif isinstance(schema, dict) and not _is_leaf(schema["type"], self._named):
                schema = schema["type"]
            else:
                return schema

    def _python_type(self, schema: Any) -> type:
        schema = self._resolve(schema)
        if isinstance(schema, str):
            return _PY_TYPES.get(schema, object)
        if isinstance(schema, list):
            return object  # a union in a union is not valid Avro
        kind, logical = schema["type"], schema.get("logicalType")
        if f"{kind}-{logical}" in LOGICAL_READERS:
            return _LOGICAL_PY_TYPES.get(logical, _PY_TYPES.get(kind, object))
        return _PY_TYPES.get(kind, object)

    def _field_names(self, schema: Any) -> frozenset[str] | None:
        schema = self._resolve(schema)
        if isinstance(schema, dict) and schema["type"] in {"record", "error"}:
            return frozenset(field["name"] for field in schema["fields"])
        return None

    def _zero_width(self, schema: Any, seen: frozenset[str]) -> bool:
        """Whether values of this type are encoded in no bytes at all (``seen``: the records
        being looked into, so recursion ends; a record inside itself is not zero-width)."""
        schema = self._resolve(schema)
        if isinstance(schema, str):
            return schema == "null"
        if isinstance(schema, list):
            return False  # the branch index takes a byte
        kind = schema["type"]
        if kind == "fixed":
            return bool(schema["size"] == 0)
        if kind in {"record", "error"}:
            if schema["name"] in seen:
                return False
            seen |= {schema["name"]}
            return all(self._zero_width(field["type"], seen) for field in schema["fields"])
        return bool(kind == "null")
