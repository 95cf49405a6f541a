"""Django admin for operators: sync runs, their items and the LaunchDarkly snapshot,
read-only and listed across workspaces (`.unscoped()`, via tenants.admin's mixin)."""

from django.contrib import admin

from connector.sync.models import RemoteMetric, SyncItem, SyncRun
from tenants.admin import ReadOnlyAdmin, UnscopedAdminMixin


@admin.register(SyncRun)
class SyncRunAdmin(UnscopedAdminMixin, ReadOnlyAdmin):
    list_display = [
        "__str__",
        "tenant",
        "started_by",
        "started_at",
        "finished_at",
        "total",
        "project_key",
    ]
    # finished_at's filter offers "No date": the runs still going.
    list_filter = ["trigger", "finished_at", "tenant"]
    search_fields = ["project_key", "account_id", "tenant__slug"]
    list_select_related = ["tenant", "started_by"]
    ordering = ["-started_at"]


@admin.register(SyncItem)
class SyncItemAdmin(UnscopedAdminMixin, ReadOnlyAdmin):
    list_display = [
        "id",
        "run",
        "mapping",
        "group",
        "tenant",
        "action",
        "status",
        "attempts",
        "last_http_status",
        "error_code",
        "finished_at",
    ]
    list_filter = ["status", "action", "tenant"]
    search_fields = [
        "mapping__metric_key",
        "mapping__source_event__key",
        "group__key",
        "error_code",
        "tenant__slug",
    ]
    list_select_related = ["tenant", "run", "mapping", "group"]
    ordering = ["-id"]


@admin.register(RemoteMetric)
class RemoteMetricAdmin(UnscopedAdminMixin, ReadOnlyAdmin):
    list_display = ["key", "project_key", "tenant", "version", "managed_tag", "seen_at"]
    list_filter = ["managed_tag", "tenant"]
    search_fields = ["key", "project_key", "tenant__slug"]
    list_select_related = ["tenant"]
    ordering = ["-seen_at"]
