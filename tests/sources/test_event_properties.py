"""An event's flat properties, as metric filters test them: declared through the API,
a catalog upload (JSON or CSV) and the PostHog adapter, merged into what is stored."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from connector.sources.models import SourceEvent
from connector.sources.services import catalog_import
from connector.sources.validation import MAX_PROPERTIES
from tenants.scope import tenant_scope
from tests.sources.factories import SourceEventFactory
from tests.sources.test_posthog import adapter, posthog  # noqa: F401  (the stand-in fixture)

pytestmark = pytest.mark.django_db
EVENTS = "/api/v1/events"


def properties_of(workspace):
    with tenant_scope(workspace):
        return dict(SourceEvent.objects.values_list("key", "properties"))


def upsert(api, *events):
    response = api.post(EVENTS, {"events": list(events)})
    assert response.status_code == 200, response.content
    return response.json()["results"]


# --- the HTTP API ---------------------------------------------------------------------------


def test_events_api__properties__stored_and_returned_in_the_event(api, workspace):
    declared = {"plan": "string", "amount": "number", "trial": "boolean"}
    [result] = upsert(api, {"key": "checkout", "properties": declared})

    assert result["status"] == "created"
    assert properties_of(workspace) == {"checkout": declared}
    assert api.get(f"{EVENTS}/checkout").json()["properties"] == declared
    assert api.get(EVENTS).json()["events"][0]["properties"] == declared


def test_events_api__event_without_properties__an_empty_object(api):
    upsert(api, {"key": "signup"})
    assert api.get(f"{EVENTS}/signup").json()["properties"] == {}


def test_events_api__update_with_properties__merged_a_declared_type_replacing_the_stored_one(
    api, workspace
):
    # As learned from occurrences: the first value of `amount` was sent as text.
    SourceEventFactory(
        tenant=workspace, key="checkout", properties={"plan": "string", "amount": "string"}
    )

    [result] = upsert(
        api, {"key": "checkout", "properties": {"amount": "number", "trial": "boolean"}}
    )

    assert result["status"] == "updated"
    assert properties_of(workspace)["checkout"] == {
        "plan": "string",  # not sent: kept
        "amount": "number",  # declared: wins
        "trial": "boolean",  # new
    }
    # Sending the same again changes nothing; leaving properties out keeps them.
    again = upsert(api, {"key": "checkout", "properties": {"amount": "number"}})
    assert again[0]["status"] == "unchanged"
    assert upsert(api, {"key": "checkout", "name": "Checkout"})[0]["status"] == "updated"
    assert properties_of(workspace)["checkout"]["trial"] == "boolean"


@pytest.mark.parametrize(
    ("properties", "field", "reason"),
    [
        ("plan", "properties", "must be an object of names and types"),
        (["plan"], "properties", "must be an object of names and types"),
        ({"plan": "text"}, "properties.plan", "must be one of: string, number, boolean"),
        ({"plan": None}, "properties.plan", "must be one of: string, number, boolean"),
        ({"cart.total": "number"}, "properties", "“cart.total”: must be a flat name"),
        ({"items[0]": "string"}, "properties", "“items[0]”: must be a flat name"),
        ({"": "string"}, "properties", "must not be empty"),
        ({" plan": "string"}, "properties", "must not start or end with whitespace"),
        ({"p" * 201: "string"}, "properties", "at most 200 characters"),
        ({"a\u0000b": "string"}, "properties", "without NUL characters"),
        (
            {f"p{n}": "string" for n in range(MAX_PROPERTIES + 1)},
            "properties",
            f"declares {MAX_PROPERTIES + 1} properties; at most {MAX_PROPERTIES}",
        ),
    ],
)
def test_events_api__bad_properties__item_rejected_with_the_field_and_reason(
    api, workspace, properties, field, reason
):
    [result] = upsert(api, {"key": "checkout", "properties": properties})

    assert result["status"] == "rejected"
    assert [error["field"] for error in result["errors"]] == [field]
    assert reason in result["errors"][0]["reason"], result
    assert properties_of(workspace) == {}


def test_events_api__at_most_max_properties__accepted(api, workspace):
    declared = {f"p{n}": "number" for n in range(MAX_PROPERTIES)}
    assert upsert(api, {"key": "wide", "properties": declared})[0]["status"] == "created"
    assert properties_of(workspace)["wide"] == declared


def test_openapi__event_definition__documents_properties_and_the_merge(client):
    document = client.get("/api/v1/openapi.json").json()
    schemas = document["components"]["schemas"]
    definition = schemas["UpsertRequest"]["properties"]["events"]["items"]
    declared = definition["properties"]["properties"]
    assert declared["maxProperties"] == MAX_PROPERTIES
    assert declared["propertyNames"] == {"minLength": 1, "maxLength": 200, "pattern": r"^[^.\[]+$"}
    assert declared["additionalProperties"]["enum"] == ["string", "number", "boolean"]
    assert "Merged into the stored ones" in declared["description"]
    assert "properties" in schemas["Event"]["required"]


# --- catalog uploads ---------------------------------------------------------------------------


def upload_and_apply(client, workspace, name, content):
    response = client.post(
        reverse("sources:upload", args=[workspace.slug]),
        {"file": SimpleUploadedFile(name, content)},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    preview = client.get(response["Location"]).context["preview"]
    upload_id = client.get(response["Location"]).context["upload"].pk
    client.post(
        reverse("sources:upload_apply", args=[workspace.slug, upload_id]),
        {"skip_lines": preview.skip_value},
    )
    return preview


def test_upload__json__properties_as_an_object(client_of, admin, workspace):
    content = json.dumps(
        [
            {"key": "checkout", "properties": {"plan": "string", "amount": "number"}},
            {"key": "bad", "properties": {"plan": "enum"}},
        ],
        indent=2,
    ).encode()

    preview = upload_and_apply(client_of(admin), workspace, "catalog.json", content)

    assert [(row.key, row.action) for row in preview.rows] == [
        ("checkout", "add"),
        ("bad", "error"),
    ]
    assert preview.rows[1].errors == [
        {"field": "properties.plan", "reason": "must be one of: string, number, boolean"}
    ]
    assert properties_of(workspace) == {"checkout": {"plan": "string", "amount": "number"}}


def test_upload__csv__properties_column_of_name_type_pairs(client_of, admin, workspace):
    SourceEventFactory(tenant=workspace, key="signup", properties={"source": "string"})
    content = (
        b"key,properties\n"
        b"checkout,plan:string; amount:number;trial: Boolean;\n"
        b"signup,referrer:string\n"
        b"refund,\n"
    )

    preview = upload_and_apply(client_of(admin), workspace, "events.csv", content)

    assert [(row.key, row.action) for row in preview.rows] == [
        ("checkout", "add"),
        ("signup", "change"),
        ("refund", "add"),
    ]
    assert preview.rows[1].changed == ["properties"]
    assert properties_of(workspace) == {
        "checkout": {"plan": "string", "amount": "number", "trial": "boolean"},
        "signup": {"source": "string", "referrer": "string"},  # merged
        "refund": {},  # an empty cell leaves the stored value alone
    }


@pytest.mark.parametrize(
    ("cell", "field", "reason"),
    [
        ("plan", "properties", "“plan” is not a name:type pair"),
        (":string", "properties", "“:string” is not a name:type pair"),
        ("plan:string; plan:number", "properties", "names the property “plan” twice"),
        ("plan:text", "properties.plan", "must be one of: string, number, boolean"),
        ("cart.total:number", "properties", "must be a flat name"),
    ],
)
def test_upload__csv__bad_properties_cell__row_in_error_on_the_preview(
    client_of, admin, workspace, cell, field, reason
):
    client = client_of(admin)
    response = client.post(
        reverse("sources:upload", args=[workspace.slug]),
        {"file": SimpleUploadedFile("e.csv", f"key,properties\ncheckout,{cell}\n".encode())},
    )
    [row] = client.get(response["Location"]).context["preview"].rows

    assert row.action == "error"
    assert [error["field"] for error in row.errors] == [field]
    assert reason in row.errors[0]["reason"]


def test_upload_page__documents_the_properties_column(client_of, admin, workspace):
    page = client_of(admin).get(reverse("sources:upload", args=[workspace.slug]))
    text = page.content.decode()
    assert "<code>plan:string; amount:number</code>" in text
    assert "properties" in page.context["csv_example"].split(",")


# --- PostHog -----------------------------------------------------------------------------------


def test_posthog_adapter__flat_properties_with_their_types(posthog):  # noqa: F811
    definitions = {d.key: d for d in adapter(posthog).fetch_catalog()}

    # String, Numeric and Boolean become ours. Left out: DateTime (`paid_at`), a type
    # not settled yet (`coupon`), PostHog's own (`$screen_width`, `$browser`), and a
    # name that is not flat (`cart.items`).
    assert definitions["purchase completed"].as_definition()["properties"] == {
        "revenue": "number",
        "plan": "string",
        "trial": "boolean",
        "quantity": "number",
    }
    # Read across the pages of the event's property definitions.
    assert definitions["video watched"].properties == {
        "position_s": "number",
        "duration_ms": "number",
        "quality": "string",
    }
    assert "properties" not in definitions["$pageview"].as_definition()


def test_catalog_import__posthog_properties__only_add_names_never_change_a_known_type(
    posthog,  # noqa: F811
    workspace,
):
    with tenant_scope(workspace):
        # Declared through the API before: `plan` holds plan ids, numbers.
        SourceEventFactory(
            tenant=workspace,
            key="purchase completed",
            origin="posthog",
            properties={"plan": "number", "channel": "string"},
        )
        outcome = catalog_import(adapter=adapter(posthog))
        assert outcome.counts["rejected"] == 0
        stored = properties_of(workspace)
        assert stored["purchase completed"] == {
            "plan": "number",  # known: kept
            "channel": "string",  # not in PostHog: kept
            "revenue": "number",
            "trial": "boolean",
            "quantity": "number",
        }
        assert stored["video watched"]["quality"] == "string"
        again = catalog_import(adapter=adapter(posthog))
        assert again.counts["updated"] == 0
