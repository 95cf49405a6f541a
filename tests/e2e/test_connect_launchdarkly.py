"""A new user signs up and connects LaunchDarkly by OAuth on the sandbox, in Chromium."""

import pytest
from playwright.sync_api import expect

from connector.connections.models import LaunchDarklyConnection, Status
from sandbox.state import DEMO_EMAIL, DEMO_PASSWORD, OAuthClientSeed
from sandbox.testing import RunningSandbox

pytestmark = pytest.mark.e2e


@pytest.fixture
def ld_for_live_server(live_server, settings):
    client = OAuthClientSeed(
        client_id="e2e-connector",
        client_secret="e2e-connector-secret",
        redirect_uri=f"{live_server.url}/connect/launchdarkly/callback",
        name="Acme Metric Connector",
    )
    with RunningSandbox(oauth_client=client) as sandbox:
        settings.LAUNCHDARKLY_BASE_URL = sandbox.base_url
        settings.LAUNCHDARKLY_OAUTH_CLIENT_ID = client.client_id
        settings.LAUNCHDARKLY_OAUTH_CLIENT_SECRET = client.client_secret
        settings.PUBLIC_URL = live_server.url
        policy = settings.CONTENT_SECURITY_POLICY
        policy["DIRECTIVES"] = {
            **policy["DIRECTIVES"],
            "form-action": ["'self'", sandbox.base_url],
        }
        settings.CONTENT_SECURITY_POLICY = policy
        yield sandbox


def consent_on_sandbox(page, steps):
    expect(page.get_by_text("Acme Metric Connector").first).to_be_visible()
    expect(page.get_by_text("writer").first).to_be_visible()
    steps.shot("launchdarkly-consent")
    page.fill("#email", DEMO_EMAIL)
    page.fill("#password", DEMO_PASSWORD)
    page.get_by_role("button", name="Authorize").click()


def test_connect_launchdarkly__sign_up_consent_choose_project_disconnect_reconnect(
    steps, live_server, ld_for_live_server, transactional_db
):
    page = steps.page
    page.goto(f"{live_server.url}/signup/")
    page.fill("#id_name", "Grace")
    page.fill("#id_email", "grace@example.com")
    page.fill("#id_password", "a sturdy passphrase 2026")
    page.fill("#id_workspace_name", "Grace's Store")
    page.fill("#id_workspace_slug", "graces-store")
    steps.shot("sign-up")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_text("Your workspace Grace's Store is ready")).to_be_visible()
    steps.shot("workspace")

    page.get_by_role("link", name="Settings").click()
    steps.shot("settings-not-connected")
    page.get_by_role("button", name="Connect LaunchDarkly").click()
    consent_on_sandbox(page, steps)

    expect(page.get_by_role("heading", name="Choose the LaunchDarkly project")).to_be_visible()
    page.get_by_label("Mobile App").check()
    steps.shot("choose-project")
    page.get_by_role("button", name="Use this project").click()
    expect(page.locator(".status-active")).to_have_text("Connected")
    expect(page.get_by_text("mobile-app")).to_be_visible()
    steps.shot("connected")

    page.get_by_role("link", name="Disconnect…").click()
    expect(page.get_by_role("heading", name="Disconnect LaunchDarkly?")).to_be_visible()
    expect(page.get_by_text("deletes nothing")).to_be_visible()
    steps.shot("disconnect-confirm")
    page.get_by_role("button", name="Disconnect").click()
    expect(page.get_by_text("LaunchDarkly is disconnected")).to_be_visible()
    steps.shot("disconnected")
    connection = LaunchDarklyConnection.objects.unscoped().get()
    assert connection.status == Status.DISCONNECTED and connection.access_token_encrypted == ""

    page.get_by_role("button", name="Connect LaunchDarkly").click()
    consent_on_sandbox(page, steps)
    page.get_by_role("button", name="Use this project").click()
    expect(page.locator(".status-active")).to_have_text("Connected")
    steps.shot("reconnected")
    assert LaunchDarklyConnection.objects.unscoped().get().status == Status.ACTIVE
