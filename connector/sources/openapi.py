"""The OpenAPI 3.1 document of `/api/v1/`, built in code so it cannot drift from the
limits it states (they are the constants the views enforce). Tests validate every
operation's answers against it and fuzz the API with schemathesis."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from connector.sources.models import EVENT_KEY_MAX_LENGTH
from connector.sources.validation import (
    DESCRIPTION_MAX_LENGTH,
    NAME_MAX_LENGTH,
    UNIT_MAX_LENGTH,
    VOLUME_MAX,
)

API_VERSION = "1.0.0"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(description: str) -> dict[str, Any]:
    return _json(_ref("Errors"), description)


DATE_TIME = {"type": "string", "format": "date-time"}
NULLABLE_DATE_TIME = {"type": ["string", "null"], "format": "date-time"}
EVENT_KEY = {
    "type": "string",
    "minLength": 1,
    "maxLength": EVENT_KEY_MAX_LENGTH,
    "description": "The exact string the source product sends the event with; it becomes "
    "the LaunchDarkly metric's eventKey. May contain `/`, `.`, `:` and spaces; no control "
    "characters, no whitespace at either end.",
}


def _schemas() -> dict[str, Any]:
    from connector.sources.services import MAX_BATCH

    return {
        "Error": {
            "type": "object",
            "required": ["field", "reason"],
            "properties": {
                "field": {"type": "string", "description": "The field at fault, or `body`."},
                "reason": {"type": "string"},
            },
        },
        "Errors": {
            "type": "object",
            "required": ["errors"],
            "properties": {"errors": {"type": "array", "items": _ref("Error"), "minItems": 1}},
        },
        "EventDefinition": {
            "type": "object",
            "description": "Fields left out keep their stored value (a new event gets the "
            "defaults). `first_seen` only ever moves earlier and `last_seen` later. "
            "Date-times without an offset are read as UTC.",
            "required": ["key"],
            "additionalProperties": False,
            "properties": {
                "key": EVENT_KEY,
                "name": {"type": "string", "maxLength": NAME_MAX_LENGTH},
                "description": {"type": "string", "maxLength": DESCRIPTION_MAX_LENGTH},
                "value_kind": {
                    "type": "string",
                    "enum": ["conversion", "numeric"],
                    "default": "conversion",
                },
                "unit": {
                    "type": "string",
                    "maxLength": UNIT_MAX_LENGTH,
                    "description": "Required for numeric events (e.g. USD, ms), "
                    "refused for conversion events.",
                },
                "first_seen": DATE_TIME,
                "last_seen": DATE_TIME,
                "volume": {
                    "type": "integer",
                    "minimum": 0,
                    "maximum": VOLUME_MAX,
                    "description": "Occurrences over the last 30 days.",
                },
            },
        },
        "Event": {
            "type": "object",
            "required": [
                "key",
                "name",
                "description",
                "value_kind",
                "unit",
                "first_seen",
                "last_seen",
                "volume",
                "origin",
                "removed_at",
                "created_at",
                "updated_at",
            ],
            "properties": {
                "key": {"type": "string"},
                "name": {"type": "string"},
                "description": {"type": "string"},
                "value_kind": {"type": "string", "enum": ["conversion", "numeric"]},
                "unit": {"type": ["string", "null"], "description": "Null for conversions."},
                "first_seen": NULLABLE_DATE_TIME,
                "last_seen": NULLABLE_DATE_TIME,
                "volume": {"type": "integer", "minimum": 0},
                "origin": {
                    "type": "string",
                    "enum": ["api", "upload", "posthog", "demo"],
                    "description": "The way in that first brought the event.",
                },
                "removed_at": {
                    **NULLABLE_DATE_TIME,
                    "description": "When the source stopped knowing the event; null while "
                    "it exists.",
                },
                "created_at": DATE_TIME,
                "updated_at": DATE_TIME,
            },
        },
        "EventPage": {
            "type": "object",
            "required": ["events", "next_cursor"],
            "properties": {
                "events": {"type": "array", "items": _ref("Event")},
                "next_cursor": {
                    "type": ["string", "null"],
                    "description": "Pass as `cursor` for the next page; null on the last.",
                },
            },
        },
        "UpsertRequest": {
            "type": "object",
            "required": ["events"],
            "additionalProperties": False,
            "properties": {
                "events": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": MAX_BATCH,
                    "items": _ref("EventDefinition"),
                }
            },
        },
        "ItemResult": {
            "type": "object",
            "required": ["index", "key", "status", "errors"],
            "properties": {
                "index": {"type": "integer", "minimum": 0, "description": "Position in the batch."},
                "key": {"type": ["string", "null"]},
                "status": {
                    "type": "string",
                    "enum": ["created", "updated", "unchanged", "rejected"],
                },
                "errors": {
                    "type": "array",
                    "items": _ref("Error"),
                    "description": "Why the item was rejected; empty otherwise.",
                },
            },
        },
        "UpsertResponse": {
            "type": "object",
            "required": ["results", "counts"],
            "properties": {
                "results": {"type": "array", "items": _ref("ItemResult")},
                "counts": {
                    "type": "object",
                    "required": ["created", "updated", "unchanged", "rejected"],
                    "properties": {
                        name: {"type": "integer", "minimum": 0}
                        for name in ("created", "updated", "unchanged", "rejected")
                    },
                },
            },
        },
        "ArchiveRequest": {
            "type": "object",
            "required": ["keys"],
            "additionalProperties": False,
            "properties": {
                "keys": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": MAX_BATCH,
                    "items": {"type": "string", "minLength": 1},
                }
            },
        },
        "ArchiveResponse": {
            "type": "object",
            "required": ["results"],
            "properties": {
                "results": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["key", "status"],
                        "properties": {
                            "key": {"type": "string"},
                            "status": {
                                "type": "string",
                                "enum": ["archived", "already_archived", "not_found"],
                            },
                        },
                    },
                }
            },
        },
    }


def openapi_document() -> dict[str, Any]:
    from connector.sources.api import LIST_LIMIT_DEFAULT, LIST_LIMIT_MAX, MAX_BODY_BYTES
    from connector.sources.services import MAX_BATCH

    unauthorized = _errors(
        "No valid API key: missing, unknown or revoked. Carries `WWW-Authenticate: Bearer`."
    )
    unauthorized["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}}}
    bad_request = _errors(
        "The request as a whole is malformed (not JSON, wrong shape, unknown query parameter)."
    )
    too_large = _errors(
        f"The body exceeds {MAX_BODY_BYTES} bytes, or the batch exceeds {MAX_BATCH} items. "
        "Nothing is written."
    )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": f"{settings.SOURCE_PRODUCT_NAME} metric connector API",
            "version": API_VERSION,
            "description": "Feed a workspace's catalog of source events. Authenticate with a "
            "workspace API key (created by an admin under Settings, API keys) as "
            "`Authorization: Bearer <key>`; the key decides the workspace. Errors are "
            '`{"errors": [{"field", "reason"}]}`.',
        },
        "servers": [{"url": settings.PUBLIC_URL}],
        "security": [{"apiKey": []}],
        "paths": {
            "/api/v1/events": {
                "get": {
                    "operationId": "listEvents",
                    "summary": "List the workspace's events, ordered by key",
                    "parameters": [
                        {
                            "name": "q",
                            "in": "query",
                            "description": "Substring of key, name or description.",
                            "schema": {"type": "string", "maxLength": 200},
                        },
                        {
                            "name": "value_kind",
                            "in": "query",
                            "schema": {"type": "string", "enum": ["conversion", "numeric"]},
                        },
                        {
                            "name": "removed",
                            "in": "query",
                            "description": "false: events that exist at the source; true: "
                            "removed ones; all: both.",
                            "schema": {
                                "type": "string",
                                "enum": ["false", "true", "all"],
                                "default": "false",
                            },
                        },
                        {
                            "name": "limit",
                            "in": "query",
                            "schema": {
                                "type": "integer",
                                "minimum": 1,
                                "maximum": LIST_LIMIT_MAX,
                                "default": LIST_LIMIT_DEFAULT,
                            },
                        },
                        {
                            "name": "cursor",
                            "in": "query",
                            "description": "`next_cursor` of the previous page.",
                            "schema": {"type": "string"},
                        },
                    ],
                    "responses": {
                        "200": _json(_ref("EventPage"), "A page of events."),
                        "400": _errors("A parameter is invalid or unknown; `field` names it."),
                        "401": unauthorized,
                    },
                },
                "post": {
                    "operationId": "upsertEvents",
                    "summary": f"Create or update up to {MAX_BATCH} event definitions by key",
                    "description": "Idempotent: sending the same batch again answers "
                    "`unchanged` for every item. Good items are stored even when others "
                    "are rejected; every item gets a result, in the order sent. A key sent "
                    "twice in one batch rejects every copy. Sending a removed event again "
                    "marks it as existing.",
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref("UpsertRequest")}},
                    },
                    "responses": {
                        "200": _json(_ref("UpsertResponse"), "One result per item."),
                        "400": bad_request,
                        "401": unauthorized,
                        "413": too_large,
                    },
                },
            },
            "/api/v1/events/{key}": {
                "get": {
                    "operationId": "getEvent",
                    "summary": "One event by key",
                    "parameters": [
                        {
                            "name": "key",
                            "in": "path",
                            "required": True,
                            "description": "The event key, percent-encoded (`/` as `%2F`).",
                            "schema": EVENT_KEY,
                        }
                    ],
                    "responses": {
                        "200": _json(_ref("Event"), "The event."),
                        "401": unauthorized,
                        "400": _errors("An unknown query parameter was sent."),
                        "404": _errors("No event with this key in the key's workspace."),
                    },
                }
            },
            "/api/v1/events:archive": {
                "post": {
                    "operationId": "archiveEvents",
                    "summary": "Mark events as removed at the source",
                    "description": "Archived events stay in the catalog with `removed_at` "
                    "set, so their metrics can be shown as orphans. Unknown keys answer "
                    "`not_found`; archiving twice answers `already_archived`.",
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref("ArchiveRequest")}},
                    },
                    "responses": {
                        "200": _json(_ref("ArchiveResponse"), "One result per distinct key."),
                        "400": bad_request,
                        "401": unauthorized,
                        "413": too_large,
                    },
                }
            },
            "/api/v1/openapi.json": {
                "get": {
                    "operationId": "getOpenApi",
                    "summary": "This document",
                    "security": [],
                    "responses": {"200": _json({"type": "object"}, "The OpenAPI document.")},
                }
            },
        },
        "components": {
            "securitySchemes": {
                "apiKey": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A workspace API key, shown once when it is created.",
                }
            },
            "schemas": _schemas(),
        },
    }
