"""Sync status pages: who sees and does what, constant queries, live progress, and
notifications sent once per incident."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from connector.connections.models import LaunchDarklyConnection
from connector.connections.services import connection_mark_needs_reauth
from connector.sync import services
from connector.sync.models import ItemStatus, SyncItem, SyncRun
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


@pytest.mark.django_db
def test_run_page__finished_all_done__says_so_without_a_retry_button(client_of, admin, workspace):
    run = make_run(workspace, items=3, status=ItemStatus.DONE)
    SyncRun.objects.unscoped().filter(pk=run.pk).update(finished_at=timezone.now())

    page = client_of(admin).get(reverse("sync:run", args=[workspace.slug, run.pk])).content.decode()

    assert "All 3 metrics are in LaunchDarkly." in page
    assert "Retry failed" not in page


@pytest.mark.django_db
def test_run_page__finished_with_failures__retry_is_the_main_button(client_of, admin, workspace):
    run = make_run(workspace, items=2, status=ItemStatus.FAILED)
    SyncRun.objects.unscoped().filter(pk=run.pk).update(finished_at=timezone.now())

    page = client_of(admin).get(reverse("sync:run", args=[workspace.slug, run.pk])).content.decode()

    assert "0 of 2 done, 2 failed." in page
    assert '<button type="submit" class="primary">Retry failed</button>' in page
    assert "All 2 metrics" not in page


# --- the new user's journey: what a finished run says, links, chart, labels ------------


def finish(workspace, run, **changes_by_position):
    """Mark the run finished; `changes_by_position` updates its n-th item (0-based)."""
    from django.utils import timezone

    with tenant_scope(workspace):
        ids = list(SyncItem.objects.filter(run=run).order_by("id").values_list("pk", flat=True))
        for position, changes in changes_by_position.items():
            SyncItem.objects.filter(pk=ids[int(position.lstrip("n"))]).update(**changes)
        SyncItem.objects.filter(run=run).update(finished_at=timezone.now())
        type(run).objects.filter(pk=run.pk).update(finished_at=timezone.now())


def text_of(response):
    """The page's text with white space folded, as a browser shows it."""
    return " ".join(response.content.decode().split())


@pytest.mark.django_db
def test_run_page__finished_all_done__success_panel_next_step_and_no_retry(
    client_of, admin, workspace
):
    run = make_run(workspace, items=12, status=ItemStatus.DONE)
    finish(workspace, run)

    body = text_of(page(client_of(admin), "sync:run", workspace, run.pk))

    assert "All 12 metrics are in LaunchDarkly." in body
    assert 'href="?show=done">See them</a>' in body  # each links to its LaunchDarkly page
    assert f'href="{reverse("planner:picker", args=[workspace.slug])}"' in body
    assert "Pick more events" in body
    assert "Retry failed" not in body  # nothing failed: no retry at all
    assert 'class="progress-block is-finished' in body


@pytest.mark.django_db
def test_run_page__finished_with_failures__says_so_and_retry_is_the_primary_action(
    client_of, admin, member, workspace
):
    run = make_run(workspace, items=12, status=ItemStatus.DONE)
    finish(
        workspace,
        run,
        n0={"status": ItemStatus.FAILED, "last_http_status": 400, "error_message": "bad unit"},
        n1={"status": ItemStatus.CONFLICT, "last_http_status": 409},
    )

    body = text_of(page(client_of(admin), "sync:run", workspace, run.pk))

    assert "Finished with failures: 10 of 12 done, 2 failed." in body
    assert "All 12 metrics" not in body
    assert body.count("Retry failed") == 1
    assert '<button type="submit" class="primary">Retry failed</button>' in body
    assert f"{reverse('sync:run', args=[workspace.slug, run.pk])}?show=failed" in body
    # A member reads the same outcome without the button.
    member_body = text_of(page(client_of(member), "sync:run", workspace, run.pk))
    assert "Finished with failures: 10 of 12 done, 2 failed." in member_body
    assert "Retry failed" not in member_body


@pytest.mark.django_db
def test_run_page__running__progress_and_no_outcome_yet(client_of, admin, workspace):
    run = make_run(workspace, items=4, status=ItemStatus.PENDING)
    with tenant_scope(workspace):
        first = SyncItem.objects.filter(run=run).order_by("id").first()
        SyncItem.objects.filter(pk=first.pk).update(status=ItemStatus.DONE)

    body = text_of(page(client_of(admin), "sync:run", workspace, run.pk))

    assert "data-poll-url" in body and "25%" in body and "1 of 4 finished" in body
    assert "Sending metrics to LaunchDarkly" in body
    assert "are in LaunchDarkly" not in body and "Retry failed" not in body


@pytest.mark.django_db
def test_run_page__finished_deletion_run__says_deleted_not_in_launchdarkly(
    client_of, admin, workspace
):
    from connector.sync.models import Action

    run = make_run(workspace, items=2, status=ItemStatus.DONE)
    with tenant_scope(workspace):
        SyncItem.objects.filter(run=run).update(action=Action.DELETE)
    finish(workspace, run)

    body = text_of(page(client_of(admin), "sync:run", workspace, run.pk))

    assert "All 2 metrics are deleted from LaunchDarkly." in body
    assert "are in LaunchDarkly" not in body and "Retry failed" not in body


@pytest.mark.django_db
def test_progress_fragment__finished__stops_polling_and_says_how_it_ended(
    client_of, admin, workspace
):
    run = make_run(workspace, items=2, status=ItemStatus.DONE)
    finish(workspace, run, n0={"status": ItemStatus.FAILED})

    body = text_of(page(client_of(admin), "sync:progress", workspace, run.pk))

    assert "data-poll-url" not in body and "100%" in body
    assert 'class="progress-block is-finished has-failures"' in body  # the bar's colour


@pytest.mark.django_db
def test_run_page__metric_links__only_for_metrics_that_exist_in_launchdarkly(
    client_of, admin, workspace, ld, connected
):
    from connector.sync.models import Action

    run = make_run(workspace, items=5, status=ItemStatus.DONE)
    with tenant_scope(workspace):
        SyncItem.objects.filter(run=run).update(last_http_status=201)
        run.instance, run.project_key = "commercial", "default"
        run.save()
    finish(
        workspace,
        run,
        n1={"status": ItemStatus.FAILED, "last_http_status": 400},  # never created
        n2={"action": Action.DELETE, "last_http_status": 204},  # gone from LaunchDarkly
        n3={"action": Action.UPDATE, "last_http_status": 200},
        n4={"action": Action.ADOPT, "last_http_status": 200},
    )
    with tenant_scope(workspace):
        keys = [i.mapping.metric_key for i in SyncItem.objects.filter(run=run).order_by("id")]

    body = page(client_of(admin), "sync:run", workspace, run.pk).content.decode()

    link = f"{ld.base_url}/default/metrics/{{}}/details"
    assert f'href="{link.format(keys[0])}"' in body  # created
    assert f'href="{link.format(keys[3])}"' in body  # updated
    assert f'href="{link.format(keys[4])}"' in body  # adopted
    assert link.format(keys[1]) not in body and link.format(keys[2]) not in body
    assert "<td>201</td>" in body and "<td>204</td>" in body


@pytest.mark.django_db
def test_status_page__chart__axes_legend_css_colours_label_and_table(client_of, member, workspace):
    from datetime import timedelta

    from django.utils import timezone

    run = make_run(workspace, items=7, status=ItemStatus.DONE)
    finish(workspace, run, n0={"status": ItemStatus.FAILED})

    response = page(client_of(member), "sync:status", workspace)
    body = response.content.decode()
    chart = body[body.index("<svg") : body.index("</svg>")]

    today = timezone.now().date()
    first = today - timedelta(days=29)
    assert 'class="axis axis-y"' in chart and 'class="axis axis-x"' in chart
    assert chart.count('class="tick tick-y"') >= 2
    assert f">{today:%b} {today.day}<" in chart and f">{first:%b} {first.day}<" in chart
    assert chart.count('class="tick tick-x"') >= 3
    assert 'class="bar bar-done"' in chart and 'class="bar bar-failed"' in chart
    assert "fill=" not in chart and "style=" not in chart and "#" not in chart
    assert 'role="img"' in chart and "aria-labelledby=" in chart
    assert "6 synced and 1 failed" in chart  # the summary a screen reader reads
    assert 'class="chart-legend"' in body and ">Synced<" in body and ">Failed<" in body
    table = body[body.index('<details class="chart-table">') :]
    table = table[: table.index("</details>")]
    assert f"{today:%b} {today.day} 6 1" in " ".join(re.sub(r"<[^>]+>", " ", table).split())
    assert ' width="' not in chart.split(">", 1)[0]  # scales to the card, CSS sets it


@pytest.mark.django_db
def test_status_page__instance__where_the_connection_really_talks_to(
    client_of, admin, workspace, ld, connected
):
    body = text_of(page(client_of(admin), "sync:status", workspace))

    assert "local LaunchDarkly sandbox (127.0.0.1:" in body
    assert "Commercial (app.launchdarkly.com)" not in body


@pytest.mark.django_db
def test_ops_overview__accounts_in_words(client, workspace):
    from tests.factories import UserFactory

    with tenant_scope(workspace):
        LaunchDarklyConnection.objects.create(
            instance="commercial",
            auth_kind="oauth",
            status="needs_reauth",
            status_reason="refresh token revoked",
            account_id="5f1d2c3b4a",
            member_email="ada@example.com",
            member_name="Ada Lovelace",
        )
    client.force_login(UserFactory(is_staff=True))
    body = client.get(reverse("sync:ops")).content.decode()

    assert "The account of Ada Lovelace (ada@example.com)" in body
