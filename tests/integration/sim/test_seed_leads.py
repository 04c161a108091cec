"""``POST /_sim/accounts/{name}/leads`` through ``SimClient.add_leads``: leads seeded straight
into an account's store, found by later API calls, using no budget and not logged."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
import pytest

from lsq_sim import SimClientError
from tests.integration.sim.lsq import BULK_ACTIVITIES, Api

if TYPE_CHECKING:
    from lsq_sim import Simulator

SEEDED = [
    {"EmailAddress": "a@x.io", "FirstName": "A"},
    {"EmailAddress": "b@x.io", "Phone": "+91-900", "mx_City": "Pune"},
]


def test_seeded_leads_are_in_the_store_and_nothing_is_logged(sim: Simulator) -> None:
    """The leads are stored with their fields, in order; no call is logged or counted."""
    ids = sim.client.add_leads("account1", SEEDED)
    store = sim.client.store()
    assert [lead.id for lead in store.leads] == list(ids)
    assert [lead.fields for lead in store.leads] == SEEDED
    assert store.activities == ()  # no Lead Capture activity
    assert sim.client.requests() == ()
    stats = sim.client.stats().accounts["account1"]
    assert (stats.calls, stats.max_calls_in_window, stats.bulk_calls) == (0, 0, 0)


def test_a_bulk_activity_by_email_finds_a_seeded_lead(sim: Simulator, api: Api) -> None:
    """Seeded leads are indexed: a bulk activity by EmailAddress (any case) posts on them."""
    ids = sim.client.add_leads("account1", SEEDED)
    items = [{"SearchByValue": "B@X.io", "ActivityEvent": 201, "ActivityNote": "called"}]
    response = api.sync(BULK_ACTIVITIES, items, params={"searchBy": "EmailAddress"})
    assert response.status_code == 200, response.text
    (row,) = response.json()["Response"]
    assert (row["RowNumber"], row["ActivityCreated"]) == (1, True)
    store = sim.client.store()
    assert len(store.leads) == 2  # found, not created
    (activity,) = store.activities_of(ids[1])
    assert (activity.id, activity.note) == (row["ProspectActivityId"], "called")


def test_a_duplicate_stops_the_seeding_at_that_lead(sim: Simulator) -> None:
    """Unique fields are checked as Lead.Create does: the duplicate is a 400 naming it."""
    with pytest.raises(SimClientError, match=r"leads\[1\]: MXDuplicateEntryException"):
        sim.client.add_leads("account1", [{"EmailAddress": "a@x.io"}, {"EmailAddress": "A@x.io"}])
    assert [lead.fields for lead in sim.client.store().leads] == [{"EmailAddress": "a@x.io"}]


@pytest.mark.parametrize(
    ("account", "body", "status"),
    [
        ("nobody", [{"EmailAddress": "a@x.io"}], 404),
        ("account1", [{"mx_City": "Pune"}], 400),  # no identifying field
    ],
)
def test_an_unknown_account_or_an_unidentified_lead_is_refused(
    sim: Simulator, account: str, body: list[dict[str, str]], status: int
) -> None:
    with pytest.raises(SimClientError, match=f"answered {status}"):
        sim.client.add_leads(account, body)
    assert sim.client.store().leads == ()


@pytest.mark.parametrize("body", [{"EmailAddress": "a@x.io"}, [{"Phone": 1}], [["Phone"]]])
def test_a_body_that_is_not_a_list_of_string_fields_is_a_400(sim: Simulator, body: object) -> None:
    response = httpx.post(f"{sim.url}/_sim/accounts/account1/leads", json=body)
    assert response.status_code == 400, response.text
    assert sim.client.store().leads == ()
