"""Structured logs: structlog JSON lines on stdout (console rendering on a terminal), with the
standard library's loggers (librdkafka via confluent-kafka, httpx) routed through the same
processors. Secrets never appear (SPEC §2.6): known secret values are masked everywhere, and emails
and phone numbers are masked in free-text fields unless the user turns that off. Noisy repeats (a
broker refusing connections, retried many times a second) are held back: one line per
``REPEAT_INTERVAL_S`` that says how many like it were not written."""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from typing import TYPE_CHECKING, Any, Literal, TextIO
from urllib.parse import quote, quote_plus

import structlog

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, MutableMapping

__all__ = [
    "Redactor",
    "Repeats",
    "configure",
    "flush_logs",
    "get_logger",
    "mask",
    "secret_forms",
]

#: How long identical Kafka client errors and librdkafka lines are held back after one is written.
REPEAT_INTERVAL_S = 30.0
#: Our events that repeat while a fault lasts (the Kafka client's error callbacks).
_REPEATING = frozenset({"kafka.error"})
_NUMBERS = re.compile(r"\d+")
_REMEMBERED = 1000  # distinct messages remembered before old ones are forgotten

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE = re.compile(r"(?<![\w-])\+?\d(?:[ -]?\d){6,14}(?![\w-])")
#: Fields that hold structure, never personal data: left as they are.
_STRUCTURAL = frozenset(
    {"event", "level", "timestamp", "logger", "topic", "partition", "offset", "route", "operation"}
    | {"request_id", "lead_id", "account", "outcome", "stage", "http_status", "exception_type"}
)


def secret_forms(secrets: Iterable[str]) -> list[str]:
    """Every form a secret can take in text: raw, URL-encoded (query strings) and JSON-escaped;
    longest first, so a secret containing another is masked whole."""
    forms = set()
    for secret in secrets:
        if secret:
            forms |= {secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1]}
    return sorted(forms, key=len, reverse=True)


def mask(text: str, forms: Iterable[str]) -> str:
    """``text`` with every secret form replaced by ``***``."""
    for form in forms:
        text = text.replace(form, "***")
    return text


class Redactor:
    """A structlog processor masking secret values (in every form, in nested values too), and
    emails and phones in free text when asked to."""

    def __init__(self, secrets: Iterable[str], personal_data: bool) -> None:
        self._secrets = secret_forms(secrets)
        self._personal_data = personal_data

    def text(self, value: str, structural: bool = False) -> str:
        """``value`` with secrets (and, for free text, personal data) masked."""
        value = mask(value, self._secrets)
        if self._personal_data and not structural:
            value = _PHONE.sub("<phone>", _EMAIL.sub("<email>", value))
        return value

    def __call__(
        self, _: Any, __: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        for key, value in event_dict.items():
            event_dict[key] = self._clean(value, key in _STRUCTURAL)
        return event_dict

    def _clean(self, value: Any, structural: bool) -> Any:
        if isinstance(value, str):
            return self.text(value, structural)
        if isinstance(value, dict):
            return {k: self._clean(v, structural) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._clean(v, structural) for v in value]
        return value


class Repeats:
    """Messages seen again within ``interval`` seconds (numbers aside, such as "after 3ms") are
    held back and counted; the next one let through says how many were."""

    def __init__(
        self, interval: float = REPEAT_INTERVAL_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._interval, self._clock = interval, clock
        self._seen: dict[str, tuple[float, int]] = {}  # key → (when let through, held since)

    def admit(self, text: str) -> int | None:
        """``None`` to hold ``text`` back; else how many like it were held back before it."""
        key, now = _NUMBERS.sub("#", text), self._clock()
        let_through, held = self._seen.get(key, (-self._interval, 0))
        if now - let_through < self._interval:
            self._seen[key] = (let_through, held + 1)
            return None
        if len(self._seen) >= _REMEMBERED:  # forget old messages (bounded memory)
            self._seen = {k: v for k, v in self._seen.items() if now - v[0] < self._interval}
        self._seen[key] = (now, 0)
        return held

    def processor(
        self, _: Any, __: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        """structlog: hold back repeated events of the kinds that repeat while a fault lasts."""
        if event_dict.get("event") in _REPEATING:
            held = self.admit(
                f"{event_dict['event']} {event_dict.get('client')} {event_dict.get('error')}"
            )
            if held is None:
                raise structlog.DropEvent
            if held:
                event_dict["repeats_held_back"] = held
        return event_dict

    def filter(self, record: logging.LogRecord) -> bool:
        """logging: the same for a standard library logger's warnings and errors (debug and info
        lines, asked for, all go out)."""
        if record.levelno < logging.WARNING:
            return True
        held = self.admit(f"{record.name} {record.getMessage()}")
        if held:
            record.msg, record.args = f"{record.getMessage()} ({held} like it held back)", ()
        return held is not None


class _Stdout:
    """Where our log lines go: stdout, written at once but flushed at most every ``interval``
    seconds. Each flush is a system call that hands the GIL to the HTTP threads; one per line
    costs a busy connector a tenth of its throughput. :func:`flush_logs` pushes pending lines out
    (the loop calls it every turn, so a quiet connector's last lines are never held back)."""

    def __init__(self, stream: TextIO, interval: float = 0.1) -> None:
        self._stream, self._interval, self._flushed = stream, interval, 0.0

    def write(self, text: str) -> int:
        return self._stream.write(text)

    def flush(self) -> None:
        now = time.monotonic()
        if now - self._flushed >= self._interval:
            self._flushed = now
            self._stream.flush()


_stdout: _Stdout | None = None


def flush_logs() -> None:
    """Push log lines out if the last flush is more than the flush interval ago."""
    if _stdout is not None:
        _stdout.flush()


def _logger_name(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Our loggers carry their name as ``logger_name`` (``logger`` is taken by structlog's own
    arguments); write it as ``logger``, like the standard library's loggers."""
    if "logger_name" in event_dict:
        event_dict["logger"] = event_dict.pop("logger_name")
    return event_dict


def configure(
    level: str,
    fmt: Literal["auto", "json", "console"],
    redactor: Redactor,
) -> None:
    """Set up structlog for our events (written straight to stdout: the per-record path) and
    route the standard library's loggers (librdkafka, httpx) through the same processors."""
    json_output = fmt == "json" or (fmt == "auto" and not sys.stdout.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json_output
        else structlog.dev.ConsoleRenderer(colors=sys.stdout.isatty())
    )
    tracebacks = (
        structlog.processors.dict_tracebacks
        if json_output
        else structlog.processors.format_exc_info
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    global _stdout  # noqa: PLW0603 - one stdout per process
    _stdout = _Stdout(sys.stdout)
    repeats = Repeats()
    structlog.configure(
        processors=[repeats.processor, _logger_name, *shared, tracebacks, redactor, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level]),
        logger_factory=structlog.WriteLoggerFactory(_stdout),  # type: ignore[arg-type]  # a writable text file
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                tracebacks,
                redactor,  # after the traceback is rendered: exception text is masked too
                renderer,
            ],
        )
    )
    handler.filters[:] = [repeats.filter]
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per request otherwise
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    logging.getLogger("httpx2").setLevel(logging.WARNING)  # the schema registry client's


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    """A logger named after its module; it takes the configuration current at its first use."""
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger(logger_name=name)
    return logger
