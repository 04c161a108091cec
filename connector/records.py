"""Small frozen values that cross the pipeline's steps (SPEC §2): a consumed
:class:`SourceRecord` → decoded and unwrapped :class:`Change` → mapped :class:`Payload`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "Accepted",
    "Answer",
    "Change",
    "ChangeOp",
    "DeadLetter",
    "Mode",
    "Operation",
    "Payload",
    "Skip",
    "SourceRecord",
    "Stage",
    "Unfinished",
]

#: The LeadSquared operations a route can perform (SPEC §3).
Operation = Literal["capture", "update", "lead_and_activity", "create"]

#: ``async``: LeadSquared's async API host (answers with a RequestID); ``sync``: the v2 API host.
Mode = Literal["async", "sync"]

#: Where a record failed, as written in the ``lsq.error.stage`` DLQ header (SPEC §5); ``route``:
#: its topic reached the connector but no route consumes it; ``leadsquared``: LeadSquared accepted
#: it, then failed it in its queue (the Status API said so, SPEC §13).
Stage = Literal["route", "decode", "unwrap", "map", "submit", "leadsquared"]

_REASON_MAX = 1000

#: Debezium change kinds: create, update, snapshot read, delete.
ChangeOp = Literal["c", "u", "r", "d"]

#: Metadata naming the snapshot a change was read in: Debezium's ``source.snapshot`` (an envelope's
#: ``source`` field, or ``__snapshot`` / ``__source_snapshot`` of a flattened record).
_SNAPSHOT_META = ("snapshot", "source_snapshot")


@dataclass(frozen=True, slots=True)
class SourceRecord:
    """One consumed Kafka record, exactly as it came from the broker."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()
    timestamp_ms: int | None = None

    @property
    def size(self) -> int:
        """Bytes held in memory for this record (key + value), for the in-flight bound."""
        return len(self.key or b"") + len(self.value or b"")


@dataclass(frozen=True, slots=True)
class Change:
    """A row change unwrapped from a CDC envelope (or a plain row, treated as a create).

    ``after`` is the row after the change (``None`` for deletes), ``before`` the row before it
    when the source provides it. ``meta`` holds the envelope's metadata: Debezium ``source``
    fields and ``ts_ms``, or the ``__``-prefixed fields of flattened records (prefix removed).
    ``ts_ms`` is when the change happened at the source, when known.
    """

    op: ChangeOp
    after: Mapping[str, Any] | None
    before: Mapping[str, Any] | None = None
    meta: Mapping[str, Any] | None = None
    ts_ms: int | None = None

    @property
    def row(self) -> Mapping[str, Any]:
        """The row the change is about: ``after``, or ``before`` for a delete."""
        return (self.before if self.op == "d" else self.after) or {}

    @property
    def snapshot(self) -> bool:
        """Whether it is a snapshot read (SPEC §7 priorities): op ``r``, or ``source.snapshot``
        set to anything but ``"false"`` (``"true"``, ``"first"``, ``"last"``, ``"incremental"``,
        ...; or ``true``). Everything else is a live change."""
        meta = self.meta or {}
        flags = (meta.get(name) for name in _SNAPSHOT_META)
        return self.op == "r" or any(
            flag is True or (isinstance(flag, str) and flag not in {"", "false"}) for flag in flags
        )


@dataclass(frozen=True, slots=True)
class Skip:
    """A record that needs no API call (tombstone, truncate, ...), with the reason."""

    reason: str


@dataclass(frozen=True, slots=True)
class Payload:
    """A rendered LeadSquared call without credentials: the operation, the query parameters
    that are not keys (``leadId``, ``postUpdatedLead``, ``LeadUpdateBehavior``) and the JSON body
    exactly as the API documents it (an Attribute/Value list, or an object for CreateCustom).

    ``snapshot``: it carries only snapshot reads (:attr:`Change.snapshot`), which wait behind live
    changes; no part of the call, so payloads equal without it."""

    operation: Operation
    params: tuple[tuple[str, str], ...]
    body: list[dict[str, Any]] | dict[str, Any]
    snapshot: bool = field(default=False, compare=False)


@dataclass(frozen=True, slots=True)
class Answer:
    """What one HTTP call to LeadSquared came back with.

    ``status`` is ``None`` when no HTTP answer arrived; ``error`` then says why (connection
    refused, timed out, ...) and ``maybe_sent`` whether LeadSquared may have received the request
    anyway (a read timeout or a dropped connection after sending), which makes a retry ambiguous.
    """

    status: int | None
    body: bytes = b""
    error: str | None = None
    maybe_sent: bool = True


@dataclass(frozen=True, slots=True)
class Accepted:
    """What LeadSquared accepted for a record: becomes its results record. A follow-up results
    record (SPEC §13) says what LeadSquared then did with it: ``status`` succeeded, failed or
    unknown, with the ``reason`` and ``completed_at_ms``."""

    operation: str
    route: str
    account: str
    request_id: str | None
    lead_id: str | None
    submitted_at_ms: int
    attempts: int
    http_status: int
    status: str = "accepted"  # "succeeded": applied at once (a bulk call's row)
    activity_id: str | None = None
    call_id: str | None = None  # the call that carried it, when it carried several records
    batch_row: int | None = None  # its row in a bulk call (1-based)
    coalesced: bool = False  # its key's later state went out in the same call
    reason: str | None = None  # a follow-up's: LeadSquared's status reason, or why it is unknown
    completed_at_ms: int | None = None  # a follow-up's: when its terminal status was seen


@dataclass(frozen=True, slots=True)
class Unfinished:
    """An accepted results record read back with no follow-up after it: its status check goes
    on (SPEC §13)."""

    record: SourceRecord  # position, key and timestamp of the source record (no value)
    request_id: str
    attempts: int
    accepted_at: float  # wall-clock seconds


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """Why a record is dead-lettered: stage, reason and what LeadSquared answered, if anything."""

    stage: Stage
    reason: str
    error_class: str
    exception_type: str | None = None
    http_status: int | None = None
    attempts: int = 0

    def __post_init__(self) -> None:
        # Reasons may quote the offending value: keep headers and log lines small.
        if len(self.reason) > _REASON_MAX:
            cut = f"{self.reason[:_REASON_MAX]}… ({len(self.reason) - _REASON_MAX} more characters)"
            object.__setattr__(self, "reason", cut)
