"""[pure] LeadSquared's bulk calls (reference §2.8): a record's row, the request of several rows,
and the interpreter that turns the answer into one verdict per row.

A ``capture`` row is the record's Lead.Capture body (its Attribute/Value list, ``SearchBy``
included); the call is ``Lead/Bulk/CreateOrUpdate``. A ``lead_and_activity`` row is the record's
``Activity`` object plus ``SearchByValue``, the value of the lead's search attribute, which goes in
the ``searchBy`` query parameter; the call is ``Bulk/CustomActivity/Add/ByLeadField``. A bulk
activity row posts the activity only, so a record whose ``LeadDetails`` carry anything but the
search key has no row (it goes in a single CreateCustom call).

Answers: CreateOrUpdate answers a list of ``{"RowNumber", "LeadId", ...}``, the activities call
``{"Response": [{"RowNumber", "ActivityCreated", "ProspectActivityId", ...}]}``. A row with an
exception is that record's own failure: dead-lettered with its reason, except an activity whose
lead does not exist, which goes alone in a CreateCustom call (that creates the lead). A call that
fails as a whole is interpreted as a single call is (:func:`~connector.lsq.answers.classify`),
for every row; an error LeadSquared makes permanent for the whole call (a 400) sends each row in
a call of its own, so one bad row cannot fail the others.

A call LeadSquared may have applied without saying what it did (a 200 without row results, a 5xx,
a timeout or a connection dropped after sending) goes again only when going twice changes
nothing: lead upserts are retried, activities (an event each: posted twice, they are there twice)
are dead-lettered, to be checked and replayed, never posted again.
"""

from __future__ import annotations

import json
import re
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from connector.lsq.answers import Settlement, Verdict, classify
from connector.lsq.catalog import BULK, Request
from connector.lsq.envelope import as_text

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from connector.records import Answer, Operation, Payload

__all__ = ["Row", "bulk_answer", "bulk_request", "row_of"]

#: One row of a bulk call and the ``searchBy`` its call needs (``None``: none).
Row = tuple[str | None, list[dict[str, Any]] | dict[str, Any]]

#: LeadSquared's words for an activity row whose lead does not exist.
_NO_LEAD = re.compile(r"lead\b.*\b(does not exist|not found|doesn't exist)", re.IGNORECASE)
_REASON_MAX = 500


def row_of(payload: Payload) -> Row | None:
    """``payload``'s row in a bulk call of its operation, or ``None`` when it has none."""
    if payload.operation == "capture" and isinstance(payload.body, list) and not payload.params:
        return None, payload.body
    if payload.operation != "lead_and_activity" or not isinstance(payload.body, dict):
        return None
    lead = payload.body.get("LeadDetails")
    activity = payload.body.get("Activity")
    if not isinstance(lead, list) or not isinstance(activity, dict):
        return None
    values = {entry.get("Attribute"): entry.get("Value") for entry in lead}
    search = values.pop("SearchBy", None)
    value = values.get(search) if isinstance(search, str) else None
    if not isinstance(value, str) or len(values) != 1:
        return None  # lead fields besides the search key: a bulk row would drop them
    return search, {"SearchByValue": value, **activity}


def bulk_request(operation: Operation, rows: Sequence[Row]) -> Request:
    """The bulk call of ``operation`` carrying ``rows`` (all with the same ``searchBy``)."""
    search = rows[0][0]
    params = () if search is None else (("searchBy", search),)
    return Request(BULK[operation], params, [body for _, body in rows])


def bulk_answer(operation: Operation, size: int) -> Callable[[Answer], Settlement]:
    """The interpreter of a bulk call of ``size`` rows of ``operation``."""
    activity = operation == "lead_and_activity"

    def interpret(answer: Answer) -> Settlement:
        rows = _rows(answer.body, activity) if answer.status == HTTPStatus.OK else None
        if rows is None:
            return _whole(classify(answer, operation, "sync"), size, answer, activity)
        verdicts = tuple(_row(rows.get(n), n, activity) for n in range(1, size + 1))
        return Settlement(Verdict("accepted", f"HTTP {answer.status}"), verdicts)

    return interpret


def _whole(verdict: Verdict, size: int, answer: Answer, activity: bool) -> Settlement:
    """The same verdict for every row. A 200 without row results (and without an exception) is
    never taken as success: upserts go again, activities (which may have been posted) never do.
    Nor does a failure after which they may have been posted (5xx, timeout, dropped connection):
    the account still counts it as a failure of LeadSquared's. A refusal of the whole call (an
    exception: nothing was applied) sends each row alone."""
    unclear = verdict.kind in {"accepted", "permanent"} and verdict.exception_type is None
    if answer.status == HTTPStatus.OK and unclear:
        snippet = answer.body[:200].decode("utf-8", "replace")
        why = f"HTTP {answer.status} without row results: {snippet}"
        verdict = Verdict("permanent" if activity else "retry", why)
    elif activity and verdict.kind == "retry" and _maybe_applied(answer):
        why = f"the activities may have been posted: not sent again; {verdict.reason}"
        rows = Verdict("permanent", why[:_REASON_MAX], verdict.exception_type)
        return Settlement(verdict, (rows,) * size)
    elif verdict.kind == "permanent" and size > 1:  # one bad row must not fail the others
        return Settlement(verdict, (Verdict("alone", verdict.reason),) * size)
    return Settlement(verdict, (verdict,) * size)


def _maybe_applied(answer: Answer) -> bool:
    """Whether a call that failed may have been applied: it reached LeadSquared (a 5xx) or may
    have (no answer after the request was sent). A 408 says the request was not read whole."""
    if answer.status is None:
        return answer.maybe_sent
    return answer.status >= HTTPStatus.INTERNAL_SERVER_ERROR


def _rows(body: bytes, activity: bool) -> dict[int, dict[str, Any]] | None:
    """The answer's rows by their 1-based number, or ``None`` when it has none."""
    try:
        parsed = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if activity and isinstance(parsed, dict):
        parsed = next((v for k, v in parsed.items() if k.lower() == "response"), None)
    if not isinstance(parsed, list) or not all(isinstance(row, dict) for row in parsed):
        return None
    rows: dict[int, dict[str, Any]] = {}
    for position, row in enumerate(parsed, start=1):
        number = row.get("RowNumber")
        rows[number if isinstance(number, int) and number > 0 else position] = row
    return rows


def _row(row: dict[str, Any] | None, number: int, activity: bool) -> Verdict:
    if row is None:  # LeadSquared said nothing about it
        why = f"the bulk call's answer has no row {number}"
        return Verdict("permanent" if activity else "retry", why, row=number)
    exc_type = as_text(row.get("ExceptionType")) or None
    message = as_text(row.get("ExceptionMessage") or row.get("Message") or row.get("ErrorMessage"))
    made = as_text(row.get("ProspectActivityId" if activity else "LeadId")).strip()
    created = row.get("ActivityCreated") is not False if activity else True
    if made and created and exc_type is None and not message:
        if activity:
            return Verdict("accepted", "HTTP 200", activity_id=made, row=number, applied=True)
        return Verdict("accepted", "HTTP 200", lead_id=made, row=number, applied=True)
    reason = f"row {number}: {exc_type + ': ' if exc_type else ''}{message or _compact(row)}"
    reason = reason[:_REASON_MAX]
    if activity and _NO_LEAD.search(message):
        return Verdict("alone", reason, exc_type, row=number)  # CreateCustom creates the lead
    return Verdict("permanent", reason, exc_type, row=number)


def _compact(row: dict[str, Any]) -> str:
    return json.dumps(row, separators=(",", ":"))[:200]
