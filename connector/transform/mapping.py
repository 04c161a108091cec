"""[pure] Row → LeadSquared payload, per route (SPEC §3-4). :func:`compile_mapping` checks a
route's ``mapping:`` block against its operation (ConfigError naming the key) and compiles it
once; :meth:`Mapper.render` turns each change into a :class:`Payload` whose body matches the
seeds exactly, or raises MappingError naming the path and the reason (the record is
dead-lettered)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeAlias

from connector.errors import ConfigError, MappingError
from connector.records import Payload
from connector.transform.activity import ActivityRenderer
from connector.transform.fields import compile_entries, compile_value, render_entries
from connector.transform.spec import ActivitySpec, FieldSpec, MappingSpec
from connector.transform.values import ValueFormatter

if TYPE_CHECKING:
    from connector.records import Change, Operation, SourceRecord
    from connector.transform.fields import Entry, Resolve

__all__ = ["ActivitySpec", "FieldSpec", "Mapper", "MappingSpec", "compile_mapping"]

#: Keys valid only for some operations, and the operations that require them.
_ONLY_FOR: dict[str, tuple[str, ...]] = {
    "search_by": ("capture", "lead_and_activity"),
    "lead_update_behavior": ("capture",),
    "post_updated_lead": ("update",),
    "lead_id": ("update",),
    "activity": ("lead_and_activity",),
}
_REQUIRED_BY = {"lead_id": "update", "activity": "lead_and_activity"}
#: Lead.Capture matches on these; without one it creates a new lead every time.
_CAPTURE_IDS = ("ProspectID", "EmailAddress", "Phone")
_CAPTURE_NEED = "capture needs ProspectID, EmailAddress or Phone (else LeadSquared creates a lead)"
#: Lead.Create needs one of these.
_CREATE_NEEDS = ("FirstName", "LastName", "EmailAddress", "Phone")
_CREATE_NEED = "create needs FirstName, LastName, EmailAddress or Phone"

#: A ``$`` root as a path (a string starting with it) or in a template hole.
_ROOT = re.compile(r'"\$|\{\s*\$')

#: A per-record validity rule over the rendered lead attributes; raises MappingError.
LeadCheck: TypeAlias = Callable[[list[dict[str, Any]]], None]


class Mapper:
    """A compiled mapping for one route: :meth:`render` is the per-record hot path."""

    __slots__ = (
        "_activity",
        "_check",
        "_lead",
        "_lead_id",
        "_operation",
        "_params",
        "_search",
        "row_only",
    )

    def __init__(
        self,
        operation: Operation,
        lead: tuple[Entry, ...],
        check: LeadCheck,
        *,
        search_by: str | None = None,
        params: tuple[tuple[str, str], ...] = (),
        lead_id: Resolve | None = None,
        activity: ActivityRenderer | None = None,
        row_only: bool = False,
    ) -> None:
        #: whether the lead and lead id come from the row alone (no ``$`` root, which may differ
        #: between two changes of the same row): then the row's ``before`` maps to its previous
        #: payload
        self.row_only = row_only
        self._operation = operation
        self._lead = lead
        self._check = check
        self._search = search_by
        self._params = params
        self._lead_id = lead_id
        self._activity = activity

    def render(self, change: Change, record: SourceRecord) -> Payload:
        """The payload for one change; raises MappingError(path, reason)."""
        row = change.row
        params = self._params
        if self._lead_id is not None:
            params = (("leadId", _lead_id(self._lead_id(row, change, record))), *params)
        lead = render_entries(self._lead, row, change, record)
        if not lead:
            raise MappingError("lead", "no attribute has a value")
        self._check(lead)
        if self._search is not None:
            lead.append({"Attribute": "SearchBy", "Value": self._search})
        if self._activity is None:
            return Payload(self._operation, params, lead)
        body = {"LeadDetails": lead, "Activity": self._activity(row, change, record)}
        return Payload(self._operation, params, body)


def _lead_id(value: str | None) -> str:
    if value is None or not value.strip():
        raise MappingError("lead_id", "no lead id (leadId is required for update)")
    return value


def compile_mapping(operation: Operation, spec: MappingSpec) -> Mapper:
    """Checks ``spec`` against ``operation`` and compiles it; ConfigError names the key."""
    _check_keys(operation, spec)
    fmt = _formatter(spec.booleans)
    lead = compile_entries(spec.lead, "lead", fmt, clear=spec.on_null == "clear")
    if not lead:
        raise ConfigError("lead: map at least one attribute")
    search_by = _search_by(operation, spec)
    lead_id = activity = None
    if spec.lead_id is not None:
        set_error = "a custom field set is not a lead id"
        lead_id = compile_value(spec.lead_id, "lead_id", fmt, set_error)
    if spec.activity is not None:
        activity = ActivityRenderer(spec.activity, fmt)
    return Mapper(
        operation,
        lead,
        _validity_check(operation, spec, search_by),
        search_by=search_by,
        params=_params(operation, spec),
        lead_id=lead_id,
        activity=activity,
        row_only=not _ROOT.search(json.dumps(spec.model_dump(include={"lead", "lead_id"}))),
    )


def _check_keys(operation: Operation, spec: MappingSpec) -> None:
    """Keys that belong to other operations, or that this operation needs."""
    for key, operations in _ONLY_FOR.items():
        if getattr(spec, key) is not None and operation not in operations:
            plural = "s" if len(operations) > 1 else ""
            raise ConfigError(f"{key}: only valid for operation{plural} {', '.join(operations)}")
    for key, needed_by in _REQUIRED_BY.items():
        if operation == needed_by and getattr(spec, key) is None:
            raise ConfigError(f"{key}: required for operation {needed_by}")


def _formatter(booleans: tuple[str, str]) -> ValueFormatter:
    if booleans[0] == booleans[1]:
        raise ConfigError(f"booleans: true and false need different forms, not {booleans[0]!r}")
    return ValueFormatter(booleans)


def _search_by(operation: Operation, spec: MappingSpec) -> str | None:
    """The SearchBy attribute: configured, or EmailAddress for lead_and_activity."""
    name = spec.search_by
    if name is None and operation == "lead_and_activity":
        name = "EmailAddress"
    if name is None:
        return None
    source = spec.lead.get(name)
    if source is None:
        implied = " (the default for lead_and_activity)" if spec.search_by is None else ""
        raise ConfigError(f"search_by: {name}{implied} must be mapped under lead")
    if isinstance(source, FieldSpec) and source.fields is not None:
        raise ConfigError(f"search_by: {name} is a custom field set, not a searchable attribute")
    return name


def _params(operation: Operation, spec: MappingSpec) -> tuple[tuple[str, str], ...]:
    """Query parameters that do not depend on the record (leadId is added per record)."""
    if operation == "capture" and spec.lead_update_behavior is not None:
        return (("LeadUpdateBehavior", spec.lead_update_behavior),)
    if operation == "update":
        return (("postUpdatedLead", "true" if spec.post_updated_lead else "false"),)
    return ()


def _validity_check(operation: Operation, spec: MappingSpec, search_by: str | None) -> LeadCheck:
    """The per-record rule that keeps LeadSquared from creating or matching the wrong lead."""
    if search_by is not None:
        return _search_value_check(search_by)
    if operation == "capture":
        return _any_check(spec, _CAPTURE_IDS, _CAPTURE_NEED)
    if operation == "create":
        return _any_check(spec, _CREATE_NEEDS, _CREATE_NEED)
    return _no_check


def _no_check(_lead: list[dict[str, Any]]) -> None:
    return None


def _search_value_check(name: str) -> LeadCheck:
    path = f"SearchBy {name}"

    def check(lead: list[dict[str, Any]]) -> None:
        for entry in lead:
            if entry["Attribute"] == name:
                if entry["Value"].strip():
                    return
                raise MappingError(path, f"lead.{name} is blank")
        raise MappingError(path, f"lead.{name} is null")

    return check


def _any_check(spec: MappingSpec, wanted: tuple[str, ...], need: str) -> LeadCheck:
    """At least one of ``wanted`` (case-insensitive; mapped at all, then non-blank per record)."""
    folded = {name.casefold() for name in wanted}
    names = frozenset(name for name in spec.lead if name.casefold() in folded)
    if not names:
        raise ConfigError(f"lead: {need}; map at least one of them")
    mapped = ", ".join(sorted(names))

    def check(lead: list[dict[str, Any]]) -> None:
        for entry in lead:
            if entry["Attribute"] in names and entry["Value"].strip():
                return
        raise MappingError("lead", f"{need}; {mapped}: all null or blank in this record")

    return check
