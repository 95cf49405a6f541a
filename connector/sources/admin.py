from django.contrib import admin

from connector.sources.models import ApiKey, CatalogUpload, SourceEvent
from tenants.admin import ReadOnlyAdmin, UnscopedAdminMixin


@admin.register(SourceEvent)
class SourceEventAdmin(UnscopedAdminMixin, ReadOnlyAdmin):
    list_display = ["key", "tenant", "value_kind", "unit", "origin", "last_seen", "removed_at"]
    list_filter = ["value_kind", "origin"]
    search_fields = ["key", "name", "tenant__slug"]


@admin.register(ApiKey)
class ApiKeyAdmin(UnscopedAdminMixin, ReadOnlyAdmin):
    list_display = ["name", "tenant", "prefix", "created_at", "last_used_at", "revoked_at"]
    search_fields = ["name", "prefix", "tenant__slug"]
    # The hash is not the key, but it is all an attacker needs to test guesses offline.
    exclude = ["key_hash"]


@admin.register(CatalogUpload)
class CatalogUploadAdmin(UnscopedAdminMixin, ReadOnlyAdmin):
    list_display = ["filename", "tenant", "file_format", "created_at", "applied_at"]
    search_fields = ["filename", "tenant__slug"]
    exclude = ["rows"]
