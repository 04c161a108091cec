"""A no-op skip never drops a real change (SPEC §2.9), as a property: random histories of changes
per key (two keys, two values, so changes back to an old value are common), with state writes
delivered, lost or stalled at random, failed or unknown statuses, deletes, dead letters after
ambiguous failures and rejections, crashes in the middle of a call, partial read backs and
partition handovers (graceful or not: a new :class:`FingerprintStore` reads back only what the
state topic durably holds). A model keeps what LeadSquared was last sent and accepted for each
key (``None`` once that is not known); a skip is only ever taken for exactly that payload.

One case is left out by design: an owner that learns of a failed status or a delete while its
open marker was never acknowledged, and hands over before it is. Nothing it learns can be recorded
in a state topic that takes none of its writes (the marker is written again every ``retry_s``), so
here those events wait for the partition to open, as its calls do."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector.flow.deadline import Deadline
from connector.flow.fingerprints import FingerprintStore
from connector.records import Skip, SourceRecord
from tests.unit.test_fingerprints import FakeStateTopic, job

if TYPE_CHECKING:
    from connector.flow.lanes import Job
    from tests.unit.test_fingerprints import Fate

TP = ("leads", 0)
KEYS = ("k1", "k2")
VALUES = ("A", "B")
#: how a call ends: accepted (mostly), dead-lettered after an ambiguous failure or a rejection,
#: or the owner crashes while it is out (the record is consumed again by the next owner)
OUTCOMES = ("accepted", "accepted", "accepted", "ambiguous", "rejected", "crash")
FATES: tuple[Fate, ...] = ("deliver", "fail", "stall")

Op = tuple[str, ...]
OPS = st.one_of(
    st.tuples(
        st.just("change"), st.sampled_from(KEYS), st.sampled_from(VALUES), st.sampled_from(OUTCOMES)
    ),
    st.tuples(st.just("delete"), st.sampled_from(KEYS)),
    st.tuples(st.just("doubt"), st.sampled_from(KEYS)),  # a failed or unknown status of its call
    st.tuples(st.just("handover"), st.sampled_from(["graceful", "graceful", "crash", "partial"])),
    st.tuples(st.just("late")),  # earlier owners' producers deliver what their flush gave up on
)


class History:
    """Plays ``ops`` against owners of partition 0, as the loop would, checking every skip."""

    def __init__(self, rng: random.Random, odds: tuple[int, int, int] = (4, 1, 1)) -> None:
        self.rng, self.odds, self.now, self.offset = rng, odds, 0.0, 0
        self.states = FakeStateTopic(partitions=1, fate=self._fate)
        self.model: dict[str, str | None] = {}  # what LeadSquared was last sent and accepted
        self.backlog: list[Op] = []  # records not consumed yet, or consumed again after a crash
        self.earlier: list[FakeStateTopic] = []  # producers of owners that handed over
        self.skips = 0
        self.memory = self._owner()

    def play(self, ops: list[Op]) -> None:
        for op in ops:
            self._check()
            if op[0] == "handover":
                self._handover(op[1])
            elif op[0] == "late":
                self._late()
            else:
                self.backlog.append(op)
            self._consume()
        self._check()

    def _check(self) -> None:
        """Every skip the owner would take now (any key, any value) is of what LeadSquared was
        last sent and accepted."""
        for key in KEYS:
            for value in VALUES:
                if self.memory.unchanged(job(key, value)):
                    assert self.model.get(key) == value, (key, value, self.model)

    def _fate(self, _marker: bytes | None) -> Fate:
        return self.rng.choices(FATES, weights=self.odds)[0]

    def _owner(self) -> FingerprintStore:
        memory = FingerprintStore(self.states, clock=lambda: self.now)
        memory.restore([TP])
        return memory

    def _handover(self, how: str) -> None:
        """The partition goes to an owner in another process (its own producer, the same
        broker): after a graceful revoke (whose flush may give up on stalled writes, delivered
        later or never) or a crash; ``partial``: its read back stops half way."""
        if how == "crash":
            self.states.crash()
        else:
            self.memory.settle(Deadline.after(1.0))
            self.earlier.append(self.states)
        self.memory.forget([TP])
        logs = self.states.logs
        self.states = FakeStateTopic(partitions=1, logs=logs, fate=self._fate)
        self.states.partial = {0} if how == "partial" else set()
        self.memory = self._owner()
        self.states.partial = set()

    def _late(self) -> None:
        for producer in self.earlier:
            for write in producer.flight:
                write.fate = self.rng.choice(("deliver", "fail"))
            producer.deliver()
        self.earlier.clear()

    def _consume(self) -> None:
        """Records in order, until one waits for its partition to open (the rest wait too)."""
        while self.backlog and self._record(self.backlog[0]):
            self.backlog.pop(0)

    def _record(self, op: Op) -> bool:
        """One record; whether it has its outcome."""
        self.offset += 1
        if op[0] in {"delete", "doubt"}:  # a delete record, or a failed or unknown status
            record = SourceRecord("leads", 0, self.offset, op[1].encode(), None)
            if not self._open(job(op[1], "", self.offset)):
                return False
            if op[0] == "delete":
                self.memory.settled(record, Skip("delete"))
            else:
                self.memory.invalidate(record)
            self.model[op[1]] = None
            return True
        _, key, value, outcome = op
        call = job(key, value, self.offset)
        if self.memory.unchanged(call):
            assert self.model.get(key) == value, (key, value, self.model)
            self.skips += 1
            return True
        if not self._open(call):
            return False
        if outcome == "accepted":
            self.memory.accepted(call)
            self.model[key] = value
            return True
        self.model[key] = None  # LeadSquared may hold it (or still the one before)
        if outcome == "crash":
            self.backlog[0] = ("change", key, value, "accepted")  # the next owner sends it again
            self._handover("crash")
            return False
        self.memory.invalidate(call.record)  # dead-lettered
        return True

    def _open(self, call: Job) -> bool:
        """Whether the call may go out now, as the loop asks (marker receipts taken first; a
        refused marker is written again after a while)."""
        for _ in range(3):
            if not self.memory.closed or self.memory.admits(call):
                return True
            self.now += 10.0
        return False


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(OPS, min_size=20, max_size=100), st.randoms(use_true_random=False))
def test_a_skip_is_only_taken_for_what_leadsquared_was_last_sent(
    ops: list[Op], rng: random.Random
) -> None:
    History(rng).play(ops)


def test_histories_do_skip() -> None:
    """The property is not vacuous: with every write delivered, owners handing over gracefully
    skip the changes LeadSquared already has."""
    history = History(random.Random(1), odds=(1, 0, 0))  # noqa: S311 - test data
    ops: list[Op] = [("change", "k1", "A", "accepted"), ("handover", "graceful")]
    ops += [("change", "k1", "A", "accepted"), ("change", "k1", "B", "accepted")]
    ops += [("handover", "graceful"), ("change", "k1", "B", "accepted")]
    history.play(ops)
    assert history.skips == 2
