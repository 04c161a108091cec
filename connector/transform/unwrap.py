"""[pure] A decoded record value → the :class:`~connector.records.Change` it describes, or a
:class:`~connector.records.Skip` when it needs no API call (SPEC §4).

Understood shapes: Debezium change envelopes (``before``/``after``/``op``/``source``), records
flattened by Debezium's ``ExtractNewRecordState`` (``__op``/``__deleted`` and other ``__`` fields),
plain rows (treated as creates) and tombstones (``None``). Anything else is an
:class:`~connector.errors.UnwrapError` saying why.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from connector.errors import UnwrapError
from connector.records import Change, Skip

if TYPE_CHECKING:
    from connector.records import ChangeOp

__all__ = ["unwrap"]

#: Envelope ops that carry an ``after`` row.
_ROW_OPS = frozenset({"c", "u", "r"})
#: Ops that need no API call, with the Skip reason.
_SKIPPED_OPS = {"t": "truncate", "m": "message"}
#: Envelope fields that are not metadata.
_ENVELOPE_DATA = frozenset({"before", "after", "op", "source"})


def unwrap(value: Any) -> Change | Skip:
    """The change a decoded value describes; ``UnwrapError`` when it is no shape known here."""
    if value is None:
        return Skip("tombstone")
    if not isinstance(value, dict):
        raise UnwrapError(f"expected a record, got {type(value).__name__}")
    if "op" in value and ("after" in value or "before" in value):
        return _envelope(value)
    if "__op" in value or "__deleted" in value:
        return _flattened(value)
    return Change("c", after=value)


def _envelope(value: dict[str, Any]) -> Change | Skip:
    """A Debezium change event: the row from ``after`` (``before`` for deletes), ``source`` and the
    other envelope fields (``ts_ms``, ``transaction``, ...) as metadata."""
    op = _op(value["op"], "op")
    if op in _SKIPPED_OPS:
        return Skip(_SKIPPED_OPS[op])
    before, after = _row(value, "before"), _row(value, "after")
    if op in _ROW_OPS and after is None:
        raise UnwrapError(f"op {op!r} without an 'after' row")
    if op not in _ROW_OPS and op != "d":
        raise UnwrapError(f"unknown op {op!r} (expected one of c, u, r, d, t, m)")
    source = _row(value, "source") or {}
    meta = _envelope_meta(value, source)
    ts_ms = _millis(source.get("ts_ms"))
    ts_ms = _millis(value.get("ts_ms")) if ts_ms is None else ts_ms
    return Change(
        cast("ChangeOp", op),
        after=None if op == "d" else after,
        before=before,
        meta=meta,
        ts_ms=ts_ms,
    )


def _envelope_meta(value: dict[str, Any], source: dict[str, Any]) -> dict[str, Any]:
    """The ``source`` fields, then the envelope's own; the source's ``ts_ms`` stays as
    ``source_ts_ms`` (the names ``ExtractNewRecordState`` gives them)."""
    meta = dict(source)
    if "ts_ms" in source:
        meta["source_ts_ms"] = source["ts_ms"]
    meta.update((key, item) for key, item in value.items() if key not in _ENVELOPE_DATA)
    return meta


def _flattened(value: dict[str, Any]) -> Change | Skip:
    """A record flattened by ``ExtractNewRecordState``: the row without its ``__`` fields, those
    fields (prefix removed) as metadata; ``__op``, else ``__deleted``, tells the change."""
    row: dict[str, Any] = {}
    meta: dict[str, Any] = {}
    for key, item in value.items():
        if key.startswith("__"):
            meta[key[2:]] = item
        else:
            row[key] = item
    op = None if meta.get("op") is None else _op(meta["op"], "__op")
    if op is None:
        deleted = meta.get("deleted")
        op = "d" if deleted == "true" or deleted is True else "c"  # 1 == True, but 1 is no flag
    elif op in _SKIPPED_OPS:
        return Skip(_SKIPPED_OPS[op])
    elif op not in _ROW_OPS and op != "d":
        raise UnwrapError(f"unknown __op {op!r} (expected one of c, u, r, d)")
    ts_ms = _millis(meta.get("source_ts_ms"))
    ts_ms = _millis(meta.get("ts_ms")) if ts_ms is None else ts_ms
    if op == "d":
        return Change("d", after=None, before=row, meta=meta, ts_ms=ts_ms)
    return Change(cast("ChangeOp", op), after=row, meta=meta, ts_ms=ts_ms)


def _op(op: Any, name: str) -> str:
    """The change kind, when it is text at all (a map or array there is no envelope known here)."""
    if not isinstance(op, str):
        raise UnwrapError(f"{name!r} is {type(op).__name__}, expected a string")
    return op


def _row(value: dict[str, Any], key: str) -> dict[str, Any] | None:
    """``value[key]`` when it is a record or missing/null; ``UnwrapError`` otherwise."""
    row = value.get(key)
    if row is None or isinstance(row, dict):
        return row
    raise UnwrapError(f"'{key}' is {type(row).__name__}, expected a record")


def _millis(value: Any) -> int | None:
    """An epoch-milliseconds field, when it holds one (an int, not a bool)."""
    return value if type(value) is int else None
