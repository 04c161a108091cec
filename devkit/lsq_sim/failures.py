"""[pure] Application errors injected into the async work queue (``processing.failure_rate``): a
task that draws one ends in FAILURE without being applied, so the error shows only in the Status
API. Randomness comes from an injected, seeded ``random.Random``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lsq_sim.records import (
    MXError,
    duplicate_message,
    lead_not_found,
    unknown_attribute,
)
from lsq_sim.store import storable

if TYPE_CHECKING:
    from random import Random

    from lsq_sim.config import FailureKind, Processing
    from lsq_sim.records import Submission

__all__ = ["draw_failure", "request_attributes"]


def draw_failure(processing: Processing, submission: Submission, rng: Random) -> MXError | None:
    """The injected error ``submission`` ends with, if it draws one (nothing is drawn at rate 0).
    An unknown attribute names one of the request's; a request without any cannot get one, so
    it draws among the other configured kinds (and, with none left, gets no error)."""
    rate = processing.failure_rate
    if not rate or rng.random() >= rate:
        return None
    attributes = request_attributes(submission)
    kinds = [k for k in processing.failure_kinds if attributes or k != "unknown_attribute"]
    if not kinds:
        return None
    kind: FailureKind = rng.choice(kinds)
    match kind:
        case "duplicate":
            return MXError("MXDuplicateEntryException", duplicate_message("EmailAddress"))
        case "not_found":
            return lead_not_found()
        case "unknown_attribute":
            return unknown_attribute(rng.choice(attributes))


def request_attributes(submission: Submission) -> list[str]:
    """The attributes a request sets: its lead fields (not SearchBy or ProspectID), then its
    activity's fields."""
    attributes = [entry.attribute for entry in storable(submission.leads)]
    if submission.activity is not None:
        attributes += [entry.attribute for entry in submission.activity.fields]
    return attributes
