"""What a mapping means in LaunchDarkly: the MetricPost body, and its fingerprint.

Binary, count and numeric map to LaunchDarkly's custom metrics as its partner guide
describes: binary = isNumeric false + unitAggregationType average; count = isNumeric
false + sum; numeric = isNumeric true + unit + successCriteria (+ aggregation,
analysis). Only these managed fields are compared when looking for drift.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from connector.metrics.filters import event_filter
from connector.metrics.models import (
    Aggregation,
    Analysis,
    EventDefault,
    MetricKind,
    MetricMapping,
)

# Every metric the connector creates or adopts carries this tag, so people can see
# which metrics a sync may change, and so the connector never touches the others.
MANAGED_TAG = "managed-by-metric-connector"

# The fields of LaunchDarkly's metric that the connector owns.
MANAGED_FIELDS = (
    "name",
    "description",
    "kind",
    "eventKey",
    "isNumeric",
    "unit",
    "successCriteria",
    "unitAggregationType",
    "analysisType",
    "percentileValue",
    "randomizationUnits",
    "tags",
    "eventDefault",
    "filters",
)

# Units of time: a numeric metric in one of them measures a duration (a latency).
DURATION_UNITS = frozenset(
    {"ns", "us", "µs", "ms", "s", "sec", "secs", "second", "seconds", "millisecond"}
    | {"milliseconds", "msec", "min", "mins", "minute", "minutes", "h", "hr", "hour", "hours"}
)


def is_duration_unit(unit: str) -> bool:
    return unit.strip().lower() in DURATION_UNITS


def default_event_default(kind: str, unit: str) -> str:
    """The EventDefault a new mapping starts with. A unit that sent no latency event
    did not take 0 ms: counting it as 0 would drag the mean towards "fast", so numeric
    metrics of durations leave such units out; everything else counts them as 0."""
    if kind == MetricKind.NUMERIC and is_duration_unit(unit):
        return EventDefault.EXCLUDE
    return EventDefault.INCLUDE_ZERO


def metric_body(mapping: MetricMapping, *, event_key: str) -> dict[str, Any]:
    """LaunchDarkly's MetricPost for this mapping (operationId postMetric)."""
    numeric = mapping.kind == MetricKind.NUMERIC
    body: dict[str, Any] = {
        "key": mapping.metric_key,
        "name": mapping.name,
        "description": mapping.description,
        "kind": "custom",
        "eventKey": event_key,
        "isNumeric": numeric,
        "randomizationUnits": sorted(mapping.randomization_units) or ["user"],
        "tags": sorted({*mapping.tags, MANAGED_TAG}),
    }
    if numeric:
        body["unit"] = mapping.unit
        body["unitAggregationType"] = mapping.unit_aggregation
        # LaunchDarkly: whether units without events count as 0 (disabled false) or are
        # left out (true); value can only be 0. Numeric metrics only: a conversion
        # metric already counts a unit without the event as not converted.
        body["eventDefault"] = {
            "disabled": mapping.event_default == EventDefault.EXCLUDE,
            "value": 0,
        }
        body["analysisType"] = mapping.analysis
        if mapping.analysis == Analysis.PERCENTILE:
            body["percentileValue"] = mapping.percentile
    else:
        body["unitAggregationType"] = (
            Aggregation.SUM if mapping.kind == MetricKind.COUNT else Aggregation.AVERAGE
        )
    if mapping.success_criteria:
        body["successCriteria"] = mapping.success_criteria
    if filters := event_filter(mapping.filters):
        body["filters"] = filters
    if mapping.maintainer_id:
        body["maintainerId"] = mapping.maintainer_id
    return body


def managed_view(metric: dict[str, Any]) -> dict[str, Any]:
    """The managed fields of a metric body or of LaunchDarkly's MetricRep, normalised
    so that the two compare equal when LaunchDarkly holds what we asked for."""
    view = {field: metric.get(field) for field in MANAGED_FIELDS}
    view["description"] = view["description"] or ""
    view["tags"] = sorted(view["tags"] or [])
    view["randomizationUnits"] = sorted(view["randomizationUnits"] or [])
    if not view["isNumeric"]:
        view["unit"] = None
        view["analysisType"] = None
        view["percentileValue"] = None
    elif view["analysisType"] != Analysis.PERCENTILE:
        view["percentileValue"] = None
    # Compared only when it leaves units out, and for numeric metrics only: a metric
    # without eventDefault (all applied before the connector sent it) has
    # LaunchDarkly's default, disabled false, and keeps the fingerprint it had.
    event_default = view.pop("eventDefault") or {}
    if view["isNumeric"] and event_default.get("disabled"):
        view["eventDefault"] = {"disabled": True, "value": 0}
    # Likewise a metric without a filter keeps the fingerprint it had before filters.
    if not (filters := view.pop("filters")):
        return view
    view["filters"] = filters
    return view


def fingerprint(metric: dict[str, Any]) -> str:
    canonical = json.dumps(managed_view(metric), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def differences(desired: dict[str, Any], actual: dict[str, Any]) -> dict[str, tuple]:
    """Managed field -> (desired, actual), for the fields that differ."""
    want, have = managed_view(desired), managed_view(actual)
    return {  # .get: a view leaves out an eventDefault that is the default
        field: (want.get(field), have.get(field))
        for field in MANAGED_FIELDS
        if want.get(field) != have.get(field)
    }


def json_patch(desired: dict[str, Any], actual: dict[str, Any]) -> list[dict[str, Any]]:
    """RFC 6902 operations that turn LaunchDarkly's metric into the desired one,
    touching only the managed fields that differ."""
    want = managed_view(desired)
    operations = []
    for field in differences(desired, actual):
        # A default the view leaves out (eventDefault) is sent as the body spells it.
        value = want.get(field, desired.get(field))
        if value is None:
            if actual.get(field) is not None:
                operations.append({"op": "remove", "path": f"/{field}"})
        else:
            # LaunchDarkly's docs and its Terraform provider change existing fields with
            # "replace"; that fails on a member that is absent (RFC 6902 §4.3), so a
            # field LaunchDarkly left out is created with "add".
            op = "replace" if field in actual else "add"
            operations.append({"op": op, "path": f"/{field}", "value": value})
    return operations
