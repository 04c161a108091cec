"""``lsq-sink demo``: run :mod:`connector.testing.demo` (a local broker, schema registry and
LeadSquared simulator, sample CDC events), which only the development environment has."""

from __future__ import annotations

import sys

__all__ = ["demo"]


def demo() -> int:
    """Run the demo and return its exit code; 1 when the development environment is missing."""
    try:
        from connector.testing.demo import main  # noqa: PLC0415 - development stack only
    except ImportError as exc:
        sys.stderr.write(f"lsq-sink demo needs the development environment ({exc}): make demo\n")
        return 1
    return main()
