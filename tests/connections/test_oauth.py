"""Connect LaunchDarkly by OAuth, over real HTTP against the sandbox, and the attacks on it."""

import time

import pytest
from django.urls import reverse

from connector.connections import views as connection_views
from connector.connections.models import LaunchDarklyConnection, Status
from tenants.models import AuditEvent
from tests.connections.conftest import consent, local_path, query_of, token_endpoint_calls
from tests.factories import MembershipFactory

CALLBACK = "/connect/launchdarkly/callback"


def begin(client, workspace, instance="commercial"):
    response = client.post(
        reverse("connections:oauth_begin", args=[workspace.slug]), {"instance": instance}
    )
    assert response.status_code == 302
    return response["Location"]


def connections():
    return LaunchDarklyConnection.objects.unscoped()


@pytest.mark.django_db
def test_oauth__full_flow__connected_with_writer_scope_and_project(client_of, admin, workspace, ld):
    client = client_of(admin)
    authorize_url = begin(client, workspace)

    # Every authorize request carries PKCE S256, the writer scope and a state.
    params = query_of(authorize_url)
    assert authorize_url.startswith(f"{ld.base_url}/trust/oauth/authorize?")
    assert params["code_challenge_method"] == "S256" and len(params["code_challenge"]) >= 43
    assert params["scope"] == "writer" and len(params["state"]) >= 32
    assert params["redirect_uri"] == "http://testserver" + CALLBACK

    callback = client.get(local_path(consent(authorize_url)))
    assert callback.status_code == 302
    assert callback["Location"] == reverse("connections:project", args=[workspace.slug])

    connection = connections().get()
    assert connection.status == Status.ACTIVE and connection.auth_kind == "oauth"
    assert "writer" in connection.scopes and connection.account_id
    assert connection.expires_at is not None and connection.refresh_token()

    page = client.get(callback["Location"]).content.decode()
    assert "default" in page and "mobile-app" in page  # listed through the API
    chosen = client.post(callback["Location"], {"project_key": "mobile-app"})
    assert chosen.status_code == 302
    settings_page = client.get(reverse("connections:settings", args=[workspace.slug]))
    assert "Connected" in settings_page.content.decode()
    assert connections().get().project_key == "mobile-app"
    assert AuditEvent.objects.unscoped().filter(action="launchdarkly.connected").count() == 1
    assert len(token_endpoint_calls(ld, "authorization_code")) == 1


@pytest.mark.django_db
def test_oauth__callback_without_state__error_and_no_token_call(client_of, admin, workspace, ld):
    client = client_of(admin)
    code_url = consent(begin(client, workspace))
    code = query_of(code_url)["code"]

    response = client.get(CALLBACK, {"code": code})

    assert response.status_code == 400 and "not valid" in response.content.decode()
    assert token_endpoint_calls(ld) == [] and not connections().exists()


@pytest.mark.django_db
def test_oauth__state_of_another_user__error_and_no_token_call(client, admin, workspace, ld):
    client.force_login(admin.user)
    victim_redirect = consent(begin(client, workspace))
    attacker = MembershipFactory(tenant=workspace, role="admin")
    client.force_login(attacker.user)  # a different session: the state is not in it

    response = client.get(local_path(victim_redirect))

    assert response.status_code == 400
    assert token_endpoint_calls(ld) == [] and not connections().exists()


@pytest.mark.django_db
def test_oauth__replayed_callback__error_and_one_token_call(client_of, admin, workspace, ld):
    client = client_of(admin)
    redirect = local_path(consent(begin(client, workspace)))
    assert client.get(redirect).status_code == 302

    replay = client.get(redirect)

    assert replay.status_code == 400 and "already used" in replay.content.decode()
    assert len(token_endpoint_calls(ld)) == 1


@pytest.mark.django_db
def test_oauth__expired_state__error_and_no_token_call(
    client_of, admin, workspace, ld, monkeypatch
):
    client = client_of(admin)
    redirect = local_path(consent(begin(client, workspace)))
    later = connection_views.time.time() + connection_views.OAUTH_STATE_TTL_S + 1
    monkeypatch.setattr(connection_views.time, "time", lambda: later)

    response = client.get(redirect)

    assert response.status_code == 400 and "expired" in response.content.decode()
    assert token_endpoint_calls(ld) == [] and not connections().exists()


@pytest.mark.django_db
def test_oauth__consent_denied__clear_message_nothing_stored(client_of, admin, workspace, ld):
    client = client_of(admin)
    redirect = consent(begin(client, workspace), decision="deny")
    assert query_of(redirect)["error"] == "access_denied"

    response = client.get(local_path(redirect))

    assert response.status_code == 400 and "You declined" in response.content.decode()
    assert token_endpoint_calls(ld) == [] and not connections().exists()


@pytest.mark.django_db
@pytest.mark.parametrize("fault", ["html", "500"])
def test_oauth__token_endpoint_broken__message_nothing_stored_then_retry_works(
    client_of, admin, workspace, ld, fault
):
    client = client_of(admin)
    redirect = local_path(consent(begin(client, workspace)))
    ld.set_faults(rate=1, kinds=[fault], routes=["/trust/oauth/token"])

    response = client.get(redirect)

    assert response.status_code == 400
    assert "did not answer properly" in response.content.decode()
    assert not connections().exists()
    ld.set_faults(rate=0, latency_ms=0)
    again = client.get(local_path(consent(begin(client, workspace))))
    assert again.status_code == 302 and connections().get().status == Status.ACTIVE


@pytest.mark.django_db
def test_oauth__code_expired_before_exchange__invalid_grant_message(
    client_of, admin, workspace, ld_with
):
    ld = ld_with(code_ttl=0.2)
    client = client_of(admin)
    redirect = local_path(consent(begin(client, workspace)))
    time.sleep(0.4)

    response = client.get(redirect)

    assert response.status_code == 400 and "used already or expired" in response.content.decode()
    assert len(token_endpoint_calls(ld)) == 1 and not connections().exists()


@pytest.mark.django_db
def test_oauth__plain_member__cannot_begin(client_of, member, workspace, ld):
    response = client_of(member).post(
        reverse("connections:oauth_begin", args=[workspace.slug]), {"instance": "commercial"}
    )
    assert response.status_code == 404
    assert ld.requests_since(0) == []


@pytest.mark.django_db
def test_oauth__unknown_instance__message_and_no_redirect(client_of, admin, workspace, ld):
    response = client_of(admin).post(
        reverse("connections:oauth_begin", args=[workspace.slug]),
        {"instance": "https://evil.example.com"},
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("connections:settings", args=[workspace.slug])
    assert ld.requests_since(0) == []
