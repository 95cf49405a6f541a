from django.contrib import admin

from connector.connections.models import LaunchDarklyConnection
from tenants.admin import ReadOnlyAdmin, UnscopedAdminMixin


@admin.register(LaunchDarklyConnection)
class LaunchDarklyConnectionAdmin(UnscopedAdminMixin, ReadOnlyAdmin):
    list_display = ["tenant", "instance", "auth_kind", "status", "account_id", "project_key"]
    list_filter = ["status", "instance", "auth_kind"]
    search_fields = ["tenant__slug", "account_id", "project_key"]
    # Ciphertext is useless to an operator and has no business on a page.
    exclude = ["access_token_encrypted", "refresh_token_encrypted"]
