"""What the Settings page tells a person about their LaunchDarkly connection: where it
really goes, whose account it is, what the token may do, and, before a disconnect,
what happens to queued work."""

import re
from urllib.parse import urlsplit

import pytest
from django.urls import reverse

from connector.connections.models import LaunchDarklyConnection, Status
from connector.sync.models import ItemStatus, SyncItem
from sandbox.state import DEMO_EMAIL
from tests.sync.factories import make_run


def settings_page(client, workspace):
    response = client.get(reverse("connections:settings", args=[workspace.slug]))
    assert response.status_code == 200
    return response.content.decode()


def paste(client, workspace, token):
    return client.post(
        reverse("connections:api_token", args=[workspace.slug]),
        {"instance": "commercial", "token": token},
    )


def instance_selects(page):
    return re.findall(r"<select[^>]*name=\"instance\"", page)


@pytest.mark.django_db
def test_settings__sandbox_override__names_the_sandbox_not_launchdarkly(
    client_of, admin, workspace, ld
):
    host = urlsplit(ld.base_url).netloc
    client = client_of(admin)

    before = settings_page(client, workspace)
    # Nothing to choose: every key goes to the sandbox, so the page says so once.
    assert instance_selects(before) == []
    assert f"local LaunchDarkly sandbox ({host})" in before
    assert "app.launchdarkly.com" not in before

    paste(client, workspace, ld.mint_token("writer"))
    after = settings_page(client, workspace)
    assert f"local LaunchDarkly sandbox ({host})" in after
    assert "app.launchdarkly.com" not in after


@pytest.mark.django_db
def test_settings__real_hosts__the_instance_is_chosen_once(client_of, admin, workspace, settings):
    settings.LAUNCHDARKLY_BASE_URL = ""
    client = client_of(admin)

    page = settings_page(client, workspace)

    assert len(instance_selects(page)) == 1
    assert "app.eu.launchdarkly.com" in page
    # Both ways of connecting carry the chosen instance.
    chosen = client.get(
        reverse("connections:settings", args=[workspace.slug]), {"instance": "eu"}
    ).content.decode()
    assert chosen.count('<input type="hidden" name="instance" value="eu">') == 2


@pytest.mark.django_db
def test_settings__pasted_token__shows_whose_account_and_the_role(client_of, admin, workspace, ld):
    client = client_of(admin)
    paste(client, workspace, ld.mint_token("writer"))
    connection = LaunchDarklyConnection.objects.unscoped().get()

    page = settings_page(client, workspace)

    assert connection.member_email == DEMO_EMAIL
    assert f"The account of Demo Owner ({DEMO_EMAIL})" in page
    assert "role Writer" in page
    assert "scopes" not in page


@pytest.mark.django_db
def test_disconnect__asks_first_and_says_what_happens_to_queued_work(
    client_of, admin, workspace, ld
):
    client = client_of(admin)
    paste(client, workspace, ld.mint_token("writer"))
    make_run(workspace, items=3, status=ItemStatus.PENDING)
    make_run(workspace, items=2, status=ItemStatus.DONE, prefix="done")
    url = reverse("connections:disconnect", args=[workspace.slug])

    question = client.get(url)

    page = question.content.decode()
    assert question.status_code == 200
    assert "3 queued metric changes will be cancelled" in page
    assert "deletes nothing" in page
    assert LaunchDarklyConnection.objects.unscoped().get().status == Status.ACTIVE

    answer = client.post(url, follow=True)

    assert LaunchDarklyConnection.objects.unscoped().get().status == Status.DISCONNECTED
    assert "3 queued metric changes were cancelled" in answer.content.decode()
    assert SyncItem.objects.unscoped().filter(status=ItemStatus.CANCELLED).count() == 3
    assert SyncItem.objects.unscoped().filter(status=ItemStatus.DONE).count() == 2


@pytest.mark.django_db
def test_disconnect__nothing_queued__says_nothing_is_cancelled(client_of, admin, workspace, ld):
    client = client_of(admin)
    paste(client, workspace, ld.mint_token("writer"))

    page = client.get(reverse("connections:disconnect", args=[workspace.slug])).content.decode()

    assert "nothing is cancelled" in page


@pytest.mark.django_db
def test_sync_status__sandbox_override__names_the_sandbox(client_of, admin, workspace, ld):
    client = client_of(admin)
    paste(client, workspace, ld.mint_token("writer"))

    page = client.get(reverse("sync:status", args=[workspace.slug])).content.decode()

    assert f"local LaunchDarkly sandbox ({urlsplit(ld.base_url).netloc})" in page
    assert "app.launchdarkly.com" not in page
