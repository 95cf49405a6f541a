"""Reads for the event picker: the catalog with what is already mapped."""

from __future__ import annotations

from typing import Any

from django.db.models import Exists, OuterRef, Prefetch, QuerySet

from connector.metrics.models import MetricConventions, MetricMapping
from connector.sources.models import SourceEvent
from connector.sources.selectors import EventFilter, events_matching


def picker_events(
    *, filter: EventFilter, mapped: bool | None = None, with_mappings: bool = False
) -> QuerySet[SourceEvent]:
    """The events matching `filter`, each annotated with `is_mapped` (it has a metric
    mapping). `mapped` keeps only mapped (True) or unmapped (False) events.

    One `Exists` subquery, so the number of queries does not grow with the catalog;
    `with_mappings` adds one prefetch query for the page's mappings."""
    events = events_matching(filter).annotate(
        is_mapped=Exists(MetricMapping.objects.filter(source_event=OuterRef("pk")))
    )
    if mapped is not None:
        events = events.filter(is_mapped=mapped)
    if with_mappings:
        events = events.prefetch_related(
            Prefetch(
                "mappings",
                queryset=MetricMapping.objects.only(
                    "id", "source_event_id", "kind", "metric_key", "status"
                ).order_by("kind"),
            )
        )
    return events


def events_of_selection(selection: dict[str, Any]) -> QuerySet[SourceEvent]:
    """The events a plan's selection names: {"ids": [...]} or {"filter": {...}}, where
    the filter holds EventFilter's fields plus the picker's `mapped`."""
    if "ids" in selection:
        return SourceEvent.objects.filter(pk__in=selection["ids"]).order_by("key")
    fields = dict(selection["filter"])
    mapped = fields.pop("mapped", None)
    return picker_events(filter=EventFilter(**fields), mapped=mapped)


def metric_conventions() -> MetricConventions:
    """The workspace's naming and tag conventions (the defaults until someone sets them)."""
    return MetricConventions.objects.filter().first() or MetricConventions()
