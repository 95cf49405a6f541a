"""The overview's first steps: connect LaunchDarkly, choose the project."""

from django.dispatch import receiver
from django.urls import reverse

from connector.connections.models import LaunchDarklyConnection, Status
from connector.connections.selectors import connection_of_workspace
from tenants.overview import Step, workspace_steps


def _connect_state(connection: LaunchDarklyConnection | None) -> str:
    if connection is None or connection.status == Status.DISCONNECTED:
        return "Not connected: sign in with LaunchDarkly or paste an API token."
    if connection.status == Status.NEEDS_REAUTH:
        return f"Needs re-authorisation: {connection.status_reason}"
    return f"{connection.account_label}, on the {connection.instance_label}"


@receiver(workspace_steps, dispatch_uid="connections.steps")
def connection_steps(*, membership, **_) -> list[Step]:
    slug = membership.tenant.slug
    found = connection_of_workspace()
    connection = found if found and found.status != Status.DISCONNECTED else None
    project = (connection.project_name, connection.project_key) if connection else ("", "")
    return [
        Step(
            order=10,
            title="Connect LaunchDarkly",
            done=connection is not None and connection.status == Status.ACTIVE,
            state=_connect_state(connection),
            url=reverse("connections:settings", args=[slug]),
            action="Reconnect LaunchDarkly" if connection else "Connect LaunchDarkly",
        ),
        Step(
            order=20,
            title="Choose the project for metrics",
            done=bool(project[1]),
            state=f"Project {project[0]} ({project[1]})" if project[1] else "No project yet.",
            url=reverse(
                "connections:project" if connection else "connections:settings", args=[slug]
            ),
            action="Change the project" if project[1] else "Choose the project",
        ),
    ]
