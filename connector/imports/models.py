"""Event import: occurrences of the source product's events, buffered until they are
delivered to LaunchDarkly's metric event import, and the counts people read.

The buffer is a database table, not a Redis stream: the track endpoint acknowledges
only what is durably stored, and the Redis here (and in many deployments) keeps no
journal, so an acknowledged occurrence could vanish with a restart. The database is
durable in both configurations, and its insert rate is well above the goal
(bench/import_buffer.py measures both). An occurrence is stored once, as the exact
JSON LaunchDarkly will receive; each environment reads the table with its own cursor.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from connector.sources.models import PendingUpload
from tenants.scope import TenantOwnedModel


class UnknownEvents(models.TextChoices):
    REFUSE = "refuse", "Refuse them, per item"
    COUNT = "count", "Accept and count them, without sending"


class ImportSettings(TenantOwnedModel):
    """Where a workspace's occurrences go, and how its identities become contexts."""

    # LaunchDarkly environment keys of the connected project that receive events.
    environments = models.JSONField(default=list, blank=True)
    # Source identity name -> LaunchDarkly context kind, e.g. {"user_id": "user"}.
    # A name not listed is taken to be a context kind itself.
    identity_map = models.JSONField(default=dict, blank=True)
    unknown_events = models.CharField(
        max_length=8, choices=UnknownEvents.choices, default=UnknownEvents.REFUSE
    )
    # LaunchDarkly counts an event only if it arrives while an experiment iteration
    # runs: older occurrences are refused as stale rather than sent to be ignored.
    max_age_hours = models.PositiveIntegerField(default=24)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant"], name="one_import_settings")]

    def __str__(self) -> str:
        return f"Import settings of {self.tenant_id}"


class Occurrence(TenantOwnedModel):
    """One accepted occurrence, waiting in the buffer (deleted once every environment
    has it). `body` is the LaunchDarkly event as sent, so a batch rebuilt from these
    rows is byte for byte the batch sent before."""

    id = models.BigAutoField(primary_key=True)
    event_key = models.CharField(max_length=200)
    occurred_at_ms = models.BigIntegerField()
    received_at_ms = models.BigIntegerField()
    body = models.TextField()

    class Meta:
        indexes = [models.Index(fields=["tenant", "id"], name="occurrence_by_tenant")]

    def __str__(self) -> str:
        return f"{self.event_key} #{self.pk}"


class BatchStatus(models.TextChoices):
    PENDING = "pending", "Waiting to be sent"
    RETRYING = "retrying", "Retrying"
    DELIVERED = "delivered", "Delivered"
    DEAD = "dead", "Not deliverable (dead letter)"


class ImportBatch(TenantOwnedModel):
    """A run of occurrences (ids first_id..last_id) for one environment. Its contents
    never change once cut, so its payload id, derived from them, is the same however
    often it is rebuilt: LaunchDarkly counts it once."""

    environment_key = models.CharField(max_length=140)
    project_key = models.CharField(max_length=140)
    first_id = models.BigIntegerField()
    last_id = models.BigIntegerField()
    count = models.PositiveIntegerField()
    size_bytes = models.PositiveIntegerField(default=0)
    payload_id = models.CharField(max_length=36)
    status = models.CharField(
        max_length=10, choices=BatchStatus.choices, default=BatchStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    error_message = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)
    # Per event key, receipt-to-delivery delays as counts per bucket
    # (delivery.DELAY_BUCKETS_MS): medians and p99s add up across batches.
    delays = models.JSONField(default=dict, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["tenant", "environment_key", "status"], name="batch_by_state"),
            models.Index(fields=["tenant", "delivered_at"], name="batch_by_delivery"),
            models.Index(fields=["status", "next_attempt_at"], name="batch_due"),
        ]

    def __str__(self) -> str:
        return f"Batch {self.pk} ({self.environment_key}, {self.count})"


class ImportCursor(TenantOwnedModel):
    """How far one environment's batches reach into the buffer."""

    environment_key = models.CharField(max_length=140)
    batched_through_id = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "environment_key"], name="one_cursor_per_environment"
            )
        ]

    def __str__(self) -> str:
        return f"{self.environment_key} through {self.batched_through_id}"


class ImportCount(TenantOwnedModel):
    """Counts per hour, environment and event key. Received, refused and not mapped
    are counted once, with environment ""; delivered and dead per environment."""

    hour = models.DateTimeField()
    environment_key = models.CharField(max_length=140, blank=True)
    event_key = models.CharField(max_length=200)
    received = models.PositiveBigIntegerField(default=0)
    refused = models.PositiveBigIntegerField(default=0)
    not_mapped = models.PositiveBigIntegerField(default=0)
    delivered = models.PositiveBigIntegerField(default=0)
    dead = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "hour", "environment_key", "event_key"],
                name="one_import_count_per_hour_environment_key",
            )
        ]
        indexes = [models.Index(fields=["tenant", "-hour"], name="import_count_by_hour")]

    def __str__(self) -> str:
        return f"{self.event_key} {self.hour:%Y-%m-%d %H}"


class OccurrenceUpload(PendingUpload):
    """A file of occurrences ("jsonl" or "csv"); each row holds an `occurrence`,
    checked against the catalog each time the preview is shown."""

    def __str__(self) -> str:
        return f"Occurrence upload {self.filename} ({self.pk})"
