"""Randomization units come from the LaunchDarkly project's context kinds."""

import pytest
from django.urls import reverse

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


def context_kind_calls(ld):
    return [r for r in ld.requests_since(0) if r["path"].endswith("/context-kinds")]


@pytest.mark.django_db
def test_picker__connected__offers_context_kinds_cached(connected_to_sandbox, workspace, ld):
    url = reverse("planner:picker", args=[workspace.slug])

    first = connected_to_sandbox.get(url).content.decode()
    connected_to_sandbox.get(url)

    for unit in ("user", "organization", "device"):
        assert f'value="{unit}"' in first
    assert len(context_kind_calls(ld)) == 1  # the second page came from the cache


@pytest.mark.django_db
def test_picker__launchdarkly_fails__user_only_with_note(connected_to_sandbox, workspace, ld):
    ld.set_faults(rate=1, kinds=["503"], routes=["/api/v2/projects/default/context-kinds"])

    response = connected_to_sandbox.get(reverse("planner:picker", args=[workspace.slug]))

    assert response.status_code == 200
    page = response.content.decode()
    assert 'value="user"' in page and 'value="organization"' not in page
    assert "context kinds could not be read just now" in page
