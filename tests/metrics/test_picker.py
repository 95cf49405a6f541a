"""The event picker: search, filters, sorting, pagination and selection."""

import re
from datetime import timedelta

import pytest
from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from connector.metrics.desired import metric_body
from connector.metrics.models import MetricMapping, MetricPlan
from connector.planner.plans import plan_compute
from connector.sources.models import ValueKind
from tenants.scope import tenant_scope
from tests.metrics.conftest import make_event, make_events

pytestmark = pytest.mark.django_db


def picker_url(workspace):
    return reverse("planner:picker", args=[workspace.slug])


def plan_url(workspace):
    return reverse("planner:plan_create", args=[workspace.slug])


def keys_on(response):
    return [event.key for event in response.context["page"].object_list]


def choices(**overrides):
    data = {
        "kind": "auto",
        "success_criteria": "HigherThanBaseline",
        "aggregation": "average",
        "analysis": "mean",
        "percentile": "",
        "randomization_units": ["user"],
        "tags": "",
        "name_template": "{name}",
        "description_template": "{description}",
    }
    data.update(overrides)
    return data


def plans():
    return MetricPlan.objects.unscoped()


def test_picker__member__sees_catalog_but_no_selection_form(client_of, member, workspace):
    make_event(workspace, "checkout_completed")

    response = client_of(member).get(picker_url(workspace))

    assert response.status_code == 200
    page = response.content.decode()
    assert "checkout_completed" in page
    assert 'name="event"' not in page and "Review the plan" not in page


def test_picker__admin__sees_selection_form_with_units(client_of, admin, workspace, connected):
    make_event(workspace, "checkout_completed")

    page = client_of(admin).get(picker_url(workspace)).content.decode()

    assert 'name="event"' in page and "Review the plan" in page
    for unit in ("user", "organization", "device"):
        assert f'value="{unit}"' in page


def test_picker__search__matches_key_name_and_description(client_of, member, workspace):
    make_event(workspace, "signup_started", name="Started", description="")
    make_event(workspace, "cart_add", name="Signup button", description="")
    make_event(workspace, "page_view", name="View", description="after SIGNUP")
    make_event(workspace, "logout", name="Logout", description="")

    response = client_of(member).get(picker_url(workspace), {"q": "signup"})

    assert sorted(keys_on(response)) == ["cart_add", "page_view", "signup_started"]


def test_picker__value_kind_filter__only_that_kind(client_of, member, workspace):
    make_event(workspace, "purchase_amount", value_kind=ValueKind.NUMERIC, unit="USD")
    make_event(workspace, "signup")

    response = client_of(member).get(picker_url(workspace), {"value_kind": "numeric"})

    assert keys_on(response) == ["purchase_amount"]


def test_picker__seen_filter__only_events_seen_within_the_days(client_of, member, workspace):
    now = timezone.now()
    make_event(workspace, "recent", last_seen=now - timedelta(days=2))
    make_event(workspace, "older", last_seen=now - timedelta(days=20))
    make_event(workspace, "never", last_seen=None)

    response = client_of(member).get(picker_url(workspace), {"seen": "7"})

    assert keys_on(response) == ["recent"]


def test_picker__mapped_filter__yes_and_no(client_of, admin, workspace, connected):
    mapped, unmapped = make_event(workspace, "mapped_one"), make_event(workspace, "unmapped_one")
    with tenant_scope(workspace):
        MetricMapping.objects.create(
            source_event=mapped,
            kind="binary",
            project_key="default",
            metric_key="mapped_one-binary",
            name="Mapped",
            desired_hash="x",
        )
    client = client_of(admin)

    assert keys_on(client.get(picker_url(workspace), {"mapped": "yes"})) == ["mapped_one"]
    assert keys_on(client.get(picker_url(workspace), {"mapped": "no"})) == ["unmapped_one"]
    page = client.get(picker_url(workspace)).content.decode()
    assert "mapped_one-binary" in page and unmapped.key in page


def test_picker__removed_filter__hidden_by_default_shown_on_request(client_of, member, workspace):
    make_event(workspace, "gone", removed_at=timezone.now())
    make_event(workspace, "here")
    client = client_of(member)

    assert keys_on(client.get(picker_url(workspace))) == ["here"]
    assert keys_on(client.get(picker_url(workspace), {"removed": "yes"})) == ["gone"]
    assert keys_on(client.get(picker_url(workspace), {"removed": "all"})) == ["gone", "here"]


def test_picker__sorting__by_volume_and_by_key(client_of, member, workspace):
    make_event(workspace, "b_event", volume=5)
    make_event(workspace, "a_event", volume=1)
    make_event(workspace, "c_event", volume=9)
    client = client_of(member)

    assert keys_on(client.get(picker_url(workspace))) == ["a_event", "b_event", "c_event"]
    by_volume = client.get(picker_url(workspace), {"order": "-volume"})
    assert keys_on(by_volume) == ["c_event", "b_event", "a_event"]
    assert keys_on(client.get(picker_url(workspace), {"order": "-key"}))[0] == "c_event"


def test_picker__pagination__fifty_per_page_links_keep_the_filter(client_of, member, workspace):
    make_events(workspace, 120, prefix="view")
    make_events(workspace, 3, prefix="other")
    client = client_of(member)

    first = client.get(picker_url(workspace), {"q": "view"})
    third = client.get(picker_url(workspace), {"q": "view", "page": "3"})

    assert len(keys_on(first)) == 50 and first.context["page"].paginator.count == 120
    assert keys_on(third) == [f"view_{i:05d}" for i in range(100, 120)]
    assert "?q=view&amp;page=2" in first.content.decode()
    beyond = client.get(picker_url(workspace), {"q": "view", "page": "99"})
    assert beyond.status_code == 200 and keys_on(beyond) == keys_on(third)


def test_picker__many_pages__links_around_the_current_one_and_the_ends(
    client_of, member, workspace
):
    make_events(workspace, 1000)  # 20 pages of 50

    page = client_of(member).get(picker_url(workspace), {"page": "10"}).content.decode()

    start = page.index('<nav class="pagination"')
    nav = page[start : page.index("</nav>", start)]
    shown = re.findall(r'page=(\d+)">\d+</a>|class="current">(\d+)<|class="gap">(…)<', nav)
    assert " ".join("".join(match) for match in shown) == "1 2 … 8 9 10 11 12 … 19 20"


def test_picker__invalid_filter__reported_and_left_out(client_of, member, workspace):
    make_event(workspace, "signup")

    response = client_of(member).get(
        picker_url(workspace), {"seen": "forever", "order": "drop table"}
    )

    assert response.status_code == 200 and keys_on(response) == ["signup"]
    assert "Select a valid choice" in response.content.decode()


def test_picker__select_all_matching__selects_every_page(client_of, admin, workspace, connected):
    make_events(workspace, 120, prefix="view")
    make_events(workspace, 30, prefix="other")

    response = client_of(admin).post(
        plan_url(workspace), {"q": "view", "page": "1", "select_all": "all", **choices()}
    )

    assert response.status_code == 302
    plan = plans().get()
    assert plan.selection == {
        "filter": {
            "q": "view",
            "value_kind": "",
            "seen_within_days": None,
            "removed": False,
            "order": "key",
            "mapped": None,
        }
    }
    assert response["Location"] == reverse("planner:plan", args=[workspace.slug, plan.pk])
    with tenant_scope(workspace):
        computed = plan_compute(plan=plan)
    assert len(computed.rows) == 120
    assert {row.event.key for row in computed.rows} == {f"view_{i:05d}" for i in range(120)}


def test_picker__select_all_with_mapped_filter__only_unmapped(
    client_of, admin, workspace, connected
):
    events = make_events(workspace, 60, prefix="view")
    with tenant_scope(workspace):
        MetricMapping.objects.create(
            source_event=events[0],
            kind="binary",
            project_key="default",
            metric_key="view_00000-binary",
            name="x",
            desired_hash="x",
        )

    client_of(admin).post(plan_url(workspace), {"mapped": "no", "select_all": "all", **choices()})

    with tenant_scope(workspace):
        computed = plan_compute(plan=plans().get())
    assert len(computed.rows) == 59 and events[0].key not in {r.event.key for r in computed.rows}


def test_picker__explicit_selection__plan_has_exactly_those(client_of, admin, workspace, connected):
    events = make_events(workspace, 10)
    chosen = [events[1].pk, events[4].pk]

    response = client_of(admin).post(plan_url(workspace), {"event": chosen, **choices()})

    assert response.status_code == 302
    assert plans().get().selection == {"ids": sorted(chosen)}


def test_picker__explicit_selection_of_other_workspace__refused(
    client_of, admin, workspace, connected
):
    from tests.factories import TenantFactory

    theirs = make_event(TenantFactory(), "their_event")
    make_event(workspace, "ours")

    response = client_of(admin).post(plan_url(workspace), {"event": [theirs.pk], **choices()})

    assert response.status_code == 400 and not plans().exists()
    assert "no longer exist" in response.content.decode()


def test_picker__empty_selection__clear_error_input_kept(client_of, admin, workspace, connected):
    make_events(workspace, 3)

    response = client_of(admin).post(plan_url(workspace), {"q": "event", **choices(tags="keep-me")})

    assert response.status_code == 400 and not plans().exists()
    page = response.content.decode()
    assert "Select at least one event" in page
    assert 'value="keep-me"' in page and 'value="event"' in page


def test_picker__select_all_with_no_match__error(client_of, admin, workspace, connected):
    make_events(workspace, 3)

    response = client_of(admin).post(
        plan_url(workspace), {"q": "nothing-like-this", "select_all": "all", **choices()}
    )

    assert response.status_code == 400 and not plans().exists()
    assert "No event matches this filter" in response.content.decode()


@pytest.mark.parametrize("percentile", ["0", "100", "-5"])
def test_picker__percentile_outside_1_to_99__form_error(
    client_of, admin, workspace, connected, percentile
):
    events = make_events(workspace, 2)

    response = client_of(admin).post(
        plan_url(workspace),
        {"event": [events[0].pk], **choices(analysis="percentile", percentile=percentile)},
    )

    assert response.status_code == 400 and not plans().exists()
    assert "A percentile is a whole number from 1 to 99." in response.content.decode()
    assert (
        f'value="{events[0].pk}" id="event-{events[0].pk}" aria-label="Select event_00000" checked'
        in response.content.decode()
    )


def test_picker__percentile_analysis_without_percentile__form_error(
    client_of, admin, workspace, connected
):
    events = make_events(workspace, 1)

    response = client_of(admin).post(
        plan_url(workspace), {"event": [events[0].pk], **choices(analysis="percentile")}
    )

    assert response.status_code == 400
    assert "Percentile analysis needs a percentile" in response.content.decode()


@pytest.mark.parametrize(
    ("field", "template", "message"),
    [
        ("name_template", "{name} ({colour})", "Unknown placeholder {colour}"),
        ("description_template", "{}", "Unknown placeholder {}"),
        ("name_template", "Hello {name", "is not paired"),
        ("name_template", "{name!r}", "no formatting after them"),
        ("name_template", "{name.upper}", "Unknown placeholder {name.upper}"),
    ],
)
def test_picker__bad_template__form_error(
    client_of, admin, workspace, connected, field, template, message
):
    events = make_events(workspace, 1)

    response = client_of(admin).post(
        plan_url(workspace), {"event": [events[0].pk], **choices(**{field: template})}
    )

    assert response.status_code == 400 and not plans().exists()
    assert message in response.content.decode()


def test_picker__good_templates__accepted(client_of, admin, workspace, connected):
    events = make_events(workspace, 1)

    response = client_of(admin).post(
        plan_url(workspace),
        {
            "event": [events[0].pk],
            **choices(
                name_template="{name} · {kind} {{x}}", description_template="{key}: {description}"
            ),
        },
    )

    assert response.status_code == 302
    assert plans().get().choices["name_template"] == "{name} · {kind} {{x}}"


def test_picker__tags_launchdarkly_refuses__form_error_names_them(
    client_of, admin, workspace, connected
):
    events = make_events(workspace, 1)

    response = client_of(admin).post(
        plan_url(workspace),
        {"event": [events[0].pk], **choices(tags="good-tag, bad tag!, ünïcode, ok_1.2")},
    )

    assert response.status_code == 400 and not plans().exists()
    page = response.content.decode()
    assert "LaunchDarkly refuses these tags: tag!, ünïcode" in page


def test_picker__tags__split_deduplicated_sorted(client_of, admin, workspace, connected):
    events = make_events(workspace, 1)

    client_of(admin).post(
        plan_url(workspace), {"event": [events[0].pk], **choices(tags="web, growth  web,ab.test")}
    )

    assert plans().get().choices["tags"] == ["ab.test", "growth", "web"]


def test_picker__unit_not_offered__form_error(client_of, admin, workspace, connected):
    events = make_events(workspace, 1)

    response = client_of(admin).post(
        plan_url(workspace),
        {"event": [events[0].pk], **choices(randomization_units=["spaceship"])},
    )

    assert response.status_code == 400 and not plans().exists()
    assert "spaceship is not one of the available choices" in response.content.decode()


def test_picker__no_randomization_unit__form_error(client_of, admin, workspace, connected):
    events = make_events(workspace, 1)

    response = client_of(admin).post(
        plan_url(workspace), {"event": [events[0].pk], **choices(randomization_units=[])}
    )

    assert response.status_code == 400
    assert "Choose at least one randomization unit." in response.content.decode()


def test_picker__member__cannot_create_plan(client_of, member, workspace, connected):
    events = make_events(workspace, 1)

    response = client_of(member).post(plan_url(workspace), {"event": [events[0].pk], **choices()})

    assert response.status_code == 404 and not plans().exists()


def test_picker__not_connected__user_only_with_note(client_of, admin, workspace):
    make_events(workspace, 1)

    page = client_of(admin).get(picker_url(workspace)).content.decode()

    assert 'value="user"' in page and 'value="organization"' not in page
    assert "Connect LaunchDarkly and choose a project" in page


def test_picker__queries__do_not_grow_with_the_catalog(client_of, admin, workspace, connected):
    client = client_of(admin)
    client.get(picker_url(workspace))  # session and caches warm

    def queries(params):
        with CaptureQueriesContext(db_connection) as captured:
            assert client.get(picker_url(workspace), params).status_code == 200
        return len(captured)

    make_events(workspace, 5, numeric_every=2)
    small = [queries({}), queries({"q": "event", "mapped": "no", "order": "-volume"})]
    events = make_events(workspace, 300, prefix="more", numeric_every=2)
    with tenant_scope(workspace):
        for event in events[:60]:
            MetricMapping.objects.create(
                source_event=event,
                kind="binary",
                project_key="default",
                metric_key=f"{event.key}-binary",
                name="x",
                desired_hash="x",
            )
    large = [queries({}), queries({"q": "event", "mapped": "no", "order": "-volume"})]

    assert large == small


# --- the journey: selection count, options first, per-event criteria, empty catalog ------


def pick_bar(page):
    """The sticky bar: the selection's count and the one "Review the plan" button."""
    start = page.index('class="pick-bar"')
    return page[start : page.index("</div>", start)]


def test_picker__nothing_ticked__bar_says_0_selected(client_of, admin, workspace, connected):
    make_events(workspace, 3)

    page = client_of(admin).get(picker_url(workspace)).content.decode()

    bar = pick_bar(page)
    assert "0 selected" in bar and "Review the plan" in bar
    assert page.count("Review the plan</button>") == 1


def test_picker__round_trip__bar_counts_the_ticked_events(client_of, admin, workspace, connected):
    events = make_events(workspace, 5)

    response = client_of(admin).post(
        plan_url(workspace),
        {"event": [events[0].pk, events[3].pk], **choices(name_template="{nope}")},
    )

    assert response.status_code == 400
    assert "2 selected" in pick_bar(response.content.decode())


def test_picker__round_trip_select_all__bar_says_all_matching(
    client_of, admin, workspace, connected
):
    make_events(workspace, 120, prefix="view")
    make_events(workspace, 3, prefix="other")

    response = client_of(admin).post(
        plan_url(workspace),
        {"q": "view", "select_all": "all", **choices(name_template="{nope}")},
    )

    assert response.status_code == 400
    page = response.content.decode()
    assert "All 120 matching events selected" in pick_bar(page)
    assert "Select all 120 events matching this filter" in page


def test_picker__options__come_before_the_list(client_of, admin, workspace, connected):
    make_events(workspace, 50)

    page = client_of(admin).get(picker_url(workspace)).content.decode()

    table = page.index('<table class="events')
    for field in ("id_kind", "id_success_criteria", "id_randomization_units_0", "id_tags"):
        assert page.index(f'id="{field}"') < table, field
    assert page.index('class="pick-bar"') < table


def test_picker__duration_event__lower_inferred_and_said_so(client_of, admin, workspace, connected):
    make_event(workspace, "render_time", value_kind=ValueKind.NUMERIC, unit="ms")
    make_event(workspace, "order_value", value_kind=ValueKind.NUMERIC, unit="USD")

    page = client_of(admin).get(picker_url(workspace)).content.decode()

    rows = {
        m[0]: m[1]
        for m in re.findall(r"<tr[^>]*>\s*<td.*?<code>(\w+)</code>(.*?)</tr>", page, re.S)
    }
    assert "Lower (inferred from ms)" in rows["render_time"]
    assert "inferred" not in rows["order_value"]
    assert 'name="criterion-' in rows["order_value"]
    assert "1 event on this page is measured in time: lower than baseline was inferred" in page


def mixed_catalog(workspace):
    return {
        "render": make_event(workspace, "render_time", value_kind=ValueKind.NUMERIC, unit="ms"),
        "wait": make_event(workspace, "wait_s", value_kind=ValueKind.NUMERIC, unit="seconds"),
        "order": make_event(workspace, "order_value", value_kind=ValueKind.NUMERIC, unit="USD"),
        "error": make_event(workspace, "error_shown"),
        "signup": make_event(workspace, "signup"),
    }


def criteria_of(workspace, plan):
    with tenant_scope(workspace):
        rows = plan_compute(plan=plan).rows
    return {row.event.key: row.body.get("successCriteria") for row in rows}


def test_picker__mixed_criteria__each_metric_gets_its_own(client_of, admin, workspace, connected):
    events = mixed_catalog(workspace)

    response = client_of(admin).post(
        plan_url(workspace),
        {
            "event": [event.pk for event in events.values()],
            f"criterion-{events['error'].pk}": "LowerThanBaseline",  # an override
            f"criterion-{events['wait'].pk}": "HigherThanBaseline",  # against the inference
            f"criterion-{events['signup'].pk}": "",  # as chosen for the selection
            "durations_lower": "on",
            **choices(),
        },
    )

    assert response.status_code == 302
    plan = plans().get()
    assert criteria_of(workspace, plan) == {
        "render_time": "LowerThanBaseline",  # inferred from ms
        "wait_s": "HigherThanBaseline",
        "order_value": "HigherThanBaseline",
        "error_shown": "LowerThanBaseline",
        "signup": "HigherThanBaseline",
    }
    with tenant_scope(workspace):
        from connector.planner.plans import plan_apply

        plan_apply(plan=plan, actor=admin.user)
        stored = {
            m.source_event.key: metric_body(m, event_key=m.source_event.key)["successCriteria"]
            for m in MetricMapping.objects.select_related("source_event")
        }
    assert stored["render_time"] == "LowerThanBaseline"
    assert stored["error_shown"] == "LowerThanBaseline"
    assert stored["order_value"] == "HigherThanBaseline"


def test_picker__durations_lower_off__selection_choice_for_all(
    client_of, admin, workspace, connected
):
    events = mixed_catalog(workspace)

    client_of(admin).post(
        plan_url(workspace), {"event": [event.pk for event in events.values()], **choices()}
    )

    assert set(criteria_of(workspace, plans().get()).values()) == {"HigherThanBaseline"}


def test_picker__select_all__inference_reaches_every_page(client_of, admin, workspace, connected):
    make_events(workspace, 70, prefix="load", value_kind=ValueKind.NUMERIC, unit="ms")
    make_events(workspace, 10, prefix="click")

    client_of(admin).post(
        plan_url(workspace), {"select_all": "all", "durations_lower": "on", **choices()}
    )

    criteria = criteria_of(workspace, plans().get())
    assert len(criteria) == 80
    assert {criteria[f"load_{i:05d}"] for i in range(70)} == {"LowerThanBaseline"}
    assert {criteria[f"click_{i:05d}"] for i in range(10)} == {"HigherThanBaseline"}


def test_picker__bad_criterion__form_error_selection_kept(client_of, admin, workspace, connected):
    events = make_events(workspace, 2)

    response = client_of(admin).post(
        plan_url(workspace),
        {"event": [events[0].pk], f"criterion-{events[0].pk}": "Sideways", **choices()},
    )

    assert response.status_code == 400 and not plans().exists()
    page = response.content.decode()
    assert "success criterion" in page and "Sideways" in page
    assert "1 selected" in pick_bar(page)


def test_picker__round_trip__row_criterion_kept(client_of, admin, workspace, connected):
    events = make_events(workspace, 2)

    response = client_of(admin).post(
        plan_url(workspace),
        {
            "event": [events[1].pk],
            f"criterion-{events[1].pk}": "LowerThanBaseline",
            **choices(name_template="{nope}"),
        },
    )

    page = response.content.decode()
    select = page[page.index(f'name="criterion-{events[1].pk}"') :]
    select = select[: select.index("</select>")]
    assert '<option value="LowerThanBaseline" selected>' in select


def test_plan__old_plan_without_per_event_choices__unchanged(workspace, admin, connected):
    from tests.metrics.conftest import make_plan

    event = make_event(workspace, "render_time", value_kind=ValueKind.NUMERIC, unit="ms")
    plan = make_plan(workspace, admin.user, ids=[event.pk])
    plan.choices = {k: v for k, v in plan.choices.items() if k in OLD_CHOICE_KEYS}
    with tenant_scope(workspace):
        plan.save()

    assert criteria_of(workspace, plan) == {"render_time": "HigherThanBaseline"}


OLD_CHOICE_KEYS = {
    "kind",
    "success_criteria",
    "aggregation",
    "analysis",
    "percentile",
    "randomization_units",
    "tags",
    "name_template",
    "description_template",
}


def test_picker__page_size__choice_kept_in_links(client_of, member, workspace):
    make_events(workspace, 250)
    client = client_of(member)

    response = client.get(picker_url(workspace), {"per_page": "100"})

    assert len(keys_on(response)) == 100
    assert "?per_page=100&amp;page=2" in response.content.decode()
    assert len(keys_on(client.get(picker_url(workspace), {"per_page": "200"}))) == 200
    wrong = client.get(picker_url(workspace), {"per_page": "100000"})
    assert len(keys_on(wrong)) == 50 and "Select a valid choice" in wrong.content.decode()


def test_picker__header__links_the_upload_for_admins(client_of, admin, member, workspace):
    make_events(workspace, 1)
    upload = reverse("sources:upload", args=[workspace.slug])

    admin_page = client_of(admin).get(picker_url(workspace)).content.decode()
    member_page = client_of(member).get(picker_url(workspace)).content.decode()

    assert f'href="{upload}">Upload a catalog file</a>' in admin_page
    assert "Upload a catalog file" not in member_page


def test_picker__empty_catalog__says_how_to_fill_it(client_of, admin, workspace):
    page = client_of(admin).get(picker_url(workspace)).content.decode()

    assert "No events yet" in page
    assert reverse("sources:api_keys", args=[workspace.slug]) in page
    assert reverse("sources:upload", args=[workspace.slug]) in page
    assert "/api/v1/events" in page
    assert "PostHog" in page and "import_catalog" in page and "POSTHOG_PERSONAL_API_KEY" in page
    assert f"--workspace {workspace.slug}" in page


def test_picker__empty_catalog_member__asks_an_admin(client_of, member, workspace):
    page = client_of(member).get(picker_url(workspace)).content.decode()

    assert "No events yet" in page and "Ask an admin" in page
    assert reverse("sources:api_keys", args=[workspace.slug]) not in page
