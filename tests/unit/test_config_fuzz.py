"""Configuration fuzzing: random YAML texts, random nested structures and random mutations of a
valid configuration (wrong types, unknown and missing keys, huge values, unicode keys, top levels
that are no mapping, invalid YAML), and random environment overrides. ``load_settings`` either
returns settings or raises exactly one ConfigError whose message names a key (or the file and the
YAML position), never another exception; the CLI turns every such file into exit code 2 and one
message on stderr, without a traceback."""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import subprocess
import sys
from typing import TYPE_CHECKING, Any
from unittest import mock

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector.cli import main
from connector.errors import ConfigError
from connector.settings.load import load_settings
from connector.settings.model import Settings
from lsq_stack.cdc import SCHEMAS
from lsq_stack.scenario import route_config

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

BASE: dict[str, Any] = {
    "kafka": {
        "bootstrap_servers": "127.0.0.1:9092",
        "group_id": "lsq-sink",
        "consumer": {"session.timeout.ms": 6000},
        "producer": {"linger.ms": 5},
    },
    "schema_registry": {"url": "http://127.0.0.1:8081", "basic_auth_user_info": "user:pass"},
    "accounts": {
        "default": {
            "async_host": "https://asyncapi-in21.leadsquared.com",
            "access_key": "AK",
            "secret_key": "SK",
            "api_key": "API",
            "rate_limit": {"calls": 25, "window_seconds": 5},
        }
    },
    "routes": route_config(),
    "output": {"results_topic": "lsq.results", "dead_letter_topic": "lsq.dead-letters"},
    "retry": {"max_attempts": 3, "backoff_base_seconds": 0.5},
    "flow": {"poll_batch_size": 100, "commit_interval_seconds": 1},
    "logging": {"level": "INFO", "format": "json", "redact_personal_data": True},
}
SECTIONS = frozenset(Settings.model_fields)
FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
CLI_ERROR = "lsq-sink: configuration error: "


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    """Where each test writes its configuration (examples of one test overwrite it)."""
    return tmp_path / "lsq-sink.yaml"


# -- loading and what an error must say ---------------------------------------------------------


@contextlib.contextmanager
def environment(overrides: dict[str, str] | None = None) -> Iterator[None]:
    """The process environment without LSQ_SINK_ variables, plus ``overrides``."""
    clean = {k: v for k, v in os.environ.items() if not k.upper().startswith("LSQ_SINK_")}
    with mock.patch.dict(os.environ, clean | (overrides or {}), clear=True):
        yield


def attempt(
    path: Path, env: dict[str, str] | None = None, secrets_dir: Path | None = None
) -> Settings | ConfigError:
    """The settings, or the ConfigError; any other exception fails the test."""
    with environment(env):
        try:
            return load_settings(path, secrets_dir, environ=os.environ)
        except ConfigError as error:
            return error


def check_error(error: ConfigError, path: Path, data: Any = None) -> None:
    """The message names the file, or a key for every problem it lists."""
    text = str(error)
    first, *problems = text.split("\n")
    assert first.strip(), text
    if first.startswith("unknown setting in the environment: LSQ_SINK_"):
        return
    assert str(path) in first, text
    if first.startswith("invalid configuration ("):
        assert problems, text
        if any("\n" in key for key in all_keys(data)):
            return  # keys are not quoted: a key holding a line break breaks its line in two
        for line in problems:
            assert line.startswith("  "), text
            assert names_a_key(line[2:], data), f"no key named in {line!r} of:\n{text}"


def all_keys(node: Any) -> Iterator[str]:
    """Every mapping key in the tree, as text."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield str(key)
            yield from all_keys(value)
    elif isinstance(node, list):
        for value in node:
            yield from all_keys(value)


def names_a_key(line: str, data: Any) -> bool:
    """``line`` is ``<dotted key>: <what is wrong>``, the key a setting or a key of the file (a
    cross-field rule on the whole tree names its key in the text: ``(top level): routes: ...``)."""
    where, _, what = line.partition(": ")
    if not what:
        return False
    given_keys = {str(k) for k in data} if isinstance(data, dict) else set()
    if where == "(top level)":
        if what == "unknown key":  # an empty key: the only one with no name to show
            return "" in given_keys
        where = what.partition(":")[0]
    head = where.split(".")[0]
    return where in given_keys or head in SECTIONS or head in given_keys


def write(path: Path, data: Any) -> Path:
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def written(path: Path) -> Any:
    """What the file holds, read back (YAML turns some keys into others: a NEL into a space)."""
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def run_cli(*argv: str) -> tuple[int, str, str]:
    """``lsq-sink`` in this process: exit code, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    with environment(), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


# -- strategies ---------------------------------------------------------------------------------

texts = st.text(st.characters(exclude_categories=["Cs"]), max_size=20)
HUGE = [10**100, -(10**100), 2**63, 1e308, -1e308, "x" * 50_000, "ü😀" * 5_000, [0] * 1_000]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    texts,
    st.sampled_from(["", " ", "~", "null", "2020-01-01", "0x1F", "yes", "*", "{}", "[]", "-"]),
    st.sampled_from(HUGE),
)
keys = st.one_of(
    texts,
    st.sampled_from(sorted(SECTIONS)),
    st.sampled_from(["", "_x", "__class__", "KAFKA", "k" * 5_000, "ключ", "\u202e", "a.b"]),
    st.integers(-3, 3),
    st.none(),
    st.booleans(),
)
structures = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=25,
)
top_levels = st.one_of(
    structures,
    st.dictionaries(keys, structures, max_size=6),
    st.dictionaries(st.sampled_from(sorted(SECTIONS)), structures, max_size=8),
)


def _places(node: Any) -> Iterator[tuple[Any, Any]]:
    """(container, key or index) of every item in the tree."""
    items = node.items() if isinstance(node, dict) else enumerate(node)
    for key, value in list(items):
        yield node, key
        if isinstance(value, dict | list) and value:
            yield from _places(value)


@st.composite
def mutated_configs(draw: st.DrawFn) -> dict[str, Any]:
    """The valid BASE with one to four random changes: a key deleted, renamed or added, a value
    replaced by random data or by a huge value (copies: later changes may edit them in place)."""
    data = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(1, 4))):
        places = list(_places(data))
        if not places:
            break
        parent, key = draw(st.sampled_from(places))
        action = draw(st.sampled_from(["delete", "rename", "add", "replace", "huge"]))
        if action == "delete":
            del parent[key]
        elif action == "replace":
            parent[key] = copy.deepcopy(draw(structures))
        elif action == "huge":
            parent[key] = copy.deepcopy(draw(st.sampled_from(HUGE)))
        elif isinstance(parent, list):
            parent.append(copy.deepcopy(draw(structures)))
        elif action == "rename":
            parent[draw(keys)] = parent.pop(key)
        else:
            parent[draw(keys)] = copy.deepcopy(draw(structures))
    return data


YAML_BITS = [
    "kafka:", "accounts:", "routes:", "- ", "{", "}", "[", "]", ": ", ",", "\n", "  ", "&a ",
    "*a", "*b", "!!str ", "!!binary ", "!!python/name:os.system ", "!!map ", "? ", "|", ">-",
    "# c", "'", '"', "\\", "%YAML 1.1\n", "---\n", "...\n", "\t", ".inf", ".nan", "~", "0o17",
    "1e400", "<<: *a", "=", "@", "`", "\x85", "\u2028", "\ufeff", "\x7f", "\x1b", "!", "%",
]  # fmt: skip
dump = yaml.safe_dump(BASE, sort_keys=False)


@st.composite
def spliced_dumps(draw: st.DrawFn) -> str:
    """A valid configuration's YAML with random text cut out or spliced in."""
    at = draw(st.integers(0, len(dump)))
    cut = draw(st.integers(0, 40))
    bit = draw(st.sampled_from(YAML_BITS) | texts)
    return dump[:at] + bit + dump[at + cut :]


yaml_texts = st.one_of(
    st.text(st.characters(exclude_categories=["Cs"])),
    st.lists(st.sampled_from(YAML_BITS) | texts, max_size=40).map("".join),
    spliced_dumps(),
)

#: Environment variables naming settings: leaves take any text; whole sections, dicts and lists
#: take JSON (malformed JSON there is covered below).
LEAF_VARIABLES = [
    "KAFKA__BOOTSTRAP_SERVERS", "KAFKA__GROUP_ID", "KAFKA__SECURITY_PROTOCOL",
    "KAFKA__SASL_PASSWORD", "KAFKA__CONSUMER__SESSION.TIMEOUT.MS", "SCHEMA_REGISTRY__URL",
    "ACCOUNTS__DEFAULT__ACCESS_KEY", "ACCOUNTS__DEFAULT__ASYNC_HOST",
    "ACCOUNTS__DEFAULT__RATE_LIMIT__CALLS", "ACCOUNTS__DEFAULT__MAX_CONCURRENCY",
    "ACCOUNTS__OTHER__API_KEY", "OUTPUT__RESULTS_TOPIC", "RETRY__MAX_ATTEMPTS",
    "FLOW__POLL_BATCH_SIZE", "FLOW__SHUTDOWN_GRACE_SECONDS", "LOGGING__LEVEL",
    "LOGGING__REDACT_PERSONAL_DATA",
]  # fmt: skip
JSON_VARIABLES = [
    "KAFKA", "KAFKA__CONSUMER", "SCHEMA_REGISTRY", "ACCOUNTS", "ACCOUNTS__DEFAULT",
    "ACCOUNTS__DEFAULT__RATE_LIMIT", "ROUTES", "OUTPUT", "RETRY", "FLOW", "LOGGING",
]  # fmt: skip
env_texts = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"))
env_jsons = structures.map(json.dumps).filter(lambda text: "\x00" not in text)
environments = st.dictionaries(
    st.one_of(
        st.sampled_from(LEAF_VARIABLES),
        st.sampled_from(JSON_VARIABLES),
        env_texts.filter(lambda name: "=" not in name and name.strip()),
    ).map(lambda name: "LSQ_SINK_" + name),
    st.one_of(env_texts, env_jsons),
    max_size=3,
).filter(
    lambda env: all(
        name.removeprefix("LSQ_SINK_") not in JSON_VARIABLES or _is_json(value)
        for name, value in env.items()
    )
)


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


# -- properties -----------------------------------------------------------------------------------


def test_the_base_configuration_is_valid(config_file: Path) -> None:
    """The fuzzers start from a configuration that loads."""
    assert isinstance(attempt(write(config_file, BASE)), Settings)


@FUZZ
@given(text=yaml_texts)
def test_random_yaml_texts_load_or_raise_one_config_error(config_file: Path, text: str) -> None:
    """Any text (YAML or not): settings, or one ConfigError naming the file (and the line and
    column for invalid YAML) or a key."""
    config_file.write_text(text, encoding="utf-8")
    result = attempt(config_file)
    if isinstance(result, ConfigError):
        check_error(result, config_file, _safe_load(text))


def _safe_load(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return None


@FUZZ
@given(data=top_levels)
def test_random_structures_load_or_raise_one_config_error(config_file: Path, data: Any) -> None:
    """Any tree of mappings, lists and scalars (wrong types, unknown keys, unicode and empty
    keys, keys that are no string, huge values, top levels that are no mapping)."""
    result = attempt(write(config_file, data))
    assert not isinstance(result, Settings)  # a random tree never has every required key
    check_error(result, config_file, written(config_file))


@FUZZ
@given(data=mutated_configs())
def test_mutated_configurations_load_or_raise_one_config_error(
    config_file: Path, data: dict[str, Any]
) -> None:
    """A valid configuration with random keys deleted, renamed or added and values replaced:
    settings, or one ConfigError naming a key; the CLI then exits 2 with that one message on
    stderr and no traceback, for validate and for run."""
    result = attempt(write(config_file, data))
    if isinstance(result, Settings):
        return
    check_error(result, config_file, written(config_file))
    for command in ("validate", "run"):
        code, out, err = run_cli(command, "--config", str(config_file))
        assert (code, out) == (2, "")
        assert err == f"{CLI_ERROR}{result}\n"


@FUZZ
@given(env=environments)
def test_random_environment_overrides_load_or_raise_one_config_error(
    config_file: Path, env: dict[str, str]
) -> None:
    """LSQ_SINK_ variables (known and unknown names, any text, JSON for whole sections) over a
    valid file: settings, or one ConfigError naming the variable's key."""
    write(config_file, BASE)
    result = attempt(config_file, env)
    if isinstance(result, ConfigError):
        values = [json.loads(v) for v in env.values() if _is_json(v)]
        check_error(result, config_file, BASE | {"": values} if values else BASE)


# -- the CLI on hand-picked bad files -------------------------------------------------------------

BAD_FILES: dict[str, tuple[str, str]] = {
    "invalid YAML": ("kafka: {bootstrap_servers: [\n", "line 2, column 1: not valid YAML"),
    "a tab": ("\tkafka: 1\n", "line 1, column 1: not valid YAML"),
    "a list at the top": ("- kafka\n- routes\n", "the top level must be a mapping"),
    "a scalar at the top": ("42\n", "the top level must be a mapping"),
    "a python tag": ("!!python/object:os.system {}\n", "not valid YAML"),
    "an unknown section": (yaml.safe_dump(BASE | {"kafak": {}}), "kafak: unknown key"),
    "a missing section": (
        yaml.safe_dump({k: v for k, v in BASE.items() if k != "output"}),
        "output: required",
    ),
    "a wrong type": (
        yaml.safe_dump(BASE | {"flow": {"poll_batch_size": "many"}}),
        "flow.poll_batch_size: Input should be a valid integer",
    ),
    "a key that is no string": (yaml.safe_dump(BASE | {1: 2}), "unknown key(s) [1]"),
    "a bad mapping": (
        yaml.safe_dump(BASE | {"routes": [route_config()[0] | {"mapping": {"lead": {}}}]}),
        "routes.0: mapping.lead: map at least one attribute",
    ),
}


@pytest.mark.parametrize("command", ["validate", "run"])
@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_cli_exits_2_with_one_message_on_bad_files(
    config_file: Path, command: str, case: str
) -> None:
    """Each bad file: exit code 2, nothing on stdout, one message on stderr saying what is wrong
    (the file, the key or the YAML position), no traceback."""
    text, expected = BAD_FILES[case]
    config_file.write_text(text, encoding="utf-8")
    code, out, err = run_cli(command, "--config", str(config_file))
    assert (code, out) == (2, "")
    assert err.startswith(CLI_ERROR)
    assert err.count(CLI_ERROR) == 1
    assert expected in err
    assert str(config_file) in err
    assert "Traceback" not in err


def test_cli_exits_2_when_the_file_is_missing(config_file: Path) -> None:
    code, _, err = run_cli("validate", "--config", str(config_file))
    assert code == 2
    assert err == f"{CLI_ERROR}cannot read config file {config_file}: No such file or directory\n"


# -- inputs found by fuzzing: each once escaped as another exception --------------------------


def _nested_pattern() -> dict[str, Any]:
    route = route_config()[0]
    del route["topics"]
    return BASE | {"routes": [route | {"topic_pattern": "(" * 3000 + ")" * 3000}]}


FuzzFound = tuple["Callable[[Path], object]", "dict[str, str] | None"]
FOUND_BY_FUZZING: dict[str, FuzzFound] = {
    "a file that is not UTF-8": (
        lambda path: path.write_bytes(b"kafka: {bootstrap_servers: \xff\xfe}\n"),
        None,
    ),
    "YAML nested deeper than Python's recursion limit": (
        lambda path: path.write_text("a: " + "[" * 2000 + "]" * 2000),
        None,
    ),
    "a topic_pattern nested deeper than the recursion limit": (
        lambda path: write(path, _nested_pattern()),
        None,
    ),
    "malformed JSON in an override of a section": (
        lambda path: write(path, BASE),
        {"LSQ_SINK_KAFKA__CONSUMER": "{not json"},
    ),
}


@pytest.mark.parametrize("case", list(FOUND_BY_FUZZING))
def test_inputs_found_by_fuzzing_are_config_errors(config_file: Path, case: str) -> None:
    """Inputs found by fuzzing that once escaped as another exception (a traceback, exit 1) are
    each one ConfigError naming the file or the key."""
    make, env = FOUND_BY_FUZZING[case]
    make(config_file)
    result = attempt(config_file, env)
    assert isinstance(result, ConfigError)
    check_error(result, config_file, BASE)


def test_a_secret_file_that_is_not_utf8_is_a_config_error(
    config_file: Path, tmp_path: Path
) -> None:
    """A secret file holding bytes that are not UTF-8 must be a ConfigError naming it."""
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "accounts__default__access_key").write_bytes(b"\xff\xfe")
    result = attempt(write(config_file, BASE), secrets_dir=secrets)
    assert isinstance(result, ConfigError)
    assert "accounts" in str(result)


def _runnable(**kafka: Any) -> dict[str, Any]:
    """BASE without a registry (schemas from files), so ``run`` needs no server before it
    builds its Kafka clients."""
    data = copy.deepcopy({k: v for k, v in BASE.items() if k != "schema_registry"})
    for route, table in zip(data["routes"], ("leads", "activities"), strict=True):
        route["value_schema"] = str(SCHEMAS / f"crm.public.{table}-value.avsc")
    data["kafka"] |= {"bootstrap_servers": "127.0.0.1:1"} | kafka
    return data


@pytest.mark.parametrize(
    "kafka",
    [
        pytest.param({"producer": {"no.such.property": 1}}, id="unknown-librdkafka-property"),
        pytest.param({"consumer": {"session.timeout.ms": "soon"}}, id="bad-librdkafka-value"),
        pytest.param({"group_id": "\ud800"}, id="lone-surrogate-in-group-id"),
    ],
)
def test_run_exits_2_on_settings_librdkafka_rejects(
    config_file: Path, kafka: dict[str, Any]
) -> None:
    """``lsq-sink run`` with settings that load but that librdkafka rejects (an unknown or
    invalid property; a string holding a lone surrogate, written in YAML as ``"\\ud800"``) exits
    2 with one message (not a traceback, nor an abort inside confluent-kafka's C code)."""
    write(config_file, _runnable(**kafka))
    with environment():
        done = subprocess.run(
            [sys.executable, "-m", "connector", "run", "--config", str(config_file)],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.startswith(CLI_ERROR)
    assert "Traceback" not in done.stderr
