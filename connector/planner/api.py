"""Metrics as code over `/api/v1/metrics/`: plan a metrics file, apply it, export the
workspace's metrics as one. The same engine as the picker and the command
(`connector.planner.document`), so a CI pipeline sees the plan the review page shows.
Registered from the root URLconf, like `/api/v1/track`: the catalog's API sits below
this package in the layers and cannot import it."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from pydantic import BaseModel, Field

from connector.inputs import whole_number
from connector.metrics.filters import OPERATORS
from connector.planner.document import (
    EVENT_FIELDS,
    GROUP_KINDS,
    KEY_PATTERN,
    MAX_DOCUMENT_BYTES,
    MAX_EVENTS,
    MAX_GROUPS,
    MAX_METRICS,
    VERSION,
    Document,
    DocumentInvalid,
    DocumentTooLarge,
    document_apply,
    document_export,
    document_parse,
    document_plan,
    document_refresh,
    plan_summary,
)
from connector.planner.plans import PlanNeedsConfirmation, PlanNotApplicable
from connector.sources.api import (
    UNAUTHORIZED,
    ApiError,
    KnownQuery,
    NoQuery,
    api,
    refuse_other_methods,
)
from connector.sources.api_schemas import Errors

YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")
YAML = "application/yaml"

# --- the file format, as JSON Schema (what document_parse checks, for the document) --------

_KEY = {"type": "string", "pattern": f"^{KEY_PATTERN.pattern}$", "maxLength": 100}
_SOME_TEXT = {"type": "string", "pattern": r"\S"}


def _text(maximum: int, *, description: str = "") -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string", "maxLength": maximum}
    return {**schema, "description": description} if description else schema


def _words(description: str, minimum: int = 0) -> dict[str, Any]:
    return {
        "type": "array",
        "items": {**_SOME_TEXT, "maxLength": 64},
        "minItems": minimum,
        "description": description,
    }


def _object(properties: dict[str, Any], required: list[str], description: str) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
        "description": description,
    }


_EVENT = _object(
    {
        "key": {
            "type": "string",
            "minLength": 1,
            "maxLength": 200,
            "pattern": r"^\S(.*\S)?$",
            "description": "The event's exact key, as the source product sends it.",
        },
        "name": _text(200),
        "kind": {"type": "string", "enum": ["conversion", "numeric"]},
        "unit": _text(50, description="Required for numeric events (USD, ms, items)."),
        "description": _text(5000),
        "value_property": _text(200, description="Numeric events: the value's property."),
        "properties": {
            "type": "object",
            "maxProperties": 100,
            "propertyNames": {"pattern": r"^[^.\[\s]([^.\[]*[^.\[\s])?$", "maxLength": 200},
            "additionalProperties": {"type": "string", "enum": ["string", "number", "boolean"]},
            "description": "The event's flat properties and their types, for filters.",
        },
    },
    ["key"],
    "An event the metrics measure; added to the catalog when it lacks it.",
)
assert tuple(_EVENT["properties"]) == EVENT_FIELDS
_CONDITION = _object(
    {
        "property": {**_SOME_TEXT, "maxLength": 200},
        "op": {
            "type": "string",
            "enum": list(OPERATORS),
        },
        "values": {
            "type": "array",
            "minItems": 1,
            "items": {"type": ["string", "number", "boolean"]},
        },
    },
    ["property", "op", "values"],
    "One condition on the event's properties; the conditions are AND-ed.",
)
_METRIC = _object(
    {
        "event": {**_SOME_TEXT, "maxLength": 200, "description": "The event's key."},
        "kind": {"type": "string", "enum": ["binary", "count", "numeric"]},
        "key": {**_KEY, "description": "Optional on import; the deterministic key otherwise."},
        "variant": {
            "type": "string",
            "maxLength": 40,
            "pattern": r"^([A-Za-z0-9][A-Za-z0-9._-]*)?$",
            "description": "Tells the event's metrics apart: p90, a filter's digest; part of "
            "the key.",
        },
        "analysis": {"type": "string", "enum": ["mean", "percentile"]},
        "percentile": {"type": "integer", "minimum": 1, "maximum": 99},
        "filter": _text(20_000, description="Conditions as text: `plan = pro and amount > 100`."),
        "filters": {"type": "array", "items": _CONDITION, "maxItems": 100},
        "name": {**_SOME_TEXT, "maxLength": 200},
        "description": _text(5000),
        "success_criteria": {
            "type": "string",
            "enum": ["HigherThanBaseline", "LowerThanBaseline", ""],
        },
        "unit_aggregation": {
            "type": "string",
            "enum": ["average", "sum"],
            "description": "Numeric metrics (a conversion's follows its kind).",
        },
        "randomization_units": _words("Context kinds the metric can be randomized by.", 1),
        "tags": _words("The metric's tags, exactly."),
        "event_default": {
            "type": "string",
            "enum": ["include_zero", "exclude"],
            "description": "Numeric metrics: what a unit without events counts as.",
        },
    },
    ["event", "kind"],
    "One metric; analysis, percentile, unit_aggregation and event_default are for numeric "
    "metrics only.",
)
_MEMBER = {
    "oneOf": [
        {**_KEY, "description": "A metric's key."},
        _object(
            {"key": _KEY, "name": {**_SOME_TEXT, "maxLength": 200}},
            ["key"],
            "A metric by key, with its name in the group.",
        ),
        _object(
            {
                "event": {**_SOME_TEXT, "maxLength": 200},
                "kind": {"type": "string", "enum": ["binary", "count", "numeric"]},
                "filter": _text(20_000),
                "variant": _text(40),
                "name": {**_SOME_TEXT, "maxLength": 200},
            },
            ["event"],
            "A metric by its event, kind and filter.",
        ),
    ]
}
_GROUP = _object(
    {
        "key": _KEY,
        "name": {**_SOME_TEXT, "maxLength": 200},
        "kind": {"type": "string", "enum": list(GROUP_KINDS)},
        "description": _text(5000),
        "tags": _words("The group's tags."),
        "tag": {**_SOME_TEXT, "maxLength": 64, "description": "A standard group of this tag."},
        "metrics": {"type": "array", "items": _MEMBER, "maxItems": 100},
    },
    ["name", "kind"],
    "A metric group: a funnel's steps in order, or a standard group's metrics.",
)
DOCUMENT_SCHEMA = _object(
    {
        "version": {"type": "integer", "enum": [VERSION]},
        "workspace": _text(100, description="Informative."),
        "project": _text(140, description="Informative: the connected project is used."),
        "conventions": _object(
            {"name_template": _text(200), "tags": _words("Tags of every metric.")},
            [],
            "Informative on import: the workspace's conventions are used.",
        ),
        "events": {"type": "array", "items": _EVENT, "maxItems": MAX_EVENTS},
        "metrics": {"type": "array", "items": _METRIC, "maxItems": MAX_METRICS},
        "groups": {"type": "array", "items": _GROUP, "maxItems": MAX_GROUPS},
    },
    ["version"],
    "A metrics file, version 1 (docs/metrics-as-code.md). The whole truth: managed metrics "
    "and groups it does not name are archived or deleted.",
)


# --- answers ----------------------------------------------------------------------------


class Change(BaseModel):
    field: str
    was: Any = Field(description="LaunchDarkly's value (or the one last applied).")
    becomes: Any


class MetricRow(BaseModel):
    action: Literal[
        "create", "update", "restore", "adopt", "by hand", "archive", "unchanged", "blocked"
    ]
    key: str
    name: str
    kind: Literal["binary", "count", "numeric"]
    event: str
    filter: str = Field(description="The conditions as text; empty for none.")
    reason: str
    changes: list[Change]


class GroupRow(BaseModel):
    action: Literal["create", "update", "delete", "unchanged", "blocked"]
    key: str
    name: str
    kind: Literal["funnel", "standard"]
    reason: str
    changes: list[Change]


class Counts(BaseModel):
    metrics: dict[str, int]
    groups: dict[str, int]


class PlanResponse(BaseModel):
    project: str
    problem: str = Field(description="Why nothing can be applied (not connected...); or empty.")
    note: str = Field(
        description="Set when LaunchDarkly could not be read just now: the plan then shows "
        "what the last resync saw."
    )
    metrics: list[MetricRow]
    groups: list[GroupRow]
    counts: Counts
    events_to_add: list[str] = Field(description="Events the catalog lacks: added on apply.")
    blocked: list[str] = Field(
        description="Why something the file asks cannot be done; empty when all can go."
    )


class ApplyResponse(BaseModel):
    plan_id: int = Field(description="The saved plan, shown by the review page.")
    run_id: int | None = Field(description="The sync run; null when nothing needed sending.")
    review_url: str
    run_url: str | None
    counts: Counts
    events_added: list[str]
    blocked: list[str] = Field(description="Left out of the run, each with why.")
    note: str = Field(description="Set when LaunchDarkly could not be read first.")


class ApplyParameters(BaseModel):
    confirm_in_use: Literal["false", "true"] = Field(
        "false",
        description="true: change metrics that experiments use (else 409). A JSON body may "
        "say it too.",
    )


_BODY = {
    "required": True,
    "content": {
        YAML: {"schema": DOCUMENT_SCHEMA},
        "application/json": {
            "schema": _object(
                {
                    "document": {"type": "string", "description": "The file's YAML text."},
                    "confirm_in_use": {"type": "boolean", "default": False},
                },
                ["document"],
                "The file's text in JSON.",
            )
        },
    },
}
TOO_LARGE = f"The file exceeds {MAX_DOCUMENT_BYTES} bytes. Nothing is written."
INVALID = (
    "The file has problems, each with its place (`metrics[3].kind`) as `field`. Nothing is written."
)
UNSUPPORTED = "The body is neither YAML (application/yaml) nor JSON."
NOT_APPLICABLE = (
    "The plan cannot be applied: LaunchDarkly not connected, no project, or metrics in use "
    "by experiments without `confirm_in_use` (`field` says which). Nothing is written."
)


def _responses(ok: int, model: Any, description: str, refusals: dict[int, str]) -> dict:
    return {
        "response": {ok: model} | dict.fromkeys(refusals, Errors),
        "openapi_extra": {
            "requestBody": _BODY,
            "responses": {ok: {"description": description}}
            | {status: {"description": text} for status, text in refusals.items()},
        },
    }


# --- reading the body -----------------------------------------------------------------------


def _body(request: HttpRequest) -> tuple[str | bytes, bool]:
    """The file's text, and the JSON body's `confirm_in_use`."""
    kind = (request.content_type or "").lower()
    if kind not in (*YAML_TYPES, "application/json"):
        raise ApiError(415, "Content-Type", f"send {YAML} (the file) or application/json")
    try:
        length = whole_number(request.META.get("CONTENT_LENGTH") or "0", maximum=2**63 - 1)
    except ValueError:
        raise ApiError(400, "body", "Content-Length is not a number") from None
    # JSON escapes a file's line breaks and quotes: room for that on top of the file.
    limit = MAX_DOCUMENT_BYTES if kind in YAML_TYPES else 2 * MAX_DOCUMENT_BYTES
    if length > limit:
        raise ApiError(413, "body", TOO_LARGE)
    body = request.read(limit + 1)
    if len(body) > limit:
        raise ApiError(413, "body", TOO_LARGE)
    if kind in YAML_TYPES:
        return body, False
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise ApiError(
            400, "body", 'not valid JSON; send {"document": "<the YAML text>"}'
        ) from None
    if not isinstance(data, dict):
        raise ApiError(400, "body", 'send a JSON object: {"document": "<the YAML text>"}')
    for name in data:
        if name not in ("document", "confirm_in_use"):
            raise ApiError(
                400, str(name), 'unknown field; the body holds "document", "confirm_in_use"'
            )
    if not isinstance(data.get("document"), str):
        raise ApiError(400, "document", "is required: the file's YAML text")
    confirm = data.get("confirm_in_use", False)
    if not isinstance(confirm, bool):
        raise ApiError(400, "confirm_in_use", "must be true or false")
    return data["document"], confirm


def _document(text: str | bytes) -> Document:
    try:
        return document_parse(text)
    except DocumentTooLarge as exc:
        raise _invalid(exc, 413) from None
    except DocumentInvalid as exc:
        raise _invalid(exc, 400) from None


class _Invalid(Exception):
    def __init__(self, errors: list[dict[str, str]], status: int) -> None:
        super().__init__(errors)
        self.errors, self.status = errors, status


def _invalid(exc: DocumentInvalid, status: int) -> _Invalid:
    return _Invalid([error.as_dict() for error in exc.errors], status)


@api.exception_handler(_Invalid)
def _answer_invalid(request: HttpRequest, exc: _Invalid) -> HttpResponse:
    return api.create_response(request, {"errors": exc.errors}, status=exc.status)


# --- operations -------------------------------------------------------------------------------


@api.post(
    "metrics/plan",
    operation_id="planMetrics",
    summary="The plan of a metrics file: what applying it would do to each metric and group",
    url_name="metrics_plan",
    **_responses(
        200,
        PlanResponse,
        "The plan, as the review page shows it. Nothing is written.",
        {400: INVALID, 401: UNAUTHORIZED, 413: TOO_LARGE, 415: UNSUPPORTED},
    ),
)
def plan_metrics(request: HttpRequest, query: NoQuery):
    """The file as YAML (`application/yaml`), or as `{"document": "<YAML>"}`. Managed
    metrics the file does not name are planned `archive`, groups `delete`."""
    text, _ = _body(request)
    document = _document(text)
    note = document_refresh(document)  # as the review page reads LaunchDarkly first
    try:
        plan, to_add = document_plan(document)
    except DocumentInvalid as exc:
        raise _invalid(exc, 400) from None
    return plan_summary(plan, to_add, note=note)


@api.post(
    "metrics/apply",
    operation_id="applyMetrics",
    summary="Apply a metrics file: add its missing events, save its plan and start the sync",
    url_name="metrics_apply",
    **_responses(
        202,
        ApplyResponse,
        "The plan is saved and applied; workers send it (follow `run_url`).",
        {400: INVALID, 401: UNAUTHORIZED, 409: NOT_APPLICABLE, 413: TOO_LARGE, 415: UNSUPPORTED},
    ),
)
def apply_metrics(request: HttpRequest, query: Annotated[ApplyParameters, KnownQuery(...)]):
    """All or nothing: a file with problems, or a plan that cannot be applied, writes
    nothing. Rows the plan blocks are left out and listed in `blocked`. The audit log
    records no user (an API key acts for none)."""
    text, confirm = _body(request)
    document = _document(text)
    confirm = confirm or query.confirm_in_use == "true"
    note = document_refresh(document)
    try:
        preview, to_add = document_plan(document)
        plan, run = document_apply(
            document=document,
            actor=None,
            confirm_in_use=confirm,
            via=f"API key {request.auth.name}",  # type: ignore[attr-defined]
        )
    except DocumentInvalid as exc:
        raise _invalid(exc, 400) from None
    except PlanNeedsConfirmation as exc:
        raise ApiError(409, "confirm_in_use", str(exc)) from None
    except PlanNotApplicable as exc:
        raise ApiError(409, "workspace", str(exc)) from None
    summary = plan_summary(preview, to_add, note=note)
    slug = plan.tenant.slug
    body = {
        "plan_id": plan.pk,
        "run_id": run.pk if run else None,
        "review_url": request.build_absolute_uri(
            reverse("planner:plan", kwargs={"slug": slug, "plan_id": plan.pk})
        ),
        "run_url": request.build_absolute_uri(
            reverse("sync:run", kwargs={"slug": slug, "run_id": run.pk})
        )
        if run
        else None,
        "counts": summary["counts"],
        "events_added": summary["events_to_add"],
        "blocked": summary["blocked"],
        "note": note,
    }
    return api.create_response(request, body, status=202)


@api.get(
    "metrics/export",
    operation_id="exportMetrics",
    summary="The workspace's metrics, groups and their events as a metrics file",
    url_name="metrics_export",
    response={400: Errors, 401: Errors},
    openapi_extra={
        "responses": {
            200: {
                "description": "The file (YAML); the same workspace exports the same bytes.",
                "content": {YAML: {"schema": DOCUMENT_SCHEMA}},
            },
            400: {"description": "An unknown query parameter was sent."},
            401: {"description": UNAUTHORIZED},
        }
    },
)
def export_metrics(request: HttpRequest, query: NoQuery) -> HttpResponse:
    response = HttpResponse(document_export(), content_type=f"{YAML}; charset=utf-8")
    response["Content-Disposition"] = 'inline; filename="metrics.yaml"'
    return response


refuse_other_methods(["metrics/plan", "metrics/apply", "metrics/export"])

__all__ = ["DOCUMENT_SCHEMA"]
