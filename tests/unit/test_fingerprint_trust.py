"""A no-op skip never drops a real change (SPEC §2.9): a fingerprint is trusted only while it is
what LeadSquared was last sent for its key. Each way it could go stale (a state write lost or
refused, a crash, a partial read back, a failed or unknown status, a dead letter after an
ambiguous failure or a rejection, a delete, a tombstone read back) has its case here (what a seal
proves against late writes: :mod:`tests.unit.test_fingerprints`); the property in
:mod:`tests.unit.test_fingerprint_history` drives random histories of all of them through owners
handing the partition over."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pytest

from connector.flow.deadline import Deadline
from connector.flow.fingerprint_table import key_id, state_key
from connector.flow.fingerprints import FingerprintStore
from connector.flow.state_log import (
    OPEN,
    RESET,
    SEAL,
    fingerprint_value,
    marker_key,
    seal_value,
)
from connector.records import Answer, DeadLetter, SourceRecord
from connector.settings.model import RetrySettings
from tests.unit.pipeline_fakes import ACCEPTED, DUPLICATE, UNAVAILABLE, harness, route
from tests.unit.test_fingerprints import FakeStateTopic, change, job
from tests.unit.tracking_fakes import DUPLICATE as FAILED_STATUS
from tests.unit.tracking_fakes import FIRST_POLL, accept_all, status_settings

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.unit.pipeline_fakes import Harness
    from tests.unit.test_fingerprints import Fate

TP = ("leads", 0)
KEY = state_key("leads", b"k")


def owner(states: FakeStateTopic, clock: Callable[[], float] | None = None) -> FingerprintStore:
    """A new owner of partition 0: its memory, restored from what the state topic holds."""
    memory = FingerprintStore(states) if clock is None else FingerprintStore(states, clock=clock)
    memory.restore([TP])
    return memory


def sealed(states: FakeStateTopic, **fingerprints: str) -> None:
    """An owner that had ``fingerprints`` accepted and handed the partition over gracefully."""
    memory = owner(states)
    for key, value in fingerprints.items():
        memory.accepted(job(key, value))
    assert memory.settle(Deadline.after(1.0))


def loop(states: FakeStateTopic, **options: Any) -> Harness:
    """The loop over fakes with a memory of ``states``, assigned partition 0."""
    h = harness(memory=FingerprintStore(states), **options)
    h.input.rebalances.append(("assigned", [TP]))
    return h


def sent_values(h: Harness) -> list[str]:
    return [s.request.body[1]["Value"] for s in h.calls.sent]  # type: ignore[index]


# -- 1. writes lost, refused or not flushed; a read back that did not finish -------------------


def test_a_sealed_partition_is_trusted_by_its_next_owner() -> None:
    states = FakeStateTopic()
    sealed(states, k="A")
    assert owner(states).unchanged(job("k", "A"))


def test_a_partition_read_back_only_partly_holds_no_fingerprint() -> None:
    """A read that did not reach the partition's end may miss the write that changed the key:
    nothing it read is trusted, and the owner voids the log (a reset) before any call."""
    states = FakeStateTopic()
    sealed(states, k="A", j="C")  # two fingerprints and a seal: the half that is read
    states.logs[0] += [(KEY, fingerprint_value(5, 9))] * len(states.logs[0])  # and the rest
    states.partial = {0}
    memory = owner(states)
    assert not memory.unchanged(job("k", "A"))
    assert not memory.unchanged(job("j", "C"))
    assert states.logs[0][-1][0] == marker_key(RESET, "leads")


@pytest.mark.parametrize("loss", ["delivery failed", "producer refused", "crash before delivery"])
def test_a_lost_state_write_leaves_the_next_owner_trusting_nothing(loss: str) -> None:
    """A → B, B's state write lost: the next owner must not skip the change back to A (it would
    read A back, and LeadSquared keeps B)."""
    states = FakeStateTopic()
    sealed(states, k="A")
    second = owner(states)
    lost: Fate = "fail" if loss == "delivery failed" else "stall"
    states.fate = lambda marker: lost if marker is None else "deliver"
    states.refuse = loss == "producer refused"
    second.accepted(job("k", "B", offset=1))
    states.refuse = False
    if loss == "crash before delivery":
        states.crash()
    else:
        assert not second.settle(Deadline.after(1.0))  # never sealed
    assert not owner(states).unchanged(job("k", "A", offset=2))


def test_settle_seals_only_once_every_write_is_acknowledged() -> None:
    """A write still in flight when the flush runs out of time (and lost later): no seal, so
    nothing is trusted."""
    states = FakeStateTopic()
    sealed(states, k="A")
    second = owner(states)
    states.fate = lambda marker: "stall" if marker is None else "deliver"
    second.accepted(job("k", "B", offset=1))
    assert not second.settle(Deadline.after(0.1))
    for write in states.flight:  # the producer goes on: B's write fails in the end
        write.fate = "fail" if write.marker is None else "deliver"
    states.deliver()
    seals = [key for key, _ in states.logs[0] if key == marker_key(SEAL, "leads")]
    assert len(seals) == 1  # the first owner's only
    assert not owner(states).unchanged(job("k", "A"))


def test_no_call_goes_out_before_the_open_marker_of_a_partition_with_fingerprints() -> None:
    """An owner whose every write is lost must not change LeadSquared under a seal a later owner
    still trusts: its calls wait until its open marker is acknowledged."""
    states = FakeStateTopic(partitions=1)
    sealed(states, k="A")
    states.fate = lambda marker: "stall" if marker == OPEN else "deliver"
    h = loop(states)
    h.feed(change(0, "k", "B"))
    h.turn(3)
    assert h.calls.sent == []
    for write in states.flight:
        write.fate = "deliver"
    h.turn()
    assert sent_values(h) == ["B"]


def test_an_owner_that_cannot_open_the_partition_sends_nothing_so_the_seal_stays_true() -> None:
    """Its open marker is refused (and written again later); meanwhile none of its calls go out,
    so the next owner rightly still trusts A."""
    states = FakeStateTopic()
    sealed(states, k="A")
    states.fate = lambda marker: "fail" if marker == OPEN else "deliver"
    now = [0.0]
    second = owner(states, clock=lambda: now[0])
    assert second.closed
    assert not second.admits(job("k", "B"))
    now[0] = 10.0  # a refused marker is written again after retry_s
    assert second.closed
    assert [write.marker for write in states.flight] == [OPEN]  # written again
    assert not second.admits(job("k", "B"))
    states.crash()
    assert owner(states).unchanged(job("k", "A"))


# -- 2. a failed or unknown status -------------------------------------------------------------


@pytest.mark.parametrize("status", ["failed", "unknown"])
def test_a_call_status_tracking_finds_failed_or_unknown_forgets_its_fingerprint(
    status: str,
) -> None:
    """A was accepted, then LeadSquared failed it (or never said): A again is sent."""
    states = FakeStateTopic(partitions=1)
    h = loop(states, status=status_settings(give_up_seconds=30.0))
    assert h.tracked is not None
    h.feed(change(0, "k", "A"))
    h.turn()
    accept_all(h.calls)
    h.turn(2)
    for _ in range(1 if status == "failed" else 8):
        h.clock.advance(FIRST_POLL)
        h.turn()
        missing = Answer(404, b'{"message":"No request found"}')
        h.tracked.calls.answer(FAILED_STATUS if status == "failed" else missing)
        h.turn(2)
    assert getattr(h.pipeline.tally, status) == 1
    assert (KEY, None) in states.logs[0]  # a tombstone: the next owner does not read A back
    h.feed(change(1, "k", "A"))
    h.turn()
    assert sent_values(h) == ["A", "A"]
    assert h.pipeline.tally.no_change == 0


# -- 3. a dead letter after an ambiguous failure, or a rejection -------------------------------


@pytest.mark.parametrize("answer", [UNAVAILABLE, DUPLICATE], ids=["ambiguous", "rejected"])
def test_a_dead_letter_of_the_keys_next_change_forgets_its_fingerprint(answer: Answer) -> None:
    """A accepted; B dead-lettered (retries exhausted on a 503: LeadSquared may hold B; or
    rejected); the change back to A is sent."""
    states = FakeStateTopic(partitions=1)
    h = loop(states, retry=RetrySettings(max_attempts=1))
    h.feed(change(0, "k", "A"))
    h.turn()
    h.calls.answer(ACCEPTED)
    h.turn(2)
    h.feed(change(1, "k", "B"))
    h.turn()
    h.calls.answer(answer)
    h.turn(2)
    assert h.output.kinds()[1] == "dead_letter"
    h.feed(change(2, "k", "A"))
    h.turn(2)
    assert sent_values(h) == ["A", "B", "A"]
    assert h.pipeline.tally.no_change == 0


# -- 4. deletes ----------------------------------------------------------------------------------

ROW = {"email": "k@x.io", "name": "A"}


@pytest.mark.parametrize(
    "deleted",
    [{"op": "d", "before": ROW, "after": None}, ROW | {"__deleted": "true"}, None],
    ids=["debezium delete", "flattened __deleted", "tombstone"],
)
def test_a_delete_forgets_its_keys_fingerprint(deleted: dict[str, Any] | None) -> None:
    """A accepted, the row deleted and inserted again with the same values: it is sent."""
    states = FakeStateTopic(partitions=1)
    h = loop(states)
    h.feed(change(0, "k", "A"))
    h.turn()
    h.calls.answer(ACCEPTED)
    h.turn(2)
    raw = None if deleted is None else json.dumps(deleted).encode()
    h.feed(SourceRecord("leads", 0, 1, b"k", raw), change(2, "k", "A"))
    h.turn(2)
    assert sent_values(h) == ["A", "A"]
    assert h.pipeline.tally.no_change == 0


def test_a_delete_the_route_dead_letters_forgets_its_keys_fingerprint_too() -> None:
    memory = owner(FakeStateTopic())
    memory.accepted(job("k", "A"))
    dead_lettering = replace(route(remember=True), on_delete="dead_letter")
    value = json.dumps({"op": "d", "before": ROW, "after": None}).encode()
    record = SourceRecord("leads", 0, 1, b"k", value)
    outcome = dead_lettering.prepare(record)
    assert isinstance(outcome, DeadLetter)
    memory.settled(record, outcome)
    assert not memory.unchanged(job("k", "A"))


def test_a_route_that_does_not_remember_forgets_what_was_read_back_for_a_key_it_sends() -> None:
    """A fingerprint read back for a key a route sends without remembering (its configuration
    changed) no longer holds, here or for the next owner."""
    states = FakeStateTopic()
    sealed(states, k="A")
    second = owner(states)
    second.accepted(job("k", "B"), remember=False)
    assert not second.unchanged(job("k", "A"))
    assert second.settle(Deadline.after(1.0))
    assert not owner(states).unchanged(job("k", "A"))


# -- 5. a tombstone read back --------------------------------------------------------------------


def test_a_tombstone_in_the_state_topic_clears_its_key_on_read_back() -> None:
    states = FakeStateTopic()
    states.logs[0] = [
        (KEY, fingerprint_value(11, 5)),
        (state_key("leads", b"j"), fingerprint_value(12, 5)),
        (KEY, None),
        (marker_key(SEAL, "leads"), seal_value(5, -1)),
    ]
    replay = states.read([TP])[TP]
    assert replay.trusted
    assert replay.table.get(key_id(KEY)) is None
    assert replay.table.get(key_id(state_key("leads", b"j"))) == 12
