"""Unwrapping decoded values: Debezium envelopes, flattened records, plain rows, tombstones."""

from __future__ import annotations

from typing import Any

import pytest

from connector.errors import UnwrapError
from connector.records import Change, Skip
from connector.transform.unwrap import unwrap

SOURCE = {
    "version": "2.7.0.Final",
    "connector": "postgresql",
    "name": "crm",
    "ts_ms": 1_700_000_000_000,
    "db": "crm",
    "schema": "public",
    "table": "leads",
    "lsn": 42,
}
BEFORE = {"id": 1, "email": "old@example.com"}
AFTER = {"id": 1, "email": "new@example.com"}


def event(op: str, **fields: Any) -> dict[str, Any]:
    """A Debezium change event with ``op``; before/after null unless given in ``fields``."""
    envelope = {
        "before": None,
        "after": None,
        "source": SOURCE,
        "op": op,
        "ts_ms": 1_700_000_000_500,
    }
    return envelope | fields


# Tombstones and plain rows ----------


def test_tombstone_is_skipped() -> None:
    """A null value (tombstone) needs no API call."""
    assert unwrap(None) == Skip("tombstone")


def test_plain_row_is_a_create_of_that_row() -> None:
    """A record that is no envelope is the row itself, as a create, with no metadata."""
    row = {"id": 5, "email": "a@example.com", "op": "not an envelope without before/after"}
    change = unwrap(row)
    assert change == Change("c", after=row)
    assert isinstance(change, Change)
    assert change.after is row
    assert change.row is row


@pytest.mark.parametrize(
    ("value", "kind"), [("text", "str"), (3, "int"), ([1], "list"), (b"x", "bytes")]
)
def test_a_value_that_is_no_record_is_an_unwrap_error(value: Any, kind: str) -> None:
    """Top-level strings, numbers, lists are not rows."""
    with pytest.raises(UnwrapError) as raised:
        unwrap(value)
    assert raised.value.reason == f"expected a record, got {kind}"
    assert raised.value.stage == "unwrap"


# Debezium envelopes ----------


@pytest.mark.parametrize("op", ["c", "r"])
def test_create_and_snapshot_read_carry_the_after_row(op: str) -> None:
    """c and r: the row is ``after``, not copied."""
    value = event(op, after=AFTER)
    change = unwrap(value)
    assert isinstance(change, Change)
    assert (change.op, change.after, change.before) == (op, AFTER, None)
    assert change.after is value["after"]


def test_update_carries_after_and_before() -> None:
    """u: ``after`` is the row, ``before`` is kept when the source provides it."""
    change = unwrap(event("u", before=BEFORE, after=AFTER))
    assert isinstance(change, Change)
    assert (change.op, change.after, change.before, change.ts_ms) == (
        "u",
        AFTER,
        BEFORE,
        SOURCE["ts_ms"],
    )


def test_delete_has_no_after_and_keeps_before() -> None:
    """d: after is None, before is the deleted row (the row a delete is about)."""
    change = unwrap(event("d", before=BEFORE))
    assert isinstance(change, Change)
    assert (change.op, change.after, change.before, change.row) == ("d", None, BEFORE, BEFORE)


def test_delete_without_before_is_still_a_delete() -> None:
    """d with a null before (no REPLICA IDENTITY FULL) is a delete of an unknown row."""
    change = unwrap(event("d"))
    assert isinstance(change, Change)
    assert (change.op, change.after, change.before, change.row) == ("d", None, None, {})


@pytest.mark.parametrize(("op", "reason"), [("t", "truncate"), ("m", "message")])
def test_truncate_and_message_events_are_skipped(op: str, reason: str) -> None:
    """t (truncate) and m (logical decoding message) need no API call."""
    assert unwrap(event(op)) == Skip(reason)


@pytest.mark.parametrize("op", ["c", "u", "r"])
def test_row_op_without_after_is_an_unwrap_error(op: str) -> None:
    """c/u/r must carry an ``after`` row."""
    with pytest.raises(UnwrapError) as raised:
        unwrap(event(op, before=BEFORE))
    assert raised.value.reason == f"op '{op}' without an 'after' row"


def test_unknown_op_is_an_unwrap_error() -> None:
    """An op outside c/u/r/d/t/m is refused, naming it."""
    with pytest.raises(UnwrapError) as raised:
        unwrap(event("x", after=AFTER))
    assert raised.value.reason == "unknown op 'x' (expected one of c, u, r, d, t, m)"


@pytest.mark.parametrize("key", ["after", "before", "source"])
def test_non_record_row_or_source_is_an_unwrap_error(key: str) -> None:
    """before/after/source must be records (or null)."""
    with pytest.raises(UnwrapError) as raised:
        unwrap(event("u", after=AFTER) | {key: "oops"})
    assert raised.value.reason == f"'{key}' is str, expected a record"


def test_envelope_meta_is_source_fields_plus_envelope_fields() -> None:
    """meta: the source block, envelope ts_ms and transaction; source.ts_ms kept as source_ts_ms."""
    transaction = {"id": "tx-9", "total_order": 2, "data_collection_order": 1}
    change = unwrap(event("c", after=AFTER, transaction=transaction))
    assert isinstance(change, Change)
    assert change.meta == {
        **SOURCE,
        "source_ts_ms": 1_700_000_000_000,
        "ts_ms": 1_700_000_000_500,
        "transaction": transaction,
    }


def test_change_time_is_the_source_time_else_the_envelope_time() -> None:
    """ts_ms: source.ts_ms (when it happened in the database), else the envelope's ts_ms."""
    with_source = unwrap(event("c", after=AFTER))
    without_source = unwrap(event("c", after=AFTER, source=None))
    no_times = unwrap({"op": "c", "after": AFTER})
    assert isinstance(with_source, Change)
    assert isinstance(without_source, Change)
    assert isinstance(no_times, Change)
    assert with_source.ts_ms == 1_700_000_000_000
    assert without_source.ts_ms == 1_700_000_000_500
    assert without_source.meta == {"ts_ms": 1_700_000_000_500}
    assert (no_times.ts_ms, no_times.meta) == (None, {})


# Flattened records (ExtractNewRecordState) --------------------------------------------------------


def test_flattened_record_splits_row_and_meta() -> None:
    """__ fields become meta (prefix removed); the rest is the row; __op gives the op."""
    value = {**AFTER, "__op": "u", "__table": "leads", "__source_ts_ms": 10, "__ts_ms": 20}
    assert unwrap(value) == Change(
        "u",
        after=AFTER,
        meta={"op": "u", "table": "leads", "source_ts_ms": 10, "ts_ms": 20},
        ts_ms=10,
    )


@pytest.mark.parametrize("op", ["c", "u", "r"])
def test_flattened_row_ops(op: str) -> None:
    """__op c/u/r: the row is ``after``."""
    change = unwrap({**AFTER, "__op": op})
    assert isinstance(change, Change)
    assert (change.op, change.after, change.before) == (op, AFTER, None)


@pytest.mark.parametrize(
    "markers",
    [{"__op": "d"}, {"__deleted": "true"}, {"__deleted": True}, {"__op": "d", "__deleted": "true"}],
)
def test_flattened_delete_puts_the_row_in_before(markers: dict[str, Any]) -> None:
    """__op d, or __deleted true without __op: a delete whose row is ``before``."""
    change = unwrap({**BEFORE, **markers})
    assert isinstance(change, Change)
    assert (change.op, change.after, change.before, change.row) == ("d", None, BEFORE, BEFORE)


def test_flattened_not_deleted_without_op_is_a_create() -> None:
    """__deleted false (rewrite mode) without __op: a create of the row."""
    change = unwrap({**AFTER, "__deleted": "false"})
    assert change == Change("c", after=AFTER, meta={"deleted": "false"})


@pytest.mark.parametrize("flag", [1, 1.0, "True", "1", False, None])
def test_flattened_deleted_is_only_true_or_the_string_true(flag: object) -> None:
    """Only ``true`` (boolean or string, as Debezium writes it) marks a delete; a column named
    __deleted holding 1 is no flag (1 == True in Python)."""
    change = unwrap({**AFTER, "__deleted": flag})
    assert isinstance(change, Change)
    assert change.op == "c"


def test_flattened_op_wins_over_deleted() -> None:
    """When both are present, __op decides."""
    change = unwrap({**AFTER, "__op": "u", "__deleted": "true"})
    assert isinstance(change, Change)
    assert change.op == "u"


def test_flattened_change_time_is_source_time_else_envelope_time() -> None:
    """ts_ms: __source_ts_ms, else __ts_ms, else None."""
    for extra, expected in [
        ({"__source_ts_ms": 1, "__ts_ms": 2}, 1),
        ({"__ts_ms": 2}, 2),
        ({}, None),
    ]:
        change = unwrap({**AFTER, "__op": "c", **extra})
        assert isinstance(change, Change)
        assert change.ts_ms == expected


def test_flattened_truncate_is_skipped() -> None:
    """__op t: nothing to send."""
    assert unwrap({"__op": "t"}) == Skip("truncate")


def test_flattened_unknown_op_is_an_unwrap_error() -> None:
    """An __op outside c/u/r/d is refused, naming it."""
    with pytest.raises(UnwrapError) as raised:
        unwrap({**AFTER, "__op": "z"})
    assert raised.value.reason == "unknown __op 'z' (expected one of c, u, r, d)"
