"""[pure] The two bulk endpoints, applied to the same store as every other call, row by row in
order: ``Lead/Bulk/CreateOrUpdate`` (each row matched and written as Lead.Capture does) and
``Bulk/CustomActivity/Add/ByLeadField`` (each item posted as CreateCustom's activity, on the lead
found by ``searchBy``). Each row gets its own result; a failed row (its MXError) changes nothing
and the other rows still apply. The whole-call checks (HTTP 400) are in ``bodies.py``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lsq_sim.bodies import BodyError, is_activity_datetime
from lsq_sim.capture import upsert
from lsq_sim.records import MXError, lead_not_found

if TYPE_CHECKING:
    from collections.abc import Sequence

    from pydantic import JsonValue

    from lsq_sim.records import BulkActivity, LeadField
    from lsq_sim.store import LeadStore

__all__ = ["add_activities", "create_or_update"]

_DATE_FORMAT = "'YYYY-MM-DD HH:MM:SS'"


def create_or_update(store: LeadStore, rows: Sequence[tuple[LeadField, ...]]) -> list[JsonValue]:
    """Lead/Bulk/CreateOrUpdate: one result per row, in order. Rows are matched and written as
    Lead.Capture does with the default LeadUpdateBehavior but, like Lead.CreateOrUpdate, post
    no "Lead Capture" activity."""
    results: list[JsonValue] = []
    for number, row in enumerate(rows, start=1):
        try:
            lead, created = upsert(store, row, None)
        except MXError as exc:
            results.append(_lead_result(number, None, created=False, error=exc))
        else:
            results.append(_lead_result(number, lead.id, created=created))
    return results


def add_activities(
    store: LeadStore, search_by: str, items: Sequence[BulkActivity]
) -> dict[str, JsonValue]:
    """Bulk/CustomActivity/Add/ByLeadField: ``{"Response": [one result per item]}``. Raises
    BodyError (nothing applied) when ``search_by`` is not a unique lead field."""
    if not store.searchable(search_by):
        raise BodyError(f"searchBy '{search_by}' is not a unique lead field")
    results: list[JsonValue] = []
    for number, item in enumerate(items, start=1):
        try:
            activity_id = _post(store, search_by, item)
        except MXError as exc:
            results.append(_activity_result(number, None, exc))
        else:
            results.append(_activity_result(number, activity_id))
    return {"Response": results}


def _post(store: LeadStore, search_by: str, item: BulkActivity) -> str:
    """Post one item; the lead is never created. Checks: lead, event code, then date."""
    lead = store.find(search_by, item.search_value) if item.search_value else None
    if lead is None:
        raise lead_not_found()
    activity = item.activity
    store.check_event(activity.event)
    if activity.when is not None and not is_activity_datetime(activity.when):
        raise MXError("MXInvalidInputException", f"ActivityDateTime: expected {_DATE_FORMAT}")
    return store.post(lead.id, activity).id


def _lead_result(
    number: int, lead_id: str | None, *, created: bool, error: MXError | None = None
) -> dict[str, JsonValue]:
    result: dict[str, JsonValue] = {
        "RowNumber": number,
        "LeadId": lead_id,
        "LeadCreated": created,
        "LeadUpdated": lead_id is not None and not created,
        "AffectedRows": 0 if lead_id is None else 1,
    }
    return result if error is None else result | _error(error)


def _activity_result(
    number: int, activity_id: str | None, error: MXError | None = None
) -> dict[str, JsonValue]:
    result: dict[str, JsonValue] = {
        "RowNumber": number,
        "ActivityCreated": activity_id is not None,
        "ProspectActivityId": activity_id,
    }
    return result if error is None else result | _error(error)


def _error(exc: MXError) -> dict[str, JsonValue]:
    return {"ExceptionType": exc.type, "ExceptionMessage": exc.message}
