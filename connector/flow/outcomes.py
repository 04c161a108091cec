"""Every consumed record's outcome (SPEC §2.2): accepted, dead-lettered, skipped, or recovered
(its outcome was written before a restart). Outcomes are written through the output port; once the
broker acknowledged one, its offset is marked done for commits, and it is counted and logged, one
line per record. Also keeps the bytes held per partition, for the in-flight bound."""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

from connector.flow.offsets import OffsetTracker
from connector.flow.tally import Buckets, Tally
from connector.logs import get_logger
from connector.records import Accepted

if TYPE_CHECKING:
    from collections.abc import Callable, Collection

    from connector.flow.lanes import Job
    from connector.flow.offsets import TopicPartitionKey
    from connector.flow.ports import Input, Output
    from connector.lsq.answers import Verdict
    from connector.records import Answer, DeadLetter, SourceRecord
    from connector.transform.route import Route

__all__ = ["Outcomes", "names"]

_log = get_logger(__name__)


class Outcomes:
    """Tracks consumed records until their outcomes are durable."""

    def __init__(self, output: Output, wall: Callable[[], float]) -> None:
        self.output, self._wall = output, wall
        self.result_latency = Buckets()  # source record's timestamp → its result acknowledged
        self.commit_latency = Buckets()
        self.offsets = OffsetTracker()
        self.tally = Tally()
        self._bytes: defaultdict[TopicPartitionKey, int] = defaultdict(int)
        self._recovered: dict[TopicPartitionKey, set[int]] = {}
        self._owned: dict[TopicPartitionKey, int] = {}  # times each partition was forgotten

    def take(self, record: SourceRecord) -> bool:
        """Start tracking a consumed record; ``False`` when it needs no work: delivered twice
        within one assignment, or its outcome was written before a restart."""
        tp = (record.topic, record.partition)
        if not self.offsets.add(tp, record.offset):
            return False
        self.tally.consumed += 1
        self._bytes[tp] += record.size
        if record.offset in self._recovered.get(tp, ()):
            self._recovered[tp].discard(record.offset)
            reason = "its outcome was written before a restart"
            self._durable(record, None, "recovered", {"reason": reason})()
            return False
        return True

    def found(self, done: dict[TopicPartitionKey, set[int]]) -> None:
        """Offsets of newly assigned partitions that already have an outcome."""
        self._recovered.update(done)
        if done:
            counts = {f"{t}[{p}]": len(offsets) for (t, p), offsets in done.items()}
            _log.info("partitions.outcomes_found", records=counts)

    def accepted(
        self, job: Job, route: Route, verdict: Verdict, answer: Answer, call_id: str | None = None
    ) -> Accepted:
        """Write the results record of an accepted call (or of its row): one for the job's
        record and one for each record whose change it carried too (coalesced)."""
        accepted = Accepted(
            route.operation,
            route.name,
            route.account,
            verdict.request_id,
            verdict.lead_id,
            submitted_at_ms=int(job.sent_wall * 1000),
            attempts=job.attempts,
            http_status=answer.status or 0,
            status="succeeded" if verdict.applied else "accepted",
            activity_id=verdict.activity_id,
            call_id=call_id,
            batch_row=verdict.row,
            coalesced=bool(job.riders),
        )
        fields = {
            "request_id": verdict.request_id,
            "lead_id": verdict.lead_id,
            "attempts": job.attempts,
            "wait_s": round((job.first_sent_at or job.queued_at) - job.queued_at, 3),
        }
        if call_id is not None:
            fields |= {"call_id": call_id, "batch_row": verdict.row}
        if verdict.activity_id is not None:
            fields["activity_id"] = verdict.activity_id
        if job.riders:
            fields["coalesced"] = 1 + len(job.riders)
        for record in (job.record, *job.riders):
            self.output.result(record, accepted, self._durable(record, route, "accepted", fields))
        return accepted

    def dead_letter(self, record: SourceRecord, route: Route | None, why: DeadLetter) -> None:
        """Write the record to the dead-letter topic with the reason."""
        fields: dict[str, Any] = {"stage": why.stage, "reason": why.reason}
        fields |= {"attempts": why.attempts}
        if why.http_status is not None:
            fields["http_status"] = why.http_status
        self.output.dead_letter(record, why, self._durable(record, route, "dead_lettered", fields))

    def skipped(self, record: SourceRecord, route: Route, reason: str) -> None:
        """A record that needs nothing (tombstone, delete by default): done at once."""
        self.tally.no_change += reason == "no_change"
        self._durable(record, route, "skipped", {"reason": reason})()

    def commit(
        self, source: Input, only: set[TopicPartitionKey] | None, clock: Callable[[], float]
    ) -> None:
        """Commit the contiguous done prefix of each partition (of ``only``, when given)."""
        committable = self.offsets.committable().items()
        positions = {tp: offset for tp, offset in committable if only is None or tp in only}
        if not positions:
            return
        started = clock()
        error = source.commit(positions)
        self.commit_latency.observe(clock() - started)
        if error is not None:
            _log.warning("commit.failed", error=error, partitions=names(list(positions)))
            return
        self.offsets.committed(positions)

    def pending(self) -> int:
        """Records consumed without a durable outcome yet."""
        return self.offsets.pending()

    def bytes_held(self) -> int:
        """Bytes of those records."""
        return sum(self._bytes.values())

    def pressure(
        self, max_records: int, max_bytes: int, held: Collection[TopicPartitionKey] = ()
    ) -> bool | None:
        """``True`` when the records or bytes held reach their bound (pause the input),
        ``False`` when both are at most 80% of it (resume), ``None`` in between. Records of
        ``held`` partitions (paused on their own) do not count."""
        pending, size = self.pending(), self.bytes_held()
        for tp in held:
            pending, size = pending - self.offsets.pending(tp), size - self._bytes.get(tp, 0)
        if pending >= max_records or size >= max_bytes:
            return True
        return False if pending <= 0.8 * max_records and size <= 0.8 * max_bytes else None

    def forget(self, tps: list[TopicPartitionKey]) -> None:
        """Partitions no longer owned: drop their state (their outcomes change nothing now). Their
        records without a durable outcome are handed back, consumed again by the next owner: they
        no longer count as consumed here, nor does an outcome of theirs that is acknowledged
        later (so ``lost`` stays what it says)."""
        for tp in tps:
            self.tally.consumed -= self.offsets.undone(tp)
            self._owned[tp] = self._owned.get(tp, 0) + 1
        self.offsets.forget(tps)
        for tp in tps:
            self._bytes.pop(tp, None)
            self._recovered.pop(tp, None)

    def _durable(
        self, record: SourceRecord, route: Route | None, outcome: str, fields: dict[str, Any]
    ) -> Callable[[], None]:
        tp = (record.topic, record.partition)
        owned = self._owned.get(tp, 0)  # which ownership of the partition the record came in

        def done() -> None:
            if self._owned.get(tp, 0) == owned:
                setattr(self.tally, outcome, getattr(self.tally, outcome) + 1)
            self.offsets.done(tp, record.offset)
            if tp in self._bytes:
                self._bytes[tp] -= record.size
            if route is not None:
                fields.update(route=route.name, operation=route.operation)
                self.tally.by_route[route.name] += 1
            if outcome == "accepted" and record.timestamp_ms is not None:
                self.result_latency.observe(max(0.0, self._wall() - record.timestamp_ms / 1000))
            where = {"topic": record.topic, "partition": record.partition, "offset": record.offset}
            _log.info(f"record.{outcome}", **where, **fields)

        return done


def names(tps: list[TopicPartitionKey]) -> list[str]:
    """Partitions as log lines name them: ``topic[partition]``."""
    return [f"{topic}[{partition}]" for topic, partition in sorted(tps)]
