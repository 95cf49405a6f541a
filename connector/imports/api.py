"""`POST /api/v1/track`: occurrences of the source product's events, for LaunchDarkly's
metric event import. On the same `/api/v1` as the catalog (one API key, one OpenAPI
document); registered from the root URLconf, since the catalog's API sits below this
package in the layers."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from django.http import HttpRequest
from pydantic import BaseModel, ConfigDict, Field, SkipValidation
from typing_extensions import TypedDict

from connector.connections.selectors import connection_of_workspace
from connector.imports.ingest import MAX_BATCH, Ready, import_settings, occurrences_ingest
from connector.sources.api import (
    MALFORMED,
    UNAUTHORIZED,
    ApiError,
    JsonBody,
    NoQuery,
    _answers,
    api,
)
from connector.sources.api_schemas import Error


class OccurrenceIn(TypedDict, total=False):
    """One occurrence. Checked item by item (each gets its own result), so a bad one is
    refused alone; these are the fields and their meaning."""

    event: Annotated[str, Field(description="The event's key in the workspace's catalog.")]
    timestamp: Annotated[
        int | str,
        Field(description="Unix milliseconds or ISO 8601 with a time zone; default: now."),
    ]
    contexts: Annotated[
        dict[str, str],
        Field(
            description='Identity name -> key, e.g. {"user_id": "u-1"}. Names map to '
            "LaunchDarkly context kinds per the workspace's settings; the keys must be "
            "exactly what its SDKs evaluate."
        ),
    ]
    value: Annotated[float, Field(description="The metric value; required for numeric events.")]
    properties: Annotated[dict[str, Any], Field(description="Flat properties of the occurrence.")]


class TrackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    occurrences: list[SkipValidation[OccurrenceIn]] = Field(min_length=1, max_length=MAX_BATCH)


class TrackItem(BaseModel):
    index: int = Field(ge=0, description="Position in the batch.")
    status: Literal["accepted", "refused", "not_mapped", "counted"] = Field(
        description="accepted: stored, to be delivered; not_mapped: valid, but no metric "
        "in LaunchDarkly measures the event, so it is only counted; counted: an event "
        "unknown to the catalog, counted per the workspace's setting; refused: see errors."
    )
    errors: list[Error] = Field(description="Why it was refused; empty otherwise.")


class TrackCounts(BaseModel):
    accepted: int = Field(ge=0)
    refused: int = Field(ge=0)
    not_mapped: int = Field(ge=0)
    counted: int = Field(ge=0)


class TrackResponse(BaseModel):
    results: list[TrackItem]
    counts: TrackCounts


NOT_READY = (
    "The workspace cannot import events yet (LaunchDarkly not connected, no project, or "
    "no environment chosen to receive them); `reason` says which. Nothing is stored."
)


@api.post(
    "track",
    operation_id="trackOccurrences",
    summary=f"Send up to {MAX_BATCH} event occurrences for LaunchDarkly's metrics",
    url_name="track",
    **_answers(
        TrackResponse,
        "One result per occurrence; answered after the accepted ones are stored.",
        {400: MALFORMED, 401: UNAUTHORIZED, 409: NOT_READY, 413: "The body is too large."},
    ),
)
def track(request: HttpRequest, query: NoQuery, batch: Annotated[TrackRequest, JsonBody(...)]):
    """Accepted occurrences are stored durably before the answer and delivered to every
    environment the workspace chose, exactly once. Occurrences of events without a
    metric in LaunchDarkly are counted as not_mapped and not sent."""
    report = occurrences_ingest(items=list(batch.occurrences), ready=_ready_or_refuse())
    counts = {"accepted": 0, "refused": 0, "not_mapped": 0, "counted": 0} | report.counts
    body = {"results": [r.as_dict() for r in report.results], "counts": counts}
    return api.create_response(request, body, status=200)


def _ready_or_refuse() -> Ready:
    connection = connection_of_workspace()
    if connection is None or not connection.is_usable:
        raise ApiError(409, "workspace", "Connect LaunchDarkly first (Settings, LaunchDarkly).")
    if not connection.project_key:
        raise ApiError(409, "workspace", "Choose the LaunchDarkly project first.")
    settings = import_settings()
    if not settings.environments:
        raise ApiError(
            409,
            "workspace",
            "Choose the LaunchDarkly environments that receive events (Event import).",
        )
    return connection, settings
