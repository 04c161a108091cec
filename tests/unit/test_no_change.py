"""No-op updates (SPEC §12): an update whose row before the change maps to the same payload is
skipped as ``no_change``, for the upserts only, and only when the mapping reads the row alone."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from connector.commands.run import build_routes
from connector.records import Payload, Skip, SourceRecord
from connector.settings.model import Settings

if TYPE_CHECKING:
    from connector.transform.decode import WriterSchema
    from connector.transform.route import Route

ACCOUNT = {"access_key": "AK", "secret_key": "SK", "api_key": "API"}
LEAD = {"EmailAddress": "email", "FirstName": "name"}


class NoSchemas:
    """Values here are handed over decoded: no schema is ever asked for."""

    def get(self, schema_id: int) -> WriterSchema:
        raise AssertionError(f"schema {schema_id} asked for")


def compiled(**route: Any) -> Route:
    """A route of ``operation`` (capture by default) as the connector compiles it."""
    config = {
        "kafka": {"bootstrap_servers": "127.0.0.1:9092"},
        "schema_registry": {"url": "http://registry.invalid:8081"},
        "accounts": {"default": ACCOUNT},
        "routes": [{"name": "r", "topics": ["t"], "mapping": {"lead": LEAD}} | route],
        "output": {"results_topic": "results", "dead_letter_topic": "dead"},
    }
    found = build_routes(Settings.model_validate(config), NoSchemas())("t")
    assert found is not None
    return found


RECORD = SourceRecord("t", 0, 7, b"k", b"", timestamp_ms=1_700_000_000_000)


def update(before: dict[str, Any] | None, after: dict[str, Any], op: str = "u") -> dict[str, Any]:
    return {"op": op, "before": before, "after": after, "source": {"table": "leads"}}


ROW = {"email": "a@x.io", "name": "A", "updated_at": 1}


def test_an_update_of_unmapped_columns_only_is_skipped() -> None:
    prepared = compiled().prepare_value(update(ROW, ROW | {"updated_at": 2}), RECORD)
    assert prepared == Skip("no_change")


@pytest.mark.parametrize(
    "value",
    [
        update(ROW, ROW | {"name": "B"}),  # a mapped column changed
        update(None, ROW),  # no before (REPLICA IDENTITY DEFAULT)
        update({"id": 1}, ROW),  # a partial before (the key only) maps differently
        update(ROW, ROW, op="c"),  # not an update
        update(ROW, ROW, op="r"),  # a snapshot read is the whole state: always sent
    ],
)
def test_anything_else_is_sent(value: dict[str, Any]) -> None:
    assert isinstance(compiled().prepare_value(value, RECORD), Payload)


def test_update_routes_skip_too_and_activities_never() -> None:
    """``update`` is an upsert of a known lead; an activity is an event: each one is posted."""
    update_route = compiled(
        operation="update",
        mapping={"lead_id": "lead_id", "lead": LEAD},
    )
    row = ROW | {"lead_id": "L1"}
    assert update_route.prepare_value(update(row, row | {"updated_at": 9}), RECORD) == Skip(
        "no_change"
    )
    activity = compiled(mapping={"lead": {"EmailAddress": "email"}, "activity": {"event": 201}})
    assert isinstance(activity.prepare_value(update(ROW, ROW), RECORD), Payload)


@pytest.mark.parametrize(
    "lead",
    [
        LEAD | {"mx_Synced": "$ts_ms"},
        LEAD | {"mx_Table": "$meta.table"},
        LEAD | {"mx_Where": {"template": "{$topic}/{ $offset}"}},
    ],
)
def test_a_mapping_that_reads_more_than_the_row_never_skips(lead: dict[str, Any]) -> None:
    """A value from the change's metadata or the record may differ from the previous change's,
    which ``before`` does not tell: such a route sends every update."""
    route = compiled(mapping={"lead": lead})
    assert not route.skip_unchanged
    assert isinstance(route.prepare_value(update(ROW, ROW), RECORD), Payload)


def test_no_change_send_turns_the_skip_off() -> None:
    route = compiled(no_change="send")
    assert isinstance(route.prepare_value(update(ROW, ROW), RECORD), Payload)
