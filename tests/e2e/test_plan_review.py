"""The plan review at 60 and at 1,000 items, and an applied plan's run, in Chromium
against the live server, a real Celery worker and the LaunchDarkly sandbox. The page
heights measured are printed and saved beside the screenshots (heights.txt)."""

import pytest
from playwright.sync_api import expect

from connector.celery import app
from tenants.models import Role
from tests.e2e.conftest import sign_in_and_connect
from tests.factories import MembershipFactory
from tests.metrics.conftest import make_events, make_plan
from tests.workers import running_worker

pytestmark = pytest.mark.e2e

# A one-line row is about 40 px; with the header and the pager a page of 100 rows
# stays under these (a 60-item plan was 6,275 px with a row of about 100 px).
MAX_HEIGHT_60 = 3_600
MAX_HEIGHT_1000 = 5_600


def height(page) -> int:
    return page.evaluate("document.body.scrollHeight")


def test_plan_review__60_and_1000_items__compact_pages(steps, live_server, ld, transactional_db):
    owner = MembershipFactory(role=Role.OWNER, tenant__name="Acme Shop", tenant__slug="acme")
    workspace = owner.tenant
    checkout = make_events(workspace, 60, prefix="checkout")
    loads = make_events(workspace, 40, prefix="load_time", numeric_every=1)  # numeric, ms
    pages = make_events(workspace, 900, prefix="page")
    sixty = make_plan(workspace, owner.user, ids=[e.pk for e in checkout], tags=("web",))
    thousand = make_plan(
        workspace, owner.user, ids=[e.pk for e in [*checkout, *loads, *pages]], tags=("web",)
    )
    page = steps.page
    sign_in_and_connect(page, live_server, ld, owner.user.email)

    page.goto(f"{live_server.url}/w/acme/plans/{sixty.pk}/")
    expect(page.get_by_role("heading", name="Review the plan")).to_be_visible()
    expect(page.locator(".counts")).to_contain_text("Create: 60")
    expect(page.get_by_text("checkout_00059-binary")).to_be_visible()
    expect(page.get_by_role("button", name="Apply: send 60 metrics")).to_be_visible()
    expect(page.get_by_text("Nothing has been sent yet.")).to_be_visible()
    height_60 = height(page)
    steps.shot("plan-60")

    page.goto(f"{live_server.url}/w/acme/plans/{thousand.pk}/")
    expect(page.locator(".counts")).to_contain_text("Create: 1000")
    expect(page.get_by_role("button", name="Apply: send 1000 metrics")).to_be_visible()
    height_1000 = height(page)
    steps.shot("plan-1000-page-1")
    report = f"plan of 60 items: {height_60} px\nplan of 1,000 items, page 1: {height_1000} px\n"
    (steps.folder / "heights.txt").write_text(report)
    print(f"\n{report}", end="")

    # A row's fields unfold on demand, and say every tag LaunchDarkly will get.
    first = page.locator(".plan-rows tbody tr").first
    expect(first.locator("dl")).to_be_hidden()
    first.get_by_text("All fields").click()
    expect(first.locator("dl")).to_contain_text("managed-by-metric-connector, web")
    steps.shot("plan-1000-fields-open")

    assert height_60 <= MAX_HEIGHT_60 and height_1000 <= MAX_HEIGHT_1000, report


def test_plan_review__applied__links_its_run_and_shows_its_progress(
    steps, live_server, ld, transactional_db
):
    owner = MembershipFactory(role=Role.OWNER, tenant__name="Acme Shop", tenant__slug="acme")
    workspace = owner.tenant
    events = make_events(workspace, 12, prefix="checkout_step")
    plan = make_plan(workspace, owner.user, ids=[e.pk for e in events])
    page = steps.page
    sign_in_and_connect(page, live_server, ld, owner.user.email)
    plan_url = f"{live_server.url}/w/acme/plans/{plan.pk}/"

    page.goto(plan_url)
    expect(page.get_by_text("Nothing has been sent yet.")).to_be_visible()
    app.control.purge()  # messages left by an earlier, interrupted run; not this one's
    page.get_by_role("button", name="Apply: send 12 metrics").click()
    expect(page.get_by_text("Sync started: 12 metrics.")).to_be_visible()

    page.goto(plan_url)
    state = page.locator(".plan-state")
    expect(state).to_contain_text(f"by {owner.user.email}.")
    expect(state).to_contain_text("running, 0 of 12 sent.")
    expect(page.get_by_text("Nothing has been sent yet")).to_have_count(0)
    expect(page.get_by_role("button", name="Apply: send 12 metrics")).to_have_count(0)
    steps.shot("applied-running")

    # The run's messages are queued already: the worker must not purge them.
    with running_worker(concurrency=2, purge=False, LAUNCHDARKLY_BASE_URL=ld.base_url):
        for _ in range(120):
            page.reload()
            if "12 of 12 sent" in state.inner_text():
                break
            page.wait_for_timeout(500)
    expect(state).to_contain_text("12 of 12 sent.")
    steps.shot("applied-sent")
    run_link = state.get_by_role("link", name="Run ")
    run_link.click()
    expect(page.locator("#run-progress .percent")).to_have_text("100%")
    steps.shot("its-run")
