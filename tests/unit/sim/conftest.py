"""Fixtures of the simulator's unit tests."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.unit.sim.builders import make_store

if TYPE_CHECKING:
    from lsq_sim.store import LeadStore


@pytest.fixture
def store() -> LeadStore:
    """A store with the default rules (EmailAddress and Phone unique)."""
    return make_store()
