"""[pure] Reading LeadSquared's JSON answers, the one way every interpreter does: a body that is
not a JSON object reads as an empty one, keys are matched in any casing (LeadSquared spells
``RequestID`` / ``RequestId``, ``ProcessingRatePerMinute`` / ``ProcessingratePerMinute``), and
values are read as text."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["as_text", "field", "parse_json", "parse_object", "snippet"]


def parse_object(body: bytes | str) -> dict[str, Any]:
    """The JSON object in ``body``; empty when it is none (not JSON, not an object, or absurdly
    deep)."""
    parsed = parse_json(body)
    return parsed if isinstance(parsed, dict) else {}


def parse_json(body: bytes | str) -> object:
    """Any JSON value in ``body``; ``None`` when it is not JSON."""
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None


def field(mapping: Mapping[str, Any], key: str) -> object:
    """``mapping[key]`` with the key in any casing; ``None`` when absent."""
    lowered = key.lower()
    return next((v for k, v in mapping.items() if k.lower() == lowered), None)


def as_text(value: object) -> str:
    """A value as text: strings as they are, ``None`` as empty, anything else by ``str``."""
    return value if isinstance(value, str) else "" if value is None else str(value)


def snippet(body: bytes) -> str:
    """The start of a body, for a reason (never empty)."""
    return body[:200].decode("utf-8", "replace").strip() or "(empty body)"
