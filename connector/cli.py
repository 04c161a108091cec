"""Command line entry point of ``lsq-sink``: parse arguments, load settings, run; map outcomes to
exit codes (0 ok, 2 bad configuration or arguments, 1 any other fatal error)."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from connector import __version__
from connector.errors import ConfigError, FatalError
from connector.logs import mask, secret_forms
from connector.settings.load import load_settings
from connector.settings.secrets import secret_values

__all__ = ["main"]

EXIT_OK, EXIT_FATAL, EXIT_CONFIG = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lsq-sink",
        description="Stream Avro CRM change events from Kafka into LeadSquared.",
    )
    parser.add_argument("--version", action="version", version=f"lsq-sink {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, text in (
        ("run", "run the connector until SIGTERM/SIGINT"),
        ("validate", "check the configuration and render payloads; --live sends one per route"),
    ):
        command = commands.add_parser(name, help=text, description=text)
        command.add_argument("--config", type=Path, required=True, help="YAML configuration file")
        command.add_argument(
            "--secrets-dir",
            type=Path,
            help="directory of secret files named by setting, e.g. accounts__main__access_key",
        )
    validate = commands.choices["validate"]
    validate.add_argument(
        "--samples",
        type=Path,
        help='JSON Lines file of sample records: {"topic": ..., "value": <decoded value>}',
    )
    validate.add_argument(
        "--from-topics",
        type=int,
        default=0,
        metavar="N",
        help="also render the first N records of each route's topics (read-only, no commits)",
    )
    validate.add_argument(
        "--live",
        action="store_true",
        help="send each route's first rendered sample to LeadSquared for real and, for async "
        "routes, wait for its status (needs --samples or --from-topics)",
    )
    validate.add_argument(
        "--live-timeout",
        type=_seconds,
        default=120.0,
        metavar="SECONDS",
        help="with --live: how long to wait for each async call's status (default: 120)",
    )
    commands.add_parser(
        "demo",
        help="run the connector on a local stack with sample CDC events (needs `make demo`)",
        description="Start a local broker, schema registry and LeadSquared simulator, produce "
        "sample CDC events, run the connector until all are processed, print a summary.",
    )
    return parser


def _seconds(text: str) -> float:
    """A positive number of seconds (argparse type)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return the process exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "validate" and args.live and args.samples is None and not args.from_topics:
        parser.error("validate --live needs samples to send: add --samples FILE or --from-topics N")
    if args.command == "demo":
        from connector.commands.demo import demo  # noqa: PLC0415 - keeps `--help` fast

        return demo()
    secrets: list[str] = []
    try:
        settings = load_settings(args.config, args.secrets_dir)
        secrets = secret_forms(secret_values(settings))
        if args.command == "validate":
            from connector.commands.validate import validate  # noqa: PLC0415 - only this command needs it

            live_timeout = args.live_timeout if args.live else None
            return validate(settings, args.samples, sys.stdout, args.from_topics, live_timeout)
        from connector.commands.run import run  # noqa: PLC0415 - keeps `--help` fast

        tally = run(settings)
    except ConfigError as exc:
        sys.stderr.write(f"lsq-sink: configuration error: {mask(str(exc), secrets)}\n")
        return EXIT_CONFIG
    except FatalError as exc:
        sys.stderr.write(f"lsq-sink: stopped: {mask(str(exc), secrets)}\n")
        return EXIT_FATAL
    summary = {"consumed": tally.consumed, "accepted": tally.accepted}
    summary |= {"dead_lettered": tally.dead_lettered, "skipped": tally.skipped}
    summary |= {"recovered": tally.recovered, "ambiguous_retries": tally.ambiguous}
    summary |= {"api_calls": tally.api_calls, "throttled": tally.throttled}
    if settings.status.enabled:  # completion tracking: the follow-ups written, what it cost
        summary |= {"succeeded": tally.succeeded, "failed": tally.failed, "unknown": tally.unknown}
        summary |= {"status_calls": tally.status_calls}
    sys.stdout.write(json.dumps(summary) + "\n")
    return EXIT_OK
