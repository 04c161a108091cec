"""The ``kafka`` section of the configuration: the cluster, the consumer group and extra librdkafka
properties, rendered into the consumer and producer settings with the delivery guarantees fixed."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

__all__ = ["KafkaSettings", "LibrdkafkaValue"]

#: A librdkafka property's value.
LibrdkafkaValue = str | int | float | bool
#: Consumer and producer settings the delivery guarantees depend on (SPEC §2): not overridable.
_CONSUMER_FIXED: dict[str, LibrdkafkaValue] = {
    "enable.auto.commit": False,
    "enable.auto.offset.store": False,
}
_PRODUCER_FIXED: dict[str, LibrdkafkaValue] = {"enable.idempotence": True, "acks": "all"}


class KafkaSettings(BaseModel):
    """The Kafka cluster, the consumer group, and extra librdkafka properties."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    bootstrap_servers: str
    group_id: str = "lsq-sink"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_ca_location: str | None = None
    consumer: dict[str, LibrdkafkaValue] = Field(default_factory=dict)
    producer: dict[str, LibrdkafkaValue] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _guarantees_stay(self) -> KafkaSettings:
        for name, extra, fixed in (
            ("consumer", self.consumer, _CONSUMER_FIXED),
            ("producer", self.producer, _PRODUCER_FIXED),
        ):
            for key in extra.keys() & fixed.keys():
                raise ValueError(f"{name}.{key}: fixed by the connector's delivery guarantees")
        return self

    def _common(self) -> dict[str, LibrdkafkaValue]:
        common: dict[str, LibrdkafkaValue] = {
            "bootstrap.servers": self.bootstrap_servers,
            "security.protocol": self.security_protocol,
        }
        optional: dict[str, LibrdkafkaValue | None] = {
            "sasl.mechanism": self.sasl_mechanism,
            "sasl.username": self.sasl_username,
            "sasl.password": self.sasl_password.get_secret_value() if self.sasl_password else None,
            "ssl.ca.location": self.ssl_ca_location,
        }
        return common | {k: v for k, v in optional.items() if v is not None}

    def consumer_config(self) -> dict[str, LibrdkafkaValue]:
        """librdkafka consumer settings: ours, then the user's, then the fixed guarantees."""
        ours: dict[str, LibrdkafkaValue] = {
            "group.id": self.group_id,
            "auto.offset.reset": "earliest",
            "partition.assignment.strategy": "cooperative-sticky",
            # A small prefetch: LeadSquared takes a few calls a second, and each pause under
            # backpressure drops what was prefetched; large fetches only grow the heap (make bench).
            "queued.max.messages.kbytes": 1024,
            "fetch.max.bytes": 1_048_576,
            "max.partition.fetch.bytes": 262_144,
        }
        return self._common() | ours | self.consumer | _CONSUMER_FIXED

    def producer_config(self) -> dict[str, LibrdkafkaValue]:
        """librdkafka producer settings for results and dead letters (idempotent, acks=all)."""
        ours: dict[str, LibrdkafkaValue] = {
            "linger.ms": 5,
            "compression.type": "lz4",
            "delivery.timeout.ms": 120_000,
        }
        return self._common() | ours | self.producer | _PRODUCER_FIXED
