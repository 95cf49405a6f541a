"""The desired metrics: one per source event and kind, and the plans that create them."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from connector.sources.models import SourceEvent
from tenants.scope import TenantOwnedModel


class MetricKind(models.TextChoices):
    BINARY = "binary", "Conversion (binary)"
    COUNT = "count", "Conversion (count)"
    NUMERIC = "numeric", "Numeric"


class SuccessCriteria(models.TextChoices):
    HIGHER = "HigherThanBaseline", "Higher than baseline"
    LOWER = "LowerThanBaseline", "Lower than baseline"


class Aggregation(models.TextChoices):
    AVERAGE = "average", "Average"
    SUM = "sum", "Sum"


class Analysis(models.TextChoices):
    MEAN = "mean", "Mean"
    PERCENTILE = "percentile", "Percentile"


class EventDefault(models.TextChoices):
    """LaunchDarkly's eventDefault of a numeric metric: what a unit that sent no event
    counts as (MetricPost `eventDefault {disabled, value}`, value only ever 0)."""

    INCLUDE_ZERO = "include_zero", "Units without events count as 0"
    EXCLUDE = "exclude", "Units without events are left out"


class MappingStatus(models.TextChoices):
    PENDING = "pending", "Waiting to sync"
    SYNCED = "synced", "In LaunchDarkly"
    FAILED = "failed", "Failed"
    CONFLICT = "conflict", "Conflict"
    ORPHANED = "orphaned", "Orphaned (event removed at source)"
    DRIFTED = "drifted", "Changed in LaunchDarkly"
    ARCHIVED = "archived", "Archived in LaunchDarkly"
    DELETED = "deleted", "Deleted"


class SyncedObject(TenantOwnedModel):
    """What the sync engine keeps of an object it brings to LaunchDarkly (a metric, a
    metric group): `desired_hash` fingerprints the fields we manage, `applied_hash` what
    LaunchDarkly last confirmed; they differ while an update is due."""

    desired_hash = models.CharField(max_length=64)
    applied_hash = models.CharField(max_length=64, blank=True)
    ld_version = models.IntegerField(null=True, blank=True)
    # Whether the connector created this object or adopted it: only such objects may
    # ever be changed or deleted by the connector.
    managed = models.BooleanField(default=False)
    status = models.CharField(
        max_length=10, choices=MappingStatus.choices, default=MappingStatus.PENDING
    )
    status_detail = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    last_synced_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True


class MetricMapping(SyncedObject):
    """The metric that should exist in LaunchDarkly for one event, kind and variant.

    The variant tells apart the metrics one event feeds: "" for the plain metric,
    "p90" for a metric set's percentile, and the digest of its filter ("f1a2b3c4d")
    for a filtered one; it is part of the deterministic key (keys.metric_key_for).

    `desired_hash` fingerprints the fields we manage; `applied_hash` is the
    fingerprint LaunchDarkly last confirmed. They differ while an update is due."""

    source_event = models.ForeignKey(SourceEvent, on_delete=models.PROTECT, related_name="mappings")
    kind = models.CharField(max_length=10, choices=MetricKind.choices)
    variant = models.CharField(max_length=40, blank=True, default="")
    # The conditions on the event's properties, AND-ed, in our own form
    # ([{"property", "op", "values"}]); desired.metric_body turns them into LaunchDarkly's
    # EventFilter, and metrics.filters refuses what it cannot express exactly.
    filters = models.JSONField(default=list, blank=True)
    project_key = models.CharField(max_length=140)
    metric_key = models.CharField(max_length=100)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    unit = models.CharField(max_length=50, blank=True)
    success_criteria = models.CharField(max_length=20, choices=SuccessCriteria.choices, blank=True)
    unit_aggregation = models.CharField(
        max_length=10, choices=Aggregation.choices, default=Aggregation.AVERAGE
    )
    analysis = models.CharField(max_length=12, choices=Analysis.choices, default=Analysis.MEAN)
    percentile = models.PositiveSmallIntegerField(null=True, blank=True)
    randomization_units = models.JSONField(default=list)
    tags = models.JSONField(default=list)
    maintainer_id = models.CharField(max_length=64, blank=True)
    # Numeric metrics only: LaunchDarkly ignores it for conversions (see metric_body).
    event_default = models.CharField(
        max_length=12, choices=EventDefault.choices, default=EventDefault.INCLUDE_ZERO
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "source_event", "kind", "variant"],
                name="one_metric_per_event_kind_variant",
            ),
            models.UniqueConstraint(
                fields=["tenant", "project_key", "metric_key"], name="metric_key_unique_in_project"
            ),
        ]
        indexes = [models.Index(fields=["tenant", "status"], name="mapping_status")]

    def __str__(self) -> str:
        return self.metric_key


class GroupKind(models.TextChoices):
    FUNNEL = "funnel", "Funnel"
    STANDARD = "standard", "Standard"


class MetricGroup(SyncedObject):
    """A metric group that should exist in LaunchDarkly (its beta metric-group API):
    an ordered funnel of steps, or a standard set of metrics, by metric key.

    Like a mapping, `desired_hash` fingerprints what we manage and `applied_hash` what
    LaunchDarkly last confirmed; `metrics` is [{"key", "nameInGroup"}], in order."""

    project_key = models.CharField(max_length=140)
    key = models.CharField(max_length=100)
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=10, choices=GroupKind.choices)
    description = models.TextField(blank=True)
    tags = models.JSONField(default=list)
    maintainer_id = models.CharField(max_length=64, blank=True)
    metrics = models.JSONField(default=list)
    # A standard group made from a tag: its members follow the tag at each plan.
    from_tag = models.CharField(max_length=64, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "project_key", "key"], name="group_key_unique_in_project"
            ),
        ]

    def __str__(self) -> str:
        return self.key

    @property
    def metric_keys(self) -> list[str]:
        return [member["key"] for member in self.metrics]


class MetricConventions(TenantOwnedModel):
    """How a workspace names and tags every metric and group the connector makes,
    whichever way they are planned (picker, metric sets, funnels, files)."""

    # Placeholders: {name} {event} {kind} {filter} {variant} {description}.
    name_template = models.CharField(max_length=200, default="{name}")
    tags = models.JSONField(default=list, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant"], name="one_metric_conventions")]

    def __str__(self) -> str:
        return f"Metric conventions of {self.tenant_id}"


class MetricPlan(TenantOwnedModel):
    """A selection of events and metric settings, saved between the picker and the
    review. It holds no result: the plan is computed afresh when shown and applied."""

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    # Either {"filter": {...}} (every event matching it) or {"ids": [...]}.
    selection = models.JSONField()
    choices = models.JSONField()
    applied_at = models.DateTimeField(null=True, blank=True)
    sync_run = models.ForeignKey(
        "sync.SyncRun", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    def __str__(self) -> str:
        return f"Plan {self.pk}"
