"""The composition root: build the connector's parts from validated settings, run the pipeline
until a signal asks it to stop, close everything, and log a final summary line."""

from __future__ import annotations

import contextlib
import json
import logging
import signal
from functools import partial
from typing import TYPE_CHECKING, Any

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient, SchemaRegistryError

from connector.adapters.consume import Source
from connector.adapters.health import HealthServer
from connector.adapters.ledger import Ledger
from connector.adapters.originals import SourceReader
from connector.adapters.quota import QuotaTopic
from connector.adapters.results import OutcomeWriter
from connector.adapters.schemas import RegistrySchemas, load_avsc, registry_client
from connector.adapters.state import StateTopic
from connector.adapters.submit import Submitter
from connector.errors import ConfigError, FatalError
from connector.flow.accounts import BULK, MAIN, Account
from connector.flow.bulk import BulkPlanner
from connector.flow.codec import RESULT_SCHEMA, ResultEncoder
from connector.flow.fingerprints import FingerprintStore
from connector.flow.gates import RateGate
from connector.flow.members import FoundOutcomes, KnownPayloads, QuotaCounts
from connector.flow.quota import Quota, midnights
from connector.flow.quotas import Quotas
from connector.flow.tracking import CompletionTracker, Tracking
from connector.logs import Redactor, configure, get_logger
from connector.pipeline import Pipeline
from connector.settings.secrets import secret_values
from connector.transform.decode import Decoder
from connector.transform.mapping import compile_mapping
from connector.transform.route import Route

if TYPE_CHECKING:
    from collections.abc import Callable

    from connector.flow.participant import Loop, Participant
    from connector.flow.tally import Tally
    from connector.lsq.coalesce import Coalesce
    from connector.settings.accounts import AccountSettings
    from connector.settings.model import RouteSettings, Settings
    from connector.transform.decode import WriterSchemas

__all__ = ["RouteBook", "build_routes", "run"]

_log = get_logger(__name__)


def _route(route: RouteSettings, schemas: WriterSchemas | None) -> Route:
    if route.value_schema is not None:
        decoder = Decoder(raw=load_avsc(route.value_schema))
    else:
        decoder = Decoder(schemas=schemas)
    operation = route.resolved_operation
    mapper = compile_mapping(operation, route.mapping)
    upsert = operation in {"capture", "update"}
    return Route(
        name=route.name,
        account=route.account,
        operation=operation,
        mode=route.mode,
        on_delete=route.on_delete,
        decode=decoder.decode,
        render=mapper.render,
        bulk=None if route.bulk is None else (route.bulk.min_rows, route.bulk.max_rows),
        skip_unchanged=route.no_change == "skip" and upsert and mapper.row_only,
        coalesce=_coalesce(route) if upsert else None,
        remember=route.no_change == "skip" and upsert,
    )


def _read_on_assignment_s(liveness_timeout: float) -> float:
    """How long each read on assignment may take (outcomes, quota counts, fingerprints, unfinished
    checks): at most half the liveness timeout, so /livez holds while one runs, and 30 s, so the
    four together stay far within max.poll.interval.ms (300 s). A read cut short fails safe:
    records may be sent again, a quota is unknown (nothing sent) until read, a partition's
    fingerprints are not trusted."""
    return min(30.0, liveness_timeout / 2)


def _state_warning(warning: str) -> None:
    _log.warning("state.incomplete", reason=warning)


def _quota_warning(warning: str) -> None:
    _log.warning("quota.incomplete", reason=warning)


def _originals_warning(warning: str) -> None:
    _log.warning("status.original_unread", reason=warning)


def _coalesce(route: RouteSettings) -> Coalesce | None:
    """How an upsert route coalesces: ``latest`` unless it says otherwise."""
    return None if route.coalesce == "off" else route.coalesce or "latest"


class RouteBook:
    """The compiled routes, and a topic → route lookup (memoised: topic patterns are matched
    once per topic)."""

    def __init__(self, settings: Settings, schemas: WriterSchemas | None) -> None:
        self._settings = settings
        self._compiled = {route.name: _route(route, schemas) for route in settings.routes}
        self._cache: dict[str, Route | None] = {}

    @property
    def all(self) -> tuple[Route, ...]:
        """Every route, in the configuration's order."""
        return tuple(self._compiled.values())

    def __call__(self, topic: str) -> Route | None:
        if topic not in self._cache:
            found = self._settings.route_for(topic)
            self._cache[topic] = None if found is None else self._compiled[found.name]
        return self._cache[topic]


def build_routes(settings: Settings, schemas: WriterSchemas | None) -> RouteBook:
    """The routes of ``settings``, compiled."""
    return RouteBook(settings, schemas)


def _result_schema_id(client: SchemaRegistryClient | None, topic: str) -> int | None:
    if client is None:
        return None
    try:
        return client.register_schema(f"{topic}-value", Schema(json.dumps(RESULT_SCHEMA), "AVRO"))
    except SchemaRegistryError as exc:
        raise FatalError(f"the schema registry refused the results schema: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - the client's transport errors have no common base
        raise FatalError(f"cannot reach the schema registry: {type(exc).__name__}: {exc}") from None


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
        encoder = ResultEncoder(_result_schema_id(client, settings.output.results_topic))
        output = OutcomeWriter(
            settings.kafka.producer_config() | kafka_log,
            settings.output.results_topic,
            settings.output.dead_letter_topic,
            encoder,
            settings.flow.stall_warning_seconds,
        )
        consumer_config = settings.kafka.consumer_config() | kafka_log
        ledger = Ledger(
            consumer_config,
            (settings.output.results_topic, settings.output.dead_letter_topic),
            settings.flow.outcome_lookback_seconds,
            lambda warning: _log.warning("ledger.incomplete", reason=warning),
            read_s := _read_on_assignment_s(settings.health.liveness_timeout_seconds),
        )
        routes = build_routes(settings, RegistrySchemas(client) if client else None)
        accounts = {name: _account(name, settings) for name in settings.accounts}
        participants: list[Callable[[Loop], Participant]] = [partial(FoundOutcomes, ledger)]
        if (quota_topic := settings.output.quota_topic) is not None:
            producer_config = settings.kafka.producer_config() | kafka_log
            spending = QuotaTopic(
                consumer_config, producer_config, quota_topic, _quota_warning, read_s
            )
            quotas = Quotas({n: a.quota for n, a in accounts.items() if a.quota}, spending)
            spending.check(quotas.accounts)  # fails closed: no start without it (SPEC §2.10)
            stack.callback(lambda: spending.close(pipeline.closing(5.0)))
            participants.append(lambda loop: QuotaCounts(quotas, loop.wall))
        if (state_topic := settings.output.state_topic) is not None:
            producer_config = settings.kafka.producer_config() | kafka_log
            states = StateTopic(
                consumer_config, producer_config, state_topic, _state_warning, read_s
            )
            stack.callback(lambda: states.close(pipeline.closing(5.0)))
            participants.append(lambda _: KnownPayloads(FingerprintStore(states)))
        if settings.status.enabled:  # what LeadSquared did with each accepted call (SPEC §13)
            originals = SourceReader(consumer_config, _originals_warning)
            stack.callback(originals.close)
            tracking = Tracking(settings.status, routes.all, originals, ledger)
            participants.append(partial(CompletionTracker, tracking))
        pipeline = Pipeline(
            routes=routes,
            accounts=accounts,
            output=output,
            calls=calls,
            retry=settings.retry,
            flow=settings.flow,
            planner=BulkPlanner(routes) if any(r.bulk for r in settings.routes) else None,
            participants=participants,
            progress_interval=settings.logging.progress_interval_seconds,
        )
        # outcomes not acknowledged yet get what is left of the grace (5 s after a failure)
        stack.callback(lambda: output.close(pipeline.closing(5.0)))
        source = Source(
            consumer_config,
            settings.subscription(),
            pipeline,
            lambda error: _log.warning("kafka.error", error=error),
        )
        pipeline.attach(source)
        if settings.health.enabled:
            stack.callback(_health(settings, pipeline).close)
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: pipeline.request_stop())
        _log.info("connector.started", routes=[route.name for route in settings.routes])
        pipeline.run()
        return pipeline.tally


def _health(settings: Settings, pipeline: Pipeline) -> HealthServer:
    health = settings.health
    try:
        server = HealthServer(health.host, health.port, pipeline, health.liveness_timeout_seconds)
    except OSError as exc:
        raise ConfigError(
            f"health.port: cannot listen on {health.host}:{health.port}: {exc}"
        ) from None
    _log.info("health.listening", host=health.host, port=server.port)
    return server.start()


def _account(name: str, settings: Settings) -> Account:
    """An account whose gates open once partitions are assigned (see ``Shares.gained``): the
    main one, and the bulk one when a route of the account sends bulk calls."""
    account = settings.accounts[name]
    limits = {MAIN: account.rate_limit}
    if any(route.bulk and route.account == name for route in settings.routes):
        limits[BULK] = account.bulk_rate_limit
    main = account.rate_limit
    return Account(
        name=name,
        gates={
            b: RateGate(0, x.window_seconds, x.margin_seconds, pace=True) for b, x in limits.items()
        },
        concurrency=account.max_concurrency,
        cooldown=settings.retry.throttle_cooldown_seconds or main.window_seconds,
        retry=settings.retry,
        limits={b: (x.calls, x.window_seconds) for b, x in limits.items()},
        shared=main.share_by_partitions,
        quota=_quota(account),
    )


def _quota(account: AccountSettings) -> Quota | None:
    """The account's daily quota, if it has one."""
    if account.quota_calls is None:
        return None
    reset = None if account.quota_reset == "rolling" else midnights(account.quota_reset)
    return Quota(account.quota_calls, account.quota_day_seconds, account.quota_pacing, reset)
