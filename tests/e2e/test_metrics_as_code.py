"""Metrics as code in the browser: a YAML file pasted on the import page, its problems
shown by place, then its summary, then the ordinary review page with its plan, in
Chromium against the live server and the LaunchDarkly sandbox (screenshots)."""

import pytest
from playwright.sync_api import expect

from connector.metrics.models import MetricPlan
from connector.sources.models import SourceEvent
from tenants.models import Role
from tenants.scope import tenant_scope
from tests.e2e.conftest import sign_in_and_connect
from tests.factories import MembershipFactory
from tests.metrics.conftest import make_event

pytestmark = pytest.mark.e2e

FILE = """version: 1
events:
  - {key: purchase, name: Purchase, kind: numeric, unit: USD, properties: {plan: string}}
  - {key: view_cart, name: View cart}
metrics:
  - {event: signup, kind: binary}
  - {event: view_cart, kind: binary}
  - {event: purchase, kind: numeric, analysis: percentile, percentile: 90, variant: p90,
     name: Purchase (p90)}
  - {event: purchase, kind: numeric, filter: "plan = pro", name: Pro purchases}
groups:
  - {name: Signup to cart, kind: funnel, metrics: [signup-binary, view_cart-binary]}
"""


def test_metrics_as_code__paste_a_file__see_its_plan_on_the_review_page(
    steps, live_server, ld, transactional_db
):
    owner = MembershipFactory(role=Role.OWNER, tenant__name="Acme Shop", tenant__slug="acme")
    workspace = owner.tenant
    make_event(workspace, "signup")
    page = steps.page
    sign_in_and_connect(page, live_server, ld, owner.user.email)

    page.goto(f"{live_server.url}/w/acme/metrics/import/")
    expect(page.get_by_role("heading", name="Import metrics as code")).to_be_visible()
    expect(page.get_by_role("link", name="Export as YAML")).to_be_visible()

    # A slip first: the problem is shown with its place, and nothing changes.
    page.fill("#id_text", FILE.replace("kind: funnel", "kind: pyramid"))
    page.get_by_role("button", name="Check the file").click()
    expect(page.locator(".document-errors")).to_contain_text("groups[0].kind")
    expect(page.locator(".document-errors")).to_contain_text("must be funnel or standard")
    steps.shot("problem-by-place")

    page.fill("#id_text", FILE)
    page.get_by_role("button", name="Check the file").click()
    expect(page.locator(".events-to-add")).to_have_text("purchase, view_cart")
    expect(page.locator(".document-rows")).to_contain_text("purchase-p90-numeric")
    steps.shot("summary")
    with tenant_scope(workspace):
        assert SourceEvent.objects.count() == 1 and not MetricPlan.objects.exists()

    page.get_by_role("button", name="Add 2 events and create the plan").click()
    expect(page.get_by_role("heading", name="Review the plan")).to_be_visible()
    expect(page.locator(".counts")).to_contain_text("Create: 4")
    expect(page.get_by_text("purchase-p90-numeric")).to_be_visible()
    expect(page.get_by_role("cell", name="Signup to cart", exact=True)).to_be_visible()
    expect(
        page.get_by_role("button", name="Apply: send 4 metrics and 1 metric group")
    ).to_be_visible()
    steps.shot("review-page")
    with tenant_scope(workspace):
        plan = MetricPlan.objects.get()
        assert sorted(SourceEvent.objects.values_list("key", flat=True)) == [
            "purchase",
            "signup",
            "view_cart",
        ]
    assert page.url == f"{live_server.url}/w/acme/plans/{plan.pk}/"
