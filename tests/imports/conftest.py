"""Event import fixtures: a workspace connected to the sandbox, with metrics that exist
in LaunchDarkly for some events, an API key, and environments chosen."""

from __future__ import annotations

import pytest
import requests
from django.urls import reverse

from connector.imports.ingest import import_settings
from connector.sources.models import SourceEvent, ValueKind
from connector.sources.services import api_key_create
from tenants.scope import tenant_scope
from tests.sync.conftest import apply_plan, connect_workspace
from tests.sync.test_engine import run_all

MAPPED = ("signup", "checkout")  # with metrics in LaunchDarkly
NUMERIC = "load_time"  # numeric (ms), with a metric
UNMAPPED = "page_view"  # in the catalog, no metric


@pytest.fixture
def importing(client_of, admin, workspace, ld):
    """Connected, metrics created in the sandbox, `production` receiving events."""
    client = client_of(admin)
    connection = connect_workspace(client, workspace, ld)
    with tenant_scope(workspace):
        events = [
            SourceEvent.objects.create(key=key, value_kind=ValueKind.CONVERSION) for key in MAPPED
        ]
        events.append(
            SourceEvent.objects.create(
                key=NUMERIC, value_kind=ValueKind.NUMERIC, unit="ms", value_property="duration"
            )
        )
        SourceEvent.objects.create(key=UNMAPPED, value_kind=ValueKind.CONVERSION)
    apply_plan(workspace, admin.user, events)
    run_all(workspace)
    with tenant_scope(workspace):
        row = import_settings()
        row.environments = ["production"]
        row.identity_map = {"user_id": "user", "account_id": "organization"}
        row.save()
        _, raw_key = api_key_create(actor=admin.user, name="tracker")
    return Importing(client=client, key=raw_key, connection=connection, ld=ld)


class Importing:
    def __init__(self, *, client, key, connection, ld) -> None:
        self.client, self.key, self.connection, self.ld = client, key, connection, ld

    def track(self, occurrences, **extra):
        return self.client.post(
            reverse("api:track"),
            data={"occurrences": occurrences},
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {self.key}",
            **extra,
        )

    def imported(self, environment="production"):
        """What the sandbox counted after deduplication, per event key."""
        report = self.ld.events()
        counts = report["counts"]
        account = next(iter(counts.values()), {})
        return account.get("default", {}).get(environment, {})


def occurrence(event="signup", user="u-1", **fields):
    return {"event": event, "contexts": {"user_id": user}, **fields}


def sandbox_events(ld):
    return requests.get(f"{ld.base_url}/_sandbox/events", timeout=5).json()
