"""The composition root: build the connector's parts from validated settings, run the pipeline
until a signal asks it to stop, close everything, and log a final summary line."""

from __future__ import annotations

import contextlib
import json
import logging
import signal
from typing import TYPE_CHECKING, Any

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient, SchemaRegistryError

from connector.consume import Source
from connector.decode import Decoder
from connector.errors import FatalError
from connector.ledger import Ledger
from connector.logs import Redactor, configure, get_logger
from connector.mapping import compile_mapping
from connector.pipeline import Pipeline
from connector.ports import Account, Route, Tally
from connector.ratelimit import RateGate
from connector.results import RESULT_SCHEMA, OutcomeWriter, ResultEncoder
from connector.schemas import RegistrySchemas, load_avsc, registry_client
from connector.submit import Submitter

if TYPE_CHECKING:
    from collections.abc import Callable

    from connector.decode import WriterSchemas
    from connector.settings import RouteSettings, Settings

__all__ = ["build_routes", "run", "secret_values"]

_log = get_logger(__name__)


def secret_values(settings: Settings) -> list[str]:
    """Every secret in the settings, for masking in logs."""
    secrets = [settings.kafka.sasl_password]
    for account in settings.accounts.values():
        secrets += [account.access_key, account.secret_key, account.api_key]
    if settings.schema_registry is not None:
        secrets.append(settings.schema_registry.basic_auth_user_info)
    values = [secret.get_secret_value() for secret in secrets if secret is not None]
    # a registry's user:password may also show up as the password alone
    return values + [value.partition(":")[2] for value in values if ":" in value]


def _route(route: RouteSettings, schemas: WriterSchemas | None) -> Route:
    if route.value_schema is not None:
        decoder = Decoder(raw=load_avsc(route.value_schema))
    else:
        decoder = Decoder(schemas=schemas)
    operation = route.resolved_operation
    return Route(
        name=route.name,
        account=route.account,
        operation=operation,
        mode=route.mode,
        on_delete=route.on_delete,
        decode=decoder.decode,
        render=compile_mapping(operation, route.mapping).render,
    )


def build_routes(
    settings: Settings, schemas: WriterSchemas | None
) -> Callable[[str], Route | None]:
    """A topic → route lookup (memoised: topic patterns are matched once per topic)."""
    compiled = {route.name: _route(route, schemas) for route in settings.routes}
    cache: dict[str, Route | None] = {}

    def route_for(topic: str) -> Route | None:
        if topic not in cache:
            found = settings.route_for(topic)
            cache[topic] = None if found is None else compiled[found.name]
        return cache[topic]

    return route_for


def _result_schema_id(client: SchemaRegistryClient | None, topic: str) -> int | None:
    if client is None:
        return None
    try:
        return client.register_schema(f"{topic}-value", Schema(json.dumps(RESULT_SCHEMA), "AVRO"))
    except (SchemaRegistryError, OSError, ValueError) as exc:
        raise FatalError(f"cannot register the results schema: {exc}") from exc


def _registry(settings: Settings) -> SchemaRegistryClient | None:
    registry = settings.schema_registry
    if registry is None:
        return None
    auth = registry.basic_auth_user_info
    return registry_client(registry.url, auth.get_secret_value() if auth else None)


def run(settings: Settings) -> Tally:
    """Run the connector until SIGTERM/SIGINT; returns what happened."""
    redactor = Redactor(secret_values(settings), settings.logging.redact_personal_data)
    configure(settings.logging.level, settings.logging.format, redactor)
    kafka_log: dict[str, Any] = {"logger": logging.getLogger("librdkafka")}
    with contextlib.ExitStack() as stack:
        client = _registry(settings)
        if client is not None:
            stack.callback(client.close)
        calls = stack.enter_context(contextlib.closing(Submitter(settings.accounts)))
        output = OutcomeWriter(
            settings.kafka.producer_config() | kafka_log,
            settings.output.results_topic,
            settings.output.dead_letter_topic,
            ResultEncoder(_result_schema_id(client, settings.output.results_topic)),
        )
        stack.callback(output.close, 5.0)
        consumer_config = settings.kafka.consumer_config() | kafka_log
        ledger = Ledger(
            consumer_config,
            (settings.output.results_topic, settings.output.dead_letter_topic),
            settings.flow.outcome_lookback_seconds,
            lambda warning: _log.warning("ledger.incomplete", reason=warning),
        )
        pipeline = Pipeline(
            routes=build_routes(settings, RegistrySchemas(client) if client else None),
            accounts={name: _account(name, settings) for name in settings.accounts},
            output=output,
            calls=calls,
            recovery=ledger,
            retry=settings.retry,
            flow=settings.flow,
            progress_interval=settings.logging.progress_interval_seconds,
        )
        pipeline.attach(
            Source(
                consumer_config,
                settings.subscription(),
                pipeline,
                lambda error: _log.warning("kafka.error", error=error),
            )
        )
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: pipeline.request_stop())
        _log.info("connector.started", routes=[route.name for route in settings.routes])
        pipeline.run()
        return pipeline.tally


def _account(name: str, settings: Settings) -> Account:
    account = settings.accounts[name]
    limit = account.rate_limit
    return Account(
        name=name,
        gate=RateGate(limit.calls, limit.window_seconds, limit.margin_seconds),
        concurrency=account.max_concurrency,
        cooldown=settings.retry.throttle_cooldown_seconds or limit.window_seconds,
    )
