"""The workspace overview is a checklist: each step says its state, links where it is
done, and the first one not done is the page's one next step."""

import re

import pytest
from django.urls import reverse
from django.utils import timezone

from connector.metrics.models import MappingStatus, MetricMapping, MetricPlan
from tenants.scope import tenant_scope
from tests.metrics.conftest import make_events, make_plan
from tests.sync.factories import make_run


def overview(client, workspace):
    response = client.get(reverse("tenants:workspace", args=[workspace.slug]))
    assert response.status_code == 200
    return response.content.decode()


def next_step(page):
    block = re.search(r'<div class="next-step[^"]*".*?</div>', page, re.S)
    assert block, page
    return block.group(0)


def done_titles(page):
    return re.findall(r'<li class="is-done">.*?<a href="[^"]*">([^<]+)</a>', page, re.S)


@pytest.mark.django_db
def test_overview__new_workspace__next_step_is_connect_with_its_link(client_of, admin, workspace):
    page = overview(client_of(admin), workspace)

    step = next_step(page)
    assert "Connect LaunchDarkly" in step
    assert f'href="{reverse("connections:settings", args=[workspace.slug])}"' in step
    assert "0 of 6 done" in page
    assert done_titles(page) == []


@pytest.mark.django_db
def test_overview__walks_the_steps_as_they_are_done(client_of, admin, workspace, ld):
    client = client_of(admin)
    client.post(
        reverse("connections:api_token", args=[workspace.slug]),
        {"instance": "commercial", "token": ld.mint_token("writer")},
    )
    assert "Choose the project" in next_step(overview(client, workspace))

    client.post(reverse("connections:project", args=[workspace.slug]), {"project_key": "default"})
    assert "Bring your events" in next_step(overview(client, workspace))

    events = make_events(workspace, 3)
    page = overview(client, workspace)
    assert "Pick events" in next_step(page) and "3 events in the catalog" in page

    plan = make_plan(workspace, admin.user, ids=[e.pk for e in events])
    step = next_step(overview(client, workspace))
    assert "Review the plan" in step
    assert reverse("planner:plan", args=[workspace.slug, plan.pk]) in step

    run = make_run(workspace, items=2)
    with tenant_scope(workspace):
        MetricPlan.objects.filter(pk=plan.pk).update(applied_at=timezone.now(), sync_run=run)
        MetricMapping.objects.update(status=MappingStatus.SYNCED)
        run.finished_at = timezone.now()
        run.save()
    page = overview(client, workspace)
    assert "All set." in next_step(page)
    assert "6 of 6 done" in page
    assert "2 metrics in LaunchDarkly" in page


@pytest.mark.django_db
def test_overview__member__sees_the_state_but_not_an_admin_button(client_of, member, workspace):
    page = overview(client_of(member), workspace)

    step = next_step(page)
    assert "An admin of this workspace does this step" in step
    assert "button primary" not in step
