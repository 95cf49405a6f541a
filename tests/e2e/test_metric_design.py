"""Metric design in Chromium, against the live server, a real Celery worker and the
LaunchDarkly sandbox: a filter typed on the picker, a funnel of three events built on
the group builder (steps added and moved), the funnel on the review page, and after
applying, the metrics and the group in the sandbox."""

import time

import pytest
from playwright.sync_api import expect

from connector.celery import app
from tenants.models import Role
from tests.e2e.conftest import sign_in_and_connect
from tests.factories import MembershipFactory
from tests.metrics.conftest import make_event
from tests.workers import running_worker

pytestmark = pytest.mark.e2e
PROPERTIES = {"plan": "string", "amount": "number"}


def wait_for(check, *, seconds=90):
    """Poll until `check()` is truthy (the worker sends in the background)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if found := check():
            return found
        time.sleep(0.5)
    return check()


def test_metric_design__funnel_of_three_events__built_reviewed_applied(
    steps, live_server, ld, transactional_db
):
    owner = MembershipFactory(role=Role.OWNER, tenant__name="Acme Shop", tenant__slug="acme")
    workspace = owner.tenant
    for key in ("view_cart", "checkout"):
        make_event(workspace, key, properties=PROPERTIES)
    paid = make_event(workspace, "paid", properties=PROPERTIES)
    make_event(workspace, "newsletter_signup")
    page = steps.page
    sign_in_and_connect(page, live_server, ld, owner.user.email)

    # The picker: three events, and a filter on one of them.
    page.goto(f"{live_server.url}/w/acme/events/")
    for key in ("view_cart", "checkout", "paid"):
        page.get_by_label(f"Select {key}", exact=True).check()
    filters = page.locator(f"#filters-{paid.pk}")
    expect(filters).to_be_hidden()  # under its event, once asked for
    page.get_by_text("Add a filter for paid").click()
    expect(filters).to_contain_text("Properties: amount (number), plan (string).")
    page.get_by_label("Filter for paid", exact=True).fill("plan = pro")
    expect(page.get_by_label("Another filter for paid")).to_be_visible()  # one more offered
    steps.shot("picker-filter")
    page.get_by_role("button", name="Review the plan").click()

    expect(page.get_by_role("heading", name="Review the plan")).to_be_visible()
    expect(page.locator(".counts")).to_contain_text("Create: 4")
    expect(page.locator(".where")).to_have_text("where plan = pro")

    # The builder: a funnel, its third step added, then moved into place.
    page.get_by_role("link", name="Add a metric group").click()
    expect(page.get_by_role("heading", name="Add a metric group")).to_be_visible()
    page.fill("#id_name", "Checkout funnel")
    page.get_by_label("Event of step 1").select_option("view_cart")
    page.get_by_label("Name of step 1").fill("Saw the cart")
    page.get_by_label("Event of step 2").select_option("paid")
    page.get_by_label("Filter of step 2").fill("plan = pro")
    page.get_by_label("Name of step 2").fill("Paid (pro)")
    page.get_by_role("button", name="Add a step").click()
    page.wait_for_load_state()
    page.get_by_label("Event of step 3").select_option("checkout")
    expect(page.locator("#step-properties-2")).to_contain_text("amount (number), plan (string)")
    page.get_by_label("Name of step 3").fill("Checked out")
    page.get_by_role("button", name="Move step 3 up").click()
    expect(page.get_by_label("Event of step 2")).to_have_value("checkout")
    expect(page.get_by_label("Name of step 2")).to_have_value("Checked out")
    expect(page.get_by_label("Filter of step 3")).to_have_value("plan = pro")
    steps.shot("builder-three-steps")
    page.get_by_role("button", name="Save the funnel").click()

    # The review: the funnel, its steps in order, sent with the metrics.
    expect(page.get_by_text("Saved the funnel “Checkout funnel” to the plan.")).to_be_visible()
    groups = page.locator("#metric-groups")
    row = groups.locator("table.group-rows tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Create")
    expect(row).to_contain_text("checkout-funnel")
    members = row.locator("ol.group-members li")
    expect(members).to_have_count(3)
    expect(members.nth(0)).to_contain_text("view_cart-binary Saw the cart")
    expect(members.nth(1)).to_contain_text("checkout-binary Checked out")
    expect(members.nth(2)).to_contain_text("Paid (pro)")
    apply = page.get_by_role("button", name="Apply: send 4 metrics and 1 metric group")
    expect(apply).to_be_visible()
    groups.scroll_into_view_if_needed()
    steps.shot("review-with-funnel")

    app.control.purge()  # messages left by an earlier, interrupted run; not this one's
    apply.click()
    expect(page.get_by_text("Sync started: 4 metrics and 1 metric group.")).to_be_visible()
    with running_worker(concurrency=2, purge=False, LAUNCHDARKLY_BASE_URL=ld.base_url):
        created = wait_for(lambda: ld.metric_groups())
        page.reload()
    steps.shot("run-after-apply")

    metrics = {
        metric["key"]: metric
        for account in ld.state()["accounts"]
        for project in account["projects"]
        for metric in project["metrics"]
    }
    filtered_key = next(key for key in metrics if key.startswith("paid-f"))
    assert sorted(metrics) == sorted(
        ["view_cart-binary", "checkout-binary", "paid-binary", filtered_key]
    )
    assert metrics[filtered_key]["filters"]["attribute"] == "plan"
    (group,) = created
    assert (group["key"], group["kind"], group["name"]) == (
        "checkout-funnel",
        "funnel",
        "Checkout funnel",
    )
    assert group["metrics"] == [
        {"key": "view_cart-binary", "nameInGroup": "Saw the cart"},
        {"key": "checkout-binary", "nameInGroup": "Checked out"},
        {"key": filtered_key, "nameInGroup": "Paid (pro)"},
    ]


def test_metric_design__conventions_and_a_standard_group(steps, live_server, ld, transactional_db):
    owner = MembershipFactory(role=Role.OWNER, tenant__name="Acme Shop", tenant__slug="acme")
    workspace = owner.tenant
    for key in ("signup", "page_load"):
        make_event(workspace, key)
    page = steps.page
    sign_in_and_connect(page, live_server, ld, owner.user.email)

    # The conventions, reached from the picker; a template naming no event is refused.
    page.goto(f"{live_server.url}/w/acme/events/")
    page.get_by_role("link", name="naming conventions").click()
    expect(page.get_by_role("heading", name="Naming conventions")).to_be_visible()
    page.fill("#id_name_template", "{kind}")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Name the event with {name} or {event}")).to_be_visible()
    steps.shot("conventions-refused")
    page.fill("#id_name_template", "[web] {name}")
    page.fill("#id_tags", "growth")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Naming conventions saved")).to_be_visible()
    expect(page.locator(".facts")).to_contain_text("[web] Page Load")
    steps.shot("conventions-saved")

    # A metric set of both events, then a standard group of the workspace's tag.
    page.goto(f"{live_server.url}/w/acme/events/")
    page.get_by_label("Select signup", exact=True).check()
    page.get_by_label("Select page_load", exact=True).check()
    page.get_by_label("Metric set").check()
    page.get_by_role("button", name="Review the plan").click()
    expect(page.locator(".counts")).to_contain_text("Create: 4")
    expect(page.get_by_text("[web] Signup (conversion rate)")).to_be_visible()
    page.get_by_role("link", name="Add a metric group").click()
    page.get_by_role("link", name="Standard group").click()
    page.fill("#id_name", "Growth metrics")
    page.get_by_label("Every metric with a tag").check()
    page.fill("#id_tag", "growth")
    steps.shot("builder-standard")
    page.get_by_role("button", name="Save the group").click()

    row = page.locator("#metric-groups table.group-rows tbody tr")
    expect(row).to_contain_text("Standard")
    expect(row).to_contain_text("of tag growth")
    expect(row.locator("li")).to_have_count(4)
    expect(
        page.get_by_role("button", name="Apply: send 4 metrics and 1 metric group")
    ).to_be_visible()
    steps.shot("review-standard-group")
