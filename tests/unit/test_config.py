"""Configuration: one YAML file + LSQ_SINK_ environment + secret files, validated at start; every
problem is one clear error naming the key, and the CLI exits with code 2."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from connector.cli import main
from connector.errors import ConfigError
from connector.settings.load import load_settings

if TYPE_CHECKING:
    from pathlib import Path

BASE: dict[str, Any] = {
    "kafka": {"bootstrap_servers": "kafka:9092"},
    "schema_registry": {"url": "http://registry:8081"},
    "accounts": {
        "default": {"access_key": "AK-file", "secret_key": "SK-file", "api_key": "API-file"}
    },
    "output": {"results_topic": "lsq.results", "dead_letter_topic": "lsq.dlq"},
    "routes": [
        {
            "name": "leads",
            "topics": ["crm.public.leads"],
            "mapping": {"search_by": "EmailAddress", "lead": {"EmailAddress": "email"}},
        }
    ],
}


def _write(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data), encoding="utf-8")
    return path


def _with(**changes: Any) -> dict[str, Any]:
    """BASE with dotted-path changes applied, e.g. ``**{"kafka.group_id": "g"}``."""
    data = copy.deepcopy(BASE)
    for dotted, value in changes.items():
        node: Any = data
        *parents, last = dotted.split(".")
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        node[last] = value
    return data


def _error(tmp_path: Path, data: Any, environ: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as raised:
        load_settings(_write(tmp_path, data), environ=environ or {})
    return str(raised.value)


def test_minimal_config_loads_with_defaults(tmp_path: Path) -> None:
    """A minimal file gets the documented defaults (25 calls per 5 s, async capture route)."""
    settings = load_settings(_write(tmp_path, BASE), environ={})
    account = settings.accounts["default"]
    assert (account.rate_limit.calls, account.rate_limit.window_seconds) == (25, 5.0)
    assert str(account.async_host) == "https://asyncapi.leadsquared.com/"
    route = settings.routes[0]
    assert (route.resolved_operation, route.mode, route.on_delete) == ("capture", "async", "skip")
    assert settings.route_for("crm.public.leads") is route
    assert settings.route_for("other") is None


def test_unknown_key_is_an_error_naming_it(tmp_path: Path) -> None:
    """A misspelt key is reported with its full path, and the missing one as required."""
    data = copy.deepcopy(BASE)
    data["kafka"] = {"bootstrap_server": "kafka:9092"}
    message = _error(tmp_path, data)
    assert "kafka.bootstrap_server: unknown key" in message
    assert "kafka.bootstrap_servers: required" in message


def test_bad_value_names_the_key(tmp_path: Path) -> None:
    """A value out of range names the key and the constraint."""
    message = _error(tmp_path, _with(**{"accounts.default.rate_limit": {"calls": 0}}))
    assert "accounts.default.rate_limit.calls: Input should be greater than or equal to 1" in (
        message
    )


def test_mapping_problems_are_reported_under_the_route(tmp_path: Path) -> None:
    """Mapping errors from compile_mapping name the route and the mapping key."""
    data = _with(**{"routes.0.operation": "capture", "routes.0.mapping.activity": {"event": 201}})
    message = _error(tmp_path, data)
    assert "routes.0: mapping.activity: only valid for operation lead_and_activity" in message


def test_invalid_yaml_reports_line_and_column(tmp_path: Path) -> None:
    """Broken YAML is one error with the position."""
    message = _error(tmp_path, "kafka:\n  bootstrap_servers: [unclosed\n")
    assert "not valid YAML" in message
    assert "line 3, column 1" in message


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    """A config path that does not exist says so."""
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_settings(tmp_path / "nope.yaml", environ={})


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    """A YAML list is not a configuration."""
    assert "top level must be a mapping" in _error(tmp_path, "- a\n- b\n")


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """LSQ_SINK_ variables with __ nesting override file values, dict keys included."""
    monkeypatch.setenv("LSQ_SINK_ACCOUNTS__DEFAULT__ACCESS_KEY", "AK-env")
    monkeypatch.setenv("LSQ_SINK_KAFKA__GROUP_ID", "from-env")
    settings = load_settings(_write(tmp_path, BASE))
    assert settings.accounts["default"].access_key.get_secret_value() == "AK-env"
    assert settings.accounts["default"].secret_key.get_secret_value() == "SK-file"
    assert settings.kafka.group_id == "from-env"


def test_unknown_environment_variable_is_an_error(tmp_path: Path) -> None:
    """A misspelt LSQ_SINK_ variable is reported instead of silently ignored."""
    environ = {"LSQ_SINK_KAFKA__BOOTSTRAP_SERVRES": "x", "LSQ_SINK_ACCOUNTS__MAIN__API_KEY": "k"}
    message = _error(tmp_path, BASE, environ)
    assert message == "unknown setting in the environment: LSQ_SINK_KAFKA__BOOTSTRAP_SERVRES"


def test_secrets_come_from_files_in_the_secrets_dir(tmp_path: Path) -> None:
    """Files named by setting path (Kubernetes secret mounts) supply secrets."""
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "accounts__default__secret_key").write_text("SK-mounted")
    settings = load_settings(_write(tmp_path, BASE), secrets, environ={})
    assert settings.accounts["default"].secret_key.get_secret_value() == "SK-mounted"


def test_missing_secrets_dir_is_an_error(tmp_path: Path) -> None:
    """A secrets directory that does not exist is reported."""
    with pytest.raises(ConfigError, match=r"secrets directory .* does not exist"):
        load_settings(_write(tmp_path, BASE), tmp_path / "absent", environ={})


def test_secrets_never_appear_in_errors(tmp_path: Path) -> None:
    """Validation messages do not echo secret values."""
    data = _with(**{"accounts.default.access_key": ["AK-in-a-list"]})
    assert "AK-in-a-list" not in _error(tmp_path, data)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"routes.0.account": "nope"}, "routes.0.account: no account named 'nope'"),
        ({"accounts.default.api_key": None}, "accounts.default.api_key: needed by async route 0"),
        ({"routes.0.operation": "create"}, "operation create exists only in mode sync"),
        ({"routes.0.topic_pattern": "x"}, "set exactly one of topics and topic_pattern"),
        ({"schema_registry": None}, "routes.0.value_schema: needed when no schema_registry"),
        ({"kafka.consumer": {"enable.auto.commit": True}}, "consumer.enable.auto.commit: fixed"),
        ({"kafka.producer": {"acks": "1"}}, "producer.acks: fixed by the connector's delivery"),
        ({"accounts.default.daily_quota": 3000}, "output.quota_topic: needed by accounts.default"),
        ({"accounts.default.quota_reserve": 1}, "accounts.default.quota_reserve"),
    ],
)
def test_inconsistent_settings_are_rejected(
    tmp_path: Path, changes: dict[str, Any], expected: str
) -> None:
    """Cross-field rules give one clear message."""
    assert expected in _error(tmp_path, _with(**changes))


def test_librdkafka_settings_keep_the_guarantees(tmp_path: Path) -> None:
    """User properties are passed through; manual commits and idempotent acks=all stay fixed."""
    data = _with(**{"kafka.consumer": {"session.timeout.ms": 6000}})
    settings = load_settings(_write(tmp_path, data), environ={})
    consumer = settings.kafka.consumer_config()
    assert consumer["session.timeout.ms"] == 6000
    assert (consumer["enable.auto.commit"], consumer["enable.auto.offset.store"]) == (False, False)
    producer = settings.kafka.producer_config()
    assert (producer["enable.idempotence"], producer["acks"]) == (True, "all")


def test_consumer_prefetch_is_small_unless_the_user_raises_it(tmp_path: Path) -> None:
    """Invariant 5: at most 1 MiB is prefetched by default (memory stays flat under
    backpressure: `make bench`); a user's value wins."""
    settings = load_settings(_write(tmp_path, _with()), environ={})
    consumer = settings.kafka.consumer_config()
    fetch = ("queued.max.messages.kbytes", "fetch.max.bytes", "max.partition.fetch.bytes")
    assert [consumer[key] for key in fetch] == [1024, 1_048_576, 262_144]
    data = _with(**{"kafka.consumer": {"queued.max.messages.kbytes": 65536}})
    raised = load_settings(_write(tmp_path, data), environ={}).kafka.consumer_config()
    assert raised["queued.max.messages.kbytes"] == 65536


def test_cli_exits_2_with_a_message_on_bad_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`lsq-sink run` with an invalid file prints the problem and exits with code 2."""
    for name in [n for n in __import__("os").environ if n.startswith("LSQ_SINK_")]:
        monkeypatch.delenv(name)
    path = _write(tmp_path, _with(**{"kafka.group_id": ["not", "a", "string"]}))
    assert main(["run", "--config", str(path)]) == 2
    assert "configuration error" in capsys.readouterr().err
    assert main(["validate", "--config", str(tmp_path / "missing.yaml")]) == 2
