"""What the benchmark modules share: running a chosen set of named benchmarks on one stack, and
their command line (``--only NAME``, figures as they come, then one JSON line); reading results
records back, quantiles of measured delays, and budget use from the simulator's request log."""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import fastavro

from connector.flow.codec import RESULT_SCHEMA
from lsq_stack.broker import local_broker
from lsq_stack.registry import SchemaRegistryServer

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence

    from lsq_stack.bench import Stack
    from lsq_stack.kafka import Received

    Say = Callable[[str], None]
    #: name → (heading, benchmark)
    Benchmarks = Mapping[str, tuple[str, Callable[[Stack, Say], dict[str, Any]]]]

__all__ = ["Use", "main", "quantile", "result_value", "run_all", "use"]

_RESULT = fastavro.parse_schema(RESULT_SCHEMA)


def result_value(record: Received) -> Any:
    """The value of a results record read back (Confluent wire format: 5 bytes, then Avro)."""
    return fastavro.schemaless_reader(io.BytesIO((record.value or b"")[5:]), _RESULT, None)


def quantile(ordered: Sequence[float], q: float) -> float:
    """The ``q`` quantile of ``ordered`` (sorted, not empty): the value at rank ``len * q``."""
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


@dataclass(frozen=True, slots=True)
class Use:
    """Calls made in a span of time, and the calls a budget allows in it."""

    calls: int
    allowed: float

    @property
    def ratio(self) -> float:
        return round(self.calls / self.allowed, 4)


def use(times: Iterable[float], start: float, end: float, calls: int, window_s: float) -> Use:
    """Calls at ``times`` (the simulator's request log) in [``start``, ``end``) and the calls a
    budget of ``calls`` per ``window_s`` allows in that span."""
    made = sum(1 for t in times if start <= t < end)
    return Use(made, calls * (end - start) / window_s)


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
    from lsq_stack.bench import Stack  # noqa: PLC0415 - bench imports the benchmarks

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
