"""Helpers of the completion-tracking tests over the loop's fakes
(:mod:`tests.unit.pipeline_fakes`): status settings, Status API answers, calls driven to their
acceptance, and the follow-ups written."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from connector.records import Accepted, Answer
from connector.settings.status import CanarySettings, QueueSettings, StatusSettings
from tests.unit.pipeline_fakes import record

if TYPE_CHECKING:
    from tests.unit.pipeline_fakes import FakeCalls, Harness, Sent

FIRST_POLL = 5.0
NO_CANARY = CanarySettings(calls=0)
NO_QUEUE = QueueSettings(enabled=False)


def status_settings(**changes: object) -> StatusSettings:
    """Tracking on, first poll after 5 s, polls up to 40 s apart, given up after 600 s; no canary,
    no queue pacing (unless ``changes`` say otherwise)."""
    base: dict[str, object] = {
        "enabled": True,
        "first_poll_seconds": FIRST_POLL,
        "max_poll_interval_seconds": 40.0,
        "give_up_seconds": 600.0,
        "canary": NO_CANARY,
        "queue": NO_QUEUE,
    }
    return StatusSettings.model_validate(base | changes)


def accept_all(calls: FakeCalls) -> None:
    """Answer each open submit call with a RequestID of its own (req-<n>: the n-th call sent)."""
    for n, sent in enumerate(calls.sent):
        if sent.ticket in calls.done:
            continue
        body = json.dumps({"Status": "Request accepted", "RequestID": f"req-{n}"})
        calls.answers.append((sent.ticket, Answer(200, body.encode())))
        calls.done.add(sent.ticket)


def task(status: str, reason: str, **extra: object) -> Answer:
    """A Status API answer with this ``TaskStatus``."""
    body = {"Status": status, "StatusReason": reason, "RequestBody": "[]", "Message": None}
    return Answer(200, json.dumps({"RequestId": "x", "TaskStatus": body | extra}).encode())


SUCCESS = task(
    "Success",
    "Request was successfully completed",
    Message=json.dumps({"Status": "Success", "Message": {"Id": "a1", "RelatedId": "lead-9"}}),
)
IN_QUEUE = task("In-Queue", "")
DUPLICATE = task(
    "FAILURE", "A Lead with same Email already exists.", ExceptionType="MXDuplicateEntryException"
)
TYPO = task(
    "FAILURE",
    "Attribute 'mx_Ciyt' does not exist",
    ExceptionType="MXUnknownAttributeException",
    RequestBody=json.dumps([{"Attribute": "mx_Ciyt", "Value": "Pune"}]),
)


def request_id(sent: Sent) -> str:
    """The RequestID a Status API call asks about."""
    return dict(sent.request.params)["RequestID"]


def follow_ups(h: Harness) -> list[tuple[int, Accepted]]:
    """The follow-up results records written: (source offset, what it says)."""
    return [
        (w.record.offset, w.data)
        for w in h.output.written
        if isinstance(w.data, Accepted) and w.data.status != "accepted"
    ]


def deliver(h: Harness, count: int, start: int = 0) -> None:
    """Feed ``count`` records and have every call accepted (as fast as the budget allows)."""
    h.feed(*(record(i, f"k{i}", f"lead{i}@example.com") for i in range(start, start + count)))
    target = h.pipeline.tally.accepted + count
    for _ in range(10_000):
        h.turn()
        accept_all(h.calls)
        if h.pipeline.tally.accepted == target:
            return
        h.clock.advance(0.01)
    raise AssertionError(f"{h.pipeline.tally.accepted} of {target} accepted")
