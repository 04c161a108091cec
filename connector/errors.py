"""The connector's exception tree. Errors carry the context the pipeline needs to decide: the stage
and reason of a record that goes to the dead-letter topic, or why the whole connector must stop.

::

    LsqSinkError
    ├── ConfigError             bad configuration or CLI arguments (exit code 2)
    ├── RecordError             one record cannot be processed → dead-letter topic, keep going
    │   ├── DecodeError         stage "decode": not wire format, unknown schema id, bad Avro
    │   ├── UnwrapError         stage "unwrap": not a change envelope this connector understands
    │   └── MappingError        stage "map": the mapping cannot produce a valid payload
    └── FatalError              the connector must stop without committing further
        ├── OutputError         a results or dead-letter record could not be written
        └── SchemaSourceError   writer schemas cannot be fetched (the registry client retried)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from connector.records import Stage

__all__ = [
    "ConfigError",
    "DecodeError",
    "FatalError",
    "LsqSinkError",
    "MappingError",
    "OutputError",
    "RecordError",
    "SchemaSourceError",
    "UnwrapError",
]


class LsqSinkError(Exception):
    """Base of every error the connector raises on purpose."""


class ConfigError(LsqSinkError):
    """Configuration is invalid; the message names the key and what is wrong."""


class RecordError(LsqSinkError):
    """One record cannot be processed at ``stage``; it is dead-lettered with ``reason``."""

    stage: Stage = "decode"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class DecodeError(RecordError):
    """The value is not Confluent wire-format Avro this connector can read."""

    stage: Stage = "decode"


class UnwrapError(RecordError):
    """The decoded value is not a change envelope or row this connector understands."""

    stage: Stage = "unwrap"


class MappingError(RecordError):
    """The mapping cannot produce a valid payload; ``path`` names the field at fault."""

    stage: Stage = "map"

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path


class FatalError(LsqSinkError):
    """The connector must stop; restarting resumes from the last committed offsets."""


class OutputError(FatalError):
    """A results or dead-letter record could not be written, so nothing past it is committed."""


class SchemaSourceError(FatalError):
    """Writer schemas cannot be fetched right now (registry unreachable or failing, after the
    registry client's own retries): stop; a restart resumes from the last commit."""
