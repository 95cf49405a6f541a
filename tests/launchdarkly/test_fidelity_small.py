"""Small places where the connector follows LaunchDarkly's documented behaviour:
JSON Patch operations, jitter on rate-limit waits, the User-Agent header, and what
LaunchDarkly says each instance offers."""

import random
import re
import time
from html import escape

import pytest
from django.test import Client
from django.urls import reverse

import connector
from connector.connections import gate
from connector.launchdarkly import errors
from connector.launchdarkly.client import EventImportClient
from connector.launchdarkly.instances import INSTANCES, Instance, availability_notes
from connector.launchdarkly.ratelimit import MAX_WAIT_S
from connector.metrics.desired import MANAGED_TAG, json_patch
from connector.metrics.models import MetricMapping
from connector.sync import services
from connector.sync.models import ItemStatus, SyncItem
from tenants.scope import tenant_scope
from tests.sync.conftest import apply_plan, connect_workspace, make_events, sandbox_metrics

CONVERSION = {
    "key": "signup",
    "name": "Signup",
    "description": "Someone signed up",
    "kind": "custom",
    "eventKey": "signup",
    "isNumeric": False,
    "unitAggregationType": "average",
    "randomizationUnits": ["user"],
    "tags": [MANAGED_TAG],
}


def run_all(workspace):
    """Pump and run items in this process until nothing is ready (no worker)."""
    with tenant_scope(workspace):
        for _ in range(100):
            ready = services.pump()
            if not ready:
                return
            for item_id in ready:
                services.item_run(item_id=item_id)


def signed_in(membership):
    # This folder's `client` fixture is a LaunchDarkly client, not Django's test client.
    web = Client()
    web.force_login(membership.user)
    return web


# --- JSON Patch ------------------------------------------------------------------------


def test_json_patch__fields_launchdarkly_has__replaced():
    """Contract MET-PATCH-1: a field the metric already has is changed with `replace`,
    as LaunchDarkly's docs and its Terraform provider do."""
    desired = {**CONVERSION, "name": "Signed up", "description": "New words"}

    operations = json_patch(desired, CONVERSION)

    assert sorted(operations, key=lambda o: o["path"]) == [
        {"op": "replace", "path": "/description", "value": "New words"},
        {"op": "replace", "path": "/name", "value": "Signed up"},
    ]


def test_json_patch__field_launchdarkly_left_out__added():
    """Contract MET-PATCH-1: `replace` needs the member to exist (RFC 6902 §4.3), so a
    field missing from LaunchDarkly's metric is created with `add`."""
    actual = {k: v for k, v in CONVERSION.items() if k != "description"}

    operations = json_patch(CONVERSION, actual)

    assert operations == [{"op": "add", "path": "/description", "value": "Someone signed up"}]


def test_json_patch__field_no_longer_wanted__removed():
    """Contract MET-PATCH-1: a managed field we no longer send is removed."""
    numeric = {
        **CONVERSION,
        "isNumeric": True,
        "unit": "ms",
        "successCriteria": "LowerThanBaseline",
    }
    desired = {**numeric, "isNumeric": False}
    del desired["unit"]

    operations = json_patch(desired, numeric)

    assert {"op": "remove", "path": "/unit"} in operations
    assert {"op": "replace", "path": "/isNumeric", "value": False} in operations


@pytest.mark.django_db
def test_sync__renamed_and_redescribed__update_with_replace_applies(workspace, admin, ld):
    """Contract MET-PATCH-1: an update of an existing metric's name and description,
    sent as `replace`, is applied by LaunchDarkly (the sandbox) and ends in sync."""
    connect_workspace(signed_in(admin), workspace, ld)
    events = make_events(workspace, 2, numeric_every=0)
    apply_plan(workspace, admin.user, events)
    run_all(workspace)
    with tenant_scope(workspace):
        mapping = MetricMapping.objects.order_by("id").first()
        before = {"name": mapping.name, "description": mapping.description}
    current = next(m for m in sandbox_metrics(ld) if m["key"] == mapping.metric_key)
    assert "name" in current and "description" in current  # so both are `replace`

    second = apply_plan(
        workspace,
        admin.user,
        events,
        name_template="Renamed {name}",
        description_template="Described {name}",
    )
    with tenant_scope(workspace):
        mapping.refresh_from_db()
        desired = {"name": mapping.name, "description": mapping.description}
    assert desired != before
    run_all(workspace)

    with tenant_scope(workspace):
        updates = list(SyncItem.objects.filter(run_id=second.pk))
    assert {(i.action, i.status) for i in updates} == {("update", ItemStatus.DONE)}
    updated = next(m for m in sandbox_metrics(ld) if m["key"] == mapping.metric_key)
    assert {"name": updated["name"], "description": updated["description"]} == desired
    assert updated["_version"] == 2


# --- jitter on rate-limit waits -------------------------------------------------------


def test_jittered_wait__same_reset__spread_over_at_most_the_cap():
    """Contract RL-2: LaunchDarkly asks for jitter on 429s; items waiting for the same
    reset are spread over [wait, wait + cap], not all woken at the same instant."""
    random.seed(7)
    waits = [gate.jittered_wait(8.0) for _ in range(50)]

    assert all(8.0 <= w <= 8.0 + gate.JITTER_MIN_S for w in waits)  # 10% of 8 s < 1 s
    assert len(set(waits)) == 50
    long = [gate.jittered_wait(600.0) for _ in range(50)]
    assert all(600.0 <= w <= 600.0 + gate.JITTER_MAX_S for w in long)
    assert max(long) - min(long) > 1.0


def test_jittered_wait__at_max_wait__spread_but_never_longer():
    """Contract RL-2: a wait already at MAX_WAIT_S stays within it, and is still spread
    (it ends before LaunchDarkly's reset anyway, so ending a little earlier is safe)."""
    random.seed(7)
    waits = [gate.jittered_wait(MAX_WAIT_S * 10) for _ in range(50)]

    assert all(MAX_WAIT_S - gate.JITTER_MAX_S <= w <= MAX_WAIT_S for w in waits)
    assert len(set(waits)) == 50


def _rate_limited_gate(workspace, admin, ld):
    connection = connect_workspace(signed_in(admin), workspace, ld)
    return lambda: gate.Gate(connection=connection)


@pytest.mark.django_db
def test_gate__429_with_retry_after__must_wait_past_it_with_jitter(workspace, admin, ld_with):
    """Contract RL-2: after a 429, the item is rescheduled no earlier than LaunchDarkly's
    Retry-After and no later than that plus the jitter cap; the next item, held back by
    the account's pause until the same moment, is rescheduled to another time."""
    # A 10-minute window: the Retry-After is long enough to be jittered, short enough
    # not to be capped, and the window does not roll over between two calls.
    ld = ld_with(rate_window_s=600)
    new_gate = _rate_limited_gate(workspace, admin, ld)
    ld.set_limits(route_per_10s=1, retry_after_mode=True)
    route = "GET /api/v2/metrics/{projectKey}"
    random.seed(3)
    with tenant_scope(workspace):
        new_gate().call(route, lambda c: c.list_metrics_page("default"))
        before = time.time()
        with pytest.raises(gate.MustWait) as first:
            new_gate().call(route, lambda c: c.list_metrics_page("default"))
        after = time.time()
        with pytest.raises(gate.MustWait) as second:
            new_gate().call(route, lambda c: c.list_metrics_page("default"))
        later = time.time()

    cause = first.value.__cause__
    assert isinstance(cause, errors.RateLimited)  # LaunchDarkly answered 429
    reset = cause.retry_after_s
    assert before + reset <= first.value.until <= after + reset + gate.JITTER_MAX_S
    assert second.value.__cause__ is None  # the account's pause held it back: no call
    assert before + reset <= second.value.until <= later + reset + gate.JITTER_MAX_S
    # Both wait for the same reset; without jitter they would wake within microseconds.
    assert abs(first.value.until - second.value.until) > 0.01


@pytest.mark.django_db
def test_gate__budget_spent__must_wait_jittered_within_max_wait(
    workspace, admin, ld_with, settings
):
    """Contract RL-2: a wait the budget imposes before calling is jittered too, and a
    window reset further away than MAX_WAIT_S still never parks work beyond it."""
    settings.SYNC_MAX_INLINE_WAIT_S = 0
    ld = ld_with(rate_window_s=86_400)
    new_gate = _rate_limited_gate(workspace, admin, ld)
    ld.set_limits(route_per_10s=1)
    route = "GET /api/v2/metrics/{projectKey}"
    with tenant_scope(workspace):
        first = new_gate()
        first.call(route, lambda c: c.list_metrics_page("default"))
        before = time.time()
        with pytest.raises(gate.MustWait) as waited:
            first.call(route, lambda c: c.list_metrics_page("default"))
        after = time.time()
    assert waited.value.__cause__ is None  # the budget stopped it: no call was made
    assert before + MAX_WAIT_S - gate.JITTER_MAX_S <= waited.value.until <= after + MAX_WAIT_S


# --- User-Agent -----------------------------------------------------------------------

# RFC 9110 §5.6.2: token = 1*tchar; a product is token ["/" token] (§10.1.5).
TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
USER_AGENT = re.compile(rf"{TOKEN}/{TOKEN}")


@pytest.mark.parametrize(
    ("source_product", "expected"),
    [
        ("Acme Analytics", "AcmeAnalytics"),
        ("Crème Brûlée (Beta)", "CremeBruleeBeta"),
        ("Acme\r\nX-Injected: 1", "AcmeX-Injected1"),
        (" ☃ ", "Partner"),
    ],
)
def test_user_agent__source_product_not_a_token__sent_as_one(
    sandbox, settings, make_client, source_product, expected
):
    """Contract UA-1: whatever SOURCE_PRODUCT_NAME holds, the REST client's User-Agent
    reaches LaunchDarkly as one RFC 9110 product token, `MetricSync-<Partner>-int/<v>`."""
    settings.SOURCE_PRODUCT_NAME = source_product
    seq = sandbox.requests_since()[-1]["seq"] if sandbox.requests_since() else 0

    make_client().get_caller_identity()

    (logged,) = [r for r in sandbox.requests_since(seq) if r["path"] == "/api/v2/caller-identity"]
    assert logged["user_agent"] == f"MetricSync-{expected}-int/{connector.__version__}"
    assert USER_AGENT.fullmatch(logged["user_agent"])


def test_user_agent__event_import__metric_import_product_token(sandbox, settings):
    """Contract UA-1: the event import client keeps LaunchDarkly's documented
    `MetricImport-<Partner>-int/<version>`, with the partner made a token."""
    settings.SOURCE_PRODUCT_NAME = "Acme Analytics"
    token = sandbox.mint_token("reader", permissions=["importEventData"])
    importer = EventImportClient(base_url=sandbox.base_url, token=token)
    event = {"kind": "custom", "key": "order", "creationDate": 1, "contextKeys": {"user": "u"}}

    importer.import_events("default", "production", [event], payload_id="ua-1")

    (sent,) = [r for r in sandbox.requests_since() if r["path"].startswith("/v2/event-data")]
    assert sent["status"] == 202
    assert sent["user_agent"] == f"MetricImport-AcmeAnalytics-int/{connector.__version__}"


# --- what the EU and federal instances offer ------------------------------------------


@pytest.mark.django_db
def test_connect_page__real_hosts__each_instance_says_what_launchdarkly_documents(
    workspace, admin, settings
):
    """Contract INST-1: under the instance chooser, each instance carries LaunchDarkly's
    own statement on Experimentation and metrics there, with a link to where it says so."""
    settings.LAUNCHDARKLY_BASE_URL = ""

    response = signed_in(admin).get(reverse("connections:settings", args=[workspace.slug]))

    assert response.status_code == 200
    page = response.content.decode()
    chooser_at = page.index('name="instance"')
    for instance in INSTANCES.values():
        assert instance.availability, instance.key
        assert escape(instance.label) in page
        for note in instance.availability:
            assert page.index(escape(note.text)) > chooser_at
            if note.url:
                assert f'href="{note.url}"' in page
    eu, federal = INSTANCES["eu"].availability, INSTANCES["federal"].availability
    assert any("not available" in n.text and "European Union" in n.text for n in eu)
    assert any("not available in federal environments" in n.text for n in federal)
    assert all(n.url.startswith("https://launchdarkly.com/docs/") for n in (*eu, *federal) if n.url)


def test_instances__no_statement__says_the_docs_do_not_say():
    """Contract INST-1: an instance with no statement found says so, rather than guess."""
    bare = Instance("x", "X", "https://x.example", "https://events.x.example")

    (note,) = availability_notes(bare)

    assert note.text == (
        "LaunchDarkly's documentation does not say whether Experimentation is available here."
    )
    assert note.url == ""
