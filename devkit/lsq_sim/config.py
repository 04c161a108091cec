"""Every option of the simulator as a frozen pydantic tree; also loadable from a JSON or YAML file.

Where LeadSquared's behaviour is unknown (reference/leadsquared-api.md §8), the choice is an option
here with the most conservative default, never a guess baked into the handlers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator

__all__ = [
    "DEFAULT_ACCOUNT",
    "DEFAULT_BULK_LIMIT",
    "FAILURE_KINDS",
    "Account",
    "DailyQuota",
    "FailureKind",
    "FaultRule",
    "Faults",
    "Outage",
    "Processing",
    "RateLimit",
    "SimConfig",
    "StoreRules",
    "load_config",
    "read_config_data",
]

LimitMode = Literal["sliding", "fixed", "bucket"]
ThrottleStyle = Literal["http429", "body200", "gateway429"]
ErrorStyle = Literal["http500", "http200"]
OutageMode = Literal["http503", "refuse", "drop"]
FaultAction = Literal["respond", "drop", "delay"]
FailureKind = Literal["duplicate", "not_found", "unknown_attribute"]
#: Every kind of application error the work queue can inject (``Processing.failure_kinds``).
FAILURE_KINDS: tuple[FailureKind, ...] = ("duplicate", "not_found", "unknown_attribute")


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RateLimit(_Model):
    """Per-account budget: ``calls`` in any ``window_s`` seconds (LeadSquared says 25 in 5).
    ``states_limit`` False throttles with "API rate limit exceeded" instead of the documented
    "API calls exceeded the limit of N in W second(s)"."""

    calls: int = Field(25, ge=1)
    window_s: float = Field(5.0, gt=0)
    enabled: bool = True
    mode: LimitMode = "sliding"
    style: ThrottleStyle = "http429"
    retry_after_s: int | None = Field(None, ge=0, description="send Retry-After (none by default)")
    limit_status_calls: bool = False
    states_limit: bool = True


#: LeadSquared's smallest documented bulk budget: 1 call in 5 s (reference §4.1).
DEFAULT_BULK_LIMIT = RateLimit(calls=1, window_s=5.0)


class DailyQuota(_Model):
    """Per-account quota: at most ``calls`` admitted calls in any closed window of ``day_s``
    seconds (a rolling day), on top of the rate limits."""

    calls: int = Field(ge=1)
    day_s: float = Field(86400.0, gt=0)


class Account(_Model):
    """One LeadSquared tenant: key pair, async-gateway key and (optionally) its own limits."""

    name: str = ""  # filled in by SimConfig: account1, account2, ...
    access_key: str = Field(min_length=1)
    secret_key: str = Field(min_length=1)
    api_key: str = Field(min_length=1)
    rate_limit: RateLimit | None = None
    bulk_rate_limit: RateLimit | None = None
    daily_quota: DailyQuota | None = None


DEFAULT_ACCOUNT = Account(
    name="account1",
    access_key="sim-access-key",
    secret_key="sim-secret-key",
    api_key="sim-api-key",
)


class FaultRule(_Model):
    """Applied before auth, in order; the first rule that matches and wins its draw applies."""

    path_prefix: str | None = None
    body_contains: str | None = None
    probability: float = Field(1.0, ge=0.0, le=1.0)
    times: int | None = Field(None, ge=0, description="how often it may apply (None = always)")
    action: FaultAction = "respond"
    status: int = Field(503, ge=100, le=599)
    body: JsonValue = None  # None: {"message": <reason phrase>}
    delay_s: float = Field(0.0, ge=0.0)


class Outage(_Model):
    """A window, in seconds from simulator start, during which every API call fails."""

    start_s: float = Field(ge=0.0)
    duration_s: float = Field(gt=0.0)
    mode: OutageMode = "http503"


class Faults(_Model):
    """Fault rules plus the convenience rates; replaceable at run time through the control API."""

    rules: tuple[FaultRule, ...] = ()
    error_rate: float = Field(0.0, ge=0.0, le=1.0)
    drop_rate: float = Field(0.0, ge=0.0, le=1.0)
    latency_ms: float = Field(0.0, ge=0.0)
    latency_jitter_ms: float = Field(0.0, ge=0.0)


class Processing(_Model):
    """The async work queue: how fast accepted requests are applied, and how they fail."""

    rate: float = Field(100.0, gt=0.0, description="tasks per second, per account")
    delay_s: float = Field(0.0, ge=0.0, description="age before a task becomes eligible")
    error_rate: float = Field(0.0, ge=0.0, le=1.0, description="injected system errors")
    retry_schedule_scale: float = Field(1.0, gt=0.0)
    lost_rate: float = Field(0.0, ge=0.0, le=1.0, description="accepted but never processed")
    failure_rate: float = Field(
        0.0, ge=0.0, le=1.0, description="injected application errors (FAILURE), not applied"
    )
    failure_kinds: tuple[FailureKind, ...] = Field(FAILURE_KINDS, min_length=1)


class StoreRules(_Model):
    """Tenant settings of the lead store."""

    unique_fields: tuple[str, ...] = ("EmailAddress", "Phone")
    activity_events: tuple[int, ...] | None = None  # None: any positive event code
    lead_attributes: tuple[str, ...] | None = None  # None: any attribute


class SimConfig(_Model):
    """The whole simulator configuration."""

    host: str = "127.0.0.1"
    port: int = Field(0, ge=0, le=65535)
    accounts: tuple[Account, ...] = Field((DEFAULT_ACCOUNT,), min_length=1)
    api_key_status: Literal[401, 403] = 403
    error_style: ErrorStyle = "http500"
    rate_limit: RateLimit = RateLimit()
    bulk_rate_limit: RateLimit = Field(
        DEFAULT_BULK_LIMIT,
        description="the bulk endpoints' own budget: only calls, window_s and enabled are read; "
        "mode, style, retry_after_s and states_limit follow the account's rate_limit",
    )
    daily_quota: DailyQuota | None = Field(None, description="every account's (none by default)")
    processing: Processing = Processing()
    store: StoreRules = StoreRules()
    faults: Faults = Faults()
    outages: tuple[Outage, ...] = ()
    seed: int | None = None
    request_log_limit: int = Field(1_000_000, ge=0)
    task_record_limit: int = Field(1_000_000, ge=1)
    task_record_ttl_s: float | None = Field(
        None,
        ge=0.0,
        description="seconds a finished task's status record is kept (None: until "
        "task_record_limit evicts it)",
    )

    @field_validator("accounts")
    @classmethod
    def _named_and_distinct(cls, accounts: tuple[Account, ...]) -> tuple[Account, ...]:
        named = tuple(
            a if a.name else a.model_copy(update={"name": f"account{i}"})
            for i, a in enumerate(accounts, start=1)
        )
        for what in ("name", "access_key", "api_key"):
            values = [getattr(a, what) for a in named]
            if len(set(values)) != len(values):
                raise ValueError(f"two accounts share the same {what}")
        return named

    def account_limit(self, account: Account) -> RateLimit:
        """The rate limit that applies to ``account``."""
        return account.rate_limit or self.rate_limit

    def account_bulk_limit(self, account: Account) -> RateLimit:
        """The bulk endpoints' budget for ``account``: its (or the default) ``bulk_rate_limit``
        counted with the algorithm and answered in the style (and message) of its main rate
        limit."""
        main = self.account_limit(account)
        bulk = account.bulk_rate_limit or self.bulk_rate_limit
        how = main.model_dump(include={"mode", "style", "retry_after_s", "states_limit"})
        return bulk.model_copy(update=how)

    def account_quota(self, account: Account) -> DailyQuota | None:
        """The daily quota that applies to ``account``, if any."""
        return account.daily_quota or self.daily_quota


def read_config_data(path: str | Path) -> dict[str, Any]:
    """The raw mapping in a ``.json`` file, or in YAML (any other extension)."""
    file = Path(path)
    text = file.read_text(encoding="utf-8")
    data = json.loads(text) if file.suffix == ".json" else yaml.safe_load(text)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"{file}: expected a mapping of options at the top level")
    return data


def load_config(path: str | Path) -> SimConfig:
    """Read a SimConfig from a ``.json`` file, or from YAML (any other extension)."""
    return SimConfig.model_validate(read_config_data(path))
