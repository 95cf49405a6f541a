"""A new user's journey from the end of `make run` to metrics in LaunchDarkly, in
Chromium against the live server, a real Celery worker and the LaunchDarkly sandbox.

The test knows only what a person is shown: the sign-in comes from the block that
`make run` prints (`manage.py welcome`), the sandbox's demo account from its consent
page, the API token from the sandbox's overview; every other step follows a link or a
button by the text the page gives it. If a step needs knowledge the pages do not give,
this test cannot take it and fails. A screenshot per step goes to
test-artifacts/e2e/<test name>/.
"""

import html
import re
from io import StringIO

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from connector.metrics.models import MappingStatus, MetricMapping
from sandbox.state import OAuthClientSeed
from sandbox.testing import RunningSandbox
from tests.e2e.conftest import point_at_sandbox
from tests.workers import running_worker

pytestmark = pytest.mark.e2e

PHONE = {"width": 390, "height": 844}
# A CSV whose second row opens a quote it never closes.
BROKEN_CSV = (
    "key,name,description,value_kind\n"
    'coupon.removed,"Coupon removed,A discount code was taken off,conversion\n'
    "gift.wrapped,Gift wrapped,A gift option was chosen,conversion\n"
)


@pytest.fixture
def world(live_server, settings, tmp_path):
    """What `make run` starts: the demo seed, the sandbox with the connector's OAuth
    client, a worker; and the block it ends with."""
    client = OAuthClientSeed(
        client_id="connector-dev",
        client_secret="connector-dev-secret",
        redirect_uri=f"{live_server.url}/connect/launchdarkly/callback",
        name="Metric Connector (development)",
    )
    with RunningSandbox(oauth_client=client) as sandbox:
        env = point_at_sandbox(settings, sandbox, client, live_server.url)
        call_command("seed_demo", stdout=StringIO())
        welcome = StringIO()
        call_command("welcome", wait=10, stdout=welcome)
        with running_worker(concurrency=2, **env):
            yield sandbox, welcome.getvalue()


def printed(label, text):
    """A value of the welcome block, as a person reads it: `Label   value [/ value]`."""
    match = re.search(rf"^\s*{label}\s{{2,}}(\S+)(?: / (\S+))?", text, re.M)
    assert match, f"the welcome block has no {label!r}:\n{text}"
    return match.groups()


def show_terminal(page, text):
    """The terminal's last lines as a person sees them (for the screenshot)."""
    page.set_content(
        "<body style='margin:0;background:#1d2330'><pre style='color:#e8ebf2;font:14px/1.45 "
        f"monospace;padding:16px'>$ make run\n…\n{html.escape(text)}</pre></body>"
    )


def fits_the_width(page):
    """Nothing wider than the screen: no sideways scrolling of the whole page."""
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


def test_new_user_journey__from_make_run_to_metrics_using_only_what_pages_say(
    steps, live_server, world, transactional_db, tmp_path
):
    sandbox, welcome = world
    page = steps.page

    # The end of `make run`: the URL and the sign-in are all a newcomer has.
    show_terminal(page, welcome)
    steps.shot("make-run-output")
    (url, _) = printed("Open", welcome)
    email, password = printed("Sign in as", welcome)

    # Sign in; the workspace; its checklist says what to do first.
    page.goto(url)
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Demo Workspace")).to_be_visible()  # the only one
    expect(page.locator(".next-step")).to_contain_text("Connect LaunchDarkly")
    steps.shot("overview-checklist-start")
    page.locator(".next-step").get_by_role("link", name="Connect LaunchDarkly").click()

    # Settings names where the tokens go; connect by OAuth.
    expect(page.get_by_text("local LaunchDarkly sandbox")).to_be_visible()
    steps.shot("settings-connect")
    page.get_by_role("button", name="Connect LaunchDarkly").click()

    # The sandbox's consent page says which demo account to use.
    notice = page.get_by_text(re.compile(r"sign in with the demo account", re.I))
    expect(notice).to_be_visible()
    match = re.search(r"([\w.+-]+@[\w.-]+)\s*/\s*(\S+)", notice.inner_text())
    assert match, notice.inner_text()
    steps.shot("sandbox-consent")
    page.get_by_label("Email").fill(match.group(1))
    page.get_by_label("Password").fill(match.group(2))
    page.get_by_role("button", name="Authorize").click()

    # Choose the project (the page pre-selects the first), back to the checklist.
    expect(page.get_by_role("heading", name="Choose the LaunchDarkly project")).to_be_visible()
    page.get_by_role("button", name="Use this project").click()
    expect(page.get_by_text("The account of")).to_be_visible()  # a name, not an id
    steps.shot("settings-connected")
    page.get_by_role("link", name="Overview", exact=True).click()
    expect(page.locator(".next-step")).to_contain_text("Pick events")
    page.locator(".next-step").get_by_role("link", name="Pick events").click()

    # Pick: search, tick three events; the count shows and stays in view.
    page.get_by_label("Search").fill("checkout")
    page.get_by_role("button", name="Apply filters").click()
    for key in ("checkout.completed", "checkout.revenue", "page_view:/checkout"):
        page.get_by_label(f"Select {key}", exact=True).check()
    expect(page.get_by_text("3 selected")).to_be_visible()
    page.mouse.wheel(0, 2000)
    expect(page.get_by_text("3 selected")).to_be_in_viewport()
    steps.shot("events-3-selected")
    page.get_by_role("button", name="Review the plan").click()

    # The plan: what LaunchDarkly will get, tags included; apply.
    expect(page.get_by_role("heading", name="Review the plan")).to_be_visible()
    expect(page.locator(".counts")).to_contain_text("Create: 3")
    expect(page.get_by_text("managed-by-metric-connector").first).to_be_attached()
    steps.shot("plan-3")
    page.get_by_role("button", name="Apply: send 3 metrics").click()

    # The run finishes: one "all done" state, no Retry button, links to the metrics.
    expect(page.get_by_text(re.compile(r"All 3 metrics are in LaunchDarkly"))).to_be_visible(
        timeout=90_000
    )
    expect(page.get_by_role("button", name="Retry failed")).to_have_count(0)
    steps.shot("run-finished")
    assert MetricMapping.objects.unscoped().filter(status=MappingStatus.SYNCED).count() == 3
    in_sandbox = [
        metric
        for account in sandbox.state()["accounts"]
        for project in account["projects"]
        for metric in project["metrics"]
    ]
    assert sorted(m["eventKey"] for m in in_sandbox) == [
        "checkout.completed",
        "checkout.revenue",
        "page_view:/checkout",
    ]
    assert all("managed-by-metric-connector" in m["tags"] for m in in_sandbox)
    page.get_by_role("link", name="checkout.completed-binary").click()
    expect(page.get_by_text("checkout.completed-binary").first).to_be_visible()
    steps.shot("metric-in-launchdarkly")
    page.go_back()

    # The status page's chart, and the checklist all done.
    page.get_by_role("link", name="Sync", exact=True).click()
    expect(page.locator("svg.chart")).to_be_visible()
    steps.shot("status-chart")
    page.get_by_role("link", name="Overview", exact=True).click()
    expect(page.locator(".next-step")).to_contain_text("All set")
    steps.shot("overview-all-set")

    # Bad input: a CSV with an unclosed quote is explained, and nothing is dropped silently.
    page.get_by_role("link", name="Events", exact=True).click()
    page.get_by_role("link", name="Upload a catalog file").click()
    broken = tmp_path / "catalog.csv"
    broken.write_text(BROKEN_CSV)
    page.set_input_files("input[type=file]", str(broken))
    page.get_by_role("button", name="Preview").click()
    expect(page.get_by_text(re.compile(r"quote opens here", re.I)).first).to_be_visible()
    expect(page.get_by_text("gift.wrapped")).to_be_visible()  # the next line is not swallowed
    expect(page.get_by_role("button", name="Apply", exact=True)).to_be_disabled()
    steps.shot("csv-error")

    # The pasted-token path: disconnect (it asks first), a token from the sandbox's overview.
    page.get_by_role("link", name="Settings", exact=True).click()
    page.get_by_role("link", name="Disconnect…").click()
    expect(page.get_by_text("deletes nothing")).to_be_visible()
    steps.shot("disconnect-confirm")
    page.get_by_role("button", name="Disconnect").click()
    (overview, _) = printed("Its overview", welcome)
    settings_url = page.url
    page.goto(overview)
    page.get_by_role("button", name=re.compile("Create")).click()
    token = page.locator("code").filter(has_text=re.compile(r"^api-")).first.inner_text()
    page.goto(settings_url)
    page.get_by_label("API access token").fill(token)
    page.get_by_role("button", name="Check and save token").click()
    page.get_by_role("button", name="Use this project").click()
    expect(page.get_by_text("role Writer")).to_be_visible()
    steps.shot("settings-token-role")

    # A phone's width: the pages fit, nothing scrolls sideways.
    page.set_viewport_size(PHONE)
    for link in ("Overview", "Events", "Sync", "Settings"):
        page.get_by_role("link", name=link, exact=True).click()
        assert fits_the_width(page), f"{link} is wider than 390 px"
    page.get_by_role("link", name="Overview", exact=True).click()
    steps.shot("overview-390px")
