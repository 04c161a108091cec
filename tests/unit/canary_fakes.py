"""The canary tests' routes, Status API reports and a canary with test settings."""

from __future__ import annotations

from connector.flow.canary import Canary
from connector.lsq.status import Report
from connector.settings.status import CanarySettings

ROUTE = "leads"
OTHER = "activities"
START = 1_700_000_000.0

PASSED = Report("succeeded", "Request was successfully completed", lead_id="lead-1")
TYPO = Report(
    "failed",
    "Attribute 'mx_Ciyt' does not exist",
    "MXUnknownAttributeException",
    mapping=True,
    attribute="mx_Ciyt",
)
BAD_EVENT = Report(
    "failed", "Event Code is invalid or empty", "MXInvalidActivityException", mapping=True
)
DUPLICATE = Report("failed", "A Lead with same Email already exists.", "MXDuplicateEntryException")


def make_canary(
    *,
    calls: int = 3,
    timeout_seconds: float = 120.0,
    window: int = 20,
    failure_share: float = 0.5,
    routes: tuple[str, ...] = (ROUTE, OTHER),
) -> Canary:
    """A canary of ``routes`` with these settings."""
    settings = CanarySettings(
        calls=calls, timeout_seconds=timeout_seconds, window=window, failure_share=failure_share
    )
    return Canary(routes, settings)


def pass_checks(canary: Canary, count: int, *, route: str = ROUTE, flag: bool = True) -> None:
    """``count`` checks of ``route`` pass (canary checks, unless ``flag`` is off)."""
    for i in range(count):
        assert canary.checked(route, PASSED, f"ok-{i}", canary=flag) is None
