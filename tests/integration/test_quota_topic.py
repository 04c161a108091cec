"""The quota topic on the real broker fails closed (SPEC §2.10): without it ``lsq-sink run`` refuses
to start, naming the topic and the account; while it is missing an account holds its calls, and
once it is there the account goes on from the count it holds, never from zero."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import pytest
from confluent_kafka import Producer

from connector.adapters.quota import QuotaTopic, quota_key
from connector.errors import FatalError
from connector.flow.deadline import Deadline
from connector.flow.quota import SLICES, Quota
from connector.flow.quotas import RETRY_S, Quotas
from lsq_stack.demo import sink_config
from lsq_stack.kafka import create_topics, unique_name
from lsq_stack.registry import SchemaRegistryServer
from lsq_stack.sink import SinkProcess

if TYPE_CHECKING:
    from pathlib import Path

    from lsq_stack.broker import Broker

DAY = 3600.0
LEADS = ("crm.public.leads", 0)


def _producer_config(broker: Broker) -> dict[str, Any]:
    return {"bootstrap.servers": broker.bootstrap_servers, "enable.idempotence": True}


def _quota_topic(broker: Broker, topic: str) -> QuotaTopic:
    config = broker.consumer_config(unique_name("group"))
    return QuotaTopic(config, _producer_config(broker), topic, lambda _: None, timeout_s=20.0)


def test_the_start_check_refuses_a_missing_quota_topic_and_passes_an_existing_one(
    broker: Broker,
) -> None:
    """Missing: a FatalError naming the topic, the accounts and what to do, and the check does not
    create it. Created: the check writes a probe record and reads it back, and the read-back of
    counts skips that record."""
    topic = unique_name("lsq.quota")
    spending = _quota_topic(broker, topic)
    try:
        with pytest.raises(FatalError) as refused:
            spending.check(["default", "eu"], timeout=15.0)
        message = str(refused.value)
        assert f"output.quota_topic {topic!r} does not exist" in message
        assert "accounts.default.daily_quota, accounts.eu.daily_quota" in message
        assert "create it" in message
        assert "cleanup.policy=compact,delete" in message
        spending.check([])  # no account with a quota: nothing to check (as before)
        create_topics(broker.bootstrap_servers, {topic: 2})
        spending.check(["default"], timeout=15.0)
        assert spending.read([LEADS], time.time() - DAY) == {}
    finally:
        spending.close(Deadline.after(5.0))


def test_lsq_sink_run_refuses_to_start_without_its_quota_topic(
    broker: Broker, tmp_path: Path
) -> None:
    """``lsq-sink run`` with a daily quota and no quota topic exits 1 at start, before it joins
    the group or sends anything, with one message naming the topic and the account."""
    topic = unique_name("lsq.quota")
    with SchemaRegistryServer() as registry:
        data = sink_config(
            broker.bootstrap_servers,
            registry.url,
            "http://127.0.0.1:9",  # nothing listens: nothing may be sent
            ("access", "secret", "api"),
            group=unique_name("group"),
            consumer=dict(broker.consumer_overrides),
        )
        data["accounts"]["default"]["daily_quota"] = 1000
        data["output"]["quota_topic"] = topic
        sink = SinkProcess(data, tmp_path).start()
        try:
            code = sink.wait_exit(60.0)
        finally:
            sink.stop()
    log = sink.log_path.read_text(encoding="utf-8")
    assert code == 1, sink.tail()
    assert f"lsq-sink: stopped: output.quota_topic {topic!r} does not exist" in log
    assert "accounts.default.daily_quota" in log
    assert "create it" in log
    assert not sink.events("connector.started")


def test_an_account_holds_its_calls_without_the_quota_topic_and_resumes_from_its_count(
    broker: Broker,
) -> None:
    """The read-back on assignment finds no quota topic: the quota is unknown (no call may go).
    The topic is created, holding 5 calls spent by an earlier process; the read is tried again on
    its own and the account goes on with 5 fewer calls, and what it spends is written there."""
    topic = unique_name("lsq.quota")
    spending = _quota_topic(broker, topic)
    try:
        quota = Quota(100, DAY, "greedy")
        quotas = Quotas({"default": quota}, spending)
        wall, now = time.time(), 0.0
        quotas.restore([LEADS], wall)
        quota.apportion([LEADS], 1, offset=wall)
        why = quota.unknown
        assert why is not None
        assert f"the quota topic {topic!r} cannot be read" in why
        assert quota.left(now) == 0
        quotas.save(now)  # the retry is due RETRY_S from now
        create_topics(broker.bootstrap_servers, {topic: 1})
        earlier = Producer(_producer_config(broker))
        number = int(wall // (DAY / SLICES))
        earlier.produce(topic, (5).to_bytes(8, "big"), quota_key("default", LEADS, number))
        assert earlier.flush(15) == 0
        now += RETRY_S
        quotas.save(now)  # read again
        assert quota.unknown is None
        assert quota.left(now) == 95
        quota.charge(LEADS, now)
        assert quotas.settle(Deadline.after(15.0))
        found = spending.read([LEADS], wall - DAY)
        assert isinstance(found, dict)
        assert sum(calls for _, _, calls in found["default"]) == 6  # in one slice or two
    finally:
        spending.close(Deadline.after(5.0))
