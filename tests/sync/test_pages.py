"""Sync status pages: who sees and does what, constant queries, live progress, and
notifications sent once per incident."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from connector.connections.models import LaunchDarklyConnection
from connector.connections.services import connection_mark_needs_reauth
from connector.sync import services
from connector.sync.models import ItemStatus, SyncItem
from connector.sync.notify import notify_run_failures
from tenants.scope import tenant_scope
from tests.factories import MembershipFactory
from tests.sync.factories import make_item, make_run


def page(client, name, workspace, *args, **params):
    return client.get(reverse(name, args=[workspace.slug, *args]), params)


@pytest.mark.django_db
def test_status_page__member__sees_progress_history_and_runs_without_controls(
    client_of, member, workspace
):
    run = make_run(workspace, items=4, status=ItemStatus.DONE)
    make_run(workspace, items=2, status=ItemStatus.FAILED)

    body = page(client_of(member), "sync:status", workspace).content.decode()

    assert f"Run {run.pk}" in body and "100%" in body
    assert "Last 30 days" in body and "<svg" in body
    assert "Retry failed" not in body


@pytest.mark.django_db
def test_run_page__filters_and_retry__admin_retries_failed_items(client_of, admin, workspace):
    run = make_run(workspace, items=3, status=ItemStatus.FAILED)
    with tenant_scope(workspace):
        SyncItem.objects.filter(run=run).update(
            error_message="unit is required for numeric metrics", last_http_status=400
        )
    client = client_of(admin)

    failed = page(client, "sync:run", workspace, run.pk, show="failed").content.decode()
    assert failed.count("unit is required for numeric metrics") == 3
    assert (
        "No items with this filter"
        in page(client, "sync:run", workspace, run.pk, show="done").content.decode()
    )

    response = client.post(reverse("sync:retry_failed", args=[workspace.slug, run.pk]))
    assert response.status_code == 302
    with tenant_scope(workspace):
        assert set(SyncItem.objects.filter(run=run).values_list("status", flat=True)) == {
            ItemStatus.PENDING
        }


@pytest.mark.django_db
def test_item_retry__member__answers_like_missing(client_of, member, workspace):
    item = make_item(workspace)
    response = client_of(member).post(reverse("sync:item_retry", args=[workspace.slug, item.pk]))
    assert response.status_code == 404
    with tenant_scope(workspace):
        assert SyncItem.objects.get(pk=item.pk).status == ItemStatus.FAILED


@pytest.mark.django_db
def test_item_retry__admin__one_item_back_in_line(client_of, admin, workspace):
    item = make_item(workspace)
    client_of(admin).post(reverse("sync:item_retry", args=[workspace.slug, item.pk]))
    with tenant_scope(workspace):
        assert SyncItem.objects.get(pk=item.pk).status == ItemStatus.PENDING


@pytest.mark.django_db
def test_progress_fragment__running_run__polls_and_shows_waiting(client_of, member, workspace):
    run = make_run(workspace, items=5, status=ItemStatus.PENDING)
    from datetime import timedelta

    from django.utils import timezone

    with tenant_scope(workspace):
        first = SyncItem.objects.filter(run=run).order_by("id").first()
        SyncItem.objects.filter(pk=first.pk).update(
            status=ItemStatus.WAITING, next_attempt_at=timezone.now() + timedelta(seconds=40)
        )
    body = page(client_of(member), "sync:progress", workspace, run.pk).content.decode()

    assert "data-poll-url" in body and "0%" in body
    assert "Waiting for LaunchDarkly's rate limit until" in body


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["sync:status", "sync:run", "sync:progress"])
def test_status_pages__queries_do_not_grow_with_items(client_of, admin, workspace, name):
    client = client_of(admin)

    def queries_with(items):
        run = make_run(workspace, items=items, status=ItemStatus.FAILED, prefix=f"n{items}")
        args = [] if name == "sync:status" else [run.pk]
        client.get(reverse(name, args=[workspace.slug, *args]))  # warm caches
        with CaptureQueriesContext(connection) as captured:
            assert client.get(reverse(name, args=[workspace.slug, *args])).status_code == 200
        return len(captured)

    assert queries_with(10) == queries_with(400)


@pytest.mark.django_db
def test_sync_settings__admin_sets_policies__saved(client_of, admin, workspace):
    client = client_of(admin)
    response = client.post(
        reverse("sync:settings", args=[workspace.slug]),
        {"drift_policy": "repair", "orphan_policy": "delete", "notify": "owners"},
    )
    assert response.status_code == 302
    from connector.sync.selectors import sync_settings

    with tenant_scope(workspace):
        saved = sync_settings()
    assert (saved.drift_policy, saved.orphan_policy, saved.notify) == ("repair", "delete", "owners")


@pytest.mark.django_db
def test_notify__burst_of_500_failing_items__one_email(
    owner, admin, member, workspace, mailoutbox, settings, django_capture_on_commit_callbacks
):
    settings.CELERY_TASK_ALWAYS_EAGER = True  # the email goes out from a task
    run = make_run(workspace, items=500, status=ItemStatus.IN_FLIGHT)
    with tenant_scope(workspace), django_capture_on_commit_callbacks(execute=True):
        item_ids = list(SyncItem.objects.filter(run=run).values_list("pk", flat=True))
        for item in SyncItem.objects.filter(pk__in=item_ids):
            services._settle(
                services.Claim(item=item, token=item.claim_token),
                ItemStatus.FAILED,
                message="boom",
                http_status=400,
            )

    with tenant_scope(workspace):
        assert notify_run_failures(run_id=run.pk) is False  # already sent, not again
    assert len(mailoutbox) == 1
    assert set(mailoutbox[0].to) == {owner.user.email, admin.user.email}  # not the member
    assert "500 failed" in mailoutbox[0].body and f"/sync/runs/{run.pk}/" in mailoutbox[0].body


@pytest.mark.django_db
def test_notify__connection_failing_for_hours__one_email(
    client_of, owner, workspace, mailoutbox, ld, settings, django_capture_on_commit_callbacks
):
    settings.CELERY_TASK_ALWAYS_EAGER = True  # the email goes out from a task
    client_of(owner).post(
        reverse("connections:api_token", args=[workspace.slug]),
        {"instance": "commercial", "token": ld.mint_token("writer")},
    )
    connection_row = LaunchDarklyConnection.objects.unscoped().get(tenant=workspace)
    with tenant_scope(workspace), django_capture_on_commit_callbacks(execute=True):
        for _ in range(200):  # every failing call over hours reports it again
            connection_mark_needs_reauth(connection=connection_row, reason="401 from LaunchDarkly")

    assert len(mailoutbox) == 1
    assert "reconnect" in mailoutbox[0].subject.lower()
    assert f"/w/{workspace.slug}/settings/" in mailoutbox[0].body


@pytest.mark.django_db
def test_notify__setting_nobody__no_email(
    owner, workspace, mailoutbox, django_capture_on_commit_callbacks
):
    from connector.sync.selectors import sync_settings

    run = make_run(workspace, items=2, status=ItemStatus.IN_FLIGHT)
    with tenant_scope(workspace), django_capture_on_commit_callbacks(execute=True):
        row = sync_settings()
        row.notify = "nobody"
        row.save()
        for item in SyncItem.objects.filter(run=run):
            services._settle(
                services.Claim(item=item, token=item.claim_token), ItemStatus.FAILED, message="boom"
            )
    assert mailoutbox == []


@pytest.mark.django_db
def test_status_pages__other_workspace_member__404(client_of, workspace):
    outsider = MembershipFactory(role="owner")
    run = make_run(workspace)
    client = client_of(outsider)
    assert page(client, "sync:status", workspace).status_code == 404
    assert page(client, "sync:run", workspace, run.pk).status_code == 404


@pytest.mark.django_db
def test_ops_overview__staff_sees_every_workspace_health(client, workspace):
    from connector.launchdarkly.budget import RateBudget
    from tests.factories import TenantFactory, UserFactory

    other = TenantFactory(name="Other Co")
    make_run(workspace, items=3, status=ItemStatus.FAILED)
    make_run(other, items=2, status=ItemStatus.PENDING)
    with tenant_scope(other):
        LaunchDarklyConnection.objects.create(
            instance="commercial",
            auth_kind="oauth",
            status="needs_reauth",
            status_reason="refresh token revoked",
            account_id="acct-other",
        )
    with tenant_scope(workspace):
        LaunchDarklyConnection.objects.create(
            instance="commercial",
            auth_kind="api_token",
            account_id="acct-busy",
            access_token_encrypted="x",
        )
    budget = RateBudget("acct-busy")
    assert budget.acquire("GET /x") == 0
    from connector.launchdarkly.ratelimit import RateLimitInfo

    budget.release("GET /x", RateLimitInfo(0, 0, None, 30.0), rate_limited=True)

    client.force_login(UserFactory(is_staff=True))
    body = client.get(reverse("sync:ops")).content.decode()

    assert workspace.name in body and "refresh token revoked" in body
    assert "acct-busy" in body  # rate limited, waiting
    assert "Open items</dt><dd>2" in body


@pytest.mark.django_db
def test_ops_overview__non_staff__404(client_of, owner):
    assert client_of(owner).get(reverse("sync:ops")).status_code == 404
