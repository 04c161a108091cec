"""``lsq-sink demo``: run :mod:`lsq_stack.demo` (a local broker, schema registry and LeadSquared
simulator, sample CDC events). That package belongs to the development kit (``devkit/``), which
only a checkout's development environment has: neither the wheel nor the image ships it."""

from __future__ import annotations

import sys

__all__ = ["demo"]


def demo() -> int:
    """Run the demo and return its exit code; 1 when the development kit is not installed."""
    try:
        from lsq_stack.demo import main  # noqa: PLC0415 - development kit only, imported lazily
    except ModuleNotFoundError as exc:
        sys.stderr.write(_missing(exc))
        return 1
    return main()


def _missing(exc: ModuleNotFoundError) -> str:
    """What to do when the demo cannot be imported: get a checkout, or complete its environment."""
    if (exc.name or "").partition(".")[0] == "lsq_stack":
        return (
            "lsq-sink demo runs from a checkout of the lsq-sink repository: its development kit "
            "(lsq_stack, in devkit/) is not installed here, nor in the wheel or the image; "
            "run `make demo` in the checkout\n"
        )
    return f"lsq-sink demo: the development environment is incomplete ({exc}): run `make sync`\n"
