"""Token refresh under a shared lock, re-authorisation, disconnect, key rotation."""

import threading
from datetime import timedelta

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection as db_connection
from django.urls import reverse
from django.utils import timezone

from connector.connections import services
from connector.connections.models import LaunchDarklyConnection, Status
from tenants.models import AuditEvent
from tenants.scope import tenant_scope
from tests.connections.conftest import consent, local_path, token_endpoint_calls


def connect_by_oauth(client, workspace):
    begin = client.post(
        reverse("connections:oauth_begin", args=[workspace.slug]), {"instance": "commercial"}
    )
    assert client.get(local_path(consent(begin["Location"]))).status_code == 302
    return LaunchDarklyConnection.objects.unscoped().get(tenant=workspace)


def make_expiring(connection):
    LaunchDarklyConnection.objects.unscoped().filter(pk=connection.pk).update(
        expires_at=timezone.now() + timedelta(seconds=30)
    )


@pytest.mark.django_db(transaction=True)
def test_refresh__twenty_concurrent_callers__one_refresh_grant(client_of, admin, workspace, ld):
    connection = connect_by_oauth(client_of(admin), workspace)
    make_expiring(connection)
    tokens, failures = [], []

    def caller():
        try:
            with tenant_scope(workspace):
                row = LaunchDarklyConnection.objects.get()
                tokens.append(services.connection_fresh_access_token(connection=row))
        except Exception as exc:  # collected and asserted below
            failures.append(exc)
        finally:
            db_connection.close()

    threads = [threading.Thread(target=caller) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert failures == []
    assert len(token_endpoint_calls(ld, "refresh_token")) == 1
    assert len(set(tokens)) == 1  # everyone got the one new token
    with tenant_scope(workspace):
        fresh = LaunchDarklyConnection.objects.get()
    assert fresh.access_token() == tokens[0] and fresh.expires_at > timezone.now()


@pytest.mark.django_db
def test_refresh__grant_revoked__needs_reauth_banner_then_reconnect_resumes(
    client_of, admin, workspace, ld
):
    client = client_of(admin)
    connection = connect_by_oauth(client, workspace)
    ld.revoke_token(connection.refresh_token())  # as a user would in LaunchDarkly's UI
    make_expiring(connection)
    connection.refresh_from_db()

    with tenant_scope(workspace), pytest.raises(services.ReauthorizationRequired):
        services.connection_fresh_access_token(connection=connection)

    connection.refresh_from_db()
    assert connection.status == Status.NEEDS_REAUTH and not connection.is_usable
    page = client.get(reverse("tenants:workspace", args=[workspace.slug])).content.decode()
    assert "LaunchDarkly needs you to reconnect" in page and "Reconnect" in page
    assert AuditEvent.objects.unscoped().filter(action="launchdarkly.needs_reauth").count() == 1

    connection = connect_by_oauth(client, workspace)
    assert connection.status == Status.ACTIVE
    page = client.get(reverse("tenants:workspace", args=[workspace.slug])).content.decode()
    assert "needs you to reconnect" not in page


@pytest.mark.django_db
def test_disconnect__oauth__revokes_forgets_secrets_and_audits(client_of, admin, workspace, ld):
    client = client_of(admin)
    connection = connect_by_oauth(client, workspace)
    access = connection.access_token()

    response = client.post(reverse("connections:disconnect", args=[workspace.slug]))

    assert response.status_code == 302
    connection.refresh_from_db()
    assert connection.status == Status.DISCONNECTED
    assert connection.access_token_encrypted == connection.refresh_token_encrypted == ""
    assert any(r["path"].startswith("/trust/oauth/revoke") for r in ld.requests_since(0))
    import requests

    answer = requests.get(
        f"{ld.base_url}/api/v2/caller-identity",
        headers={"Authorization": f"Bearer {access}"},
        timeout=5,
    )
    assert answer.status_code == 401  # the grant is dead at LaunchDarkly too
    assert AuditEvent.objects.unscoped().filter(action="launchdarkly.disconnected").count() == 1


@pytest.mark.django_db
def test_rotate_token_keys__new_key_first__old_key_can_be_dropped(
    client_of, admin, workspace, ld, settings
):
    token = ld.mint_token("writer")
    client_of(admin).post(
        reverse("connections:api_token", args=[workspace.slug]),
        {"instance": "commercial", "token": token},
    )
    old_key, new_key = settings.TOKEN_ENCRYPTION_KEYS[0], Fernet.generate_key().decode()
    settings.TOKEN_ENCRYPTION_KEYS = [new_key, old_key]

    call_command("rotate_token_keys")

    settings.TOKEN_ENCRYPTION_KEYS = [new_key]
    connection = LaunchDarklyConnection.objects.unscoped().get()
    assert connection.access_token() == token
