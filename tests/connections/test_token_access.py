"""What a pasted token may do is read from the token (getToken), not from caller
identity's `scopes`, which LaunchDarkly does not define for API tokens (contract ID-1,
TOK-1)."""

import pytest
from django.urls import reverse

from connector.connections.models import LaunchDarklyConnection
from tests.connections.test_api_token import paste


def stored():
    return LaunchDarklyConnection.objects.unscoped()


def token_calls(ld):
    return [r for r in ld.requests_since(0) if r["path"].startswith("/api/v2/tokens/")]


@pytest.mark.django_db
def test_reader_token__role_read_with_get_token__refused(client_of, admin, workspace, ld):
    response = paste(client_of(admin), workspace, ld.mint_token("reader"))

    assert response.status_code == 400
    assert "This token has the role Reader, which cannot create metrics" in (
        response.content.decode()
    )
    assert len(token_calls(ld)) == 1 and not stored().exists()


@pytest.mark.django_db
def test_custom_role_token__its_actions_named_on_the_settings_page(client_of, admin, workspace, ld):
    token = ld.mint_token(
        "no_access",
        inline_role=[
            {
                "effect": "allow",
                "actions": ["createMetric", "updateMetric", "importEventData"],
                "resources": ["proj/*:metric/*"],
            }
        ],
    )
    client = client_of(admin)

    assert paste(client, workspace, token).status_code == 302
    connection = stored().get()
    assert connection.scopes == ["custom role", "createMetric", "updateMetric", "importEventData"]
    page = client.get(reverse("connections:settings", args=[workspace.slug])).content.decode()
    assert "a custom role allowing createMetric, updateMetric, importEventData" in page


@pytest.mark.django_db
def test_service_token__stored_as_such_without_a_member(client_of, admin, workspace, ld):
    client = client_of(admin)
    assert paste(client, workspace, ld.mint_token("writer", service=True)).status_code == 302

    connection = stored().get()
    assert connection.service_token and connection.member_id == ""
    assert connection.scopes == ["writer"]
    page = client.get(reverse("connections:settings", args=[workspace.slug])).content.decode()
    assert "role Writer (service token)" in page
