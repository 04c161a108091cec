"""[pure] Compiles mapping sources (field paths, ``$`` roots, constants, templates, custom field
sets) once into closures, so that rendering a record parses nothing. Compile problems raise
ConfigError naming the key; render problems raise MappingError naming the mapping path."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from string import Formatter
from typing import TYPE_CHECKING, Any, TypeAlias

from connector.errors import ConfigError, MappingError
from connector.records import Change, SourceRecord
from connector.transform.spec import FieldSpec
from connector.transform.values import Unmappable, utc_from_ms

if TYPE_CHECKING:
    from connector.transform.spec import FieldSource, Scalar
    from connector.transform.values import ValueFormatter

__all__ = [
    "Entry",
    "Getter",
    "Resolve",
    "Row",
    "compile_entries",
    "compile_path",
    "compile_value",
    "render_entries",
]

Row: TypeAlias = Mapping[str, Any]
#: Reads a raw value from the record (``None`` when missing).
Getter: TypeAlias = Callable[[Row, Change, SourceRecord], Any]
#: Produces a LeadSquared string, or ``None`` to leave the attribute out.
Resolve: TypeAlias = Callable[[Row, Change, SourceRecord], "str | None"]
#: Produces one ``{"Attribute"|"SchemaName": name, "Value": ...}`` entry, or ``None``.
Entry: TypeAlias = Callable[[Row, Change, SourceRecord], "dict[str, Any] | None"]

_KINDS = ("path", "const", "template", "fields")
_NESTED = "custom field sets nest one level only"


def _ms(value: int | None) -> Any:
    return None if value is None else utc_from_ms(value)


_ROOTS: dict[str, Getter] = {
    "$op": lambda _row, change, _record: change.op,
    "$ts_ms": lambda _row, change, _record: _ms(change.ts_ms),
    "$topic": lambda _row, _change, record: record.topic,
    "$partition": lambda _row, _change, record: record.partition,
    "$offset": lambda _row, _change, record: record.offset,
    "$timestamp": lambda _row, _change, record: _ms(record.timestamp_ms),
}


def _walker(segments: list[str]) -> Callable[[Any], Any]:
    """Follows dotted segments through mappings (by key) and lists (by integer index)."""
    steps = tuple((s, int(s) if s.isascii() and s.isdigit() else None) for s in segments)

    def walk(value: Any) -> Any:
        for name, index in steps:
            if isinstance(value, Mapping):
                value = value.get(name)
            elif index is not None and isinstance(value, list | tuple):
                value = value[index] if index < len(value) else None
            else:
                return None
        return value

    return walk


def compile_path(path: str, key: str) -> Getter:
    """A field path or ``$`` root → a getter; ConfigError naming ``key`` when malformed."""
    segments = path.split(".")
    if not all(segments):
        raise ConfigError(f"{key}: {path!r} is not a field path (empty segment)")
    head = segments[0]
    if head == "$meta":
        if len(segments) < 2:  # noqa: PLR2004 -- $meta plus at least one name
            raise ConfigError(f"{key}: $meta needs a name, e.g. $meta.table")
        walk_meta = _walker(segments[1:])
        return lambda _row, change, _record: walk_meta(change.meta)
    if head.startswith("$"):
        getter = _ROOTS.get(head)
        if getter is None:
            known = ", ".join([*_ROOTS, "$meta.<name>"])
            raise ConfigError(f"{key}: unknown root {head!r} (known: {known})")
        if len(segments) > 1:
            raise ConfigError(f"{key}: {head} has no fields")
        return getter
    if len(segments) == 1:
        return lambda row, _change, _record: row.get(head)
    walk = _walker(segments)
    return lambda row, _change, _record: walk(row)


def _kind(spec: FieldSpec, key: str) -> str:
    """Which of path/const/template/fields ``spec`` uses, after the rules on its keys."""
    kinds = [kind for kind in _KINDS if getattr(spec, kind) is not None]
    if len(kinds) != 1:
        got = ", ".join(kinds) or "none"
        raise ConfigError(f"{key}: needs exactly one of path, const, template, fields (got {got})")
    kind = kinds[0]
    for option in ("default", "required"):
        if option in spec.model_fields_set and kind in ("const", "fields"):
            raise ConfigError(f"{key}.{option}: only valid with path or template")
    if spec.required and spec.default is not None:
        raise ConfigError(f"{key}: required and default exclude each other")
    return kind


def _scalar(value: Scalar, key: str, fmt: ValueFormatter) -> str:
    try:
        return fmt(value)
    except Unmappable as exc:
        raise ConfigError(f"{key}: {exc.reason}") from None


def compile_value(source: FieldSource, key: str, fmt: ValueFormatter, set_error: str) -> Resolve:
    """A source that yields one value (no custom field set: ``set_error`` says why)."""
    if isinstance(source, str):
        return _path(compile_path(source, key), source, key, fmt, None, required=False)
    kind = _kind(source, key)
    default = None if source.default is None else _scalar(source.default, f"{key}.default", fmt)
    if kind == "path" and source.path is not None:
        getter = compile_path(source.path, f"{key}.path")
        return _path(getter, source.path, key, fmt, default, required=source.required)
    if kind == "template" and source.template is not None:
        return _template(source.template, key, fmt, default, required=source.required)
    if kind == "const" and source.const is not None:
        text = _scalar(source.const, f"{key}.const", fmt)
        return lambda _row, _change, _record: text
    raise ConfigError(f"{key}: {set_error}")


def _path(
    get: Getter,
    path: str,
    key: str,
    fmt: ValueFormatter,
    default: str | None,
    *,
    required: bool,
) -> Resolve:
    def resolve(row: Row, change: Change, record: SourceRecord) -> str | None:
        try:
            value = get(row, change, record)
            text: str | None = value if value is None or type(value) is str else fmt(value)
        except Unmappable as exc:
            raise MappingError(key, f"field {path!r}: {exc.reason}") from None
        if text is None:
            if required:
                raise MappingError(key, f"field {path!r} is null")
            return default
        return text

    return resolve


def _template(
    template: str, key: str, fmt: ValueFormatter, default: str | None, *, required: bool
) -> Resolve:
    head, holes = _parse_template(template, f"{key}.template")

    def resolve(row: Row, change: Change, record: SourceRecord) -> str | None:
        pieces = [head]
        for get, path, tail in holes:
            try:
                value = get(row, change, record)
                if value is not None:
                    pieces.append(value if type(value) is str else fmt(value))
            except Unmappable as exc:
                raise MappingError(key, f"template placeholder {path!r}: {exc.reason}") from None
            pieces.append(tail)
        text = "".join(pieces).strip()
        if text:
            return text
        if required:
            raise MappingError(key, f"template {template!r} rendered empty")
        return default

    return resolve


def _parse_template(template: str, key: str) -> tuple[str, tuple[tuple[Getter, str, str], ...]]:
    """``"a {x} b"`` → (literal head, ((getter, path, literal after), ...))."""
    literals, paths = [""], []
    try:
        parsed = list(Formatter().parse(template))
    except ValueError as exc:
        raise ConfigError(f"{key}: {exc} (write {{{{ and }}}} for literal braces)") from None
    for literal, name, spec, conversion in parsed:
        literals[-1] += literal
        if name is None:
            continue
        if not name or spec or conversion:
            field = name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "")
            raise ConfigError(f"{key}: placeholder {{{field}}} must be a plain field path")
        paths.append(name)
        literals.append("")
    getters = [compile_path(path, key) for path in paths]
    return literals[0], tuple(zip(getters, paths, literals[1:], strict=True))


def _check_name(name: str, key: str) -> None:
    if not name.strip():
        raise ConfigError(f"{key}: attribute names must not be empty")
    if name.casefold() == "searchby":
        raise ConfigError(f"{key}.{name}: SearchBy is not an attribute; use search_by")


def compile_entries(
    sources: dict[str, FieldSource],
    key: str,
    fmt: ValueFormatter,
    name_key: str = "Attribute",
    *,
    sets: bool = True,
    clear: bool = False,
) -> tuple[Entry, ...]:
    """Attribute → source pairs (in order) → entry builders; ``name_key`` is ``Attribute`` for
    lead fields, ``SchemaName`` for activity fields (a custom field set always uses Attribute).
    ``sets`` says whether custom field sets may appear (not inside another one); ``clear``, that
    a null value is sent as ``""`` (LeadSquared empties the field) instead of left out."""
    entries = []
    for name, source in sources.items():
        _check_name(name, key)
        sub = f"{key}.{name}"
        if isinstance(source, FieldSpec) and _kind(source, sub) == "fields" and sets:
            entries.append(_set_entry(name, source.fields or {}, sub, fmt, clear=clear))
        else:
            resolve = compile_value(source, sub, fmt, _NESTED)
            entries.append(_plain_entry(name, name_key, resolve, clear=clear))
    return tuple(entries)


def render_entries(
    entries: tuple[Entry, ...], row: Row, change: Change, record: SourceRecord
) -> list[dict[str, Any]]:
    """The entries that have a value, in order."""
    return [entry for build in entries if (entry := build(row, change, record)) is not None]


def _plain_entry(name: str, name_key: str, resolve: Resolve, *, clear: bool) -> Entry:
    null = "" if clear else None  # what a null value becomes

    def entry(row: Row, change: Change, record: SourceRecord) -> dict[str, Any] | None:
        value = resolve(row, change, record)
        value = null if value is None else value
        return None if value is None else {name_key: name, "Value": value}

    return entry


def _set_entry(
    name: str, fields: dict[str, FieldSource], key: str, fmt: ValueFormatter, *, clear: bool
) -> Entry:
    """A custom field set: ``{"Attribute": name, "Value": "", "Fields": [...]}``, or ``None``
    when every inner field is null (and left out)."""
    if not fields:
        raise ConfigError(f"{key}.fields: a custom field set needs at least one field")
    inner = compile_entries(fields, f"{key}.fields", fmt, sets=False, clear=clear)

    def entry(row: Row, change: Change, record: SourceRecord) -> dict[str, Any] | None:
        values = render_entries(inner, row, change, record)
        return {"Attribute": name, "Value": "", "Fields": values} if values else None

    return entry
