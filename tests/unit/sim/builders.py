"""Builders shared by the simulator's unit tests."""

from __future__ import annotations

import itertools

from lsq_sim.config import StoreRules
from lsq_sim.records import LeadField
from lsq_sim.store import LeadStore

NOW = "2026-01-02 03:04:05"


def make_store(rules: StoreRules | None = None) -> LeadStore:
    """A store with ids id-1, id-2, ... and a fixed clock."""
    counter = itertools.count(1)
    return LeadStore(rules or StoreRules(), lambda: f"id-{next(counter)}", lambda: NOW)


def fields(**values: str) -> tuple[LeadField, ...]:
    """Lead fields from keyword arguments: ``fields(EmailAddress="a@x.io")``."""
    return tuple(LeadField(name, value) for name, value in values.items())
