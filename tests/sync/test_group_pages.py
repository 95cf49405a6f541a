"""The sync status pages, emails and admin with metric-group items: each shows the
group's key and kind where a metric item shows its event and metric."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from connector.metrics.models import GroupKind, MappingStatus, MetricGroup
from connector.sync import services
from connector.sync.models import Action, ItemStatus, SyncItem, SyncRun
from tenants.scope import tenant_scope
from tests.factories import MetricGroupFactory, UserFactory
from tests.sync.factories import make_run

DONE_NOTE = "Created."
FAILED_MESSAGE = "metrics: the metrics of a group must share a randomization unit"


def page_text(client, name, workspace, *args, **params) -> str:
    response = client.get(reverse(name, args=[workspace.slug, *args]), params)
    assert response.status_code == 200
    return " ".join(response.content.decode().split())


def run_with_groups(workspace) -> SyncRun:
    """A finished run: two metrics done, a funnel done, a standard group failed."""
    run = make_run(workspace, items=2, status=ItemStatus.DONE)
    with tenant_scope(workspace):
        funnel = MetricGroupFactory(
            key="signup-funnel", status=MappingStatus.SYNCED, kind=GroupKind.FUNNEL
        )
        standard = MetricGroupFactory(
            key="core-metrics",
            kind=GroupKind.STANDARD,
            status=MappingStatus.FAILED,
            status_detail=FAILED_MESSAGE,
        )
        SyncItem.objects.create(
            run=run, group=funnel, action=Action.CREATE, status=ItemStatus.DONE, note=DONE_NOTE
        )
        SyncItem.objects.create(
            run=run,
            group=standard,
            action=Action.CREATE,
            status=ItemStatus.FAILED,
            error_message=FAILED_MESSAGE,
            last_http_status=400,
        )
        SyncRun.objects.filter(pk=run.pk).update(total=4, finished_at=timezone.now())
    return run


@pytest.mark.django_db
def test_run_page__group_items__key_and_kind_shown(client_of, admin, workspace):
    run = run_with_groups(workspace)

    body = page_text(client_of(admin), "sync:run", workspace, run.pk)

    assert '<td class="muted item-group">funnel</td> <td>signup-funnel</td>' in body
    assert '<td class="muted item-group">metric group</td> <td>core-metrics</td>' in body
    assert FAILED_MESSAGE in body and "Finished with failures: 3 of 4 done, 1 failed." in body
    failed = page_text(client_of(admin), "sync:run", workspace, run.pk, show="failed")
    assert "core-metrics" in failed and "signup-funnel" not in failed


@pytest.mark.django_db
def test_run_page__all_done_with_a_group__counts_metrics_and_groups(client_of, admin, workspace):
    run = run_with_groups(workspace)
    with tenant_scope(workspace):
        SyncItem.objects.filter(run=run, status=ItemStatus.FAILED).update(status=ItemStatus.DONE)

    body = page_text(client_of(admin), "sync:run", workspace, run.pk)

    assert "All 4 are in LaunchDarkly: 2 metrics and 2 metric groups." in body


@pytest.mark.django_db
def test_status_page__lists_metric_groups_with_their_status(client_of, member, workspace):
    run_with_groups(workspace)

    body = page_text(client_of(member), "sync:status", workspace)

    assert "<h2>Metric groups</h2>" in body
    assert "<code>signup-funnel</code>" in body and "In LaunchDarkly" in body
    assert "<code>core-metrics</code>" in body and FAILED_MESSAGE in body


@pytest.mark.django_db
def test_item_retry__a_group_item__back_in_line_named_by_its_key(client_of, admin, workspace):
    run = run_with_groups(workspace)
    with tenant_scope(workspace):
        item = SyncItem.objects.get(run=run, status=ItemStatus.FAILED)

    response = client_of(admin).post(
        reverse("sync:item_retry", args=[workspace.slug, item.pk]), follow=True
    )

    assert "Retrying core-metrics." in response.content.decode()
    with tenant_scope(workspace):
        assert SyncItem.objects.get(pk=item.pk).status == ItemStatus.PENDING


@pytest.mark.django_db
def test_run_failures_email__a_failed_group__counted_as_a_group(
    owner, workspace, mailoutbox, settings, django_capture_on_commit_callbacks
):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    run = make_run(workspace, items=1, status=ItemStatus.IN_FLIGHT)
    with tenant_scope(workspace):
        group = MetricGroupFactory(key="signup-funnel")
        SyncItem.objects.create(
            run=run, group=group, action=Action.CREATE, status=ItemStatus.IN_FLIGHT
        )
    with tenant_scope(workspace), django_capture_on_commit_callbacks(execute=True):
        for item in SyncItem.objects.filter(run=run):
            services._settle(
                services.Claim(item=item, token=item.claim_token),
                ItemStatus.FAILED,
                message="boom",
                record={"status": MappingStatus.FAILED, "status_detail": "boom"},
            )

    assert len(mailoutbox) == 1
    assert "1 metric(s) and 1 metric group(s) could not be synced" in mailoutbox[0].subject
    with tenant_scope(workspace):
        assert MetricGroup.objects.get(pk=group.pk).status == MappingStatus.FAILED


@pytest.mark.django_db
def test_admin__group_items_and_groups__listed_for_operators(client, workspace):
    run_with_groups(workspace)
    client.force_login(UserFactory(is_staff=True, is_superuser=True))

    items = client.get(reverse("admin:sync_syncitem_changelist"), {"q": "core-metrics"})
    groups = client.get(reverse("admin:metrics_metricgroup_changelist"))

    assert items.status_code == 200 and len(items.context["cl"].result_list) == 1
    assert groups.status_code == 200
    assert {g.key for g in groups.context["cl"].result_list} == {"signup-funnel", "core-metrics"}
