"""The reliability scenarios (SPEC §2 and §6 under stress), each a :class:`Trial` on the local
stack returning its :class:`Report`. The end-to-end tests run them small and assert on them;
``make soak`` (``python -m lsq_stack.trials``) runs them larger and prints the README's
Reliability table."""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsq_sim import FaultRule, Faults, RateLimit, SimConfig, Simulator
from lsq_stack.broker import local_broker
from lsq_stack.registry import SchemaRegistryServer
from lsq_stack.reliability import AfterKill, Report, Trial, wait_until

if TYPE_CHECKING:
    from collections.abc import Callable

    from lsq_stack.broker import Broker

__all__ = [
    "Stack",
    "crash",
    "graceful_stop",
    "key_rotation",
    "main",
    "mx_errors",
    "outage",
    "rebalance",
    "slow_answers",
    "throttle_storm",
]

#: A fast budget for trials where the limit is not what is tested (the simulator enforces it).
FAST = 500
FAST_LIMIT = {"accounts": {"default": {"rate_limit": {"calls": FAST, "window_seconds": 5.0}}}}
#: 25 calls per second: for trials whose events (joins, faults) must happen while the backlog lasts.
STEADY = 125
STEADY_LIMIT = {"accounts": {"default": {"rate_limit": {"calls": STEADY, "window_seconds": 5.0}}}}


@dataclass(frozen=True, slots=True)
class Stack:
    """The broker and registry shared by the trials."""

    broker: Broker
    registry: SchemaRegistryServer
    workdir: Path

    def trial(self, sim: Simulator, **options: Any) -> Trial:
        """A trial on this stack (a context manager: its processes stop with it)."""
        return Trial(self.broker, self.registry, sim, self.workdir, **options)


def _sim(*rules: FaultRule, calls: int = FAST) -> Simulator:
    limit = RateLimit(calls=calls, window_s=5.0)
    return Simulator(SimConfig(rate_limit=limit, faults=Faults(rules=rules)))


def _progress(trial: Trial, calls: int, timeout: float = 120.0) -> None:
    """Wait until the simulator has received ``calls`` more calls than now (or one per record,
    if the backlog ends sooner)."""
    target = min(len(trial.calls()) + calls, len(trial.emails))
    wait_until(lambda: len(trial.calls()) >= target, timeout, f"{calls} more calls")


def crash(
    stack: Stack, records: int = 1500, kills: int = 3, seed: int = 1
) -> tuple[Trial, Report, list[AfterKill]]:
    """SIGKILL the connector at random moments, restarting it each time; what each kill left."""
    rng = random.Random(seed)
    config = FAST_LIMIT | {"flow": {"max_in_flight_records": 200}}
    left: list[AfterKill] = []
    with (
        _sim() as sim,
        stack.trial(sim, config=config) as trial,
    ):
        trial.produce(records)
        for _ in range(kills):
            sink = trial.start()
            _progress(trial, rng.randint(records // (4 * kills), records // (2 * kills)))
            sink.kill()
            left.append(trial.after_kill())
        last = trial.start()
        trial.wait_done(last, 300)
        last.stop()
        return trial, trial.report(f"crash: SIGKILL x{kills}", restarts=kills), left


def graceful_stop(stack: Stack, records: int = 600) -> tuple[Trial, Report]:
    """SIGTERM mid-stream, then a restart."""
    with (
        _sim() as sim,
        stack.trial(sim, config=FAST_LIMIT) as trial,
    ):
        trial.produce(records)
        first = trial.start()
        _progress(trial, records // 3)
        if first.stop() != 0:
            raise AssertionError(f"SIGTERM exit code was not 0:\n{first.tail()}")
        second = trial.start()
        trial.wait_done(second, 300)
        second.stop()
        return trial, trial.report("graceful stop: SIGTERM, restart", restarts=1)


def rebalance(stack: Stack, records: int = 1200) -> tuple[Trial, Report]:
    """Three members of one group: two join mid-run, one is killed, one stops gracefully. At
    25 calls per second, so that every change happens while the backlog lasts."""
    with (
        _sim(calls=STEADY) as sim,
        stack.trial(sim, partitions=6, config=STEADY_LIMIT) as trial,
    ):
        trial.produce(records, updates=records // 4)
        total = len(trial.emails)
        a = trial.start("member-a")
        _progress(trial, total // 6)
        b = trial.start("member-b")
        _progress(trial, total // 6)
        c = trial.start("member-c")
        _progress(trial, total // 6)
        a.kill()
        _progress(trial, total // 6)
        if b.stop() != 0:
            raise AssertionError(f"member-b did not stop cleanly:\n{b.tail()}")
        trial.wait_done(c, 300)
        c.stop()
        return trial, trial.report("rebalance: 3 members, 1 killed, 1 stopped", restarts=3)


def outage(stack: Stack, records: int = 200, seconds: float = 35.0) -> tuple[Trial, Report]:
    """LeadSquared unreachable for ``seconds``: first answering 503, then refusing connections."""
    with (
        _sim(calls=STEADY) as sim,
        stack.trial(sim, config=STEADY_LIMIT) as trial,
    ):
        trial.produce(records)
        sink = trial.start()
        _progress(trial, records // 5)
        half = seconds / 2
        sim.client.outage(half, "http503")
        sim.client.outage(half, "refuse", start_in_s=half)
        ended = time.time() + seconds
        time.sleep(seconds / 4)
        check_commits_resolved(trial)
        time.sleep(max(0.0, ended - time.time()) + 0.5)
        trial.wait_done(sink, 300)
        sink.stop()
        first = min(
            (c.time for c in trial.calls() if c.answer == "accepted" and c.time > ended),
            default=None,
        )
        recovery = None if first is None else first - ended
        name = f"LeadSquared outage {seconds:.0f} s (503, refused)"
        return trial, trial.report(name, restarts=0, recovery_s=recovery)


def check_commits_resolved(trial: Trial) -> None:
    """Every record below the committed offsets has an outcome (commits never pass one that
    does not)."""
    committed, outcomes = trial.committed(), trial.outcomes()
    for partition, offset in trial.emails:
        if offset < committed.get(partition, 0) and (partition, offset) not in outcomes:
            raise AssertionError(f"offset {offset} of partition {partition} committed unresolved")


def slow_answers(stack: Stack, records: int = 200) -> tuple[Trial, Report]:
    """Answers slower than the connector's timeout for a fifth of the calls."""
    slow = FaultRule(action="delay", delay_s=2.5, probability=0.2, times=30)
    config = FAST_LIMIT | {
        "accounts": {
            "default": {
                "rate_limit": {"calls": FAST, "window_seconds": 5.0},
                "request_timeout_seconds": 1.0,
            }
        }
    }
    with (
        _sim(slow) as sim,
        stack.trial(sim, config=config) as trial,
    ):
        return _run_through(trial, records, "latency spikes past the 1 s timeout")


def throttle_storm(
    stack: Stack, records: int = 200, style: str = "http429"
) -> tuple[Trial, Report]:
    """LeadSquared throttles a burst of calls: HTTP 429, or the rate-limit body with HTTP 200,
    stating the configured limit (other clients of the account spend it: the budget is lowered
    for a while, not learned lower)."""
    envelope = {
        "Status": "Error",
        "ExceptionType": "MXAPIRateLimitExceededException",
        "ExceptionMessage": f"API calls exceeded the limit of {FAST} in 5 second(s)",
    }
    status = 429 if style == "http429" else 200
    rule = FaultRule(status=status, body=envelope, times=40)
    config = FAST_LIMIT | {"retry": {"throttle_cooldown_seconds": 1.0}}
    with (
        _sim(rule) as sim,
        stack.trial(sim, config=config) as trial,
    ):
        return _run_through(trial, records, f"throttle storm: 40 x HTTP {status} rate-limit")


def mx_errors(stack: Stack, records: int = 200) -> tuple[Trial, Report]:
    """LeadSquared rejects 10 records with MX exceptions, 5 with HTTP 500 and 5 with HTTP 200."""
    rules = []
    for i in range(10):  # half with HTTP 500, half with HTTP 200
        body = {
            "Status": "Error",
            "ExceptionType": "MXDuplicateEntryException",
            "ExceptionMessage": "A Lead with same Phone Number already exists.",
        }
        rules.append(
            FaultRule(
                body_contains=f'"lead{i * 7}@example.com"', status=500 if i % 2 else 200, body=body
            )
        )
    with (
        _sim(*rules) as sim,
        stack.trial(sim, config=FAST_LIMIT) as trial,
    ):
        return _run_through(trial, records, "MX exceptions with HTTP 500 and 200")


def key_rotation(stack: Stack, records: int = 200) -> tuple[Trial, Report]:
    """The account's keys are rotated at LeadSquared mid-run (401/403), then restored."""
    config = STEADY_LIMIT | {"retry": {"auth_retry_seconds": 2.0}}
    with (
        _sim(calls=STEADY) as sim,
        stack.trial(sim, config=config) as trial,
    ):
        trial.produce(records)
        sink = trial.start()
        _progress(trial, records // 4)
        account = sim.account()
        sim.client.rotate_keys(account.name, api_key="rotated-api-key")
        sink.wait_for(lambda: bool(sink.events("account.rejected")), 60, "account.rejected")
        time.sleep(3)
        check_commits_resolved(trial)
        restored = time.time()
        sim.client.rotate_keys(account.name, api_key=account.api_key)
        trial.wait_done(sink, 120)
        sink.stop()
        first = min(
            (c.time for c in trial.calls() if c.answer == "accepted" and c.time > restored),
            default=None,
        )
        recovery = None if first is None else first - restored
        return trial, trial.report("401/403 after key rotation, then restored", 0, recovery)


def _run_through(trial: Trial, records: int, name: str) -> tuple[Trial, Report]:
    trial.produce(records)
    sink = trial.start()
    trial.wait_done(sink, 300)
    sink.stop()
    return trial, trial.report(name, restarts=0)


SCENARIOS: dict[str, Callable[..., tuple[Trial, Report]]] = {
    "crash": lambda stack, **kw: crash(stack, **kw)[:2],
    "graceful_stop": graceful_stop,
    "rebalance": rebalance,
    "outage": outage,
    "slow_answers": slow_answers,
    "throttle_http429": throttle_storm,
    "throttle_body200": lambda stack, **kw: throttle_storm(stack, style="body200", **kw),
    "mx_errors": mx_errors,
    "key_rotation": key_rotation,
}

SOAK: dict[str, dict[str, Any]] = {
    "crash": {"records": 5000, "kills": 6},
    "graceful_stop": {"records": 2000},
    "rebalance": {"records": 4000},
    "outage": {"records": 500, "seconds": 60.0},
}


def main(argv: list[str] | None = None) -> int:
    """Run every scenario (larger with ``--soak``) and print the Reliability table."""
    parser = argparse.ArgumentParser(prog="python -m lsq_stack.trials")
    parser.add_argument("--soak", action="store_true", help="larger backlogs, more restarts")
    parser.add_argument("only", nargs="*", help="scenario names (default: all)")
    args = parser.parse_args(argv)
    rows = []
    with local_broker() as broker, SchemaRegistryServer() as registry:
        stack = Stack(broker, registry, Path(tempfile.mkdtemp(prefix="lsq-trials-")))
        for name in args.only or SCENARIOS:
            sizes = SOAK.get(name, {}) if args.soak else {}
            started = time.monotonic()
            _, report = SCENARIOS[name](stack, **sizes)
            rows.append(report.row())
            sys.stdout.write(f"{report}  ({time.monotonic() - started:.0f} s)\n")
            sys.stdout.flush()
    header = "| scenario | records | restarts | lost | duplicate outcomes | duplicate calls "
    sys.stdout.write(header + "| dead-lettered | recovery |\n|---|---|---|---|---|---|---|---|\n")
    sys.stdout.write("\n".join(rows) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
