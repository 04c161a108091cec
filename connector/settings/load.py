"""Load the configuration: read the YAML file, apply environment overrides and secret files, and
turn every problem into one :class:`~connector.errors.ConfigError` that names the key."""

from __future__ import annotations

import os
import re
import types
import typing
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_settings import SettingsError

from connector.errors import ConfigError
from connector.settings.model import Settings

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

__all__ = ["ENV_PREFIX", "load_settings"]

ENV_PREFIX = "LSQ_SINK_"


def load_settings(
    path: Path, secrets_dir: Path | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Validated settings from ``path`` + ``LSQ_SINK_*`` variables + files in ``secrets_dir``."""
    data = _read_yaml(path)
    environ = os.environ if environ is None else environ
    if unknown := [name for name in sorted(environ) if _unknown_env(name)]:
        raise ConfigError(f"unknown setting in the environment: {', '.join(unknown)}")
    for name in sorted(n for n in environ if n.upper().startswith(ENV_PREFIX)):
        _check_text(environ[name], name)
    if secrets_dir is not None and not secrets_dir.is_dir():
        raise ConfigError(f"secrets directory {secrets_dir} does not exist")
    try:
        return Settings(_secrets_dir=secrets_dir, **data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, path)) from None
    except SettingsError as exc:  # e.g. malformed JSON in an environment override of a section
        found = re.search(r'field "([^"]+)"', str(exc))
        problem = "a value from the environment or a secret file is not valid JSON"
        raise ConfigError(
            f"invalid configuration ({path}):\n  {found[1] if found else '(top level)'}: {problem}"
        ) from None
    except UnicodeDecodeError:
        raise ConfigError(_not_utf8(secrets_dir)) from None
    except RecursionError:
        raise ConfigError(f"{path}: a value is nested too deeply") from None


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    try:
        data = yaml.safe_load(text)
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{path}: {where}not valid YAML: {problem}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of settings")
    if bad := [key for key in data if not isinstance(key, str) or key.startswith("_")]:
        raise ConfigError(f"{path}: unknown key(s) {bad}")
    _check_text(data, "")
    return data


def _not_utf8(secrets_dir: Path | None) -> str:
    for file in sorted(secrets_dir.iterdir()) if secrets_dir else []:
        try:
            file.read_bytes().decode("utf-8")
        except (UnicodeDecodeError, OSError):
            return f"secret file {file} ({file.name.replace('__', '.')}) is not UTF-8 text"
    return f"a file in the secrets directory {secrets_dir} is not UTF-8 text"


def _check_text(value: Any, where: str) -> None:
    """Strings must be valid Unicode (YAML's "\\ud800" is not): librdkafka aborts on them."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ConfigError(f"{where or '(top level)'}: not valid Unicode text") from None
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(key, where)
            _check_text(item, f"{where}.{key}" if where else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_text(item, f"{where}.{index}")


def _describe(exc: ValidationError, path: Path) -> str:
    lines = []
    for error in exc.errors(include_url=False, include_input=False):
        key = ".".join(str(part) for part in error["loc"]) or "(top level)"
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key"
        elif error["type"] == "missing":
            message = "required"
        lines.append(f"{key}: {message}")
    return f"invalid configuration ({path}):\n  " + "\n  ".join(dict.fromkeys(lines))


def _unknown_env(name: str) -> bool:
    if not name.upper().startswith(ENV_PREFIX):
        return False
    return not _resolves(Settings, name[len(ENV_PREFIX) :].lower().split("__"))


def _resolves(annotation: Any, parts: list[str]) -> bool:
    """Whether the env-var path ``parts`` names a setting under ``annotation``."""
    if not parts:
        return True
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_resolves(arg, parts) for arg in args if arg is not type(None))
    if origin is dict:
        return bool(parts[0]) and _resolves(args[1], parts[1:])
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        field = annotation.model_fields.get(parts[0])
        return field is not None and _resolves(field.annotation, parts[1:])
    return False
