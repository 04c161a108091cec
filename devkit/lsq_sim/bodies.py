"""[pure] Request validation: content type, JSON, the documented body shapes (strict: values are
strings, ActivityEvent an integer, date-times ``YYYY-MM-DD HH:MM:SS``) and query parameters, into
a ``Submission`` (or the rows of a bulk call). Problems raise ``BodyError`` (HTTP 400) naming the
path, e.g. ``LeadDetails[2].Value: expected a string``. Unknown extra keys are allowed."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError, field_validator
from pydantic import model_validator as _model_validator
from pydantic_core import PydanticCustomError

from lsq_sim.records import (
    ActivityInput,
    BulkActivity,
    LeadField,
    MXError,
    Operation,
    Submission,
    UpdateBehavior,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "MAX_BULK_ROWS",
    "BodyError",
    "is_activity_datetime",
    "parse_bulk_activities",
    "parse_bulk_leads",
    "parse_submission",
]

#: Rows per bulk call (Lead/Bulk/CreateOrUpdate and Bulk/CustomActivity/Add/*).
MAX_BULK_ROWS = 25

_T = TypeVar("_T")
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")
_TYPE_MESSAGES = {
    "missing": "required",
    "string_type": "expected a string",
    "int_type": "expected an integer",
    "list_type": "expected an array",
    "model_type": "expected an object",
    "model_attributes_type": "expected an object",
    "dict_type": "expected an object",
}


class BodyError(ValueError):
    """The request is not as the API specifies (HTTP 400); ``message`` says what is wrong."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class _Shape(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


class _Pair(_Shape):
    Attribute: str
    Value: str


class _LeadEntry(_Shape):
    Attribute: str
    Value: str
    Fields: list[_Pair] | None = None

    @_model_validator(mode="after")
    def _set_has_empty_value(self) -> _LeadEntry:
        if self.Fields is not None and self.Value != "":
            raise PydanticCustomError("cfs", 'a custom field set (with Fields) needs Value ""')
        return self


class _ActivityField(_Shape):
    SchemaName: str | None = None
    Attribute: str | None = None
    Value: str
    Fields: list[_Pair] | None = None

    @_model_validator(mode="after")
    def _schema_name_or_set(self) -> _ActivityField:
        if (self.SchemaName is None) == (self.Attribute is None):
            raise PydanticCustomError("field", "expected SchemaName, or Attribute with Fields")
        if self.Attribute is not None and (self.Fields is None or self.Value != ""):
            raise PydanticCustomError("cfs", 'a custom field set needs Value "" and Fields')
        if self.SchemaName is not None and self.Fields is not None:
            raise PydanticCustomError("field", "Fields is only allowed with Attribute")
        return self


def is_activity_datetime(value: str) -> bool:
    """Whether ``value`` is a valid ``YYYY-MM-DD HH:MM:SS`` date-time."""
    try:
        datetime.strptime(value, "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return False
    return _DATETIME.fullmatch(value) is not None


class _ActivityBody(_Shape):
    ActivityEvent: int
    ActivityNote: str | None = None
    ActivityDateTime: str | None = None
    Fields: list[_ActivityField] | None = None


class _Activity(_ActivityBody):
    @field_validator("ActivityDateTime")
    @classmethod
    def _utc_datetime(cls, value: str | None) -> str | None:
        if value is not None and not is_activity_datetime(value):
            raise PydanticCustomError("datetime", "expected 'YYYY-MM-DD HH:MM:SS'")
        return value


class _BulkActivity(_ActivityBody):
    """An item of Bulk/CustomActivity/Add/ByLeadField; its date is checked per row."""

    SearchByValue: str


class _ActivityCreate(_Activity):
    RelatedProspectId: str


class _LeadAndActivity(_Shape):
    LeadDetails: list[_LeadEntry]
    Activity: _Activity


_LEADS = TypeAdapter(list[_LeadEntry])
_ACTIVITY = TypeAdapter(_ActivityCreate)
_LEAD_AND_ACTIVITY = TypeAdapter(_LeadAndActivity)
_BULK_LEADS = TypeAdapter(list[list[_LeadEntry]])
_BULK_ACTIVITIES = TypeAdapter(list[_BulkActivity])


def parse_submission(
    operation: Operation, content_type: str | None, raw: bytes, query: Mapping[str, str]
) -> Submission:
    """Validate a submission; ``content_type`` is the header as sent, ``query`` has lower-cased
    parameter names (they are case-insensitive). Raises BodyError, or MXError for a missing
    ``leadId``."""
    data = _load(content_type, raw)
    behavior = _behavior(query.get("leadupdatebehavior"))
    _check_post_updated_lead(query.get("postupdatedlead"))
    if operation in (Operation.ACTIVITY_CREATE, Operation.CREATE_CUSTOM):
        return _activity_submission(operation, data)
    leads = tuple(_lead_field(e) for e in _validate(_LEADS, data))
    if operation is Operation.UPDATE and not query.get("leadid"):
        raise MXError(
            "MXMandatoryAttributeMissingException", "'leadId' is mandatory for updating lead"
        )
    return Submission(operation, leads=leads, lead_id=query.get("leadid"), behavior=behavior)


def parse_bulk_leads(content_type: str | None, raw: bytes) -> tuple[tuple[LeadField, ...], ...]:
    """Validate a Lead/Bulk/CreateOrUpdate body: 1..25 rows, each a Lead.Capture body."""
    rows = _validate(_BULK_LEADS, _rows(_load(content_type, raw), "leads"))
    return tuple(tuple(_lead_field(e) for e in row) for row in rows)


def parse_bulk_activities(
    content_type: str | None, raw: bytes, query: Mapping[str, str]
) -> tuple[str, tuple[BulkActivity, ...]]:
    """Validate a Bulk/CustomActivity/Add/ByLeadField call: the ``searchBy`` field name (not
    yet checked against the store) and 1..25 items, each CreateCustom's ``Activity`` plus
    ``SearchByValue``."""
    search_by = query.get("searchby")
    if not search_by:
        raise BodyError("the searchBy query parameter is required")
    items = _validate(_BULK_ACTIVITIES, _rows(_load(content_type, raw), "activities"))
    return search_by, tuple(BulkActivity(i.SearchByValue, _activity(i, None)) for i in items)


def _rows(data: Any, noun: str) -> Any:
    """``data``, unless it is an array of the wrong length (other shapes fail validation)."""
    if isinstance(data, list) and not data:
        raise BodyError(f"no {noun}: send 1 to {MAX_BULK_ROWS} per call")
    if isinstance(data, list) and len(data) > MAX_BULK_ROWS:
        raise BodyError(f"at most {MAX_BULK_ROWS} {noun} per call, got {len(data)}")
    return data


def _load(content_type: str | None, raw: bytes) -> Any:
    mime = (content_type or "").split(";", 1)[0].strip().lower()
    if mime != "application/json":
        raise BodyError(f"Content-Type must be application/json, not {content_type!r}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BodyError("body is not valid UTF-8") from None
    return _json(text)


def _activity_submission(operation: Operation, data: Any) -> Submission:
    if operation is Operation.ACTIVITY_CREATE:
        activity = _validate(_ACTIVITY, data)
        return Submission(operation, activity=_activity(activity, activity.RelatedProspectId))
    both = _validate(_LEAD_AND_ACTIVITY, data)
    leads = tuple(_lead_field(e) for e in both.LeadDetails)
    return Submission(operation, leads=leads, activity=_activity(both.Activity, None))


def _json(text: str) -> Any:
    def no_constants(name: str) -> None:
        raise ValueError(name)

    try:
        return json.loads(text, parse_constant=no_constants)
    except ValueError as exc:
        raise BodyError(f"body is not valid JSON: {exc}") from None


def _behavior(value: str | None) -> UpdateBehavior | None:
    if value is None:
        return None
    try:
        return UpdateBehavior(value)
    except ValueError:
        allowed = ", ".join(b.value for b in UpdateBehavior)
        raise BodyError(f"LeadUpdateBehavior must be one of {allowed}, not {value!r}") from None


def _check_post_updated_lead(value: str | None) -> None:
    if value is not None and value.lower() not in ("true", "false"):
        raise BodyError(f"postUpdatedLead must be true or false, not {value!r}")


def _validate(adapter: TypeAdapter[_T], data: Any) -> _T:
    try:
        return adapter.validate_python(data)
    except ValidationError as exc:
        raise BodyError(_describe(exc)) from None


def _describe(exc: ValidationError) -> str:
    errors = exc.errors(include_url=False)
    first = errors[0]
    path = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in first["loc"])
    path = path[1:] if path.startswith(".") else f"body{path}"
    more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
    return f"{path}: {_TYPE_MESSAGES.get(first['type'], first['msg'])}{more}"


def _lead_field(entry: _LeadEntry) -> LeadField:
    inner = None if entry.Fields is None else tuple((p.Attribute, p.Value) for p in entry.Fields)
    return LeadField(entry.Attribute, entry.Value, inner)


def _activity(activity: _ActivityBody, related: str | None) -> ActivityInput:
    fields = tuple(
        LeadField(
            f.SchemaName or f.Attribute or "",
            f.Value,
            None if f.Fields is None else tuple((p.Attribute, p.Value) for p in f.Fields),
        )
        for f in activity.Fields or ()
    )
    return ActivityInput(
        event=activity.ActivityEvent,
        note=activity.ActivityNote,
        when=activity.ActivityDateTime,
        fields=fields,
        related_lead_id=related,
    )
