"""The pure core stays pure: the modules of ``connector/transform``, ``connector/flow`` and
``connector/lsq`` (every one, found by globbing, so new modules are covered) import no network,
thread, process, event-loop or metrics code, and importing them or the pipeline loads neither the
Kafka client nor the HTTP client, so they run anywhere and are tested without a network (STYLE:
pure core, thin I/O)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import connector

PACKAGE = Path(connector.__file__).parent
PURE_FOLDERS = ("transform", "flow", "lsq")
#: Modules outside those folders that must not load the clients either.
PURE_ELSEWHERE = [
    "connector.pipeline",
    "connector.records",
    "connector.errors",
    "connector.settings.patterns",
]
IO_MODULES = {"aiohttp", "asyncio", "confluent_kafka", "httpx", "prometheus_client", "queue"}
IO_MODULES |= {"socket", "subprocess", "threading"}
PURE_FILES = sorted(path for folder in PURE_FOLDERS for path in (PACKAGE / folder).rglob("*.py"))


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(test: ast.expr) -> bool:
    """``TYPE_CHECKING`` or ``typing.TYPE_CHECKING``."""
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _loaded_roots(node: ast.AST) -> set[str]:
    """Top-level names of the modules ``node`` imports when it runs: imports under ``if
    TYPE_CHECKING:`` are skipped (they never load), those in its ``else`` branch are not."""
    if isinstance(node, ast.Import):
        return {alias.name.split(".")[0] for alias in node.names}
    if isinstance(node, ast.ImportFrom):
        return {node.module.split(".")[0]} if node.module and node.level == 0 else set()
    children = node.orelse if isinstance(node, ast.If) and _is_type_checking(node.test) else None
    roots: set[str] = set()
    for child in ast.iter_child_nodes(node) if children is None else children:
        roots |= _loaded_roots(child)
    return roots


def test_every_pure_folder_has_modules() -> None:
    """The glob finds the folders' modules (a moved folder must not leave the tests empty)."""
    for folder in PURE_FOLDERS:
        assert any(path.parent.name == folder for path in PURE_FILES), folder


@pytest.mark.parametrize(
    "path", PURE_FILES, ids=[str(path.relative_to(PACKAGE)) for path in PURE_FILES]
)
def test_pure_module_imports_no_io_library(path: Path) -> None:
    """A pure module takes data and returns data: it imports none of the I/O libraries (only
    under ``if TYPE_CHECKING:``, for annotations)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    assert _loaded_roots(tree) & IO_MODULES == set()


def test_pure_modules_and_pipeline_load_neither_kafka_nor_http_clients() -> None:
    """Importing the pipeline and every module of the pure folders loads no confluent_kafka and
    no httpx module (nor does anything they import, directly or not)."""
    modules = [*PURE_ELSEWHERE, *(_module_name(path) for path in PURE_FILES)]
    code = (
        f"import sys; import {', '.join(modules)};"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in {'confluent_kafka', 'httpx'}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"
