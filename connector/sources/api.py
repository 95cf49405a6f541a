"""The connector's HTTP API for the event catalog (`/api/v1/`), described by
`openapi.py`. JSON in, JSON out; every error is `{"errors": [{"field", "reason"}]}`.

Event keys are arbitrary strings (up to 200 characters, `/`, `.`, `:` and spaces
allowed), so one event is addressed as `/api/v1/events/<percent-encoded key>` with
a `path` converter, and archiving takes the keys in a JSON body at
`POST /api/v1/events:archive`, a path no event key can collide with.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from connector.inputs import whole_number
from connector.sources import services
from connector.sources.api_auth import api_key_required
from connector.sources.models import EVENT_KEY_MAX_LENGTH, SourceEvent, ValueKind
from connector.sources.openapi import openapi_document
from connector.sources.selectors import EventFilter, events_matching
from connector.sources.validation import is_storable

# A full batch of 1,000 definitions with long descriptions stays well below this.
# The body is read by this module, not through `request.body`, so Django's
# DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB) does not apply here; this limit does.
MAX_BODY_BYTES = 5 * 1024 * 1024
LIST_LIMIT_DEFAULT = 100
LIST_LIMIT_MAX = 500
LIST_PARAMS = ("q", "value_kind", "removed", "limit", "cursor")
REMOVED_CHOICES = {"false": False, "true": True, "all": None}


def errors(status: int, *pairs: tuple[str, str], headers: dict | None = None) -> JsonResponse:
    body = {"errors": [{"field": field, "reason": reason} for field, reason in pairs]}
    return JsonResponse(body, status=status, headers=headers)


def _methods(handlers: dict[str, Callable[..., HttpResponse]]) -> Callable[..., HttpResponse]:
    allowed = ", ".join(handlers)

    def dispatch(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        handler = handlers.get(request.method or "")
        if handler is None:
            return errors(405, ("method", f"use {allowed}"), headers={"Allow": allowed})
        return handler(request, *args, **kwargs)

    return dispatch


class BadBody(Exception):
    def __init__(self, status: int, field: str, reason: str) -> None:
        super().__init__(reason)
        self.response = errors(status, (field, reason))


def _json_body(request: HttpRequest) -> Any:
    """The request's JSON, refusing an oversized body before reading any of it."""
    try:
        length = whole_number(request.META.get("CONTENT_LENGTH") or "0", maximum=2**63 - 1)
    except ValueError:
        raise BadBody(400, "body", "Content-Length is not a number") from None
    too_big = f"the body is larger than {MAX_BODY_BYTES} bytes; send smaller batches"
    if length > MAX_BODY_BYTES:
        raise BadBody(413, "body", too_big)
    body = request.read(MAX_BODY_BYTES + 1)
    if len(body) > MAX_BODY_BYTES:
        raise BadBody(413, "body", too_big)
    if not body.strip():
        raise BadBody(400, "body", "the body is empty; send a JSON object")
    try:
        return json.loads(body)
    except UnicodeDecodeError:
        raise BadBody(400, "body", "the body is not UTF-8 encoded JSON") from None
    except json.JSONDecodeError as exc:
        raise BadBody(
            400, "body", f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        ) from None
    except (ValueError, RecursionError):
        raise BadBody(400, "body", "not valid JSON (too deeply nested or malformed)") from None


def _object_with_list(data: Any, name: str) -> list:
    if not isinstance(data, dict):
        raise BadBody(400, "body", f'send a JSON object: {{"{name}": [...]}}')
    unknown = sorted(str(k) for k in data if k != name)
    if unknown:
        raise BadBody(400, unknown[0], f'unknown field; the body holds only "{name}"')
    items = data.get(name)
    if not isinstance(items, list):
        raise BadBody(400, name, "is required and must be an array")
    if not items:
        raise BadBody(400, name, "is empty; send at least one item")
    if len(items) > services.MAX_BATCH:
        raise BadBody(
            413,
            name,
            f"holds {len(items)} items; a request holds at most {services.MAX_BATCH}. "
            "Send them in several requests.",
        )
    return items


def event_json(event: SourceEvent) -> dict[str, Any]:
    def when(value):
        return value.isoformat().replace("+00:00", "Z") if value else None

    return {
        "key": event.key,
        "name": event.name,
        "description": event.description,
        "value_kind": event.value_kind,
        "unit": event.unit if event.value_kind == ValueKind.NUMERIC else None,
        "first_seen": when(event.first_seen),
        "last_seen": when(event.last_seen),
        "volume": event.volume,
        "origin": event.origin,
        "removed_at": when(event.removed_at),
        "created_at": when(event.created_at),
        "updated_at": when(event.updated_at),
    }


def _encode_cursor(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> str:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        key = base64.b64decode(padded, altchars=b"-_", validate=True).decode()
    except (binascii.Error, ValueError):
        raise BadBody(400, "cursor", "is not a cursor this API gave out") from None
    if not key or not is_storable(key) or len(key) > EVENT_KEY_MAX_LENGTH:
        raise BadBody(400, "cursor", "is not a cursor this API gave out")
    return key


def _only_params(request: HttpRequest, *known: str) -> None:
    # A misspelt filter must not silently list everything.
    for name in request.GET:
        if name not in known:
            expected = ", ".join(known) if known else "none"
            raise BadBody(400, name, f"unknown query parameter; expected: {expected}")


def _list_events(request: HttpRequest) -> HttpResponse:
    _only_params(request, *LIST_PARAMS)
    params = request.GET
    q = params.get("q", "")
    if len(q) > 200 or not is_storable(q):
        raise BadBody(400, "q", "must be text of at most 200 characters")
    value_kind = params.get("value_kind", "")
    if "value_kind" in params and value_kind not in ValueKind.values:
        raise BadBody(400, "value_kind", "must be conversion or numeric")
    removed = params.get("removed", "false")
    if removed not in REMOVED_CHOICES:
        raise BadBody(400, "removed", "must be false, true or all")
    try:
        limit = whole_number(
            params.get("limit", str(LIST_LIMIT_DEFAULT)), minimum=1, maximum=LIST_LIMIT_MAX
        )
    except ValueError as exc:
        raise BadBody(400, "limit", str(exc)) from None
    events = events_matching(
        EventFilter(q=q, value_kind=value_kind, removed=REMOVED_CHOICES[removed], order="key")
    )
    # Keyset pagination on the unique key: stable while events are being added.
    if params.get("cursor"):
        events = events.filter(key__gt=_decode_cursor(params["cursor"]))
    page = list(events[: limit + 1])
    more = len(page) > limit
    page = page[:limit]
    return JsonResponse(
        {
            "events": [event_json(e) for e in page],
            "next_cursor": _encode_cursor(page[-1].key) if more else None,
        }
    )


def _upsert_events(request: HttpRequest) -> HttpResponse:
    _only_params(request)
    definitions = _object_with_list(_json_body(request), "events")
    results = services.events_upsert(
        definitions=definitions, origin="api", via=f"API key {request.api_key.name}"
    )
    return JsonResponse(
        {"results": [r.as_dict() for r in results], "counts": services.counts_of(results)}
    )


def _get_event(request: HttpRequest, key: str) -> HttpResponse:
    _only_params(request)
    event = None
    if len(key) <= EVENT_KEY_MAX_LENGTH and is_storable(key):
        event = SourceEvent.objects.filter(key=key).first()
    if event is None:
        return errors(404, ("key", "no event with this key in this workspace"))
    return JsonResponse(event_json(event))


def _archive_events(request: HttpRequest) -> HttpResponse:
    _only_params(request)
    keys = _object_with_list(_json_body(request), "keys")
    for index, key in enumerate(keys):
        if not isinstance(key, str) or not key:
            raise BadBody(400, f"keys[{index}]", "must be a non-empty string")
    # A key that could never have been stored is simply not found.
    storable = [k for k in keys if len(k) <= EVENT_KEY_MAX_LENGTH and is_storable(k)]
    results = {
        r.key: r
        for r in services.events_archive(keys=storable, via=f"API key {request.api_key.name}")
    }
    ordered = [
        results.get(key) or services.ArchiveResult(key, "not_found") for key in dict.fromkeys(keys)
    ]
    return JsonResponse({"results": [r.as_dict() for r in ordered]})


def _json_errors(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except BadBody as exc:
            return exc.response

    return wrapped


events = csrf_exempt(
    api_key_required(_json_errors(_methods({"GET": _list_events, "POST": _upsert_events})))
)
event = csrf_exempt(api_key_required(_json_errors(_methods({"GET": _get_event}))))
events_archive = csrf_exempt(api_key_required(_json_errors(_methods({"POST": _archive_events}))))


@csrf_exempt
def openapi_json(request: HttpRequest) -> HttpResponse:
    if request.method not in ("GET", "HEAD"):
        return errors(405, ("method", "use GET"), headers={"Allow": "GET"})
    return JsonResponse(openapi_document())
