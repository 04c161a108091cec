"""The chart's values: bad ones are refused with a message naming the value, the schema closes
every object it defines and stays in step with the connector's settings, and the chart's README
documents every value with its real default."""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema  # type: ignore[import-untyped]  # no stubs among the dev dependencies
import pytest
import yaml

from connector.settings.model import FlowSettings, HealthSettings, Settings
from tests.chart.render import CHART_DIR, SECRETS, helm, render

SCHEMA: dict[str, Any] = json.loads((CHART_DIR / "values.schema.json").read_text(encoding="utf-8"))
VALUES: dict[str, Any] = yaml.safe_load((CHART_DIR / "values.yaml").read_text(encoding="utf-8"))
README = (CHART_DIR / "README.md").read_text(encoding="utf-8")
ACCESS_KEY = SECRETS["accounts__main__access_key"]

BAD_VALUES: dict[str, tuple[dict[str, Any], str]] = {
    "unknown top-level key": ({"replicas": 3}, "additional properties 'replicas' not allowed"),
    "unknown nested key": ({"image": {"tga": "1.0"}}, "at '/image': additional properties 'tga'"),
    "replicas of the wrong type": (
        {"replicaCount": "3"},
        "at '/replicaCount': got string, want integer",
    ),
    "negative replicas": ({"replicaCount": -1}, "at '/replicaCount': minimum: got -1, want 0"),
    "bad pull policy": (
        {"image": {"pullPolicy": "Sometimes"}},
        "at '/image/pullPolicy': value must be one of 'Always', 'IfNotPresent', 'Never'",
    ),
    "bad quantity": ({"resources": {"limits": {"memory": "lots"}}}, "/resources/limits/memory"),
    "probe period zero": (
        {"livenessProbe": {"enabled": True, "periodSeconds": 0}},
        "at '/livenessProbe/periodSeconds': minimum: got 0, want 1",
    ),
    "bad budget mode": (
        {"podDisruptionBudget": {"enabled": "yes"}},
        "at '/podDisruptionBudget/enabled': value must be one of 'auto', true, false",
    ),
    "unknown config section": ({"config": {"kafak": {}}}, "additional properties 'kafak'"),
    "grace of the wrong type": (
        {"config": {"flow": {"shutdown_grace_seconds": "25"}}},
        "at '/config/flow/shutdown_grace_seconds': got string, want number",
    ),
    "account credentials without a secret key": (
        {"credentials": {"accounts": {"main": {"accessKey": ACCESS_KEY}}}},
        "at '/credentials/accounts/main': missing property 'secretKey'",
    ),
    "uppercase account in credentials": (
        {"credentials": {"accounts": {"Main": {"accessKey": ACCESS_KEY, "secretKey": "s"}}}},
        "'Main' does not match pattern",
    ),
    "access key in config": (
        {"config": {"accounts": {"main": {"access_key": ACCESS_KEY}}}},
        (
            "config holds secrets (config.accounts.main.access_key): they would be stored in a "
            "ConfigMap"
        ),
    ),
    "api key nested deeper in config.accounts": (
        {"config": {"accounts": {"main": {"rate_limit": {"api_key": ACCESS_KEY}}}}},
        "config holds secrets (config.accounts.main.rate_limit.api_key)",
    ),
    "kafka passwords in config": (
        {"config": {"kafka": {"sasl_password": ACCESS_KEY, "producer": {"sasl.password": "x"}}}},
        "config holds secrets (config.kafka.sasl_password, config.kafka.producer.sasl.password)",
    ),
    "registry user info in config": (
        {"config": {"schema_registry": {"url": "http://r", "basic_auth_user_info": ACCESS_KEY}}},
        "config holds secrets (config.schema_registry.basic_auth_user_info)",
    ),
    "existing secret and secret values": (
        {"credentials": {"existingSecret": "creds", "kafkaSaslPassword": ACCESS_KEY}},
        "set either credentials.existingSecret or the credentials values",
    ),
    "uppercase account in config": (
        {"config": {"accounts": {"Main": {}}}},
        "config.accounts.Main: account names must be lowercase",
    ),
    "service monitor without its service": (
        {"serviceMonitor": {"enabled": True}, "service": {"enabled": False}},
        "serviceMonitor.enabled needs service.enabled",
    ),
    "health port off while probed": (
        {"config": {"health": {"enabled": False}}},
        "config.health.enabled is false, but the probes",
    ),
    "health port on loopback": (
        {"config": {"health": {"host": "127.0.0.1"}}},
        "config.health.host 127.0.0.1 is reachable only inside the pod",
    ),
    "secret as a plain env value": (
        {"env": [{"name": "LSQ_SINK_ACCOUNTS__MAIN__ACCESS_KEY", "value": ACCESS_KEY}]},
        "env LSQ_SINK_ACCOUNTS__MAIN__ACCESS_KEY: a secret given as a plain value",
    ),
    "grace overridden by env": (
        {"env": [{"name": "LSQ_SINK_FLOW__SHUTDOWN_GRACE_SECONDS", "value": "60"}]},
        "env LSQ_SINK_FLOW__SHUTDOWN_GRACE_SECONDS: set this in config instead",
    ),
    "grace overridden by the flow section's JSON in env": (
        {"env": [{"name": "lsq_sink_flow", "value": '{"shutdown_grace_seconds": 60}'}]},
        "env lsq_sink_flow: set this in config instead",
    ),
    "health port overridden by the health section's JSON in env": (
        {"env": [{"name": "LSQ_SINK_HEALTH", "value": '{"port": 9600}'}]},
        "env LSQ_SINK_HEALTH: set this in config instead",
    ),
}


@pytest.mark.parametrize("case", BAD_VALUES)
def test_bad_values_are_refused_with_a_message_naming_them(case: str) -> None:
    """Schema violations and the chart's own checks stop the render with a clear message that
    never repeats a secret value."""
    values, expected = BAD_VALUES[case]
    with pytest.raises(helm.HelmError) as raised:
        render(values)
    assert expected in str(raised.value)
    assert ACCESS_KEY not in str(raised.value)


def _objects(node: Any, path: str = "#") -> list[tuple[str, dict[str, Any]]]:
    """Every schema node under ``node`` that lists properties, with its JSON pointer."""
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        if "properties" in node:
            found.append((path, node))
        for key, child in node.items():
            found += _objects(child, f"{path}/{key}")
    elif isinstance(node, list):
        for index, child in enumerate(node):
            found += _objects(child, f"{path}/{index}")
    return found


def test_schema_is_draft_07_and_closes_every_object_it_defines() -> None:
    """values.schema.json is a valid draft-07 schema; every object with properties refuses others;
    the defaults pass it."""
    assert SCHEMA["$schema"] == "http://json-schema.org/draft-07/schema#"
    jsonschema.Draft7Validator.check_schema(SCHEMA)
    open_objects = [path for path, node in _objects(SCHEMA) if node.get("additionalProperties")]
    assert open_objects == []
    assert [path for path, node in _objects(SCHEMA) if "additionalProperties" not in node] == []
    jsonschema.Draft7Validator(SCHEMA).validate(VALUES)
    assert set(SCHEMA["properties"]) == set(VALUES)


def test_schema_config_sections_match_the_connector_settings() -> None:
    """The schema's config sections, and the flow and health settings it types, are exactly the
    connector's settings, so the chart neither refuses a real setting nor misses a new one."""
    config = SCHEMA["properties"]["config"]["properties"]
    assert set(config) == set(Settings.model_fields)
    assert set(config["flow"]["properties"]) == set(FlowSettings.model_fields)
    assert set(config["health"]["properties"]) == set(HealthSettings.model_fields)
    health = HealthSettings()
    assert VALUES["config"]["health"] == {"enabled": True, "host": health.host, "port": health.port}
    grace = FlowSettings().shutdown_grace_seconds
    assert VALUES["config"]["flow"]["shutdown_grace_seconds"] == grace


def _leaves(node: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """values.yaml flattened to dotted keys; empty maps and lists are leaves."""
    out: dict[str, Any] = {}
    for key, value in node.items():
        if isinstance(value, dict) and value:
            out |= _leaves(value, f"{prefix}{key}.")
        else:
            out[f"{prefix}{key}"] = value
    return out


def _readme_table() -> dict[str, str]:
    """The README's Values table: key -> default as written."""
    section = README.split("\n## Values\n", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([^`]+)` \| `([^`]*)` \| (.+) \|$", section, flags=re.MULTILINE)
    assert all(description.strip() for _, _, description in rows)
    return {key: default for key, default, _ in rows}


def test_readme_documents_every_value_with_its_default() -> None:
    """The README's Values table has one row per key of values.yaml, no stale rows, and each
    default as values.yaml sets it."""
    table, values = _readme_table(), _leaves(VALUES)
    assert sorted(set(values) - set(table)) == [], "values missing from the README table"
    assert sorted(set(table) - set(values)) == [], "README rows for values that do not exist"
    wrong = {key: table[key] for key, value in values.items() if json.loads(table[key]) != value}
    assert wrong == {}, "README defaults that differ from values.yaml"


def test_readme_names_every_secret_file() -> None:
    """Each secret file the chart's Secret carries is documented for credentials.existingSecret."""
    for name in SECRETS:
        assert f"`{name.replace('__main__', '__<name>__')}`" in README
