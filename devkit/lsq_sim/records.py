"""Values that cross the simulator's steps: parsed request bodies, stored leads and activities,
the operations and LeadSquared's application error (``MXError``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "TASK_TYPES",
    "Activity",
    "ActivityInput",
    "BulkActivity",
    "DuplicateEntryError",
    "Lead",
    "LeadField",
    "MXError",
    "Operation",
    "Submission",
    "UpdateBehavior",
    "duplicate_message",
    "lead_not_found",
    "unknown_attribute",
]

#: Attributes with a meaning of their own in lead bodies; never stored as lead fields.
PROSPECT_ID = "prospectid"
SEARCH_BY = "searchby"


class MXError(Exception):
    """A LeadSquared application error (ExceptionType and ExceptionMessage of the envelope)."""

    def __init__(self, type_: str, message: str) -> None:
        super().__init__(f"{type_}: {message}")
        self.type = type_
        self.message = message


class DuplicateEntryError(MXError):
    """MXDuplicateEntryException, naming the existing lead the request collided with."""

    def __init__(self, message: str, existing_lead_id: str) -> None:
        super().__init__("MXDuplicateEntryException", message)
        self.existing_lead_id = existing_lead_id


_DUPLICATE_MESSAGES = {
    "EmailAddress": "A Lead with same Email already exists.",
    "Phone": "A Lead with same Phone Number already exists.",
}


def duplicate_message(attribute: str) -> str:
    """MXDuplicateEntryException's message for a value of ``attribute`` another lead has."""
    return _DUPLICATE_MESSAGES.get(attribute, f"A Lead with same {attribute} already exists.")


def lead_not_found() -> MXError:
    """MXInvalidEntityException: no lead with the id (or search value) given."""
    return MXError("MXInvalidEntityException", "Lead does not exist in the system")


def unknown_attribute(attribute: str) -> MXError:
    """MXUnknownAttributeException naming ``attribute``, which the tenant does not have."""
    return MXError("MXUnknownAttributeException", f"Attribute '{attribute}' does not exist")


class Operation(StrEnum):
    """The operations the simulator applies (sync endpoints; async ones are queued)."""

    CAPTURE = "capture"
    CREATE = "create"
    UPDATE = "update"
    ACTIVITY_CREATE = "activity_create"
    CREATE_CUSTOM = "create_custom"
    BULK_CREATE_OR_UPDATE = "bulk_create_or_update"  # sync only, never a Submission (bulk.py)
    BULK_ACTIVITY_BY_FIELD = "bulk_activity_by_field"


#: TaskStatus.TaskType of the async operations (reference/leadsquared-api.md §1.5).
TASK_TYPES = {
    Operation.CAPTURE: "Lead Capture",
    Operation.UPDATE: "Lead Update",
    Operation.ACTIVITY_CREATE: "Activity Create",
    Operation.CREATE_CUSTOM: "Activity Create Custom",
}


class UpdateBehavior(StrEnum):
    """Lead.Capture's ``LeadUpdateBehavior`` query parameter."""

    DO_NOT_UPDATE = "DoNotUpdate"
    UPDATE_ONLY_EMPTY_FIELDS = "UpdateOnlyEmptyFields"
    DO_NOT_UPDATE_UNIQUE_FIELDS = "DoNotUpdateUniqueFields"


@dataclass(frozen=True, slots=True)
class LeadField:
    """``{"Attribute", "Value"}``; a custom field set has ``Value == ""`` and inner ``fields``."""

    attribute: str
    value: str
    fields: tuple[tuple[str, str], ...] | None = None


@dataclass(frozen=True, slots=True)
class ActivityInput:
    """An activity to post: event code, note, ``YYYY-MM-DD HH:MM:SS`` time and fields."""

    event: int
    note: str | None = None
    when: str | None = None
    fields: tuple[LeadField, ...] = ()  # SchemaName entries, or CFS entries with inner fields
    related_lead_id: str | None = None  # ProspectActivity.svc/Create's RelatedProspectId


@dataclass(frozen=True, slots=True)
class BulkActivity:
    """One item of a bulk-activities-by-lead-field body: the lead's ``searchBy`` value and the
    activity (``when`` not yet checked: a bad date fails only its row)."""

    search_value: str
    activity: ActivityInput


@dataclass(frozen=True, slots=True)
class Submission:
    """One validated request, ready to apply: now (sync) or later (async)."""

    operation: Operation
    leads: tuple[LeadField, ...] = ()
    activity: ActivityInput | None = None
    lead_id: str | None = None
    behavior: UpdateBehavior | None = None


@dataclass(slots=True)
class Lead:
    """A stored lead: plain fields and custom field sets (set name → inner field → value)."""

    id: str
    fields: dict[str, str] = field(default_factory=dict)
    sets: dict[str, dict[str, str]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Activity:
    """A stored activity on a lead."""

    id: str
    lead_id: str
    event: int
    note: str | None
    when: str
    fields: Mapping[str, str]
    sets: Mapping[str, Mapping[str, str]]
