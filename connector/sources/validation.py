"""One definition of what a valid event definition is, for every way in (API, upload,
adapters). A definition is a plain dict as a client sends it; validation turns it
into `CleanDefinition` or into a list of `{"field", "reason"}` errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.utils.dateparse import parse_datetime

from connector.sources.models import EVENT_KEY_MAX_LENGTH, PropertyType, ValueKind

NAME_MAX_LENGTH = 200
DESCRIPTION_MAX_LENGTH = 5000
UNIT_MAX_LENGTH = 50
VALUE_PROPERTY_MAX_LENGTH = 200
VOLUME_MAX = 2**63 - 1  # BigIntegerField
PROPERTY_NAME_MAX_LENGTH = 200
MAX_PROPERTIES = 100
PROPERTY_TYPES = tuple(PropertyType.values)

FIELDS = (
    "key",
    "name",
    "description",
    "value_kind",
    "unit",
    "value_property",
    "first_seen",
    "last_seen",
    "volume",
    "properties",
)


@dataclass(frozen=True)
class FieldError:
    field: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "reason": self.reason}


@dataclass(frozen=True)
class CleanDefinition:
    """A valid definition. `provided` names the fields the client sent: an absent
    field leaves the stored value alone, so partial updates never blank anything."""

    key: str
    provided: frozenset[str]
    name: str = ""
    description: str = ""
    value_kind: str = ValueKind.CONVERSION
    unit: str = ""
    value_property: str = ""
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    volume: int = 0
    properties: dict[str, str] = field(default_factory=dict)


def is_storable(value: str) -> bool:
    """Whether a string can be stored by every database we support: PostgreSQL
    refuses NUL characters, and lone surrogates (legal in JSON) are not UTF-8."""
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _text(raw: dict, field: str, max_length: int, errors: list[FieldError]) -> str:
    value = raw.get(field)
    if value is None:
        return ""
    if not isinstance(value, str):
        errors.append(FieldError(field, "must be a string"))
        return ""
    if len(value) > max_length:
        errors.append(FieldError(field, f"is {len(value)} characters; at most {max_length}"))
    if not is_storable(value):
        errors.append(FieldError(field, "must be valid Unicode text without NUL characters"))
    return value


def _value_property(raw: dict, errors: list[FieldError]) -> str:
    value = _text(raw, "value_property", VALUE_PROPERTY_MAX_LENGTH, errors)
    # Not stripped: it must match the occurrence's property name exactly, as the key does.
    if value != value.strip():
        errors.append(FieldError("value_property", "must not start or end with whitespace"))
    return value


def value_property_problems(value: str) -> list[str]:
    """Why a value property typed in a form cannot be stored, as the API says it."""
    errors: list[FieldError] = []
    _value_property({"value_property": value}, errors)
    return [error.reason for error in errors]


def property_name_problem(name: str) -> str | None:
    """Why `name` cannot be an event property that metric filters test, or None.
    LaunchDarkly's filters read flat, top-level keys of an event's `data`: a "." or
    "[" would be read as a path into nested values. Not stripped, like
    `value_property`: it must match the occurrence's property name exactly."""
    if not name:
        return "a property name must not be empty"
    if len(name) > PROPERTY_NAME_MAX_LENGTH:
        return f"a property name is at most {PROPERTY_NAME_MAX_LENGTH} characters"
    if "." in name or "[" in name:
        return "must be a flat name: no “.” or “[” (metric filters read top-level properties)"
    if name != name.strip():
        return "must not start or end with whitespace"
    if not is_storable(name):
        return "a property name must be valid Unicode text without NUL characters"
    return None


def _properties(raw: dict, errors: list[FieldError]) -> dict[str, str]:
    """The declared `{name: type}` of an event's flat properties."""
    value = raw.get("properties")
    if value is None:
        return {}
    if not isinstance(value, dict):
        errors.append(
            FieldError(
                "properties", 'must be an object of names and types, e.g. {"plan": "string"}'
            )
        )
        return {}
    if len(value) > MAX_PROPERTIES:
        errors.append(
            FieldError("properties", f"declares {len(value)} properties; at most {MAX_PROPERTIES}")
        )
        return {}
    declared: dict[str, str] = {}
    for name, kind in value.items():
        problem = property_name_problem(name)
        if problem is not None:
            # The name itself may be what cannot be shown (too long, not storable).
            shown = f"“{name}”: " if is_storable(name) and len(name) <= 60 else ""
            errors.append(FieldError("properties", shown + problem))
        elif kind not in PROPERTY_TYPES:
            errors.append(
                FieldError(f"properties.{name}", f"must be one of: {', '.join(PROPERTY_TYPES)}")
            )
        else:
            declared[name] = kind
    return declared


def _datetime(raw: dict, field: str, errors: list[FieldError]) -> datetime | None:
    value = raw.get(field)
    if value is None:
        return None
    if not isinstance(value, str):
        errors.append(FieldError(field, "must be an ISO 8601 date-time string"))
        return None
    try:
        parsed = parse_datetime(value.strip())
    except ValueError:
        parsed = None
    if parsed is None:
        errors.append(FieldError(field, "must be an ISO 8601 date-time, e.g. 2026-01-31T12:00:00Z"))
        return None
    # A date-time without an offset is read as UTC (documented in the OpenAPI).
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    # Stored in UTC: PostgreSQL refuses offsets beyond 15:59 that ISO 8601 allows.
    try:
        return parsed.astimezone(UTC)
    except (OverflowError, ValueError):
        errors.append(FieldError(field, "is out of the supported range of date-times"))
        return None


def validate_definition(raw: Any) -> tuple[CleanDefinition | None, list[FieldError]]:
    if not isinstance(raw, dict):
        return None, [FieldError("", "each event definition must be a JSON object")]
    errors: list[FieldError] = []
    unknown = sorted(str(name) for name in raw if name not in FIELDS)
    for name in unknown:
        errors.append(FieldError(name, f"unknown field; known fields: {', '.join(FIELDS)}"))

    key = raw.get("key")
    if key is None or key == "":
        errors.append(FieldError("key", "is required"))
    elif not isinstance(key, str):
        errors.append(FieldError("key", "must be a string"))
    elif len(key) > EVENT_KEY_MAX_LENGTH:
        errors.append(
            FieldError("key", f"is {len(key)} characters; at most {EVENT_KEY_MAX_LENGTH}")
        )
    elif key != key.strip():
        # The key must match what the product sends byte for byte; stray
        # whitespace at either end is almost always a copy-paste slip.
        errors.append(FieldError("key", "must not start or end with whitespace"))
    elif any(ord(ch) < 32 or ord(ch) == 127 for ch in key):
        errors.append(FieldError("key", "must not contain control characters"))
    elif not is_storable(key):
        errors.append(FieldError("key", "must be valid Unicode text"))

    name = _text(raw, "name", NAME_MAX_LENGTH, errors)
    description = _text(raw, "description", DESCRIPTION_MAX_LENGTH, errors)
    unit = _text(raw, "unit", UNIT_MAX_LENGTH, errors).strip()
    value_property = _value_property(raw, errors)
    properties = _properties(raw, errors)

    value_kind = raw.get("value_kind", ValueKind.CONVERSION)
    if value_kind is None:
        value_kind = ValueKind.CONVERSION
    if value_kind not in ValueKind.values:
        errors.append(FieldError("value_kind", "must be one of: conversion, numeric"))
    elif value_kind == ValueKind.NUMERIC and not unit:
        errors.append(FieldError("unit", "is required for numeric events (e.g. USD, ms, items)"))
    elif value_kind == ValueKind.CONVERSION and unit:
        errors.append(
            FieldError("unit", "only numeric events have a unit; send value_kind: numeric")
        )
    if value_kind == ValueKind.CONVERSION and value_property:
        errors.append(
            FieldError(
                "value_property",
                "only numeric events take their value from a property; send value_kind: numeric",
            )
        )

    first_seen = _datetime(raw, "first_seen", errors)
    last_seen = _datetime(raw, "last_seen", errors)
    if first_seen and last_seen and first_seen > last_seen:
        errors.append(FieldError("last_seen", "is earlier than first_seen"))

    volume = raw.get("volume")
    if volume is None:
        volume = 0
    elif isinstance(volume, bool) or not isinstance(volume, int):
        errors.append(FieldError("volume", "must be a whole number"))
        volume = 0
    elif not 0 <= volume <= VOLUME_MAX:
        errors.append(FieldError("volume", f"must be between 0 and {VOLUME_MAX}"))

    if errors or not isinstance(key, str):
        return None, errors
    provided = frozenset(f for f in FIELDS if raw.get(f) is not None)
    if "unit" not in provided and "value_kind" in provided:
        provided |= {"unit"}  # a kind change always sets the unit with it
    if value_kind == ValueKind.CONVERSION and "value_kind" in provided:
        # A conversion has no value: becoming one clears the property. Becoming (or
        # staying) numeric without naming one keeps the stored one.
        provided |= {"value_property"}
    return (
        CleanDefinition(
            key=key,
            provided=provided,
            name=name,
            description=description,
            value_kind=value_kind,
            unit=unit,
            value_property=value_property,
            first_seen=first_seen,
            last_seen=last_seen,
            volume=volume,
            properties=properties,
        ),
        [],
    )
