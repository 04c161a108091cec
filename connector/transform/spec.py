"""The ``mapping:`` block of a route, as frozen pydantic models: the shape and types only (unknown
keys fail). The rules that depend on the route's operation, and every cross-field rule, are
checked by :func:`connector.transform.mapping.compile_mapping`, which names the offending key."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator

__all__ = [
    "ActivitySpec",
    "FieldSource",
    "FieldSpec",
    "MappingSpec",
    "OnNull",
    "Scalar",
    "UpdateBehavior",
]

#: A constant or default as written in YAML.
Scalar = str | bool | int | float

#: ``LeadUpdateBehavior`` query parameter values of Lead.Capture.
UpdateBehavior = Literal["DoNotUpdate", "UpdateOnlyEmptyFields", "DoNotUpdateUniqueFields"]

#: What a lead attribute whose value is null becomes: left out of the payload (LeadSquared keeps
#: the field as it is), or sent as ``""`` (LeadSquared empties the field).
OnNull = Literal["omit", "clear"]
_ON_NULL: tuple[OnNull, ...] = ("omit", "clear")

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class FieldSpec(BaseModel):
    """Where one value comes from: exactly one of ``path``, ``const``, ``template`` or
    ``fields`` (a custom field set), with ``required`` / ``default`` for paths and templates."""

    model_config = _FROZEN

    path: str | None = Field(
        default=None, description="Dotted field path into the row, or a $ root ($op, $meta.x...)."
    )
    const: Scalar | None = Field(default=None, description="A constant value.")
    template: str | None = Field(
        default=None, description="Text with {path} placeholders; {{ and }} are literal braces."
    )
    fields: dict[str, FieldSource] | None = Field(
        default=None, description="A custom field set: inner attribute → source (one level)."
    )
    default: Scalar | None = Field(default=None, description="Used when the value is null.")
    required: bool = Field(default=False, description="A null value fails the record.")


#: A source: a bare string is a field path, anything else a :class:`FieldSpec`.
FieldSource = str | FieldSpec


class ActivitySpec(BaseModel):
    """The ``Activity`` object of a lead_and_activity call."""

    model_config = _FROZEN

    event: StrictInt | FieldSource = Field(
        description="ActivityEvent: an integer code, or a source resolving to a positive integer."
    )
    note: FieldSource | None = Field(default=None, description="ActivityNote.")
    datetime: FieldSource | None = Field(
        default=None,
        description="ActivityDateTime; default: the change time, else the record timestamp.",
    )
    fields: dict[str, FieldSource] = Field(
        default_factory=dict, description="Activity fields: SchemaName → source."
    )


class MappingSpec(BaseModel):
    """How a route turns a row into a LeadSquared payload; key order is payload order."""

    model_config = _FROZEN

    search_by: str | None = Field(
        default=None,
        description="capture / lead_and_activity: the lead attribute LeadSquared matches on "
        "(default EmailAddress for lead_and_activity).",
    )
    lead_update_behavior: UpdateBehavior | None = Field(
        default=None, description="capture only: the LeadUpdateBehavior query parameter."
    )
    post_updated_lead: bool | None = Field(
        default=None, description="update only: the postUpdatedLead query parameter (false)."
    )
    booleans: tuple[str, str] = Field(
        default=("true", "false"), description="How true and false are written."
    )
    on_null: OnNull = Field(
        default="omit",
        description='A lead attribute whose value is null (after default): "omit" leaves it out '
        '(LeadSquared keeps the field), "clear" sends it with Value "" (LeadSquared empties it).',
    )
    lead: dict[str, FieldSource] = Field(
        default_factory=dict, description="Lead attribute (schema name) → source."
    )
    lead_id: FieldSource | None = Field(
        default=None, description="update only (required): the source of the leadId parameter."
    )
    activity: ActivitySpec | None = Field(
        default=None, description="lead_and_activity only (required): the activity."
    )

    @field_validator("on_null", mode="before")
    @classmethod
    def _on_null(cls, value: object) -> object:
        if value not in _ON_NULL:
            raise ValueError(
                "must be omit (a null lead attribute is left out: LeadSquared keeps the field) "
                f'or clear (it is sent as "": LeadSquared empties the field), not {value!r}'
            )
        return value
