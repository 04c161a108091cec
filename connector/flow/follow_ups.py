"""[pure] The follow-ups of completion tracking (SPEC §13): once a :class:`Check` has its terminal
status, a follow-up results record for each source record of its call (``succeeded``, ``failed``
with LeadSquared's reason, or ``unknown``). A failed record is first read back from its source
offset (:class:`~connector.flow.ports.Originals`) and dead-lettered as it was, stage
``leadsquared``; one that retention removed is not, and its follow-up says so."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from connector.logs import get_logger
from connector.records import DeadLetter

if TYPE_CHECKING:
    from collections.abc import Callable, Collection

    from connector.flow.offsets import TopicPartitionKey
    from connector.flow.ports import Output, SourceReadBack
    from connector.flow.tally import Tally
    from connector.lsq.status import Report
    from connector.records import Accepted, SourceRecord
    from connector.transform.route import Route

__all__ = ["Check", "FollowUps"]

_log = get_logger(__name__)


@dataclass(slots=True, eq=False)
class Check:
    """One accepted call whose outcome in LeadSquared is not known yet."""

    request_id: str
    route: Route
    records: list[SourceRecord]
    accepted: Accepted
    since: float  # wall-clock seconds it was accepted
    due: float  # wall-clock seconds of its next poll
    canary: bool = False
    ends: float = 0.0  # wall-clock seconds it is given up at
    polls: int = 0
    out: bool = False  # a poll is in flight
    last: str = ""  # what the last poll said

    @property
    def tp(self) -> TopicPartitionKey:
        record = self.records[0]
        return (record.topic, record.partition)


@dataclass(slots=True)
class _Failed:
    """A failed check's records waiting to be read back from their source offsets."""

    check: Check
    report: Report
    waiting: set[tuple[TopicPartitionKey, int]]
    originals: dict[int, SourceRecord | None] = field(default_factory=dict)


class FollowUps:
    """Writes the follow-ups of finished checks (after reading back the failed ones' records)."""

    def __init__(
        self,
        output: Output,
        originals: SourceReadBack,
        tally: Tally,
        wall: Callable[[], float],
        give_up_s: float,
    ) -> None:
        self._output, self._originals, self._tally = output, originals, tally
        self._wall, self._give_up_s = wall, give_up_s
        self._failed: dict[tuple[TopicPartitionKey, int], _Failed] = {}

    def write(self, check: Check, report: Report | None, why: str = "") -> None:
        """``check`` has its terminal status (``None``: none before the give-up time; ``why``
        says why, when it is not that no poll had one)."""
        if report is None or report.kind == "succeeded":
            self._follow_up(check, report, None, why)
            return
        waiting = {((r.topic, r.partition), r.offset) for r in check.records}
        failed = _Failed(check, report, waiting)
        for tp, offset in waiting:
            self._failed[(tp, offset)] = failed
            self._originals.fetch(tp, offset)

    def forget(self, tps: Collection[TopicPartitionKey]) -> None:
        """Partitions no longer owned: their failed checks are checked again by the next owner."""
        for key in [key for key in self._failed if key[0] in tps]:
            del self._failed[key]

    def collect(self) -> None:
        """Failed checks whose originals were read back: their dead letters, then follow-ups."""
        for tp, offset, original in self._originals.fetched():
            failed = self._failed.pop((tp, offset), None)
            if failed is None:
                continue
            failed.waiting.discard((tp, offset))
            failed.originals[offset] = original
            if not failed.waiting:
                self._follow_up(failed.check, failed.report, failed.originals)

    def _follow_up(
        self,
        check: Check,
        report: Report | None,
        originals: dict[int, SourceRecord | None] | None,
        why: str = "",
    ) -> None:
        wall = self._wall()
        if report is None:
            status = "unknown"
            why = why or f"no terminal status within {self._give_up_s:g} s"
            reason = f"{why} (last poll: {check.last})" if check.last else why
        else:
            status, reason = report.kind, report.reason
        for record in check.records:
            note = reason
            if originals is not None:
                original = originals.get(record.offset)
                if original is None:
                    note = f"{reason} (not dead-lettered: the source record is no longer readable)"
                else:
                    self._dead_letter(check, report, original)
            follow = replace(
                check.accepted,
                status=status,
                reason=note,
                lead_id=None if report is None else report.lead_id or check.accepted.lead_id,
                completed_at_ms=int(wall * 1000),
            )
            self._output.result(record, follow, self._counted(check, record, status, note))

    def _dead_letter(self, check: Check, report: Report | None, original: SourceRecord) -> None:
        assert report is not None  # noqa: S101 - only failed checks have originals
        why = DeadLetter(
            "leadsquared",
            report.reason,
            "LeadSquaredFailed",
            report.exception_type,
            None,
            check.accepted.attempts,
        )

        def written() -> None:
            self._tally.dead_lettered_late += 1

        self._output.dead_letter(original, why, written)

    def _counted(
        self, check: Check, record: SourceRecord, status: str, reason: str
    ) -> Callable[[], None]:
        def written() -> None:
            setattr(self._tally, status, getattr(self._tally, status) + 1)
            log = _log.info if status == "succeeded" else _log.warning
            log(
                f"record.{status}",
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                route=check.route.name,
                request_id=check.request_id,
                polls=check.polls,
                waited_s=round(self._wall() - check.since, 3),
                **({} if status == "succeeded" else {"reason": reason}),
            )

        return written
