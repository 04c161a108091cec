"""Fixtures for the simulator contract tests: an in-process Simulator per test."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from lsq_sim import Processing, RateLimit, SimConfig, Simulator
from tests.integration.sim.lsq import Api, StartSim

if TYPE_CHECKING:
    from collections.abc import Iterator


#: Test defaults: generous limits (rate-limit tests set their own) and fast processing.
BASE = SimConfig(
    rate_limit=RateLimit(calls=1000, window_s=1.0),
    bulk_rate_limit=RateLimit(calls=1000, window_s=1.0),
    processing=Processing(rate=1000.0),
    seed=1,
)


@pytest.fixture
def start_sim() -> Iterator[StartSim]:
    """A factory: ``sim, api = start_sim(error_style="http200")``."""
    started: list[tuple[Simulator, Api]] = []

    def start(**overrides: Any) -> tuple[Simulator, Api]:
        config = SimConfig.model_validate({**BASE.model_dump(), **overrides})
        sim = Simulator(config)
        sim.start()
        api = Api(sim.url, sim.account())
        started.append((sim, api))
        return sim, api

    yield start
    for sim, api in started:
        api.close()
        sim.stop()


@pytest.fixture
def sim_api(start_sim: StartSim) -> tuple[Simulator, Api]:
    """A simulator with the test defaults and an Api for its first account."""
    return start_sim()


@pytest.fixture
def sim(sim_api: tuple[Simulator, Api]) -> Simulator:
    """The default simulator."""
    return sim_api[0]


@pytest.fixture
def api(sim_api: tuple[Simulator, Api]) -> Api:
    """An Api for the default simulator's first account."""
    return sim_api[1]
