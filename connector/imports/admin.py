"""Django admin for operators: event import batches and settings, read-only and listed
across workspaces (`.unscoped()`, via tenants.admin's mixin). Occurrences themselves
are not listed: a buffer of millions of rows is not a page to browse."""

from django.contrib import admin

from connector.imports.models import ImportBatch, ImportSettings
from tenants.admin import ReadOnlyAdmin, UnscopedAdminMixin


@admin.register(ImportBatch)
class ImportBatchAdmin(UnscopedAdminMixin, ReadOnlyAdmin):
    list_display = [
        "id",
        "tenant",
        "environment_key",
        "status",
        "count",
        "attempts",
        "last_http_status",
        "created_at",
        "delivered_at",
    ]
    list_filter = ["status", "environment_key", "tenant"]
    search_fields = ["payload_id", "environment_key", "error_message", "tenant__slug"]
    list_select_related = ["tenant"]
    ordering = ["-id"]


@admin.register(ImportSettings)
class ImportSettingsAdmin(UnscopedAdminMixin, ReadOnlyAdmin):
    list_display = ["tenant", "environments", "unknown_events", "max_age_hours"]
    list_select_related = ["tenant"]
    ordering = ["tenant__slug"]
