from django.http import HttpRequest

from tenants import selectors


def workspaces(request: HttpRequest) -> dict:
    """The workspaces a signed-in user can switch between, for the navigation."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {
        "my_memberships": selectors.workspaces_for_user(user=user),
        "workspace": getattr(request, "workspace", None),
        "membership": getattr(request, "membership", None),
    }
