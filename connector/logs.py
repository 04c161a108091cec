"""Structured logs: structlog JSON lines on stdout (console rendering on a terminal), with the
standard library's loggers (librdkafka via confluent-kafka, httpx) routed through the same
processors. Secrets never appear (SPEC §2.6): known secret values are masked everywhere, and emails
and phone numbers are masked in free-text fields unless the user turns that off."""

from __future__ import annotations

import logging
import re
import sys
from typing import TYPE_CHECKING, Any, Literal

import structlog

if TYPE_CHECKING:
    from collections.abc import Iterable, MutableMapping

__all__ = ["Redactor", "configure", "get_logger"]

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE = re.compile(r"(?<![\w-])\+?\d(?:[ -]?\d){6,14}(?![\w-])")
#: Fields that hold structure, never personal data: left as they are.
_STRUCTURAL = frozenset(
    {"event", "level", "timestamp", "logger", "topic", "partition", "offset", "route", "operation"}
    | {"request_id", "lead_id", "account", "outcome", "stage", "http_status", "exception_type"}
)


class Redactor:
    """A structlog processor masking secret values, and emails and phones when asked to."""

    def __init__(self, secrets: Iterable[str], personal_data: bool) -> None:
        # Longest first, so a secret containing another is masked whole.
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)
        self._personal_data = personal_data

    def text(self, value: str, structural: bool = False) -> str:
        """``value`` with secrets (and, for free text, personal data) masked."""
        for secret in self._secrets:
            value = value.replace(secret, "***")
        if self._personal_data and not structural:
            value = _PHONE.sub("<phone>", _EMAIL.sub("<email>", value))
        return value

    def __call__(
        self, _: Any, __: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        for key, value in event_dict.items():
            if isinstance(value, str):
                event_dict[key] = self.text(value, key in _STRUCTURAL)
        return event_dict


def configure(
    level: str,
    fmt: Literal["auto", "json", "console"],
    redactor: Redactor,
) -> None:
    """Set up structlog over the standard library's logging, so that our events and foreign ones
    (librdkafka, httpx) share one processor chain and one renderer."""
    json_output = fmt == "json" or (fmt == "auto" and not sys.stdout.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json_output
        else structlog.dev.ConsoleRenderer(colors=sys.stdout.isatty())
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redactor,
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level]),
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.dict_tracebacks
                if json_output
                else structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per request otherwise
    logging.getLogger("httpcore").setLevel(logging.WARNING)


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    """A logger named after its module; configuration applies when it is first used."""
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger(name)
    return logger
