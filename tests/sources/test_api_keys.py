"""The API keys page: create (shown once), list, revoke; audited."""

import re

import pytest
from django.urls import reverse

from connector.sources.models import ApiKey
from tenants.models import AuditEvent
from tenants.scope import tenant_scope

pytestmark = pytest.mark.django_db


def test_api_keys__create__raw_key_shown_once_and_only_hash_stored(client_of, admin, workspace):
    client = client_of(admin)
    url = reverse("sources:api_keys", args=[workspace.slug])
    response = client.post(url, {"name": "Nightly export"})
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    raw = re.search(r'class="new-api-key">([^<]+)<', response.content.decode()).group(1)
    with tenant_scope(workspace):
        api_key = ApiKey.objects.get()
        assert raw not in (api_key.key_hash, api_key.prefix) and raw.startswith(api_key.prefix)
        assert AuditEvent.objects.filter(action="api_key.created", target="Nightly export")
    listing = client.get(url).content.decode()
    assert "Nightly export" in listing and raw not in listing
    # The key works on the API.
    api = client.get("/api/v1/events", headers={"Authorization": f"Bearer {raw}"})
    assert api.status_code == 200


def test_api_keys__blank_name__form_error(client_of, admin, workspace):
    response = client_of(admin).post(
        reverse("sources:api_keys", args=[workspace.slug]), {"name": " "}
    )
    assert response.status_code == 400
    assert ApiKey.objects.unscoped().count() == 0


def test_api_keys__revoke__key_answers_401_and_revocation_audited(
    client_of, admin, workspace, raw_key
):
    client = client_of(admin)
    with tenant_scope(workspace):
        api_key = ApiKey.objects.get()
    response = client.post(reverse("sources:api_key_revoke", args=[workspace.slug, api_key.pk]))
    assert response.status_code == 302
    with tenant_scope(workspace):
        assert ApiKey.objects.get().revoked_at is not None
        assert AuditEvent.objects.filter(action="api_key.revoked").count() == 1
    denied = client.get("/api/v1/events", headers={"Authorization": f"Bearer {raw_key}"})
    assert denied.status_code == 401


def test_api_keys__member__not_found(client_of, member, workspace):
    response = client_of(member).get(reverse("sources:api_keys", args=[workspace.slug]))
    assert response.status_code == 404


def test_api_keys__settings_page_links_to_it(client_of, admin, workspace):
    page = client_of(admin).get(reverse("connections:settings", args=[workspace.slug]))
    assert reverse("sources:api_keys", args=[workspace.slug]) in page.content.decode()


def test_admin__source_models__listed_read_only_without_key_hash(client, workspace, raw_key):
    from tests.factories import MembershipFactory

    staff = MembershipFactory(user__is_staff=True, user__is_superuser=True).user
    client.force_login(staff)
    for model in ("sourceevent", "apikey", "catalogupload"):
        assert client.get(reverse(f"admin:sources_{model}_changelist")).status_code == 200
    api_key = ApiKey.objects.unscoped().get()
    page = client.get(reverse("admin:sources_apikey_change", args=[api_key.pk])).content.decode()
    assert api_key.key_hash not in page
