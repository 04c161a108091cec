"""The right budget without configuration (SPEC §7) on the real stack: ``lsq-sink run`` configured
for 25 calls per window against a simulated account limited to 10, whose throttle answers state
the limit, or do not."""

from __future__ import annotations

import bisect
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from lsq_sim import AnswerClass, DailyQuota, RateLimit, SimConfig, Simulator
from lsq_sim.config import Account as SimAccount
from lsq_stack.cdc import CdcWriter, Event, envelope, lead_row
from lsq_stack.kafka import create_topics, read_all, unique_name
from lsq_stack.reliability import wait_until
from lsq_stack.sink import SinkProcess
from tests.e2e.conftest import Topics, config, produce

if TYPE_CHECKING:
    from pathlib import Path

    from lsq_sim.views import AccountStats
    from lsq_stack.broker import Broker
    from lsq_stack.registry import SchemaRegistryServer

LEADS = 50
WINDOW_S = 1.0  # time-scaled: LeadSquared's window is 5 s
REAL, CONFIGURED = 10, 25


@dataclass
class Learned:
    """What one run over two accounts left behind: each account's simulator stats and the
    connector's ``account.limit_learned`` / ``account.limit_lowered`` events."""

    outcomes: int
    stats: dict[str, AccountStats]
    learned: dict[str, list[dict[str, Any]]]
    lowered: dict[str, list[dict[str, Any]]]


@pytest.fixture(scope="module")
def learned(
    broker: Broker, registry: SchemaRegistryServer, tmp_path_factory: pytest.TempPathFactory
) -> Learned:
    """Two snapshots of ``LEADS`` leads through one ``lsq-sink run``, each for its own account
    configured for 25 calls per window, both accounts limited to 10: ``stated`` answers throttles
    with LeadSquared's message naming the limit, ``plain`` with the gateway's, which names
    none."""
    suffix = unique_name("budget")
    stated_topic, plain_topic = f"crm.public.leads.{suffix}", f"crm.public.leads-plain.{suffix}"
    results, letters = f"lsq.results.{suffix}", f"lsq.dead-letters.{suffix}"
    topics = Topics(stated_topic, plain_topic, results, letters, f"lsq-sink-{suffix}")
    create_topics(
        broker.bootstrap_servers, {stated_topic: 3, plain_topic: 3, results: 3, letters: 1}
    )
    rng = random.Random(11)  # noqa: S311 - test data
    events = [
        Event("crm.public.leads", i, envelope("leads", "r", None, lead_row(i, rng), ts_ms=i))
        for i in range(LEADS)
    ]
    accounts = tuple(
        SimAccount(
            name=name,
            access_key=f"{name}-access",
            secret_key=f"{name}-secret",
            api_key=f"{name}-api",
            rate_limit=RateLimit(calls=REAL, window_s=WINDOW_S, style=style),
        )
        for name, style in (("stated", "http429"), ("plain", "gateway429"))
    )
    with Simulator(SimConfig(accounts=accounts)) as sim:
        with CdcWriter(broker.bootstrap_servers, registry.url) as writer:
            for event in events:
                writer.send(event, stated_topic)
                writer.send(event, plain_topic)
            writer.flush()
        data = config(broker, registry, sim, topics)
        budget = {"calls": CONFIGURED, "window_seconds": WINDOW_S}
        template = data["accounts"]["default"]
        data["accounts"] = {
            a.name: template
            | {
                "access_key": a.access_key,
                "secret_key": a.secret_key,
                "api_key": a.api_key,
                "rate_limit": budget,
            }
            for a in accounts
        }
        leads = data["routes"][0]
        data["routes"] = [
            leads | {"name": name, "topics": [topic], "account": name}
            for name, topic in (("stated", stated_topic), ("plain", plain_topic))
        ]
        with SinkProcess(data, tmp_path_factory.mktemp("budget")) as sink:

            def outcomes() -> int:
                done = read_all(broker.bootstrap_servers, results, 10)
                return len(done) + len(read_all(broker.bootstrap_servers, letters, 10))

            wait_until(lambda: outcomes() >= 2 * LEADS, 120, "an outcome for every record")
            assert sink.stop() == 0, sink.tail()
            events_of = {
                kind: sink.events(f"account.limit_{kind}") for kind in ("learned", "lowered")
            }
        stats = sim.client.stats().accounts
    by_account = {
        kind: {a.name: [e for e in found if e["account"] == a.name] for a in accounts}
        for kind, found in events_of.items()
    }
    return Learned(outcomes(), stats, by_account["learned"], by_account["lowered"])


def test_every_record_has_one_outcome(learned: Learned) -> None:
    assert learned.outcomes == 2 * LEADS


def test_a_stated_limit_is_learned_from_one_throttle_answer(learned: Learned) -> None:
    stats = learned.stats["stated"]
    throttled = stats.answers.get(AnswerClass.THROTTLED, 0)
    assert 1 <= throttled <= 3, stats
    assert [(e["calls"], e["stated"], e["configured"]) for e in learned.learned["stated"]] == [
        (REAL, REAL, CONFIGURED)
    ]
    assert stats.max_calls_in_window <= REAL + throttled


def test_without_a_stated_limit_throttles_stay_rare(learned: Learned) -> None:
    stats = learned.stats["plain"]
    throttled = stats.answers.get(AnswerClass.THROTTLED, 0)
    assert learned.lowered["plain"], "the budget was never lowered"
    assert not learned.learned["plain"]
    assert throttled <= 0.05 * stats.calls + 2, stats


QUOTA, RESERVE, DAY_S = 50, 0.2, 20.0  # a shortened day: 40 calls in any 20 s
QUOTA_LEADS = 80


def test_a_daily_quota_holds_across_a_restart(
    broker: Broker, registry: SchemaRegistryServer, tmp_path: Path
) -> None:
    """A backlog of two days' quota through one process, stopped once it spent the first day's
    calls, then another: never more than the quota less the reserve in any rolling day (nor a
    call the simulator's own quota refuses), every record accepted, none dead-lettered. Greedy
    pacing spends each day's calls at once, so a second process that did not read the first
    one's count back would spend them again."""
    suffix = unique_name("quota")
    names = ("crm.public.leads", "crm.public.activities", "lsq.results", "lsq.dead-letters")
    leads, activities, results, letters = (f"{name}.{suffix}" for name in names)
    topics = Topics(leads, activities, results, letters, f"lsq-sink-{suffix}")
    quota_topic = f"lsq.quota.{suffix}"
    create_topics(
        broker.bootstrap_servers, {leads: 3, activities: 1, results: 3, letters: 1, quota_topic: 1}
    )
    rng = random.Random(12)  # noqa: S311 - test data
    events = [
        Event("crm.public.leads", i, envelope("leads", "r", None, lead_row(i, rng), ts_ms=i))
        for i in range(QUOTA_LEADS)
    ]
    # the account's own quota, in full: the connector leaves the reserve of it unspent
    sim_config = SimConfig(
        rate_limit=RateLimit(calls=25, window_s=1.0),
        daily_quota=DailyQuota(calls=QUOTA, day_s=DAY_S),
    )
    with Simulator(sim_config) as sim:
        produce(broker, registry, topics, events)
        data = config(broker, registry, sim, topics)
        data["accounts"]["default"] |= {
            "rate_limit": {"calls": 25, "window_seconds": 1.0},
            "daily_quota": QUOTA,
            "quota_reserve": RESERVE,
            "quota_day_seconds": DAY_S,
            "quota_pacing": "greedy",  # each day's calls at once: a restart that forgot them
        }
        data["output"]["quota_topic"] = quota_topic

        def outcomes() -> tuple[int, int]:
            done = read_all(broker.bootstrap_servers, results, 10)
            return len(done), len(read_all(broker.bootstrap_servers, letters, 10))

        with SinkProcess(data, tmp_path / "first") as first:
            first.wait_for(lambda: outcomes()[0] >= 40, 60, "the first day's calls")
            assert first.stop() == 0, first.tail()
        before = outcomes()[0]
        with SinkProcess(data, tmp_path / "second") as second:
            second.wait_for(lambda: sum(outcomes()) >= QUOTA_LEADS, 90, "every outcome")
            assert second.stop() == 0, second.tail()
        calls = sorted(c.time for c in sim.client.requests())
        stats = sim.client.stats().accounts[sim.account().name]
    assert outcomes() == (QUOTA_LEADS, 0)
    assert before < QUOTA_LEADS  # the second process had records left to call
    allowed = int(QUOTA * (1 - RESERVE))
    # calls are counted when sent; they reach the simulator a few milliseconds later
    day = DAY_S - 0.1
    most = max(bisect.bisect_right(calls, t + day) - i for i, t in enumerate(calls))
    assert most <= allowed
    assert stats.quota_refused == 0
    assert stats.max_calls_in_day is not None
    assert stats.max_calls_in_day <= allowed
