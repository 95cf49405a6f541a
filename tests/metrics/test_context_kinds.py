"""Randomization units come from the LaunchDarkly project's experimentation settings
(contract EXP-1, EXP-2, EXP-3): only registered units are offered, the project's
default is chosen first, and other context kinds are explained and registered only
with the admin's consent."""

import pytest
import requests
from django.urls import reverse

from tenants.models import AuditAction, AuditEvent
from tenants.scope import tenant_scope
from tests.metrics.conftest import make_event


@pytest.fixture
def connected_to_sandbox(client_of, admin, workspace, ld):
    make_event(workspace, "signup")
    client = client_of(admin)
    token = ld.mint_token("writer")
    client.post(
        reverse("connections:api_token", args=[workspace.slug]),
        {"instance": "commercial", "token": token},
    )
    client.post(reverse("connections:project", args=[workspace.slug]), {"project_key": "default"})
    return client


def settings_calls(ld):
    return [r for r in ld.requests_since(0) if r["path"].endswith("/experimentation-settings")]


def registered_units(ld):
    token = ld.mint_token("reader")
    answer = requests.get(
        f"{ld.base_url}/api/v2/projects/default/experimentation-settings",
        headers={"Authorization": token},
        timeout=5,
    ).json()
    return {u["randomizationUnit"]: u.get("default", False) for u in answer["randomizationUnits"]}


def put_units(ld, units):
    token = ld.mint_token("writer")
    response = requests.put(
        f"{ld.base_url}/api/v2/projects/default/experimentation-settings",
        headers={"Authorization": token},
        json={"randomizationUnits": units},
        timeout=5,
    )
    assert response.status_code == 200, response.text


def picker(client, workspace):
    return client.get(reverse("planner:picker", args=[workspace.slug])).content.decode()


@pytest.mark.django_db
def test_picker__offers_registered_units_only_and_explains_the_others(
    connected_to_sandbox, workspace, ld
):
    """Contract EXP-1: the sandbox's projects register only `user`; organization and
    device are context kinds LaunchDarkly would refuse as units."""
    first = picker(connected_to_sandbox, workspace)
    picker(connected_to_sandbox, workspace)

    assert 'name="randomization_units" value="user"' in first
    assert 'name="randomization_units" value="organization"' not in first
    assert "not randomization units yet: <code>device</code>, <code>organization</code>" in first
    assert "Register organization" in first
    assert len(settings_calls(ld)) == 1  # the second page came from the cache


@pytest.mark.django_db
def test_picker__project_default_unit__chosen_first(connected_to_sandbox, workspace, ld):
    put_units(
        ld,
        [
            {"randomizationUnit": "user", "default": False},
            {"randomizationUnit": "organization", "default": True},
        ],
    )

    page = picker(connected_to_sandbox, workspace)

    checked = page.split('value="organization"')[1].split(">")[0]
    assert "checked" in checked
    assert "checked" not in page.split('name="randomization_units" value="user"')[1].split(">")[0]


@pytest.mark.django_db
def test_register_unit__with_consent__registered_in_launchdarkly_and_offered(
    connected_to_sandbox, workspace, ld
):
    """Contract EXP-2: putExperimentationSettings replaces the list; the registered
    units and their default are sent again."""
    url = reverse("planner:register_unit", args=[workspace.slug])
    picker(connected_to_sandbox, workspace)

    refused = connected_to_sandbox.post(url, {"context_kind": "organization"}, follow=True)
    assert "Nothing was changed: tick the box" in refused.content.decode()
    assert registered_units(ld) == {"user": True}

    done = connected_to_sandbox.post(
        url, {"context_kind": "organization", "consent": "1"}, follow=True
    ).content.decode()

    assert registered_units(ld) == {"user": True, "organization": False}
    assert "organization is now a randomization unit of project default" in done
    assert 'name="randomization_units" value="organization"' in done
    with tenant_scope(workspace):
        assert AuditEvent.objects.filter(
            action=AuditAction.LAUNCHDARKLY_UNIT_REGISTERED, target="default/organization"
        ).exists()


@pytest.mark.django_db
def test_register_unit__not_a_context_kind_of_the_project__refused(
    connected_to_sandbox, workspace, ld
):
    url = reverse("planner:register_unit", args=[workspace.slug])
    answer = connected_to_sandbox.post(
        url, {"context_kind": "team", "consent": "1"}, follow=True
    ).content.decode()

    assert "That context kind cannot be registered" in answer
    assert registered_units(ld) == {"user": True}


@pytest.mark.django_db
def test_picker__launchdarkly_fails__user_only_with_note(connected_to_sandbox, workspace, ld):
    ld.set_faults(
        rate=1, kinds=["503"], routes=["/api/v2/projects/default/experimentation-settings"]
    )

    response = connected_to_sandbox.get(reverse("planner:picker", args=[workspace.slug]))

    assert response.status_code == 200
    page = response.content.decode()
    assert 'value="user"' in page and 'value="organization"' not in page
    assert "randomization units could not be read just now" in page
