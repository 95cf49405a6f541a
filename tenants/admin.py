"""Django admin for staff: read-mostly. Tenant-owned models are listed across
workspaces on purpose (operators see every workspace), hence `.unscoped()`."""

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from tenants.forms import AdminSignInForm
from tenants.models import AuditEvent, Invitation, Membership, Tenant, User

# The admin's sign-in goes through the same throttle as every other; this form only
# makes it say so.
admin.site.login_form = AdminSignInForm


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def get_readonly_fields(self, request, obj=None):
        # Every field shown read-only, so the page builds no form field: one for a
        # foreign key to a tenant-owned model would ask its scoped manager, which raises.
        excluded = set(self.get_exclude(request, obj) or ())
        return [f.name for f in self.model._meta.fields if f.editable and f.name not in excluded]


class UnscopedAdminMixin:
    def get_queryset(self, request):
        return self.model.objects.unscoped()


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    ordering = ["email"]
    list_display = ["email", "name", "is_staff", "is_active", "date_joined"]
    search_fields = ["email", "name"]
    list_filter = ["is_staff", "is_active"]
    fieldsets = [
        (None, {"fields": ["email", "password", "name"]}),
        ("Access", {"fields": ["is_active", "is_staff", "is_superuser"]}),
    ]
    add_fieldsets = [(None, {"fields": ["email", "password1", "password2"]})]
    readonly_fields = ["date_joined", "last_login"]


@admin.register(Tenant)
class TenantAdmin(ReadOnlyAdmin):
    list_display = ["name", "slug", "created_at"]
    search_fields = ["name", "slug"]


@admin.register(Membership)
class MembershipAdmin(ReadOnlyAdmin):
    list_display = ["user", "tenant", "role", "created_at"]
    list_filter = ["role"]
    search_fields = ["user__email", "tenant__slug"]


@admin.register(Invitation)
class InvitationAdmin(UnscopedAdminMixin, ReadOnlyAdmin):
    list_display = ["email", "tenant", "role", "created_at", "expires_at", "accepted_at"]
    exclude = ["token_hash"]


@admin.register(AuditEvent)
class AuditEventAdmin(UnscopedAdminMixin, ReadOnlyAdmin):
    list_display = ["at", "tenant", "actor", "action", "target"]
    list_filter = ["action"]
    search_fields = ["target", "tenant__slug"]
