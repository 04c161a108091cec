"""The simulator's pure modules do no I/O: they import no network, process or event-loop code."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import lsq_sim as sim_package

PURE = [
    "answers", "bodies", "bulk", "capture", "config", "failures", "faults", "limiter", "meters",
    "ops", "records", "routes", "store", "workqueue",
]  # fmt: skip
IO_MODULES = {"aiohttp", "asyncio", "httpx", "socket", "subprocess", "threading", "confluent_kafka"}


def _imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("module", PURE)
def test_pure_module_imports_no_io_library(module: str) -> None:
    """Pure steps take data and return data: no aiohttp, asyncio, httpx, sockets or processes."""
    path = Path(sim_package.__file__).with_name(f"{module}.py")
    assert _imported_roots(path) & IO_MODULES == set()
