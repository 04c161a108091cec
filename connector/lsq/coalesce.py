"""[pure] Several changes of one lead as one call (SPEC §12): the payload that carries a later
change on top of an earlier one, for the full-state upserts (``capture``, ``update``), whose body
is the lead's Attribute/Value list.

``latest``: the later payload alone (a Debezium row is the whole row). ``merge``: the earlier
attributes with the later ones on top, in the order they first appeared, custom field sets merged
field by field; this is what sending both in turn leaves in LeadSquared, so it suits sources that
send only the changed columns. Payloads with different query parameters (another ``leadId``) do
not combine."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any, Literal

from connector.records import Payload

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["Coalesce", "combine"]

#: How a later change of a key is folded into an earlier one still waiting.
Coalesce = Literal["latest", "merge"]


def combine(mode: Coalesce, earlier: Payload, later: Payload) -> Payload | None:
    """One payload carrying ``earlier`` then ``later`` (``None``: they cannot share a call); a
    snapshot read only when both are."""
    if earlier.operation != later.operation or earlier.params != later.params:
        return None
    if not isinstance(earlier.body, list) or not isinstance(later.body, list):
        return None
    snapshot = earlier.snapshot and later.snapshot  # live if either part is
    if mode == "latest":
        return replace(later, snapshot=snapshot)
    return Payload(later.operation, later.params, _merged(earlier.body, later.body), snapshot)


def _merged(earlier: Iterable[dict[str, Any]], later: Iterable[dict[str, Any]]) -> list[Any]:
    """Attribute/Value entries of both, the later's winning; custom field sets merged inside."""
    entries: dict[Any, dict[str, Any]] = {}
    for entry in earlier:
        entries[entry.get("Attribute")] = entry
    for entry in later:
        name = entry.get("Attribute")
        before = entries.get(name)
        if before is not None and "Fields" in before and "Fields" in entry:
            entries[name] = {**entry, "Fields": _merged(before["Fields"], entry["Fields"])}
        else:
            entries[name] = entry
    search = entries.pop("SearchBy", None)  # as a single call has it: last
    return [*entries.values(), *([] if search is None else [search])]
