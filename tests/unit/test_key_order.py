"""Per-key order covers every outcome (SPEC §2.4, §2.2): a record that needs no call (a delete
skipped or dead-lettered by policy, a mapping failure) gets its outcome only after the earlier
records of its key have theirs, and is handed back with them on a revoke. With the fakes of
:mod:`tests.unit.pipeline_fakes`."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pytest

from connector.records import DeadLetter
from tests.unit.pipeline_fakes import ACCEPTED, UNAVAILABLE, harness, record, route

if TYPE_CHECKING:
    from tests.unit.pipeline_fakes import Harness

TP = ("leads", 0)


def _written(h: Harness) -> list[tuple[int, str]]:
    return [(w.record.offset, w.kind) for w in h.output.written]


def test_a_skipped_delete_waits_for_the_update_of_its_key_in_flight() -> None:
    """Key k's update is out when k's delete (skipped by default) arrives: the delete is
    settled only once the update has its outcome, and no commit passes the update."""
    h = harness(auto_ack=False)
    h.feed(record(0, "k", "a@x.io"))
    h.turn()
    h.feed(record(1, "k", "a@x.io", op="d"), record(2, "other", "o@x.io"))
    h.turn()
    assert h.pipeline.tally.skipped == 0  # it waits behind the update
    assert h.calls.emails == ["a@x.io", "o@x.io"]  # other keys are not held
    h.calls.answer(ACCEPTED)
    h.turn()
    assert _written(h) == [(0, "result"), (2, "result")]
    assert h.pipeline.tally.skipped == 1
    assert h.input.committed_positions() == {}  # the update's result is not acknowledged yet
    h.output.ack(lambda _: True)
    h.turn()
    assert h.input.committed_positions() == {TP: 3}
    assert len(h.calls.sent) == 2


def _failing_render(email: str) -> Any:
    base = route()

    def render(change: Any, source: Any) -> Any:
        if change.after["email"] == email:
            raise ValueError("no lead identifier")
        return base.render(change, source)

    return replace(base, render=render)


@pytest.mark.parametrize(
    ("the_route", "later", "stage"),
    [
        (replace(route(), on_delete="dead_letter"), record(1, "k", "a@x.io", op="d"), "unwrap"),
        (_failing_render("bad@x.io"), record(1, "k", "bad@x.io"), "map"),
    ],
    ids=["delete-dead-lettered", "mapping-failure"],
)
def test_a_dead_letter_without_a_call_waits_for_the_retries_of_its_key(
    the_route: Any, later: Any, stage: str
) -> None:
    """Key k's update fails (503) and waits for its retry when a record of k that cannot be
    sent arrives: its dead letter is written only after the update's result."""
    h = harness()
    h.pipeline._routes = lambda topic: the_route if topic == "leads" else None
    h.feed(record(0, "k", "a@x.io"))
    h.turn()
    h.feed(later)
    h.turn()
    h.calls.answer(UNAVAILABLE)
    h.turn()
    assert _written(h) == []  # the update waits for its retry; the dead letter behind it
    h.clock.advance(5.0)
    h.turn()
    h.calls.answer(ACCEPTED)
    h.turn()
    assert _written(h) == [(0, "result"), (1, "dead_letter")]
    why = h.output.written[1].data
    assert isinstance(why, DeadLetter)
    assert why.stage == stage
    assert h.input.committed_positions() == {TP: 2}


def _names(h: Harness) -> list[str]:
    """The FirstName of every call, in the order sent."""
    out = []
    for sent in h.calls.sent:
        assert isinstance(sent.request.body, list)
        out += [a["Value"] for a in sent.request.body if a["Attribute"] == "FirstName"]
    return out


def test_a_later_change_never_joins_a_call_across_a_delete() -> None:
    """Coalescing stops at a record without a call: k's update queued behind the delete goes in
    a call of its own, after the delete's outcome; the one queued before it still coalesces."""
    h = harness(coalesce="latest", concurrency=1)
    h.feed(record(0, "k", "a@x.io"))
    h.turn()
    h.feed(
        record(1, "k", "a@x.io"),
        record(2, "k", "a@x.io"),  # coalesced into 1
        record(3, "k", "a@x.io", op="d"),
        record(4, "k", "a@x.io"),
    )
    h.turn()
    for _ in range(4):
        h.calls.answer(ACCEPTED)
        h.turn()
    assert _names(h) == ["lead 0", "lead 2", "lead 4"]
    assert _written(h) == [(0, "result"), (1, "result"), (2, "result"), (4, "result")]
    assert (h.pipeline.tally.skipped, h.pipeline.tally.coalesced) == (1, 1)
    assert h.input.committed_positions() == {TP: 5}


def test_a_delete_waiting_behind_its_key_is_handed_back_when_the_partition_is_lost() -> None:
    """A partition lost while k's update is out and k's delete waits: the delete gets no
    outcome (the next owner settles it), and the update's late answer writes nothing."""
    h = harness()
    h.feed(record(0, "k", "a@x.io"), record(1, "k", "a@x.io", op="d"))
    h.turn()
    h.pipeline.lost([TP])
    h.calls.answer(ACCEPTED)
    h.turn()
    assert (h.pipeline.tally.skipped, _written(h)) == (0, [])
    assert h.pipeline._dispatcher.lanes.due() == []
    assert len(h.pipeline._dispatcher.lanes) == 0


def test_a_revoke_settles_a_delete_whose_update_finishes_in_the_drain() -> None:
    """Revoked while k's update is out and k's delete waits: the update's answer arrives during
    the drain, the delete is settled right after it, and both are committed."""
    h = harness()
    h.feed(record(0, "k", "a@x.io"), record(1, "k", "a@x.io", op="d"))
    h.turn()
    h.calls.answer(ACCEPTED)
    h.pipeline.revoked([TP])
    assert h.pipeline.tally.skipped == 1
    assert h.input.committed_positions() == {TP: 2}
