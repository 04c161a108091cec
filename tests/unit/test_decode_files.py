"""Writer schemas without a registry (``.avsc`` files) and registry client settings errors."""

from __future__ import annotations

import json
import struct
from typing import TYPE_CHECKING

import pytest

from connector.adapters.schemas import FileSchemas, load_avsc, registry_client
from connector.errors import ConfigError, DecodeError
from connector.transform.decode import Decoder

if TYPE_CHECKING:
    from pathlib import Path

LEAD = {
    "type": "record",
    "name": "Lead",
    "namespace": "crm",
    "fields": [{"name": "id", "type": "long"}, {"name": "email", "type": "string"}],
}
LEAD_BODY = b"\x0e\x0aa@x.y"  # {"id": 7, "email": "a@x.y"}


@pytest.fixture
def lead_avsc(tmp_path: Path) -> Path:
    path = tmp_path / "lead.avsc"
    path.write_text(json.dumps(LEAD), encoding="utf-8")
    return path


def test_load_avsc_gives_a_raw_mode_writer_schema(lead_avsc: Path) -> None:
    """An .avsc file loads as a writer schema that decodes bare Avro bodies."""
    schema = load_avsc(lead_avsc)
    assert schema.schema_id is None
    assert Decoder(raw=schema).decode(LEAD_BODY) == {"id": 7, "email": "a@x.y"}


def test_missing_schema_file_is_a_config_error_naming_it(tmp_path: Path) -> None:
    """An unreadable file: ConfigError with the path and the OS reason."""
    path = tmp_path / "nope.avsc"
    with pytest.raises(ConfigError) as raised:
        load_avsc(path)
    assert str(raised.value) == f"schema file {path}: cannot read it (No such file or directory)"


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"{oops", "not valid JSON (Expecting property name enclosed in double quotes"),
        (
            b'{"type": "record", "name": "X", "fields": [{"name": "a", "type": "nope"}]}',
            "not a valid Avro schema (UnknownType: nope)",
        ),
        (b"\xff\xfe{}", "not UTF-8 text"),
    ],
)
def test_invalid_schema_file_is_a_config_error_naming_the_problem(
    tmp_path: Path, content: bytes, problem: str
) -> None:
    """Invalid JSON, invalid Avro or binary content: ConfigError naming the file and problem."""
    path = tmp_path / "bad.avsc"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as raised:
        load_avsc(path)
    assert str(raised.value).startswith(f"schema file {path}: {problem}")


def test_file_schemas_decode_wire_format_by_id(lead_avsc: Path) -> None:
    """Schema ids mapped to .avsc files decode wire-format values without a registry."""
    schemas = FileSchemas({12: lead_avsc})
    assert schemas.get(12).schema_id == 12
    value = b"\x00" + struct.pack(">I", 12) + LEAD_BODY
    assert Decoder(schemas).decode(value) == {"id": 7, "email": "a@x.y"}


def test_file_schemas_unknown_id_is_a_decode_error(lead_avsc: Path) -> None:
    """An id without a file: DecodeError listing the ids that are configured."""
    with pytest.raises(DecodeError) as raised:
        FileSchemas({12: lead_avsc, 3: lead_avsc}).get(5)
    assert raised.value.reason == "schema id 5 is not among the schema files (ids: 3, 12)"


def test_file_schemas_check_every_file_up_front(lead_avsc: Path, tmp_path: Path) -> None:
    """A bad file fails at start-up (ConfigError), not at the first record."""
    with pytest.raises(ConfigError, match=r"missing\.avsc"):
        FileSchemas({1: lead_avsc, 2: tmp_path / "missing.avsc"})


@pytest.mark.parametrize(
    ("url", "user_info", "problem"),
    [
        ("ftp://reader:t0p-secret@registry:8081", None, "Invalid url ftp://***@registry:8081"),
        ("http://reader:t0p-secret@registry:8081", "reader:t0p-secret", "userinfo credentials"),
        ("http://registry:8081", "t0p-secret", "must be in the form of {username}:{password}"),
    ],
)
def test_bad_registry_settings_are_config_errors_without_secrets(
    url: str, user_info: str | None, problem: str
) -> None:
    """Client settings the client refuses are ConfigError; the password never shows."""
    with pytest.raises(ConfigError) as raised:
        registry_client(url, user_info)
    assert problem in str(raised.value)
    assert "t0p-secret" not in str(raised.value)


def test_registry_client_carries_url_auth_and_limits() -> None:
    """The client is built with the URL, basic auth user info, timeout and retries given."""
    with registry_client("http://registry:8081", "reader:pw", timeout_s=3, max_retries=1) as client:
        assert client.config() == {
            "url": "http://registry:8081",
            "timeout": 3,
            "max.retries": 1,
            "basic.auth.user.info": "reader:pw",
        }
