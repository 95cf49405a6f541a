"""Sync runs and their items: the record of sending desired metrics to LaunchDarkly."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from connector.metrics.models import MetricGroup, MetricMapping
from tenants.scope import TenantOwnedModel


class Trigger(models.TextChoices):
    PLAN = "plan", "Plan applied"
    RESYNC = "resync", "Periodic resync"
    RETRY = "retry", "Retry"
    UPDATE = "update", "Mapping changed"


class Action(models.TextChoices):
    CREATE = "create", "Create"
    UPDATE = "update", "Update"
    ADOPT = "adopt", "Adopt existing"
    ARCHIVE = "archive", "Archive"
    RESTORE = "restore", "Restore (un-archive)"
    DELETE = "delete", "Delete"
    NONE = "none", "Nothing to do"


class ItemStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    QUEUED = "queued", "Queued"
    IN_FLIGHT = "in_flight", "In flight"
    WAITING = "waiting", "Waiting for rate limit"
    RETRYING = "retrying", "Retrying"
    PAUSED = "paused", "Paused (needs reconnect)"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"
    CONFLICT = "conflict", "Conflict"
    CANCELLED = "cancelled", "Cancelled"


FINISHED_STATUSES = (ItemStatus.DONE, ItemStatus.FAILED, ItemStatus.CONFLICT, ItemStatus.CANCELLED)
# Ready to be queued once their next_attempt_at (if any) has come.
READY_STATUSES = (ItemStatus.PENDING, ItemStatus.RETRYING, ItemStatus.WAITING)
ACTIVE_STATUSES = (ItemStatus.QUEUED, ItemStatus.IN_FLIGHT)


class SyncRun(TenantOwnedModel):
    # Set once, when a run that finished with failures has been reported by email.
    failure_notified_at = models.DateTimeField(null=True, blank=True)
    trigger = models.CharField(max_length=10, choices=Trigger.choices)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    total = models.PositiveIntegerField(default=0)
    # Where the run was planned to land: its items are only ever sent there, never to
    # another account, instance or project the connection points at later.
    instance = models.CharField(max_length=16, blank=True)
    account_id = models.CharField(max_length=64, blank=True)
    project_key = models.CharField(max_length=140, blank=True)

    # Not stored: set after commit by sync_run_start, False when the task queue could
    # not be reached (the sweeper starts the run once it is back), for pages to say so.
    queue_reached: bool | None = None

    class Meta:
        indexes = [models.Index(fields=["tenant", "-started_at"], name="run_by_time")]

    def __str__(self) -> str:
        return f"Run {self.pk} ({self.trigger})"

    @property
    def duration_s(self) -> int | None:
        if self.finished_at is None:
            return None
        return round((self.finished_at - self.started_at).total_seconds())


class SyncItem(TenantOwnedModel):
    """One object brought to LaunchDarkly: a metric (`mapping`) or a metric group
    (`group`), never both."""

    run = models.ForeignKey(SyncRun, on_delete=models.CASCADE, related_name="items")
    mapping = models.ForeignKey(
        MetricMapping, on_delete=models.CASCADE, related_name="sync_items", null=True, blank=True
    )
    group = models.ForeignKey(
        MetricGroup, on_delete=models.CASCADE, related_name="sync_items", null=True, blank=True
    )
    action = models.CharField(max_length=10, choices=Action.choices)
    status = models.CharField(max_length=10, choices=ItemStatus.choices, default=ItemStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    claimed_at = models.DateTimeField(null=True, blank=True)
    # Changes with every claim: only the worker holding the current claim may record
    # an outcome (a worker whose claim was taken over finds it changed).
    claim_token = models.CharField(max_length=32, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    last_http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    error_code = models.CharField(max_length=64, blank=True)
    error_message = models.TextField(blank=True)
    note = models.CharField(max_length=300, blank=True, help_text="What the last success did.")

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(mapping__isnull=False, group__isnull=True)
                | models.Q(mapping__isnull=True, group__isnull=False),
                name="item_is_a_metric_or_a_group",
            )
        ]
        indexes = [
            models.Index(fields=["run", "status"], name="item_run_status"),
            models.Index(fields=["status", "claimed_at"], name="item_status_claimed"),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.target_key} ({self.status})"

    @property
    def target_key(self) -> str:
        """The key of the metric or metric group the item brings to LaunchDarkly."""
        if self.mapping is not None:
            return self.mapping.metric_key
        return self.group.key if self.group is not None else ""

    @property
    def is_group(self) -> bool:
        return self.group_id is not None


class RemoteMetric(TenantOwnedModel):
    """What LaunchDarkly last told us about a metric in the connected project: the
    snapshot the plan reads (to offer adopting an existing metric) and the resync
    compares against. Refreshed by every resync; never the source of truth."""

    project_key = models.CharField(max_length=140)
    key = models.CharField(max_length=100)
    fingerprint = models.CharField(max_length=64)
    version = models.IntegerField(null=True, blank=True)
    managed_tag = models.BooleanField(default=False)
    name = models.CharField(max_length=200, blank=True)
    # The event it measures: a metric made by hand on one of our events is offered
    # for adoption instead of silently getting a twin (getMetrics filters eventKeys).
    event_key = models.CharField(max_length=200, blank=True)
    archived = models.BooleanField(default=False)
    maintainer_id = models.CharField(max_length=64, blank=True)
    # Its use, as getMetrics says with expand=experimentCount (None: not told). Active
    # use (experiments, guarded rollouts, metric groups) blocks archiving.
    experiment_count = models.IntegerField(null=True, blank=True)
    active_use = models.IntegerField(default=0)
    seen_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "project_key", "key"], name="one_remote_metric_per_key"
            )
        ]
        indexes = [
            models.Index(fields=["tenant", "project_key", "event_key"], name="remote_by_event")
        ]

    def __str__(self) -> str:
        return self.key


class DriftPolicy(models.TextChoices):
    REPORT = "report", "Report it"
    REPAIR = "repair", "Repair it (set LaunchDarkly back to the mapping)"


class OrphanPolicy(models.TextChoices):
    # LaunchDarkly recommends archiving: history stays, and only archived metrics that
    # no experiment or guarded rollout ever used can be deleted at all.
    ARCHIVE = "archive", "Archive the metric in LaunchDarkly (restored if the event returns)"
    KEEP = "keep", "Keep the metric in LaunchDarkly"
    DELETE = "delete", "Delete it where LaunchDarkly allows (never used), else archive it"


class NotifyWho(models.TextChoices):
    OWNERS_AND_ADMINS = "owners_admins", "Owners and admins"
    OWNERS = "owners", "Owners only"
    NOBODY = "nobody", "Nobody"


class SyncSettings(TenantOwnedModel):
    """How a workspace wants drift and orphans handled, and who hears about trouble."""

    drift_policy = models.CharField(
        max_length=10, choices=DriftPolicy.choices, default=DriftPolicy.REPORT
    )
    orphan_policy = models.CharField(
        max_length=10, choices=OrphanPolicy.choices, default=OrphanPolicy.ARCHIVE
    )
    # With a service token, metrics get no maintainer unless one is named here.
    maintainer_id = models.CharField(
        max_length=64,
        blank=True,
        help_text="A LaunchDarkly member id. Empty: the member whose token connects.",
    )
    notify = models.CharField(
        max_length=16, choices=NotifyWho.choices, default=NotifyWho.OWNERS_AND_ADMINS
    )
    last_resync_at = models.DateTimeField(null=True, blank=True)
    last_resync_summary = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant"], name="one_sync_settings")]

    def __str__(self) -> str:
        return f"Sync settings of {self.tenant_id}"
