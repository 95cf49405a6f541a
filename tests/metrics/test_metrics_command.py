"""`python manage.py metrics plan|apply|export`, with Celery workers against the
sandbox: the plan the review page would show, applied by the same engine, and a
workspace's file imported into a fresh workspace of another LaunchDarkly account."""

from io import StringIO

import pytest
import requests
from django.core.management import call_command
from django.core.management.base import CommandError

from connector.connections import services as connections
from connector.metrics.desired import managed_view
from connector.metrics.groups import group_managed_view
from connector.metrics.models import MappingStatus, MetricGroup, MetricMapping, MetricPlan
from connector.planner.actions import PlanAction
from connector.planner.document import document_parse, document_plan
from connector.sync.models import SyncRun
from tenants.models import AuditAction, AuditEvent, Role
from tenants.scope import tenant_scope
from tests.factories import MembershipFactory
from tests.sync.conftest import connect_workspace
from tests.workers import running_worker

pytestmark = pytest.mark.django_db(transaction=True)

WORKER_ENV = {"SYNC_BACKOFF_BASE_S": "0.2", "SYNC_BACKOFF_CAP_S": "2"}

FILE = """
version: 1
events:
  - {key: purchase, name: Purchase, kind: numeric, unit: USD,
     properties: {plan: string, amount: number}}
  - {key: view_cart, name: View cart}
  - {key: checkout, name: Checkout}
metrics:
  - {event: view_cart, kind: binary}
  - {event: checkout, kind: binary}
  - {event: checkout, kind: count}
  - {event: purchase, kind: numeric, analysis: mean}
  - {event: purchase, kind: numeric, variant: p90, analysis: percentile, percentile: 90,
     name: Purchase (p90)}
  - {event: purchase, kind: numeric, filter: "plan = pro and amount > 100", name: Big pro purchases}
"""
GROUPS = """
groups:
  - key: checkout-funnel
    name: Checkout funnel
    kind: funnel
    description: Carts that check out
    metrics: [view_cart-binary, {key: checkout-binary, name: Checkout}]
  - {name: Checkout counts, kind: standard, metrics: [checkout-count, view_cart-binary]}
"""


def metrics(*args, workspace, expect_exit=0):
    """Run the command; its output and, when it refuses, its exit status."""
    out, err = StringIO(), StringIO()
    try:
        call_command("metrics", *args, "--workspace", workspace.slug, stdout=out, stderr=err)
        status = 0
    except CommandError as exc:
        err.write(str(exc))
        status = exc.returncode
    assert status == expect_exit, (out.getvalue(), err.getvalue())
    return out.getvalue(), err.getvalue()


@pytest.fixture
def file_at(tmp_path):
    def write(text, name="metrics.yaml"):
        path = tmp_path / name
        path.write_text(text)
        return str(path)

    return write


@pytest.fixture
def connected(client_of, admin, workspace, ld):
    return connect_workspace(client_of(admin), workspace, ld)


def worker(ld):
    return running_worker(LAUNCHDARKLY_BASE_URL=ld.base_url, **WORKER_ENV)


def account_metrics(ld, account_id=None):
    token = ld.mint_token("reader", account_id=account_id)
    answer = requests.get(
        f"{ld.base_url}/api/v2/metrics/default?limit=50",
        headers={"Authorization": token},
        timeout=10,
    )
    answer.raise_for_status()
    assert answer.json()["totalCount"] <= 50
    return {m["key"]: m for m in answer.json()["items"]}


def account_groups(ld, account_id=None):
    token = ld.mint_token("reader", account_id=account_id)
    answer = requests.get(
        f"{ld.base_url}/api/v2/projects/default/metric-groups",
        headers={"Authorization": token, "LD-API-Version": "beta"},
        timeout=10,
    )
    answer.raise_for_status()
    return {g["key"]: g for g in answer.json()["items"]}


# --- plan ----------------------------------------------------------------------------------


def test_metrics_plan__prints_each_row_and_the_counts__exit_0(connected, workspace, file_at):
    out, _ = metrics("plan", "--file", file_at(FILE), workspace=workspace)

    lines = out.splitlines()
    assert lines[0].split() == ["create", "metric", "checkout-binary", "Checkout"]
    assert "create     metric  purchase-p90-numeric" in out
    assert "Big pro purchases" in out
    assert lines[-2] == "events to add to the catalog: checkout, purchase, view_cart"
    assert lines[-1] == "metrics: 6 create; groups: nothing"
    with tenant_scope(workspace):
        assert not MetricPlan.objects.exists() and not MetricMapping.objects.exists()


def test_metrics_plan__blocked_row__says_why_exit_2(connected, workspace, file_at):
    text = FILE + "  - {event: checkout, kind: numeric, name: Checkout value}\n"

    out, err = metrics("plan", "--file", file_at(text), workspace=workspace, expect_exit=2)

    assert "blocked    metric  checkout-numeric" in out
    assert "A numeric metric needs a unit; this event has none." in out
    assert "metrics: 6 create, 1 blocked" in out
    assert "blocked: checkout-numeric: A numeric metric needs a unit" in err
    assert "1 thing of the file cannot be applied." in err


def test_metrics_plan__file_with_problems__each_with_its_place_exit_1(workspace, file_at):
    path = file_at("version: 1\nmetrics:\n  - {event: a, kind: gauge}\n  - {kind: binary}\n")

    _, err = metrics("plan", "--file", path, workspace=workspace, expect_exit=1)

    assert err.splitlines()[:2] == [
        "metrics[0].kind: must be binary, count or numeric",
        "metrics[1].event: is required",
    ]
    assert "2 problems; nothing was changed." in err


def test_metrics_command__unknown_workspace_or_file__refused(workspace, file_at):
    with pytest.raises(CommandError, match="No workspace 'nowhere'"):
        call_command("metrics", "plan", "--workspace", "nowhere", "--file", file_at(FILE))
    with pytest.raises(CommandError, match=r"Cannot read /no/such\.yaml"):
        call_command("metrics", "plan", "--workspace", workspace.slug, "--file", "/no/such.yaml")


def test_metrics_help__says_the_exit_statuses(capsys):
    with pytest.raises(SystemExit):
        call_command("metrics", "plan", "--help")  # argparse prints help itself
    assert "2 when the plan blocks something" in " ".join(capsys.readouterr().out.split())


# --- apply, with workers ------------------------------------------------------------------


def test_metrics_apply__wait__workers_create_every_metric_once(
    connected, workspace, admin, ld, file_at
):
    path = file_at(FILE)

    with worker(ld):
        out, _ = metrics(
            "apply",
            "--file",
            path,
            "--as",
            admin.user.email,
            "--wait",
            "--timeout",
            "120",
            workspace=workspace,
        )

    with tenant_scope(workspace):
        plan = MetricPlan.objects.get()
        run = SyncRun.objects.get()
        assert plan.sync_run == run and run.started_by == admin.user
        assert set(MetricMapping.objects.values_list("status", flat=True)) == {MappingStatus.SYNCED}
        audit = AuditEvent.objects.filter(action=AuditAction.PLAN_APPLIED).get()
        assert audit.actor == admin.user and audit.details["create"] == 6
    assert f"Plan {plan.pk} applied: run {run.pk} sends 6 items." in out
    assert f"/w/{workspace.slug}/sync/runs/{run.pk}/" in out
    assert f"Run {run.pk} finished in" in out and "6 done" in out
    assert len(account_metrics(ld)) == 6

    # Applied again: nothing to send, and the plan says every metric is unchanged.
    again, _ = metrics("apply", "--file", path, workspace=workspace)
    assert again.count("unchanged  metric") == 6
    assert "nothing to send, LaunchDarkly holds what the file says" in again
    with tenant_scope(workspace):
        assert SyncRun.objects.count() == 1 and MetricPlan.objects.count() == 2


def test_metrics_apply__without_as__no_user_recorded(connected, workspace, file_at):
    metrics("apply", "--file", file_at(FILE), workspace=workspace)

    with tenant_scope(workspace):
        assert SyncRun.objects.get().started_by is None
        assert AuditEvent.objects.get(action=AuditAction.PLAN_APPLIED).actor is None


def test_metrics_apply__as_a_member__refused_nothing_written(connected, workspace, file_at):
    member = MembershipFactory(tenant=workspace, role=Role.MEMBER)

    with pytest.raises(CommandError, match="is not an admin of workspace"):
        call_command(
            "metrics",
            "apply",
            "--workspace",
            workspace.slug,
            "--file",
            file_at(FILE),
            "--as",
            member.user.email,
        )

    with tenant_scope(workspace):
        assert not MetricPlan.objects.exists()


def test_metrics_apply__not_connected__refused_nothing_written(workspace, file_at):
    _, err = metrics("apply", "--file", file_at(FILE), workspace=workspace, expect_exit=1)

    assert "Connect LaunchDarkly first" in err and "Nothing was changed." in err
    with tenant_scope(workspace):
        assert not MetricPlan.objects.exists()


# --- export, and import elsewhere ---------------------------------------------------------


def test_metrics_export__stdout_and_file__the_same_bytes(connected, workspace, file_at, tmp_path):
    metrics("apply", "--file", file_at(FILE), workspace=workspace)
    target = tmp_path / "out.yaml"

    printed, _ = metrics("export", workspace=workspace)
    metrics("export", "--file", str(target), workspace=workspace)

    assert target.read_text() == printed
    assert len(document_parse(printed).metrics) == 6


def _other_workspace(ld, owner_user):
    """A fresh workspace connected to another sandbox account's project `default`."""
    account = ld.create_account("Other company")
    other = MembershipFactory(role=Role.OWNER, user=owner_user, tenant__slug="other").tenant
    with tenant_scope(other):
        change = connections.connection_connect_api_token(
            actor=owner_user, instance="commercial", token=account["token"]
        )
        connections.connection_choose_project(
            actor=owner_user, connection=change.connection, project_key="default"
        )
    return other, account["id"]


def _export_import(workspace, admin, ld, file_at, text, expected_creates):
    # The worker first: it purges the queue when it starts.
    with worker(ld):
        metrics("apply", "--file", file_at(text), "--wait", "--timeout", "120", workspace=workspace)
        exported, _ = metrics("export", workspace=workspace)
        other, account_id = _other_workspace(ld, admin.user)

        with tenant_scope(other):
            plan, to_add = document_plan(document_parse(exported))
        assert {row.action for row in [*plan.rows, *plan.groups]} == {PlanAction.CREATE}
        assert len(plan.rows) + len(plan.groups) == expected_creates
        assert [event.key for event in to_add] == ["checkout", "purchase", "view_cart"]
        out, _ = metrics(
            "apply",
            "--file",
            file_at(exported, "exported.yaml"),
            "--wait",
            "--timeout",
            "120",
            workspace=other,
        )
    assert f"{expected_creates} done" in out
    return other, account_id


def test_metrics_export_import__fresh_workspace_of_another_account__the_same_metrics(
    connected, workspace, admin, ld, file_at
):
    other, account_id = _export_import(workspace, admin, ld, file_at, FILE, 6)

    ours, theirs = account_metrics(ld), account_metrics(ld, account_id)
    assert set(ours) == set(theirs) and len(ours) == 6
    assert {k: managed_view(m) for k, m in ours.items()} == {
        k: managed_view(m) for k, m in theirs.items()
    }
    with tenant_scope(other):
        assert set(MetricMapping.objects.values_list("status", flat=True)) == {MappingStatus.SYNCED}
        # And the file the other workspace exports names the same metrics.
        with tenant_scope(workspace):
            first = document_parse(metrics("export", workspace=workspace)[0])
        second = document_parse(metrics("export", workspace=other)[0])
    assert first.metrics == second.metrics and first.events == second.events


def test_metrics_export_import__with_groups__the_same_metrics_and_groups(
    connected, workspace, admin, ld, file_at
):
    other, account_id = _export_import(workspace, admin, ld, file_at, FILE + GROUPS, 8)

    ours, theirs = account_groups(ld), account_groups(ld, account_id)
    assert set(ours) == set(theirs) == {"checkout-funnel", "checkout-counts"}
    assert {k: group_managed_view(g) for k, g in ours.items()} == {
        k: group_managed_view(g) for k, g in theirs.items()
    }
    assert [m["nameInGroup"] for m in theirs["checkout-funnel"]["metrics"]] == [
        "View cart",
        "Checkout",
    ]
    with tenant_scope(other):
        assert set(MetricGroup.objects.values_list("status", flat=True)) == {MappingStatus.SYNCED}
    assert {k: managed_view(m) for k, m in account_metrics(ld).items()} == {
        k: managed_view(m) for k, m in account_metrics(ld, account_id).items()
    }
