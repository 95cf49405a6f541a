"""The task queue (Redis, or the embedded broker) is down when a person starts work:
what they did is kept, they are told it waits for the queue, and it starts later."""

import pytest
from django.urls import reverse

from connector.celery import app
from connector.metrics.models import MetricPlan
from connector.planner.plans import Choices
from connector.sync import services
from connector.sync.models import ItemStatus, SyncItem, SyncRun
from tenants.scope import tenant_scope
from tests.sync.conftest import make_events


@pytest.fixture
def queue_down():
    """Point the Celery app's producers at a broker nobody listens on (port 1)."""
    saved = {
        name: app.conf[name]
        for name in ("broker_url", "broker_transport", "broker_transport_options")
    }
    app.conf.broker_url = "redis://127.0.0.1:1/0"
    app.conf.broker_transport = None
    app.conf.broker_transport_options = {"socket_connect_timeout": 1}
    app._pool, app.amqp._producer_pool = None, None
    yield
    app.conf.update(saved)
    app._pool, app.amqp._producer_pool = None, None


# Real commits: the start is sent after plan_apply's transaction commits, as in production.
@pytest.mark.django_db(transaction=True)
def test_plan_apply__queue_down__run_kept_user_told_it_starts_later(
    connected, workspace, admin, client_of, queue_down
):
    events = make_events(workspace, 3, numeric_every=0)
    with tenant_scope(workspace):
        plan = MetricPlan.objects.create(
            created_by=admin.user,
            selection={"ids": [e.pk for e in events]},
            choices=Choices().to_json(),
        )

    response = client_of(admin).post(
        reverse("planner:plan_apply", args=[workspace.slug, plan.pk]), follow=True
    )

    assert response.status_code == 200
    page = response.content.decode()
    assert "task queue" in page and "starts by itself when it is back" in page
    run = SyncRun.objects.unscoped().get(tenant=workspace)
    assert run.total == 3
    assert set(SyncItem.objects.unscoped().values_list("status", flat=True)) == {ItemStatus.PENDING}
    # When the queue is back, the sweeper (beat, every 30 s) finds the run's work.
    assert services.sweep_stale_claims() == [workspace.pk]


@pytest.mark.django_db(transaction=True)
def test_retry_failed__queue_down__retry_kept_user_told(
    connected, workspace, admin, client_of, queue_down
):
    from tests.sync.factories import make_run

    run = make_run(workspace, items=2, status=ItemStatus.FAILED)

    response = client_of(admin).post(
        reverse("sync:retry_failed", args=[workspace.slug, run.pk]), follow=True
    )

    assert response.status_code == 200
    assert "2 item(s) will be retried" in response.content.decode()
    assert services.sweep_stale_claims() == [workspace.pk]
