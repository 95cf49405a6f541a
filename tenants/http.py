"""Typed requests: what authentication and `workspace_view` put on a request, so views
say which they get and the type checker holds them to it."""

from __future__ import annotations

from django.http import HttpRequest

from tenants.models import Membership, Tenant, User


class AuthenticatedRequest(HttpRequest):
    """A request past `login_required`: its user is a signed-in User."""

    user: User  # type: ignore[assignment]


class WorkspaceRequest(AuthenticatedRequest):
    """A request past `workspace_view`: the workspace from the URL, and the user's
    membership in it (the role already checked)."""

    workspace: Tenant
    membership: Membership
