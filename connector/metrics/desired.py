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

from connector.metrics.models import Aggregation, Analysis, MetricKind, MetricMapping

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
)


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
        body["analysisType"] = mapping.analysis
        if mapping.analysis == Analysis.PERCENTILE:
            body["percentileValue"] = mapping.percentile
    else:
        body["unitAggregationType"] = (
            Aggregation.SUM if mapping.kind == MetricKind.COUNT else Aggregation.AVERAGE
        )
    if mapping.success_criteria:
        body["successCriteria"] = mapping.success_criteria
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
    return view


def fingerprint(metric: dict[str, Any]) -> str:
    canonical = json.dumps(managed_view(metric), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def differences(desired: dict[str, Any], actual: dict[str, Any]) -> dict[str, tuple]:
    """Managed field -> (desired, actual), for the fields that differ."""
    want, have = managed_view(desired), managed_view(actual)
    return {
        field: (want[field], have[field]) for field in MANAGED_FIELDS if want[field] != have[field]
    }


def json_patch(desired: dict[str, Any], actual: dict[str, Any]) -> list[dict[str, Any]]:
    """RFC 6902 operations that turn LaunchDarkly's metric into the desired one,
    touching only the managed fields that differ."""
    want = managed_view(desired)
    operations = []
    for field in differences(desired, actual):
        value = want[field]
        if value is None:
            if actual.get(field) is not None:
                operations.append({"op": "remove", "path": f"/{field}"})
        else:
            # "add" replaces an existing member and creates a missing one (RFC 6902 §4.1),
            # where "replace" would fail on a field LaunchDarkly left out.
            operations.append({"op": "add", "path": f"/{field}", "value": value})
    return operations
