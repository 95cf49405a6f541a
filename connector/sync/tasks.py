"""Thin tasks: ids in, scope set from the first argument (the workspace), one service
call. A task for a workspace that is gone does nothing: its rows went with it."""

from celery import shared_task
from django.conf import settings

from connector.connections.models import LaunchDarklyConnection, Status
from connector.observability.context import log_context
from connector.sync import notify, services
from connector.sync.resync import resync
from tenants.scope import runs_in_workspace


# The item keeps its own time limit (SYNC_ITEM_TIME_LIMIT_S, enforced by the gate);
# these only apply under a pool that can enforce them, and leave the item room for it.
@shared_task(
    name="sync.item",
    soft_time_limit=settings.SYNC_STALE_CLAIM_S,
    time_limit=settings.SYNC_STALE_CLAIM_S + 30,
)
@runs_in_workspace
def sync_item(tenant_id: int, item_id: int) -> None:
    with log_context(item_id=item_id):
        services.item_run(item_id=item_id)
        services.pump()


@shared_task(name="sync.pump", soft_time_limit=30, time_limit=60)
@runs_in_workspace
def sync_pump(tenant_id: int) -> None:
    services.pump()


@shared_task(name="sync.sweep", soft_time_limit=30, time_limit=60)
def sync_sweep() -> None:
    for tenant_id in services.sweep_stale_claims():
        sync_pump.delay(tenant_id)


@shared_task(name="sync.resync", soft_time_limit=300, time_limit=360)
@runs_in_workspace
def sync_resync(tenant_id: int) -> None:
    resync()


@shared_task(name="sync.resync_all", soft_time_limit=60, time_limit=120)
def sync_resync_all() -> None:
    """Beat: one resync task per connected workspace (crosses workspaces on purpose)."""
    tenant_ids = (
        LaunchDarklyConnection.objects.unscoped()
        .filter(status=Status.ACTIVE)
        .exclude(project_key="")
        .values_list("tenant_id", flat=True)
    )
    for tenant_id in tenant_ids:
        sync_resync.delay(tenant_id)


# A mail server that is away is waited out: smtplib's errors, refused or dropped
# connections and LockTimeout are all OSErrors. 30 s, 1 min, 2 min ... then every
# 30 min (jittered), about 3 hours in all. Eager mode (tests) retries inline, at once.
MAIL_RETRY = {
    "autoretry_for": (OSError,),
    "retry_backoff": 30,
    "retry_backoff_max": settings.CELERY_MAX_COUNTDOWN_S,
    "retry_jitter": True,
    "max_retries": 10,
    "soft_time_limit": 90,
    "time_limit": 120,
}


@shared_task(name="notify.run_failures", **MAIL_RETRY)
@runs_in_workspace
def send_run_failures(tenant_id: int, run_id: int) -> None:
    with log_context(run_id=run_id):
        notify.run_failures_send(run_id=run_id)


@shared_task(name="notify.needs_reauth", **MAIL_RETRY)
@runs_in_workspace
def send_needs_reauth(tenant_id: int, connection_id: int, incident: str) -> None:
    notify.needs_reauth_send(connection_id=connection_id, incident=incident)
