"""An admin picks events with search and bulk select, sets kinds, reviews the plan and
applies it, in Chromium against the live server and the LaunchDarkly sandbox."""

import pytest
from playwright.sync_api import expect

from connector.metrics.models import MetricMapping
from connector.sources.models import ValueKind
from connector.sync.models import SyncItem, SyncRun
from tenants.models import Role
from tests.factories import TEST_PASSWORD, MembershipFactory
from tests.metrics.conftest import make_events

pytestmark = pytest.mark.e2e


def test_picker__search_bulk_select_kinds_review_apply(steps, live_server, ld, transactional_db):
    owner = MembershipFactory(role=Role.OWNER, tenant__name="Acme Shop", tenant__slug="acme")
    workspace = owner.tenant
    make_events(workspace, 60, prefix="checkout")
    make_events(workspace, 12, prefix="page")
    make_events(workspace, 4, prefix="load_time", value_kind=ValueKind.NUMERIC, unit="ms")
    page = steps.page

    page.goto(f"{live_server.url}/signin/")
    page.fill("#id_username", owner.user.email)
    page.fill("#id_password", TEST_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto(f"{live_server.url}/w/acme/settings/")
    page.fill("#id_token", ld.mint_token("writer"))
    page.get_by_role("button", name="Check and save token").click()
    page.check('input[name="project_key"][value="default"]')
    page.get_by_role("button", name="Use this project").click()
    expect(page.locator(".status-active")).to_have_text("Connected")

    # Search, then select every match across the pages.
    page.get_by_role("link", name="Events").click()
    expect(page.get_by_role("heading", name="Events")).to_be_visible()
    steps.shot("catalog")
    page.fill("#id_q", "checkout")
    page.get_by_role("button", name="Apply filters").click()
    expect(page.locator(".count")).to_contain_text("60 events match")
    expect(page.get_by_role("link", name="2", exact=True)).to_be_visible()  # a second page
    page.get_by_label("Select all 60 events matching this filter").check()
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
    page.get_by_role("link", name="Events").click()
    page.select_option("#id_value_kind", "numeric")
    page.get_by_role("button", name="Apply filters").click()
    expect(page.locator(".count")).to_contain_text("4 events match")
    page.get_by_label("Select every event on this page").check()
    page.get_by_label("Select load_time_00003").uncheck()
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

    mappings = MetricMapping.objects.unscoped().filter(tenant=workspace)
    assert mappings.filter(kind="count").count() == 60
    assert set(mappings.filter(kind="numeric").values_list("percentile", flat=True)) == {95}
    runs = SyncRun.objects.unscoped().filter(tenant=workspace, trigger="plan")
    assert sorted(runs.values_list("total", flat=True)) == [3, 60]
    assert SyncItem.objects.unscoped().filter(run__in=runs).count() == 63
