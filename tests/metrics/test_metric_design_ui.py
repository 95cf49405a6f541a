"""Metric design through the pages, over HTTP: the picker's metric set and property
filters, the group builder (funnels and standard groups), the review's groups and
filtered rows, and the workspace's naming conventions."""

import pytest
from django.urls import reverse

from connector.metrics.models import MetricConventions, MetricKind, MetricMapping, MetricPlan
from connector.planner.plans import plan_compute
from connector.sources.models import ValueKind
from tenants.scope import tenant_scope
from tests.metrics.conftest import make_event, make_plan
from tests.metrics.test_picker import choices
from tests.metrics.test_plan_page import dom, field_of, plan_rows

pytestmark = pytest.mark.django_db

PROPERTIES = {"plan": "string", "amount": "number"}


def picker_post_url(workspace):
    return reverse("planner:plan_create", args=[workspace.slug])


def review_url(workspace, plan):
    return reverse("planner:plan", args=[workspace.slug, plan.pk])


def builder_url(workspace, plan):
    return reverse("planner:plan_groups", args=[workspace.slug, plan.pk])


def conventions_url(workspace):
    return reverse("planner:conventions", args=[workspace.slug])


def plans():
    return MetricPlan.objects.unscoped()


def saved_plan(response):
    assert response.status_code == 302, response.content.decode()[:2000]
    return plans().get(pk=int(response["Location"].rstrip("/").split("/")[-1]))


def compute(workspace, plan):
    with tenant_scope(workspace):
        plan.refresh_from_db()
        return plan_compute(plan=plan)


def row_by_key(page, key):
    (row,) = [tr for tr in plan_rows(page) if tr.one("code", "metric-key").text == key]
    return row


# --- the picker: metric sets --------------------------------------------------------------


def test_picker__metric_set__conversion_rate_and_count_rows(client_of, admin, workspace, connected):
    signup = make_event(workspace, "signup")
    load = make_event(workspace, "page_load", value_kind=ValueKind.NUMERIC, unit="ms")
    client = client_of(admin)

    plan = saved_plan(
        client.post(
            picker_post_url(workspace), {"event": [signup.pk, load.pk], **choices(metric_set="on")}
        )
    )
    page = dom(client.get(review_url(workspace, plan)))

    assert plan.choices["metric_set"] is True
    keys = [tr.one("code", "metric-key").text for tr in plan_rows(page)]
    assert sorted(keys) == [
        "page_load-numeric",
        "page_load-p90-numeric",
        "signup-binary",
        "signup-count",
    ]
    assert row_by_key(page, "signup-binary").one(cls="set-label").text == "conversion rate"
    assert row_by_key(page, "signup-count").one(cls="set-label").text == "count"
    assert row_by_key(page, "page_load-p90-numeric").one(cls="set-label").text == "p90"
    assert "Signup (count)" in row_by_key(page, "signup-count").text


def test_picker__without_metric_set__one_metric_per_event(client_of, admin, workspace, connected):
    signup = make_event(workspace, "signup")

    plan = saved_plan(
        client_of(admin).post(picker_post_url(workspace), {"event": [signup.pk], **choices()})
    )

    assert [row.mapping.metric_key for row in compute(workspace, plan).rows] == ["signup-binary"]


def test_picker__offers_the_set_and_a_filter_field_with_the_events_properties(
    client_of, admin, workspace, connected
):
    make_event(workspace, "purchase", properties=PROPERTIES)
    make_event(workspace, "signup")

    page = client_of(admin).get(reverse("planner:picker", args=[workspace.slug])).content.decode()

    assert 'name="metric_set"' in page
    assert "Conversion rate + count for conversion events; mean + p90 for numeric" in page
    assert "<code>amount</code> (number), <code>plan</code> (string)" in page
    assert page.count('name="filter-') == 1  # signup has no known property
    assert reverse("planner:conventions", args=[workspace.slug]) in page


# --- the picker: property filters -----------------------------------------------------------


def test_picker__filter_typed__filtered_row_with_launchdarkly_filters(
    client_of, admin, workspace, connected
):
    purchase = make_event(workspace, "purchase", properties=PROPERTIES)
    client = client_of(admin)

    plan = saved_plan(
        client.post(
            picker_post_url(workspace),
            {
                "event": [purchase.pk],
                f"filter-{purchase.pk}": ["plan = pro and amount > 100", ""],
                **choices(),
            },
        )
    )

    assert plan.choices["filtered"] == [["purchase", "plan = pro and amount > 100"]]
    plain, filtered = compute(workspace, plan).rows
    assert plain.mapping.metric_key == "purchase-binary" and "filters" not in plain.body
    assert filtered.body["filters"] == {
        "type": "group",
        "op": "and",
        "negate": False,
        "values": [
            {
                "type": "eventProperty",
                "attribute": "amount",
                "op": "greaterThan",
                "values": [100],
                "negate": False,
            },
            {
                "type": "eventProperty",
                "attribute": "plan",
                "op": "in",
                "values": ["pro"],
                "negate": False,
            },
        ],
    }
    page = dom(client.get(review_url(workspace, plan)))
    row = row_by_key(page, filtered.mapping.metric_key)
    assert row.one(cls="where").text == "where amount > 100 and plan = pro"
    assert field_of(row, "Where") == "amount > 100 and plan = pro"


def test_picker__two_filters_for_one_event__two_filtered_metrics(
    client_of, admin, workspace, connected
):
    purchase = make_event(workspace, "purchase", properties=PROPERTIES)

    plan = saved_plan(
        client_of(admin).post(
            picker_post_url(workspace),
            {
                "event": [purchase.pk],
                f"filter-{purchase.pk}": ["plan = pro", "amount >= 50"],
                **choices(),
            },
        )
    )

    rows = compute(workspace, plan).rows
    assert [row.filter_text for row in rows] == ["", "plan = pro", "amount >= 50"]


def test_picker__refused_filter__reason_in_its_row_and_nothing_saved(
    client_of, admin, workspace, connected
):
    purchase = make_event(workspace, "purchase", properties=PROPERTIES)
    signup = make_event(workspace, "signup", properties={"source": "string"})

    response = client_of(admin).post(
        picker_post_url(workspace),
        {
            "event": [purchase.pk, signup.pk],
            f"filter-{purchase.pk}": "plan is set",
            f"filter-{signup.pk}": "source > 3",
            **choices(kind="binary"),
        },
    )

    assert response.status_code == 400
    page = response.content.decode()
    assert "Some filters cannot be used" in page
    assert "Filter refused: “plan is set”: LaunchDarkly refuses the “exists” check" in page
    assert "a comparison needs a number property" in page
    # What was typed and chosen comes back as it was.
    assert 'value="plan is set"' in page and 'value="source &gt; 3"' in page
    assert not plans().exists()


def test_picker__filter_on_unknown_property__names_the_events_properties(
    client_of, admin, workspace, connected
):
    purchase = make_event(workspace, "purchase", properties=PROPERTIES)

    response = client_of(admin).post(
        picker_post_url(workspace),
        {"event": [purchase.pk], f"filter-{purchase.pk}": "country = US", **choices()},
    )

    assert response.status_code == 400
    assert "the event has no property “country” (its properties: amount, plan)" in (
        response.content.decode()
    )
    assert not plans().exists()


def test_picker__filter_for_an_unselected_event__refused(client_of, admin, workspace, connected):
    purchase = make_event(workspace, "purchase", properties=PROPERTIES)
    signup = make_event(workspace, "signup")

    response = client_of(admin).post(
        picker_post_url(workspace),
        {"event": [signup.pk], f"filter-{purchase.pk}": "plan = pro", **choices()},
    )

    assert response.status_code == 400
    assert "This event is not selected" in response.content.decode()
    assert not plans().exists()


# --- the group builder -------------------------------------------------------------------


def funnel_post(name, *steps, **extra):
    """The builder's POST for a funnel: steps as (event, filter, step name)."""
    return {
        "kind": "funnel",
        "name": name,
        "description": "",
        "tags": "",
        "step_event": [event for event, _, _ in steps],
        "step_filter": [text for _, text, _ in steps],
        "step_name": [label for _, _, label in steps],
        "op": "save",
        **extra,
    }


def checkout_plan(workspace, admin, **choices):
    events = [make_event(workspace, key) for key in ("view_cart", "checkout", "paid")]
    return events, make_plan(workspace, admin.user, ids=[e.pk for e in events], **choices)


def test_builder__reached_from_the_review(client_of, admin, workspace, connected):
    _, plan = checkout_plan(workspace, admin)
    client = client_of(admin)

    review = client.get(review_url(workspace, plan)).content.decode()
    builder = client.get(builder_url(workspace, plan))

    assert f'href="{builder_url(workspace, plan)}"' in review and "Add a metric group" in review
    assert builder.status_code == 200
    page = builder.content.decode()
    assert page.count('name="step_event"') == 2  # a funnel has at least two steps
    for key in ("view_cart", "checkout", "paid"):
        assert f'<option value="{key}"' in page


def test_builder__funnel_saved__review_shows_it_in_order(client_of, admin, workspace, connected):
    _, plan = checkout_plan(workspace, admin)
    client = client_of(admin)

    response = client.post(
        builder_url(workspace, plan),
        funnel_post(
            "Checkout funnel",
            ("view_cart", "", "Saw the cart"),
            ("checkout", "", ""),
            ("paid", "", "Paid"),
        ),
    )

    assert response.status_code == 302
    assert response["Location"] == review_url(workspace, plan) + "#metric-groups"
    plan.refresh_from_db()
    assert plan.choices["groups"] == [
        {
            "name": "Checkout funnel",
            "kind": "funnel",
            "metrics": [
                {"event": "view_cart", "kind": "binary", "name": "Saw the cart"},
                {"event": "checkout", "kind": "binary"},
                {"event": "paid", "kind": "binary", "name": "Paid"},
            ],
        }
    ]
    page = dom(client.get(review_url(workspace, plan)))
    section = page.one("section", "metric-groups")
    (row,) = section.one("table", "group-rows").one("tbody").all("tr")
    assert "row-create" in row.classes
    assert "Funnel" in row.text and "checkout-funnel" in row.text
    steps = [li.text for li in row.one("ol", "group-members").all("li")]
    assert steps == [
        "view_cart-binary Saw the cart",
        "checkout-binary Checkout",
        "paid-binary Paid",
    ]
    assert {li.text for li in page.one("ul", "group-counts").all("li")} >= {"Create: 1"}
    apply_button = page.one("form", "apply-form").one("button")
    assert apply_button.text == "Apply: send 3 metrics and 1 metric group"


def test_builder__step_buttons_reorder_and_add_without_saving(
    client_of, admin, workspace, connected
):
    _, plan = checkout_plan(workspace, admin)
    client = client_of(admin)
    steps = [("view_cart", "", ""), ("paid", "", ""), ("checkout", "", "Checked out")]

    moved = client.post(builder_url(workspace, plan), funnel_post("F", *steps, op="up-2"))
    added = client.post(builder_url(workspace, plan), funnel_post("F", *steps, op="add"))
    removed = client.post(builder_url(workspace, plan), funnel_post("F", *steps, op="remove-0"))

    def chosen(response):
        page = dom(response)
        return [
            next(
                (o.attrs["value"] for o in select.all("option") if "selected" in o.attrs),
                "",
            )
            for select in page.all("select")
            if select.attrs.get("name") == "step_event"
        ]

    assert chosen(moved) == ["view_cart", "checkout", "paid"]
    assert 'value="Checked out"' in moved.content.decode()  # the step's name moved with it
    assert chosen(added) == ["view_cart", "paid", "checkout", ""]
    assert chosen(removed) == ["paid", "checkout"]
    plan.refresh_from_db()
    assert "groups" not in plan.choices or plan.choices["groups"] == []


def test_builder__refused_step_filter__reason_shown_nothing_saved(
    client_of, admin, workspace, connected
):
    cart = make_event(workspace, "view_cart", properties={"plan": "string"})
    paid = make_event(workspace, "paid")
    plan = make_plan(workspace, admin.user, ids=[cart.pk, paid.pk])

    response = client_of(admin).post(
        builder_url(workspace, plan),
        funnel_post("Buy", ("view_cart", "plan ~ pro", ""), ("paid", "", "")),
    )

    assert response.status_code == 400
    page = response.content.decode()
    assert "Filter refused: “plan ~ pro”: LaunchDarkly&#x27;s event filters have no regular" in (
        page
    )
    plan.refresh_from_db()
    assert plan.choices.get("groups") in (None, [])


def test_builder__one_step_or_an_unknown_event__refused(client_of, admin, workspace, connected):
    _, plan = checkout_plan(workspace, admin)
    client = client_of(admin)

    one = client.post(builder_url(workspace, plan), funnel_post("F", ("paid", "", "")))
    unknown = client.post(
        builder_url(workspace, plan), funnel_post("F", ("paid", "", ""), ("nowhere", "", ""))
    )
    twice = client.post(
        builder_url(workspace, plan), funnel_post("F", ("paid", "", ""), ("paid", "", ""))
    )

    assert one.status_code == unknown.status_code == twice.status_code == 400
    assert "A funnel needs at least two steps" in one.content.decode()
    assert "Choose one of the plan&#x27;s events." in unknown.content.decode()
    assert "The same metric as step 1" in twice.content.decode()


def test_builder__filtered_step__its_filtered_metric_is_planned_too(
    client_of, admin, workspace, connected
):
    cart = make_event(workspace, "view_cart")
    paid = make_event(workspace, "paid", properties=PROPERTIES)
    plan = make_plan(workspace, admin.user, ids=[cart.pk, paid.pk])
    client = client_of(admin)

    response = client.post(
        builder_url(workspace, plan),
        funnel_post("Pro buyers", ("view_cart", "", ""), ("paid", "plan = pro", "Paid, pro")),
        follow=True,
    )

    assert "Also planned, for its steps: paid where plan = pro." in response.content.decode()
    computed = compute(workspace, plan)
    (group,) = computed.groups
    filtered = next(row for row in computed.rows if row.filter_text == "plan = pro")
    assert group.action == "create"
    assert [m["key"] for m in group.body["metrics"]] == [
        "view_cart-binary",
        filtered.mapping.metric_key,
    ]
    assert group.body["metrics"][1]["nameInGroup"] == "Paid, pro"


def test_builder__standard_group_from_a_selection_and_from_a_tag(
    client_of, admin, workspace, connected
):
    _, plan = checkout_plan(workspace, admin, tags=("checkout",))
    client = client_of(admin)
    standard = {"kind": "standard", "description": "", "tags": "", "op": "save"}

    chosen = client.post(
        builder_url(workspace, plan),
        {
            **standard,
            "name": "Cart and pay",
            "members_from": "selection",
            "metrics": ["view_cart-binary", "paid-binary"],
        },
    )
    tagged = client.post(
        builder_url(workspace, plan),
        {**standard, "name": "Everything checkout", "members_from": "tag", "tag": "checkout"},
    )
    too_few = client.post(
        builder_url(workspace, plan),
        {**standard, "name": "Lonely", "members_from": "selection", "metrics": ["paid-binary"]},
    )

    assert chosen.status_code == tagged.status_code == 302
    assert too_few.status_code == 400 and "Choose at least two metrics" in too_few.content.decode()
    groups = {row.group.key: row for row in compute(workspace, plan).groups}
    assert [m["key"] for m in groups["cart-and-pay"].body["metrics"]] == [
        "view_cart-binary",
        "paid-binary",
    ]
    assert groups["everything-checkout"].group.from_tag == "checkout"
    assert len(groups["everything-checkout"].body["metrics"]) == 3
    page = dom(client.get(review_url(workspace, plan)))
    assert "of tag checkout" in page.one("table", "group-rows").text


def test_builder__edit_and_remove_a_group(client_of, admin, workspace, connected):
    _, plan = checkout_plan(workspace, admin)
    client = client_of(admin)
    client.post(
        builder_url(workspace, plan),
        funnel_post("Checkout funnel", ("view_cart", "", ""), ("paid", "", "")),
    )

    form = client.get(builder_url(workspace, plan), {"edit": "checkout-funnel"}).content.decode()
    edited = client.post(
        builder_url(workspace, plan),
        funnel_post(
            "Checkout funnel",
            ("view_cart", "", ""),
            ("checkout", "", ""),
            ("paid", "", ""),
            original="checkout-funnel",
        ),
    )
    plan.refresh_from_db()
    after_edit = plan.choices["groups"]
    removed = client.post(
        builder_url(workspace, plan), {"op": "delete", "original": "checkout-funnel"}
    )

    assert 'value="Checkout funnel"' in form and "Edit the funnel" in form
    assert edited.status_code == 302
    assert len(after_edit) == 1  # replaced, not added
    assert [m["event"] for m in after_edit[0]["metrics"]] == ["view_cart", "checkout", "paid"]
    assert removed.status_code == 302
    plan.refresh_from_db()
    assert plan.choices["groups"] == []


def test_builder__same_name_as_another_group__refused(client_of, admin, workspace, connected):
    _, plan = checkout_plan(workspace, admin)
    client = client_of(admin)
    steps = (("view_cart", "", ""), ("paid", "", ""))
    client.post(builder_url(workspace, plan), funnel_post("Checkout funnel", *steps))

    again = client.post(builder_url(workspace, plan), funnel_post("Checkout  Funnel", *steps))

    assert again.status_code == 400
    assert "Another group of this plan has this name" in again.content.decode()


def test_builder__applied_plan__groups_no_longer_change(client_of, admin, workspace, connected):
    _, plan = checkout_plan(workspace, admin)
    with tenant_scope(workspace):
        MetricPlan.objects.filter(pk=plan.pk).update(applied_at="2026-01-01T00:00:00Z")

    response = client_of(admin).post(
        builder_url(workspace, plan),
        funnel_post("F", ("view_cart", "", ""), ("paid", "", "")),
    )

    assert response.status_code == 302
    plan.refresh_from_db()
    assert "groups" not in plan.choices or plan.choices["groups"] == []


def test_builder_and_conventions__a_plain_member__not_found(client_of, member, workspace):
    plan = make_plan(workspace, None, ids=[])
    client = client_of(member)

    assert client.get(builder_url(workspace, plan)).status_code == 404
    assert client.get(conventions_url(workspace)).status_code == 404


# --- the review of groups ------------------------------------------------------------------


def test_review__funnel_of_mixed_units__blocked_with_the_reason(
    client_of, admin, workspace, connected
):
    cart = make_event(workspace, "view_cart")
    paid = make_event(workspace, "paid")
    with tenant_scope(workspace):
        MetricMapping.objects.create(
            source_event=paid,
            kind=MetricKind.BINARY,
            project_key="default",
            metric_key="paid-binary",
            name="Paid",
            randomization_units=["organization"],
            desired_hash="x",
        )
    plan = make_plan(workspace, admin.user, ids=[cart.pk])
    client = client_of(admin)
    client.post(
        builder_url(workspace, plan), funnel_post("Buy", ("view_cart", "", ""), ("paid", "", ""))
    )

    page = dom(client.get(review_url(workspace, plan)))

    (row,) = page.one("table", "group-rows").one("tbody").all("tr")
    assert "row-blocked" in row.classes
    assert "A funnel's metrics must share one randomization unit" in row.text
    assert "paid-binary: organization" in row.text
    assert {li.text for li in page.one("ul", "group-counts").all("li")} >= {"Blocked: 1"}
    # Only the metric is sent: a blocked group is left out.
    assert page.one("form", "apply-form").one("button").text == "Apply: send 1 metric"


def test_review__refused_filter_of_a_plan__row_blocked_with_the_reason(
    client_of, admin, workspace, connected
):
    """A plan saved before the event lost its property (or from a file) still shows why."""
    purchase = make_event(workspace, "purchase", properties={"amount": "number"})
    plan = make_plan(
        workspace, admin.user, ids=[purchase.pk], filtered=[("purchase", "plan = pro")]
    )

    page = dom(client_of(admin).get(review_url(workspace, plan)))

    blocked = [tr for tr in plan_rows(page) if "row-blocked" in tr.classes]
    (row,) = blocked
    assert "Filter refused:" in row.text and "has no property “plan”" in row.text


# --- conventions -----------------------------------------------------------------------------


def test_conventions__template_checked_tags_checked_nothing_saved(client_of, admin, workspace):
    client = client_of(admin)

    unknown = client.post(conventions_url(workspace), {"name_template": "{name} {unit}"})
    unpaired = client.post(conventions_url(workspace), {"name_template": "{name"})
    nameless = client.post(conventions_url(workspace), {"name_template": "Metric {kind}"})
    bad_tags = client.post(conventions_url(workspace), {"name_template": "{name}", "tags": "a b/c"})

    assert {r.status_code for r in (unknown, unpaired, nameless, bad_tags)} == {400}
    assert "Unknown placeholder {unit}." in unknown.content.decode()
    assert "is not paired" in unpaired.content.decode()
    assert "Name the event with {name} or {event}" in nameless.content.decode()
    assert "LaunchDarkly refuses these tags: b/c" in bad_tags.content.decode()
    assert not MetricConventions.objects.unscoped().exists()


def test_conventions__saved__every_planned_metric_follows_them(
    client_of, admin, workspace, connected
):
    signup = make_event(workspace, "signup")
    client = client_of(admin)

    saved = client.post(
        conventions_url(workspace), {"name_template": "[web] {name}", "tags": "growth, web"}
    )
    page = client.get(conventions_url(workspace)).content.decode()
    plan = saved_plan(
        client.post(picker_post_url(workspace), {"event": [signup.pk], **choices(metric_set="on")})
    )

    assert saved.status_code == 302
    conventions = MetricConventions.objects.unscoped().get(tenant=workspace)
    assert (conventions.name_template, conventions.tags) == ("[web] {name}", ["growth", "web"])
    assert 'value="growth web"' in page and "[web] Signup" in page
    rows = compute(workspace, plan).rows
    assert [row.mapping.name for row in rows] == [
        "[web] Signup (conversion rate)",
        "[web] Signup (count)",
    ]
    assert all({"growth", "web"} <= set(row.body["tags"]) for row in rows)
