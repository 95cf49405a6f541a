from __future__ import annotations

from connector.connections.models import LaunchDarklyConnection


def connection_of_workspace() -> LaunchDarklyConnection | None:
    """The workspace-in-scope's connection, in whatever state it is."""
    return LaunchDarklyConnection.objects.select_related("connected_by").first()
