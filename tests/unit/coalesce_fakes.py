"""The simulator's lead store as LeadSquared, for coalescing tests: apply calls to it in-process
(its Lead.Capture and Lead.Update semantics) and compare the leads left one call per change and
coalesced."""

from __future__ import annotations

import contextlib
import itertools
import json
from typing import TYPE_CHECKING, Any

from connector.lsq.coalesce import combine
from connector.records import Payload
from lsq_sim.bodies import parse_submission
from lsq_sim.config import StoreRules
from lsq_sim.ops import execute
from lsq_sim.records import MXError, Operation
from lsq_sim.store import LeadStore

if TYPE_CHECKING:
    from collections.abc import Iterable

    from connector.lsq.coalesce import Coalesce
    from lsq_sim.records import LeadField

LEAD_ID = "P1"  # the lead that exists before the changes, when one does
MODES: tuple[Coalesce, ...] = ("latest", "merge")
SEARCH = ("SearchBy", "EmailAddress")
EMAIL = ("EmailAddress", "a@x.io")
#: Each lead's id (``P1``, or ``new``), fields and custom field sets, in the order of creation.
Leads = list[tuple[str, dict[str, str], dict[str, dict[str, str]]]]


def fresh_store(existing: Iterable[LeadField] | None = None) -> LeadStore:
    """The default tenant (EmailAddress and Phone unique), with lead ``P1`` made of ``existing``."""
    ids = itertools.count(1)
    store = LeadStore(StoreRules(), lambda: f"L{next(ids)}", lambda: "2025-01-01 00:00:00")
    if existing is not None:
        store.insert(list(existing), LEAD_ID)
    return store


def send(store: LeadStore, payload: Payload) -> None:
    """One call, parsed and applied as the simulator does; a refused call changes nothing."""
    query = {name.lower(): value for name, value in payload.params}
    body = json.dumps(payload.body).encode()
    submission = parse_submission(Operation(payload.operation), "application/json", body, query)
    with contextlib.suppress(MXError):
        execute(store, submission)


def leads(store: LeadStore) -> Leads:
    """Every lead (ids of new leads count activities too: ``new``), in the order of creation."""
    return [(_id(lead.id), lead.fields, lead.sets) for lead in store.leads.values()]


def _id(lead_id: str) -> str:
    return lead_id if lead_id == LEAD_ID else "new"


def fields(found: Leads) -> list[dict[str, str]]:
    """The plain fields of each lead."""
    return [lead_fields for _id, lead_fields, _sets in found]


def attrs(*pairs: tuple[str, Any]) -> list[dict[str, Any]]:
    return [{"Attribute": name, "Value": value} for name, value in pairs]


def kyc(*pairs: tuple[str, Any]) -> dict[str, Any]:
    """The custom field set mx_KYC with ``pairs`` as its fields."""
    return {"Attribute": "mx_KYC", "Value": "", "Fields": attrs(*pairs)}


def capture(*entries: tuple[str, Any] | dict[str, Any], behavior: str | None = None) -> Payload:
    """A capture of the lead a@x.io (SearchBy EmailAddress) with ``entries`` (pairs or sets)."""
    body = [e if isinstance(e, dict) else {"Attribute": e[0], "Value": e[1]} for e in entries]
    params = () if behavior is None else (("LeadUpdateBehavior", behavior),)
    return Payload("capture", params, [*attrs(EMAIL), *body, *attrs(SEARCH)])


def both_ways(
    mode: Coalesce, payloads: list[Payload], existing: Iterable[LeadField] | None = None
) -> tuple[Leads, Leads]:
    """The leads after one call per payload, and after the one call they coalesce into."""
    one_by_one, together = fresh_store(existing), fresh_store(existing)
    for payload in payloads:
        send(one_by_one, payload)
    joined = payloads[0]
    for payload in payloads[1:]:
        combined = combine(mode, joined, payload)
        assert combined is not None
        joined = combined
    send(together, joined)
    return leads(one_by_one), leads(together)
