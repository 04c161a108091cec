"""The ``accounts`` section: one LeadSquared account's hosts, keys, rate limits (main and bulk,
SPEC §7) and daily quota."""

from __future__ import annotations

from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, HttpUrl, SecretStr, field_validator

from connector.settings.base import Model

__all__ = ["AccountSettings", "RateLimitSettings"]


class RateLimitSettings(Model):
    """At most ``calls`` calls in any ``window_seconds`` for the account (SPEC §7)."""

    calls: int = Field(25, ge=1)
    window_seconds: float = Field(5.0, gt=0)
    margin_seconds: float = Field(0.05, ge=0)
    share_by_partitions: bool = True  # replicas split the budget by their share of partitions


def _smallest_bulk_limit() -> RateLimitSettings:
    """LeadSquared's smallest documented bulk limit: 1 call in 5 s (older plans)."""
    return RateLimitSettings(calls=1)


class AccountSettings(Model):
    """One LeadSquared account: hosts, keys and its rate limits (main and bulk)."""

    async_host: HttpUrl = HttpUrl("https://asyncapi.leadsquared.com")
    api_host: HttpUrl = HttpUrl("https://api.leadsquared.com")
    access_key: SecretStr
    secret_key: SecretStr
    api_key: SecretStr | None = None
    rate_limit: RateLimitSettings = RateLimitSettings()
    bulk_rate_limit: RateLimitSettings = Field(default_factory=_smallest_bulk_limit)
    max_concurrency: int = Field(4, ge=1, le=256)
    connect_timeout_seconds: float = Field(5.0, gt=0)
    request_timeout_seconds: float = Field(30.0, gt=0)
    #: calls per day the account's plan allows (every integration of the account together)
    daily_quota: int | None = Field(None, ge=1)
    quota_reserve: float = Field(0.1, ge=0, lt=1)  # of the quota, left to other integrations
    quota_pacing: Literal["even", "greedy"] = "even"  # spread over the day, or as fast as allowed
    quota_day_seconds: float = Field(86_400.0, gt=0)  # the quota's rolling day (shorter: tests)
    #: ``rolling`` (any 24 h), or the IANA time zone whose midnight starts the quota's day
    quota_reset: str = "rolling"

    @field_validator("quota_reset")
    @classmethod
    def _zone(cls, value: str) -> str:
        if value != "rolling":
            try:
                ZoneInfo(value)
            except (ValueError, ZoneInfoNotFoundError):
                raise ValueError(
                    f"expected rolling or a time zone name such as Asia/Kolkata, got {value!r}"
                ) from None
        return value

    @property
    def quota_calls(self) -> int | None:
        """The most calls the connector spends in any rolling day, if the account has a quota."""
        if self.daily_quota is None:
            return None
        return int(self.daily_quota * (1 - self.quota_reserve))
