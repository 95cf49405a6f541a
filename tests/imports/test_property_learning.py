"""The catalog learns its events' flat properties from the occurrences imported: the
names a request brings that it does not know, with the JSON type of the first value.
What it knows already (declared, or learned before) is never changed."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from connector.imports.models import OccurrenceUpload
from connector.sources.models import SourceEvent
from connector.sources.services import events_upsert
from tenants.scope import tenant_scope
from tests.imports.conftest import UNMAPPED, occurrence

pytestmark = pytest.mark.django_db


def properties_of(workspace, key):
    with tenant_scope(workspace):
        return SourceEvent.objects.get(key=key).properties


def tracked(importing, occurrences):
    answer = importing.track(occurrences)
    assert answer.status_code == 200, answer.content
    return [result["status"] for result in answer.json()["results"]]


def test_track__flat_properties__learned_with_their_json_types(importing, workspace):
    sent = {
        "plan": "pro",
        "amount": 12.5,
        "seats": 3,
        "trial": False,
        "coupon": None,  # null says nothing of the type
        "cart": {"items": 2},  # nested: not flat, filters cannot test it
        "tags": ["a", "b"],
        "cart.total": 3,  # a dotted name would be read as a path by filters
    }
    statuses = tracked(
        importing,
        [
            occurrence("signup", properties=sent),  # accepted
            occurrence(UNMAPPED, properties={"referrer": "ad"}),  # not mapped: learned too
            occurrence("signup", timestamp="yesterday", properties={"refused": "x"}),
            occurrence("no_such_event", properties={"unknown": "x"}),
        ],
    )

    assert statuses == ["accepted", "not_mapped", "refused", "refused"]
    assert properties_of(workspace, "signup") == {
        "plan": "string",
        "amount": "number",
        "seats": "number",
        "trial": "boolean",
    }
    assert properties_of(workspace, UNMAPPED) == {"referrer": "string"}
    assert properties_of(workspace, "checkout") == {}


def test_track__a_name_seen_with_two_types__the_first_type_wins(importing, workspace):
    tracked(
        importing,
        [
            occurrence("signup", properties={"plan": "pro"}),
            occurrence("signup", properties={"plan": 3, "coupon": None}),
            occurrence("signup", properties={"coupon": "SPRING"}),  # its first typed value
        ],
    )
    assert properties_of(workspace, "signup") == {"plan": "string", "coupon": "string"}

    # A later request with another type keeps the first; its new names are added.
    tracked(importing, [occurrence("signup", properties={"plan": 5, "seats": 2})])

    assert properties_of(workspace, "signup") == {
        "plan": "string",
        "coupon": "string",
        "seats": "number",
    }


def test_track__declared_types__never_overwritten_by_what_occurrences_send(importing, workspace):
    with tenant_scope(workspace):
        events_upsert(
            definitions=[{"key": "checkout", "properties": {"amount": "number"}}], origin="api"
        )

    tracked(importing, [occurrence("checkout", properties={"amount": "12.50", "plan": "pro"})])

    assert properties_of(workspace, "checkout") == {"amount": "number", "plan": "string"}


def test_track__declared_after_learned__the_declared_type_wins(importing, workspace):
    tracked(importing, [occurrence("checkout", properties={"amount": "12.50"})])
    with tenant_scope(workspace):
        events_upsert(
            definitions=[{"key": "checkout", "properties": {"amount": "number"}}], origin="api"
        )

    tracked(importing, [occurrence("checkout", properties={"amount": "13.00"})])

    assert properties_of(workspace, "checkout") == {"amount": "number"}


def catalog_updates(queries):
    return [
        q["sql"]
        for q in queries
        if q["sql"].startswith("UPDATE") and "sources_sourceevent" in q["sql"]
    ]


def test_track__request_bringing_no_new_property__writes_nothing_to_the_catalog(
    importing, workspace
):
    with CaptureQueriesContext(connection) as learning:
        tracked(importing, [occurrence("signup", properties={"plan": "pro", "seats": 2})])
    # One UPDATE for the event's properties (and the two of its first "last seen").
    assert len([sql for sql in catalog_updates(learning) if "properties" in sql]) == 1

    # The same names again, in any type, and a null: known, so nothing is written,
    # and the request costs what one without properties costs.
    known = [
        occurrence("signup", "u-2", properties={"plan": "team", "seats": "many"}),
        occurrence("signup", "u-3", properties={"plan": "pro", "seats": None}),
    ]
    with CaptureQueriesContext(connection) as again:
        tracked(importing, known)
    with CaptureQueriesContext(connection) as without:
        tracked(importing, [occurrence("signup", "u-4"), occurrence("signup", "u-5")])

    assert catalog_updates(again) == []
    assert len(again) == len(without)
    assert properties_of(workspace, "signup") == {"plan": "string", "seats": "number"}


def test_track__many_events_learning_at_once__one_update_per_changed_event(importing, workspace):
    with CaptureQueriesContext(connection) as queries:
        tracked(
            importing,
            [
                occurrence(key, f"u-{n}", properties={"plan": "pro", f"p{n}": n})
                for n, key in enumerate(["signup", "checkout", "signup", UNMAPPED])
            ],
        )

    learned = [sql for sql in catalog_updates(queries) if "properties" in sql]
    assert len(learned) == 3  # signup, checkout, page_view: once each
    assert properties_of(workspace, "signup") == {"plan": "string", "p0": "number", "p2": "number"}


def test_occurrence_upload__goes_through_the_same_learning(importing, workspace):
    lines = [
        '{"event": "signup", "contexts": {"user_id": "u-1"}, "properties": {"plan": "pro"}}',
        '{"event": "checkout", "contexts": {"user_id": "u-2"}, "properties": {"trial": true}}',
    ]
    client = importing.client
    answer = client.post(
        reverse("imports:upload", args=[workspace.slug]),
        {"file": SimpleUploadedFile("occurrences.jsonl", "\n".join(lines).encode())},
    )
    assert answer.status_code == 302, answer.content.decode()[:2000]
    # The preview checks, and learns nothing: only sending does.
    assert client.get(answer["Location"]).status_code == 200
    assert properties_of(workspace, "signup") == {}
    upload_id = OccurrenceUpload.objects.unscoped().get(tenant=workspace).pk

    client.post(reverse("imports:upload_apply", args=[workspace.slug, upload_id]))

    assert properties_of(workspace, "signup") == {"plan": "string"}
    assert properties_of(workspace, "checkout") == {"trial": "boolean"}
