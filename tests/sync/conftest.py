"""Sync engine fixtures: a sandbox, a connected workspace, and mappings to send."""

import pytest
from django.urls import reverse

from connector.connections.models import LaunchDarklyConnection
from connector.metrics.models import MetricPlan
from connector.planner.plans import Choices, plan_apply
from connector.sources.models import SourceEvent, ValueKind
from tenants.scope import tenant_scope


def connect_workspace(client, workspace, sandbox):
    """Connect the workspace to the sandbox's demo account, project `default`."""
    token = sandbox.mint_token("writer")
    client.post(
        reverse("connections:api_token", args=[workspace.slug]),
        {"instance": "commercial", "token": token},
    )
    client.post(reverse("connections:project", args=[workspace.slug]), {"project_key": "default"})
    connection = LaunchDarklyConnection.objects.unscoped().get(tenant=workspace)
    assert connection.project_key == "default"
    return connection


@pytest.fixture
def connected(client_of, admin, workspace, ld):
    """The workspace connected to the sandbox's demo account, project `default`."""
    return connect_workspace(client_of(admin), workspace, ld)


def make_events(workspace, count, *, numeric_every=3, prefix="event"):
    with tenant_scope(workspace):
        return SourceEvent.objects.bulk_create(
            SourceEvent(
                tenant=workspace,
                key=f"{prefix}_{i:05d}",
                name=f"Event {i}",
                value_kind=ValueKind.NUMERIC
                if numeric_every and i % numeric_every == 0
                else ValueKind.CONVERSION,
                unit="ms" if numeric_every and i % numeric_every == 0 else "",
            )
            for i in range(count)
        )


def apply_plan(workspace, user, events, **choices):
    """Apply a plan for these events the way the picker does; returns the run."""
    with tenant_scope(workspace):
        plan = MetricPlan.objects.create(
            created_by=user,
            selection={"ids": [e.pk for e in events]},
            choices=Choices(**choices).to_json(),
        )
        return plan_apply(plan=plan, actor=user)


def sandbox_metrics(ld, project="default"):
    import requests

    token = ld.mint_token("reader")
    items, url = [], f"{ld.base_url}/api/v2/metrics/{project}?limit=50"
    while url:
        page = requests.get(url, headers={"Authorization": token}, timeout=10).json()
        items += page["items"]
        nxt = page.get("_links", {}).get("next")
        url = f"{ld.base_url}{nxt['href']}" if nxt else None
    return items
