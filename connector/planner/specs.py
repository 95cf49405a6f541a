"""Which metrics a plan wants of one event: its specs.

The picker makes them from its choices (one metric per event, or a metric set, plus
one filtered metric per filter written for the event); a metrics-as-code file names
them one by one. Either way each spec becomes one row of the plan, so the UI and the
file give the same plan for the same change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from connector.metrics.filters import Condition, FilterRefused, filter_digest, normalised
from connector.metrics.filters import parse_conditions as _parse
from connector.metrics.models import Analysis, MetricKind
from connector.sources.models import SourceEvent, ValueKind

# The percentile of a metric set's second numeric metric.
SET_PERCENTILE = 90

# Fields a metrics-as-code file may set on one metric, over the plan's choices.
OVERRIDABLE = (
    "name",
    "description",
    "success_criteria",
    "unit_aggregation",
    "randomization_units",
    "tags",
    "event_default",
)


@dataclass(frozen=True)
class MetricSpec:
    """One metric wanted of an event. `variant` tells it from the event's other
    metrics (and is part of its key): "" for the plain one, "p90" for a set's
    percentile, the filter's digest for a filtered one, or both."""

    kind: str
    set_part: str = ""
    analysis: str = ""  # "" takes the plan's choice
    percentile: int | None = None
    filter_text: str = ""  # conditions as people write them
    conditions: tuple[dict[str, Any], ...] | None = None  # or already structured
    overrides: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    key: str = ""  # a file's explicit metric key
    variant: str = ""  # a file's explicit variant
    in_set: bool = False  # one of a metric set: its name says which

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MetricSpec:
        filters = data.get("filters")
        return cls(
            kind=str(data["kind"]),
            analysis=str(data.get("analysis") or ""),
            percentile=data.get("percentile"),
            filter_text=str(data.get("filter") or ""),
            conditions=tuple(filters) if filters else None,
            overrides={name: data[name] for name in OVERRIDABLE if name in data},
            key=str(data.get("key") or ""),
            variant=str(data.get("variant") or ""),
        )

    @property
    def has_filter(self) -> bool:
        return bool(self.filter_text.strip() or self.conditions)

    def checked_conditions(self, event: SourceEvent) -> list[Condition]:
        """The spec's conditions checked against the event's properties; FilterRefused
        says why LaunchDarkly could not express them exactly."""
        properties = event.properties or {}
        if self.conditions:
            return normalised(list(self.conditions), properties)
        if self.filter_text.strip():
            return _parse(self.filter_text, properties)
        return []

    def variant_for(self, conditions: list[Condition]) -> str:
        if self.variant:
            return self.variant
        return "-".join(part for part in (self.set_part, filter_digest(conditions)) if part)


def base_specs(
    event: SourceEvent, *, kind: str, metric_set: bool, filter_text: str = ""
) -> list[MetricSpec]:
    """The picker's metrics for an event: `kind`, or with `metric_set` a conversion
    rate and a count (conversion events) or a mean and a p90 (numeric events)."""
    if not metric_set:
        return [MetricSpec(kind=kind, filter_text=filter_text)]
    if event.value_kind == ValueKind.NUMERIC:
        return [
            MetricSpec(
                kind=MetricKind.NUMERIC,
                analysis=Analysis.MEAN,
                filter_text=filter_text,
                in_set=True,
            ),
            MetricSpec(
                kind=MetricKind.NUMERIC,
                set_part=f"p{SET_PERCENTILE}",
                analysis=Analysis.PERCENTILE,
                percentile=SET_PERCENTILE,
                filter_text=filter_text,
                in_set=True,
            ),
        ]
    return [
        MetricSpec(kind=MetricKind.BINARY, filter_text=filter_text, in_set=True),
        MetricSpec(kind=MetricKind.COUNT, filter_text=filter_text, in_set=True),
    ]


def spec_label(spec: MetricSpec, kind: str) -> str:
    """What tells the metrics of one set apart in their names."""
    if spec.set_part:
        return spec.set_part
    return {
        MetricKind.BINARY: "conversion rate",
        MetricKind.COUNT: "count",
        MetricKind.NUMERIC: "mean",
    }[MetricKind(kind)]


__all__ = ["SET_PERCENTILE", "FilterRefused", "MetricSpec", "base_specs", "spec_label"]
