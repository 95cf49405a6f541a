"""Django admin for operators: metric mappings, metric groups and plans, read-only and listed across
workspaces (`.unscoped()`, via tenants.admin's mixin)."""

from django.contrib import admin

from connector.metrics.models import MetricGroup, MetricMapping, MetricPlan
from tenants.admin import ReadOnlyAdmin, UnscopedAdminMixin


@admin.register(MetricMapping)
class MetricMappingAdmin(UnscopedAdminMixin, ReadOnlyAdmin):
    list_display = [
        "metric_key",
        "source_event",
        "kind",
        "project_key",
        "tenant",
        "status",
        "managed",
        "last_synced_at",
    ]
    list_filter = ["status", "kind", "managed", "tenant"]
    search_fields = ["metric_key", "source_event__key", "project_key", "tenant__slug"]
    list_select_related = ["tenant", "source_event"]
    ordering = ["-updated_at"]


@admin.register(MetricGroup)
class MetricGroupAdmin(UnscopedAdminMixin, ReadOnlyAdmin):
    list_display = [
        "key",
        "name",
        "kind",
        "project_key",
        "tenant",
        "status",
        "managed",
        "last_synced_at",
    ]
    list_filter = ["status", "kind", "managed", "tenant"]
    search_fields = ["key", "name", "project_key", "tenant__slug"]
    list_select_related = ["tenant"]
    ordering = ["-updated_at"]


@admin.register(MetricPlan)
class MetricPlanAdmin(UnscopedAdminMixin, ReadOnlyAdmin):
    list_display = ["__str__", "tenant", "created_by", "created_at", "applied_at", "sync_run"]
    list_filter = ["tenant"]
    search_fields = ["tenant__slug", "created_by__email"]
    list_select_related = ["tenant", "created_by", "sync_run"]
    ordering = ["-created_at"]
