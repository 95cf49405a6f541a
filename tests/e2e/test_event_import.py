"""An admin sets up the event import in the browser (environments, identities), sends a
file of occurrences, previews it, applies it, and watches the occurrences arrive in
LaunchDarkly (the sandbox) on the status page. A real Celery worker delivers them."""

import pytest
from playwright.sync_api import expect

from connector.sources.models import SourceEvent, ValueKind
from tenants.models import Role
from tenants.scope import tenant_scope
from tests.e2e.conftest import sign_in_and_connect
from tests.factories import MembershipFactory
from tests.sync.conftest import apply_plan
from tests.sync.test_engine import run_all
from tests.workers import running_worker, wait_until

pytestmark = pytest.mark.e2e

CSV = """event,timestamp,user_id,account_id,value
signup,,u-1,,
signup,,u-2,acme,
checkout,,u-1,,
load_time,,u-3,,812
load_time,,u-4,,fast
no_such_event,,u-5,,
"""


def imported(ld):
    counts = ld.events()["counts"]
    account = next(iter(counts.values()), {})
    return account.get("default", {}).get("production", {})


def test_event_import__settings_file_preview_apply_delivered_on_the_status_page(
    steps, live_server, ld, transactional_db, tmp_path
):
    owner = MembershipFactory(role=Role.OWNER, tenant__name="Acme Shop", tenant__slug="acme")
    workspace = owner.tenant
    page = steps.page
    sign_in_and_connect(page, live_server, ld, owner.user.email)
    with tenant_scope(workspace):
        events = [
            SourceEvent.objects.create(key="signup"),
            SourceEvent.objects.create(key="checkout"),
            SourceEvent.objects.create(key="load_time", value_kind=ValueKind.NUMERIC, unit="ms"),
        ]
    apply_plan(workspace, owner.user, events)  # their metrics, created in the sandbox
    run_all(workspace)

    # Settings: where events go, and which identity is which context kind.
    page.get_by_role("link", name="Event import").click()
    expect(page.get_by_role("heading", name="Event import")).to_be_visible()
    expect(page.get_by_text("No LaunchDarkly environment receives events yet")).to_be_visible()
    steps.shot("status-before-setup")
    page.locator(".page-head").get_by_role("link", name="Settings").click()
    expect(page.locator(".import-access")).to_contain_text("Writer role")
    page.get_by_label("production").check()
    page.fill("#id_identities", "user_id = user\naccount_id = organization")
    steps.shot("settings-filled")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_text("Event import settings saved.")).to_be_visible()

    # A file of occurrences, previewed before anything is sent.
    page.goto(f"{live_server.url}/w/acme/imports/")
    page.get_by_role("link", name="Send occurrences in a file").click()
    upload = tmp_path / "occurrences.csv"
    upload.write_text(CSV)
    page.set_input_files("input[type=file]", str(upload))
    page.get_by_role("button", name="Preview").click()
    expect(page.get_by_text("must be a number")).to_be_visible()
    expect(page.get_by_text("is not in the workspace's catalog")).to_be_visible()
    steps.shot("preview")

    with running_worker(concurrency=2, LAUNCHDARKLY_BASE_URL=ld.base_url):
        page.get_by_role("button", name="Apply", exact=True).click()
        expect(page.get_by_role("heading", name="Event import")).to_be_visible()
        assert wait_until(lambda: sum(imported(ld).values()) == 4, timeout=30), imported(ld)
    page.reload()

    totals = page.locator(".import-totals")
    expect(totals).to_contain_text("Received")
    expect(page.locator(".import-environments")).to_contain_text("production")
    delivered = page.locator(".import-totals dd").nth(4)
    expect(delivered).to_have_text("4")
    expect(page.locator(".import-events")).to_contain_text("load_time")
    steps.shot("status-delivered")
    assert imported(ld) == {"signup": 2, "checkout": 1, "load_time": 1}
