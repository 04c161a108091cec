"""Application errors injected into the work queue: the draw (rate, kinds, seed), the errors'
wording (the store's own), and a task that draws one ending in FAILURE without being applied."""

from __future__ import annotations

from collections import Counter
from random import Random

import pytest

from lsq_sim.config import Processing, SimConfig, StoreRules
from lsq_sim.failures import draw_failure, request_attributes
from lsq_sim.records import (
    ActivityInput,
    LeadField,
    MXError,
    Operation,
    Submission,
)
from lsq_sim.state import SimState
from lsq_sim.tasks import SYSTEM_ERROR, apply_task
from lsq_sim.workqueue import Task, TaskStatus
from tests.unit.sim.builders import fields, make_store

CAPTURE = Submission(
    Operation.CAPTURE, leads=fields(EmailAddress="a@x.io", mx_City="Pune", SearchBy="Phone")
)


def _rng(seed: int) -> Random:
    return Random(seed)  # noqa: S311 - seeded simulation randomness


def _errors(processing: Processing, submission: Submission, seed: int, n: int) -> list[str]:
    rng = _rng(seed)
    drawn = (draw_failure(processing, submission, rng) for _ in range(n))
    return [f"{e.type}: {e.message}" if e else "-" for e in drawn]


def test_no_failure_and_no_draw_at_rate_zero() -> None:
    """The default (rate 0) injects nothing and leaves the random stream untouched."""
    rng = _rng(3)
    assert [draw_failure(Processing(), CAPTURE, rng) for _ in range(50)] == [None] * 50
    assert rng.random() == _rng(3).random()


def test_each_kind_has_the_documented_type_and_the_stores_wording() -> None:
    """duplicate, not_found and unknown_attribute: the MX type and message the store raises."""
    seen: dict[str, MXError] = {}
    rng = _rng(1)
    processing = Processing(failure_rate=1.0)
    city = Submission(Operation.CAPTURE, leads=fields(mx_City="Pune"))
    while len(seen) < 3:
        error = draw_failure(processing, city, rng)
        assert error is not None
        seen[error.type] = error
    assert {t: e.message for t, e in seen.items() if t != "MXUnknownAttributeException"} == {
        "MXDuplicateEntryException": "A Lead with same Email already exists.",
        "MXInvalidEntityException": "Lead does not exist in the system",
    }
    store = make_store(StoreRules(lead_attributes=("EmailAddress",)))
    with pytest.raises(MXError) as caught:
        store.create(fields(EmailAddress="b@x.io", mx_City="Pune"))
    assert seen["MXUnknownAttributeException"].message == caught.value.message
    assert caught.value.message == "Attribute 'mx_City' does not exist"


def test_unknown_attribute_names_an_attribute_of_the_request() -> None:
    """Only lead fields (not SearchBy) and activity fields are named."""
    only = Processing(failure_rate=1.0, failure_kinds=("unknown_attribute",))
    messages = set(_errors(only, CAPTURE, seed=2, n=40))
    assert messages == {
        "MXUnknownAttributeException: Attribute 'EmailAddress' does not exist",
        "MXUnknownAttributeException: Attribute 'mx_City' does not exist",
    }
    activity = ActivityInput(event=201, fields=(LeadField("mx_Custom_1", "x"),))
    create = Submission(Operation.ACTIVITY_CREATE, activity=activity)
    assert request_attributes(create) == ["mx_Custom_1"]
    assert request_attributes(CAPTURE) == ["EmailAddress", "mx_City"]


def test_a_request_without_attributes_draws_among_the_other_kinds() -> None:
    """No attribute to name: never unknown_attribute; with only that kind, no failure."""
    bare = Submission(Operation.ACTIVITY_CREATE, activity=ActivityInput(event=201))
    every = Processing(failure_rate=1.0)
    assert {m.split(":")[0] for m in _errors(every, bare, seed=4, n=40)} == {
        "MXDuplicateEntryException",
        "MXInvalidEntityException",
    }
    only = Processing(failure_rate=1.0, failure_kinds=("unknown_attribute",))
    assert _errors(only, bare, seed=4, n=5) == ["-"] * 5


def test_rate_and_kinds_are_honoured_and_a_seed_repeats_the_draws() -> None:
    """About failure_rate of the tasks fail, only with the configured kinds; same seed, same
    failures."""
    processing = Processing(failure_rate=0.25, failure_kinds=("duplicate", "not_found"))
    drawn = _errors(processing, CAPTURE, seed=7, n=2000)
    counts = Counter(m.split(":")[0] for m in drawn)
    assert set(counts) == {"-", "MXDuplicateEntryException", "MXInvalidEntityException"}
    assert 0.21 < 1 - counts["-"] / 2000 < 0.29
    assert drawn == _errors(processing, CAPTURE, seed=7, n=2000)


def test_failure_kinds_must_be_known_and_not_empty() -> None:
    """Config validation rejects an unknown kind and an empty list."""
    with pytest.raises(ValueError, match="failure_kinds"):
        Processing.model_validate({"failure_kinds": ["timeout"]})
    with pytest.raises(ValueError, match="failure_kinds"):
        Processing.model_validate({"failure_kinds": []})


def _state(**processing: object) -> SimState:
    return SimState(SimConfig.model_validate({"processing": processing, "seed": 1}))


def _process(state: SimState, submission: Submission) -> Task:
    account = state.accounts["account1"]
    task = Task(state.new_id(), submission, "[]", submitted_at=0.0, due_at=0.0)
    account.queue.submit(task)
    assert account.queue.pop_due(0.0) is task
    apply_task(state, account, task, now=1.0)
    return task


def test_an_injected_failure_is_not_applied_and_counts_as_failed() -> None:
    """FAILURE with the MX type and message, no Message, nothing stored; queue.failed counts."""
    state = _state(failure_rate=1.0, failure_kinds=["duplicate"])
    task = _process(state, CAPTURE)
    account = state.accounts["account1"]
    assert (task.status, task.reason, task.exception_type, task.message) == (
        TaskStatus.FAILURE,
        "A Lead with same Email already exists.",
        "MXDuplicateEntryException",
        None,
    )
    assert (account.queue.failed, account.queue.succeeded, account.queue.pending) == (1, 0, 0)
    assert (account.store.leads, account.store.activities) == ({}, [])


def test_system_errors_still_come_first_and_are_retried() -> None:
    """With both rates at 1 the attempt is a system error (retried), as before."""
    state = _state(error_rate=1.0, failure_rate=1.0)
    task = _process(state, CAPTURE)
    assert (task.status, task.reason, state.accounts["account1"].queue.pending) == (
        TaskStatus.IN_QUEUE,
        SYSTEM_ERROR,
        1,
    )


def test_without_failures_the_task_is_applied() -> None:
    """failure_rate 0 (default): Success, the lead stored."""
    state = _state()
    task = _process(state, CAPTURE)
    assert task.status is TaskStatus.SUCCESS
    assert [lead.fields["EmailAddress"] for lead in state.accounts["account1"].store.leads.values()]
    assert state.accounts["account1"].queue.failed == 0


def test_the_stores_own_unknown_attribute_error_is_a_failure_naming_it() -> None:
    """Not injected: with lead_attributes set, another attribute fails the task with
    MXUnknownAttributeException and a reason naming it."""
    config = SimConfig(store=StoreRules(lead_attributes=("EmailAddress",)), seed=1)
    state = SimState(config)
    task = _process(state, CAPTURE)
    assert (task.status, task.exception_type, task.reason) == (
        TaskStatus.FAILURE,
        "MXUnknownAttributeException",
        "Attribute 'mx_City' does not exist",
    )
