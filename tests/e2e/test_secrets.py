"""Secrets and personal data (SPEC §2.6): one ``lsq-sink run`` with distinctive keys (access key
and api key from the environment, secret key from the file, schema registry basic auth, a Kafka
SASL password) goes through every error path there is: records dead-lettered at decode, unwrap and
map; MX errors with HTTP 500 and 200; 5xx answers and a dropped connection, retried; a 5xx that
never ends (retries exhausted); throttling by 429 and by the rate-limit body with HTTP 200; 403
and 401 after the simulator rotated the keys, then the keys restored. Then everything the
connector produced (its whole log, every dead-letter and results record: keys, values, headers) is
and what its health port served along the way (/metrics, /readyz) is scanned for each secret, raw,
URL-encoded and JSON-escaped: none may appear. Emails and phone
numbers of the records are masked in the log (the default) though LeadSquared received them."""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx
import pytest

from lsq_sim import Account, FaultRule, Faults, RateLimit, SimConfig, Simulator
from lsq_stack.cdc import LEADS, CdcWriter, Event, envelope, lead_row
from lsq_stack.demo import sink_config
from lsq_stack.kafka import create_topics, read_topic, unique_name
from lsq_stack.registry import SchemaRegistryServer
from lsq_stack.sink import SinkProcess

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from lsq_sim import LoggedRequest
    from lsq_stack.broker import Broker
    from lsq_stack.kafka import Received

ACCESS_KEY = "u$rAK-lsq-5ecret-access-0a1b2c3d"  # LeadSquared's access keys start with u$
SECRET_KEY = "SK/lsq+5ecret=secret&9f8e7d6c"  # more characters that URL encoding changes
API_KEY = "API-lsq-5ecret-gateway-77aa88bb"
REGISTRY_USER, REGISTRY_PASSWORD = "lsq-registry-user", "REGpass-5ecret-314159"
SASL_PASSWORD = "KAFKA-sasl-5ecret-pw-2718"
SECRETS = {
    "access key": ACCESS_KEY,
    "secret key": SECRET_KEY,
    "api key": API_KEY,
    "registry password": REGISTRY_PASSWORD,
    "registry user info": f"{REGISTRY_USER}:{REGISTRY_PASSWORD}",
    "sasl password": SASL_PASSWORD,
}
#: Where each fault rule applies: the email in the request body.
FLAKY, DROPPED, DOWN = "flaky@faults.example", "dropped@faults.example", "down@faults.example"
THROTTLE_429, THROTTLE_200 = "throttle429@faults.example", "throttle200@faults.example"
MX_500, MX_200, ECHO = "mx500@faults.example", "mx200@faults.example", "echo@faults.example"
ECHO_TEXT = "Bad request, as received"


def _mx(exception_type: str, message: str) -> dict[str, str]:
    return {"Status": "Error", "ExceptionType": exception_type, "ExceptionMessage": message}


def _fault_rules() -> tuple[FaultRule, ...]:
    """LeadSquared's error answers, by the email in the call. The MX messages quote the lead's
    email and phone, as LeadSquared's validation messages do; the echo answer quotes the whole
    request, keys included, as some gateways' error pages do."""
    rate_limited = "You have reached the API rate limit of 25 calls in 5 seconds"
    query = f"accessKey={quote(ACCESS_KEY, safe='')}&secretKey={quote(SECRET_KEY, safe='')}"
    echoed = f"/lead/capture?{query} x-api-key "
    return (
        FaultRule(body_contains=FLAKY, status=503, times=2),
        FaultRule(body_contains=DROPPED, action="drop", times=1),
        FaultRule(body_contains=DOWN, status=502),
        FaultRule(body_contains=THROTTLE_429, status=429, times=1),
        FaultRule(
            body_contains=THROTTLE_200,
            status=200,
            body=_mx("MXAPIRateLimitExceededException", rate_limited),
            times=1,
        ),
        FaultRule(
            body_contains=MX_500,
            status=500,
            body=_mx("MXInvalidInputException", f"Invalid lead {MX_500} / +91-9812345670"),
        ),
        FaultRule(
            body_contains=MX_200,
            status=200,
            body=_mx("MXDuplicateEntryException", f"A lead with {MX_200} exists (+91-9812345671)"),
        ),
        FaultRule(
            body_contains=ECHO,
            status=400,
            body=_mx("MXInvalidInputException", f"{ECHO_TEXT}: POST {echoed}{API_KEY}"),
        ),
    )


@dataclass
class Run:
    """What one connector run produced, and what it was given."""

    log: bytes
    dead_letters: list[Received]
    results: list[Received]
    requests: tuple[LoggedRequest, ...]
    emails: list[str]
    phones: list[str]
    unsent: list[str]  # personal data of records that never reach LeadSquared
    exit_code: int
    health: list[bytes]  # /metrics and /readyz bodies, scraped at each phase


class _Feed:
    """Produces lead events; remembers the emails and phones it used."""

    def __init__(self, writer: CdcWriter, topic: str) -> None:
        self.writer, self.topic = writer, topic
        self.rng = random.Random(31)  # noqa: S311 - sample data, not secrets
        self.emails: list[str] = []
        self.phones: list[str] = []
        self.unsent: list[str] = []
        self.count = 0

    def lead(self, key: int, email: str | None, phone: str | None) -> None:
        row = lead_row(key, self.rng, email=email, phone=phone)
        if email is None:  # dead-lettered at map: never sent
            self.unsent += [phone] if phone else []
        else:
            self.emails.append(email)
            self.phones += [phone] if phone else []
        self.send(Event(LEADS, key, envelope("leads", "c", None, row, ts_ms=1_793_000_000_000)))

    def send(self, event: Event) -> None:
        self.writer.send(event, self.topic)
        self.writer.flush()
        self.count += 1


def _phase_one(feed: _Feed) -> None:
    """Good leads, leads LeadSquared answers with each kind of error, and bad records."""
    for i in range(6):
        feed.lead(i, f"person{i}@customer.example", f"+91-98765432{i:02d}")
    for i, email in enumerate([FLAKY, DROPPED, THROTTLE_429, THROTTLE_200]):  # retried, accepted
        feed.lead(10 + i, email, f"+91-90000000{i:02d}")
    for i, email in enumerate([MX_500, MX_200, DOWN, ECHO]):  # dead-lettered at submit
        feed.lead(20 + i, email, f"+91-91111111{i:02d}")
    feed.send(Event(LEADS, 30, raw=b"\x7b\x22email\x22: \x22raw@customer.example\x22}"))  # decode
    bad_op = envelope("leads", "x", None, lead_row(31, feed.rng), ts_ms=1_793_000_000_000)
    feed.send(Event(LEADS, 31, bad_op))  # unwrap
    feed.lead(32, None, "+91-9222222200")  # map: no email


@pytest.fixture(scope="module")
def run(broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    """One connector run through every error path; what it produced."""
    suffix = unique_name("secrets")
    leads, results, dlq = f"{LEADS}.{suffix}", f"lsq.results.{suffix}", f"lsq.dlq.{suffix}"
    create_topics(broker.bootstrap_servers, {leads: 2, results: 1, dlq: 1})
    account = Account(access_key=ACCESS_KEY, secret_key=SECRET_KEY, api_key=API_KEY)
    sim_config = SimConfig(
        accounts=(account,),
        rate_limit=RateLimit(calls=1000, window_s=1),
        faults=Faults(rules=_fault_rules()),
    )
    user_info = f"{REGISTRY_USER}:{REGISTRY_PASSWORD}"
    with SchemaRegistryServer(basic_auth=user_info) as registry, Simulator(sim_config) as sim:
        authed_url = registry.url.replace("://", f"://{user_info}@", 1)
        data = _config(broker, registry.url, sim.url, suffix)
        env = {"LSQ_SINK_ACCOUNTS__DEFAULT__ACCESS_KEY": ACCESS_KEY}
        env["LSQ_SINK_ACCOUNTS__DEFAULT__API_KEY"] = API_KEY
        workdir = tmp_path_factory.mktemp("secrets")
        with (
            CdcWriter(broker.bootstrap_servers, authed_url) as writer,
            SinkProcess(data, workdir, env=env) as sink,
        ):
            feed = _Feed(writer, leads)
            _phase_one(feed)
            _wait_outcomes(sink, feed.count)
            url, health = sink.health_url(), []
            name = sim.account().name
            for status, rotation in ((403, "api_key"), (401, "access_key")):  # keys rejected
                sim.client.rotate_keys(name, **{rotation: f"rotated-{rotation}"})
                start = len(sim.client.requests())
                for i in range(2):
                    feed.lead(40 + status + i, f"after{status}.{i}@customer.example", None)
                _wait(sink, lambda: _answered(sim, start, status) >= 2, f"two {status} answers")  # noqa: B023 - used at once
                health += _scrape(url)
                original = {"api_key": API_KEY, "access_key": ACCESS_KEY}[rotation]
                sim.client.rotate_keys(name, **{rotation: original})
                _wait_outcomes(sink, feed.count)
            health += _scrape(url)
            exit_code = sink.stop()
        yield Run(
            log=sink.log_path.read_bytes(),
            dead_letters=read_topic(broker.bootstrap_servers, dlq, 7, timeout=60),
            results=read_topic(broker.bootstrap_servers, results, 14, timeout=60),
            requests=sim.client.requests(),
            emails=feed.emails,
            phones=feed.phones,
            unsent=feed.unsent,
            exit_code=exit_code,
            health=health,
        )


def _scrape(url: str) -> list[bytes]:
    """What the health port serves once the loop published a fresh snapshot (once a second)."""
    time.sleep(1.2)
    return [httpx.get(f"{url}/metrics").content, httpx.get(f"{url}/readyz").content]


def _config(broker: Broker, registry_url: str, sim_url: str, suffix: str) -> dict[str, Any]:
    """The demo configuration with the secrets (access and api key come from the
    environment), fast retries, and every limit out of the way."""
    data = sink_config(
        broker.bootstrap_servers,
        registry_url,
        sim_url,
        ("unused", SECRET_KEY, "unused"),
        group=f"lsq-sink-{suffix}",
        consumer=dict(broker.consumer_overrides),
    )
    account = data["accounts"]["default"]
    del account["access_key"], account["api_key"]
    account["rate_limit"] = {"calls": 1000, "window_seconds": 1}
    data["kafka"] |= {"sasl_username": "lsq-sink", "sasl_password": SASL_PASSWORD}
    data["schema_registry"]["basic_auth_user_info"] = f"{REGISTRY_USER}:{REGISTRY_PASSWORD}"
    data["routes"] = [data["routes"][0] | {"topics": [f"{LEADS}.{suffix}"]}]
    data["output"] = {
        "results_topic": f"lsq.results.{suffix}",
        "dead_letter_topic": f"lsq.dlq.{suffix}",
    }
    data["retry"] = {
        "max_attempts": 3,
        "backoff_base_seconds": 0.05,
        "backoff_max_seconds": 0.2,
        "throttle_cooldown_seconds": 0.3,
        "auth_retry_seconds": 0.5,
        "outage_threshold": 100,  # each failing record counts its own attempts
    }
    data["logging"] |= {"level": "DEBUG"}
    return data


def _outcomes(sink: SinkProcess) -> int:
    names = {"record.accepted", "record.dead_lettered", "record.skipped"}
    return sum(1 for e in sink.events() if e["event"] in names)


def _wait(sink: SinkProcess, condition: Callable[[], bool], what: str) -> None:
    sink.wait_for(condition, 60, what)


def _wait_outcomes(sink: SinkProcess, count: int) -> None:
    _wait(sink, lambda: _outcomes(sink) >= count, f"{count} outcomes")


def _answered(sim: Simulator, since: int, status: int) -> int:
    return sum(1 for r in sim.client.requests()[since:] if r.status == status)


# -- what to look for ---------------------------------------------------------------------------


def _forms(secret: str) -> set[bytes]:
    """A secret as it could appear: raw, URL-encoded (query strings), JSON-escaped."""
    texts = {secret, quote(secret, safe=""), quote(secret), json.dumps(secret)[1:-1]}
    return {text.encode() for text in texts}


def _leaks(blob: bytes) -> list[str]:
    return [name for name, secret in SECRETS.items() if any(f in blob for f in _forms(secret))]


def _record_bytes(record: Received) -> bytes:
    headers = b"".join(k.encode() + b"=" + v for k, v in record.headers)
    return (record.key or b"") + b"|" + (record.value or b"") + b"|" + headers


def _header(record: Received, name: str) -> str:
    return dict(record.headers)[name].decode()


def _echo(run: Run) -> Received:
    return next(r for r in run.dead_letters if ECHO.encode() in (r.value or b""))


# -- the checks ---------------------------------------------------------------------------------


def test_every_error_path_was_taken(run: Run) -> None:
    """The run went where the scan needs it to: every stage of the dead-letter topic, MX errors
    with HTTP 500 and 200, exhausted retries, 429 and rate-limit bodies, 401 and 403, a
    dropped connection; and the process exited 0."""
    assert run.exit_code == 0
    stages = sorted(_header(r, "lsq.error.stage") for r in run.dead_letters)
    assert stages == ["decode", "map", "submit", "submit", "submit", "submit", "unwrap"]
    submitted = {
        _header(r, "lsq.http.status"): _header(r, "__connect.errors.exception.message")
        for r in run.dead_letters
        if _header(r, "lsq.error.stage") == "submit"
    }
    assert set(submitted) == {"500", "200", "502", "400"}
    assert submitted["502"].startswith("retries_exhausted")
    statuses = {r.status for r in run.requests}
    assert {200, 401, 403, 429, 500, 502, 503, None} <= statuses  # None: the dropped one
    log = run.log.decode()
    for event in ("call.throttled", "call.retry", "account.rejected", "account.accepted_again"):
        assert f'"event": "{event}"' in log, event


def test_no_secret_in_the_log(run: Run) -> None:
    """Not one secret (raw, URL-encoded or JSON-escaped) anywhere in stdout or stderr (the
    lines about the record LeadSquared answered by echoing the keys are checked below)."""
    lines = [line for line in run.log.splitlines() if ECHO_TEXT.encode() not in line]
    assert len(lines) < len(run.log.splitlines())
    assert _leaks(b"\n".join(lines)) == []
    assert b"Traceback" not in run.log


def test_keys_echoed_by_leadsquared_are_masked_in_the_log(run: Run) -> None:
    """The log masks the keys in LeadSquared's error text, in every form a request could quote
    them: here the query string's URL-encoded access and secret keys."""
    lines = [line for line in run.log.splitlines() if ECHO_TEXT.encode() in line]
    assert lines
    assert _leaks(b"\n".join(lines)) == []


def test_no_secret_in_dead_letters_or_results(run: Run) -> None:
    """No secret in the key, value or headers of any results or dead-letter record (the record
    LeadSquared answered by echoing the keys is checked on its own, below)."""
    echo = _echo(run)
    for record in [*run.results, *run.dead_letters]:
        if record is not echo:
            assert _leaks(_record_bytes(record)) == [], (record.topic, record.offset)


def test_keys_echoed_by_leadsquared_stay_out_of_dead_letter_headers(run: Run) -> None:
    """LeadSquared's error text goes into ``__connect.errors.exception.message``; when the answer
    quotes the request (keys included), the header must carry the message with the keys masked,
    as the log does (SPEC §5: header values never hold secrets)."""
    echo = _echo(run)
    message = _header(echo, "__connect.errors.exception.message")
    assert ECHO_TEXT in message
    assert _leaks(_record_bytes(echo)) == []


def test_no_secret_in_metrics_or_health_answers(run: Run) -> None:
    """/metrics and /readyz, scraped after the first records, while each key was rejected and at
    the end, hold no secret; they are not empty (the rejection reason was among them)."""
    assert len(run.health) == 6
    assert all(b"lsq_sink_records_consumed_total" in body for body in run.health[::2])
    assert any(b"LeadSquared rejects its keys (HTTP 40" in body for body in run.health[1::2])
    assert [_leaks(body) for body in run.health] == [[]] * 6


def test_personal_data_is_masked_in_the_log_but_reaches_leadsquared(run: Run) -> None:
    """Emails and phone numbers of the records never appear in the log (masked, since the
    default is to redact), while the calls LeadSquared received carry them."""
    log = run.log.decode()
    for value in [*run.emails, *run.phones, *run.unsent, "+91-9812345670", "+91-9812345671"]:
        assert value not in log, value
    assert "<email>" in log  # masked where LeadSquared's messages quoted them
    assert "<phone>" in log
    bodies = " ".join(r.body for r in run.requests)
    sent = [value for value in [*run.emails, *run.phones] if value in bodies]
    assert sent == [*run.emails, *run.phones]


def test_the_simulator_saw_the_real_keys(run: Run) -> None:
    """The keys did reach LeadSquared where they belong (query string and x-api-key), so their
    absence elsewhere is not an accident of a broken setup."""
    ok = [r for r in run.requests if r.status == 200 and r.request_id]
    assert ok
    assert all(r.query["accessKey"] == ACCESS_KEY for r in ok)
    assert all(r.query["secretKey"] == SECRET_KEY for r in ok)
    assert all(r.headers["x-api-key"] == API_KEY for r in ok)
