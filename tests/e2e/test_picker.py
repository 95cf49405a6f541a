"""An admin picks events with search and bulk select, sets kinds, reviews the plan and
applies it, in Chromium against the live server and the LaunchDarkly sandbox."""

import pytest
from playwright.sync_api import expect

from connector.metrics.models import MetricMapping
from connector.sources.models import ValueKind
from connector.sync.models import SyncItem, SyncRun
from tenants.models import Role
from tests.e2e.conftest import sign_in_and_connect
from tests.factories import TEST_PASSWORD, MembershipFactory
from tests.metrics.conftest import make_events

pytestmark = pytest.mark.e2e
PHONE = {"width": 390, "height": 844}


def fits_the_width(page):
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


def sign_in(page, live_server, membership):
    page.goto(f"{live_server.url}/signin/")
    page.fill("#id_username", membership.user.email)
    page.fill("#id_password", TEST_PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def test_picker__search_bulk_select_kinds_review_apply(steps, live_server, ld, transactional_db):
    owner = MembershipFactory(role=Role.OWNER, tenant__name="Acme Shop", tenant__slug="acme")
    workspace = owner.tenant
    make_events(workspace, 60, prefix="checkout")
    make_events(workspace, 12, prefix="page")
    make_events(workspace, 4, prefix="load_time", value_kind=ValueKind.NUMERIC, unit="ms")
    page = steps.page

    sign_in_and_connect(page, live_server, ld, owner.user.email)

    # Search, then select every match across the pages.
    page.get_by_role("link", name="Events", exact=True).click()
    expect(page.get_by_role("heading", name="Events")).to_be_visible()
    steps.shot("catalog")
    page.fill("#id_q", "checkout")
    page.get_by_role("button", name="Apply filters").click()
    expect(page.locator(".count")).to_contain_text("60 events match")
    expect(page.get_by_role("link", name="2", exact=True)).to_be_visible()  # a second page
    # Ticking shows the count, and the count stays in view while the list scrolls.
    expect(page.locator("#selected-count")).to_have_text("0 selected")
    page.get_by_label("Select checkout_00001", exact=True).check()
    page.get_by_label("Select checkout_00004", exact=True).check()
    expect(page.get_by_text("2 selected")).to_be_visible()
    page.mouse.wheel(0, 2500)
    expect(page.get_by_text("2 selected")).to_be_in_viewport()
    expect(page.get_by_role("button", name="Review the plan")).to_be_in_viewport()
    steps.shot("events-2-selected")
    page.mouse.wheel(0, -5000)
    page.get_by_label("Select all 60 events matching this filter").check()
    expect(page.locator("#selected-count")).to_have_text("All 60 matching events selected")
    page.select_option("#id_kind", "count")
    page.fill("#id_tags", "checkout web")
    expect(page.locator("#id_percentile")).to_be_hidden()  # only for percentile analysis
    steps.shot("select-all-matching")
    page.get_by_role("button", name="Review the plan").click()

    expect(page.get_by_role("heading", name="Review the plan")).to_be_visible()
    expect(page.locator(".counts")).to_contain_text("Create: 60")
    expect(page.get_by_text("checkout_00059-count")).to_be_visible()
    steps.shot("plan-60-counts")
    page.get_by_role("button", name="Apply: send 60 metrics").click()
    expect(page.get_by_text("Sync started: 60 metrics.")).to_be_visible()
    steps.shot("applied-60")

    # Numeric events: pick the page's rows by hand, percentile analysis.
    page.get_by_role("link", name="Events", exact=True).click()
    page.select_option("#id_value_kind", "numeric")
    page.get_by_role("button", name="Apply filters").click()
    expect(page.locator(".count")).to_contain_text("4 events match")
    page.get_by_label("Select every event on this page").check()
    page.get_by_label("Select load_time_00003").uncheck()
    # Times default to lower than baseline, said per row; one row is set otherwise.
    timed = page.get_by_label("Success criterion for load_time_00001")
    expect(timed.locator("option").first).to_have_text("Lower (inferred from ms)")
    expect(page.locator("#inferred-note")).to_contain_text("4 events on this page")
    page.get_by_label("Success criterion for load_time_00002").select_option("HigherThanBaseline")
    page.get_by_text("More options").click()
    page.select_option("#id_analysis", "percentile")
    expect(page.locator("#id_percentile")).to_be_visible()
    page.fill("#id_percentile", "95")
    page.fill("#id_name_template", "{name} ({unit})")
    page.get_by_role("button", name="Review the plan").click()
    expect(page.get_by_text("Unknown placeholder {unit}.")).to_be_visible()
    expect(page.get_by_label("Select load_time_00001")).to_be_checked()  # nothing lost
    expect(page.get_by_label("Select load_time_00003")).not_to_be_checked()
    expect(page.locator("#id_percentile")).to_have_value("95")
    steps.shot("template-refused")
    page.fill("#id_name_template", "{name} ({kind})")
    page.get_by_role("button", name="Review the plan").click()

    expect(page.locator(".counts")).to_contain_text("Create: 3")
    rows = page.locator(".plan-rows tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.first).to_contain_text("load_time_00000-numeric")
    expect(rows.first).to_contain_text("percentile 95")
    expect(rows.first).to_contain_text("ms")
    expect(rows.first).to_contain_text("Load_Time 0 (Numeric)")
    steps.shot("plan-numeric")
    page.get_by_role("button", name="Apply: send 3 metrics").click()
    expect(page.get_by_text("Sync started: 3 metrics.")).to_be_visible()
    steps.shot("applied-numeric")

    # A phone's width: the options stack above the list, the table scrolls, not the page.
    page.set_viewport_size(PHONE)
    page.get_by_role("link", name="Events", exact=True).click()
    page.get_by_label("Select checkout_00003", exact=True).check()
    expect(page.get_by_text("1 selected")).to_be_visible()
    assert fits_the_width(page), "the Events page is wider than 390 px"
    steps.shot("events-390px")

    mappings = MetricMapping.objects.unscoped().filter(tenant=workspace)
    assert mappings.filter(kind="count").count() == 60
    assert set(mappings.filter(kind="numeric").values_list("percentile", flat=True)) == {95}
    criteria = dict(mappings.filter(kind="numeric").values_list("metric_key", "success_criteria"))
    assert criteria == {
        "load_time_00000-numeric": "LowerThanBaseline",
        "load_time_00001-numeric": "LowerThanBaseline",
        "load_time_00002-numeric": "HigherThanBaseline",
    }
    runs = SyncRun.objects.unscoped().filter(tenant=workspace, trigger="plan")
    assert sorted(runs.values_list("total", flat=True)) == [3, 60]
    assert SyncItem.objects.unscoped().filter(run__in=runs).count() == 63


def test_picker__empty_catalog__says_how_to_fill_it(steps, live_server, transactional_db):
    owner = MembershipFactory(role=Role.OWNER, tenant__name="New Shop", tenant__slug="new")
    page = steps.page
    sign_in(page, live_server, owner)

    page.get_by_role("link", name="Events", exact=True).click()
    expect(page.get_by_role("heading", name="No events yet")).to_be_visible()
    expect(page.get_by_role("link", name="API keys")).to_be_visible()
    expect(page.get_by_text("python manage.py import_catalog --workspace new")).to_be_visible()
    steps.shot("empty-catalog")
    page.get_by_role("link", name="Upload a catalog file").click()
    expect(page.locator("input[type=file]")).to_be_attached()
    steps.shot("upload-from-events")
