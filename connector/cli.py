"""Command line entry point of `lsq-sink`: parses arguments and maps outcomes to exit codes."""

from __future__ import annotations

import argparse

from connector import __version__

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lsq-sink",
        description="Stream Avro CRM change events from Kafka into LeadSquared.",
    )
    parser.add_argument("--version", action="version", version=f"lsq-sink {__version__}")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return the process exit code."""
    _parser().parse_args(argv)
    return 0
