"""Connect LaunchDarkly with a pasted API access token."""

import pytest
from django.urls import reverse

from connector.connections.models import LaunchDarklyConnection, Status
from tenants.models import AuditEvent


def paste(client, workspace, token, instance="commercial"):
    return client.post(
        reverse("connections:api_token", args=[workspace.slug]),
        {"instance": instance, "token": token},
    )


def stored():
    return LaunchDarklyConnection.objects.unscoped()


@pytest.mark.django_db
def test_api_token__writer__verified_stored_encrypted_and_audited(client_of, admin, workspace, ld):
    token = ld.mint_token("writer")

    response = paste(client_of(admin), workspace, token)

    assert response.status_code == 302
    connection = stored().get()
    assert connection.status == Status.ACTIVE and connection.auth_kind == "api_token"
    assert token not in connection.access_token_encrypted  # ciphertext, not the token
    assert connection.access_token() == token and connection.token_hint == token[-4:]
    event = AuditEvent.objects.unscoped().get(action="launchdarkly.connected")
    assert token not in str(event.details)


@pytest.mark.django_db
def test_api_token__reader__refused_with_role_needed_nothing_stored(
    client_of, admin, workspace, ld
):
    response = paste(client_of(admin), workspace, ld.mint_token("reader"))

    assert response.status_code == 400
    page = response.content.decode()
    assert "cannot create metrics" in page and "Writer role" in page
    assert not stored().exists()


@pytest.mark.django_db
def test_api_token__revoked__refused_nothing_stored(client_of, admin, workspace, ld):
    token = ld.mint_token("writer")
    ld.revoke_token(token)

    response = paste(client_of(admin), workspace, token)

    assert response.status_code == 400 and "revoked" in response.content.decode()
    assert not stored().exists()


@pytest.mark.django_db
def test_api_token__not_a_token__refused_without_calling_launchdarkly(
    client_of, admin, workspace, ld
):
    response = paste(client_of(admin), workspace, "hello world")

    assert response.status_code == 400
    assert "does not look like a LaunchDarkly API access token" in response.content.decode()
    assert ld.requests_since(0) == [] and not stored().exists()


@pytest.mark.django_db
def test_api_token__launchdarkly_down__message_nothing_stored(client_of, admin, workspace, ld):
    ld.set_faults(rate=1, kinds=["503"], routes=["/api/v2/caller-identity"])

    response = paste(client_of(admin), workspace, ld.mint_token("writer"))

    assert response.status_code == 400 and "Nothing was saved" in response.content.decode()
    assert not stored().exists()


@pytest.mark.django_db
def test_project__vanished_before_choice__clear_message(client_of, admin, workspace, ld):
    client = client_of(admin)
    paste(client, workspace, ld.mint_token("writer"))

    response = client.post(
        reverse("connections:project", args=[workspace.slug]), {"project_key": "gone-project"}
    )

    assert response.status_code == 400
    assert "no longer exists" in response.content.decode()
    assert stored().get().project_key == ""


@pytest.mark.django_db
def test_settings_page__member__sees_connection_but_no_controls(
    client_of, admin, member, workspace, ld
):
    token = ld.mint_token("writer")
    paste(client_of(admin), workspace, token)

    page = client_of(member).get(reverse("connections:settings", args=[workspace.slug]))

    body = page.content.decode()
    assert page.status_code == 200 and "Connected" in body
    assert "Disconnect" not in body and token not in body and f"…{token[-4:]}" in body
