"""The event import settings' "Values of numeric events": the property each numeric
event's value is read from, set by hand and used by `POST /api/v1/track`."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from connector.imports.models import Occurrence
from connector.imports.selectors import VALUE_EVENTS_SHOWN
from connector.sources.models import SourceEvent, ValueKind
from tenants.models import AuditEvent
from tenants.scope import tenant_scope
from tests.imports.conftest import NUMERIC, occurrence
from tests.imports.test_track import drain_all

pytestmark = pytest.mark.django_db


def settings_url(workspace):
    return reverse("imports:settings", args=[workspace.slug])


def field_of(workspace, key):
    with tenant_scope(workspace):
        return f"values-{SourceEvent.objects.get(key=key).pk}"


def test_values_section__saving_one__stored_then_used_for_occurrences(importing, workspace):
    page = importing.client.get(settings_url(workspace)).content.decode()
    assert "Values of numeric events" in page
    name = field_of(workspace, NUMERIC)
    assert f'name="{name}"' in page and 'value="duration"' in page
    assert "signup" not in page.split("Values of numeric events")[1]  # conversions not listed

    saved = importing.client.post(settings_url(workspace), {name: "load_ms", "save_values": "1"})

    assert saved.status_code == 302
    with tenant_scope(workspace):
        assert SourceEvent.objects.get(key=NUMERIC).value_property == "load_ms"
        audit = AuditEvent.objects.get(action="events.upserted", target="event import settings")
    assert audit.details["keys"] == [NUMERIC]

    answer = importing.track([occurrence(NUMERIC, "u-1", properties={"load_ms": 12.5})])

    assert answer.json()["counts"]["accepted"] == 1, answer.content
    with tenant_scope(workspace):
        (stored,) = Occurrence.objects.all()
    assert json.loads(stored.body)["metricValue"] == 12.5
    drain_all(workspace)
    assert importing.imported() == {NUMERIC: 1}


def test_values_section__bad_value__400_nothing_saved_other_settings_untouched(
    importing, workspace
):
    name = field_of(workspace, NUMERIC)

    bad = importing.client.post(settings_url(workspace), {name: " load_ms", "save_values": "1"})

    assert bad.status_code == 400
    assert "must not start or end with whitespace" in bad.content.decode()
    too_long = importing.client.post(settings_url(workspace), {name: "p" * 201, "save_values": "1"})
    assert "is 201 characters; at most 200" in too_long.content.decode()
    with tenant_scope(workspace):
        assert SourceEvent.objects.get(key=NUMERIC).value_property == "duration"


def test_values_section__event_not_in_the_post__keeps_its_value_property(importing, workspace):
    """The list may change between showing the page and saving it."""
    with tenant_scope(workspace):
        SourceEvent.objects.create(
            key="basket", value_kind=ValueKind.NUMERIC, unit="USD", value_property="total"
        )

    importing.client.post(settings_url(workspace), {"save_values": "1"})

    with tenant_scope(workspace):
        kept = dict(SourceEvent.objects.values_list("key", "value_property"))
    assert (kept[NUMERIC], kept["basket"]) == ("duration", "total")


def test_values_section__more_numeric_events_than_shown__capped_with_a_note(importing, workspace):
    with tenant_scope(workspace):
        SourceEvent.objects.bulk_create(
            SourceEvent(tenant=workspace, key=f"n{i:03}", value_kind=ValueKind.NUMERIC, unit="ms")
            for i in range(VALUE_EVENTS_SHOWN)
        )

    page = importing.client.get(settings_url(workspace)).content.decode()

    assert f"Showing the first {VALUE_EVENTS_SHOWN} of {VALUE_EVENTS_SHOWN + 1}" in page
    assert page.count('name="values-') == VALUE_EVENTS_SHOWN


def test_values_section__members_cannot_save(client_of, member, importing, workspace):
    name = field_of(workspace, NUMERIC)

    answer = client_of(member).post(settings_url(workspace), {name: "x", "save_values": "1"})

    assert answer.status_code in (403, 404)
    with tenant_scope(workspace):
        assert SourceEvent.objects.get(key=NUMERIC).value_property == "duration"
