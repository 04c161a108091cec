"""Docs that run: the README's settings reference covers every setting of the model, the mapping
reference every mapping key, and ``schemas/result.avsc`` is the schema the connector writes with."""

from __future__ import annotations

import json
import re
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from connector.adapters.metrics import families
from connector.flow.codec import RESULT_SCHEMA
from connector.flow.observe import AccountView, Snapshot, TrackingView
from connector.settings.model import Settings
from connector.transform.mapping import ActivitySpec, MappingSpec

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        if (found := _model(arg)) is not None:
            return found
    return None


def _paths(model: type[BaseModel], prefix: str) -> list[str]:
    out = []
    for name, field in model.model_fields.items():
        path = f"{prefix}{name}"
        origin, nested = typing.get_origin(field.annotation), _model(field.annotation)
        if nested is not None and origin is list:
            path += "[]"
        elif nested is not None and origin is dict:
            path += ".<name>"
        if nested is None or nested is MappingSpec:
            out.append(path)
        else:
            out += _paths(nested, f"{path}.")
    return out


def _documented(path: str) -> bool:
    if f"`{path}`" in README:
        return True
    parent, _, leaf = path.rpartition(".")
    return any(f"`.{leaf}`" in line and f"`{parent}." in line for line in README.splitlines())


def test_every_setting_is_in_the_readme_reference() -> None:
    """Each setting of the model appears in the README's settings table."""
    missing = [path for path in _paths(Settings, "") if not _documented(path)]
    assert missing == []


def test_every_mapping_key_is_in_the_readme_mapping_reference() -> None:
    """Each key of the mapping language appears in the README's mapping example."""
    section = README[README.index("### Mapping") :]
    names = [*MappingSpec.model_fields, *ActivitySpec.model_fields]
    assert [name for name in names if f"{name}:" not in section] == []


def _without_docs(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {k: _without_docs(v) for k, v in schema.items() if k != "doc"}
    if isinstance(schema, list):
        return [_without_docs(item) for item in schema]
    return schema


def test_published_result_schema_is_the_one_written() -> None:
    """schemas/result.avsc (with docs) is RESULT_SCHEMA, field for field."""
    published = json.loads((ROOT / "schemas" / "result.avsc").read_text(encoding="utf-8"))
    assert _without_docs(published) == RESULT_SCHEMA


def test_readme_lists_every_metric() -> None:
    """Each metric family the health port serves is in the README's metrics table."""
    account = AccountView("main", 25, 5.0, 25, 0, True, {"accepted": 1})
    tracking = TrackingView(1, ("leads",), (("main", "capture", 5, 0.0),))
    served = families(Snapshot(accounts=(account,), tracking=tracking))
    names = [family.name + ("_total" if family.type == "counter" else "") for family in served]
    assert len(names) == 37
    assert [name for name in names if f"`{name}" not in README] == []


def test_every_test_the_readme_names_exists() -> None:
    """The README backs its guarantees with named tests: each file and test it names exists,
    so a renamed or deleted test cannot leave a claim without its proof."""
    named = re.findall(r"`(tests/[\w/]+\.py)(?:::(\w+))?`", README)
    assert len(named) >= 20
    missing = []
    for path, name in named:
        source = ROOT / path
        if not source.is_file() or (name and f"def {name}(" not in source.read_text("utf-8")):
            missing.append(f"{path}::{name}" if name else path)
    assert missing == []


def test_the_architecture_table_names_every_package() -> None:
    """Each package under ``connector/`` has its row in the README's architecture table, and each
    row names a package that exists."""
    packages = {
        f"connector/{path.parent.name}/" for path in (ROOT / "connector").glob("*/__init__.py")
    }
    rows = set(re.findall(r"^\| `(connector/\w+/)` \|", README, flags=re.MULTILINE))
    assert len(packages) >= 6
    assert rows == packages


def test_the_flow_table_names_every_module_of_the_flow_once() -> None:
    """The README's table of ``connector/flow/`` names each of its modules exactly once, and only
    modules that exist."""
    section = README[README.index("Inside `connector/flow/`") :]
    table = section[: section.index("\n\n", section.index("| module |"))]
    named = re.findall(r"`(\w+\.py)`", table)
    modules = {
        p.name for p in (ROOT / "connector" / "flow").glob("*.py") if p.name != "__init__.py"
    }
    assert sorted(named) == sorted(modules)
