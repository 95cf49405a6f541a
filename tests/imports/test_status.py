"""What the import's counts feed besides delivery: the picker's volume and last seen,
and the flag on an event that stopped arriving."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from connector.imports.ingest import volumes_refresh
from connector.imports.models import ImportCount
from connector.imports.selectors import stopped_events
from connector.sources.models import SourceEvent
from tenants.scope import tenant_scope


def counted(workspace, key, hours_ago, received):
    hour = (timezone.now() - timedelta(hours=hours_ago)).replace(minute=0, second=0, microsecond=0)
    with tenant_scope(workspace):
        ImportCount.objects.create(hour=hour, event_key=key, received=received)


@pytest.mark.django_db
def test_volume_30_days__from_received_occurrences(importing, workspace):
    counted(workspace, "signup", 2, 40)
    counted(workspace, "signup", 24 * 10, 2)
    counted(workspace, "signup", 24 * 40, 1000)  # outside the 30 days

    with tenant_scope(workspace):
        volumes_refresh()
        volume = SourceEvent.objects.get(key="signup").volume

    assert volume == 42


@pytest.mark.django_db
def test_event_that_stopped_arriving__flagged_on_the_status_page(importing, workspace):
    counted(workspace, "signup", 30, 100)  # yesterday, then nothing
    counted(workspace, "checkout", 1, 5)  # still arriving

    with tenant_scope(workspace):
        stopped = [key for key, _ in stopped_events()]
    page = importing.client.get(reverse("imports:status", args=[workspace.slug])).content.decode()

    assert stopped == ["signup"]
    assert "Events that stopped arriving" in page and "<code>signup</code>" in page
    assert "<code>checkout</code>: last hour" not in page
