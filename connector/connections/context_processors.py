from django.http import HttpRequest

from connector.connections.models import Status
from connector.connections.selectors import connection_of_workspace
from tenants.scope import tenant_scope


def launchdarkly_connection(request: HttpRequest) -> dict:
    """On workspace pages: the connection, so every page can show the Reconnect banner."""
    workspace = getattr(request, "workspace", None)
    if workspace is None:
        return {}
    # Error pages render after the view's scope has closed; the membership was
    # checked when request.workspace was set, so enter that workspace's scope again.
    with tenant_scope(workspace):
        connection = connection_of_workspace()
    return {
        "ld_connection": connection,
        "ld_needs_reauth": connection is not None and connection.status == Status.NEEDS_REAUTH,
    }
