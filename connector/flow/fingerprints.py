"""[pure] The no-op skip (SPEC §12): a change whose payload has the fingerprint of what LeadSquared
was last sent and accepted for its key changes nothing and is skipped as ``no_change``, even
without Debezium's ``before``. :class:`FingerprintStore` keeps those fingerprints for the owned
partitions (:mod:`connector.flow.fingerprint_table`) and in the compacted ``output.state_topic``
(:mod:`connector.flow.state_log`), read back when partitions are assigned.

A skip must never change the result (SPEC §2.9): a fingerprint is kept only while it is what
LeadSquared was last sent. Locally that is bookkeeping: a fingerprint is written when a call is
accepted, and forgotten (with a tombstone) when the key's next call is dead-lettered (after an
ambiguous failure LeadSquared may hold it; after a rejection it is not what the source holds),
when status tracking reports a call ``failed`` or ``unknown``, and when the key is deleted. The hard
part is the state topic, whose writes are fire-and-forget: any of them may be lost (a full
producer, a failed delivery, a crash before delivery, a stop whose flush ran out of time), and a
later owner reading an OLDER fingerprint back would skip a change back to it (A → B, B's write
lost: the change back to A is skipped, LeadSquared keeps B).

No per-key rule fixes that with fire-and-forget writes: a tombstone written before each call (the
new fingerprint after acceptance) helps only if it is acknowledged before the call goes out, since
a lost tombstone and a lost fingerprint leave the old value: a broker round trip per call. So the
proof is per partition, in the log itself (records and rules: :mod:`connector.flow.state_log`):

1. An owner trusts what it reads back only when the read reached the partition's end and a
   **seal** covers every record of the topic. A seal is written only by
   :meth:`FingerprintStore.settle` (on revoke and at stop), only after a flush saw **every**
   write of the partition acknowledged; it names its owner's tenure and how far that owner read,
   and records carry their writer's tenure, so a seal that lands late, or a write of an earlier
   owner that lands after the read (its producer may deliver for minutes after its flush gave
   up), proves nothing. Anything else (a crash, a lost or refused write, a flush out of time, a
   partial read) leaves the log unproved: the next owner trusts nothing, writes a reset and
   starts afresh (no skips until keys are accepted again).
2. A seal cannot tell that an owner changed LeadSquared after it if that owner's every write was
   lost. So an owner that read fingerprints back (trusted or not) sends no call for the partition
   until its **open** (or reset) marker is acknowledged (:meth:`FingerprintStore.admits`: normally
   one round trip after the assignment; refused markers are written again every ``retry_s``). Once
   LeadSquared may change, the log says so. A partition with no fingerprint needs no such wait.
3. One idempotent producer writes fingerprints only after acceptance and a tombstone whenever one
   is forgotten, in order per partition, so a proved log holds exactly the fingerprints its owner
   held: none that LeadSquared was not last sent.

So a lost write only means that a later unchanged record is sent. Bounds: one table per held
partition (16 bytes per key at 3/4 load) and a few integers per partition; the state topic keeps
one record per key and three markers per source partition."""

from __future__ import annotations

import random
import time
from typing import TYPE_CHECKING

from connector.flow.fingerprint_table import (
    Fingerprints,
    Table,
    fingerprint,
    key_id,
    state_key,
)
from connector.flow.outcomes import names
from connector.flow.state_log import (
    OPEN,
    RESET,
    SEAL,
    fingerprint_value,
    marker_key,
    marker_value,
    seal_value,
)
from connector.logs import get_logger
from connector.records import DeadLetter, Skip

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Iterable

    from connector.flow.deadline import Deadline
    from connector.flow.lanes import Job
    from connector.flow.offsets import TopicPartitionKey
    from connector.flow.ports import StateTopicPort
    from connector.records import SourceRecord

__all__ = ["FingerprintStore", "Fingerprints", "Table", "fingerprint", "key_id", "state_key"]

_log = get_logger(__name__)
_DELETES = frozenset({"delete", "tombstone"})  # the Skip reasons of records that delete their key
_CLOSED_WAIT_S = 0.02  # see FingerprintStore.idle


def _tenure() -> int:
    return random.getrandbits(64) or 1  # 0 is the tenure of values earlier releases wrote


class FingerprintStore:
    """What LeadSquared was last sent and accepted for each key of the held partitions (those
    the state topic has), kept in the state topic through the
    :class:`~connector.flow.ports.States` port: a record with exactly that payload is skipped."""

    def __init__(
        self,
        states: StateTopicPort,
        clock: Callable[[], float] = time.monotonic,
        retry_s: float = 5.0,
        tenure: Callable[[], int] = _tenure,
    ) -> None:
        self._states, self._clock, self._retry_s, self._new_tenure = states, clock, retry_s, tenure
        self._prints = Fingerprints()
        self._tenure: dict[TopicPartitionKey, tuple[int, int]] = {}  # tenure, offset read to
        self._closed: dict[TopicPartitionKey, bytes] = {}  # open/reset marker not acknowledged
        self._again: dict[TopicPartitionKey, float] = {}  # when a refused marker is written again
        self._tainted: set[TopicPartitionKey] = set()  # a write of theirs was lost: never sealed

    def __len__(self) -> int:
        return len(self._prints)

    # -- partitions -----------------------------------------------------------------------------

    def restore(self, tps: Collection[TopicPartitionKey]) -> None:
        """Newly assigned partitions: read their fingerprints back, if the log proves them; a
        partition the state topic does not have gets none (and none are written for it)."""
        for tp, replay in self._states.read(tps).items():
            self.forget([tp])
            trusted = replay.trusted
            self._prints.adopt(tp, replay.table if trusted else Table())
            self._tenure[tp] = (self._new_tenure(), replay.high)
            if not trusted:
                why = "not sealed" if replay.complete else "read back only partly"
                _log.warning("state.not_trusted", topic=tp[0], partition=tp[1], reason=why)
            if replay.kept:  # LeadSquared may change: the log says so before any call
                self._closed[tp] = OPEN if trusted else RESET
                self._mark(tp, self._closed[tp])
        self._receive()

    def forget(self, tps: Iterable[TopicPartitionKey]) -> None:
        """Partitions no longer owned: their keys may change elsewhere."""
        for tp in list(tps):
            self._prints.forget([tp])
            self._tenure.pop(tp, None)
            self._closed.pop(tp, None)
            self._again.pop(tp, None)
            self._tainted.discard(tp)

    def settle(self, deadline: Deadline, tps: Collection[TopicPartitionKey] | None = None) -> bool:
        """By ``deadline``: wait for every write to be acknowledged, then seal ``tps`` (every
        held partition when ``None``) so their next owner trusts what they hold; whether all of
        them were sealed. Call it after the partitions' last calls settled, before
        :meth:`forget` (on revoke) and at a graceful stop."""
        flushed = self._states.flush(deadline)
        self._receive()
        scope = [tp for tp in (self._prints.held() if tps is None else tps) if tp in self._tenure]
        clean = [tp for tp in scope if tp not in self._tainted and tp not in self._closed]
        sealing = clean if flushed else []
        for tp in sealing:
            self._states.write(tp, marker_key(SEAL, tp[0]), seal_value(*self._tenure[tp]), SEAL)
        sealed = not sealing or self._states.flush(deadline)
        self._receive()
        if unsealed := sorted(set(scope) - set(sealing) if sealed else scope):
            why = "lost writes or no open marker" if flushed and sealed else "writes unacknowledged"
            _log.warning("state.not_sealed", partitions=names(unsealed), reason=why)
        return not unsealed

    # -- keys -----------------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """Whether a partition waits for its open or reset marker to be acknowledged (its calls
        wait meanwhile: :meth:`admits`); the receipts that came are taken first."""
        if self._closed:
            self._receive()
        return bool(self._closed)

    def admits(self, job: Job) -> bool:
        """Whether a call for ``job`` may go out: not while its partition's fingerprints may be
        read back by a later owner that would not know LeadSquared changed (module, point 2)."""
        return job.tp not in self._closed

    def idle(self) -> float:
        """Least seconds the loop waits for work while calls wait for a marker (else 0)."""
        return _CLOSED_WAIT_S if self.closed else 0.0

    def unchanged(self, job: Job) -> bool:
        """Whether LeadSquared was last sent, and accepted, exactly this payload for the key."""
        key = job.record.key
        known = None if key is None else self._prints.get(job.tp, key)
        return known is not None and known == fingerprint(job.payload)

    def accepted(self, job: Job, *, remember: bool = True) -> None:
        """LeadSquared accepted the job's payload: remember it, here and in the state topic
        (for a route that does not ``remember``, forget what was read back for the key)."""
        key, tp = job.record.key, job.tp
        if not remember:
            self.invalidate(job.record)
        elif key is not None and tp in self._tenure:
            value = fingerprint(job.payload)
            self._prints.put(tp, key, value)
            self._write(tp, key, fingerprint_value(value, self._tenure[tp][0]))

    def invalidate(self, record: SourceRecord) -> None:
        """LeadSquared may not hold what it was last sent for ``record``'s key, or the key was
        deleted: forget its fingerprint, here and in the state topic (a tombstone)."""
        tp, key = (record.topic, record.partition), record.key
        if key is not None and self._prints.drop(tp, key):
            self._write(tp, key, None)

    def settled(self, record: SourceRecord, outcome: Skip | DeadLetter | None) -> None:
        """``record`` had ``outcome`` without a call: a delete (skipped or dead-lettered, by the
        route's policy) or the tombstone after one forgets the key, so a row inserted again with
        the old values is sent."""
        deleted = isinstance(outcome, DeadLetter) and outcome.error_class == "DeleteEvent"
        if deleted or (isinstance(outcome, Skip) and outcome.reason in _DELETES):
            self.invalidate(record)

    # -- the state topic ------------------------------------------------------------------------

    def _write(self, tp: TopicPartitionKey, key: bytes, value: bytes | None) -> None:
        self._states.write(tp, state_key(tp[0], key), value)
        self._receive()

    def _mark(self, tp: TopicPartitionKey, marker: bytes) -> None:
        self._states.write(tp, marker_key(marker, tp[0]), marker_value(self._tenure[tp][0]), marker)

    def _receive(self) -> None:
        """Take the receipts of earlier writes: markers acknowledged, refused ones written again
        after ``retry_s``, fingerprints lost (their partition is not sealed this time)."""
        for receipt in self._states.receipts():
            tp = receipt.tp
            if tp not in self._tenure:
                continue  # no longer held
            if receipt.gone:
                _log.warning("state.no_partition", topic=tp[0], partition=tp[1])
                self.forget([tp])
            elif receipt.marker is not None and self._closed.get(tp) == receipt.marker:
                if receipt.written:
                    del self._closed[tp]
                else:
                    self._again[tp] = self._clock() + self._retry_s
            elif receipt.marker is None and not receipt.written and tp not in self._tainted:
                _log.warning("state.write_lost", topic=tp[0], partition=tp[1])
                self._tainted.add(tp)
        now = self._clock()
        for tp in [tp for tp, at in self._again.items() if at <= now]:
            del self._again[tp]
            self._mark(tp, self._closed[tp])
