"""The whole journey, as a new user lives it, in Chromium against the live server, a
real Celery worker and the LaunchDarkly sandbox: sign up, connect by OAuth, choose a
project, upload events, pick them with search and bulk select, review and apply the
plan, watch the progress bar reach 100 %, see the metrics in the sandbox; then the
connection breaks (the token is revoked in the sandbox), the banner and the email
say so, a reconnect resumes the work, and what failed meanwhile is retried."""

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from connector.connections.models import LaunchDarklyConnection
from sandbox.state import DEMO_EMAIL, DEMO_PASSWORD, OAuthClientSeed
from sandbox.testing import RunningSandbox
from tests.e2e.conftest import point_at_sandbox
from tests.workers import running_worker

pytestmark = pytest.mark.e2e

CATALOG = "key,name,description,value_kind,unit\n" + "".join(
    [f"checkout_step_{i},Checkout step {i},Step {i} of checkout,conversion,\n" for i in range(12)]
    + [f"page_load_{i},Page load {i},Load time of page {i},numeric,ms\n" for i in range(4)]
    + ["signup_completed,Signup completed,A visitor created an account,conversion,\n"]
)


@pytest.fixture
def world(live_server, settings, tmp_path):
    client = OAuthClientSeed(
        client_id="journey-connector",
        client_secret="journey-secret",
        redirect_uri=f"{live_server.url}/connect/launchdarkly/callback",
        name="Acme Metric Connector",
    )
    with RunningSandbox(oauth_client=client) as sandbox:
        env = {
            **point_at_sandbox(settings, sandbox, client, live_server.url),
            "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "EMAIL_FILE_PATH": str(tmp_path / "mail"),
            "SYNC_MAX_ATTEMPTS": "2",
            "SYNC_BACKOFF_BASE_S": "0.2",
        }
        with running_worker(concurrency=2, **env):
            yield sandbox, tmp_path / "mail"


def consent(page, steps, name):
    expect(page.get_by_text("Acme Metric Connector").first).to_be_visible()
    steps.shot(name)
    page.fill("#email", DEMO_EMAIL)
    page.fill("#password", DEMO_PASSWORD)
    page.get_by_role("button", name="Authorize").click()


def choose_default_project(page):
    expect(page.get_by_role("heading", name="Choose the LaunchDarkly project")).to_be_visible()
    page.check('input[name="project_key"][value="default"]')
    page.get_by_role("button", name="Use this project").click()
    expect(page.locator(".status-active")).to_have_text("Connected")


def watch_run_finish(page, steps, name):
    page.get_by_role("link", name="Sync", exact=True).click()
    # The progress fragment is polled by static JS; no reload here.
    expect(page.locator("#run-progress .percent")).to_have_text("100%", timeout=90_000)
    steps.shot(name)


def test_journey__sign_up_to_metrics_break_reconnect_retry(
    steps, live_server, world, transactional_db, tmp_path
):
    sandbox, mail_dir = world
    page = steps.page

    # Sign up.
    page.goto(f"{live_server.url}/signup/")
    page.fill("#id_email", "ada@example.com")
    page.fill("#id_password", "a sturdy passphrase 2026")
    page.fill("#id_workspace_name", "Ada's Shop")
    page.fill("#id_workspace_slug", "adas-shop")
    page.get_by_role("button", name="Create account").click()
    steps.shot("signed-up")

    # Connect LaunchDarkly by OAuth on the sandbox; choose the project.
    page.get_by_role("link", name="Settings").click()
    page.get_by_role("button", name="Connect LaunchDarkly").click()
    consent(page, steps, "consent")
    choose_default_project(page)
    steps.shot("connected")

    # Upload events: preview, then apply.
    catalog = tmp_path / "catalog.csv"
    catalog.write_text(CATALOG)
    page.goto(f"{live_server.url}/w/adas-shop/events/upload/")
    page.set_input_files("input[type=file]", str(catalog))
    page.get_by_role("button", name="Preview").click()
    expect(page.locator("dt:has-text('To add') + dd")).to_have_text("17")
    steps.shot("upload-preview")
    page.get_by_role("button", name="Apply").click()

    # Pick with search and bulk select; review; apply.
    page.get_by_role("link", name="Events").click()
    page.fill("#id_q", "checkout")
    page.get_by_role("button", name="Apply filters").click()
    page.get_by_label("Select all 12 events matching this filter").check()
    steps.shot("picked")
    page.get_by_role("button", name="Review the plan").click()
    expect(page.locator(".counts")).to_contain_text("Create: 12")
    steps.shot("plan")
    page.get_by_role("button", name="Apply: send 12 metrics").click()
    watch_run_finish(page, steps, "first-run-100")

    # The metrics are in LaunchDarkly (the sandbox's own page).
    page.goto(f"{sandbox.base_url}/_sandbox/")
    expect(page.get_by_text("checkout_step_11-binary")).to_be_visible()
    steps.shot("sandbox-metrics")

    # The connection breaks: the user revokes the token in LaunchDarkly.
    connection = LaunchDarklyConnection.objects.unscoped().get()
    sandbox.revoke_token(connection.access_token())
    page.goto(f"{live_server.url}/w/adas-shop/events/?value_kind=numeric")
    page.get_by_label("Select all 4 events matching this filter").check()
    page.get_by_role("button", name="Review the plan").click()
    page.get_by_role("button", name="Apply: send 4 metrics").click()
    page.get_by_role("link", name="Sync", exact=True).click()
    banner = page.get_by_text("LaunchDarkly needs you to reconnect")
    for _ in range(60):
        if banner.count():
            break
        page.wait_for_timeout(500)
        page.reload()
    expect(banner).to_be_visible()
    steps.shot("needs-reconnect-banner")
    # The email is a task of its own, queued when the connection broke: it may land
    # a moment after the banner shows.
    for _ in range(40):
        mails = [p.read_text() for p in Path(mail_dir).glob("*.log")]
        if mails:
            break
        page.wait_for_timeout(250)
    assert len(mails) == 1 and "LaunchDarkly needs you to reconnect" in mails[0]

    # LaunchDarkly misbehaves for a while: what is sent after the reconnect fails.
    sandbox.set_faults(rate=1, kinds=["503"], routes=["/api/v2/metrics"])
    page.locator(".banner").get_by_role("button", name="Reconnect").click()
    consent(page, steps, "reconsent")
    choose_default_project(page)
    page.get_by_role("link", name="Sync", exact=True).click()
    page.get_by_role("link", name=re.compile(r"Items of run")).click()
    expect(page.locator("#run-progress .percent")).to_have_text("100%", timeout=60_000)
    page.reload()
    expect(page.locator("tr.item-failed")).to_have_count(4)
    steps.shot("failed-items")

    # LaunchDarkly is fine again: Retry failed.
    sandbox.set_faults(rate=0, latency_ms=0)
    page.get_by_role("button", name="Retry failed").click()
    expect(page.locator("#run-progress .percent")).to_have_text("100%", timeout=60_000)
    page.reload()
    expect(page.locator("tr.item-failed")).to_have_count(0)
    steps.shot("retried")
    page.goto(f"{sandbox.base_url}/_sandbox/")
    expect(page.get_by_text("page_load_3-numeric")).to_be_visible()
