"""[pure] Lead.Capture: the matching rules of seeds/capture-leads.txt ("How it Works") and
``LeadUpdateBehavior``, on top of the store. Every capture that creates or updates a lead, or
fails with MXDuplicateEntryException, posts a "Lead Capture" activity (event 23)."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from lsq_sim.records import DuplicateEntryError, LeadField, UpdateBehavior
from lsq_sim.store import field_value, storable

if TYPE_CHECKING:
    from pydantic import JsonValue

    from lsq_sim.records import Lead
    from lsq_sim.store import LeadStore

__all__ = ["capture", "match", "upsert"]


def match(store: LeadStore, entries: tuple[LeadField, ...]) -> Lead | None:
    """The lead a capture updates, or None to create one (rules in the order of the seed page)."""
    prospect_id = field_value(entries, "ProspectID")
    email = field_value(entries, "EmailAddress")
    phone = field_value(entries, "Phone")
    search_by = field_value(entries, "SearchBy")
    # SearchBy takes priority, unless ProspectID, EmailAddress and Phone are all passed too.
    if search_by and not (prospect_id and email and phone):
        value = field_value(entries, search_by)
        return store.find(search_by, value) if value else None
    if prospect_id:
        lead = store.leads.get(prospect_id)
        if lead is not None:
            # Same ProspectID but another EmailAddress: a new lead; no EmailAddress: update.
            same = not email or lead.fields.get("EmailAddress", "").lower() == email.lower()
            return lead if same else None
        if prospect_id in store.visitors:
            return None  # an anonymous visitor becomes a new lead with that id
    if email and (lead := store.find("EmailAddress", email)) is not None:
        return lead
    if phone:
        return store.find("Phone", phone)
    return None


def capture(
    store: LeadStore, entries: tuple[LeadField, ...], behavior: UpdateBehavior | None
) -> dict[str, JsonValue]:
    """Lead.Capture: ``{"Id": capture activity id, "RelatedId": lead id, "IsCreated": bool}``."""
    try:
        lead, created = upsert(store, entries, behavior)
    except DuplicateEntryError as exc:
        store.post_capture(exc.existing_lead_id)
        raise
    activity = store.post_capture(lead.id)
    return {"Id": activity.id, "RelatedId": lead.id, "IsCreated": created}


def upsert(
    store: LeadStore, entries: tuple[LeadField, ...], behavior: UpdateBehavior | None
) -> tuple[Lead, bool]:
    """Lead.Capture's matching and writing without its "Lead Capture" activity: the lead and
    whether it was created. An MXError leaves the store unchanged."""
    store.check_attributes(entries)
    lead = match(store, entries)
    fields = storable(entries)
    if lead is not None:
        store.write(lead, _update_fields(store, lead, fields, behavior))
        return lead, False
    prospect_id = field_value(entries, "ProspectID")
    visitor = prospect_id if prospect_id in store.visitors else None
    return store.insert(fields, visitor), True


def _update_fields(
    store: LeadStore, lead: Lead, fields: list[LeadField], behavior: UpdateBehavior | None
) -> list[LeadField]:
    """What the update branch writes: never a Source already set, then per LeadUpdateBehavior."""
    fields = [f for f in fields if not (f.attribute == "Source" and lead.fields.get("Source"))]
    if behavior is UpdateBehavior.DO_NOT_UPDATE:
        return []
    if behavior is UpdateBehavior.DO_NOT_UPDATE_UNIQUE_FIELDS:
        return [f for f in fields if not store.is_unique(f.attribute)]
    if behavior is UpdateBehavior.UPDATE_ONLY_EMPTY_FIELDS:
        return [kept for f in fields if (kept := _only_empty(lead, f)) is not None]
    return fields


def _only_empty(lead: Lead, entry: LeadField) -> LeadField | None:
    if entry.fields is None:
        return None if lead.fields.get(entry.attribute) else entry
    current = lead.sets.get(entry.attribute, {})
    inner = tuple((name, value) for name, value in entry.fields if not current.get(name))
    return replace(entry, fields=inner) if inner else None
