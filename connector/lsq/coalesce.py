"""[pure] Several changes of one lead as one call (SPEC §12), for the full-state upserts
(``capture``, ``update``), whose body is the lead's Attribute/Value list: the payload that leaves
LeadSquared as sending the earlier and then the later change would (SPEC §2.9).

LeadSquared writes only the attributes a call carries, and a null is left out of a payload, so a
later change that leaves an attribute out does not undo an earlier one: the combined body carries
every attribute of both (custom field sets field by field), each with the value the two calls in
turn leave. That is the later one (``""`` included: it clears), except where LeadSquared keeps the
first value a field was given: Lead.Capture never changes a lead's ``Source`` once set, and with
``LeadUpdateBehavior`` ``UpdateOnlyEmptyFields`` it writes only empty fields; with ``DoNotUpdate``
the later change writes nothing. Never combined (each goes in a call of its own): captures with
``DoNotUpdateUniqueFields`` (what it leaves depends on the tenant's unique fields, unknown here),
captures that may not find the same lead (other search values; a ProspectID, whose rules may
create a new lead every time), payloads with other query parameters (another ``leadId``).

``latest`` and ``merge`` leave the same state and differ in order only: ``latest`` keeps the later
payload's order (the later payload itself when it names every attribute of the earlier), ``merge``
the order in which attributes first appeared."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

from connector.records import Payload

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["Coalesce", "combine"]

#: How a later change of a key is folded into an earlier one still waiting (the order of the
#: combined body's attributes: the later payload's, or first-seen).
Coalesce = Literal["latest", "merge"]

_UPSERTS = frozenset({"capture", "update"})
#: Lead.Capture's query parameter and the values that change what the later change writes.
_BEHAVIOR = "LeadUpdateBehavior"
_DO_NOT_UPDATE = "DoNotUpdate"
_ONLY_EMPTY = "UpdateOnlyEmptyFields"
_NOT_UNIQUE = "DoNotUpdateUniqueFields"
#: Lead.Capture matches on these, after SearchBy (seeds/capture-leads.txt, "How it Works").
_MATCH_BY = ("EmailAddress", "Phone")
_PROSPECT_ID, _SEARCH_BY = "prospectid", "searchby"


@dataclass(frozen=True, slots=True)
class _Keeps:
    """Which fields keep the first non-empty value they were given: every field (``every``,
    inner fields of custom field sets too), else the lead attributes named in ``named``."""

    every: bool = False
    named: frozenset[str] = frozenset()

    def __call__(self, name: Any) -> bool:
        return self.every or name in self.named

    def inner(self) -> _Keeps:
        """The rule for the fields inside a custom field set."""
        return _Keeps(every=self.every)


def combine(mode: Coalesce, earlier: Payload, later: Payload) -> Payload | None:
    """One payload carrying ``earlier`` then ``later`` (``None``: they cannot share a call); a
    snapshot read only when both are."""
    if earlier.operation != later.operation or earlier.params != later.params:
        return None
    if later.operation not in _UPSERTS:
        return None
    if not isinstance(earlier.body, list) or not isinstance(later.body, list):
        return None
    behavior = dict(later.params).get(_BEHAVIOR) if later.operation == "capture" else None
    if behavior == _NOT_UNIQUE:
        return None
    if later.operation == "capture" and not _same_lead(earlier.body, later.body):
        return None
    snapshot = earlier.snapshot and later.snapshot  # live if either part is
    if behavior == _DO_NOT_UPDATE:  # the lead the first one found or created stays as it is
        return replace(earlier, snapshot=snapshot)
    keeps = _Keeps(every=True) if behavior == _ONLY_EMPTY else _Keeps()
    if later.operation == "capture":
        keeps = replace(keeps, named=frozenset({"Source"}))  # "the Lead Source is not updated"
    body = _combined(earlier.body, later.body, keeps, later_order=mode == "latest")
    return Payload(later.operation, later.params, body, snapshot)


def _combined(
    earlier: list[dict[str, Any]],
    later: list[dict[str, Any]],
    keeps: _Keeps,
    *,
    later_order: bool,
) -> list[dict[str, Any]]:
    """Attribute/Value entries of both, each as the two calls in turn leave it; SearchBy last, as
    a single call has it."""
    entries: dict[Any, dict[str, Any]] = {entry.get("Attribute"): entry for entry in earlier}
    for entry in later:
        name = entry.get("Attribute")
        before = entries.get(name)
        entries[name] = entry if before is None else _entry(before, entry, keeps, later_order)
    names: Iterable[Any] = entries
    if later_order:
        first = [entry.get("Attribute") for entry in later]
        names = dict.fromkeys([*first, *entries])  # the later's, then the earlier's others
    body = [entries[name] for name in names if name != "SearchBy"]
    return body if (search := entries.get("SearchBy")) is None else [*body, search]


def _entry(
    before: dict[str, Any], after: dict[str, Any], keeps: _Keeps, later_order: bool
) -> dict[str, Any]:
    """One attribute given twice: a custom field set merged field by field; a kept field with a
    non-empty value keeps it (what LeadSquared checks is whether the field is empty)."""
    if "Fields" in before and "Fields" in after:
        inner = keeps.inner()
        fields = _combined(before["Fields"], after["Fields"], inner, later_order=later_order)
        return {**after, "Fields": fields}
    if keeps(before.get("Attribute")) and before.get("Value"):
        return before
    return after


def _same_lead(earlier: list[dict[str, Any]], later: list[dict[str, Any]]) -> bool:
    """Whether Lead.Capture finds the later change's lead where the earlier one left it: both
    search by the same values (the lead the first found or created has them), and the lead is
    found by value, not by a ProspectID."""
    lookup = _lookup(earlier)
    return lookup is not None and lookup == _lookup(later)


def _lookup(body: list[dict[str, Any]]) -> tuple[str, ...] | None:
    """What Lead.Capture matches the lead by: the SearchBy attribute's value, else EmailAddress
    and Phone; ``None`` with a ProspectID or no value to match on."""
    if _value(body, _PROSPECT_ID):
        return None
    search = _value(body, _SEARCH_BY)
    values = tuple(_value(body, name) for name in ((search,) if search else _MATCH_BY))
    return (search, *values) if any(values) else None


def _value(body: list[dict[str, Any]], name: str) -> str:
    """The last non-blank value given for ``name`` (case-insensitive), or ``""``: what Lead.Capture
    reads for matching."""
    wanted, found = name.casefold(), ""
    for entry in body:
        value = entry.get("Value")
        attribute = entry.get("Attribute")
        if isinstance(attribute, str) and attribute.casefold() == wanted and isinstance(value, str):
            found = value if value.strip() else found
    return found
