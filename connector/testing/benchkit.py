"""What the benchmark modules share: running a chosen set of named benchmarks on one stack, and
their command line (``--only NAME``, figures as they come, then one JSON line)."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from connector.testing.broker import local_broker
from connector.testing.registry import SchemaRegistryServer

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from connector.testing.bench import Stack

    Say = Callable[[str], None]
    #: name → (heading, benchmark)
    Benchmarks = Mapping[str, tuple[str, Callable[[Stack, Say], dict[str, Any]]]]

__all__ = ["main", "run_all"]


def run_all(stack: Stack, say: Say, benchmarks: Benchmarks, only: Sequence[str]) -> dict[str, Any]:
    """Run the ``benchmarks`` named in ``only``, saying a heading and the figures of each."""
    figures: dict[str, Any] = {}
    for name in only:
        heading, bench = benchmarks[name]
        say(heading)
        started = time.monotonic()
        figures[name] = bench(stack, say)
        say(f"  {figures[name]}")
        say(f"  ({name}: {time.monotonic() - started:.0f} s)")
    return figures


def main(prog: str, benchmarks: Benchmarks, argv: list[str] | None) -> int:
    """Start a broker and a registry, run ``benchmarks`` (or those ``--only`` names), print the
    figures and one JSON line."""
    from connector.testing.bench import Stack  # noqa: PLC0415 - bench imports the benchmarks

    parser = argparse.ArgumentParser(prog=f"python -m {prog}")
    parser.add_argument("--only", choices=tuple(benchmarks), action="append")
    args = parser.parse_args(argv)

    def say(text: str) -> None:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()

    started = time.monotonic()
    with local_broker() as broker, SchemaRegistryServer() as registry:
        stack = Stack(broker, registry, Path(tempfile.mkdtemp(prefix="lsq-bench-")))
        figures = run_all(stack, say, benchmarks, args.only or tuple(benchmarks))
    say(f"({time.monotonic() - started:.0f} s)")
    say(json.dumps(figures))
    return 0
