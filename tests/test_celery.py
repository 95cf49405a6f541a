from datetime import timedelta

import pytest
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from connector.celery import app
from tenants.models import Invitation
from tenants.scope import tenant_scope
from tenants.tasks import invitations_purge_expired
from tests.factories import TenantFactory
from tests.workers import running_worker, wait_until


def test_celery_config__at_least_once_delivery():
    conf = app.conf
    assert conf.task_serializer == "json" and conf.accept_content == ["json"]
    assert conf.task_acks_late and conf.task_reject_on_worker_lost
    assert conf.worker_prefetch_multiplier == 1
    assert 0 < conf.task_soft_time_limit < conf.task_time_limit
    if settings.REDIS_URL:
        options = conf.broker_transport_options
        assert options["visibility_timeout"] > settings.CELERY_MAX_COUNTDOWN_S
        assert options["socket_timeout"] and options["health_check_interval"]
    else:
        assert conf.broker_url == "filesystem://"
        assert conf.broker_transport == "connector.broker:Transport"


def make_invitation(tenant, email, expired_days_ago):
    with tenant_scope(tenant):
        return Invitation.objects.create(
            email=email,
            token_hash=email,
            expires_at=timezone.now() - timedelta(days=expired_days_ago),
        )


@pytest.mark.django_db(transaction=True)
def test_worker__task_enqueued_after_commit__runs_on_real_broker():
    tenant = TenantFactory()
    make_invitation(tenant, "recent@example.com", expired_days_ago=1)

    with running_worker():
        with transaction.atomic():
            make_invitation(tenant, "old@example.com", expired_days_ago=45)
            invitations_purge_expired.delay_on_commit()
            # Not sent yet: the row it works on is not committed.
        assert wait_until(
            lambda: not Invitation.objects.unscoped().filter(email="old@example.com").exists()
        ), "the worker did not run the task"

    remaining = list(Invitation.objects.unscoped().values_list("email", flat=True))
    assert remaining == ["recent@example.com"]


@pytest.mark.django_db
def test_purge_task__run_twice__second_run_deletes_nothing():
    tenant = TenantFactory()
    make_invitation(tenant, "old@example.com", expired_days_ago=45)
    assert invitations_purge_expired() == 1
    assert invitations_purge_expired() == 0
