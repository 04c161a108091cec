"""The connector's configuration: one YAML file, every key overridable by ``LSQ_SINK_`` environment
variables (``__`` nests), secrets from the environment or from files in a secrets directory (file
names like ``accounts__main__access_key``). A frozen pydantic tree validated at start; unknown keys
are errors naming the key. The ``kafka`` section is :mod:`connector.settings.kafka`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import (
    Field,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from connector.errors import ConfigError
from connector.lsq.catalog import BULK, BULK_ROWS
from connector.records import Mode, Operation
from connector.settings import patterns as topic_patterns
from connector.settings.accounts import AccountSettings, RateLimitSettings
from connector.settings.base import Model
from connector.settings.kafka import KafkaSettings
from connector.settings.status import StatusSettings
from connector.transform.mapping import MappingSpec, compile_mapping

if TYPE_CHECKING:
    from pydantic_settings import PydanticBaseSettingsSource

__all__ = [
    "AccountSettings",
    "BulkSettings",
    "FlowSettings",
    "HealthSettings",
    "LogSettings",
    "OutputSettings",
    "RateLimitSettings",
    "RegistrySettings",
    "RetrySettings",
    "RouteSettings",
    "Settings",
    "StatusSettings",
]


class RegistrySettings(Model):
    """Confluent Schema Registry holding the writer schemas of the input topics."""

    url: str
    basic_auth_user_info: SecretStr | None = None


class BulkSettings(Model):
    """Bulk calls of a route (SPEC §12): used when at least ``min_rows`` records wait."""

    min_rows: int = Field(5, ge=1, le=BULK_ROWS)
    max_rows: int = Field(BULK_ROWS, ge=1, le=BULK_ROWS)

    @model_validator(mode="after")
    def _ordered(self) -> BulkSettings:
        if self.min_rows > self.max_rows:
            raise ValueError(f"min_rows {self.min_rows} is more than max_rows {self.max_rows}")
        return self


class RouteSettings(Model):
    """Binds input topics to one LeadSquared operation and one mapping."""

    name: str = Field(min_length=1)
    topics: list[str] = Field(default_factory=list)
    topic_pattern: str | None = None
    account: str = "default"
    operation: Operation | None = None
    mode: Mode = "async"
    on_delete: Literal["skip", "dead_letter"] = "skip"
    value_schema: Path | None = None
    mapping: MappingSpec
    bulk: BulkSettings | None = None  # ``true``: the defaults
    no_change: Literal["skip", "send"] = "skip"  # an update that maps to the same payload
    #: changes of one key waiting together, as one call (capture and update only; default latest)
    coalesce: Literal["latest", "merge", "off"] | None = None

    @field_validator("bulk", mode="before")
    @classmethod
    def _bulk_switch(cls, value: object) -> object:
        """``bulk: true`` / ``false`` switch bulk calls on with the defaults, or off."""
        if isinstance(value, bool):
            return BulkSettings() if value else None
        return value

    @model_validator(mode="after")
    def _consistent(self) -> RouteSettings:
        if bool(self.topics) == (self.topic_pattern is not None):
            raise ValueError("set exactly one of topics and topic_pattern")
        if self.topic_pattern is not None:
            try:
                re.compile(topic_patterns.parse(self.topic_pattern))
            except (topic_patterns.PatternError, re.error) as exc:
                raise ValueError(f"topic_pattern: not a usable regular expression: {exc}") from None
        if self.resolved_operation == "create" and self.mode != "sync":
            raise ValueError("operation create exists only in mode sync (Lead.Create)")
        try:
            compile_mapping(self.resolved_operation, self.mapping)
        except ConfigError as exc:
            raise ValueError(f"mapping.{exc}") from exc
        if self.bulk is not None:
            self._bulk_possible()
        upsert = self.resolved_operation in {"capture", "update"}
        if self.coalesce not in {None, "off"} and not upsert:
            why = "each activity or created lead is a call of its own"
            raise ValueError(f"coalesce: only for capture and update routes ({why})")
        return self

    def _bulk_possible(self) -> None:
        """Only what a bulk row can carry (SPEC §12): capture rows have no LeadUpdateBehavior,
        activity rows carry the lead's search key and nothing else of the lead."""
        operation = self.resolved_operation
        if operation not in BULK:
            only = "capture and lead_and_activity"
            raise ValueError(f"bulk: LeadSquared has bulk calls for {only} only, not {operation}")
        if self.mapping.lead_update_behavior is not None:
            why = "the bulk call has no LeadUpdateBehavior"
            raise ValueError(f"bulk: {why}; remove mapping.lead_update_behavior or bulk")
        search = self.mapping.search_by or "EmailAddress"
        if operation == "lead_and_activity" and set(self.mapping.lead) != {search}:
            others = sorted(set(self.mapping.lead) - {search})
            raise ValueError(
                f"bulk: a bulk activity row posts the activity only; map only the search key "
                f"{search} under mapping.lead (also mapped: {', '.join(others)}), send the other "
                "lead fields through a capture route, or remove bulk"
            )

    @property
    def resolved_operation(self) -> Operation:
        """``operation``, defaulting to lead_and_activity when the mapping has an activity."""
        if self.operation is not None:
            return self.operation
        return "lead_and_activity" if self.mapping.activity is not None else "capture"

    def matches(self, topic: str) -> bool:
        """Whether this route consumes ``topic``."""
        if self.topic_pattern is not None:
            return re.fullmatch(topic_patterns.parse(self.topic_pattern), topic) is not None
        return topic in self.topics


class OutputSettings(Model):
    """Where outcomes go (SPEC §5)."""

    results_topic: str = Field(min_length=1)
    dead_letter_topic: str = Field(min_length=1)
    #: compacted topic of the fingerprint of each key's last accepted payload (SPEC §12)
    state_topic: str | None = Field(None, min_length=1)
    #: the calls spent of each account's daily quota, per source partition and time slice (§7)
    quota_topic: str | None = Field(None, min_length=1)


class RetrySettings(Model):
    """Retries of transient failures (5xx, timeouts, connection errors), SPEC §6."""

    max_attempts: int = Field(8, ge=1)
    backoff_base_seconds: float = Field(0.5, gt=0)
    backoff_max_seconds: float = Field(60.0, gt=0)
    throttle_cooldown_seconds: float | None = Field(None, gt=0)  # default: the account's window
    auth_retry_seconds: float = Field(60.0, gt=0)  # how often a rejected account is probed
    outage_threshold: int = Field(3, ge=1)  # transient failures in a row: LeadSquared looks down
    probe_max_seconds: float = Field(10.0, gt=0)  # longest pause between probes while it is
    throttle_unavailable_seconds: float = Field(60.0, gt=0)  # only throttles this long: probe


class FlowSettings(Model):
    """Bounds on work in flight (SPEC §2.5), commit cadence, shutdown and priorities (SPEC §7)."""

    max_in_flight_records: int = Field(1000, ge=1)
    max_in_flight_bytes: int = Field(64 * 2**20, ge=1024)
    poll_batch_size: int = Field(500, ge=1)
    commit_interval_seconds: float = Field(1.0, gt=0)
    shutdown_grace_seconds: float = Field(25.0, ge=0)
    outcome_lookback_seconds: float = Field(900.0, ge=0)  # outcomes read back on assignment
    stall_warning_seconds: float = Field(15.0, gt=0)  # outcomes unacknowledged: warn after
    #: least part of the jobs handed out that are snapshot reads while live changes wait (SPEC §7)
    snapshot_share: float = Field(0.1, ge=0, le=0.5)


class LogSettings(Model):
    """Structured logs on stdout."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["auto", "json", "console"] = "auto"
    redact_personal_data: bool = True
    progress_interval_seconds: float = Field(10.0, gt=0)


class HealthSettings(Model):
    """The port serving /metrics, /livez and /readyz (SPEC §8)."""

    enabled: bool = True
    host: str = "0.0.0.0"  # noqa: S104 - in a pod, probes and scrapers come from outside
    port: int = Field(9400, ge=0, le=65535)  # 0: any free port (the health.listening line says)
    liveness_timeout_seconds: float = Field(60.0, gt=0)  # /livez fails if the loop stalls longer


class Settings(BaseSettings):
    """The whole configuration."""

    model_config = SettingsConfigDict(
        env_prefix="LSQ_SINK_",
        env_nested_delimiter="__",
        secrets_nested_delimiter="__",
        secrets_prefix="",
        extra="forbid",
        frozen=True,
        allow_inf_nan=False,
    )

    kafka: KafkaSettings
    schema_registry: RegistrySettings | None = None
    accounts: dict[str, AccountSettings] = Field(min_length=1)
    routes: list[RouteSettings] = Field(min_length=1)
    output: OutputSettings
    retry: RetrySettings = RetrySettings()
    flow: FlowSettings = FlowSettings()
    logging: LogSettings = LogSettings()
    health: HealthSettings = HealthSettings()
    status: StatusSettings = StatusSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],  # noqa: ARG003 - part of the hook signature
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,  # noqa: ARG003 - no .env files are read
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Environment over secret files over the YAML file (passed as init values)."""
        from pydantic_settings import NestedSecretsSettingsSource  # noqa: PLC0415

        return env_settings, NestedSecretsSettingsSource(file_secret_settings), init_settings

    @model_validator(mode="after")
    def _references(self) -> Settings:
        names = [route.name for route in self.routes]
        if duplicates := sorted({n for n in names if names.count(n) > 1}):
            raise ValueError(f"routes: duplicate route names {duplicates}")
        for i, route in enumerate(self.routes):
            account = self.accounts.get(route.account)
            if account is None:
                raise ValueError(f"routes.{i}.account: no account named {route.account!r}")
            if route.mode == "async" and account.api_key is None:
                raise ValueError(f"accounts.{route.account}.api_key: needed by async route {i}")
            if route.value_schema is None and self.schema_registry is None:
                raise ValueError(f"routes.{i}.value_schema: needed when no schema_registry is set")
        quotas = [name for name, account in self.accounts.items() if account.daily_quota]
        if quotas and self.output.quota_topic is None:
            raise ValueError(
                f"output.quota_topic: needed by accounts.{quotas[0]}.daily_quota (the calls spent "
                "are kept there, across restarts and for the whole fleet)"
            )
        if self.status.enabled and "create" in self.status.paths:
            raise ValueError("status.paths.create: create is a sync operation, with no status")
        topics = [t for route in self.routes for t in route.topics]
        if duplicates := sorted({t for t in topics if topics.count(t) > 1}):
            raise ValueError(f"routes: topics in more than one route {duplicates}")
        return self

    def route_for(self, topic: str) -> RouteSettings | None:
        """The first route that consumes ``topic``."""
        return next((route for route in self.routes if route.matches(topic)), None)

    def subscription(self) -> list[str]:
        """Topic names and patterns for the consumer's subscribe(): a pattern anchored at both
        ends, so that librdkafka subscribes to exactly the topics the route consumes."""
        out: list[str] = []
        for route in self.routes:
            out += route.topics
            if route.topic_pattern is not None:
                out.append(topic_patterns.subscription(topic_patterns.parse(route.topic_pattern)))
        return out
