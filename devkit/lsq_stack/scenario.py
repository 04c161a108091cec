"""A realistic mixed CDC stream for the demo, the end-to-end tests and the benchmarks, with the
outcome each event must get: leads (snapshot reads, creates, updates of the same keys), activities,
deletes and tombstones, and bad records of every kind. The expected request bodies are written out
by hand here (an oracle independent of
``connector.transform.mapping``) in the seeds' exact shapes."""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from lsq_stack.cdc import ACTIVITIES, LEADS, Event, activity_row, envelope, lead_row

__all__ = ["REJECTED_EMAIL", "Expected", "Scenario", "build_scenario", "route_config"]

#: The simulator is told to reject calls carrying this email with an MX exception.
REJECTED_EMAIL = "rejected@example.com"
SOURCE = "CRM CDC"

Outcome = Literal["accepted", "dead_lettered", "skipped"]


@dataclass(frozen=True, slots=True)
class Expected:
    """What must happen to one event: its outcome, the DLQ stage, or the exact call."""

    outcome: Outcome
    stage: str | None = None
    path: str | None = None
    body: Any = None
    email: str | None = None


@dataclass(frozen=True, slots=True)
class Scenario:
    events: list[Event]
    expected: list[Expected]

    def count(self, outcome: Outcome) -> int:
        return sum(1 for e in self.expected if e.outcome == outcome)


def route_config(account: str = "default") -> list[dict[str, Any]]:
    """The demo's two routes: leads → Capture (async), activities → Create Lead and Activity."""
    lead_fields = {
        "EmailAddress": "email",
        "FirstName": "first_name",
        "LastName": "last_name",
        "Phone": "phone",
        "Company": "company",
        "mx_City": "city",
        "mx_Lifetime_Value": "lifetime_value",
        "mx_Marketing_Opt_In": "marketing_opt_in",
        "mx_Signup_Date": "created_at",
        "Source": {"const": SOURCE},
        "mx_KYC": {"fields": {"Status": "kyc_status", "mx_CustomObject_1": "kyc_document"}},
    }
    activity = {
        "event": "event_code",
        "note": "note",
        "datetime": "occurred_at",
        "fields": {"mx_Custom_1": "amount", "mx_Custom_2": "channel"},
    }
    return [
        {
            "name": "leads",
            "topics": [LEADS],
            "account": account,
            "operation": "capture",
            "mapping": {"search_by": "EmailAddress", "lead": lead_fields},
        },
        {
            "name": "activities",
            "topics": [ACTIVITIES],
            "account": account,
            "operation": "lead_and_activity",
            "mapping": {"lead": {"EmailAddress": "lead_email"}, "activity": activity},
        },
    ]


def _utc(micros: int) -> str:
    return datetime.fromtimestamp(micros / 1_000_000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _pairs(items: list[tuple[str, Any]]) -> list[dict[str, Any]]:
    return [{"Attribute": name, "Value": value} for name, value in items if value is not None]


def expected_capture(row: dict[str, Any]) -> list[dict[str, Any]]:
    """The Capture Leads body for a leads row (seeds/capture-leads-async.txt shape)."""
    opt_in = row["marketing_opt_in"]
    value = row["lifetime_value"]
    body = _pairs(
        [
            ("EmailAddress", row["email"]),
            ("FirstName", row["first_name"]),
            ("LastName", row["last_name"]),
            ("Phone", row["phone"]),
            ("Company", row["company"]),
            ("mx_City", row["city"]),
            ("mx_Lifetime_Value", None if value is None else f"{value:.2f}"),  # numeric(12,2)
            ("mx_Marketing_Opt_In", None if opt_in is None else str(opt_in).lower()),
            ("mx_Signup_Date", _utc(row["created_at"])),
            ("Source", SOURCE),
        ]
    )
    kyc = _pairs([("Status", row["kyc_status"]), ("mx_CustomObject_1", row["kyc_document"])])
    if kyc:
        body.append({"Attribute": "mx_KYC", "Value": "", "Fields": kyc})
    return [*body, {"Attribute": "SearchBy", "Value": "EmailAddress"}]


def expected_create_custom(row: dict[str, Any]) -> dict[str, Any]:
    """The Create Lead and Activity body (seeds/create-lead-and-activity-async.txt shape)."""
    activity: dict[str, Any] = {"ActivityEvent": row["event_code"]}
    if row["note"] is not None:
        activity["ActivityNote"] = row["note"]
    activity["ActivityDateTime"] = _utc(row["occurred_at"])
    amount = row["amount"]
    fields = [
        {"SchemaName": name, "Value": value}
        for name, value in (
            ("mx_Custom_1", None if amount is None else f"{amount:.2f}"),  # numeric(10,2)
            ("mx_Custom_2", row["channel"]),
        )
        if value is not None
    ]
    if fields:
        activity["Fields"] = fields
    lead = [
        {"Attribute": "EmailAddress", "Value": row["lead_email"]},
        {"Attribute": "SearchBy", "Value": "EmailAddress"},
    ]
    return {"LeadDetails": lead, "Activity": activity}


class _Builder:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.events: list[Event] = []
        self.expected: list[Expected] = []
        self.leads: dict[int, dict[str, Any]] = {}
        self.ts = 1_793_000_000_000

    def add(self, event: Event, expected: Expected) -> None:
        self.events.append(event)
        self.expected.append(expected)
        self.ts += 1000

    def lead(self, i: int, op: str, **changes: Any) -> None:
        before = self.leads.get(i)
        row = lead_row(i, self.rng, **changes) if before is None else before | changes
        self.leads[i] = row
        value = envelope("leads", op, before if op == "u" else None, row, ts_ms=self.ts, lsn=i)
        if row["email"] is None:
            self.add(Event(LEADS, i, value), Expected("dead_lettered", stage="map"))
        elif op == "u" and before is not None and expected_capture(before) == expected_capture(row):
            self.add(Event(LEADS, i, value), Expected("skipped"))  # no mapped column changed
        else:
            expected = Expected(
                "accepted", path="/lead/capture", body=expected_capture(row), email=row["email"]
            )
            self.add(Event(LEADS, i, value), expected)

    def activity(self, i: int, lead: int, **changes: Any) -> None:
        row = activity_row(i, lead, self.rng, **changes)
        value = envelope("activities", "c", None, row, ts_ms=self.ts, lsn=10_000 + i)
        if row["event_code"] <= 0:
            self.add(Event(ACTIVITIES, i, value), Expected("dead_lettered", stage="map"))
            return
        body = expected_create_custom(row)
        expected = Expected("accepted", path="/activity/createcustom", body=body, email=None)
        self.add(Event(ACTIVITIES, i, value), expected)


def build_scenario(
    leads: int = 60, updates: int = 20, activities: int = 40, seed: int = 7
) -> Scenario:
    """A deterministic mixed stream (about ``leads + updates + activities + 14`` events)."""
    b = _Builder(seed)
    snapshot = max(1, leads // 5)
    for i in range(snapshot):
        b.lead(i, "r")
    live = list(range(snapshot, leads))
    kinds = ["lead"] * len(live) + ["update"] * updates + ["activity"] * activities
    b.rng.shuffle(kinds)
    created: list[int] = list(range(snapshot))
    next_activity = 0
    for kind in kinds:
        if kind == "lead" or (kind == "update" and not created):
            i = live.pop(0)
            b.lead(i, "c")
            created.append(i)
        elif kind == "update":
            i = b.rng.choice(created)
            b.lead(i, "u", city=b.rng.choice(["Goa", "Kochi", "Jaipur"]), kyc_status="Verified")
        else:
            b.activity(next_activity, b.rng.choice(created))
            next_activity += 1
    _edge_cases(b, leads, created, next_activity)
    return Scenario(b.events, b.expected)


def _edge_cases(b: _Builder, leads: int, created: list[int], next_activity: int) -> None:
    for i in created[:3]:  # deletes, each followed by its tombstone: both skipped
        before = b.leads[i]
        b.add(
            Event(LEADS, i, envelope("leads", "d", before, None, ts_ms=b.ts)), Expected("skipped")
        )
        b.add(Event(LEADS, i, None), Expected("skipped"))
    b.add(Event(LEADS, 90_001, raw=b'{"email": "json@example.com"}'), _dlq("decode"))
    b.add(Event(LEADS, 90_002, raw=b"\x00" + struct.pack(">I", 99_999) + b"\x02"), _dlq("decode"))
    b.add(Event(LEADS, 90_003, raw=b"\x00\x00\x00\x00\x01\xff\xfe"), _dlq("decode"))
    b.lead(leads + 1, "c", email=None, phone=None)  # no identifier: mapping fails
    b.lead(leads + 2, "c", email=REJECTED_EMAIL)
    b.expected[-1] = _dlq("submit")  # LeadSquared answers with an MX exception
    b.activity(next_activity, created[0], event_code=0)  # not a valid ActivityEvent


def _dlq(stage: str) -> Expected:
    return Expected("dead_lettered", stage=stage)
