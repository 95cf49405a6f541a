"""The connector's HTTP API for the event catalog (`/api/v1/`), on django-ninja: the
operations below and the schemas in `api_schemas.py` are both what requests are
validated against and what `/api/v1/openapi.json` describes. JSON in, JSON out;
every error is `{"errors": [{"field", "reason"}]}`.

Event keys are arbitrary strings (up to 200 characters, `/`, `.`, `:` and spaces
allowed), so one event is addressed as `/api/v1/events/<percent-encoded key>` with
a `path` converter, and archiving takes the keys in a JSON body at
`POST /api/v1/events:archive`, a path no event key can collide with.
"""

from __future__ import annotations

import json
import warnings
from datetime import datetime
from typing import Annotated, Any, NoReturn

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.urls import reverse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError, ValidationErrorContext
from ninja.params import Path
from ninja.params.models import Body, BodyModel, Query, QueryModel
from ninja.renderers import JSONRenderer
from ninja.responses import NinjaJSONEncoder
from pydantic import AfterValidator
from pydantic_core import ErrorDetails, PydanticCustomError

from connector.inputs import whole_number
from connector.sources import services
from connector.sources.api_auth import ApiKeyAuth, in_api_key_scope, unauthorized
from connector.sources.api_schemas import (
    EVENT_KEY_DESCRIPTION,
    ArchiveRequest,
    ArchiveResponse,
    Errors,
    Event,
    EventListParameters,
    EventPage,
    NoParameters,
    UpsertRequest,
    UpsertResponse,
    encode_cursor,
)
from connector.sources.models import EVENT_KEY_MAX_LENGTH, SourceEvent
from connector.sources.selectors import EventFilter, events_matching
from connector.sources.validation import is_storable

# A full batch of 1,000 definitions with long descriptions stays well below this.
# The body is read by `read_json`, not through `request.body`, so Django's
# DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB) does not apply here; this limit does.
MAX_BODY_BYTES = 5 * 1024 * 1024
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE")
NO_SUCH_EVENT = "no event with this key in this workspace"


def errors(status: int, field: str, reason: str, headers: dict | None = None) -> JsonResponse:
    body = {"errors": [{"field": field, "reason": reason}]}
    return JsonResponse(body, status=status, headers=headers)


class ApiError(Exception):
    """Answered as `{"errors": [{"field": field, "reason": reason}]}` with `status`."""

    def __init__(self, status: int, field: str, reason: str, headers: dict | None = None):
        super().__init__(reason)
        self.status, self.field, self.reason, self.headers = status, field, reason, headers


# --- reading requests -------------------------------------------------------------------


def read_json(request: HttpRequest) -> Any:
    """The request's JSON, refusing an oversized body before reading any of it."""
    try:
        length = whole_number(request.META.get("CONTENT_LENGTH") or "0", maximum=2**63 - 1)
    except ValueError:
        raise ApiError(400, "body", "Content-Length is not a number") from None
    too_big = f"the body is larger than {MAX_BODY_BYTES} bytes; send smaller batches"
    if length > MAX_BODY_BYTES:
        raise ApiError(413, "body", too_big)
    body = request.read(MAX_BODY_BYTES + 1)
    if len(body) > MAX_BODY_BYTES:
        raise ApiError(413, "body", too_big)
    if not body.strip():
        raise ApiError(400, "body", "the body is empty; send a JSON object")
    try:
        return json.loads(body)
    except UnicodeDecodeError:
        raise ApiError(400, "body", "the body is not UTF-8 encoded JSON") from None
    except json.JSONDecodeError as exc:
        raise ApiError(
            400, "body", f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        ) from None
    except (ValueError, RecursionError):
        raise ApiError(400, "body", "not valid JSON (too deeply nested or malformed)") from None


class _JsonBodyModel(BodyModel):
    # ninja's own reads `request.body` (Django's 2.5 MB limit, an HTML 400 past it)
    # and answers every parse error alike.
    @classmethod
    def get_request_data(cls, request: HttpRequest, api: Any, path_params: Any) -> Any:
        name = getattr(cls, "__read_from_single_attr__", None)
        data = read_json(request)
        return {name: data} if name else data


class JsonBody(Body):  # type: ignore[misc]  # as ninja's own Param classes
    """A JSON request body read by `read_json`."""

    _model = _JsonBodyModel

    @classmethod
    def _param_source(cls) -> str:
        return "body"


class _KnownQueryModel(QueryModel):
    @classmethod
    def resolve(cls, request: HttpRequest, api: Any, path_params: Any) -> Any:
        # A misspelt filter must not silently list everything.
        known = list(cls.__ninja_flatten_map__)  # type: ignore[attr-defined]
        for name in request.GET:
            if name not in known:
                expected = ", ".join(known) or "none"
                raise ApiError(400, name, f"unknown query parameter; expected: {expected}")
        return super().resolve(request, api, path_params)


class KnownQuery(Query):  # type: ignore[misc]
    """Query parameters of which the query string may hold no others."""

    _model = _KnownQueryModel

    @classmethod
    def _param_source(cls) -> str:
        return "query"


def _storable_key(key: str) -> str:
    if not is_storable(key):
        raise PydanticCustomError("storable", "must be valid Unicode text without NUL characters")
    return key


NoQuery = Annotated[NoParameters, KnownQuery(NoParameters())]
# A key that could never have been stored is simply not found (see ConnectorApi).
EventKeyInPath = Annotated[
    str,
    AfterValidator(_storable_key),
    Path(
        min_length=1,
        max_length=EVENT_KEY_MAX_LENGTH,
        description=f"The event key, percent-encoded (`/` as `%2F`). {EVENT_KEY_DESCRIPTION}",
    ),
]


# --- pydantic's errors as ours -------------------------------------------------------------


def _field(location: tuple) -> str:
    field = str(location[0]) if location else "body"
    for part in location[1:]:
        field += f"[{part}]" if isinstance(part, int) else f".{part}"
    return field


def _body_refusal(error: ErrorDetails, location: tuple, fields: dict) -> tuple[int, str]:
    """Status and reason for an error in a body: an object of one list (`events`,
    `keys`), whose items are checked by the list's own item type."""
    kind, ctx = error["type"], error.get("ctx", {})
    if kind == "model_type":
        lists = ", ".join(f'"{name}": [...]' for name in fields)
        return 400, f"send a JSON object: {{{lists}}}"
    if kind == "extra_forbidden":
        return 400, "unknown field; the body holds only " + ", ".join(f'"{n}"' for n in fields)
    if len(location) == 1 and kind in ("missing", "list_type"):
        return 400, "is required and must be an array"
    if len(location) == 1 and kind == "too_short":
        return 400, "is empty; send at least one item"
    if len(location) == 1 and kind == "too_long":
        # 413 like a body over MAX_BODY_BYTES: the request is too large, not wrong.
        return 413, (
            f"holds {ctx['actual_length']} items; a request holds at most "
            f"{ctx['max_length']}. Send them in several requests."
        )
    return 400, _reason(error)


def _reason(error: ErrorDetails) -> str:
    kind, ctx = error["type"], error.get("ctx", {})
    if kind == "missing":
        return "is required"
    if kind in ("literal_error", "enum"):
        return f"must be {ctx['expected'].replace(chr(39), '')}"
    if kind == "string_type":
        return "must be a string"
    if kind == "string_too_short" and ctx.get("min_length") == 1:
        return "must be a non-empty string"
    if kind == "string_too_long":
        return f"is {len(error['input'])} characters; at most {ctx['max_length']}"
    return error["msg"]  # our own PydanticCustomError messages, and anything else


def _parameter(model: Any, location: tuple) -> tuple:
    """The query or path parameter an error is about: ninja locates it as (argument,
    parameter) for a schema's parameters, else (parameter,); pydantic may add a
    union's branch after that."""
    reverse = model.__ninja_flatten_map_reverse__
    return reverse.get(location[:2]) or reverse.get(location[:1], location)


class InvalidRequest(ValidationError):
    def __init__(self, errors: list[dict[str, str]], status: int) -> None:
        super().__init__(errors)
        self.status = status


class ConnectorApi(NinjaAPI):
    def get_content_type(self) -> str:
        return "application/json"  # as JsonResponse, which answers every error

    def validation_error_from_error_contexts(
        self, error_contexts: list[ValidationErrorContext]
    ) -> ValidationError:
        """ninja's 422 with pydantic's errors becomes our 400 (413, 404: see below)
        with `{"field", "reason"}` pairs. Unknown fields come first, by name: they
        are the likeliest slip, and make the other errors moot."""
        found: list[tuple[tuple[bool, str], int, dict[str, str]]] = []
        for context in error_contexts:
            model = context.model
            source = model.__ninja_param_source__
            for error in context.pydantic_validation_error.errors(include_url=False):
                if source == "body":  # one argument, which the location starts with
                    argument, *location = error["loc"]
                    fields = model.model_fields[argument].annotation.model_fields
                    status, reason = _body_refusal(error, tuple(location), fields)
                elif source == "path":
                    # The only path argument is an event key: one that cannot be
                    # stored is not found, and answered as any missing key.
                    location, status, reason = ["key"], 404, NO_SUCH_EVENT
                else:
                    location = list(_parameter(model, error["loc"]))
                    status, reason = 400, _reason(error)
                field = _field(tuple(location))
                unknown = error["type"] == "extra_forbidden"
                order = (not unknown, field if unknown else "")
                found.append((order, status, {"field": field, "reason": reason}))
        found.sort(key=lambda item: item[0])  # stable: otherwise in pydantic's order
        return InvalidRequest([pair for *_, pair in found], status=found[0][1])


class _Encoder(NinjaJSONEncoder):
    def default(self, o: Any) -> Any:
        if isinstance(o, datetime):  # Django's encoder would cut microseconds
            return o.isoformat().replace("+00:00", "Z")
        return super().default(o)


class _Renderer(JSONRenderer):
    encoder_class = _Encoder


api = ConnectorApi(
    title="Metric connector API",  # named after the source product in `openapi_document`
    version="1.0.0",
    description="Feed a workspace's catalog of source events. Authenticate with a "
    "workspace API key (created by an admin under Settings, API keys) as "
    "`Authorization: Bearer <key>`; the key decides the workspace. Errors are "
    '`{"errors": [{"field", "reason"}]}`.',
    urls_namespace="api",
    openapi_url=None,  # served by `openapi_document`, which describes itself too
    docs_url=None,
    auth=ApiKeyAuth(),
    renderer=_Renderer(),
)
api.add_decorator(in_api_key_scope)


@api.exception_handler(ApiError)
def _api_error(request: HttpRequest, exc: ApiError) -> JsonResponse:
    return errors(exc.status, exc.field, exc.reason, headers=exc.headers)


@api.exception_handler(ValidationError)
def _invalid(request: HttpRequest, exc: ValidationError) -> JsonResponse:
    # Always an InvalidRequest (ConnectorApi makes them), of our pairs.
    return JsonResponse({"errors": exc.errors}, status=getattr(exc, "status", 400))


@api.exception_handler(AuthenticationError)
def _unauthenticated(request: HttpRequest, exc: AuthenticationError) -> JsonResponse:
    return unauthorized()


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError) -> JsonResponse:
    return errors(exc.status_code, "request", str(exc))  # ninja's own, should one happen


UNAUTHORIZED = "No valid API key: missing, unknown or revoked. Carries `WWW-Authenticate: Bearer`."
MALFORMED = "The request as a whole is malformed (not JSON, wrong shape, unknown query parameter)."
TOO_LARGE = (
    f"The body exceeds {MAX_BODY_BYTES} bytes, or the batch exceeds {services.MAX_BATCH} "
    "items. Nothing is written."
)


def _answers(ok: type, description: str, refusals: dict[int, str]) -> dict[str, Any]:
    """An operation's `response` and `openapi_extra`: its answer, and `Errors` for
    each refusal, with what that status means for it."""
    responses: dict[int, dict[str, Any]] = {200: {"description": description}}
    responses |= {status: {"description": text} for status, text in refusals.items()}
    if 401 in responses:
        responses[401]["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}}}
    return {
        "response": {200: ok} | dict.fromkeys(refusals, Errors),
        "openapi_extra": {"responses": responses},
    }


# --- operations ------------------------------------------------------------------------------


@api.get(
    "events",
    operation_id="listEvents",
    summary="List the workspace's events, ordered by key",
    url_name="events",
    **_answers(
        EventPage,
        "A page of events.",
        {400: "A parameter is invalid or unknown; `field` names it.", 401: UNAUTHORIZED},
    ),
)
def list_events(request: HttpRequest, params: Annotated[EventListParameters, KnownQuery(...)]):
    events = events_matching(
        EventFilter(
            q=params.q,
            value_kind=params.value_kind or "",
            removed=params.removed_filter(),
            order="key",
        )
    )
    # Keyset pagination on the unique key: stable while events are being added.
    if params.cursor:
        events = events.filter(key__gt=params.cursor)
    page = list(events[: params.limit + 1])
    more = len(page) > params.limit
    page = page[: params.limit]
    return {"events": page, "next_cursor": encode_cursor(page[-1].key) if more else None}


@api.post(
    "events",
    operation_id="upsertEvents",
    summary=f"Create or update up to {services.MAX_BATCH} event definitions by key",
    url_name="events",
    **_answers(
        UpsertResponse,
        "One result per item.",
        {400: MALFORMED, 401: UNAUTHORIZED, 413: TOO_LARGE},
    ),
)
def upsert_events(
    request: HttpRequest, query: NoQuery, batch: Annotated[UpsertRequest, JsonBody(...)]
):
    """Idempotent: sending the same batch again answers `unchanged` for every item.
    Good items are stored even when others are rejected; every item gets a result, in
    the order sent. A key sent twice in one batch rejects every copy. Sending a
    removed event again marks it as existing."""
    results = services.events_upsert(
        definitions=batch.events,
        origin="api",
        via=f"API key {request.auth.name}",  # type: ignore[attr-defined]
    )
    body = {"results": [r.as_dict() for r in results], "counts": services.counts_of(results)}
    # Rendered as is, not checked against UpsertResponse on the way out: for 1,000
    # results that check is 3 ms a batch (bench/picker.py). The tests check that the
    # answers conform to the document (tests/sources/test_openapi.py).
    return api.create_response(request, body, status=200)


@api.post(
    "events:archive",
    operation_id="archiveEvents",
    summary="Mark events as removed at the source",
    url_name="events_archive",
    **_answers(
        ArchiveResponse,
        "One result per distinct key.",
        {400: MALFORMED, 401: UNAUTHORIZED, 413: TOO_LARGE},
    ),
)
def archive_events(
    request: HttpRequest, query: NoQuery, body: Annotated[ArchiveRequest, JsonBody(...)]
):
    """Archived events stay in the catalog with `removed_at` set, so their metrics can
    be shown as orphans. Unknown keys answer `not_found`; archiving twice answers
    `already_archived`."""
    # A key that could never have been stored is simply not found.
    storable = [k for k in body.keys if len(k) <= EVENT_KEY_MAX_LENGTH and is_storable(k)]
    results = {
        r.key: r
        for r in services.events_archive(
            keys=storable,
            via=f"API key {request.auth.name}",  # type: ignore[attr-defined]
        )
    }
    ordered = [
        results.get(key) or services.ArchiveResult(key, "not_found")
        for key in dict.fromkeys(body.keys)
    ]
    return {"results": [r.as_dict() for r in ordered]}


@api.get(
    "events/{event_key:key}",
    operation_id="getEvent",
    summary="One event by key",
    url_name="event",
    **_answers(
        Event,
        "The event.",
        {
            400: "An unknown query parameter was sent.",
            401: UNAUTHORIZED,
            404: "No event with this key in the key's workspace.",
        },
    ),
)
def get_event(request: HttpRequest, key: EventKeyInPath, query: NoQuery):
    event = SourceEvent.objects.filter(key=key).first()
    if event is None:
        raise ApiError(404, "key", NO_SUCH_EVENT)
    return event


@api.get(
    "openapi.json",
    auth=None,
    response=dict[str, Any],
    operation_id="getOpenApi",
    summary="This document",
    url_name="openapi",
)
def openapi_document(request: HttpRequest) -> dict[str, Any]:
    document = api.get_openapi_schema(
        path_prefix=reverse("api:openapi").removesuffix("openapi.json")
    )
    document["info"]["title"] = f"{settings.SOURCE_PRODUCT_NAME} metric connector API"
    document["servers"] = [{"url": settings.PUBLIC_URL}]
    return document


api.api_operation(["HEAD"], "openapi.json", auth=None, include_in_schema=False, url_name="openapi")(
    openapi_document
)


def refuse_other_methods(paths: list[str] | None = None) -> None:
    """Each path (all registered so far, or `paths`) answers any other method with our
    405 (ninja's is plain text), after authentication, as every other answer of an
    authenticated path. Packages that register routes later call it for theirs."""
    operations = api.default_router.path_operations
    for path in list(operations) if paths is None else paths:
        path_view = operations[path]
        allowed = [method for operation in path_view.operations for method in operation.methods]
        first = path_view.operations[0]
        with warnings.catch_warnings():
            # "{key} is in the path but not in the signature": it is not read for a 405.
            warnings.filterwarnings("ignore", r"Field\(s\) .* are in the view path", UserWarning)
            api.api_operation(
                [method for method in HTTP_METHODS if method not in allowed],
                path,
                auth=first.auth_param,
                include_in_schema=False,
                url_name=first.url_name,
            )(_method_not_allowed(", ".join(m for m in allowed if m != "HEAD")))


def _method_not_allowed(allowed: str):
    def method_not_allowed(request: HttpRequest) -> NoReturn:
        raise ApiError(405, "method", f"use {allowed}", headers={"Allow": allowed})

    return method_not_allowed


refuse_other_methods()
