"""Reads about workspaces and memberships. Memberships are what grant a scope, so
these run before any workspace is in scope."""

from __future__ import annotations

from django.db.models import QuerySet

from tenants.models import AuditEvent, Membership, Tenant, User


def membership_for(*, user: User, slug: str) -> Membership | None:
    """The user's membership of the workspace with this slug, or None: the caller
    answers "missing" and "not yours" the same way."""
    if not user.is_authenticated:
        return None
    return Membership.objects.select_related("tenant").filter(user=user, tenant__slug=slug).first()


def workspaces_for_user(*, user: User) -> QuerySet[Membership]:
    return Membership.objects.filter(user=user).select_related("tenant").order_by("tenant__name")


def members_of(*, tenant: Tenant) -> QuerySet[Membership]:
    return Membership.objects.filter(tenant=tenant).select_related("user").order_by("user__email")


def audit_events(*, limit: int = 200) -> QuerySet[AuditEvent]:
    """The newest audit rows of the workspace in scope."""
    return AuditEvent.objects.select_related("actor")[:limit]
