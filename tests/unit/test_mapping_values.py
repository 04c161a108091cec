"""Value formatting (SPEC §4): every Python type a decoded row can hold → the LeadSquared
string, and the stricter ActivityDateTime and ActivityEvent rules."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from enum import StrEnum
from typing import Any
from uuid import UUID

import pytest

from connector.transform.values import (
    Unmappable,
    ValueFormatter,
    activity_datetime,
    activity_event,
    utc_from_ms,
)

FMT = ValueFormatter(("true", "false"))
IST = timezone(timedelta(hours=5, minutes=30))


class Colour(StrEnum):
    RED = "red"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("text", "text"),
        ("", ""),
        ("ünïcødé ✓", "ünïcødé ✓"),
        (True, "true"),
        (False, "false"),
        (0, "0"),
        (-42, "-42"),
        (10**30, "1000000000000000000000000000000"),
        (1.5, "1.5"),
        (2.0, "2"),
        (-0.0, "0"),
        (0.1, "0.1"),
        (1e20, "100000000000000000000"),
        (1e-7, "0.0000001"),
        (-123456.789, "-123456.789"),
        (Decimal("1E+2"), "100"),
        (Decimal("1.50"), "1.50"),
        (Decimal("-0.00"), "0.00"),
        (Decimal("123.456"), "123.456"),
        (Decimal("1E-5"), "0.00001"),
        (datetime(2024, 3, 1, 12, 30, 45, 999999, tzinfo=UTC), "2024-03-01 12:30:45"),
        (datetime(2024, 3, 1, 2, 0, 0, tzinfo=IST), "2024-02-29 20:30:00"),
        (datetime(2024, 3, 1, 12, 30, 45), "2024-03-01 12:30:45"),
        (datetime(5, 1, 2, 3, 4, 5), "0005-01-02 03:04:05"),
        (date(2024, 3, 1), "2024-03-01"),
        (time(7, 8, 9, 500), "07:08:09"),
        (UUID("12345678-1234-5678-1234-567812345678"), "12345678-1234-5678-1234-567812345678"),
        (Colour.RED, "red"),
    ],
)
def test_values_format_as_leadsquared_strings(value: Any, expected: str) -> None:
    """Each supported type renders as the exact string LeadSquared gets."""
    assert FMT(value) == expected


def test_booleans_use_the_configured_forms() -> None:
    """``booleans`` sets what true and false are written as."""
    yes_no = ValueFormatter(("Yes", "No"))
    assert (yes_no(True), yes_no(False)) == ("Yes", "No")


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (float("nan"), "cannot map the float nan"),
        (float("inf"), "cannot map the float inf"),
        (float("-inf"), "cannot map the float -inf"),
        (Decimal("NaN"), "cannot map the decimal NaN"),
        (Decimal("-Infinity"), "cannot map the decimal -Infinity"),
        (Decimal("1E+999999999"), "decimal 1E+999999999 is out of range"),
        (b"\x00\x01", "cannot map bytes; decode them upstream or map a text field"),
        (bytearray(b"x"), "cannot map bytes; decode them upstream or map a text field"),
        ({"a": 1}, "cannot map a dict; map its fields instead"),
        ([1, 2], "cannot map a list; map its items instead (e.g. field.0)"),
        ((1, 2), "cannot map a list; map its items instead (e.g. field.0)"),
        ({1, 2}, "cannot map a set; map a field of a supported type"),
        pytest.param(10**5000, "integer has too many digits", id="int-5001-digits"),
    ],
)
def test_unmappable_values_say_why(value: Any, reason: str) -> None:
    """Values with no LeadSquared form raise Unmappable with a readable reason."""
    with pytest.raises(Unmappable) as caught:
        FMT(value)
    assert caught.value.reason == reason


def test_aware_datetime_overflowing_utc_is_unmappable() -> None:
    """A datetime that leaves the representable range when moved to UTC is refused."""
    with pytest.raises(Unmappable, match="out of range in UTC"):
        FMT(datetime(1, 1, 1, 0, 0, tzinfo=IST))


def test_utc_from_ms_is_exact_and_checks_range() -> None:
    """Epoch milliseconds become an aware UTC datetime; absurd values are refused."""
    assert utc_from_ms(1_700_000_000_123) == datetime(2023, 11, 14, 22, 13, 20, 123000, UTC)
    with pytest.raises(Unmappable, match="out of range"):
        utc_from_ms(10**20)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-03-01 12:30:45", "2024-03-01 12:30:45"),
        ("2024-03-01T12:30:45Z", "2024-03-01 12:30:45"),
        ("2024-03-01T12:30:45.123+05:30", "2024-03-01 07:00:45"),
        ("2024-03-01T12:30:45", "2024-03-01 12:30:45"),
        ("2024-03-01", "2024-03-01 00:00:00"),
    ],
)
def test_activity_datetime_accepts_leadsquared_and_iso_forms(text: str, expected: str) -> None:
    """ActivityDateTime: LeadSquared form kept, ISO-8601 converted to UTC, naive read as UTC."""
    assert activity_datetime(text) == expected


@pytest.mark.parametrize(
    "text",
    ["yesterday", "1700000000", "20240301", "12:30:45", "2024-13-01 00:00:00", "2024-03-01x"],
)
def test_activity_datetime_refuses_other_strings(text: str) -> None:
    """Anything that is not a date-time string is refused, naming the value."""
    with pytest.raises(Unmappable, match="is not a date-time"):
        activity_datetime(text)


@pytest.mark.parametrize(
    ("text", "expected"), [("201", 201), (" 105 ", 105), ("2147483647", 2**31 - 1)]
)
def test_activity_event_accepts_positive_integers(text: str, expected: int) -> None:
    """ActivityEvent: decimal digits of an integer > 0 (numeric strings are converted)."""
    assert activity_event(text) == expected


@pytest.mark.parametrize("text", ["0", "-5", "2.5", "abc", "", "2147483648", "١٢", "true"])
def test_activity_event_refuses_anything_else(text: str) -> None:
    """Zero, negatives, fractions, non-numbers and codes beyond 32 bits are refused."""
    with pytest.raises(Unmappable, match="is not an activity event code"):
        activity_event(text)
