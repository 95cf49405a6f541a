"""What `/api/v1/` takes and answers, declared once: django-ninja validates requests
against these schemas and builds the OpenAPI document from them.

An event definition in a batch is the exception: each one is validated on its own by
`validation.validate_definition` (in `services.events_upsert`, the one path for the
API, uploads and adapters), so that a bad item is rejected alone instead of failing
the batch. `EventDefinition` documents it with the same limits.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Annotated, Literal, Required

from ninja import Schema
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SkipValidation,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError
from typing_extensions import TypedDict  # pydantic needs this one before Python 3.12

from connector.inputs import whole_number
from connector.sources.models import EVENT_KEY_MAX_LENGTH, Origin, PropertyType, ValueKind
from connector.sources.services import MAX_BATCH, ItemStatus
from connector.sources.validation import (
    DESCRIPTION_MAX_LENGTH,
    MAX_PROPERTIES,
    NAME_MAX_LENGTH,
    PROPERTY_NAME_MAX_LENGTH,
    UNIT_MAX_LENGTH,
    VALUE_PROPERTY_MAX_LENGTH,
    VOLUME_MAX,
    is_storable,
)

LIST_LIMIT_DEFAULT = 100
LIST_LIMIT_MAX = 500
QUERY_MAX_LENGTH = 200

EVENT_KEY_DESCRIPTION = (
    "The exact string the source product sends the event with; it becomes the "
    "LaunchDarkly metric's eventKey. May contain `/`, `.`, `:` and spaces; no control "
    "characters, no whitespace at either end."
)
VALUE_PROPERTY_DESCRIPTION = (
    "For numeric events: the occurrence property (`properties.<name>`) their value is "
    "read from when an occurrence sends no `value`."
)
PROPERTIES_DESCRIPTION = (
    "The event's flat properties and their types, as metric filters test them "
    '(`{"plan": "string", "amount": "number", "trial": "boolean"}`). Names are exact, '
    "flat (no `.` or `[`: LaunchDarkly's filters read top-level properties), without "
    "whitespace at either end."
)
# Documented by hand: pydantic would put a key's pattern in `patternProperties`, which
# leaves any other name allowed. validation.property_name_problem also refuses
# whitespace at either end, which a JSON Schema pattern cannot say simply.
DECLARED_PROPERTIES_SCHEMA = {
    "type": "object",
    "propertyNames": {
        "minLength": 1,
        "maxLength": PROPERTY_NAME_MAX_LENGTH,
        "pattern": r"^[^.\[]+$",
    },
    "additionalProperties": {"type": "string", "enum": PropertyType.values},
    "maxProperties": MAX_PROPERTIES,
}


# --- errors -----------------------------------------------------------------------------


class Error(BaseModel):
    field: str = Field(description="The field at fault, or `body`.")
    reason: str


class Errors(BaseModel):
    errors: list[Error] = Field(min_length=1)


# --- query strings ------------------------------------------------------------------------


def _storable_text(value: str) -> str:
    if not is_storable(value):
        raise PydanticCustomError("storable", "must be valid Unicode text without NUL characters")
    return value


def _limit(value: str) -> int:
    # ASCII digits only (see connector.inputs): pydantic's int would take " 5".
    try:
        return whole_number(value, minimum=1, maximum=LIST_LIMIT_MAX)
    except ValueError as exc:
        raise PydanticCustomError("whole_number", str(exc)) from None


def encode_cursor(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


def _cursor_key(cursor: str) -> str:
    """The key a page starts after; "" for the first page."""
    if not cursor:
        return ""
    not_ours = PydanticCustomError("cursor", "is not a cursor this API gave out")
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        key = base64.b64decode(padded, altchars=b"-_", validate=True).decode()
    except (binascii.Error, ValueError):
        raise not_ours from None
    if not key or not is_storable(key) or len(key) > EVENT_KEY_MAX_LENGTH:
        raise not_ours
    return key


class NoParameters(BaseModel):
    """The query string of an operation that takes none: any parameter is refused."""


class EventListParameters(BaseModel):
    q: Annotated[
        str,
        Field(max_length=QUERY_MAX_LENGTH, description="Substring of key, name or description."),
        AfterValidator(_storable_text),
    ] = ""
    # Documented as the enum alone: a query string cannot say null.
    value_kind: Annotated[
        ValueKind | None, WithJsonSchema({"type": "string", "enum": ValueKind.values})
    ] = None
    removed: Literal["false", "true", "all"] = Field(
        "false",
        description="false: events that exist at the source; true: removed ones; all: both.",
    )
    # Field before the validator, or pydantic documents `ge`/`le` instead of min/max.
    limit: Annotated[int, Field(ge=1, le=LIST_LIMIT_MAX), BeforeValidator(_limit)] = (
        LIST_LIMIT_DEFAULT
    )
    # Validated into the key the page starts after.
    cursor: Annotated[
        str, Field(description="`next_cursor` of the previous page."), AfterValidator(_cursor_key)
    ] = ""

    def removed_filter(self) -> bool | None:
        return {"false": False, "true": True, "all": None}[self.removed]


# --- request bodies -------------------------------------------------------------------------


class EventDefinition(TypedDict, total=False):
    """Fields left out keep their stored value (a new event gets the defaults).
    `first_seen` only ever moves earlier and `last_seen` later. Date-times without an
    offset are read as UTC. Any other field is refused."""

    __pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[misc]

    key: Required[
        Annotated[
            str,
            Field(min_length=1, max_length=EVENT_KEY_MAX_LENGTH, description=EVENT_KEY_DESCRIPTION),
        ]
    ]
    name: Annotated[str, Field(max_length=NAME_MAX_LENGTH)]
    description: Annotated[str, Field(max_length=DESCRIPTION_MAX_LENGTH)]
    value_kind: Annotated[ValueKind, Field(description="conversion when left out.")]
    unit: Annotated[
        str,
        Field(
            max_length=UNIT_MAX_LENGTH,
            description="Required for numeric events (e.g. USD, ms), refused for conversions.",
        ),
    ]
    value_property: Annotated[
        str,
        Field(
            max_length=VALUE_PROPERTY_MAX_LENGTH,
            description=VALUE_PROPERTY_DESCRIPTION
            + " Refused for conversions (becoming one clears it); an empty string clears "
            "it. No whitespace at either end.",
        ),
    ]
    first_seen: datetime
    last_seen: datetime
    volume: Annotated[
        int, Field(ge=0, le=VOLUME_MAX, description="Occurrences over the last 30 days.")
    ]
    properties: Annotated[
        dict[str, PropertyType],
        WithJsonSchema(DECLARED_PROPERTIES_SCHEMA),
        Field(
            description=PROPERTIES_DESCRIPTION
            + " Merged into the stored ones: a name sent is added, or its type replaced "
            "(a declared type wins over one learned from occurrences); names not sent are "
            "kept, and none is ever removed. Occurrences sent to `/api/v1/track` add the "
            "names they bring, with the JSON type of the first value seen.",
        ),
    ]


class UpsertRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Documented, not validated here: each item gets its own result (module docstring).
    events: list[SkipValidation[EventDefinition]] = Field(min_length=1, max_length=MAX_BATCH)


class ArchiveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    keys: list[Annotated[str, Field(min_length=1)]] = Field(min_length=1, max_length=MAX_BATCH)


# --- answers ----------------------------------------------------------------------------------


# The one ninja `Schema`, to read model instances: the others are plain pydantic
# models of JSON objects. A `Schema` reads through a getter per object, which for a
# batch's 1,000 results would cost 4x the validation of plain dicts.
class Event(Schema):
    key: str
    name: str
    description: str
    value_kind: ValueKind
    unit: str | None = Field(description="Null for conversions.")
    value_property: str | None = Field(
        description=VALUE_PROPERTY_DESCRIPTION + " Null when there is none, and for conversions."
    )
    first_seen: datetime | None
    last_seen: datetime | None
    volume: int = Field(ge=0)
    properties: dict[str, PropertyType] = Field(
        description=PROPERTIES_DESCRIPTION + " Declared, or learned from occurrences."
    )
    origin: Origin = Field(description="The way in that first brought the event.")
    removed_at: datetime | None = Field(
        description="When the source stopped knowing the event; null while it exists."
    )
    created_at: datetime
    updated_at: datetime

    @staticmethod
    def resolve_unit(event) -> str | None:
        return event.unit if event.value_kind == ValueKind.NUMERIC else None

    @staticmethod
    def resolve_value_property(event) -> str | None:
        # A conversion may keep one an adapter could not clear (services.catalog_import).
        numeric = event.value_kind == ValueKind.NUMERIC
        return event.value_property if numeric and event.value_property else None


class EventPage(BaseModel):
    events: list[Event]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last."
    )


class ItemResult(BaseModel):
    index: int = Field(ge=0, description="Position in the batch.")
    key: str | None
    status: ItemStatus
    errors: list[Error] = Field(description="Why the item was rejected; empty otherwise.")


class UpsertCounts(BaseModel):
    created: int = Field(ge=0)
    updated: int = Field(ge=0)
    unchanged: int = Field(ge=0)
    rejected: int = Field(ge=0)


class UpsertResponse(BaseModel):
    results: list[ItemResult]
    counts: UpsertCounts


class ArchiveResult(BaseModel):
    key: str
    status: Literal["archived", "already_archived", "not_found"]


class ArchiveResponse(BaseModel):
    results: list[ArchiveResult]
