"""Session-wide test stack: one broker for all integration and end-to-end tests."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from lsq_stack.broker import Broker, local_broker

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture(scope="session")
def broker() -> Iterator[Broker]:
    """A running Kafka-protocol broker; fails (never skips) when none can be started."""
    with local_broker() as running:
        yield running
