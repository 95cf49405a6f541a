"""Thin tasks: ids in, scope set from the argument, one service call."""

from celery import shared_task

from connector.sync import services
from tenants.models import Tenant
from tenants.scope import tenant_scope


def _tenant(tenant_id: int) -> Tenant | None:
    return Tenant.objects.filter(pk=tenant_id).first()


@shared_task(name="sync.item", soft_time_limit=90, time_limit=120)
def sync_item(tenant_id: int, item_id: int) -> None:
    tenant = _tenant(tenant_id)
    if tenant is None:
        return  # the workspace is gone, and its items with it
    with tenant_scope(tenant):
        services.item_run(item_id=item_id)
        services.pump()


@shared_task(name="sync.pump", soft_time_limit=30, time_limit=60)
def sync_pump(tenant_id: int) -> None:
    tenant = _tenant(tenant_id)
    if tenant is not None:
        with tenant_scope(tenant):
            services.pump()


@shared_task(name="sync.sweep", soft_time_limit=30, time_limit=60)
def sync_sweep() -> None:
    for tenant_id in services.sweep_stale_claims():
        sync_pump.delay(tenant_id)
