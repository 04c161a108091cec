"""``lsq-sim``: parse options (over an optional ``--config`` file) into a SimConfig and serve
until SIGTERM/SIGINT (exit 0). Prints exactly one line, ``lsq-sim listening on URL``, when ready.
Bad options exit 2; a port that cannot be bound exits 1."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import yaml
from pydantic import ValidationError

from lsq_sim.app import build_app
from lsq_sim.config import DEFAULT_ACCOUNT, SimConfig, read_config_data
from lsq_stack.serve import run_foreground

__all__ = ["ANNOUNCE", "config_from_args", "main"]

#: The one line ``lsq-sim`` prints when it is ready.
ANNOUNCE = "lsq-sim listening on {url}"

#: argparse destination → path in the SimConfig tree.
_PATHS: dict[str, tuple[str, ...]] = {
    "host": ("host",),
    "port": ("port",),
    "api_key_status": ("api_key_status",),
    "error_style": ("error_style",),
    "seed": ("seed",),
    "request_log_limit": ("request_log_limit",),
    "task_record_limit": ("task_record_limit",),
    "task_record_ttl": ("task_record_ttl_s",),
    "rate_limit_mode": ("rate_limit", "mode"),
    "throttle_style": ("rate_limit", "style"),
    "retry_after": ("rate_limit", "retry_after_s"),
    "limit_status_calls": ("rate_limit", "limit_status_calls"),
    "throttle_message": ("rate_limit", "states_limit"),
    "daily_quota": ("daily_quota", "calls"),
    "quota_day_seconds": ("daily_quota", "day_s"),
    "processing_rate": ("processing", "rate"),
    "processing_delay": ("processing", "delay_s"),
    "processing_error_rate": ("processing", "error_rate"),
    "retry_schedule_scale": ("processing", "retry_schedule_scale"),
    "lost_rate": ("processing", "lost_rate"),
    "failure_rate": ("processing", "failure_rate"),
    "failure_kinds": ("processing", "failure_kinds"),
    "unique_fields": ("store", "unique_fields"),
    "activity_events": ("store", "activity_events"),
    "lead_attributes": ("store", "lead_attributes"),
    "error_rate": ("faults", "error_rate"),
    "drop_rate": ("faults", "drop_rate"),
    "latency_ms": ("faults", "latency_ms"),
    "latency_jitter_ms": ("faults", "latency_jitter_ms"),
}
_KEY_NAMES = ("access_key", "secret_key", "api_key")
_FIRST_ACCOUNT = {"access_key": "access_key", "secret_key": "secret_key", "api_key": "api_key"}


def _rate_limit(text: str) -> dict[str, Any]:
    if text == "off":
        return {"enabled": False}
    calls, sep, window = text.partition("/")
    try:
        if not sep:
            raise ValueError(text)
        return {"calls": int(calls), "window_s": float(window)}
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N/W (e.g. 25/5) or off, not {text!r}") from None


def _states_limit(text: str) -> bool:
    """``--throttle-message``: ``limit`` names N and W, ``plain`` does not."""
    if text not in ("limit", "plain"):
        raise argparse.ArgumentTypeError(f"expected limit or plain, not {text!r}")
    return text == "limit"


def _account(text: str) -> dict[str, str]:
    name, _, keys = text.rpartition("=")
    parts = keys.split(":")
    if len(parts) != len(_KEY_NAMES) or not all(parts):
        raise argparse.ArgumentTypeError(f"expected [NAME=]ACCESS:SECRET:APIKEY, not {text!r}")
    account = dict(zip(_KEY_NAMES, parts, strict=True))
    return {**account, "name": name} if name else account


def _outage(text: str) -> dict[str, Any]:
    start, _, rest = text.partition(":")
    duration, _, mode = rest.partition(":")
    try:
        outage: dict[str, Any] = {"start_s": float(start), "duration_s": float(duration)}
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected START:DURATION[:MODE], not {text!r}") from None
    return {**outage, "mode": mode} if mode else outage


def _fault(text: str) -> dict[str, Any]:
    try:
        rule = json.loads(text)
    except ValueError:
        rule = None
    if not isinstance(rule, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object (a fault rule), not {text!r}")
    return rule


def _names(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _codes(text: str) -> list[int]:
    try:
        return [int(part) for part in _names(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, not {text!r}"
        ) from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lsq-sim",
        description="A LeadSquared API simulator (async and sync hosts) for tests, demos and "
        "benchmarks. Options override the --config file; inspect it at /_sim/*.",
        argument_default=argparse.SUPPRESS,
    )
    add = parser.add_argument
    add("--config", metavar="FILE", help="JSON or YAML file with any of the options below")
    add("--host", help="address to listen on (default 127.0.0.1)")
    add("--port", type=int, help="port to listen on; 0 picks a free one (default 0)")
    _add_accounts(parser)
    _add_behaviour(parser)
    _add_processing(parser)
    _add_faults(parser)
    add("--seed", type=int, metavar="N", help="seed for every random choice (default: unseeded)")
    add(
        "--request-log-limit",
        type=int,
        metavar="N",
        help="calls kept in /_sim/requests (default 1000000)",
    )
    add(
        "--task-record-limit",
        type=int,
        metavar="N",
        help="async status records kept (default 1000000)",
    )
    add(
        "--task-record-ttl",
        type=float,
        metavar="S",
        help="forget a finished task's status record S seconds after it finished (default: "
        "kept until --task-record-limit evicts it)",
    )
    return parser


def _add_accounts(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("accounts")
    group.add_argument("--access-key", help="first account's accessKey (default sim-access-key)")
    group.add_argument("--secret-key", help="first account's secretKey (default sim-secret-key)")
    group.add_argument("--api-key", help="first account's x-api-key (default sim-api-key)")
    group.add_argument(
        "--account",
        type=_account,
        action="append",
        metavar="[NAME=]ACCESS:SECRET:APIKEY",
        help="one more account (repeatable); names default to account2, account3, ...",
    )


def _add_behaviour(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("answers and rate limit")
    add = group.add_argument
    add("--api-key-status", type=int, choices=(401, 403), help="missing/wrong x-api-key (403)")
    add("--error-style", choices=("http500", "http200"), help="HTTP status of MX errors (http500)")
    add("--rate-limit", type=_rate_limit, metavar="N/W|off", help="N calls per W s (25/5)")
    add(
        "--bulk-rate-limit",
        type=_rate_limit,
        metavar="N/W|off",
        help="the bulk endpoints' own budget, N calls per W s (1/5); mode, style and message "
        "as above",
    )
    add("--rate-limit-mode", choices=("sliding", "fixed", "bucket"), help="algorithm (sliding)")
    add(
        "--throttle-style",
        choices=("http429", "body200", "gateway429"),
        help="429 + MX body, 200 + MX body, or 429 {message} (http429)",
    )
    add("--retry-after", type=int, metavar="SECONDS", help="send Retry-After when throttling")
    add("--limit-status-calls", action="store_true", help="status/metrics calls count too")
    add(
        "--throttle-message",
        type=_states_limit,
        metavar="{limit,plain}",
        help="'API calls exceeded the limit of N in W second(s)' or 'API rate limit exceeded' "
        "(limit)",
    )
    add(
        "--daily-quota",
        type=int,
        metavar="N",
        help="per account, at most N calls in any rolling day, past the rate limits (none)",
    )
    add("--quota-day-seconds", type=float, metavar="S", help="the quota's day (86400)")
    add(
        "--unique-fields",
        type=_names,
        metavar="A,B",
        help="unique lead fields (EmailAddress,Phone)",
    )
    add("--activity-events", type=_codes, metavar="N,M", help="valid event codes (default: any)")
    add("--lead-attributes", type=_names, metavar="A,B", help="known lead attributes (any)")


def _add_processing(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("async processing")
    add = group.add_argument
    add("--processing-rate", type=float, metavar="TASKS/S", help="per account (default 100)")
    add("--processing-delay", type=float, metavar="S", help="before a task is eligible (0)")
    add("--processing-error-rate", type=float, metavar="P", help="injected system errors (0)")
    add("--retry-schedule-scale", type=float, metavar="F", help="scales 30s..3h retries (1)")
    add("--lost-rate", type=float, metavar="P", help="accepted but never processed (0)")
    add(
        "--failure-rate",
        type=float,
        metavar="P",
        help="accepted, then FAILURE with an injected MX error, seen only in the Status API (0)",
    )
    add(
        "--failure-kinds",
        type=_names,
        metavar="K,K",
        help="the injected errors: duplicate, not_found, unknown_attribute (all three)",
    )


def _add_faults(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("faults")
    add = group.add_argument
    add("--error-rate", type=float, metavar="P", help="answer 503 {message} at this rate (0)")
    add("--drop-rate", type=float, metavar="P", help="close connections unanswered (0)")
    add("--latency-ms", type=float, metavar="MS", help="added to every API call (0)")
    add("--latency-jitter-ms", type=float, metavar="MS", help="plus uniform 0..this (0)")
    add(
        "--fault",
        type=_fault,
        action="append",
        metavar="JSON",
        help="a fault rule (repeatable), applied in order before auth: {path_prefix, "
        "body_contains, probability, times, action: respond|drop|delay, status, body, delay_s}",
    )
    add(
        "--outage",
        type=_outage,
        action="append",
        metavar="START:DURATION[:MODE]",
        help="seconds from start; MODE http503 (default), refuse or drop (repeatable)",
    )


def config_from_args(args: argparse.Namespace) -> SimConfig:
    """Merge the options over the ``--config`` file into a validated SimConfig."""
    given = vars(args)
    data = read_config_data(given["config"]) if "config" in given else {}
    for dest, path in _PATHS.items():
        if dest in given:
            _set(data, path, given[dest])
    for budget in ("rate_limit", "bulk_rate_limit"):
        if budget in given:
            data[budget] = {**data.get(budget, {}), **given[budget]}
    data.setdefault("faults", {})
    data["faults"]["rules"] = [*data["faults"].get("rules", ()), *given.get("fault", ())]
    data["outages"] = [*data.get("outages", ()), *given.get("outage", ())]
    accounts = list(data.get("accounts") or [DEFAULT_ACCOUNT.model_dump(exclude={"name"})])
    first = {key: given[dest] for dest, key in _FIRST_ACCOUNT.items() if dest in given}
    accounts[0] = {**accounts[0], **first}
    data["accounts"] = [*accounts, *given.get("account", ())]
    return SimConfig.model_validate(data)


def _set(data: dict[str, Any], path: tuple[str, ...], value: object) -> None:
    for key in path[:-1]:
        if data.get(key) is None:  # absent, or null in the file (daily_quota)
            data[key] = {}
        data = data[key]
    data[path[-1]] = value


def _describe(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'config'}: {e['msg']}"
        for e in exc.errors(include_url=False)
    )


def _announce(url: str) -> None:
    print(ANNOUNCE.format(url=url), flush=True)


def main(argv: list[str] | None = None) -> int:
    """Run ``lsq-sim``; return the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
    except ValidationError as exc:
        parser.exit(2, f"lsq-sim: error: invalid configuration: {_describe(exc)}\n")
    except (OSError, ValueError, yaml.YAMLError) as exc:
        parser.exit(2, f"lsq-sim: error: {exc}\n")
    try:
        run_foreground(build_app(config), config.host, config.port, _announce)
    except OSError as exc:
        print(
            f"lsq-sim: error: cannot listen on {config.host}:{config.port}: {exc}", file=sys.stderr
        )
        return 1
    return 0
