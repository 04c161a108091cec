"""[pure] One account's leads and activities with LeadSquared's sync semantics: unique fields,
Lead.Create, Lead.Update, ProspectActivity.svc/Create and CreateCustom (Lead.Capture's matching
rules live in ``capture.py``). Errors are raised as ``MXError``; nothing here does I/O."""

from __future__ import annotations

from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from lsq_sim.records import (
    PROSPECT_ID,
    SEARCH_BY,
    Activity,
    ActivityInput,
    DuplicateEntryError,
    Lead,
    LeadField,
    MXError,
    duplicate_message,
    lead_not_found,
    unknown_attribute,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    from pydantic import JsonValue

    from lsq_sim.config import StoreRules

__all__ = ["LEAD_CAPTURE_EVENT", "LeadStore", "field_value", "storable"]

#: ActivityEvent of the "Lead Capture" activity every Lead.Capture posts.
LEAD_CAPTURE_EVENT = 23
_EMPTY: Mapping[str, Any] = MappingProxyType({})
_IDENTIFYING = ("FirstName", "LastName", "EmailAddress", "Phone")


def storable(entries: Iterable[LeadField]) -> list[LeadField]:
    """The entries that become lead fields (``ProspectID`` and ``SearchBy`` do not)."""
    return [e for e in entries if e.attribute.lower() not in (PROSPECT_ID, SEARCH_BY)]


def field_value(entries: Iterable[LeadField], attribute: str) -> str:
    """The last non-blank value passed for ``attribute`` (case-insensitive name), or ``""``."""
    wanted, found = attribute.lower(), ""
    for entry in entries:
        if entry.attribute.lower() == wanted and entry.value.strip():
            found = entry.value
    return found


def _normal(attribute: str, value: str) -> str:
    return value.lower() if attribute == "EmailAddress" else value


class LeadStore:
    """Leads (by id and by unique field), activities, and registered anonymous visitor ids."""

    def __init__(
        self, rules: StoreRules, new_id: Callable[[], str], now: Callable[[], str]
    ) -> None:
        self.rules = rules
        self._new_id, self._now = new_id, now
        self._unique = frozenset(rules.unique_fields)
        # EmailAddress and Phone are always indexed: Lead.Capture matches on them.
        self._indexed = self._unique | {"EmailAddress", "Phone"}
        self._events = None if rules.activity_events is None else frozenset(rules.activity_events)
        self._attributes = (
            None if rules.lead_attributes is None else frozenset(rules.lead_attributes)
        )
        self.leads: dict[str, Lead] = {}
        self.activities: list[Activity] = []
        self.visitors: set[str] = set()
        self._index: dict[str, dict[str, str]] = {f: {} for f in self._indexed}

    def clear(self) -> None:
        """Forget every lead, activity and visitor."""
        self.leads.clear()
        self.activities.clear()
        self.visitors.clear()
        for index in self._index.values():
            index.clear()

    # -- lookups ---------------------------------------------------------------------------

    def is_unique(self, attribute: str) -> bool:
        """Whether the tenant marks ``attribute`` unique."""
        return attribute in self._unique

    def searchable(self, attribute: str) -> bool:
        """Whether leads can be looked up by ``attribute`` (a unique field, EmailAddress or
        Phone): what SearchBy may name, besides ProspectID."""
        return attribute in self._indexed

    def find(self, attribute: str, value: str) -> Lead | None:
        """The lead whose ``attribute`` equals ``value`` (ProspectID or a unique/indexed field)."""
        if attribute.lower() == PROSPECT_ID:
            return self.leads.get(value)
        index = self._index.get(attribute)
        if index is None:
            raise MXError(
                "MXInvalidInputException", f"SearchBy '{attribute}' is not a unique field"
            )
        lead_id = index.get(_normal(attribute, value))
        return None if lead_id is None else self.leads[lead_id]

    # -- lead writes -----------------------------------------------------------------------

    def check_attributes(self, entries: Iterable[LeadField]) -> None:
        """MXUnknownAttributeException for an attribute outside the configured list."""
        if self._attributes is None:
            return
        for entry in storable(entries):
            if entry.attribute not in self._attributes:
                raise unknown_attribute(entry.attribute)

    def insert(self, fields: list[LeadField], lead_id: str | None = None) -> Lead:
        """Create a lead from storable ``fields`` (uniqueness enforced), with ``lead_id`` or new."""
        self._check_unique(fields, None)
        lead = Lead(id=lead_id or self._new_id())
        self.visitors.discard(lead.id)
        self.leads[lead.id] = lead
        self._apply(lead, fields)
        return lead

    def write(self, lead: Lead, fields: list[LeadField]) -> None:
        """Update ``lead`` with ``fields`` (only those passed change; uniqueness enforced)."""
        self._check_unique(fields, lead.id)
        self._apply(lead, fields)

    def create(self, entries: tuple[LeadField, ...]) -> dict[str, JsonValue]:
        """Lead.Create: ``{"Id": lead id}``."""
        self.check_attributes(entries)
        fields = storable(entries)
        self._check_identifying(fields)
        return {"Id": self.insert(fields).id}

    def update(self, lead_id: str, entries: tuple[LeadField, ...]) -> dict[str, JsonValue]:
        """Lead.Update: ``{"AffectedRows": 1}``."""
        lead = self.leads.get(lead_id)
        if lead is None:
            raise lead_not_found()
        self.check_attributes(entries)
        self.write(lead, storable(entries))
        return {"AffectedRows": 1}

    def _check_identifying(self, fields: list[LeadField]) -> None:
        if not any(field_value(fields, name) for name in _IDENTIFYING):
            raise MXError(
                "MXMandatoryAttributeMissingException",
                "At least one of FirstName, LastName, EmailAddress, Phone is mandatory",
            )

    def _check_unique(self, fields: list[LeadField], lead_id: str | None) -> None:
        for entry in fields:
            if entry.attribute not in self._unique or not entry.value or entry.fields is not None:
                continue
            owner = self._index[entry.attribute].get(_normal(entry.attribute, entry.value))
            if owner is not None and owner != lead_id:
                raise DuplicateEntryError(duplicate_message(entry.attribute), owner)

    def _apply(self, lead: Lead, fields: list[LeadField]) -> None:
        for entry in fields:
            if entry.fields is not None:
                lead.sets.setdefault(entry.attribute, {}).update(entry.fields)
                continue
            index = self._index.get(entry.attribute)
            if index is not None:
                old = lead.fields.get(entry.attribute)
                if old and index.get(_normal(entry.attribute, old)) == lead.id:
                    del index[_normal(entry.attribute, old)]
                if entry.value:
                    index[_normal(entry.attribute, entry.value)] = lead.id
            lead.fields[entry.attribute] = entry.value

    # -- activities ------------------------------------------------------------------------

    def check_event(self, event: int) -> None:
        """MXInvalidActivityException for a non-positive or unconfigured event code."""
        if event <= 0 or (self._events is not None and event not in self._events):
            raise MXError("MXInvalidActivityException", "Event Code is invalid or empty")

    def post(self, lead_id: str, activity: ActivityInput) -> Activity:
        """Store ``activity`` on the lead (no checks: callers validate first)."""
        fields = {f.attribute: f.value for f in activity.fields if f.fields is None}
        sets = {f.attribute: dict(f.fields) for f in activity.fields if f.fields is not None}
        stored = Activity(
            id=self._new_id(),
            lead_id=lead_id,
            event=activity.event,
            note=activity.note,
            when=activity.when or self._now(),
            fields=fields or _EMPTY,  # most activities (every Lead Capture) have none: share one
            sets=sets or _EMPTY,
        )
        self.activities.append(stored)
        return stored

    def post_capture(self, lead_id: str) -> Activity:
        """The "Lead Capture" activity (event 23) Lead.Capture posts."""
        return self.post(lead_id, ActivityInput(event=LEAD_CAPTURE_EVENT))

    def create_activity(self, activity: ActivityInput) -> dict[str, JsonValue]:
        """ProspectActivity.svc/Create: ``{"Id": activity id}``."""
        lead_id = activity.related_lead_id or ""
        if lead_id not in self.leads:
            raise lead_not_found()
        self.check_event(activity.event)
        return {"Id": self.post(lead_id, activity).id}

    def create_custom(
        self, entries: tuple[LeadField, ...], activity: ActivityInput
    ) -> dict[str, JsonValue]:
        """CreateCustom: find the lead by SearchBy (default EmailAddress), update or create it,
        post the activity. ``{"Id": activity id, "RelatedId": lead id}``."""
        self.check_event(activity.event)
        self.check_attributes(entries)
        search_by = field_value(entries, "SearchBy") or "EmailAddress"
        value = field_value(entries, search_by)
        lead = self.find(search_by, value) if value else None
        fields = storable(entries)
        if lead is None:
            self._check_identifying(fields)
            lead = self.insert(fields)
        else:
            self.write(lead, fields)
        return {"Id": self.post(lead.id, activity).id, "RelatedId": lead.id}
