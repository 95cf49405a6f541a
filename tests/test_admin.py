"""The operators' admin of metric mappings, plans and sync rows: every workspace's
rows, read-only, staff only."""

import pytest
from django.urls import reverse

from connector.imports.ingest import import_settings
from connector.imports.models import ImportBatch, ImportSettings
from connector.metrics.models import MetricMapping, MetricPlan
from connector.sync.models import RemoteMetric, SyncItem, SyncRun
from tenants.models import Invitation, Role
from tenants.scope import tenant_scope
from tenants.services import invitation_create
from tests.factories import TenantFactory, UserFactory
from tests.imports.factories import make_batch
from tests.sync.factories import make_run

MODELS = [MetricMapping, MetricPlan, SyncRun, SyncItem, RemoteMetric, ImportBatch, ImportSettings]


def admin_url(model, view, *args):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


@pytest.fixture
def two_workspaces(db):
    """Each workspace with one row of every model, its metric keys naming it."""
    workspaces = [TenantFactory(slug="north"), TenantFactory(slug="south")]
    for workspace in workspaces:
        run = make_run(workspace, prefix=workspace.slug)
        with tenant_scope(workspace):
            RemoteMetric.objects.create(
                project_key="default", key=f"{workspace.slug}-remote", fingerprint="f"
            )
            MetricPlan.objects.create(selection={"ids": []}, choices={}, sync_run=run)
            import_settings()
        make_batch(workspace)
    return workspaces


@pytest.fixture
def operator(db, client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m._meta.model_name)
def test_admin__operator__changelist_lists_every_workspace(operator, two_workspaces, model):
    response = operator.get(admin_url(model, "changelist"))

    assert response.status_code == 200
    shown = response.context["cl"].result_list
    assert {row.tenant.slug for row in shown} == {"north", "south"}


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m._meta.model_name)
def test_admin__operator__change_page_shows_another_workspace_row(operator, two_workspaces, model):
    row = model.objects.unscoped().get(tenant__slug="south")

    response = operator.get(admin_url(model, "change", row.pk))

    assert response.status_code == 200
    assert response.context["original"] == row


def test_admin__search__by_event_key_and_metric_key(operator, two_workspaces):
    by_event = operator.get(admin_url(MetricMapping, "changelist"), {"q": "north_0"})
    by_metric = operator.get(admin_url(SyncItem, "changelist"), {"q": "south_0-binary"})

    assert [m.metric_key for m in by_event.context["cl"].result_list] == ["north_0-binary"]
    assert [i.tenant.slug for i in by_metric.context["cl"].result_list] == ["south"]


def test_admin__filters__by_status_and_workspace(operator, two_workspaces):
    north = two_workspaces[0]

    response = operator.get(
        admin_url(SyncItem, "changelist"), {"status__exact": "done", "tenant__id__exact": north.pk}
    )

    assert [i.tenant.slug for i in response.context["cl"].result_list] == ["north"]


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m._meta.model_name)
def test_admin__operator__writes_refused(operator, two_workspaces, model):
    row = model.objects.unscoped().get(tenant__slug="north")

    changed = operator.post(admin_url(model, "change", row.pk), {})
    deleted = operator.post(admin_url(model, "delete", row.pk), {"post": "yes"})
    added = operator.get(admin_url(model, "add"))

    assert (changed.status_code, deleted.status_code, added.status_code) == (403, 403, 403)
    assert model.objects.unscoped().filter(pk=row.pk).exists()


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m._meta.model_name)
def test_admin__non_staff_user__sent_to_admin_sign_in(client, two_workspaces, model):
    client.force_login(UserFactory())

    response = client.get(admin_url(model, "changelist"))

    assert response.status_code == 302 and response["Location"].startswith(reverse("admin:login"))


def test_admin__read_only_page__leaves_excluded_fields_out(operator, owner):
    with tenant_scope(owner.tenant):
        invitation, _ = invitation_create(
            actor=owner.user, email="new@example.com", role=Role.MEMBER
        )

    page = operator.get(admin_url(Invitation, "change", invitation.pk))

    assert page.status_code == 200 and "new@example.com" in page.content.decode()
    assert invitation.token_hash not in page.content.decode()
