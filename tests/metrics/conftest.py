"""Picker and plan fixtures: a catalog, a connected workspace, and plans."""

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from connector.connections.models import AuthKind, LaunchDarklyConnection, Status
from connector.metrics.models import MetricPlan
from connector.planner.plans import Choices
from connector.planner.views import UnitOffer, _units_cache_key
from connector.sources.models import SourceEvent, ValueKind
from tenants.scope import tenant_scope


def make_event(workspace, key, **fields):
    fields.setdefault("name", key.replace("_", " ").title())
    fields.setdefault("last_seen", timezone.now() - timedelta(hours=1))
    with tenant_scope(workspace):
        return SourceEvent.objects.create(key=key, **fields)


def make_events(workspace, count, *, prefix="event", numeric_every=0, **fields):
    now = timezone.now()
    with tenant_scope(workspace):
        return SourceEvent.objects.bulk_create(
            SourceEvent(
                **{
                    "tenant": workspace,
                    "key": f"{prefix}_{i:05d}",
                    "name": f"{prefix.title()} {i}",
                    "value_kind": ValueKind.NUMERIC
                    if numeric_every and i % numeric_every == 0
                    else ValueKind.CONVERSION,
                    "unit": "ms" if numeric_every and i % numeric_every == 0 else "",
                    "last_seen": now - timedelta(hours=i),
                    "volume": i,
                    **fields,
                }
            )
            for i in range(count)
        )


def make_plan(workspace, user, *, ids=None, filter=None, **choices):
    selection = {"ids": ids} if ids is not None else {"filter": filter}
    with tenant_scope(workspace):
        return MetricPlan.objects.create(
            created_by=user, selection=selection, choices=Choices(**choices).to_json()
        )


def connect(workspace, *, project_key="default", units=("user", "organization", "device")):
    """A usable connection row, without LaunchDarkly: plans read it, nothing calls out
    (the randomization units are put in the cache as if LaunchDarkly had answered)."""
    with tenant_scope(workspace):
        connection = LaunchDarklyConnection(
            instance="commercial",
            auth_kind=AuthKind.API_TOKEN,
            status=Status.ACTIVE,
            account_id="acct-1",
            member_id="member-1",
            project_key=project_key,
            project_name=project_key.title(),
        )
        connection.set_tokens(access_token="api-00000000-0000-0000-0000-000000000000")
        connection.save()
    if units is not None:
        cache.set(_units_cache_key(connection), UnitOffer(list(units), units[0]), 600)
    return connection


@pytest.fixture
def connected(workspace):
    return connect(workspace)
