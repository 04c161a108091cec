"""The log pipeline: repeated Kafka client errors and librdkafka warnings are held back (one line
per interval, saying how many were held back), so a fault retried many times a second does not
flood the log; everything else goes out."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

import pytest
import structlog

from connector import logs
from connector.logs import REPEAT_INTERVAL_S, Redactor, Repeats, configure, flush_logs, get_logger

if TYPE_CHECKING:
    from collections.abc import Iterator


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_message_seen_again_within_the_interval_is_held_back_and_counted() -> None:
    """The first goes out; repeats within the interval (numbers aside) are held back; the first
    one after the interval goes out with the count; other messages are independent."""
    clock = _Clock()
    repeats = Repeats(30.0, clock)
    assert repeats.admit("Connect to 127.0.0.1:9 failed (after 0ms)") == 0
    clock.now = 1.0
    assert repeats.admit("Connect to 127.0.0.1:9 failed (after 12ms)") is None
    assert repeats.admit("Connect to 127.0.0.1:9 failed (after 3ms)") is None
    assert repeats.admit("Disconnected") == 0
    clock.now = 30.0
    assert repeats.admit("Connect to 127.0.0.1:9 failed (after 0ms)") == 2
    assert repeats.admit("Connect to 127.0.0.1:9 failed (after 0ms)") is None


def test_remembered_messages_are_bounded() -> None:
    """Past a thousand distinct messages, those older than the interval are forgotten."""
    clock = _Clock()
    repeats = Repeats(1.0, clock)
    for i in range(1000):
        repeats.admit(f"message {chr(0x4E00 + i)}")  # distinct even without their numbers
    clock.now = 5.0
    assert repeats.admit("one more") == 0
    assert len(repeats._seen) == 1  # the bound is the behaviour under test


def _lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


@pytest.fixture
def isolated(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """configure() changes process-wide state: give it back after the test."""
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", list(root.handlers))
    monkeypatch.setattr(root, "level", root.level)
    monkeypatch.setattr(logs, "_stdout", None)
    yield
    structlog.reset_defaults()


@pytest.mark.usefixtures("isolated")
def test_repeated_kafka_errors_and_librdkafka_warnings_come_out_once(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A broker refusing connections 50 times: one kafka.error line and one librdkafka line;
    record outcomes and librdkafka info lines are never held back."""
    configure("INFO", "json", Redactor([], personal_data=False))
    log, rdkafka = get_logger("connector.commands.run"), logging.getLogger("librdkafka")
    for attempt in range(50):
        log.warning("kafka.error", error=f"Connect to 127.0.0.1:9 failed (after {attempt}ms)")
        rdkafka.error("FAIL [thrd:127.0.0.1:9/bootstrap]: Connect failed (after %dms)", attempt)
        rdkafka.info("CONNECT [thrd:127.0.0.1:9/bootstrap]: connecting")
        log.info("record.accepted", offset=attempt)
    flush_logs()
    lines = _lines(capsys.readouterr().out)
    events = [str(line["event"]) for line in lines]
    assert events.count("kafka.error") == 1
    assert sum(1 for e in events if e.startswith("FAIL")) == 1
    assert sum(1 for e in events if e.startswith("CONNECT")) == 50
    assert events.count("record.accepted") == 50
    assert REPEAT_INTERVAL_S == 30.0
