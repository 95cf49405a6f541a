"""The workspace's catalog of source-product events, and the API keys that feed it."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from tenants.scope import TenantOwnedModel

EVENT_KEY_MAX_LENGTH = 200


class ValueKind(models.TextChoices):
    CONVERSION = "conversion", "Conversion"
    NUMERIC = "numeric", "Numeric"


class PropertyType(models.TextChoices):
    """The type of an event property, as metric filters need it: LaunchDarkly compares
    numbers as JSON numbers and strings as strings, and filters only flat values."""

    STRING = "string", "Text"
    NUMBER = "number", "Number"
    BOOLEAN = "boolean", "True/false"


class Origin(models.TextChoices):
    API = "api", "HTTP API"
    UPLOAD = "upload", "File upload"
    POSTHOG = "posthog", "PostHog"
    DEMO = "demo", "Demo data"


class SourceEvent(TenantOwnedModel):
    """An event the source product sends. `key` is the exact string it is sent with,
    and becomes the LaunchDarkly metric's `eventKey`."""

    key = models.CharField(max_length=EVENT_KEY_MAX_LENGTH)
    name = models.CharField(max_length=200, blank=True)
    description = models.TextField(blank=True)
    value_kind = models.CharField(
        max_length=16, choices=ValueKind.choices, default=ValueKind.CONVERSION
    )
    unit = models.CharField(max_length=50, blank=True, help_text="For numeric events.")
    # For numeric events: the occurrence property their value comes from, when an
    # occurrence does not send `value` itself (an adapter's guess is only a default).
    value_property = models.CharField(max_length=200, blank=True)
    # The event's flat properties and their types, {"plan": "string", "amount": "number"}:
    # what metric filters may test. Declared by the API, uploads and adapters, and
    # learned from imported occurrences.
    properties = models.JSONField(default=dict, blank=True)
    first_seen = models.DateTimeField(null=True, blank=True)
    last_seen = models.DateTimeField(null=True, blank=True)
    volume = models.BigIntegerField(default=0, help_text="Occurrences over the last 30 days.")
    origin = models.CharField(max_length=16, choices=Origin.choices, default=Origin.API)
    # Set when the source says the event no longer exists (archived through the API,
    # or gone from an adapter's catalog). Its metrics then become orphans.
    removed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "key"], name="one_event_per_key")]
        indexes = [
            models.Index(fields=["tenant", "last_seen"], name="event_last_seen"),
            models.Index(fields=["tenant", "value_kind", "key"], name="event_kind_key"),
            models.Index(fields=["tenant", "volume"], name="event_volume"),
        ]

    def __str__(self) -> str:
        return self.key

    @property
    def display_name(self) -> str:
        return self.name or self.key

    @property
    def is_removed(self) -> bool:
        return self.removed_at is not None


class ApiKey(TenantOwnedModel):
    """A per-workspace key for the connector's HTTP API. Only a hash is stored; the
    key is shown once, when it is created."""

    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12, help_text="First characters, to recognise it.")
    key_hash = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class PendingUpload(TenantOwnedModel):
    """A parsed file waiting between its preview and its application (the catalog's
    uploads and the event import's). The rows are kept parsed, so the preview and the
    apply see the same thing; what each row will do is computed each time it is shown."""

    filename = models.CharField(max_length=200)
    file_format = models.CharField(max_length=8)
    # [{"line": int, <what the row holds> | None, "errors": [{"field", "reason"}]}]
    rows = models.JSONField(default=list)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    applied_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True


class CatalogUpload(PendingUpload):
    """A catalog file ("json" or "csv"); each row holds a `definition`."""

    def __str__(self) -> str:
        return f"Upload {self.filename} ({self.pk})"
