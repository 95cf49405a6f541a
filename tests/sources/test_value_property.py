"""A numeric event's `value_property`: the occurrence property its value comes from,
through the catalog API and the catalog upload."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from connector.sources.models import SourceEvent
from connector.sources.upload import CSV_EXAMPLE
from connector.sources.validation import FIELDS
from tenants.scope import tenant_scope

pytestmark = pytest.mark.django_db
EVENTS = "/api/v1/events"


def stored(workspace, key):
    with tenant_scope(workspace):
        return SourceEvent.objects.get(key=key).value_property


def test_events_api__value_property__stored_returned_kept_cleared(api, workspace):
    numeric = {"key": "checkout", "value_kind": "numeric", "unit": "USD"}
    created = api.post(EVENTS, {"events": [numeric | {"value_property": "order total"}]})
    assert created.json()["counts"]["created"] == 1
    assert stored(workspace, "checkout") == "order total"
    assert api.get(f"{EVENTS}/checkout").json()["value_property"] == "order total"
    assert api.get(EVENTS).json()["events"][0]["value_property"] == "order total"

    # A definition that does not name it keeps the stored one.
    again = api.post(EVENTS, {"events": [numeric | {"name": "Checkout"}]})
    assert again.json()["counts"]["updated"] == 1
    assert stored(workspace, "checkout") == "order total"

    api.post(EVENTS, {"events": [numeric | {"value_property": ""}]})
    assert stored(workspace, "checkout") == ""
    assert api.get(f"{EVENTS}/checkout").json()["value_property"] is None


def test_events_api__value_property__refused_for_conversions_too_long_or_unstorable(api, workspace):
    batch = [
        {"key": "signup", "value_property": "amount"},
        {"key": "paid", "value_kind": "conversion", "value_property": "amount"},
        {"key": "long", "value_kind": "numeric", "unit": "ms", "value_property": "p" * 201},
        {"key": "nul", "value_kind": "numeric", "unit": "ms", "value_property": "a\x00b"},
        {"key": "spaced", "value_kind": "numeric", "unit": "ms", "value_property": " ms"},
        {"key": "number", "value_kind": "numeric", "unit": "ms", "value_property": 5},
    ]
    body = api.post(EVENTS, {"events": batch}).json()
    assert body["counts"]["rejected"] == 6
    reasons = {r["key"]: r["errors"] for r in body["results"]}
    for key in ("signup", "paid"):
        assert reasons[key] == [
            {
                "field": "value_property",
                "reason": "only numeric events take their value from a property; "
                "send value_kind: numeric",
            }
        ]
    assert reasons["long"] == [
        {"field": "value_property", "reason": "is 201 characters; at most 200"}
    ]
    assert reasons["nul"][0]["field"] == "value_property"
    assert "without NUL" in reasons["nul"][0]["reason"]
    assert reasons["spaced"] == [
        {"field": "value_property", "reason": "must not start or end with whitespace"}
    ]
    assert reasons["number"] == [{"field": "value_property", "reason": "must be a string"}]
    with tenant_scope(workspace):
        assert not SourceEvent.objects.exists()


def test_events_api__numeric_event_becomes_conversion__value_property_cleared(api, workspace):
    api.post(
        EVENTS,
        {
            "events": [
                {"key": "load", "value_kind": "numeric", "unit": "ms", "value_property": "ms"}
            ]
        },
    )
    response = api.post(EVENTS, {"events": [{"key": "load", "value_kind": "conversion"}]})
    assert response.json()["counts"]["updated"] == 1
    with tenant_scope(workspace):
        event = SourceEvent.objects.get(key="load")
    assert (event.value_kind, event.unit, event.value_property) == ("conversion", "", "")


def test_openapi__documents_value_property_in_definitions_and_events(client):
    schemas = client.get("/api/v1/openapi.json").json()["components"]["schemas"]
    events = schemas["UpsertRequest"]["properties"]["events"]
    definition = events["items"]["properties"]["value_property"]
    assert (definition["type"], definition["maxLength"]) == ("string", 200)
    assert "Refused for conversions" in definition["description"]
    event = schemas["Event"]["properties"]["value_property"]
    assert {"type": "null"} in event["anyOf"] and "value_property" in schemas["Event"]["required"]


def test_upload__csv_value_property_column__stored_and_conversion_row_refused(
    client_of, admin, workspace
):
    assert "value_property" in CSV_EXAMPLE.split(",") and "value_property" in FIELDS
    content = (
        b"key,value_kind,unit,value_property\n"
        b"checkout,numeric,USD,order total\n"
        b"signup,conversion,,amount\n"
    )
    client = client_of(admin)
    response = client.post(
        reverse("sources:upload", args=[workspace.slug]),
        {"file": SimpleUploadedFile("events.csv", content)},
    )
    preview = client.get(response["Location"])
    rows = {row.line: row for row in preview.context["preview"].rows}
    assert (rows[2].action, rows[3].action) == ("add", "error")
    assert rows[3].errors[0]["field"] == "value_property"
    applied = client.post(
        reverse("sources:upload_apply", args=[workspace.slug, preview.context["upload"].pk]),
        {"skip_lines": "3"},
    )
    assert applied.status_code == 302
    assert stored(workspace, "checkout") == "order total"
    with tenant_scope(workspace):
        assert not SourceEvent.objects.filter(key="signup").exists()
