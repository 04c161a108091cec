"""[pure] Apply one validated submission to a store, exactly as the sync API does; the async work
queue calls the same function later."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lsq_sim.capture import capture
from lsq_sim.records import MXError, Operation

if TYPE_CHECKING:
    from pydantic import JsonValue

    from lsq_sim.records import Submission
    from lsq_sim.store import LeadStore

__all__ = ["execute"]


def execute(store: LeadStore, submission: Submission) -> dict[str, JsonValue]:
    """The sync response ``{"Status": "Success", "Message": {...}}``; raises ``MXError``."""
    return {"Status": "Success", "Message": _message(store, submission)}


def _message(store: LeadStore, sub: Submission) -> dict[str, JsonValue]:
    match sub.operation:
        case Operation.CAPTURE:
            return capture(store, sub.leads, sub.behavior)
        case Operation.CREATE:
            return store.create(sub.leads)
        case Operation.UPDATE:
            if not sub.lead_id:
                raise MXError(
                    "MXMandatoryAttributeMissingException",
                    "'leadId' is mandatory for updating lead",
                )
            return store.update(sub.lead_id, sub.leads)
        case Operation.ACTIVITY_CREATE if sub.activity is not None:
            return store.create_activity(sub.activity)
        case Operation.CREATE_CUSTOM if sub.activity is not None:
            return store.create_custom(sub.leads, sub.activity)
    raise MXError("MXInvalidInputException", "Invalid Input! Parameter Name: activity")
